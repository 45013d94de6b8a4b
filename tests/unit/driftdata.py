"""A reference profile and one window of prediction logs on local disk, behind
the two calls a drift check makes of S3, for tests that run real checks."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from tests.unit.driftlogs import log_table, write_local
from trailboss.drift import build, job

NOW = dt.datetime(2026, 5, 4, 12, 0, tzinfo=dt.UTC)
TARGET = job.CheckTarget("s3://models/p", "s3://logs", "ns.d", "v1")


class LocalStore:
    """The calls a drift check makes of its object store, from local files."""

    def __init__(self, objects: dict[str, Path]) -> None:
        self.objects = objects

    def keys(self, prefix_uri: str) -> Iterator[str]:
        yield from sorted(k for k in self.objects if k.startswith(prefix_uri))

    def download(self, uri: str, path: Path) -> None:
        shutil.copy(self.objects[uri], path)

    def read_range(self, uri: str, start: int, stop: int) -> bytes:
        with self.objects[uri].open("rb") as source:
            source.seek(start)
            return source.read(stop - start)

    def read_end(self, uri: str, count: int) -> tuple[bytes, int]:
        size = self.objects[uri].stat().st_size
        return self.read_range(uri, max(0, size - count), size), size


def mixed_window(tmp: Path) -> LocalStore:
    """Seven numeric features, some shifted, one with infinite values, two
    categorical ones (one with a new category), and a log column the profile
    lacks: every kind of feature result a check can give."""
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
    return LocalStore(objects)
