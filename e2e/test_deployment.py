"""Deployments on the stack's real data plane: model servers in pods with their
own addresses, kube-proxy balancing the Service, Prometheus scraping the
servers, and a client sending requests through every rollout. A good version's
canary under the replica-ratio router is checked with the whole loop, in
test_retraining.py."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from e2e.cluster import ROOT, Cluster, Operator, own_labels, ready, wait_for
from e2e.serving import (
    Load,
    model_version,
    near_weight,
    served_versions,
    share,
)

pytestmark = pytest.mark.usefixtures("running_operator")
pytest_plugins = ("e2e.rollout_models",)  # the `models` fixture
REPLICAS = 4
STEPS = [{"weight": 25, "pause": "25s"}, {"weight": 50, "pause": "25s"}]


def _deployment(models: dict[str, str], version: str, **spec: Any) -> dict[str, Any]:
    error_rate = (
        f'sum(rate(trailboss_model_requests_total{{model="{models["model"]}",'
        'version="{{version}}",outcome="error"}[20s])) / '
        f'sum(rate(trailboss_model_requests_total{{model="{models["model"]}",'
        'version="{{version}}"}[20s]))'
    )
    rollout = {
        "steps": STEPS,
        "scaleDownDelay": "5s",
        "analysis": {
            "prometheusUrl": models["prometheus"],
            "interval": "10s",
            "failureLimit": 1,
            "queries": [{"name": "error-rate", "query": error_rate, "max": 0.05}],
        },
    }
    return {
        "apiVersion": "trailboss.dev/v1alpha1",
        "kind": "Deployment",
        "metadata": {"name": "churn"},
        "spec": {
            "model": models["model"],
            "modelVersion": version,
            "replicas": REPLICAS,
            "rollout": rollout,
            **spec,
        },
    }


def _set_version(cluster: Cluster, namespace: str, version: str) -> None:
    """Pin another version, as a Git commit would, and wait until the operator saw it."""
    cluster.kubectl(
        "-n",
        namespace,
        "patch",
        "deployments.trailboss.dev",
        "churn",
        "--type=merge",
        "-p",
        f'{{"spec":{{"modelVersion":"{version}"}}}}',
    )
    wait_for(
        f"the operator to target {version}",
        lambda: cluster.status(namespace, "deployments", "churn").get("targetVersion") == version,
        60,
    )


def _infer_url(cluster: Cluster, namespace: str, model: str) -> str:
    service = cluster.core.read_namespaced_service("churn", namespace)
    return f"http://{service.spec.cluster_ip}:8080/v2/models/{model}/infer"


@pytest.fixture
def serving(cluster: Cluster, namespace: str, models: dict[str, str]) -> Iterator[Load]:
    yield from _serve(cluster, namespace, models, labels={})


@pytest.fixture
def own_serving(
    cluster: Cluster, namespace: str, models: dict[str, str], own_operator: Operator
) -> Iterator[Load]:
    """`serving`, with the Deployment handled by the test's own operator."""
    yield from _serve(cluster, namespace, models, labels=own_labels(namespace))


def _serve(
    cluster: Cluster, namespace: str, models: dict[str, str], labels: dict[str, str]
) -> Iterator[Load]:
    logs = {"predictionLogs": f"s3://mlflow/e2e/{namespace}/predictions"}
    deployment = _deployment(models, "v1", monitoring=logs)
    deployment["metadata"]["labels"] = labels
    cluster.create(namespace, deployment)
    status = cluster.wait_phase(namespace, "deployments", "churn", {"Healthy"}, 240)
    assert status["stableVersion"] == "v1"
    with Load(_infer_url(cluster, namespace, models["model"])) as load:
        yield load


def _step_shares(cluster: Cluster, namespace: str, load: Load) -> dict[int, tuple[float, int]]:
    """The canary's observed share of answers during each step and how many answers
    it is of, by canary weight."""
    seen: dict[int, tuple[float, int]] = {}
    while True:
        status = cluster.status(namespace, "deployments", "churn")
        weight = status.get("canaryWeight")
        if status.get("phase") != "Progressing" or weight is None or weight == 100:
            return seen
        if weight in seen:
            time.sleep(1)
            continue
        # Starting a version's servers costs seconds of CPU each; on two busy cores
        # (the side-by-side tests start theirs too) a step's pods can take over a minute.
        wait_for(f"the {weight}% step's pods", lambda: _traffic_settled(cluster, namespace), 150)
        start = time.monotonic()
        time.sleep(15)  # within the step's 25 s pause
        answers = load.since(start)
        seen[weight] = (share(answers, status["canaryVersion"]), sum(a.ok for a in answers))


def _traffic_settled(cluster: Cluster, namespace: str) -> bool:
    traffic = cluster.status(namespace, "deployments", "churn").get("traffic") or []
    return all(t["replicas"] == t["readyReplicas"] for t in traffic)


