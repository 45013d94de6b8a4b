"""Build a reference profile from a CSV or Parquet file, one column at a time."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from trailboss.api.monitoring import FeatureType
from trailboss.drift import profile as profiles
from trailboss.drift.columns import categorical_reference, numeric_reference
from trailboss.drift.tables import (
    as_floats,
    category_counts,
    csv_to_parquet,
    is_numeric_type,
    is_text_type,
    parses_as_numbers,
)

LOG_COLUMNS = frozenset({"request_id", "timestamp", "model", "version", "outcome"})
"""Bookkeeping columns of a prediction log, never features: a window of logs
can serve as reference data."""


@dataclass(frozen=True)
class ProfileOptions:
    outputs: dict[str, str] = field(default_factory=dict)
    """Reference column -> prediction name, e.g. the label as `output.prediction`'s reference."""
    exclude: frozenset[str] = frozenset()
    """Reference columns that are not features (ids, timestamps)."""
    types: dict[str, FeatureType] = field(default_factory=dict)
    """Type overrides by reference column."""
    sample_rows: int = profiles.DEFAULT_SAMPLE_ROWS


def feature_name(column: str, options: ProfileOptions) -> str | None:
    """The name a reference column is checked under, or None when it is not a feature."""
    if column in options.exclude or column in LOG_COLUMNS:
        return None
    if column in options.outputs:
        return f"output.{options.outputs[column]}"
    if column.startswith("input."):
        return column[len("input.") :]
    return column


def as_parquet(source: Path, workdir: Path) -> Path:
    """Parquet as it is; CSV (by name, else by content) rewritten as strings."""
    if source.suffix.lower() in {".parquet", ".pq"}:
        return source
    try:
        pq.read_metadata(source)
        return source
    except (pa.ArrowInvalid, OSError):
        target = workdir / "reference.parquet"
        csv_to_parquet(source, target)
        return target


def infer_type(column: pa.ChunkedArray, override: FeatureType | None) -> FeatureType | None:
    """Numbers are numeric (also in a CSV's strings), text is categorical;
    other types (timestamps, lists) are not features."""
    if override is not None:
        return override
    if is_numeric_type(column.type):
        return FeatureType.NUMERIC
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return FeatureType.NUMERIC if parses_as_numbers(column) else FeatureType.CATEGORICAL
    if is_text_type(column.type):
        return FeatureType.CATEGORICAL
    return None


def build(source_uri: str, data: Path, workdir: Path, options: ProfileOptions) -> tuple[str, int]:
    """Profile `data` into `workdir`; returns the digest and the number of rows."""
    table_path = as_parquet(data, workdir)
    schema = pq.read_schema(table_path)
    rows = pq.read_metadata(table_path).num_rows
    if rows == 0:
        raise ValueError(f"{source_uri} has no rows: a reference profile needs data")
    result = profiles.Profile(
        source=source_uri,
        rows=rows,
        created_at=dt.datetime.now(dt.UTC),
        sample_rows=options.sample_rows,
    )
    samples: dict[str, np.ndarray[Any, Any]] = {}
    for column in schema.names:
        name = feature_name(column, options)
        if name is None:
            continue
        values = pq.read_table(table_path, columns=[column]).column(0)
        kind = infer_type(values, options.types.get(column) or options.types.get(name))
        if kind is None:
            result.skipped[name] = f"type {values.type} is neither numeric nor text"
        elif kind == FeatureType.NUMERIC:
            floats, bad = as_floats(values)
            ref = numeric_reference(floats, options.sample_rows)
            result.columns[name] = profiles.column_meta(ref, rows - ref.rows)
            result.columns[name]["notNumbers"] = bad
            samples[name] = ref.sample
        else:
            counts, missing = category_counts(values)
            ref_c = categorical_reference(list(counts), list(counts.values()))
            result.columns[name] = profiles.column_meta(ref_c, missing)
        del values
    if not result.columns:
        raise ValueError(
            f"{source_uri} has no numeric or text columns to profile (columns: {schema.names})"
        )
    return profiles.write(result, samples, workdir), rows
