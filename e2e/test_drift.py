"""Drift monitoring on the real stack: a ModelVersion's reference profile built
by a Job, a served model under load from a bounded client, drift checks run as
Jobs every interval, and their results in status, events and Prometheus."""

from __future__ import annotations

import io
import json
import random
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from e2e.cluster import Cluster, wait_for
from e2e.lifecycle import s3, split
from e2e.serving import FEATURES, Load, model_version, publish_model

pytestmark = pytest.mark.usefixtures("running_operator")
SHIFTED = ("f1", "f2")
INTERVAL_SECONDS = 20


def _reference_csv(rows: int = 5000) -> bytes:
    rng = random.Random(1)
    out = io.StringIO()
    out.write(",".join(FEATURES) + "\n")
    for _ in range(rows):
        out.write(",".join(f"{rng.gauss(0, 1):.6f}" for _ in FEATURES) + "\n")
    return out.getvalue().encode()


class Inputs:
    """Rows drawn like the reference; `shift()` moves two features by 1.5 sd."""

    def __init__(self) -> None:
        self.rng = random.Random(2)
        self.offset = dict.fromkeys(FEATURES, 0.0)

    def shift(self) -> None:
        for name in SHIFTED:
            self.offset[name] = 1.5

    def __call__(self) -> list[list[float]]:
        return [[self.rng.gauss(self.offset[f], 1) for f in FEATURES] for _ in range(10)]


@pytest.fixture
def monitored(cluster: Cluster, namespace: str) -> Iterator[tuple[Inputs, Load]]:
    model, base = f"drift-{namespace}", f"s3://mlflow/e2e/{namespace}"
    publish_model(cluster.env, f"{base}/v1/model")
    bucket, key = split(f"{base}/reference.csv")
    s3(cluster.env).put_object(Bucket=bucket, Key=key, Body=_reference_csv())
    version = model_version("v1", model, f"{base}/v1/model")
    version["spec"]["referenceData"] = f"{base}/reference.csv"
    cluster.create(namespace, version)
    wait_for("the reference profile", lambda: cluster.status(
        namespace, "modelversions", "v1").get("referenceProfile"), 180)  # fmt: skip
    cluster.create(namespace, {
        "apiVersion": "trailboss.dev/v1alpha1",
        "kind": "Deployment",
        "metadata": {"name": "churn"},
        "spec": {
            "model": model,
            "modelVersion": "v1",
            "monitoring": {
                "predictionLogs": f"{base}/predictions",
                "interval": f"{INTERVAL_SECONDS}s",
                "window": "30s",
                "minSamples": 500,
            },
        },
    })  # fmt: skip
    cluster.wait_phase(namespace, "deployments", "churn", {"Healthy"}, 240)
    service = cluster.core.read_namespaced_service("churn", namespace)
    inputs = Inputs()
    url = f"http://{service.spec.cluster_ip}:8080/v2/models/{model}/infer"
    with Load(url, rows=inputs, per_second=10, limit=4000, deadline=360) as load:
        yield inputs, load


def _drift(cluster: Cluster, namespace: str) -> dict[str, Any]:
    drift: dict[str, Any] = cluster.status(namespace, "deployments", "churn").get("drift") or {}
    return drift


def _next_check(cluster: Cluster, namespace: str, after: int) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        drift = _drift(cluster, namespace)
        return drift if (drift.get("checks") or 0) > after else None

    return wait_for(f"drift check {after + 1}", done, 6 * INTERVAL_SECONDS)


def _promql(cluster: Cluster, query: str) -> list[dict[str, Any]]:
    url = f"{cluster.env['TRAILBOSS_PROMETHEUS_URL']}/api/v1/query?" + urllib.parse.urlencode(
        {"query": query}
    )
    with urllib.request.urlopen(url, timeout=10) as reply:
        result: list[dict[str, Any]] = json.load(reply)["data"]["result"]
        return result


def test_drift_checks_find_exactly_the_shifted_features(
    cluster: Cluster, namespace: str, monitored: tuple[Inputs, Load]
) -> None:
    inputs, load = monitored
    profile = cluster.status(namespace, "modelversions", "v1")["referenceProfile"]
    assert (profile["rows"], profile["features"]) == (5000, len(FEATURES))

    # Unshifted traffic: several checks with enough rows, none drifted.
    decided, checks = 0, 0
    while decided < 3:
        drift = _next_check(cluster, namespace, checks)
        checks = drift["checks"]
        if drift.get("drifted") is None:
            continue  # the first windows may hold too few rows: InsufficientData
        assert drift["drifted"] is False, drift
        assert not [f["name"] for f in drift["features"] if f["drifted"]], drift
        decided += 1

    inputs.shift()
    shifted_at = time.time()
    while True:
        drift = _next_check(cluster, namespace, checks)
        checks = drift["checks"]
        if drift.get("drifted"):
            break
        assert time.time() - shifted_at < 150, f"no drift found after the shift: {drift}"
    assert sorted(f["name"] for f in drift["features"] if f["drifted"]) == list(SHIFTED)
    assert drift["windowRows"] >= 500
    assert load.failures() == 0

    condition = next(
        c for c in cluster.status(namespace, "deployments", "churn")["conditions"]
        if c["type"] == "DriftMonitoring"
    )  # fmt: skip
    assert (condition["status"], condition["reason"]) == ("True", "DriftDetected")
    events = [e for e in cluster.events(namespace, "churn") if e.reason == "DriftDetected"]
    assert events
    assert all(name in events[-1].message for name in SHIFTED)

    selector = f'namespace="{namespace}",deployment="churn"'

    def exported() -> list[str] | None:
        series = _promql(cluster, f"trailboss_drift_detected{{{selector}}} == 1")
        names = sorted(s["metric"]["feature"] for s in series)
        return names if names == list(SHIFTED) else None

    assert wait_for("Prometheus to hold the drifted features", exported, 60) == list(SHIFTED)
    share = _promql(cluster, f"trailboss_drift_share{{{selector}}}")
    assert share
    assert float(share[0]["value"][1]) >= 0.5
