"""The S3 calls of the drift Job: list, download to disk, read byte ranges, upload.

Downloads stream to files and range reads are bounded by their callers, so
the Job's memory never holds a whole object;
credentials come from boto3's usual chain and the endpoint from
``--s3-endpoint-url``, ``TRAILBOSS_S3_ENDPOINT_URL`` or ``AWS_ENDPOINT_URL``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from trailboss import s3

_NOT_FOUND = {"404", "NoSuchKey", "NoSuchBucket", "NotFound", "NoSuchVersion"}
_CHANGED = {"412", "PreconditionFailed"}


class ObjectNotFound(Exception):
    """Nothing exists at the URI."""


class ObjectChanged(Exception):
    """The object is no longer the version its URI pins."""


class StoreError(Exception):
    """S3 could not be reached, or refused the request."""


def split_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` into ``(bucket, key)``."""
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri!r}; write it as s3://bucket/key")
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key


def split_pin(uri: str) -> tuple[str, dict[str, str]]:
    """``s3://bucket/key@etag:E`` or ``…@version:V`` (a ModelVersion's training
    data, as its TrainingRun pinned it) into the URI and the arguments of a GET
    of exactly that version; an unpinned URI gets none."""
    for marker, argument in (("@etag:", "IfMatch"), ("@version:", "VersionId")):
        location, found, value = uri.partition(marker)
        if found and value:
            return location, {argument: f'"{value}"' if argument == "IfMatch" else value}
    return uri, {}


def join(prefix_uri: str, *parts: str) -> str:
    return "/".join([prefix_uri.rstrip("/"), *parts])


class ObjectStore:
    def __init__(self, endpoint_url: str | None = None) -> None:
        endpoint = (
            endpoint_url
            or os.environ.get("TRAILBOSS_S3_ENDPOINT_URL")
            or os.environ.get("AWS_ENDPOINT_URL")
        )
        self._s3 = s3.client(endpoint, attempts=3, connect_timeout=5, read_timeout=60)

    def keys(self, prefix_uri: str) -> Iterator[str]:
        """Every key under a prefix, in S3's (lexicographic) order."""
        bucket, prefix = split_uri(prefix_uri)
        # boto3's paginator follows the continuation tokens, one page at a time.
        pages = self._s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        try:
            for page in pages:
                for obj in page.get("Contents", []):
                    yield f"s3://{bucket}/{obj['Key']}"
        except (ClientError, BotoCoreError) as error:
            raise _store_error(f"s3://{bucket}/{prefix}", error) from error

    def download(self, uri: str, path: Path) -> None:
        """To a file; a pinned URI (``split_pin``) gets that version or ObjectChanged."""
        location, pin = split_pin(uri)
        if pin:
            self._download_version(location, pin, path)
            return
        bucket, key = split_uri(uri)
        try:
            self._s3.download_file(bucket, key, str(path))
        except (ClientError, BotoCoreError) as error:
            raise _store_error(uri, error) from error

    def _download_version(self, uri: str, pin: dict[str, str], path: Path) -> None:
        bucket, key = split_uri(uri)
        (version,) = pin.values()
        try:
            body = self._s3.get_object(Bucket=bucket, Key=key, **pin)["Body"]
            with path.open("wb") as out:
                for chunk in body.iter_chunks(1 << 20):
                    out.write(chunk)
        except (ClientError, BotoCoreError) as error:
            raise _store_error(uri, error, version) from error

    def read_range(self, uri: str, start: int, stop: int) -> bytes:
        """Bytes [start, stop) of an object (one ranged GET)."""
        bucket, key = split_uri(uri)
        answer = self._call("get_object", Bucket=bucket, Key=key, Range=f"bytes={start}-{stop - 1}")
        data: bytes = answer["Body"].read()
        return data

    def read_end(self, uri: str, count: int) -> tuple[bytes, int]:
        """The last `count` bytes of an object (all of a shorter one) and its
        size, from one GET: a Parquet file says at its end where its columns are."""
        bucket, key = split_uri(uri)
        answer = self._call("get_object", Bucket=bucket, Key=key, Range=f"bytes=-{count}")
        data: bytes = answer["Body"].read()
        # "bytes 120-127/128"; a server that ignores the range sends the whole object.
        total = str(answer.get("ContentRange", "")).rpartition("/")[2]
        size = int(total) if total.isdigit() else len(data)
        return data[-count:], size

    def read(self, uri: str) -> bytes:
        bucket, key = split_uri(uri)
        body = self._call("get_object", Bucket=bucket, Key=key)["Body"]
        data: bytes = body.read()
        return data

    def write(self, uri: str, data: bytes, content_type: str) -> None:
        bucket, key = split_uri(uri)
        self._call("put_object", Bucket=bucket, Key=key, Body=data, ContentType=content_type)

    def _call(self, method: str, **kwargs: Any) -> Any:
        where = f"s3://{kwargs.get('Bucket')}/{kwargs.get('Key') or kwargs.get('Prefix', '')}"
        try:
            return getattr(self._s3, method)(**kwargs)
        except (ClientError, BotoCoreError) as error:
            raise _store_error(where, error) from error


def _store_error(
    uri: str, error: ClientError | BotoCoreError, version: str | None = None
) -> Exception:
    """What a failed S3 call means for the Job, naming the object (and the
    version asked for, when the URI pins one)."""
    where = f"{uri} at {version}" if version else uri
    if isinstance(error, BotoCoreError):
        return StoreError(f"{where}: {error}")
    code = str(error.response.get("Error", {}).get("Code", ""))
    if code in _NOT_FOUND:
        return ObjectNotFound(f"{where} does not exist")
    if code in _CHANGED:
        return ObjectChanged(
            f"{uri} changed since the model was trained on it (pinned {version}); set "
            "spec.referenceData to the data to compare against, or train again"
        )
    return StoreError(f"{where}: {code or error}")
