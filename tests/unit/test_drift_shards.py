"""A drift check split by feature group across the pods of an Indexed Job
gives, once merged, exactly the result of one pod."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.unit.driftlogs import log_table, write_local
from trailboss.api.deployment import MonitoringSpec
from trailboss.drift import build, job
from trailboss.drift.shard import Shard, features_of, merge

NOW = dt.datetime(2026, 5, 4, 12, 0, tzinfo=dt.UTC)
TARGET = job.CheckTarget("s3://models/p", "s3://logs", "ns.d", "v1")


class _LocalStore:
    def __init__(self, objects: dict[str, Path]) -> None:
        self.objects = objects

    def keys(self, prefix_uri: str) -> Iterator[str]:
        yield from sorted(k for k in self.objects if k.startswith(prefix_uri))

    def download(self, uri: str, path: Path) -> None:
        shutil.copy(self.objects[uri], path)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> _LocalStore:
    tmp = tmp_path_factory.mktemp("shards")
    rng = np.random.default_rng(21)
    n = 3000
    reference = {
        **{f"num{i}": rng.normal(0, 1, n).round(4) for i in range(7)},
        "plan": rng.choice(["a", "b", "c"], n),
        "member": rng.choice(["True", "False"], n),
    }
    source = tmp / "reference.csv"
    rows = zip(*reference.values(), strict=True)
    source.write_text(",".join(reference) + "\n" + "\n".join(",".join(map(str, r)) for r in rows))
    profile = tmp / "profile"
    profile.mkdir()
    build.build("s3://datasets/reference.csv", source, profile, build.ProfileOptions())
    current: dict[str, Any] = {f"num{i}": rng.normal(0.04 * i, 1, 2000) for i in range(7)}
    current["num3"][:50] = np.inf
    current["plan"] = rng.choice(["a", "b", "c", "d"], 2000)
    current["member"] = rng.choice(["true", "false"], 2000)
    current["extra"] = rng.normal(0, 1, 2000)
    objects = {
        f"s3://models/p/{name}": profile / name for name in ("profile.json", "sample.parquet")
    }
    hour = f"s3://logs/deployment=ns.d/version=v1/date={NOW:%Y-%m-%d}/hour={NOW:%H}"
    table = log_table(NOW - dt.timedelta(minutes=20), current)
    objects[f"{hour}/part-0.parquet"] = write_local(table, tmp, "part-0.parquet")
    return _LocalStore(objects)


@pytest.mark.parametrize("count", [1, 2, 4])
def test_sharded_check_merges_to_the_unsharded_result(store: _LocalStore, count: int) -> None:
    spec = MonitoringSpec(window="1h", correction="holm")
    whole = job.run_check(store, TARGET, spec, NOW)  # type: ignore[arg-type]
    parts = [
        job.run_check(store, TARGET, spec, NOW, Shard(i, count))  # type: ignore[arg-type]
        for i in range(count)
    ]
    assert merge(spec, parts[::-1]) == whole
    assert whole["drift"]["checkedFeatures"] == 9


def test_groups_cover_every_feature_once_and_differ_by_at_most_one() -> None:
    names = [f"f{i}" for i in range(11)]
    groups = [features_of(names, Shard(i, 4)) for i in range(4)]
    assert sorted(name for group in groups for name in group) == sorted(names)
    assert {len(g) for g in groups} == {2, 3}


def test_a_missing_shard_is_refused(store: _LocalStore) -> None:
    spec = MonitoringSpec(window="1h")
    part = job.run_check(store, TARGET, spec, NOW, Shard(0, 2))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="do not make one whole check"):
        merge(spec, [part])


@pytest.mark.parametrize("text", ["4/4", "1", "a/2", "-1/2"])
def test_a_shard_is_written_index_slash_count(text: str) -> None:
    with pytest.raises(ValueError, match="INDEX"):
        Shard.parse(text)
