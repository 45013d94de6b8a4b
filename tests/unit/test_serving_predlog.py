"""The prediction log buffer: batches, bounds, drops and flushes, with an in-memory store."""

from __future__ import annotations

import datetime as dt
import io
import itertools
import threading
import time
from collections.abc import Iterator

import pandas as pd
import pyarrow.parquet as pq
import pytest

from trailboss.serving.metrics import ServerMetrics
from trailboss.serving.partitions import LogLocation
from trailboss.serving.predlog import LogPolicy, PredictionLogger
from trailboss.serving.records import PredictionRecord

WHEN = dt.datetime(2026, 11, 23, 14, 59, 59, tzinfo=dt.UTC)
LOCATION = LogLocation.from_uri("s3://logs/pred", "ml", "churn", "7")


class MemoryStore:
    """Objects by key; can be made to fail or to hang, like an S3 outage."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.failing = False
        self.waiting = threading.Event()  # set while an upload hangs
        self.gate = threading.Event()
        self.gate.set()

    def write(self, bucket: str, key: str, body: bytes) -> None:
        assert bucket == "logs"
        if not self.gate.is_set():
            self.waiting.set()
        if not self.gate.wait(timeout=5):
            raise TimeoutError("S3 did not answer")
        if self.failing:
            raise ConnectionError("could not connect to the endpoint URL")
        self.objects[key] = body

    def tables(self) -> list[pd.DataFrame]:
        return [
            pq.read_table(io.BytesIO(body)).to_pandas() for _, body in sorted(self.objects.items())
        ]


def micros(when: dt.datetime) -> int:
    return (when - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)


def request(rows: int, rid: str = "r", when: dt.datetime = WHEN) -> PredictionRecord:
    frame = pd.DataFrame({"x": range(rows)})
    return PredictionRecord(rid, micros(when), "ok", frame, list(range(rows)), rows)


def logged(metrics: ServerMetrics, result: str) -> float:
    value = metrics.registry.get_sample_value(
        "trailboss_model_log_rows_total", {"model": "churn", "version": "7", "result": result}
    )
    return value or 0.0


@pytest.fixture
def metrics() -> ServerMetrics:
    return ServerMetrics("churn", "7")


@pytest.fixture
def store() -> Iterator[MemoryStore]:
    store = MemoryStore()
    yield store
    store.gate.set()


def make_logger(
    store: MemoryStore,
    metrics: ServerMetrics,
    *,
    batch_rows: int = 20,
    buffer_rows: int = 50,
    flush_seconds: float = 60.0,
) -> PredictionLogger:
    policy = LogPolicy(batch_rows=batch_rows, buffer_rows=buffer_rows, flush_seconds=flush_seconds)
    return PredictionLogger(LOCATION, store, metrics, policy, model="churn")


def test_whole_requests_are_written_in_batches_of_at_most_batch_rows(
    store: MemoryStore, metrics: ServerMetrics
) -> None:
    logger = make_logger(store, metrics)
    for i in range(5):
        logger.record(request(10, rid=f"r{i}"))
    while logger.flush_once():
        pass
    sizes = [len(t) for t in store.tables()]
    assert sorted(sizes) == [10, 20, 20]
    assert logged(metrics, "written") == 50
    assert all(set(t.groupby("request_id").size()) == {10} for t in store.tables())


def test_files_land_in_the_hour_partition_of_their_rows(
    store: MemoryStore, metrics: ServerMetrics
) -> None:
    logger = make_logger(store, metrics)
    logger.record(request(2, when=WHEN))
    logger.record(request(3, when=WHEN + dt.timedelta(seconds=2)))
    logger.flush_once()
    partitions = sorted(key.rsplit("/", 1)[0] for key in store.objects)
    assert partitions == [
        "pred/deployment=ml.churn/version=7/date=2026-11-23/hour=14",
        "pred/deployment=ml.churn/version=7/date=2026-11-23/hour=15",
    ]


def test_a_full_buffer_drops_and_counts_new_rows(
    store: MemoryStore, metrics: ServerMetrics
) -> None:
    logger = make_logger(store, metrics, buffer_rows=25)
    for _ in range(3):
        logger.record(request(10))
    assert logger.buffered_rows == 20
    assert logged(metrics, "dropped") == 10


def test_an_s3_outage_drops_and_counts_the_batch_and_the_next_one_is_written(
    store: MemoryStore, metrics: ServerMetrics
) -> None:
    logger = make_logger(store, metrics)
    store.failing = True
    logger.record(request(10))
    logger.flush_once()
    assert logged(metrics, "dropped") == 10
    assert (
        metrics.registry.get_sample_value(
            "trailboss_model_log_failed_batches_total", {"model": "churn", "version": "7"}
        )
        == 1
    )
    store.failing = False
    logger.record(request(4))
    logger.flush_once()
    assert [len(t) for t in store.tables()] == [4]


def test_a_hanging_s3_never_blocks_a_prediction(store: MemoryStore, metrics: ServerMetrics) -> None:
    store.gate.clear()  # every upload hangs until the test ends
    logger = make_logger(store, metrics, batch_rows=10, buffer_rows=30)
    logger.start()
    logger.record(request(10))
    assert store.waiting.wait(timeout=5), "the first upload never started"
    for _ in range(20):
        logger.record(request(10))  # returns although the upload in flight hangs
    assert not store.gate.is_set()
    assert logged(metrics, "dropped") == 200 - 30  # the buffer holds 30 rows; the rest drop


def test_sampling_keeps_or_skips_whole_requests(store: MemoryStore, metrics: ServerMetrics) -> None:
    draws = itertools.cycle([0.1, 0.9])
    logger = PredictionLogger(
        LOCATION, store, metrics, LogPolicy(sample_rate=0.5, batch_rows=100), model="churn",
        sample=lambda: next(draws),
    )  # fmt: skip
    for i in range(4):
        logger.record(request(3, rid=f"r{i}"))
    logger.flush_once()
    (table,) = store.tables()
    assert sorted(set(table.request_id)) == ["r0", "r2"]
    assert len(table) == 6


def test_rows_wait_at_most_the_flush_interval(store: MemoryStore, metrics: ServerMetrics) -> None:
    logger = make_logger(store, metrics, batch_rows=1000, flush_seconds=0.05)
    logger.start()
    logger.record(request(3))
    deadline = time.monotonic() + 5
    while not store.objects and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [len(t) for t in store.tables()] == [3]
    logger.close()


def test_close_writes_everything_buffered(store: MemoryStore, metrics: ServerMetrics) -> None:
    logger = make_logger(store, metrics, batch_rows=1000, flush_seconds=3600)
    logger.start()
    for _ in range(4):
        logger.record(request(5))
    logger.close(timeout=5)
    assert sum(len(t) for t in store.tables()) == 20
    assert logged(metrics, "written") == 20
    assert logger.buffered_rows == 0


def test_close_counts_what_a_hanging_s3_kept_it_from_writing(
    store: MemoryStore, metrics: ServerMetrics
) -> None:
    store.gate.clear()
    logger = make_logger(store, metrics, batch_rows=5)
    logger.start()
    for _ in range(3):
        logger.record(request(5))
    logger.close(timeout=0.2)
    assert logged(metrics, "dropped") >= 10


def test_a_file_has_the_contracts_schema_and_each_requests_arrival_time(
    store: MemoryStore, metrics: ServerMetrics
) -> None:
    logger = make_logger(store, metrics)
    logger.record(request(2, rid="late", when=WHEN + dt.timedelta(microseconds=7)))
    logger.record(request(1, rid="early", when=WHEN - dt.timedelta(microseconds=5)))
    logger.flush_once()
    (body,) = store.objects.values()
    table = pq.read_table(io.BytesIO(body))
    assert table.schema.names == [
        "request_id", "timestamp", "model", "version", "outcome", "input.x", "output.prediction",
    ]  # fmt: skip
    assert str(table.schema.field("timestamp").type) == "timestamp[us, tz=UTC]"
    assert table.column("request_id").to_pylist() == ["early", "late", "late"]  # oldest first
    assert table.column("timestamp").to_pylist() == [
        WHEN - dt.timedelta(microseconds=5),
        *[WHEN + dt.timedelta(microseconds=7)] * 2,
    ]
    assert set(table.column("model").to_pylist()) == {"churn"}
    assert set(table.column("version").to_pylist()) == {"7"}


class Unreadable:
    """A model input the log cannot turn into columns."""

    def __str__(self) -> str:
        raise RuntimeError("cannot be read")


def test_a_request_the_log_cannot_convert_is_dropped_and_counted_in_the_logging_thread(
    store: MemoryStore, metrics: ServerMetrics
) -> None:
    logger = make_logger(store, metrics)
    logger.record(PredictionRecord("bad", micros(WHEN), "ok", Unreadable(), None, 1))
    assert logger.buffered_rows == 1  # the request path only queued a reference
    logger.flush_once()
    assert logged(metrics, "dropped") == 1
    logger.record(request(3))
    logger.flush_once()
    assert [len(t) for t in store.tables()] == [3]
    assert logged(metrics, "written") == 3


class Uncountable(list[float]):
    """A column whose length cannot be read."""

    def __len__(self) -> int:
        raise RuntimeError("no length")


def test_a_request_that_cannot_be_taken_apart_is_dropped_alone(
    store: MemoryStore, metrics: ServerMetrics
) -> None:
    logger = make_logger(store, metrics)
    logger.record(request(2, rid="before"))
    logger.record(PredictionRecord("bad", micros(WHEN), "ok", {"x": Uncountable()}, None, 3))
    logger.record(request(4, rid="after"))
    logger.flush_once()
    (table,) = store.tables()
    assert table.request_id.tolist() == ["before"] * 2 + ["after"] * 4
    assert (logged(metrics, "written"), logged(metrics, "dropped")) == (6, 3)
