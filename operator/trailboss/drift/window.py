"""The current window: prediction logs of one served version, spooled to local
disk, read back one column at a time. Only the columns a check measures are
fetched (see `fetch`), with the two that say which rows count.

Layout written by the model server:
``{prefix}/deployment={namespace}.{name}/version={version}/date={YYYY-MM-DD}/hour={HH}/part-*.parquet``
with ``request_id``, ``timestamp``, ``model``, ``version``, ``outcome``,
``input.<feature>`` and ``output.<name>`` columns. Only rows with outcome
``ok`` and a timestamp inside the window [start, end) count: rows stamped at
or after the check's time belong to a later window.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from trailboss.drift.columns import (
    CategoricalCurrent,
    NumericCurrent,
    categorical_reference,
    sorted_current,
)
from trailboss.drift.fetch import fetch_columns
from trailboss.drift.stats import Floats
from trailboss.drift.store import ObjectStore, join
from trailboss.drift.tables import as_floats, category_counts

Mask = np.ndarray[tuple[int], np.dtype[np.bool_]]
BOOKKEEPING = ("request_id", "timestamp", "model", "version", "outcome")
ROW_FILTER = ("timestamp", "outcome")
"""The columns that say which rows count; fetched whatever a check measures."""


def hour_prefixes(
    logs_uri: str, deployment: str, version: str, start: dt.datetime, end: dt.datetime
) -> list[str]:
    """The hour partitions that can hold rows of [start, end], plus the hour
    before start in case a file is filed under its first row's hour."""
    base = join(logs_uri, f"deployment={deployment}", f"version={version}")
    hour = (
        (start - dt.timedelta(hours=1))
        .astimezone(dt.UTC)
        .replace(minute=0, second=0, microsecond=0)
    )
    prefixes = []
    while hour <= end:
        prefixes.append(join(base, f"date={hour:%Y-%m-%d}", f"hour={hour:%H}", ""))
        hour += dt.timedelta(hours=1)
    return prefixes


@dataclass
class LogFile:
    path: Path
    columns: frozenset[str]
    keep: Mask
    """Rows that count: outcome ok, timestamp in the window."""


@dataclass
class Window:
    files: list[LogFile] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    """Files that could not be read, and why."""

    @property
    def rows(self) -> int:
        return sum(int(f.keep.sum()) for f in self.files)

    def columns(self) -> set[str]:
        return set().union(*(f.columns for f in self.files)) - set(BOOKKEEPING)

    def numeric(self, column: str) -> NumericCurrent | None:
        """Valid values of a column across the window, sorted; None when no file has it.
        Missing values and text that is not a number count as invalid (NaN)."""
        if not any(column in f.columns for f in self.files):
            return None
        values: Floats = np.empty(self.rows)
        filled = 0
        for array, rows in self._parts(column):
            if array is not None:
                values[filled : filled + rows] = as_floats(array)[0]
            else:
                values[filled : filled + rows] = np.nan
            filled += rows
        return sorted_current(values)

    def categorical(self, column: str) -> CategoricalCurrent | None:
        """Rows per category across the window; None when no file has it."""
        if not any(column in f.columns for f in self.files):
            return None
        totals: dict[str, int] = {}
        missing = 0
        for array, rows in self._parts(column, as_codes=True):
            if array is None:
                missing += rows
                continue
            counts, nulls = category_counts(array)
            missing += nulls
            for label, count in counts.items():
                totals[label] = totals.get(label, 0) + count
        ref = categorical_reference(list(totals), list(totals.values()))
        return CategoricalCurrent(ref.categories, ref.counts, missing)

    def _parts(
        self, column: str, as_codes: bool = False
    ) -> Iterator[tuple[pa.ChunkedArray | None, int]]:
        """Each file's kept rows of the column; None (with the row count) where it
        is absent. `as_codes` keeps text dictionary-encoded, as Parquet stores it,
        so counting categories never decodes the strings."""
        dictionary = [column] if as_codes else None
        for log in self.files:
            kept = int(log.keep.sum())
            if column not in log.columns:
                yield None, kept
                continue
            array = pq.read_table(log.path, columns=[column], read_dictionary=dictionary)
            yield array.column(0).filter(pa.array(log.keep)), kept


def spool(
    store: ObjectStore,
    prefixes: list[str],
    start: dt.datetime,
    end: dt.datetime,
    workdir: Path,
    columns: Collection[str],
) -> Window:
    """Fetch the window's Parquet files, with of their data only `columns`
    and the row filter's, and mark the rows that count. Every file's column
    names come from its footer, so a column the profile lacks is still seen."""
    window = Window()
    fetched = {*ROW_FILTER, *columns}
    for prefix in prefixes:
        for uri in store.keys(prefix):
            if not uri.endswith(".parquet"):
                continue
            path = workdir / f"{len(window.files) + len(window.skipped):06d}.parquet"
            try:
                fetch_columns(store, uri, path, fetched)
                window.files.append(open_log(path, start, end))
            except (pa.ArrowException, OSError, ValueError) as error:
                window.skipped[uri] = str(error)
                path.unlink(missing_ok=True)
    return window


def open_log(path: Path, start: dt.datetime, end: dt.datetime) -> LogFile:
    """A local prediction log and its rows that count (outcome ok, stamped in
    [start, end)); ValueError when it is not a prediction log."""
    schema = pq.read_schema(path)
    for needed in ("timestamp", "outcome"):
        if needed not in schema.names:
            raise ValueError(f"no {needed} column: not a prediction log")
    table = pq.read_table(path, columns=["timestamp", "outcome"])
    stamps = table.column("timestamp")
    if not pa.types.is_timestamp(stamps.type):
        raise ValueError(f"timestamp column is {stamps.type}, not a timestamp")
    since = pa.scalar(start.astimezone(dt.UTC), pa.timestamp("us", tz="UTC"))
    until = pa.scalar(end.astimezone(dt.UTC), pa.timestamp("us", tz="UTC"))
    utc = stamps.cast(pa.timestamp("us", tz="UTC"))
    keep = pc.and_(
        pc.equal(table.column("outcome"), "ok"),
        pc.and_(pc.greater_equal(utc, since), pc.less(utc, until)),
    )
    mask = np.asarray(pc.fill_null(keep, False).to_numpy(zero_copy_only=False), dtype=np.bool_)
    return LogFile(path=path, columns=frozenset(schema.names), keep=mask)
