"""S3 for the prediction log: one PUT per file, with short timeouts.

The logging thread waits on these calls, so a slow or absent S3 makes the
buffer fill and rows drop (counted) rather than anything else slowing down.
Credentials come from boto3's usual chain (environment, IRSA, instance profile).
"""

from __future__ import annotations

from trailboss import s3


class S3Sink:
    def __init__(self, endpoint_url: str | None = None) -> None:
        self._s3 = s3.client(endpoint_url, attempts=2, connect_timeout=2, read_timeout=10)

    def write(self, bucket: str, key: str, body: bytes) -> None:
        self._s3.put_object(
            Bucket=bucket, Key=key, Body=body, ContentType="application/vnd.apache.parquet"
        )
