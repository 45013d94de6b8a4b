"""A drift check split across the pods of an Indexed Job, by feature group.

Every statistic of a feature needs only that feature's column, so a pod that
measures a group of features gets exactly the numbers one pod would. What
spans features waits: the p-value correction and the dataset's share of
drifted features are taken once, by `merge`, over every group's features.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from trailboss.api.monitoring import FeatureDrift, FeatureStatus, MonitoringSpec
from trailboss.drift import decision


@dataclass(frozen=True)
class Shard:
    """Pod `index` of `count` (an Indexed Job's JOB_COMPLETION_INDEX and completions)."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """`INDEX/COUNT`, e.g. `0/4`."""
        index, sep, count = text.partition("/")
        if not sep or not index.isdigit() or not count.isdigit():
            raise ValueError(f"shard {text!r}: write it as INDEX/COUNT, e.g. 0/4")
        shard = cls(int(index), int(count))
        if not 0 <= shard.index < shard.count:
            raise ValueError(f"shard {text!r}: INDEX must be at least 0 and below COUNT")
        return shard


def features_of(names: Iterable[str], shard: Shard | None) -> list[str]:
    """The features a pod measures: every k-th of the sorted names, so the
    groups differ by at most one feature."""
    ordered = sorted(names)
    return ordered if shard is None else ordered[shard.index :: shard.count]


def merge(spec: MonitoringSpec, parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The result document of the whole check from every pod's partial one:
    the verdicts taken over all features, as one pod would have taken them."""
    counts = {int(p["shard"]["count"]) for p in parts}
    indexes = sorted(int(p["shard"]["index"]) for p in parts)
    if len(counts) != 1 or indexes != list(range(counts.pop())):
        raise ValueError(f"partial results of shards {indexes} do not make one whole check")
    first = parts[0]
    features = [FeatureDrift.model_validate(f) for part in parts for f in part["features"]]
    features.sort(key=lambda f: (f.status == FeatureStatus.NOT_IN_REFERENCE, f.name))
    status = decision.summarize(
        spec,
        features,
        model_version=first["modelVersion"],
        window_rows=int(first["windowRows"]),
        checked_at=dt.datetime.fromisoformat(first["checkedAt"]),
    )
    return {
        "deployment": first["deployment"],
        "window": first["window"],
        "profile": first["profile"],
        "drift": status.to_json(),
    }