@pytest.mark.long(130)
def test_a_bad_version_is_rolled_back_by_prometheus_analysis(
    cluster: Cluster, namespace: str, serving: Load
) -> None:
    _set_version(cluster, namespace, "v3")
    status = cluster.wait_phase(namespace, "deployments", "churn", {"Degraded", "Healthy"}, 240)
    assert (status["phase"], status["stableVersion"], status["abortedVersion"]) == (
        "Degraded",
        "v1",
        "v3",
    )
    message = ready(status)["message"]
    assert "error-rate" in message, message
    assert "above its maximum 0.05" in message, message
    aborted_at = time.monotonic()
    failed = [a for a in status["analysis"] if a["phase"] == "Failed"]
    assert len(failed) == 2  # failureLimit 1: the second failure aborts
    time.sleep(10)  # one analysis interval: the canary's traffic must be gone by now
    assert share(serving.since(aborted_at + 5), "v3") == 0.0
    assert _argocd_health(status) == "Degraded"
    still = cluster.status(namespace, "deployments", "churn")
    assert (still["phase"], still.get("canaryVersion")) == ("Degraded", None)


@pytest.mark.long(200)
def test_a_newer_version_mid_rollout_supersedes_the_canary(
    cluster: Cluster, namespace: str, models: dict[str, str], serving: Load
) -> None:
    """v1 serves, v2's canary starts, then Git moves on to v4: v2's canary is
    dropped, v4 starts over from stable v1 and is promoted; no request fails."""
    good = f"s3://mlflow/e2e/{namespace}/v2/model"
    cluster.create(namespace, model_version("v4", models["model"], good))
    cluster.wait_phase(namespace, "modelversions", "v4", {"Validated"}, 180)
    since = time.monotonic()
    _set_version(cluster, namespace, "v2")
    wait_for("v2's first canary step", lambda: _canary(cluster, namespace) == ("v2", 25), 120)
    _set_version(cluster, namespace, "v4")
    wait_for("v4 to replace v2 as the canary", lambda: _canary(cluster, namespace)[0] == "v4", 60)
    assert cluster.status(namespace, "deployments", "churn")["stableVersion"] == "v1"
    shares = _step_shares(cluster, namespace, serving)
    status = cluster.wait_phase(namespace, "deployments", "churn", {"Healthy", "Degraded"}, 240)
    assert (status["phase"], status["stableVersion"]) == ("Healthy", "v4")
    assert sorted(shares) == [25, 50], shares
    for weight, (observed, answers) in shares.items():
        assert near_weight(observed, weight, answers), shares
    assert serving.failures(since=since) == 0, serving.errors(since=since)
    reasons = [e.reason for e in cluster.events(namespace, "churn")]
    assert reasons.count("Superseded") == 1, reasons
    wait_for("v1 and v2 scaled away", lambda: served_versions(cluster, namespace) == {"v4"}, 60)
    waited = cluster.kubectl(
        "-n", namespace, "wait", "--for=condition=Ready", "deployments.trailboss.dev/churn",
        "--timeout=30s",
    )  # fmt: skip
    assert waited.returncode == 0, waited.stderr


def _canary(cluster: Cluster, namespace: str) -> tuple[str | None, int | None]:
    status = cluster.status(namespace, "deployments", "churn")
    return status.get("canaryVersion"), status.get("canaryWeight")


def _argocd_health(status: dict[str, Any]) -> str:
    from lupa import lua51

    script = (ROOT / "deploy/argocd/health/trailboss.dev_Deployment/health.lua").read_text()
    lua = lua51.LuaRuntime(unpack_returned_tuples=True)
    obj = {"metadata": {"generation": status.get("observedGeneration")}, "status": status}
    lua.globals().obj = lua.table_from(obj, recursive=True)
    health = lua.execute(script)
    return str(health["status"])


def _gateway(cluster: Cluster) -> tuple[str, str, str]:
    """(namespace, name, base URL) of the Gateway the stack installs."""
    ref, url = cluster.env.get("TRAILBOSS_GATEWAY"), cluster.env.get("TRAILBOSS_GATEWAY_URL")
    if not ref or not url:
        pytest.fail("the stack exports no TRAILBOSS_GATEWAY(_URL): no Gateway API data plane")
    namespace, _, name = ref.partition("/")
    return namespace, name, url.rstrip("/")


