"""One Arrow table per batch of prediction records (pure): the file the drift checker reads.

Columns ``input.<feature>`` and ``output.<name>`` are float64 while every request
of the batch sent numbers for them, else strings (nested values as JSON), so a
drift checker reads every file the same way; a column a request did not send is
null in its rows.

This runs in the logging thread, which shares the interpreter lock with the
predictions, so its Python work grows with the requests and columns of a batch,
not with its values: a column's pieces are joined in one numpy or Arrow call,
and strings that pandas already keeps in Arrow are not converted at all. Only
values that are neither numbers nor strings (lists, dicts, mixed object
columns) are converted one by one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from trailboss.serving.records import Piece, RequestColumns, is_number, is_text

FLOAT = pa.float64()
STRING = pa.string()
TIMESTAMP = pa.timestamp("us", tz="UTC")
FIXED_FIELDS = (
    pa.field("request_id", STRING),
    pa.field("timestamp", TIMESTAMP),
    pa.field("model", STRING),
    pa.field("version", STRING),
    pa.field("outcome", STRING),
)


def to_table(requests: Sequence[RequestColumns], model: str, version: str) -> pa.Table:
    """One table from many requests, in their order: the union of their columns."""
    counts = np.fromiter((r.rows for r in requests), dtype=np.int64, count=len(requests))
    names = _ordered_names(r.columns for r in requests)
    columns = [_column([(r.rows, r.columns.get(name)) for r in requests]) for name in names]
    owner = np.repeat(np.arange(len(requests)), counts)  # the request of each row
    arrived = np.fromiter((r.timestamp_us for r in requests), dtype=np.int64, count=len(requests))
    fixed = [
        pa.array([r.request_id for r in requests], STRING).take(owner),
        pa.array(arrived[owner], TIMESTAMP),
        pa.repeat(pa.scalar(model, STRING), len(owner)),
        pa.repeat(pa.scalar(version, STRING), len(owner)),
        pa.array([r.outcome for r in requests], STRING).take(owner),
    ]
    schema = pa.schema(
        [*FIXED_FIELDS, *(pa.field(n, c.type) for n, c in zip(names, columns, strict=True))]
    )
    return pa.Table.from_arrays([*fixed, *columns], schema=schema)


def _column(pieces: list[tuple[int, Piece | None]]) -> pa.Array:
    """float64 while every request sent numbers for the column, else strings; nulls where a
    request did not send it."""
    if all(p is None or _is_numeric(p) for _, p in pieces):
        if all(isinstance(p, np.ndarray) for _, p in pieces):  # the usual case: one call
            values = np.concatenate([p for _, p in pieces])
            return pa.array(values.astype(np.float64, copy=False), FLOAT)
        return pa.concat_arrays([_floats(n, p) for n, p in pieces])
    texts = [None if p is None else _texts(p) for _, p in pieces]
    kind = next(t.type for t in texts if t is not None)  # pandas' strings are large_string
    joined = pa.concat_arrays(
        [
            pa.nulls(n, kind) if t is None else t if t.type == kind else t.cast(kind)
            for (n, _), t in zip(pieces, texts, strict=True)
        ]
    )
    return joined.cast(STRING)  # once per column, not once per request


def _is_numeric(piece: Piece) -> bool:
    if isinstance(piece, np.ndarray):
        return piece.ndim == 1 and piece.dtype.kind in "biuf"
    return is_number(piece.type)


def _floats(n: int, piece: Piece | None) -> pa.Array:
    if piece is None:
        return pa.nulls(n, FLOAT)
    if isinstance(piece, np.ndarray):
        return pa.array(piece.astype(np.float64, copy=False), FLOAT)
    return piece.cast(FLOAT, safe=False)  # large integers round, as numpy's would


def _texts(piece: Piece) -> pa.Array:
    """Strings as they are (Arrow's, or numpy's in one call), anything else value by value."""
    if isinstance(piece, pa.Array):
        if is_text(piece.type):
            return piece
        return pa.array([_as_text(v) for v in piece.to_pylist()], STRING)
    if piece.ndim == 1 and piece.dtype.kind in "OU":
        try:
            arrow = pa.array(piece, from_pandas=True)  # None and NaN become null
        except (pa.ArrowException, TypeError, ValueError, OverflowError):
            arrow = None  # mixed values: converted one by one below
        if arrow is not None and is_text(arrow.type):
            return arrow
    return pa.array([_as_text(v) for v in piece.tolist()], STRING)


def _as_text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, list | dict | tuple | np.ndarray):
        return json.dumps(value.tolist() if isinstance(value, np.ndarray) else value, default=str)
    return str(value)


def _ordered_names(column_sets: Iterable[dict[str, Any]]) -> list[str]:
    """Inputs before outputs, each in first-seen order."""
    seen: dict[str, None] = {}
    for cols in column_sets:
        seen.update(dict.fromkeys(cols))
    return sorted(seen, key=lambda name: not name.startswith("input."))
