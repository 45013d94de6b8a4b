"""A drift check split by feature group across the pods of an Indexed Job
gives, once merged, exactly the result of one pod."""

from __future__ import annotations

import pytest

from tests.unit.driftdata import NOW, TARGET, LocalStore, mixed_window
from trailboss.api.monitoring import MonitoringSpec
from trailboss.drift import job
from trailboss.drift.shard import Shard, features_of, merge


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> LocalStore:
    return mixed_window(tmp_path_factory.mktemp("shards"))


@pytest.mark.parametrize("count", [1, 2, 4])
def test_sharded_check_merges_to_the_unsharded_result(store: LocalStore, count: int) -> None:
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


def test_a_missing_shard_is_refused(store: LocalStore) -> None:
    spec = MonitoringSpec(window="1h")
    part = job.run_check(store, TARGET, spec, NOW, Shard(0, 2))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="do not make one whole check"):
        merge(spec, [part])


@pytest.mark.parametrize("text", ["4/4", "1", "a/2", "-1/2"])
def test_a_shard_is_written_index_slash_count(text: str) -> None:
    with pytest.raises(ValueError, match="INDEX"):
        Shard.parse(text)
