"""Prediction logging: a bounded buffer that a background thread writes to S3 as Parquet.

A prediction only ever appends to the buffer under a lock held for
microseconds; sampling, conversion to Arrow, Parquet encoding and the upload
all happen in the logging thread. When S3 is slow or down the buffer fills up
and further rows are dropped and counted (``trailboss_model_log_rows_total
{result="dropped"}``): a prediction is never blocked or failed by its log.
"""

from __future__ import annotations

import datetime as dt
import io
import itertools
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import pyarrow.parquet as pq

from trailboss.serving.partitions import LogLocation, hour_of
from trailboss.serving.records import PredictionRecord, to_table

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
        """Buffer a request's rows, or drop and count them when the buffer is full."""
        if record.rows == 0 or self._sample() >= self.policy.sample_rate:
            return
        with self._ready:
            if self._rows + record.rows > self.policy.buffer_rows:
                dropped = True
            else:
                dropped = False
                first = not self._queue
                self._queue.append((self._clock(), record))
                self._rows += record.rows
                if first or self._rows >= self.policy.batch_rows:
                    self._ready.notify()  # a first row starts the flush-interval clock
        if dropped:
            self._counters.rows_dropped(record.rows)

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
        if self._stopping or self._rows >= self.policy.batch_rows:
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
        limit = self.policy.batch_rows
        while self._queue and (not batch or taken + self._queue[0][1].rows <= limit):
            _, record = self._queue.popleft()
            batch.append(record)
            taken += record.rows
        self._rows -= taken
        return batch

    def _write(self, batch: list[PredictionRecord]) -> None:
        """One file per UTC hour in the batch; a failed file drops (and counts) its rows."""
        by_hour = itertools.groupby(
            sorted(batch, key=lambda r: r.timestamp), key=lambda r: hour_of(r.timestamp)
        )
        for hour, group in by_hour:
            records = list(group)
            rows = sum(r.rows for r in records)
            try:
                self._write_file(hour, records)
            except Exception as error:  # a log failure must never escape
                log.warning("prediction log: dropped %d rows: %s", rows, _describe(error))
                self._counters.batch_failed()
                self._counters.rows_dropped(rows)
            else:
                self._counters.rows_written(rows)

    def _write_file(self, hour: dt.datetime, records: list[PredictionRecord]) -> None:
        table = to_table(records, self.model, self.location.version)
        body = io.BytesIO()
        pq.write_table(table, body)
        key = self.location.object_key(hour, dt.datetime.now(dt.UTC))
        self._sink.write(self.location.bucket, key, body.getvalue())


def _describe(error: Exception) -> str:
    """The error's kind and message; boto3 errors carry no credentials."""
    return f"{type(error).__name__}: {error}"
