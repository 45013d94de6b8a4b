"""Columns of local CSV and Parquet files, one at a time, as numbers or categories.

A CSV is first rewritten as a Parquet file of strings, batch by batch, so that
reading one column never parses or holds the whole file.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from trailboss.drift.columns import category_label
from trailboss.drift.stats import Floats

NUMBER = r"^\s*[-+]?(\d+\.?\d*([eE][-+]?\d+)?|\.\d+([eE][-+]?\d+)?|inf|Infinity|nan|NaN)\s*$"
"""What counts as a number in a string column."""


def csv_to_parquet(source: Path, target: Path, block_bytes: int = 16 << 20) -> None:
    """Rewrite a CSV as Parquet with every column a string, streaming."""
    with source.open(newline="") as handle:
        header = next(csv.reader(handle), [])
    if not header:
        raise ValueError(f"{source.name} is empty: a reference CSV needs a header row")
    reader = pacsv.open_csv(
        source,
        read_options=pacsv.ReadOptions(block_size=block_bytes),
        convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(header, pa.string()), strings_can_be_null=True
        ),
    )
    with pq.ParquetWriter(target, reader.schema) as writer:
        for batch in reader:
            writer.write_batch(batch)


def is_numeric_type(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)
    )


def is_text_type(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_dictionary(kind)
        or pa.types.is_boolean(kind)
    )


def parses_as_numbers(column: pa.ChunkedArray) -> bool:
    """Whether every non-empty value of a string column is a number."""
    if column.null_count == len(column):
        return False
    return bool(pc.all(pc.match_substring_regex(column.drop_null(), NUMBER)).as_py())


def as_floats(column: pa.ChunkedArray | pa.Array) -> tuple[Floats, int]:
    """A column as float64, with NaN for missing values and values that are
    not numbers; also how many values were not numbers."""
    kind = column.type
    if pa.types.is_dictionary(kind):
        column = column.cast(kind.value_type)
        kind = column.type
    if is_numeric_type(kind):
        return column.cast(pa.float64()).to_numpy(zero_copy_only=False).astype(np.float64), 0
    if not is_text_type(kind) or pa.types.is_boolean(kind):
        return np.full(len(column), np.nan), len(column) - column.null_count
    text = column.cast(pa.string())
    numeric = pc.fill_null(pc.match_substring_regex(text, NUMBER), False)
    bad = int(pc.sum(pc.invert(numeric)).as_py() or 0) - text.null_count
    parsed = pc.if_else(numeric, text, pa.scalar(None, pa.string())).cast(pa.float64())
    return parsed.to_numpy(zero_copy_only=False).astype(np.float64), bad


def category_counts(column: pa.ChunkedArray | pa.Array) -> tuple[dict[str, int], int]:
    """Rows per category, and how many values were missing. Numbers are
    labelled as the reference labels them (`1`, `2.5`)."""
    kind = column.type
    if pa.types.is_dictionary(kind) and not is_numeric_type(kind.value_type):
        return _dictionary_counts(column)
    if pa.types.is_dictionary(kind):
        column = column.cast(kind.value_type)
        kind = column.type
    if is_numeric_type(kind):
        values, _ = as_floats(column)
        finite = values[np.isfinite(values)]
        distinct, counts = np.unique(finite, return_counts=True)
        labelled: dict[str, int] = {}
        for value, count in zip(distinct, counts, strict=True):
            label = category_label(float(value))
            labelled[label] = labelled.get(label, 0) + int(count)
        return labelled, len(values) - int(finite.size)
    text = column.cast(pa.string())
    counts_table = pc.value_counts(text.drop_null())
    found = {
        str(v): int(c)
        for v, c in zip(
            counts_table.field("values").to_pylist(),
            counts_table.field("counts").to_pylist(),
            strict=True,
        )
    }
    return found, text.null_count


def _dictionary_counts(column: pa.ChunkedArray | pa.Array) -> tuple[dict[str, int], int]:
    """`category_counts` of a dictionary-encoded column (as Parquet stores text):
    the codes are counted and each distinct value labelled once, so no string of
    the column is hashed or copied."""
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    found: dict[str, int] = {}
    missing = 0
    for chunk in chunks:
        codes = chunk.indices
        missing += codes.null_count
        tally = np.bincount(
            np.asarray(codes.drop_null() if codes.null_count else codes),
            minlength=len(chunk.dictionary),
        )
        labels = chunk.dictionary.cast(pa.string()).to_pylist()  # as for text: `true`
        for value, count in zip(labels, tally.tolist(), strict=True):
            if value is None:
                missing += count  # a null in the dictionary is a missing value too
            elif count:
                found[str(value)] = found.get(str(value), 0) + count
    return found, missing
