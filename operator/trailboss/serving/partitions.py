"""Where a batch of prediction log rows lands in S3 (pure).

``{prefix}/deployment={namespace}.{deployment}/version={version}/date={YYYY-MM-DD}/hour={HH}/
part-{unix_ms}-{uuid8}.parquet``: Hive-style partitions, so Spark, DuckDB,
Athena and pyarrow datasets read a deployment, a version or a time window
without listing the rest. Dates and hours are UTC.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class LogLocation:
    """Where one server writes: its bucket, key prefix and identity."""

    bucket: str
    prefix: str
    namespace: str
    deployment: str
    version: str

    @classmethod
    def from_uri(cls, uri: str, namespace: str, deployment: str, version: str) -> LogLocation:
        if not uri.startswith("s3://"):
            raise ValueError(f"log URI must be s3://bucket/prefix, got {uri!r}")
        bucket, _, prefix = uri[len("s3://") :].partition("/")
        if not bucket:
            raise ValueError(f"log URI names no bucket: {uri!r}")
        return cls(bucket, prefix.strip("/"), namespace, deployment, version)

    def partition(self, when: dt.datetime) -> str:
        """Key prefix of the hour ``when`` falls in (UTC)."""
        utc = when.astimezone(dt.UTC)
        parts = [
            self.prefix,
            f"deployment={self.namespace}.{self.deployment}",
            f"version={self.version}",
            f"date={utc:%Y-%m-%d}",
            f"hour={utc:%H}",
        ]
        return "/".join(p for p in parts if p)

    def object_key(self, when: dt.datetime, written_at: dt.datetime, token: str = "") -> str:
        """A new, unique object key in ``when``'s hour, named by the time it is written."""
        unix_ms = int(written_at.timestamp() * 1000)
        suffix = token or uuid.uuid4().hex[:8]
        return f"{self.partition(when)}/part-{unix_ms}-{suffix}.parquet"


def hour_of(when: dt.datetime) -> dt.datetime:
    """The start of ``when``'s UTC hour: rows of one hour share a file."""
    return when.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
