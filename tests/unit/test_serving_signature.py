"""Whose fault a failed prediction is: input the model's signature forbids is the client's."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from mlflow.models import infer_signature
from mlflow.types import ColSpec, Schema

from trailboss.serving.signature import InputSignature

TRAINING = pd.DataFrame({"tenure": [1.0, 2.0], "visits": [3, 4], "plan": ["pro", "team"]})
CHURN = InputSignature.of(infer_signature(TRAINING).inputs)


def frame(**changes: list[Any]) -> pd.DataFrame:
    columns: dict[str, list[Any]] = {str(k): v for k, v in TRAINING.to_dict("list").items()}
    return pd.DataFrame({**columns, **changes})


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (frame(tenure=[1.0, float("nan")]), "column 'tenure' is required by the model's "
         "signature and takes finite numbers (double); row 1 holds NaN (a missing value)"),
        (frame(tenure=[float("inf"), 1.0]), "row 0 holds inf (not a finite number)"),
        (frame(tenure=[1.0, -float("inf")]), "row 1 holds -inf"),
        (frame(tenure=[None, 1.0]), "row 0 holds NaN"),
        (frame(tenure=["1", "ten"]), "column 'tenure' is required by the model's signature and "
         "takes numbers (double); row 0 holds '1'"),
        (frame(plan=["pro", {"a": 1}]), "takes text (string); row 1 holds {'a': 1}"),
        (frame(plan=["pro", None]), "takes text (string); row 1 holds NaN (a missing value)"),
        ({"tenure": [1.0], "plan": [None]}, "takes text (string); row 0 holds nothing (null)"),
        (frame(plan=[["pro"], "team"]), "row 0 holds ['pro']"),
        (frame(visits=[1.5, float("nan")]), "column 'visits'"),
        ({"tenure": [float("nan")], "visits": [1], "plan": ["pro"]}, "column 'tenure'"),
        ({"tenure": np.array([1.0, np.inf]), "visits": [1, 2]}, "row 1 holds inf"),
        (TRAINING.head(0), "the request holds no rows to predict"),
        (np.empty((0, 3)), "the request holds no rows to predict"),
    ],
)  # fmt: skip
def test_input_the_signature_forbids_is_named(data: Any, why: str) -> None:
    refusal = CHURN.refusal(data)
    assert refusal is not None
    assert why in refusal


@pytest.mark.parametrize(
    "data",
    [
        TRAINING,
        frame(visits=[np.int8(1), np.int8(2)]),
        {"tenure": [1.0], "plan": ["pro"]},  # a column missing is MLflow's to refuse, not here
        np.array([[1.0, 2.0, 3.0, 4.0]]),  # a shape not foreseen: not provably the client's
        "a sentence",
    ],
)
def test_input_the_signature_allows_leaves_a_failure_the_models(data: Any) -> None:
    assert CHURN.refusal(data) is None


def test_a_column_with_missing_values_in_training_is_optional_and_takes_nan() -> None:
    with_gaps = frame(tenure=[1.0, None], plan=["pro", None])
    signature = InputSignature.of(infer_signature(with_gaps).inputs)
    assert signature.refusal(frame(tenure=[float("nan"), 2.0], plan=[None, "pro"])) is None
    assert "takes numbers" in (signature.refusal(frame(tenure=["x", 2.0])) or "")


def test_a_model_without_a_column_signature_refuses_only_empty_requests() -> None:
    tensor = infer_signature(np.ones((2, 2))).inputs
    for signature in (InputSignature.of(None), InputSignature.of(tensor)):
        assert signature.refusal(np.array([[np.nan, 1.0]])) is None
        assert signature.refusal(np.empty((0, 2))) == "the request holds no rows to predict"


def test_declared_types_come_from_the_signature() -> None:
    schema = Schema([ColSpec("double", "a"), ColSpec("float", "b"), ColSpec("long", "c"),
                     ColSpec("boolean", "d"), ColSpec("string", "e")])  # fmt: skip
    signature = InputSignature.of(schema)
    assert [signature.dtype_of(n) for n in "abcde"] == [
        np.float64, np.float32, np.int64, np.bool_, None
    ]  # fmt: skip
    assert InputSignature.of(infer_signature(np.ones((2, 2))).inputs).tensor_dtype == np.float64