@pytest.mark.long(240)
def test_httproute_router_follows_the_steps_and_rolls_back_a_bad_version(
    cluster: Cluster, namespace: str, models: dict[str, str]
) -> None:
    gateway_ns, gateway, base = _gateway(cluster)
    host = f"churn.{namespace}.example"
    router = {"kind": "HTTPRoute", "gateway": gateway, "gatewayNamespace": gateway_ns,
              "hostnames": [host]}  # fmt: skip
    cluster.create(namespace, _deployment(models, "v1", trafficRouter=router))
    cluster.wait_phase(namespace, "deployments", "churn", {"Healthy"}, 240)
    url = f"{base}/v2/models/{models['model']}/infer"
    with Load(url, host=host) as load:
        wait_for("the route to answer", lambda: share(load.since(time.monotonic() - 2),
                                                      "v1") == 1.0, 60)  # fmt: skip
        answering = time.monotonic()  # requests before the Gateway knew the route do not count
        _set_version(cluster, namespace, "v2")
        shares = _step_shares(cluster, namespace, load)
        status = cluster.wait_phase(namespace, "deployments", "churn", {"Healthy"}, 240)
        assert status["stableVersion"] == "v2"
        for weight, (observed, answers) in shares.items():
            assert near_weight(observed, weight, answers), shares
        assert load.failures(since=answering) == 0
        _set_version(cluster, namespace, "v3")
        status = cluster.wait_phase(namespace, "deployments", "churn", {"Degraded"}, 240)
        aborted_at = time.monotonic()
        assert (status["stableVersion"], status["abortedVersion"]) == ("v2", "v3")
        time.sleep(10)
        assert share(load.since(aborted_at + 5), "v3") == 0.0


@pytest.mark.long(120)
def test_version_policy_rolls_out_a_newly_validated_version_and_never_a_rejected_one(
    cluster: Cluster, namespace: str, models: dict[str, str]
) -> None:
    policy = {"latest": "Validated", "matchLabels": {"team": "churn"}}
    spec = _deployment(models, "v1")
    del spec["spec"]["modelVersion"]
    spec["spec"]["versionPolicy"] = policy
    spec["spec"]["rollout"] = {"strategy": "Replace"}
    cluster.create(namespace, spec)
    # No ModelVersion carries the label yet: the Deployment says so and serves nothing.
    cluster.wait_reason(namespace, "deployments", "churn", "VersionNotFound", 60)
    _label(cluster, namespace, "v1")
    cluster.wait_phase(namespace, "deployments", "churn", {"Healthy"}, 240)
    rejected = model_version("v4", models["model"], f"s3://mlflow/e2e/{namespace}/v1/model")
    rejected["metadata"]["labels"] = {"team": "churn"}
    rejected["spec"]["validation"] = {"minimums": {"accuracy": 0.99}}
    cluster.create(namespace, rejected)
    cluster.wait_phase(namespace, "modelversions", "v4", {"Rejected"}, 120)
    status = cluster.status(namespace, "deployments", "churn")
    assert (status["stableVersion"], status["targetVersion"]) == ("v1", "v1")
    _label(cluster, namespace, "v2")
    wait_for("v2 promoted by the policy", lambda: cluster.status(
        namespace, "deployments", "churn").get("stableVersion") == "v2", 180)  # fmt: skip
    assert "v4" not in served_versions(cluster, namespace)


def _label(cluster: Cluster, namespace: str, version: str) -> None:
    cluster.kubectl("-n", namespace, "label", "modelversions.trailboss.dev", version, "team=churn")


@pytest.mark.long(240)
def test_kill_9_during_a_rollout_resumes_from_status(
    cluster: Cluster, namespace: str, own_serving: Load, own_operator: Operator
) -> None:
    """kill -9 of the operator at three points of a rollout: its own, so the
    others run on."""
    _set_version(cluster, namespace, "v2")
    seen_steps: list[int] = []
    for _ in range(3):  # kill at three points of the rollout
        wait_for("the rollout to move", lambda: cluster.status(
            namespace, "deployments", "churn").get("canaryWeight") not in (None, *seen_steps),
            120)  # fmt: skip
        seen_steps.append(cluster.status(namespace, "deployments", "churn")["canaryWeight"])
        own_operator.kill()
        time.sleep(2)
        own_operator.start()
        if seen_steps[-1] == 50:
            break
    status = cluster.wait_phase(namespace, "deployments", "churn", {"Healthy", "Degraded"}, 240)
    assert (status["phase"], status["stableVersion"]) == ("Healthy", "v2")
    assert seen_steps[-1] == 50  # every step was taken, none skipped by a restart
    assert served_versions(cluster, namespace) <= {"v1", "v2"}
    # Events are posted after the status write that they announce, so a kill in
    # between loses one (each kill here lands right after such a write); a
    # restart must never announce a step twice.
    events = [e.reason for e in cluster.events(namespace, "churn")]
    assert events.count("Promoted") == 1
    assert events.count("RolloutStarted") <= 1
    assert events.count("StepStarted") <= 2  # 25 -> 50 -> 100
