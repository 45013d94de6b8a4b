"""Category counts are the same whether a column arrives as text or
dictionary-encoded (as Parquet stores text and the drift Job reads it)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.unit.driftlogs import log_table, write_local
from trailboss.drift import window
from trailboss.drift.tables import category_counts

NOW = dt.datetime(2026, 5, 4, 12, 0, tzinfo=dt.UTC)


def _plain(column: pa.ChunkedArray) -> pa.ChunkedArray:
    return pa.chunked_array([c.cast(c.type.value_type) for c in column.chunks])


@pytest.mark.parametrize(
    "chunks",
    [
        [["red", "green", "red", None, "blue"]],
        [["red", None, "TRUE"], ["green", "red"], [], [None, None]],
        [["b", "a"], ["a", "c", "c"]],
    ],
)
def test_dictionary_encoded_text_counts_as_its_text(chunks: list[list[str | None]]) -> None:
    encoded = pa.chunked_array(
        [pa.array(c, pa.string()).dictionary_encode() for c in chunks],
        pa.dictionary(pa.int32(), pa.string()),
    )
    assert category_counts(encoded) == category_counts(_plain(encoded))


def test_a_null_in_the_dictionary_is_a_missing_value() -> None:
    encoded = pa.DictionaryArray.from_arrays(
        pa.array([0, 1, 1, None, 2], pa.int32()), pa.array(["a", None, "b"])
    )
    assert category_counts(encoded) == ({"a": 1, "b": 1}, 3)


def test_booleans_and_numbers_in_a_dictionary_keep_their_labels() -> None:
    flags = pa.array([True, False, True, None]).dictionary_encode()
    assert category_counts(flags) == category_counts(flags.cast(pa.bool_()))
    numbers = pa.array([1.0, 2.5, 1.0, None]).dictionary_encode()
    assert category_counts(numbers) == ({"1": 2, "2.5": 1}, 1)


def test_a_window_counts_categories_as_the_logs_hold_them(tmp_path: Path) -> None:
    plans = ["basic", "pro", None, "basic", "team"] * 40
    files = []
    for part in range(2):
        table = log_table(NOW - dt.timedelta(minutes=10), {"plan": plans[part:]}, errors=3)
        path = write_local(table, tmp_path, f"part-{part}.parquet")
        files.append(window.open_log(path, NOW - dt.timedelta(hours=1), NOW))
    current = window.Window(files=files).categorical("input.plan")
    assert current is not None
    expected: dict[str, int] = {}
    missing = 0
    for log in files:
        column = pq.read_table(log.path, columns=["input.plan"]).column(0)
        counts, nulls = category_counts(column.filter(pa.array(log.keep)))
        missing += nulls
        for label, count in counts.items():
            expected[label] = expected.get(label, 0) + count
    assert dict(zip(current.categories, current.counts.tolist(), strict=True)) == expected
    assert current.invalid == missing
