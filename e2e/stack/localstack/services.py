"""How MLflow, the S3 server and the pod runner are started, and their health checks."""

from __future__ import annotations

import os
import sys
from typing import Any

from .settings import BIN_DIR, HERE, REGION, P
from .state import State


def mlflow(st: State) -> list[str]:
    # Artifacts go straight to S3 (no proxying through the tracking server):
    # runs get real s3://mlflow/... artifact URIs that the operator, training
    # processes and model servers all read and write with their own S3
    # credentials, as they would against a production MLflow and bucket.
    return [
        *(sys.executable, "-m", "mlflow", "server"),
        *("--host", st.host("mlflow"), "--port", str(st.ports["mlflow"])),
        *("--backend-store-uri", f"sqlite:///{P.mlflow_db()}"),
        *("--default-artifact-root", "s3://mlflow/", "--no-serve-artifacts"),
        *("--workers", os.environ.get("TRAILBOSS_MLFLOW_WORKERS", "1")),
    ]


def mlflow_env(st: State) -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": st.access_key,
        "AWS_SECRET_ACCESS_KEY": st.secret_key,
        "AWS_DEFAULT_REGION": REGION,
        "MLFLOW_S3_ENDPOINT_URL": st.url("s3"),
        # The GenAI job workers (scorers, trace archival) are of no use here and
        # cost half a dozen processes.
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    }


def s3(st: State) -> list[str]:
    if st.s3_backend == "minio":
        return [
            *(str(BIN_DIR / "minio"), "server", str(P.data / "minio")),
            *("--address", f"{st.host('s3')}:{st.ports['s3']}"),
            *("--console-address", f"127.0.0.1:{st.ports['s3-console']}", "--quiet"),
        ]
    return [sys.executable, "-m", "moto.server", "-H", st.host("s3"), "-p", str(st.ports["s3"])]


def s3_env(st: State) -> dict[str, str]:
    return {
        "MINIO_ROOT_USER": st.access_key,
        "MINIO_ROOT_PASSWORD": st.secret_key,
        "MINIO_BROWSER": "off",
        "MINIO_UPDATE": "off",
        "MINIO_REGION": REGION,
    }


def s3_client(st: State, timeout: float = 2.0) -> Any:
    import boto3  # only here: `down` must work without it
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=st.url("s3"),
        region_name=REGION,
        aws_access_key_id=st.access_key,
        aws_secret_access_key=st.secret_key,
        config=Config(connect_timeout=timeout, read_timeout=timeout, retries={"max_attempts": 1}),
    )


def s3_healthy(st: State) -> bool:
    """The S3 API answers ListBuckets with the stack's credentials."""
    try:
        s3_client(st).list_buckets()
    except Exception:  # any failure means "not yet"; the log tells why
        return False
    return True


def podrunner(st: State) -> list[str]:
    return [
        *(sys.executable, str(HERE / "podrunner.py")),
        *("--kubeconfig", str(P.kubeconfig), "--state-dir", str(P.root)),
        *(["--pod-network"] if st.pod_network else []),
    ]
