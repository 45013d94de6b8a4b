"""Prediction log rows and where they land: the contract the drift checker reads."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from trailboss.serving import tables
from trailboss.serving.partitions import LogLocation, hour_of
from trailboss.serving.records import PredictionRecord, columns_of, request_columns, row_count

WHEN = dt.datetime(2026, 11, 23, 14, 5, 9, 123456, tzinfo=dt.UTC)
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def micros(when: dt.datetime) -> int:
    return (when - EPOCH) // dt.timedelta(microseconds=1)


def to_table(records: list[PredictionRecord], model: str, version: str) -> pa.Table:
    """What the logging thread does with a batch: take each request apart, then one table."""
    return tables.to_table([request_columns(r) for r in records], model, version)


def record(
    inputs: object, outputs: object = None, outcome: str = "ok", rid: str = "r1"
) -> PredictionRecord:
    return PredictionRecord(rid, micros(WHEN), outcome, inputs, outputs, row_count(inputs))


def test_a_ten_row_request_gives_ten_rows_sharing_its_request_id() -> None:
    frame = pd.DataFrame({"tenure": np.arange(10), "plan": ["basic"] * 10})
    table = to_table([record(frame, np.arange(10) % 2)], "churn", "7")
    assert table.num_rows == 10
    assert set(table.column("request_id").to_pylist()) == {"r1"}
    assert table.schema.field("timestamp").type == pa.timestamp("us", tz="UTC")
    assert table.column("timestamp")[0].as_py() == WHEN
    assert table.column("model").to_pylist() == ["churn"] * 10
    assert table.column("version").to_pylist() == ["7"] * 10
    assert table.schema.field("input.tenure").type == pa.float64()
    assert table.schema.field("input.plan").type == pa.string()
    assert table.column("output.prediction").to_pylist() == [float(i % 2) for i in range(10)]
    assert table.column_names[:5] == ["request_id", "timestamp", "model", "version", "outcome"]


def test_a_failed_request_keeps_its_inputs_with_null_outputs() -> None:
    ok = record(pd.DataFrame({"x": [1.0]}), np.array([0.5]), rid="a")
    failed = record(pd.DataFrame({"x": [2.0, 3.0]}), None, outcome="error", rid="b")
    table = to_table([ok, failed], "m", "1")
    assert table.column("outcome").to_pylist() == ["ok", "error", "error"]
    assert table.column("output.prediction").to_pylist() == [0.5, None, None]
    assert table.column("input.x").to_pylist() == [1.0, 2.0, 3.0]


def test_a_column_one_request_sent_as_text_becomes_text_for_the_whole_file() -> None:
    numbers = record(pd.DataFrame({"zip": [1234]}), rid="a")
    text = record(pd.DataFrame({"zip": ["SW1A"]}), rid="b")
    table = to_table([numbers, text], "m", "1")
    assert table.schema.field("input.zip").type == pa.string()
    assert table.column("input.zip").to_pylist() == ["1234", "SW1A"]


def test_requests_with_different_columns_share_a_file_with_nulls() -> None:
    table = to_table([record({"a": [1]}, rid="1"), record({"b": ["x"]}, rid="2")], "m", "1")
    assert table.column("input.a").to_pylist() == [1.0, None]
    assert table.column("input.b").to_pylist() == [None, "x"]


@pytest.mark.parametrize(
    ("data", "rows", "names"),
    [
        (pd.DataFrame({"a": [1, 2], "b": [3, 4]}), 2, ["a", "b"]),
        (np.zeros((3, 2)), 3, ["0", "1"]),
        (np.zeros(4), 4, ["prediction"]),
        (pd.Series([1, 2], name="score"), 2, ["score"]),
        (pd.Series([1, 2]), 2, ["prediction"]),
        ({"a": [1, 2], "b": [3, 4]}, 2, ["a", "b"]),
        ({"a": 1, "b": "x"}, 1, ["a", "b"]),
        ([{"a": 1}, {"a": 2}], 2, ["a"]),
        (["hello", "world"], 2, ["prediction"]),
        ("one prompt", 1, ["prediction"]),
    ],
)
def test_every_shape_a_pyfunc_model_takes_or_returns_becomes_named_columns(
    data: object, rows: int, names: list[str]
) -> None:
    n, columns = columns_of(data, "prediction")
    assert (n, list(columns)) == (rows, names)


def test_outputs_that_do_not_line_up_with_the_rows_are_left_out_not_misaligned() -> None:
    table = to_table([record(pd.DataFrame({"x": [1, 2, 3]}), np.array([1.0]))], "m", "1")
    assert table.num_rows == 3
    assert "output.prediction" not in table.column_names


def test_a_two_column_output_is_numbered() -> None:
    table = to_table(
        [record(pd.DataFrame({"x": [1, 2]}), np.array([[0.1, 0.9], [0.8, 0.2]]))], "m", "1"
    )
    assert table.column("output.1").to_pylist() == [0.9, 0.2]


def test_nested_values_are_written_as_json_text() -> None:
    table = to_table([record({"tags": [["a", "b"]]})], "m", "1")
    assert table.column("input.tags").to_pylist() == ['["a", "b"]']


def test_a_batch_of_many_requests_has_each_requests_values_in_order() -> None:
    """What MLflow hands the model for JSON input: float columns and pandas' Arrow-backed
    strings, with missing values; predictions as a numpy array."""
    frames = [
        pd.DataFrame(
            {"tenure": [float(i), float("nan")], "plan": pd.Series(["basic", None], dtype="str")}
        )
        for i in range(50)
    ]
    records = [record(f, np.array([i, i + 1]), rid=f"r{i}") for i, f in enumerate(frames)]
    table = to_table(records, "churn", "7")
    assert table.num_rows == 100
    assert table.column("request_id").to_pylist() == [f"r{i // 2}" for i in range(100)]
    assert table.schema.field("input.plan").type == pa.string()
    assert table.column("input.plan").to_pylist() == ["basic", None] * 50
    tenure = table.column("input.tenure").to_numpy()
    assert tenure[::2].tolist() == [float(i) for i in range(50)]
    assert np.isnan(tenure[1::2]).all()
    assert table.column("output.prediction").to_pylist() == [
        float(i // 2 + i % 2) for i in range(100)
    ]


def test_nullable_numbers_stay_numbers_with_nulls() -> None:
    table = to_table([record(pd.DataFrame({"n": pd.array([1, None], dtype="Int64")}))], "m", "1")
    assert table.schema.field("input.n").type == pa.float64()
    assert table.column("input.n").to_pylist() == [1.0, None]


def test_a_column_of_mixed_values_is_text_value_by_value() -> None:
    mixed = record(pd.DataFrame({"v": np.array([1, "a", None, b"x"], dtype=object)}), rid="a")
    strings = record(pd.DataFrame({"v": pd.Series(["s"], dtype="str")}), rid="b")
    table = to_table([mixed, strings], "m", "1")
    assert table.column("input.v").to_pylist() == ["1", "a", None, "b'x'", "s"]


def test_object_keys_follow_the_partition_contract() -> None:
    location = LogLocation.from_uri("s3://logs/serving/", "ml", "churn", "7")
    written = dt.datetime(2026, 11, 23, 15, 0, 1, 500000, tzinfo=dt.UTC)
    key = location.object_key(WHEN, written, token="abcd1234")
    assert location.bucket == "logs"
    assert key == (
        "serving/deployment=ml.churn/version=7/date=2026-11-23/hour=14/"
        f"part-{int(written.timestamp() * 1000)}-abcd1234.parquet"
    )


def test_keys_are_unique_and_partitioned_in_utc() -> None:
    location = LogLocation.from_uri("s3://logs", "ml", "churn", "7")
    local = dt.datetime(2026, 1, 1, 0, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert location.partition(local).endswith("date=2025-12-31/hour=22")
    assert location.object_key(WHEN, WHEN) != location.object_key(WHEN, WHEN)
    assert hour_of(WHEN) == dt.datetime(2026, 11, 23, 14, tzinfo=dt.UTC)


@pytest.mark.parametrize("uri", ["http://logs/x", "s3://", "logs/x"])
def test_a_log_uri_that_is_not_s3_is_refused(uri: str) -> None:
    with pytest.raises(ValueError, match="s3://"):
        LogLocation.from_uri(uri, "ml", "churn", "7")
