"""Seed the example dataset: scikit-learn's bundled breast-cancer data as CSV in S3.

    python examples/trainer/make_dataset.py s3://datasets/churn/train.csv \\
        --reference s3://datasets/churn/reference.csv

The rows are split once, with a fixed seed: 80% go to the training CSV and, with
``--reference``, the other 20% to a holdout CSV that drift is measured against.
Running it again writes the same bytes, so the ETags stay the same. S3 settings come
from the usual AWS variables; ``AWS_ENDPOINT_URL_S3`` or ``MLFLOW_S3_ENDPOINT_URL``
names a non-AWS endpoint.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from sklearn.model_selection import train_test_split
from train import bundled_dataset, s3_client


def split_uri(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not uri.startswith("s3://") or not bucket or not key or key.endswith("/"):
        raise ValueError(f"expected s3://bucket/key.csv, got {uri}")
    return bucket, key


def ensure_bucket(s3: Any, bucket: str) -> None:
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket"):
            raise
        region = s3.meta.region_name
        config = {} if region in (None, "us-east-1") else {"LocationConstraint": region}
        s3.create_bucket(Bucket=bucket, **({"CreateBucketConfiguration": config} if config else {}))
        print(f"created bucket {bucket}")


def upload(s3: Any, uri: str, body: bytes) -> str:
    bucket, key = split_uri(uri)
    ensure_bucket(s3, bucket)
    put = s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="text/csv")
    etag = str(put["ETag"]).strip('"')
    version = put.get("VersionId")
    print(
        f"wrote {uri} ({len(body)} bytes) ETag {etag}" + (f" version {version}" if version else "")
    )
    return etag


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("uri", help="training CSV, s3://bucket/key.csv")
    parser.add_argument("--reference", help="holdout CSV for drift, s3://bucket/key.csv")
    args = parser.parse_args(argv)
    try:
        for uri in filter(None, (args.uri, args.reference)):
            split_uri(uri)
        frame = bundled_dataset()
        train, reference = train_test_split(
            frame, test_size=0.2, random_state=0, stratify=frame["target"]
        )
        s3 = s3_client()
        upload(s3, args.uri, train.to_csv(index=False).encode())
        if args.reference:
            upload(s3, args.reference, reference.to_csv(index=False).encode())
    except (ValueError, BotoCoreError, ClientError) as error:
        print(f"make_dataset failed: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
