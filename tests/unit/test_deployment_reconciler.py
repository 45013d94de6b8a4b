"""The Deployment reconciler against in-memory fakes: what serves, how a rollout
moves through its steps, and how it promotes, aborts and resumes."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tests.unit.fakes import NOW, FakePrometheus, services
from trailboss.reconcilers import deployment

NS = "ml"
ERRORS = 'sum(rate(errors{version="{{version}}"}[1m]))'


def _mv(name: str, version: int, phase: str = "Validated") -> dict[str, Any]:
    return {
        "apiVersion": "trailboss.dev/v1alpha1",
        "kind": "ModelVersion",
        "metadata": {
            "name": name,
            "namespace": NS,
            "uid": f"uid-{name}",
            "creationTimestamp": f"2026-11-2{version}T00:00:00Z",
        },
        "spec": {"model": "churn", "artifactUri": f"s3://mlflow/{name}/model"},
        "status": {
            "phase": phase,
            "registryVersion": str(version),
            "artifact": {"uri": f"s3://mlflow/{name}/model"},
            "conditions": [
                {"type": "Ready", "status": "True" if phase == "Validated" else "False"}
            ],
        },
    }


def _deployment(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "trailboss.dev/v1alpha1",
        "kind": "Deployment",
        "metadata": {"name": "churn", "namespace": NS, "uid": "dep-1", "generation": 1},
        "spec": {"model": "churn", "replicas": 10, **spec},
    }


class World:
    """A cluster with ModelVersions, a clock we move, and pods that become ready."""

    def __init__(self, **spec: Any) -> None:
        self.svc, self.kube, self.tracking, _ = services()
        self.now = NOW
        self.svc.clock = lambda: self.now
        assert isinstance(self.svc.prometheus, FakePrometheus)
        self.prometheus: FakePrometheus = self.svc.prometheus
        self.body = _deployment(**spec)
        self.kube.put(self.body)
        deployment.forget("dep-1")

    def add(self, *versions: dict[str, Any]) -> None:
        for version in versions:
            self.kube.put(version)

    def reconcile(self) -> dict[str, Any]:
        deployment.reconcile(self.kube.current(self.body), self.svc)
        return self.status()

    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = self.kube.current(self.body).get("status") or {}
        return status

    def edit(self, **spec: Any) -> None:
        body = self.kube.current(self.body)
        body["spec"].update(spec)
        body["metadata"]["generation"] += 1
        self.kube.objects[("Deployment", NS, "churn")] = body

    def annotate(self, key: str, value: str) -> None:
        body = self.kube.objects[("Deployment", NS, "churn")]
        body["metadata"].setdefault("annotations", {})[key] = value

    def pods_ready(self) -> None:
        for (kind, _, _), obj in self.kube.objects.items():
            if kind == "Deployment" and obj["apiVersion"] == "apps/v1":
                obj["status"] = {"readyReplicas": obj["spec"]["replicas"]}

    def servers(self) -> dict[str, int]:
        """Replicas wanted per ModelVersion."""
        return {
            obj["metadata"]["labels"]["trailboss.dev/model-version"]: obj["spec"]["replicas"]
            for (kind, _, _), obj in self.kube.objects.items()
            if kind == "Deployment" and obj["apiVersion"] == "apps/v1"
        }

    def settle(self, seconds: float = 0.0) -> dict[str, Any]:
        """Time passes, pods come up, the operator looks again (twice: the pods it
        scaled once new pods were ready settle too)."""
        self.now += dt.timedelta(seconds=seconds)
        self.reconcile()
        self.pods_ready()
        self.reconcile()
        self.pods_ready()
        return self.reconcile()


def _ready(status: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == "Ready")


def test_serves_a_pinned_validated_version_behind_three_services() -> None:
    world = World(modelVersion="v1")
    world.add(_mv("v1", 1))
    status = world.reconcile()
    assert (status["stableVersion"], status["phase"]) == ("v1", "Progressing")
    assert world.servers() == {"v1": 10}
    services = {n for (k, _, n) in world.kube.objects if k == "Service"}
    assert services == {"churn", "churn-stable", "churn-canary"}
    status = world.settle()
    assert (status["phase"], _ready(status)["status"]) == ("Healthy", "True")
    assert status["url"] == "http://churn.ml.svc.cluster.local:8080"
    server = next(
        o
        for (k, _, _), o in world.kube.objects.items()
        if k == "Deployment" and o["apiVersion"] == "apps/v1"
    )
    pod = server["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["TRAILBOSS_MODEL_URI"] == "s3://mlflow/v1/model"
    assert env["TRAILBOSS_MODEL_VERSION"] == "v1"


def test_a_version_that_has_not_passed_its_gate_is_never_served() -> None:
    world = World(modelVersion="v1")
    world.add(_mv("v1", 1, phase="Rejected"))
    status = world.reconcile()
    assert world.servers() == {}
    assert _ready(status)["reason"] == "VersionNotReady"
    assert "not Validated" in _ready(status)["message"]


def test_canary_follows_the_steps_then_promotes_and_retires_the_old_version() -> None:
    steps = [{"weight": 10, "pause": "1m"}, {"weight": 50, "pause": "1m"}]
    world = World(modelVersion="v1", rollout={"steps": steps, "scaleDownDelay": "30s"})
    world.add(_mv("v1", 1), _mv("v2", 2))
    world.settle()
    world.edit(modelVersion="v2")
    status = world.settle()
    assert (status["canaryVersion"], status["canaryWeight"], status["phase"]) == (
        "v2",
        10,
        "Progressing",
    )
    assert world.servers() == {"v1": 9, "v2": 1}
    assert {t["role"]: t["actualWeight"] for t in status["traffic"]} == {"stable": 90, "canary": 10}
    assert world.settle(30)["canaryWeight"] == 10  # still pausing
    assert world.settle(31)["canaryWeight"] == 50
    assert world.servers() == {"v1": 5, "v2": 5}
    world.settle(61)  # 100 %: the last step has no pause
    status = world.settle(1)
    assert (status["stableVersion"], status.get("canaryVersion")) == ("v2", None)
    assert status["phase"] == "Healthy"
    assert [p["version"] for p in status["promoted"]] == ["v1", "v2"]  # v1: first served
    assert world.servers() == {"v1": 0, "v2": 10}
    world.settle(31)
    assert world.servers() == {"v2": 10}
    assert "canaryWeight" not in world.status()  # cleared on the server, not left stale


def test_replace_keeps_the_stable_pods_until_the_new_ones_are_ready() -> None:
    world = World(modelVersion="v1", rollout={"strategy": "Replace"})
    world.add(_mv("v1", 1), _mv("v2", 2))
    world.settle()
    world.edit(modelVersion="v2")
    status = world.reconcile()  # 100 % at once, but no v2 pod answers yet
    assert (status["canaryVersion"], status["canaryWeight"]) == ("v2", 100)
    assert world.servers() == {"v1": 10, "v2": 10}
    world.pods_ready()
    world.reconcile()
    assert world.servers()["v1"] == 0
    status = world.settle(1)
    assert (status["stableVersion"], status.get("canaryVersion")) == ("v2", None)


def test_a_step_holds_its_weight_for_the_whole_pause_after_its_pods_are_ready() -> None:
    steps = [{"weight": 10, "pause": "1m"}, {"weight": 50, "pause": "1m"}]
    world = World(modelVersion="v1", rollout={"steps": steps})
    world.add(_mv("v1", 1), _mv("v2", 2))
    world.settle()
    world.edit(modelVersion="v2")
    world.reconcile()  # 10 %: the canary's pod is starting
    world.now += dt.timedelta(seconds=40)
    assert world.reconcile()["canaryWeight"] == 10
    world.pods_ready()  # 40 s later its pod is ready: the minute starts now
    assert world.reconcile()["canaryWeight"] == 10
    assert world.settle(59)["canaryWeight"] == 10
    assert world.settle(2)["canaryWeight"] == 50


ANALYSIS = {
    "prometheusUrl": "http://prometheus:9090",
    "interval": "10s",
    "failureLimit": 1,
    "queries": [{"name": "error-rate", "query": ERRORS, "max": 0.05}],
}


def _rolling(**rollout: Any) -> World:
    world = World(modelVersion="v1", rollout={"steps": [{"weight": 10, "pause": "5m"}], **rollout})
    world.add(_mv("v1", 1), _mv("v2", 2), _mv("v3", 3))
    world.settle()
    world.edit(modelVersion="v2")
    return world


def test_failed_analysis_returns_traffic_to_stable_and_names_the_bound() -> None:
    world = _rolling(analysis=ANALYSIS)
    world.prometheus.answers['sum(rate(errors{version="v2"}[1m]))'] = 0.3
    world.settle()
    assert world.status()["canaryVersion"] == "v2"  # one failure is within the limit
    status = world.settle(10)
    assert status.get("canaryVersion") is None
    assert (status["phase"], status["abortedVersion"]) == ("Degraded", "v2")
    message = _ready(status)["message"]
    assert "error-rate = 0.3 is above its maximum 0.05" in message
    assert world.servers() == {"v1": 10, "v2": 0}
    assert any(reason == "AnalysisFailed" for reason, _ in world.kube.events)
    # Not retried while the spec still asks for it.
    assert world.settle(600)["phase"] == "Degraded"
    assert world.servers() == {"v1": 10}


def test_limits_beyond_the_kept_history_still_abort() -> None:
    """Status keeps the last 20 measurements; failureLimit and consecutiveErrorLimit
    count every measurement of the rollout."""
    queries = [
        {"name": "error-rate", "query": ERRORS, "max": 0.05},
        {"name": "up", "query": "up", "min": 1},
    ]
    analysis = {**ANALYSIS, "failureLimit": 24, "queries": queries}
    world = _rolling(analysis=analysis, progressDeadline="30m")
    world.prometheus.answers['sum(rate(errors{version="v2"}[1m]))'] = 0.3
    world.prometheus.answers["up"] = 1.0
    world.settle()
    for _ in range(23):
        assert world.settle(10)["phase"] == "Progressing"
    status = world.settle(10)  # the 25th failure
    assert (status["phase"], status["analysisFailures"]) == ("Degraded", 25)
    assert "analysis failed 25 times" in _ready(status)["message"]

    errors = {**ANALYSIS, "consecutiveErrorLimit": 24}
    world = _rolling(analysis=errors, progressDeadline="30m")
    world.prometheus.down = True
    world.settle()
    for _ in range(23):
        assert world.settle(10)["phase"] == "Progressing"
    status = world.settle(10)
    assert (status["phase"], status["analysisConsecutiveErrors"]) == ("Degraded", 25)
    assert "25 analysis errors in a row" in _ready(status)["message"]


def test_no_data_holds_the_step_and_the_progress_deadline_aborts() -> None:
    world = _rolling(analysis=ANALYSIS, progressDeadline="2m")
    status = world.settle()
    assert status["analysis"][-1]["phase"] == "Inconclusive"
    assert world.settle(60)["canaryWeight"] == 10  # held, within the deadline
    status = world.settle(70)
    assert status["phase"] == "Degraded"
    assert _ready(status)["reason"] == "Aborted"
    assert "no data" in _ready(status)["message"]


def test_a_newer_version_mid_rollout_supersedes_the_canary() -> None:
    world = _rolling()
    world.settle()
    world.edit(modelVersion="v3")
    status = world.settle()
    assert (status["canaryVersion"], status["currentStep"]) == ("v3", 0)
    assert status["stableVersion"] == "v1"
    assert world.servers() == {"v1": 9, "v3": 1, "v2": 0}


def test_a_repeated_reconcile_neither_skips_nor_repeats_a_step() -> None:
    world = _rolling()
    status = world.settle()
    for _ in range(5):  # restarts, resyncs, events: no time passes, nothing moves
        assert world.reconcile()["canaryWeight"] == status["canaryWeight"]
    assert [r for r, _ in world.kube.events].count("RolloutStarted") == 1


def test_manual_promote_and_abort_act_once_per_request() -> None:
    world = _rolling()
    world.settle()
    world.annotate("trailboss.dev/promote", "2026-11-22T10:00:00Z")
    status = world.settle()
    assert (status["stableVersion"], status.get("canaryVersion")) == ("v2", None)
    world.edit(modelVersion="v3")
    world.settle()
    world.settle()
    assert world.status()["canaryVersion"] == "v3"  # the old request is not replayed
    world.annotate("trailboss.dev/abort", "once")
    status = world.settle()
    assert (status["phase"], status["abortedVersion"]) == ("Degraded", "v3")


def test_version_policy_picks_the_newest_validated_version_by_itself() -> None:
    world = World(versionPolicy={"latest": "Validated"})
    world.add(_mv("v1", 1), _mv("v2", 2, phase="Rejected"))
    assert world.settle()["stableVersion"] == "v1"
    world.add(_mv("v3", 3))
    status = world.settle()
    assert status["canaryVersion"] == "v3"
    assert "v2" not in world.servers()


def test_http_route_router_weights_the_backends() -> None:
    world = _rolling(analysis=None)
    world.edit(trafficRouter={"kind": "HTTPRoute", "gateway": "public"})
    world.settle()
    route = world.kube.objects[("HTTPRoute", NS, "churn")]
    backends = {b["name"]: b["weight"] for b in route["spec"]["rules"][0]["backendRefs"]}
    assert backends == {"churn-stable": 90, "churn-canary": 10}
    assert world.servers() == {"v1": 10, "v2": 1}
    # Inside the cluster <name> serves stable only: the weights are the Gateway's.
    main = world.kube.objects[("Service", NS, "churn")]
    assert main["spec"]["selector"]["trailboss.dev/model-version"] == "v1"


def _route_backends(world: World) -> dict[str, int]:
    route = world.kube.objects.get(("HTTPRoute", NS, "churn"))
    if route is None:
        return {}
    return {b["name"]: b["weight"] for b in route["spec"]["rules"][0]["backendRefs"]}


def _backends_without_pods(world: World, backends: dict[str, int]) -> list[str]:
    """Services a route sends requests to whose selector finds no server."""
    served = {v for v, replicas in world.servers().items() if replicas > 0}
    empty = []
    for name, weight in backends.items():
        chosen = world.kube.objects[("Service", NS, name)]["spec"]["selector"]
        if weight > 0 and chosen["trailboss.dev/model-version"] not in served:
            empty.append(name)
    return empty


@pytest.mark.parametrize("ending", ["promote", "abort"])
def test_a_backend_the_gateway_may_still_weight_always_has_pods(ending: str) -> None:
    # A Gateway applies a new route some time after the Services change: both
    # the route it has and the one it is given must find pods behind every weight.
    world = _rolling(analysis=None)
    world.edit(trafficRouter={"kind": "HTTPRoute", "gateway": "public"})
    if ending == "abort":
        world.settle()
        world.annotate("trailboss.dev/abort", "now")
    for _ in range(8):
        before = _route_backends(world)
        world.now += dt.timedelta(minutes=3)
        world.reconcile()
        assert _backends_without_pods(world, before) == []
        assert _backends_without_pods(world, _route_backends(world)) == []
        world.pods_ready()
    status = world.status()
    assert status["stableVersion"] == ("v2" if ending == "promote" else "v1")
    assert status.get("canaryVersion") is None


def test_shadow_is_refused_by_name_rather_than_ignored() -> None:
    world = World(modelVersion="v1", rollout={"strategy": "Shadow"})
    world.add(_mv("v1", 1))
    status = world.reconcile()
    assert _ready(status)["reason"] == "UnsupportedConfiguration"
    assert "spec.rollout.strategy" in _ready(status)["message"]


@pytest.fixture(autouse=True)
def _isolated() -> None:
    deployment.forget("dep-1")
