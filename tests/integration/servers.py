"""Helpers for tests that run the real model server on loopback: processes, HTTP, S3, models."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

LOOPBACK = "127.0.0.1"
FEATURES = ["tenure", "spend", "plan"]
S3_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def churn_frame(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "tenure": rng.normal(size=rows),
            "spend": rng.normal(size=rows),
            "plan": rng.choice(["basic", "pro", "team"], rows),
        }
    )


def save_churn_model(path: Path) -> tuple[Path, Any]:
    """A small real scikit-learn pipeline (numbers and a text feature) saved as an MLflow model."""
    import mlflow.sklearn
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    frame = churn_frame(200)
    labels = (frame.tenure + frame.spend > 0).astype(int)
    encode = ColumnTransformer(
        [("plan", OneHotEncoder(handle_unknown="ignore"), ["plan"])], remainder="passthrough"
    )
    model = make_pipeline(encode, LogisticRegression()).fit(frame, labels)
    mlflow.sklearn.save_model(
        model, str(path), input_example=frame.head(3), pip_requirements=["scikit-learn"]
    )
    return path, model


@dataclass
class Response:
    status: int
    body: bytes
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.body)


def call(url: str, body: bytes | None = None, content_type: str = "application/json",
         headers: dict[str, str] | None = None, timeout: float = 30) -> Response:  # fmt: skip
    request = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET")
    request.add_header("Content-Type", content_type)
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            return Response(reply.status, reply.read(), dict(reply.headers.items()))
    except urllib.error.HTTPError as error:
        return Response(error.code, error.read(), dict(error.headers.items()))


def post_json(url: str, payload: Any, **kwargs: Any) -> Response:
    return call(url, json.dumps(payload).encode(), **kwargs)


@dataclass
class ServerProcess:
    """``trailboss serve`` as its own process, as in a pod."""

    model_uri: str
    version: str
    flags: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    output: Path | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self, workdir: Path) -> ServerProcess:
        args = [sys.executable, "-m", "trailboss.cli", "serve", "--host", LOOPBACK,
                "--port", str(self.port), "--model-uri", self.model_uri, "--model-name", "churn",
                "--model-version", self.version]  # fmt: skip
        for name, value in self.flags.items():
            args += [f"--{name}", value]
        self.output = workdir / f"server-{self.version}-{self.port}.log"
        env = {**os.environ, **S3_ENV, **self.env, "TMPDIR": str(workdir)}
        with self.output.open("wb") as out:
            self.process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
        return self

    def log(self) -> str:
        return self.output.read_text() if self.output else ""

    def wait_ready(self, timeout: float = 120) -> ServerProcess:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            assert self.process.poll() is None, f"server exited:\n{self.log()}"
            with contextlib.suppress(OSError):
                if call(self.url + "/ping", timeout=2).status == 200:
                    return self
            time.sleep(0.2)
        raise AssertionError(f"server not ready in {timeout} s:\n{self.log()}")

    def terminate(self, timeout: float = 30) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def metric(self, name: str, **labels: str) -> float:
        """One sample of this server's /metrics, labelled with its model and version."""
        wanted = {"model": "churn", "version": self.version, **labels}
        for line in call(self.url + "/metrics").body.decode().splitlines():
            if line.startswith(name + "{"):
                label_text, value = line[len(name) + 1 :].rsplit("} ", 1)
                found = dict(pair.split("=", 1) for pair in label_text.split(","))
                if {k: v.strip('"') for k, v in found.items()} == wanted:
                    return float(value)
        raise AssertionError(f"no sample {name}{wanted} on {self.url}/metrics")


def s3_client(endpoint: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=S3_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=S3_ENV["AWS_SECRET_ACCESS_KEY"],
        region_name=S3_ENV["AWS_DEFAULT_REGION"],
    )


def log_files(s3: Any, bucket: str, prefix: str = "") -> dict[str, pa.Table]:
    """Every Parquet file under ``prefix``, by key."""
    listing = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return {
        item["Key"]: pq.read_table(
            io.BytesIO(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())
        )
        for item in listing
    }


def wait_for(check: Any, timeout: float = 30, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")
