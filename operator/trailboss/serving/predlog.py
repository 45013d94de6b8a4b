"""Prediction logging: a bounded queue that a background thread writes to S3 as Parquet.

A prediction only puts a reference to what it sent and got on the queue (a
:class:`~trailboss.serving.records.PredictionRecord`, a tuple made in well
under a microsecond), under a lock held for as long; it converts nothing and
copies nothing. The logging thread, which shares the interpreter lock with
the predictions, works when a batch is due: it takes each request apart into
its column arrays, builds one Arrow table for the batch (work per request and
per column, never per value), encodes it as Parquet and uploads it, one file
per UTC hour. Taking requests apart as they arrive instead would free their
DataFrames sooner and spare the garbage collector some rescanning, but the
extra wake-ups cost the logging thread more than that saves (measured).

When S3 is slow or down the buffer fills up and further rows are dropped and
counted (``trailboss_model_log_rows_total{result="dropped"}``): a prediction
is never blocked or failed by its log.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from trailboss.serving.partitions import LogLocation, hour_of
from trailboss.serving.records import PredictionRecord, RequestColumns, request_columns
from trailboss.serving.tables import to_table

log = logging.getLogger(__name__)


class Sink(Protocol):
    """Stores one object; raises when it could not."""

    def write(self, bucket: str, key: str, body: bytes) -> None: ...


class LogCounters(Protocol):
    def rows_written(self, n: int) -> None: ...
    def rows_dropped(self, n: int) -> None: ...
    def batch_failed(self) -> None: ...


@dataclass(frozen=True)
class LogPolicy:
    sample_rate: float = 1.0
    batch_rows: int = 1000
    buffer_rows: int = 20_000
    flush_seconds: float = 10.0


class PredictionLogger:
    def __init__(
        self,
        location: LogLocation,
        sink: Sink,
        counters: LogCounters,
        policy: LogPolicy,
        *,
        model: str,
        clock: Callable[[], float] = time.monotonic,
        sample: Callable[[], float] = random.random,
    ) -> None:
        self.location, self.policy, self.model = location, policy, model
        self._sink, self._counters, self._clock, self._sample = sink, counters, clock, sample
        self._sample_rate, self._batch_rows = policy.sample_rate, policy.batch_rows
        self._buffer_rows = policy.buffer_rows
        self._queue: deque[tuple[float, PredictionRecord]] = deque()  # (arrival, record)
        self._rows = 0
        self._stopping = False
        self._ready = threading.Condition(threading.Lock())
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)

    @property
    def buffered_rows(self) -> int:
        return self._rows

    # -- request path -------------------------------------------------------------

    def record(self, record: PredictionRecord) -> None:
        """Queue a request's record, or drop and count its rows when the buffer is full.

        The one call on the request path: a draw, a comparison and an append."""
        rows = record.rows
        if rows == 0 or (self._sample_rate < 1.0 and self._sample() >= self._sample_rate):
            return
        with self._ready:
            dropped = self._rows + rows > self._buffer_rows
            if not dropped:
                first = not self._queue
                self._queue.append((self._clock(), record))
                self._rows += rows
                if first or self._rows >= self._batch_rows:
                    self._ready.notify()  # a first row starts the flush-interval clock
        if dropped:
            self._counters.rows_dropped(rows)

    # -- logging thread -----------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        """Write what is buffered (SIGTERM path); whatever is left after ``timeout`` is dropped."""
        with self._ready:
            self._stopping = True
            self._ready.notify()
        if self._thread.is_alive():
            self._thread.join(timeout)
        else:
            while self.flush_once():
                pass
        with self._ready:
            left, self._rows = self._rows, 0
            self._queue.clear()
        if left:
            self._counters.rows_dropped(left)

    def flush_once(self) -> int:
        """Take up to one batch off the buffer and write it; the rows taken."""
        with self._ready:
            batch = self._take_batch()
        if batch:
            self._write(batch)
        return sum(r.rows for r in batch)

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._due():
                    self._ready.wait(self._wait_seconds())
                stopping = self._stopping and not self._queue
            if stopping:
                return
            self.flush_once()

    def _due(self) -> bool:
        if self._stopping or self._rows >= self._batch_rows:
            return True
        return bool(self._queue) and self._clock() - self._queue[0][0] >= self.policy.flush_seconds

    def _wait_seconds(self) -> float | None:
        if not self._queue:
            return None
        return max(0.0, self._queue[0][0] + self.policy.flush_seconds - self._clock())

    def _take_batch(self) -> list[PredictionRecord]:
        """Whole requests, oldest first, up to ``batch_rows`` rows (at least one request)."""
        batch: list[PredictionRecord] = []
        taken = 0
        while self._queue and (not batch or taken + self._queue[0][1].rows <= self._batch_rows):
            _, record = self._queue.popleft()
            batch.append(record)
            taken += record.rows
        self._rows -= taken
        return batch

    def _take_apart(self, batch: list[PredictionRecord]) -> list[RequestColumns]:
        """The batch's requests as columns, oldest first; one that cannot be is dropped alone."""
        requests = []
        for record in sorted(batch, key=_arrival):
            try:
                requests.append(request_columns(record))
            except Exception as error:  # a log failure must never escape
                log.warning("prediction log: dropped %d rows: %s", record.rows, _describe(error))
                self._counters.rows_dropped(record.rows)
        return requests

    def _write(self, batch: list[PredictionRecord]) -> None:
        """One table for the batch, one file per UTC hour in it; a file that fails drops (and
        counts) its rows, a table that cannot be built all of them."""
        requests = self._take_apart(batch)
        try:
            table = to_table(requests, self.model, self.location.version)
        except Exception as error:  # a log failure must never escape
            self._failed(sum(r.rows for r in requests), error)
            return
        for hour, rows in _by_hour(table):
            try:
                self._write_file(hour, rows)
            except Exception as error:
                self._failed(rows.num_rows, error)
            else:
                self._counters.rows_written(rows.num_rows)

    def _failed(self, rows: int, error: Exception) -> None:
        log.warning("prediction log: dropped %d rows: %s", rows, _describe(error))
        self._counters.batch_failed()
        self._counters.rows_dropped(rows)

    def _write_file(self, hour: dt.datetime, table: pa.Table) -> None:
        body = io.BytesIO()
        pq.write_table(table, body)
        key = self.location.object_key(hour, dt.datetime.now(dt.UTC))
        self._sink.write(self.location.bucket, key, body.getvalue())


def _arrival(record: PredictionRecord) -> int:
    return record.timestamp_us


HOUR_US = 3600 * 1_000_000


def _by_hour(table: pa.Table) -> list[tuple[dt.datetime, pa.Table]]:
    """The rows of each UTC hour of a table sorted by time, as slices (no copies)."""
    micros = table.column("timestamp").cast(pa.int64()).to_numpy()
    hours = micros // HOUR_US
    starts = [0, *(np.flatnonzero(np.diff(hours)) + 1).tolist()]
    ends = [*starts[1:], len(micros)]
    return [
        (hour_of(dt.datetime.fromtimestamp(micros[a] / 1e6, dt.UTC)), table.slice(a, b - a))
        for a, b in zip(starts, ends, strict=True)
        if b > a
    ]


def _describe(error: Exception) -> str:
    """The error's kind and message; boto3 errors carry no credentials."""
    return f"{type(error).__name__}: {error}"
