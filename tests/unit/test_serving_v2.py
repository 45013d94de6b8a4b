"""Open Inference Protocol v2 conversions, and the server's metrics and settings."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from trailboss.serving import v2
from trailboss.serving.config import ServeSettings
from trailboss.serving.metrics import ServerMetrics, error_type
from trailboss.serving.signature import Column, InputSignature

FP64 = np.dtype(np.float64)
COLUMNS = InputSignature(
    (Column("tenure", "double", True, FP64), Column("spend", "double", True, FP64))
)
NO_SIGNATURE = InputSignature()


def fp64(name: str, shape: list[Any], data: Any) -> dict[str, object]:
    return {"name": name, "shape": shape, "datatype": "FP64", "data": data}


def test_one_tensor_per_column_becomes_a_dataframe() -> None:
    body = {"inputs": [fp64("tenure", [2], [1, 2]), fp64("spend", [2, 1], [3, 4])]}
    frame = v2.model_input(body, COLUMNS)
    assert isinstance(frame, pd.DataFrame)
    assert frame.to_dict("list") == {"tenure": [1.0, 2.0], "spend": [3.0, 4.0]}


def test_one_matrix_takes_the_signature_column_names() -> None:
    frame = v2.model_input({"inputs": [fp64("input-0", [2, 2], [1, 3, 2, 4])]}, COLUMNS)
    assert frame.to_dict("list") == {"tenure": [1.0, 2.0], "spend": [3.0, 4.0]}


def test_a_model_without_columns_gets_the_array() -> None:
    array = v2.model_input({"inputs": [fp64("x", [1, 3], [1, 2, 3])]}, NO_SIGNATURE)
    assert isinstance(array, np.ndarray)
    assert array.shape == (1, 3)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "non-empty 'inputs'"),
        ({"inputs": [{"name": "x", "shape": [2], "datatype": "FP99", "data": [1, 2]}]}, "datatype"),
        ({"inputs": [fp64("x", [3], [1, 2])]}, "needs 3 values, got 2"),
        ({"inputs": [{"shape": [1], "datatype": "FP64", "data": [1]}]}, r"inputs\[0\].name"),
        ({"inputs": [fp64("x", [-1], [1])]}, "shape"),
        ({"inputs": [{"name": "x", "shape": [1], "datatype": "INT64", "data": ["a"]}]}, "INT64"),
        ({"inputs": [fp64("input-0", [1, 3], [1, 2, 3])]}, "has 3 columns; the model takes 2"),
        ({"inputs": [fp64("tenure", [2], [1, 2]), fp64("spend", [1], [1])]}, "same number of rows"),
        ({"inputs": [fp64("x", [True], [1])]}, "shape"),
        ({"inputs": [fp64("x", [2.0], [1, 2])]}, "shape"),
        (
            {"inputs": [fp64("tenure", [], 1), fp64("spend", [], 1)]},
            r"inputs\[0\].data must be a list",
        ),
        ({"inputs": [{"name": "x", "shape": [1], "datatype": "FP64"}]}, "must be a list"),
        (
            {"inputs": [{"name": "x", "shape": [1], "datatype": "INT64", "data": [1.5]}]},
            "holds 1.5, which INT64 cannot hold",
        ),
        (
            {"inputs": [{"name": "x", "shape": [1], "datatype": "UINT8", "data": [300]}]},
            "holds 300",
        ),
        (
            {"inputs": [{"name": "x", "shape": [1], "datatype": "INT8", "data": [-129]}]},
            "holds -129",
        ),
        ({"inputs": [{"name": "x", "shape": [1], "datatype": "INT64", "data": [2**70]}]}, "INT64"),
        (
            {"inputs": [{"name": "x", "shape": [1], "datatype": "BOOL", "data": [2]}]},
            "BOOL cannot hold",
        ),
        ({"inputs": [fp64("x", [10**10, 10**10], [1])]}, "needs 100000000000000000000 values"),
        (
            {"inputs": [fp64("tenure", [1], [1]), fp64("spend", [1], [2]), fp64("age", [1], [3])]},
            r"\['age'\] are not inputs of this model; it takes: tenure, spend",
        ),
    ],
)
def test_a_malformed_request_names_the_field(body: object, message: str) -> None:
    with pytest.raises(v2.BadInferenceRequest, match=message):
        v2.model_input(body, COLUMNS)


def test_outputs_are_typed_tensors() -> None:
    (out,) = v2.outputs(np.array([1, 0], dtype=np.int64))
    assert out == {"name": "prediction", "shape": [2], "datatype": "INT64", "data": [1, 0]}
    names = [o["name"] for o in v2.outputs(pd.DataFrame({"a": [0.5], "b": ["x"]}))]
    assert names == ["a", "b"]
    assert v2.outputs(pd.DataFrame({"b": ["x"]}))[0]["datatype"] == "BYTES"


def test_a_request_for_an_unknown_output_is_refused() -> None:
    tensors = v2.outputs(np.array([1]))
    assert v2.select(tensors, [{"name": "prediction"}]) == tensors
    with pytest.raises(v2.BadInferenceRequest, match="this model returns: prediction"):
        v2.select(tensors, [{"name": "proba"}])


@pytest.mark.parametrize("requested", [5, "prediction", ["prediction"], [{"name": 3}], {}])
def test_outputs_that_are_not_a_list_of_named_objects_are_refused(requested: object) -> None:
    with pytest.raises(v2.BadInferenceRequest, match="'outputs' must be a list of objects"):
        v2.select(v2.outputs(np.array([1])), requested)


def test_exact_integers_and_booleans_are_taken() -> None:
    body = {"inputs": [
        {"name": "x", "shape": [3], "datatype": "UINT8", "data": [0, 255, 7.0]},
        {"name": "y", "shape": [3], "datatype": "BOOL", "data": [True, False, 1]},
    ]}  # fmt: skip
    frame = v2.model_input(body, NO_SIGNATURE)
    assert frame.to_dict("list") == {"x": [0, 255, 7], "y": [True, False, True]}
    assert (frame.x.dtype, frame.y.dtype) == (np.uint8, np.bool_)


def tensor_model(dtype: str) -> InputSignature:
    return InputSignature(tensor_dtype=np.dtype(dtype))


@pytest.mark.parametrize(
    ("datatype", "declared", "taken_as"),
    [
        ("INT64", "float64", "float64"),  # what KServe and Triton clients send for an FP64 input
        ("INT32", "float64", "float64"),
        ("FP32", "float64", "float64"),
        ("INT16", "float32", "float32"),
        ("UINT8", "int64", "int64"),
        ("INT64", "float32", "int64"),  # would lose digits: left for the model's check
        ("FP64", "float32", "float64"),  # narrowing: left for the model's check to refuse
        ("BOOL", "float64", "bool"),  # booleans are not numbers
    ],
)
def test_integer_and_float_data_is_widened_to_the_declared_type_only_when_safe(
    datatype: str, declared: str, taken_as: str
) -> None:
    body = {"inputs": [{"name": "x", "shape": [1, 2], "datatype": datatype, "data": [1, 0]}]}
    array = v2.model_input(body, tensor_model(declared))
    assert array.dtype == np.dtype(taken_as)
    assert array.tolist() == [[1, 0]]


def test_columns_are_widened_to_their_declared_types() -> None:
    signature = InputSignature((
        Column("tenure", "double", True, FP64),
        Column("visits", "float", True, np.dtype(np.float32)),
        Column("plan", "string", True, None),
    ))  # fmt: skip
    body = {"inputs": [
        {"name": "tenure", "shape": [2], "datatype": "INT64", "data": [3, 4]},
        {"name": "visits", "shape": [2], "datatype": "INT16", "data": [1, 2]},
        {"name": "plan", "shape": [2], "datatype": "BYTES", "data": ["a", "b"]},
    ]}  # fmt: skip
    frame = v2.model_input(body, signature)
    assert (frame.tenure.dtype, frame.visits.dtype) == (np.float64, np.float32)
    assert frame.plan.tolist() == ["a", "b"]
    matrix = {"inputs": [{"name": "m", "shape": [1, 2], "datatype": "INT64", "data": [5, 6]}]}
    assert v2.model_input(matrix, COLUMNS).dtypes.astype(str).tolist() == ["float64", "float64"]


class Spec:
    def __init__(self, name: str | None, kind: str, shape: tuple[int, ...] = (-1,)) -> None:
        self.name, self.type, self.shape = name, np.dtype(kind), shape


class TensorSchema:
    def __init__(self, *specs: Spec) -> None:
        self.inputs = list(specs)

    def is_tensor_spec(self) -> bool:
        return True


def test_metadata_names_outputs_as_inference_names_them() -> None:
    (answer,) = v2.outputs(np.array([0.5, 1.5]))
    (described,) = v2.output_metadata(TensorSchema(Spec(None, "float64")))
    assert (described["name"], described["datatype"]) == (answer["name"], answer["datatype"])
    named = v2.output_metadata(TensorSchema(Spec("score", "float32")))
    assert [m["name"] for m in named] == ["score"]
    (unnamed_input,) = v2.input_metadata(TensorSchema(Spec(None, "float64", (-1, 2))))
    assert (unnamed_input["name"], unnamed_input["shape"]) == ("input-0", [-1, 2])


def sample(metrics: ServerMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, {"model": "churn", "version": "7", **labels})


def test_metrics_carry_the_configured_model_and_version() -> None:
    metrics = ServerMetrics("churn", "7")
    assert sample(metrics, "trailboss_model_requests_total", outcome="error") == 0
    metrics.observe(0.004, None, rows=10)
    metrics.observe(0.2, error_type(500), rows=10)
    metrics.observe(0.001, error_type(413), rows=0)
    assert sample(metrics, "trailboss_model_requests_total", outcome="ok") == 1
    assert sample(metrics, "trailboss_model_requests_total", outcome="error") == 1
    assert sample(metrics, "trailboss_model_requests_total", outcome="bad_input") == 1
    assert sample(metrics, "trailboss_model_errors_total", type="model_error") == 1
    assert sample(metrics, "trailboss_model_errors_total", type="too_large") == 1
    assert sample(metrics, "trailboss_model_predictions_total") == 10
    assert sample(metrics, "trailboss_model_request_duration_seconds_count") == 3
    assert sample(metrics, "trailboss_model_request_duration_seconds_bucket", le="0.005") == 2


@pytest.mark.parametrize(
    ("status", "kind"),
    [(200, None), (400, "bad_input"), (415, "bad_input"), (413, "too_large"), (500, "model_error"),
     (503, "not_ready"), (504, "timeout"), (502, "internal")],
)  # fmt: skip
def test_http_statuses_map_to_error_types(status: int, kind: str | None) -> None:
    assert error_type(status) == kind


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(200, "ok"), (400, "bad_input"), (404, "bad_input"), (413, "bad_input"), (415, "bad_input"),
     (500, "error"), (503, "error"), (504, "error")],
)  # fmt: skip
def test_a_clients_mistake_is_never_counted_where_canary_analysis_reads_errors(
    status: int, outcome: str
) -> None:
    metrics = ServerMetrics("churn", "7")
    metrics.observe(0.001, error_type(status), rows=1)
    counted = {o: sample(metrics, "trailboss_model_requests_total", outcome=o)
               for o in ("ok", "bad_input", "error")}  # fmt: skip
    assert counted == {"ok": 0, "bad_input": 0, "error": 0, outcome: 1}


def test_settings_name_the_flag_that_is_wrong() -> None:
    with pytest.raises(ValidationError, match="log_uri"):
        ServeSettings(model_uri="m", model_name="n", model_version="1", log_uri="/tmp/x")
    settings = ServeSettings(
        model_uri="m", model_name="churn", model_version="1", log_uri="s3://b/p/",
        log_batch_rows=5000, log_buffer_rows=100,
    )  # fmt: skip
    assert (settings.log_uri, settings.deployment_name, settings.batch_rows) == (
        "s3://b/p",
        "churn",
        100,
    )
