"""Prediction log records: what a request sent and got, and the columns it makes (pure).

A request's inputs and outputs arrive in whatever shape the pyfunc model took
and returned (DataFrame, Series, ndarray, dict, list). The request path only
keeps references to them in a :class:`PredictionRecord`; the logging thread
finds their columns here (``input.<feature>`` and ``output.<name>``), each as
the array the request already held, and :mod:`trailboss.serving.tables`
turns a whole batch of them into one Arrow table.
"""

from __future__ import annotations

from typing import Any, NamedTuple, TypeAlias

import numpy as np
import pandas as pd
import pyarrow as pa

OK = "ok"
ERROR = "error"
UNNAMED_OUTPUT = "prediction"

Columns = dict[str, Any]
Piece: TypeAlias = np.ndarray[Any, Any] | pa.Array
"""One request's values of one column: numpy as the request held them, or the Arrow array
behind a pandas column that already keeps its values in Arrow (pandas' default strings)."""


class PredictionRecord(NamedTuple):
    """One request as logged: references to what it sent and got, nothing converted.

    A tuple, so that making one on the request path costs a fraction of a microsecond;
    its rows share the request id, timestamp and outcome."""

    request_id: str
    timestamp_us: int
    """When the request arrived: microseconds since the epoch, UTC."""
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
        return len(data), _frame_columns(data)
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


def _frame_columns(frame: pd.DataFrame) -> Columns:
    """A DataFrame's columns as arrays, without building a Series for each (10x faster)."""
    column_array = getattr(frame, "_get_column_array", None)
    if column_array is None or not frame.columns.is_unique:
        return {str(name): frame[name] for name in frame.columns}
    return {str(name): column_array(i) for i, name in enumerate(_names(frame.columns))}


def _names(index: pd.Index) -> list[Any]:
    """Column labels; iterating an index of pandas' Arrow-backed strings costs microseconds
    a label, reading its Arrow array does not."""
    if isinstance(index.dtype, pd.StringDtype):
        names: list[Any] = pa.array(index.array).to_pylist()
        return names
    return list(index)


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


def _piece(values: Any) -> Piece:
    """A column as the arrays the request already holds: pandas' Arrow-backed columns (its
    strings, nullable numbers) as their Arrow array, anything else as numpy, flattened
    when it is one value per row."""
    if type(values) is np.ndarray and values.ndim == 1:  # the usual case, first
        return values
    if isinstance(values, pd.Series):
        values = values.array
    if hasattr(values, "__arrow_array__"):
        arrow = _arrow(values)
        if arrow is not None and (is_number(arrow.type) or is_text(arrow.type)):
            return arrow
    array = np.asarray(values)
    return array.reshape(-1) if array.ndim > 1 and array.size == len(array) else array


def _arrow(values: Any) -> pa.Array | None:
    try:
        arrow: pa.Array | pa.ChunkedArray = pa.array(values)
    except (pa.ArrowException, TypeError, ValueError):
        return None
    return arrow.combine_chunks() if isinstance(arrow, pa.ChunkedArray) else arrow


_NUMBERS = frozenset(
    kind().id
    for kind in (pa.int8, pa.int16, pa.int32, pa.int64, pa.uint8, pa.uint16, pa.uint32,
                 pa.uint64, pa.float16, pa.float32, pa.float64, pa.bool_)
)  # fmt: skip
_TEXTS = frozenset((pa.string().id, pa.large_string().id))


def is_number(kind: pa.DataType) -> bool:
    return kind.id in _NUMBERS


def is_text(kind: pa.DataType) -> bool:
    return kind.id in _TEXTS


class RequestColumns(NamedTuple):
    """A record once the logging thread has taken it apart: its columns as arrays (the
    request's own, not copies), ready to be joined with the other requests of a batch."""

    request_id: str
    timestamp_us: int
    outcome: str
    rows: int
    columns: dict[str, Piece]


def request_columns(record: PredictionRecord) -> RequestColumns:
    """A record's rows as named pieces; outputs that do not line up with the inputs are left out
    (a model returning one value per request, say), so the row still records the inputs."""
    n, inputs = columns_of(record.inputs, "0")
    columns = {f"input.{name}": _piece(values) for name, values in inputs.items()}
    if record.outputs is not None:
        m, outputs = columns_of(record.outputs, UNNAMED_OUTPUT)
        if m == n:
            columns.update({f"output.{k}": _piece(v) for k, v in outputs.items()})
    return RequestColumns(record.request_id, record.timestamp_us, record.outcome, n, columns)
