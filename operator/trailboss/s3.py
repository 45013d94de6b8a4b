"""The one way Trailboss makes an S3 client: path-style addressing (MinIO, Ceph
and other S3-compatible stores need it) and bounded retries and timeouts, which
each caller picks for its own work (a prediction log must never wait long; a
drift check reads large objects)."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config


def client(
    endpoint_url: str | None,
    *,
    attempts: int,
    connect_timeout: float,
    read_timeout: float,
    connections: int = 10,
) -> Any:
    """Credentials come from boto3's usual chain (environment, IRSA, instance profile).

    A session of its own, not boto3's process-wide default one: that one
    resolves credentials once and keeps them, so a client made after the
    environment changed would still sign with the old keys. ``connections``: how
    many threads may call it at once without waiting (botocore's default is 10)."""
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint_url,
        config=Config(
            retries={"max_attempts": attempts, "mode": "standard"},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            s3={"addressing_style": "path"},
            max_pool_connections=connections,
        ),
    )
