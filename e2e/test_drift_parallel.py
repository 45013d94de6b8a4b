"""A drift check spread over the pods of an Indexed Job on the real stack: the
same prediction logs checked by one pod and by four give the same result for
every feature."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from e2e.cluster import Cluster, wait_for
from e2e.lifecycle import s3, split
from e2e.serving import FEATURES, SHIFTED, model_version, publish_model, reference_csv

pytestmark = pytest.mark.usefixtures("running_operator")
ROWS = 2000
COMPARED = ("name", "status", "method", "score", "pValue", "drifted", "rows")


def _logs(model: str, rows: int = ROWS) -> bytes:
    """One Parquet part of prediction logs, stamped over the last five minutes,
    with the SHIFTED features moved by 1.5 standard deviations."""
    rng = random.Random(3)
    now = dt.datetime.now(dt.UTC)
    stamps = [now - dt.timedelta(seconds=300 * (rows - i) / rows) for i in range(rows)]
    columns: dict[str, Any] = {
        "request_id": [uuid.uuid4().hex for _ in range(rows)],
        "timestamp": pa.array(stamps, pa.timestamp("us", tz="UTC")),
        "model": [model] * rows,
        "version": ["v1"] * rows,
        "outcome": ["ok"] * rows,
    }
    for name in FEATURES:
        offset = 1.5 if name in SHIFTED else 0.0
        columns[f"input.{name}"] = [rng.gauss(offset, 1) for _ in range(rows)]
    sink = pa.BufferOutputStream()
    pq.write_table(pa.table(columns), sink)
    return bytes(sink.getvalue().to_pybytes())


def _put_logs(cluster: Cluster, prefix: str, deployment: str, body: bytes) -> None:
    """The same part under a Deployment's path, filed under the hour of its first row."""
    first = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=300)
    bucket, base = split(prefix)
    key = (
        f"{base.rstrip('/')}/deployment={deployment}/version=v1/date={first:%Y-%m-%d}/"
        f"hour={first:%H}/part-{int(first.timestamp() * 1000)}-{uuid.uuid4().hex[:8]}.parquet"
    )
    s3(cluster.env).put_object(Bucket=bucket, Key=key, Body=body)


def _deployment(name: str, model: str, logs: str, parallelism: int) -> dict[str, Any]:
    return {
        "apiVersion": "trailboss.dev/v1alpha1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "model": model,
            "modelVersion": "v1",
            "monitoring": {
                "predictionLogs": logs,
                "interval": "30m",  # one check each is all this compares
                "window": "30m",
                "minSamples": 300,
                "parallelism": parallelism,
            },
        },
    }


def _checked(cluster: Cluster, namespace: str, name: str) -> dict[str, Any] | None:
    """The first check's result; a failed check fails the test with its reason."""
    status = cluster.status(namespace, "deployments", name)
    drift = status.get("drift") or {}
    if drift.get("failedAt"):
        said = [c for c in status.get("conditions") or [] if c["type"] == "DriftMonitoring"]
        raise AssertionError(f"{name}'s drift check failed: {said}")
    return drift if drift.get("checks") and drift.get("features") else None


def _by_feature(drift: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
    return {f["name"]: tuple(f.get(k) for k in COMPARED) for f in drift["features"]}


def test_four_pods_give_the_same_per_feature_result_as_one(
    cluster: Cluster, namespace: str
) -> None:
    model, base = f"spread-{namespace}", f"s3://mlflow/e2e/{namespace}"
    publish_model(cluster.env, f"{base}/v1/model")
    bucket, key = split(f"{base}/reference.csv")
    s3(cluster.env).put_object(Bucket=bucket, Key=key, Body=reference_csv())
    version = model_version("v1", model, f"{base}/v1/model")
    version["spec"]["referenceData"] = f"{base}/reference.csv"
    cluster.create(namespace, version)
    wait_for(
        "the reference profile",
        lambda: cluster.status(namespace, "modelversions", "v1").get("referenceProfile"),
        180,
    )
    logs = f"{base}/predictions/"
    body = _logs(model)
    for name in ("solo", "spread"):
        _put_logs(cluster, logs, f"{namespace}.{name}", body)
    cluster.create(namespace, _deployment("solo", model, logs, 1))
    cluster.create(namespace, _deployment("spread", model, logs, 4))

    solo = wait_for("the one-pod check", lambda: _checked(cluster, namespace, "solo"), 240)
    spread = wait_for("the four-pod check", lambda: _checked(cluster, namespace, "spread"), 240)

    assert _by_feature(spread) == _by_feature(solo)
    assert sorted(f["name"] for f in spread["features"] if f["drifted"]) == list(SHIFTED)
    for field in ("drifted", "driftShare", "driftedFeatures", "checkedFeatures", "windowRows"):
        assert spread.get(field) == solo.get(field), field
    assert spread["checkedFeatures"] == len(FEATURES)
    assert spread["windowRows"] >= ROWS

    (job,) = [
        j
        for j in cluster.jobs(namespace)
        if (j.metadata.labels or {}).get("trailboss.dev/drift-check-of") == "spread"
    ]
    assert (job.spec.completion_mode, job.spec.completions) == ("Indexed", 4)
    assert job.status.succeeded == 4
    for name in ("solo", "spread"):
        status = cluster.status(namespace, "deployments", name)
        condition = next(c for c in status["conditions"] if c["type"] == "DriftMonitoring")
        assert (condition["status"], condition["reason"]) == ("True", "DriftDetected"), condition
