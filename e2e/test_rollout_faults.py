"""Rollouts under the faults only a real cluster shows: an abort that must keep
every request served while pods move, an MLflow outage under an alias policy
in the middle of a canary, and the stable version's ModelVersion deleted while
it serves. Real model servers, kube-proxy, Prometheus and MLflow throughout."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from e2e.cluster import Cluster, Operator, OwnMlflow, own_labels, wait_for
from e2e.lifecycle import mlflow
from e2e.serving import Load, ready_pods, served_versions, share
from e2e.test_deployment import REPLICAS, _deployment, _infer_url, _set_version

pytestmark = pytest.mark.usefixtures("running_operator")  # and the alias test its own
pytest_plugins = ("e2e.rollout_models",)  # the `models` fixture


@pytest.fixture
def serving(cluster: Cluster, namespace: str, models: dict[str, str]) -> Iterator[Load]:
    cluster.create(namespace, _deployment(models, "v1"))
    status = cluster.wait_phase(namespace, "deployments", "churn", {"Healthy"}, 240)
    assert status["stableVersion"] == "v1"
    with Load(_infer_url(cluster, namespace, models["model"])) as load:
        load.answering()
        yield load


def _status(cluster: Cluster, namespace: str) -> dict[str, Any]:
    return cluster.status(namespace, "deployments", "churn")


def _annotate(cluster: Cluster, namespace: str, key: str, value: str) -> None:
    cluster.kubectl(
        "-n", namespace, "annotate", "--overwrite", "deployments.trailboss.dev", "churn",
        f"{key}={value}",
    )  # fmt: skip


@pytest.mark.long(140)
def test_an_abort_under_the_replica_ratio_keeps_every_request_served(
    cluster: Cluster, namespace: str, serving: Load
) -> None:
    """v2's canary at 50 % (2 of 4 pods each), then an abort: the stable scales
    back up while the canary's pods still serve (v2's pods go once the stable has
    `replicas` minus one ready, as a rolling update with maxUnavailable 1), the stable
    ends with all its pods, and no request fails."""
    since = serving.answering()
    _set_version(cluster, namespace, "v2")
    wait_for("v2's 50 % step with its pods ready", lambda: _at_weight(cluster, namespace, 50), 180)
    _annotate(cluster, namespace, "trailboss.dev/abort", "now")
    status = cluster.wait_phase(namespace, "deployments", "churn", {"Degraded"}, 120)
    assert (status["stableVersion"], status["abortedVersion"]) == ("v1", "v2")
    wait_for("v2's pods gone", lambda: served_versions(cluster, namespace) == {"v1"}, 90)
    # status.traffic is written after the pass that deleted v2; the stable's own
    # Deployment is what that pass read.
    assert ready_pods(cluster, namespace, "v1") >= REPLICAS - 1
    wait_for("the stable back at all its pods",
             lambda: _stable_ready(cluster, namespace) == REPLICAS, 90)  # fmt: skip
    assert serving.failures(since=since) == 0, serving.errors(since=since)


def _stable_ready(cluster: Cluster, namespace: str) -> int:
    """Ready pods of the stable version, as status.traffic reports them."""
    traffic = _status(cluster, namespace).get("traffic") or []
    stable: dict[str, Any] = next((t for t in traffic if t["role"] == "stable"), {})
    ready: int = stable.get("readyReplicas") or 0
    return ready


def _at_weight(cluster: Cluster, namespace: str, weight: int) -> bool:
    status = _status(cluster, namespace)
    traffic = status.get("traffic") or []
    return status.get("canaryWeight") == weight and all(
        t["replicas"] == t["readyReplicas"] > 0 for t in traffic
    )


@pytest.mark.long(190)
def test_an_mlflow_outage_under_an_alias_policy_still_aborts_a_bad_canary(
    cluster: Cluster,
    namespace: str,
    own_mlflow: OwnMlflow,
    own_operator: Operator,
    models: dict[str, str],
) -> None:
    """The alias moves to bad v3; once its canary runs MLflow (the test's own)
    stops: the target cannot be resolved, yet analysis goes on and aborts v3
    back to v1."""
    model, registry = models["model"], mlflow(own_mlflow.env)
    number = {n: cluster.status(namespace, "modelversions", n)["registryVersion"]
              for n in ("v1", "v3")}  # fmt: skip
    registry.set_registered_model_alias(model, "champion", number["v1"])
    spec = _deployment(models, "v1")
    del spec["spec"]["modelVersion"]
    spec["spec"]["versionPolicy"] = {"alias": "champion"}
    spec["metadata"]["labels"] = own_labels(namespace)
    cluster.create(namespace, spec)
    cluster.wait_phase(namespace, "deployments", "churn", {"Healthy"}, 240)
    with Load(_infer_url(cluster, namespace, model)) as load:
        load.answering()
        registry.set_registered_model_alias(model, "champion", number["v3"])
        wait_for("v3's canary serving its first step",
                 lambda: _status(cluster, namespace).get("canaryVersion") == "v3"
                 and _at_weight(cluster, namespace, 25), 180)  # fmt: skip
        own_mlflow.stop()
        status = cluster.wait_phase(namespace, "deployments", "churn", {"Degraded"}, 240)
        assert (status["stableVersion"], status["abortedVersion"]) == ("v1", "v3")
        assert "error-rate" in _ready_message(status)
        aborted_at = time.monotonic()
        time.sleep(10)  # an analysis interval: v3's traffic is gone by now
        assert share(load.since(aborted_at + 5), "v3") == 0.0
        assert load.failures(since=aborted_at + 5) == 0


def _condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    found: dict[str, Any] = next(c for c in status["conditions"] if c["type"] == kind)
    return found


def _ready_message(status: dict[str, Any]) -> str:
    return str(_condition(status, "Ready")["message"])


@pytest.mark.long(180)
def test_deleting_the_stable_versions_modelversion_keeps_serving(
    cluster: Cluster, namespace: str, models: dict[str, str], serving: Load
) -> None:
    """`kubectl delete mver v1` while v1 serves: v1 keeps answering every
    request, and the next version still rolls out and takes over."""
    since = serving.answering()
    cluster.kubectl("-n", namespace, "delete", "modelversions.trailboss.dev", "v1", "--wait=false")
    # The spec still names v1, which is going: not Ready, but v1 keeps serving and
    # its ModelVersion waits until no Deployment serves it.
    cluster.wait_reason(namespace, "modelversions", "v1", "InUse", 60)
    time.sleep(20)  # two analysis intervals, several reconciles of the Deployment
    status = _status(cluster, namespace)
    assert status["stableVersion"] == "v1"
    assert _condition(status, "Available")["status"] == "True"
    assert "being deleted" in _condition(status, "Ready")["message"]
    assert share(serving.since(since), "v1") == 1.0
    _set_version(cluster, namespace, "v2")
    status = cluster.wait_phase(namespace, "deployments", "churn", {"Healthy", "Degraded"}, 240)
    assert (status["phase"], status["stableVersion"]) == ("Healthy", "v2")
    wait_for("v1's ModelVersion gone", lambda: cluster.get(namespace, "modelversions", "v1")
             is None, 120)  # fmt: skip
    assert serving.failures(since=since) == 0, serving.errors(since=since)
