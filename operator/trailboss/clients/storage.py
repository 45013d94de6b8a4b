"""S3 as the operator uses it: pin a dataset, verify a model artifact.

Credentials come from boto3's usual chain (environment, IRSA, instance
profile); only the endpoint is configured, for S3-compatible stores.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from trailboss import s3
from trailboss.api.trainingrun import DatasetPin
from trailboss.clients.protocols import DataNotFound, Listing, StoreUnavailable
from trailboss.settings import CONNECTIONS

_NOT_FOUND = {"404", "NoSuchKey", "NoSuchBucket", "NotFound"}


def split_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` into ``(bucket, key)``."""
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri}")
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key


def digest(entries: list[tuple[str, int, str]]) -> str:
    """``sha256:`` over sorted (relative key, size, ETag) lines: changes when any object does."""
    h = hashlib.sha256()
    for key, size, etag in sorted(entries):
        h.update(f"{key}\t{size}\t{etag}\n".encode())
    return "sha256:" + h.hexdigest()


class Storage:
    def __init__(self, endpoint_url: str | None = None) -> None:
        self.endpoint_url = endpoint_url
        self._made: Any = None
        self._making = threading.Lock()

    @property
    def _s3(self) -> Any:
        """The S3 client, made at the first call: loading botocore's S3 model costs
        about 14 MiB, which runs without datasets or artifacts to check never need."""
        if self._made is None:
            with self._making:
                if self._made is None:
                    self._made = s3.client(
                        self.endpoint_url,
                        attempts=2,
                        connect_timeout=5,
                        read_timeout=20,
                        connections=CONNECTIONS,
                    )
        return self._made

    def pin(self, uri: str, now: dt.datetime) -> DatasetPin:
        """Pin one object (ETag, version id) or, for a ``/``-terminated URI, a prefix."""
        bucket, key = split_uri(uri)
        if not key or key.endswith("/"):
            listing = self.list(uri)
            return DatasetPin(
                uri=uri,
                digest=listing.digest,
                objects=listing.objects,
                size_bytes=listing.size_bytes,
                pinned_at=now,
            )
        head = self._call("head_object", Bucket=bucket, Key=key)
        return DatasetPin(
            uri=uri,
            etag=str(head.get("ETag", "")).strip('"') or None,
            version_id=_version_id(head),
            objects=1,
            size_bytes=int(head.get("ContentLength", 0)),
            pinned_at=now,
        )

    def list(self, uri: str) -> Listing:
        """Every object under a prefix; DataNotFound when there is none."""
        bucket, prefix = split_uri(uri)
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        entries: list[tuple[str, int, str]] = []
        for page in self._pages("list_objects_v2", Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                rel = obj["Key"][len(prefix) :]
                entries.append((rel, int(obj["Size"]), str(obj.get("ETag", "")).strip('"')))
        if not entries:
            raise DataNotFound(f"no objects under {uri}")
        return Listing(
            uri=uri,
            objects=len(entries),
            size_bytes=sum(size for _, size, _ in entries),
            digest=digest(entries),
            keys=tuple(sorted(key for key, _, _ in entries)),
        )

    def read_json(self, uri: str) -> dict[str, Any] | None:
        """A small JSON object (a Job's result); None when it does not exist."""
        bucket, key = split_uri(uri)
        try:
            body = self._call("get_object", Bucket=bucket, Key=key)["Body"].read()
        except DataNotFound:
            return None
        try:
            document = json.loads(body)
        except ValueError as error:
            raise StoreUnavailable(f"{uri} is not JSON: {error}") from error
        return document if isinstance(document, dict) else None

    def _call(self, method: str, **kwargs: Any) -> Any:
        client = self._s3
        with _store_errors(kwargs):
            return getattr(client, method)(**kwargs)

    def _pages(self, method: str, **kwargs: Any) -> Iterator[Any]:
        """Every page of a listing: boto3's paginator follows the continuation tokens."""
        pages = self._s3.get_paginator(method).paginate(**kwargs)
        with _store_errors(kwargs):
            yield from pages


@contextmanager
def _store_errors(kwargs: dict[str, Any]) -> Iterator[None]:
    """S3's failures as the operator reports them, naming the object asked for."""
    try:
        yield
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        where = f"s3://{kwargs.get('Bucket')}/{kwargs.get('Key') or kwargs.get('Prefix', '')}"
        if code in _NOT_FOUND:
            raise DataNotFound(f"{where} does not exist") from error
        raise StoreUnavailable(f"{where}: {code or error}", code) from error
    except BotoCoreError as error:
        raise StoreUnavailable(str(error)) from error


def _version_id(head: dict[str, Any]) -> str | None:
    """Unversioned buckets report no version id, or the literal ``null``."""
    version = head.get("VersionId")
    return None if version in (None, "null") else str(version)
