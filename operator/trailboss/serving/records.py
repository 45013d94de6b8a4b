"""Prediction log rows: what a request sent and got, as an Arrow table (pure).

A request's inputs and outputs arrive in whatever shape the pyfunc model took
and returned (DataFrame, Series, ndarray, dict, list). They become columns
``input.<feature>`` and ``output.<name>``: numeric values as float64, anything
else as strings (nested values as JSON), so a drift checker reads every file
the same way. The conversion runs in the logging thread, never in a request.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

OK = "ok"
ERROR = "error"
UNNAMED_OUTPUT = "prediction"
FIXED_FIELDS = (
    pa.field("request_id", pa.string()),
    pa.field("timestamp", pa.timestamp("us", tz="UTC")),
    pa.field("model", pa.string()),
    pa.field("version", pa.string()),
    pa.field("outcome", pa.string()),
)

Columns = dict[str, Any]


@dataclass(frozen=True)
class PredictionRecord:
    """One request as logged: its rows share the request id, timestamp and outcome."""

    request_id: str
    timestamp: dt.datetime
    outcome: str
    inputs: Any
    outputs: Any = None
    rows: int = 0


def row_count(data: Any) -> int:
    """Rows a model input holds, cheaply (it runs on the request path)."""
    if isinstance(data, pd.DataFrame | pd.Series):
        return len(data)
    if isinstance(data, np.ndarray):
        return 1 if data.ndim == 0 else int(data.shape[0])
    if isinstance(data, dict):
        lengths = {len(v) for v in data.values() if _is_sequence(v)}
        return lengths.pop() if len(lengths) == 1 else 1
    if isinstance(data, list | tuple):
        return len(data)
    return 1


def columns_of(data: Any, unnamed: str) -> tuple[int, Columns]:
    """Rows and named columns of a model input or output; ``unnamed`` names a lone column."""
    if isinstance(data, pd.DataFrame):
        return len(data), {str(name): data[name] for name in data.columns}
    if isinstance(data, pd.Series):
        name = unnamed if data.name is None else str(data.name)
        return len(data), {name: data}
    if isinstance(data, np.ndarray):
        return _array_columns(data, unnamed)
    if isinstance(data, dict):
        n = row_count(data)
        if n == 1 and not all(_is_sequence(v) for v in data.values()):
            return 1, {str(k): [v] for k, v in data.items()}
        return n, {str(k): v for k, v in data.items()}
    if isinstance(data, list | tuple):
        if data and all(isinstance(row, dict) for row in data):
            return columns_of(pd.DataFrame(list(data)), unnamed)
        return _array_columns(np.asarray(data, dtype=object), unnamed)
    return 1, {unnamed: [data]}


def _array_columns(array: np.ndarray[Any, Any], unnamed: str) -> tuple[int, Columns]:
    if array.ndim == 0:
        return 1, {unnamed: [array.item()]}
    if array.ndim == 1:
        return len(array), {unnamed: array}
    if array.ndim == 2:
        return len(array), {str(i): array[:, i] for i in range(array.shape[1])}
    return len(array), {unnamed: [row.tolist() for row in array]}


def _is_sequence(value: Any) -> bool:
    return isinstance(value, list | tuple | np.ndarray | pd.Series)


def to_arrow(values: Any) -> pa.Array:
    """Numbers (and booleans) as float64, anything else as strings; None stays null."""
    array = values.to_numpy() if isinstance(values, pd.Series) else np.asarray(values)
    if array.dtype.kind in "biuf":
        return pa.array(array.astype(np.float64), type=pa.float64())
    return pa.array([_as_text(v) for v in array.tolist()], type=pa.string())


def _as_text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, list | dict | tuple):
        return json.dumps(value, default=str)
    return str(value)


def record_columns(record: PredictionRecord) -> tuple[int, dict[str, pa.Array]]:
    """A record's rows as Arrow columns; outputs that do not line up with the inputs are left out
    (a model returning one value per request, say), so the row still records the inputs."""
    n, inputs = columns_of(record.inputs, "0")
    columns = {f"input.{name}": to_arrow(values) for name, values in inputs.items()}
    if record.outputs is not None:
        m, outputs = columns_of(record.outputs, UNNAMED_OUTPUT)
        if m == n:
            columns.update({f"output.{k}": to_arrow(v) for k, v in outputs.items()})
    return n, columns


def to_table(records: Sequence[PredictionRecord], model: str, version: str) -> pa.Table:
    """One table from many requests: the union of their columns, nulls where one lacks it."""
    converted = [record_columns(r) for r in records]
    names = _ordered_names(cols for _, cols in converted)
    types = {name: _common_type(cols.get(name) for _, cols in converted) for name in names}
    chunks: dict[str, list[pa.Array]] = {name: [] for name in names}
    fixed: dict[str, list[Any]] = {f.name: [] for f in FIXED_FIELDS}
    for record, (n, cols) in zip(records, converted, strict=True):
        for name in names:
            column = cols.get(name)
            chunks[name].append(
                pa.nulls(n, types[name]) if column is None else column.cast(types[name])
            )
        for field, value in zip(
            fixed,
            (record.request_id, record.timestamp, model, version, record.outcome),
            strict=True,
        ):
            fixed[field].extend([value] * n)
    arrays = [pa.array(fixed[f.name], type=f.type) for f in FIXED_FIELDS]
    arrays += [pa.concat_arrays(chunks[name]) for name in names]
    schema = pa.schema([*FIXED_FIELDS, *(pa.field(n, types[n]) for n in names)])
    return pa.Table.from_arrays(arrays, schema=schema)


def _ordered_names(column_sets: Iterable[dict[str, pa.Array]]) -> list[str]:
    """Inputs before outputs, each in first-seen order."""
    seen: dict[str, None] = {}
    for cols in column_sets:
        seen.update(dict.fromkeys(cols))
    return sorted(seen, key=lambda name: not name.startswith("input."))


def _common_type(columns: Iterable[pa.Array | None]) -> pa.DataType:
    """float64 while every request sent numbers for the column; string once one did not."""
    kinds = {c.type for c in columns if c is not None}
    return pa.float64() if kinds <= {pa.float64()} else pa.string()
