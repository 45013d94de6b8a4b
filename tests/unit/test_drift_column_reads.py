"""A drift check fetches from S3 only the columns it measures: each pod of a
sharded check the chunks of its own group of features (in the prediction
logs and in the reference profile's samples), plus the timestamp and outcome
that say which rows of a log count, so what a pod downloads and holds shrinks
with the number of pods. The merged result stays the one pod's
(tests/unit/test_drift_shards.py)."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.unit.driftdata import NOW, TARGET, LocalStore, mixed_window
from trailboss.api.monitoring import MonitoringSpec
from trailboss.drift import job
from trailboss.drift.shard import Shard, features_of

Span = tuple[int, int]
WINDOW_COLUMNS = {"timestamp", "outcome"}


class RecordingStore(LocalStore):
    """The local store, noting every byte range of every object it serves; a
    whole download counts as every byte of the object."""

    def __init__(self, objects: dict[str, Path]) -> None:
        super().__init__(objects)
        self.served: dict[str, list[Span]] = defaultdict(list)

    def download(self, uri: str, path: Path) -> None:
        self.served[uri].append((0, self.objects[uri].stat().st_size))
        super().download(uri, path)

    def read_range(self, uri: str, start: int, stop: int) -> bytes:
        self.served[uri].append((start, stop))
        return super().read_range(uri, start, stop)

    def read_end(self, uri: str, count: int) -> tuple[bytes, int]:
        data, size = super().read_end(uri, count)
        self.served[uri].append((size - len(data), size))
        return data, size


def _chunks(path: Path) -> dict[str, list[Span]]:
    """Where each column's data lies in a Parquet file, as its footer says."""
    metadata = pq.read_metadata(path)
    spans: dict[str, list[Span]] = defaultdict(list)
    for group in range(metadata.num_row_groups):
        for index in range(metadata.num_columns):
            chunk = metadata.row_group(group).column(index)
            start = chunk.data_page_offset
            if chunk.has_dictionary_page:
                start = min(start, chunk.dictionary_page_offset)
            spans[chunk.path_in_schema].append((start, start + chunk.total_compressed_size))
    return spans


def _columns_fetched(store: RecordingStore, uri: str) -> set[str]:
    chunks = _chunks(store.objects[uri])
    return {
        column
        for column, spans in chunks.items()
        for begin, end in spans
        if any(start < end and begin < stop for start, stop in store.served[uri])
    }


@pytest.fixture(scope="module")
def objects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return mixed_window(tmp_path_factory.mktemp("reads")).objects


def _features(objects: dict[str, Path]) -> dict[str, str]:
    document = json.loads(objects["s3://models/p/profile.json"].read_text())
    return {name: column["type"] for name, column in document["columns"].items()}


@pytest.mark.parametrize("count", [1, 2, 4])
def test_each_pod_fetches_only_the_columns_of_its_own_features(
    objects: dict[str, Path], count: int
) -> None:
    features = _features(objects)
    logs = [uri for uri in objects if uri.endswith(".parquet") and uri.startswith("s3://logs/")]
    for index in range(count):
        store = RecordingStore(objects)
        shard = Shard(index, count) if count > 1 else None
        part = job.run_check(store, TARGET, MonitoringSpec(window="1h"), NOW, shard)  # type: ignore[arg-type]
        mine = features_of(features, shard)
        for log in logs:
            assert _columns_fetched(store, log) == WINDOW_COLUMNS | {f"input.{n}" for n in mine}
        numeric = {n for n in mine if features[n] == "numeric"}
        assert _columns_fetched(store, "s3://models/p/sample.parquet") == numeric
        # The log column the profile lacks is still reported, from the footer alone.
        reported = part["features"] if shard else part["drift"]["features"]
        assert ("extra" in {f["name"] for f in reported}) == (index == 0)


def _fetched_from_the_log(objects: dict[str, Path], shard: Shard | None) -> int:
    (log,) = [uri for uri in objects if uri.startswith("s3://logs/")]
    store = RecordingStore(objects)
    job.run_check(store, TARGET, MonitoringSpec(window="1h"), NOW, shard)  # type: ignore[arg-type]
    return sum(stop - start for start, stop in store.served[log])


def test_a_pod_of_four_fetches_far_less_of_the_window_than_one_pod(
    objects: dict[str, Path],
) -> None:
    alone = _fetched_from_the_log(objects, None)
    assert max(_fetched_from_the_log(objects, Shard(i, 4)) for i in range(4)) < alone / 2
