"""Open Inference Protocol v2 conversions, and the server's metrics and settings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from trailboss.serving import v2
from trailboss.serving.config import ServeSettings
from trailboss.serving.metrics import ServerMetrics, error_type

COLUMNS = ["tenure", "spend"]


def fp64(name: str, shape: list[int], data: list[float]) -> dict[str, object]:
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
    array = v2.model_input({"inputs": [fp64("x", [1, 3], [1, 2, 3])]}, None)
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


def sample(metrics: ServerMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, {"model": "churn", "version": "7", **labels})


def test_metrics_carry_the_configured_model_and_version() -> None:
    metrics = ServerMetrics("churn", "7")
    assert sample(metrics, "trailboss_model_requests_total", outcome="error") == 0
    metrics.observe(0.004, None, rows=10)
    metrics.observe(0.2, error_type(500), rows=10)
    metrics.observe(0.001, error_type(413), rows=0)
    assert sample(metrics, "trailboss_model_requests_total", outcome="ok") == 1
    assert sample(metrics, "trailboss_model_requests_total", outcome="error") == 2
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
