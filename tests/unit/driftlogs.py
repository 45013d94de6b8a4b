"""Prediction logs as the model server writes them, for drift tests."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def log_table(
    start: dt.datetime,
    inputs: dict[str, Any],
    outputs: dict[str, Any] | None = None,
    *,
    errors: int = 0,
    seconds: float = 60.0,
    version: str = "churn-v1",
) -> pa.Table:
    """One Parquet part: rows spread over `seconds` from `start`; the last
    `errors` rows are failed predictions (outcome "error")."""
    rows = len(next(iter(inputs.values())))
    offsets = np.linspace(0, seconds * 1e6, rows, endpoint=False).astype(np.int64)
    base = int(start.timestamp() * 1e6)
    outcome = ["ok"] * (rows - errors) + ["error"] * errors
    columns: dict[str, Any] = {
        "request_id": pa.array([uuid.uuid4().hex for _ in range(rows)]),
        "timestamp": pa.array(base + offsets, pa.timestamp("us", tz="UTC")),
        "model": pa.array(["churn"] * rows),
        "version": pa.array([version] * rows),
        "outcome": pa.array(outcome),
    }
    for name, values in inputs.items():
        columns[f"input.{name}"] = _column(values)
    for name, values in (outputs or {}).items():
        columns[f"output.{name}"] = _column(values)
    return pa.table(columns)


def _column(values: Any) -> pa.Array:
    array = np.asarray(values)
    if array.dtype.kind in "fiu":
        return pa.array(array.astype(np.float64))
    return pa.array([None if v is None else str(v) for v in values], pa.string())


def log_key(prefix: str, deployment: str, version: str, when: dt.datetime) -> str:
    """The object key the contract gives a part flushed at `when`."""
    ms = int(when.timestamp() * 1000)
    return (
        f"{prefix}/deployment={deployment}/version={version}/date={when:%Y-%m-%d}/"
        f"hour={when:%H}/part-{ms}-{uuid.uuid4().hex[:8]}.parquet"
    )


def write_local(table: pa.Table, directory: Path, name: str) -> Path:
    path = directory / name
    pq.write_table(table, path)
    return path
