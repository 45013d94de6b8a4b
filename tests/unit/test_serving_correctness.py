"""What a served model does when its target, its registry, its ModelVersions or
its capacity change under it mid-rollout, as a user sees it: status,
conditions, events, pods and the operator's metrics."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from tests.unit.test_deployment_reconciler import ANALYSIS, NS, World, _mv, _ready
from trailboss import metrics
from trailboss.handlers import deployment as deployment_handlers
from trailboss.reconcilers import deployment, modelversion_deletion

ROOT = Path(__file__).resolve().parents[2]
BAD = 'sum(rate(errors{version="v2"}[1m]))'


def _condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == type_)


def _serving_v1(**spec: Any) -> World:
    """v1 stable and Healthy; v2 and v3 Validated, ready to roll out in 50 % steps."""
    rollout = {"steps": [{"weight": 50, "pause": "1h"}], "progressDeadline": "2h"}
    if "versionPolicy" not in spec:
        spec = {"modelVersion": "v1", **spec}
    world = World(**{"rollout": rollout, **spec})
    world.add(_mv("v1", 1), _mv("v2", 2), _mv("v3", 3))
    world.tracking.aliases[("churn", "champion")] = "1"
    world.settle()
    return world


# ----------------------------------------------------------- MLflow outage (alias)


def test_an_mlflow_outage_keeps_the_alias_target_and_still_aborts_a_bad_canary() -> None:
    analysis = {**ANALYSIS, "failureLimit": 1}
    rollout = {"steps": [{"weight": 50, "pause": "1h"}], "analysis": analysis}
    world = World(versionPolicy={"alias": "champion"}, rollout=rollout)
    world.add(_mv("v1", 1), _mv("v2", 2))
    world.tracking.aliases[("churn", "champion")] = "1"
    assert world.settle()["stableVersion"] == "v1"
    world.tracking.aliases[("churn", "champion")] = "2"
    world.prometheus.answers[BAD] = 0.9
    assert world.settle()["canaryVersion"] == "v2"
    world.tracking.down = True
    status = world.settle(10)
    assert status["targetVersion"] == "v2"
    registry = _condition(status, "TargetResolved")
    assert (registry["status"], registry["reason"]) == ("False", "RegistryUnavailable")
    assert "v2" in registry["message"]
    for _ in range(3):
        status = world.settle(10)
    assert (status["phase"], status["abortedVersion"]) == ("Degraded", "v2")
    assert status.get("canaryVersion") is None
    assert status["analysisFailures"] >= 2
    assert "error-rate = 0.9" in _ready(status)["message"]


def test_an_mlflow_outage_before_anything_was_resolved_waits_for_the_registry() -> None:
    world = World(versionPolicy={"alias": "champion"})
    world.add(_mv("v1", 1))
    world.tracking.down = True
    status = world.reconcile()
    assert status.get("stableVersion") is None
    assert _ready(status)["status"] == "False"
    assert world.servers() == {}


# ------------------------------------------------- a target that stops resolving


def _lose_target(world: World, how: str) -> None:
    if how == "pinned name that does not exist":
        world.edit(modelVersion="v2-typo")
    elif how == "canary's ModelVersion deleted":
        world.kube.delete("trailboss.dev/v1alpha1", "ModelVersion", NS, "v2")
    elif how == "canary's ModelVersion being deleted":
        world.kube.objects[("ModelVersion", NS, "v2")]["metadata"]["deletionTimestamp"] = (
            "2026-11-22T10:00:00Z"
        )
    else:
        world.tracking.aliases[("churn", "champion")] = "7"


@pytest.mark.parametrize(
    "how",
    [
        "pinned name that does not exist",
        "canary's ModelVersion deleted",
        "canary's ModelVersion being deleted",
        "alias moved to an unknown version",
    ],
)
def test_a_target_that_stops_resolving_withdraws_the_canary_and_says_why(how: str) -> None:
    by_alias = how.startswith("alias")
    world = _serving_v1(**({"versionPolicy": {"alias": "champion"}} if by_alias else {}))
    if by_alias:
        world.tracking.aliases[("churn", "champion")] = "2"
    else:
        world.edit(modelVersion="v2")
    status = world.settle()
    assert (status["canaryVersion"], status["canaryWeight"]) == ("v2", 50)
    _lose_target(world, how)
    status = world.settle(60)
    assert status.get("canaryVersion") is None
    assert status["stableVersion"] == "v1"
    assert status["phase"] == "Degraded"
    ready = _ready(status)
    assert ready["status"] == "False"
    assert ready["reason"] in ("VersionNotFound", "VersionNotReady")
    assert "serving stable v1" in ready["message"]
    withdrawn = [m for r, m in world.kube.warnings if "v2" in m and "withdrawn" in m]
    assert withdrawn, world.kube.warnings
    world.settle(60)
    assert world.servers() == {"v1": 10}


# ------------------------------------------------------ Ready means the target serves


def _lua_health(body: dict[str, Any]) -> dict[str, str]:
    from lupa import lua51

    script = ROOT / "deploy/argocd/health/trailboss.dev_Deployment/health.lua"
    lua = lua51.LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = lua.table_from(body, recursive=True)
    return dict(lua.execute(script.read_text()).items())


@pytest.mark.parametrize(
    ("pinned", "reason"), [("v2-typo", "VersionNotFound"), ("v2", "VersionNotReady")]
)
def test_a_spec_that_cannot_be_served_is_not_ready_while_stable_keeps_serving(
    pinned: str, reason: str
) -> None:
    world = World(modelVersion="v1")
    world.add(_mv("v1", 1), _mv("v2", 2, phase="Rejected"))
    assert world.settle()["phase"] == "Healthy"
    world.edit(modelVersion=pinned)
    status = world.settle(5)
    assert status["phase"] == "Degraded"
    ready = _ready(status)
    assert (ready["status"], ready["reason"]) == ("False", reason)
    assert pinned in ready["message"]
    assert "serving stable v1" in ready["message"]
    assert world.servers() == {"v1": 10}
    assert _condition(status, "Available")["status"] == "True"
    assert _lua_health(world.kube.current(world.body))["status"] == "Degraded"
    world.edit(modelVersion="v1")  # back to what serves: healthy again
    status = world.settle(5)
    assert (status["phase"], _ready(status)["status"]) == ("Healthy", "True")


# ---------------------------------------------- deleting a ModelVersion that serves


def _deleting(world: World, name: str) -> dict[str, Any]:
    body = world.kube.objects[("ModelVersion", NS, name)]
    body["metadata"]["deletionTimestamp"] = "2026-11-22T10:00:00Z"
    return world.kube.current(body)


def test_deleting_the_stable_modelversion_waits_until_no_deployment_serves_it() -> None:
    world = World(modelVersion="v1", rollout={"strategy": "Replace", "scaleDownDelay": "30s"})
    world.add(_mv("v1", 1), _mv("v2", 2))
    world.settle()
    with pytest.raises(modelversion_deletion.FinalizerBlocked, match="Deployment churn"):
        modelversion_deletion.finalize(_deleting(world, "v1"), world.svc)
    mv = world.kube.objects[("ModelVersion", NS, "v1")]
    assert "serves it" in _condition(mv["status"], "Ready")["message"]
    status = world.settle(5)  # the Deployment keeps serving it meanwhile
    assert world.servers() == {"v1": 10}
    world.edit(modelVersion="v2")  # a new version still gets pods and rolls out
    world.settle(5)
    status = world.settle(5)
    assert (status["stableVersion"], status["phase"]) == ("v2", "Healthy")
    world.settle(31)
    assert world.servers() == {"v2": 10}
    done = modelversion_deletion.finalize(world.kube.current(mv), world.svc)
    assert "registry" in done


def test_a_stable_modelversion_gone_anyway_does_not_stop_the_next_version() -> None:
    world = World(modelVersion="v1", rollout={"strategy": "Replace"})
    world.add(_mv("v1", 1), _mv("v2", 2))
    world.settle()
    world.kube.delete("trailboss.dev/v1alpha1", "ModelVersion", NS, "v1")  # finalizer released
    world.settle(5)
    assert world.servers() == {"v1": 10}  # the running servers keep what they load
    world.edit(modelVersion="v2")
    world.settle(5)
    assert world.servers().get("v2") == 10
    status = world.settle(5)
    assert (status["stableVersion"], status["phase"]) == ("v2", "Healthy")


# ----------------------------------------- capacity under the replica-ratio router


def _step_pods(world: World) -> None:
    """Scaled-down pods go at once; one new pod per server becomes ready."""
    for (kind, _, _), obj in world.kube.objects.items():
        if kind == "Deployment" and obj["apiVersion"] == "apps/v1":
            ready = (obj.get("status") or {}).get("readyReplicas", 0)
            wanted = obj["spec"]["replicas"]
            obj["status"] = {"readyReplicas": min(wanted, ready + 1)}


def _ready_pods(world: World) -> int:
    return sum(
        min(o["spec"]["replicas"], (o.get("status") or {}).get("readyReplicas", 0))
        for (kind, _, _), o in world.kube.objects.items()
        if kind == "Deployment" and o["apiVersion"] == "apps/v1"
    )


def _end_rollout(world: World, how: str) -> None:
    if how == "abort":
        world.annotate("trailboss.dev/abort", "now")
    elif how == "withdraw":
        world.edit(modelVersion="v1")
    else:
        world.edit(modelVersion="v3")


@pytest.mark.parametrize("how", ["abort", "withdraw", "supersede"])
def test_ending_a_canary_under_the_replica_ratio_keeps_capacity(how: str) -> None:
    world = _serving_v1(rollout={"steps": [{"weight": 50, "pause": "1h"}]})
    world.edit(modelVersion="v2")
    world.settle()
    assert world.servers() == {"v1": 5, "v2": 5}
    _end_rollout(world, how)
    for _ in range(30):
        world.now += dt.timedelta(seconds=5)
        world.reconcile()
        for (kind, _, _), obj in world.kube.objects.items():  # scaled-down pods go at once
            if kind == "Deployment" and obj["apiVersion"] == "apps/v1":
                ready = (obj.get("status") or {}).get("readyReplicas", 0)
                obj["status"] = {"readyReplicas": min(ready, obj["spec"]["replicas"])}
        assert _ready_pods(world) >= 10 - 1, world.servers()
        _step_pods(world)
    assert world.servers().get("v2", 0) == 0


def test_an_aborted_canary_keeps_no_pod_that_capacity_does_not_need() -> None:
    """Four pods at 25 %: three stable, one canary. The stable's three ready pods are
    its replicas minus one, so the aborted (perhaps failing) canary's pod goes at once
    rather than serving on while the fourth stable pod starts."""
    world = _serving_v1(replicas=4, rollout={"steps": [{"weight": 25, "pause": "1h"}]})
    world.edit(modelVersion="v2")
    world.settle()
    assert world.servers() == {"v1": 3, "v2": 1}
    world.annotate("trailboss.dev/abort", "now")
    world.reconcile()
    assert world.servers() == {"v1": 4, "v2": 0}


def test_with_one_replica_an_abort_keeps_the_canarys_pod_until_the_stables_is_ready() -> None:
    """A canary at 100 % with one replica: the stable's only pod went once the
    canary's was ready. After an abort the canary's pod is the one that answers, so
    it stays until the stable's new pod is ready; replicas minus one would be none."""
    world = _serving_v1(replicas=1, rollout={"steps": [{"weight": 100, "pause": "1h"}]})
    world.edit(modelVersion="v2")
    world.settle()
    assert world.servers() == {"v1": 0, "v2": 1}
    world.annotate("trailboss.dev/abort", "now")
    for _ in range(5):
        world.now += dt.timedelta(seconds=5)
        world.reconcile()
        assert _ready_pods(world) >= 1, world.servers()
        _step_pods(world)
    assert world.servers().get("v2", 0) == 0


# ------------------------------------------------------------- phase filters


def test_latest_registered_also_serves_validated_versions() -> None:
    world = World(versionPolicy={"latest": "Registered"})
    world.add(_mv("v1", 1))
    assert world.settle()["stableVersion"] == "v1"


def test_a_registered_version_passing_its_gate_is_not_dropped() -> None:
    world = World(versionPolicy={"latest": "Registered"}, serveUnvalidated=True)
    world.add(_mv("v1", 1), _mv("v2", 2, phase="Registered"))
    world.settle()
    world.settle(120)
    assert world.status()["stableVersion"] == "v2"
    world.add(_mv("v2", 2))  # it passed its gate
    status = world.settle(5)
    assert status.get("targetVersion") == "v2"
    assert status.get("canaryVersion") is None
    assert (status["stableVersion"], status["phase"]) == ("v2", "Healthy")


# --------------------------------------------- traffic behind a route, and metrics


def _gateway_programs(world: World) -> None:
    """The Gateway accepts the route's current generation."""
    route = world.kube.objects[("HTTPRoute", NS, "churn")]
    generation = route["metadata"].setdefault("generation", 1)
    condition = {"type": "Accepted", "status": "True", "observedGeneration": generation}
    route["status"] = {"parents": [{"conditions": [condition]}]}


def _bump_route_generation(world: World) -> None:
    """As the API server does when the operator applies different weights."""
    apply = world.kube.apply

    def applying(manifest: dict[str, Any]) -> dict[str, Any]:
        key = (manifest["kind"], NS, manifest["metadata"]["name"])
        before = world.kube.objects.get(key, {}).get("spec")
        stored = apply(manifest)
        obj = world.kube.objects[key]
        if manifest["kind"] == "HTTPRoute" and before is not None and before != obj["spec"]:
            obj["metadata"]["generation"] = obj["metadata"].get("generation", 1) + 1
            stored["metadata"]["generation"] = obj["metadata"]["generation"]
        return stored

    world.kube.apply = applying  # type: ignore[method-assign]


def _actual(status: dict[str, Any]) -> dict[str, int | None]:
    return {t["role"]: t.get("actualWeight") for t in status["traffic"]}


def test_route_traffic_reports_what_the_route_holds() -> None:
    router = {"kind": "HTTPRoute", "gateway": "public"}
    world = World(modelVersion="v1", trafficRouter=router, rollout={"steps": [{"weight": 10}]})
    world.add(_mv("v1", 1), _mv("v2", 2))
    _bump_route_generation(world)
    world.settle()
    _gateway_programs(world)
    assert _actual(world.reconcile()) == {"stable": 100}
    world.edit(modelVersion="v2")
    world.reconcile()  # 10 % wanted, but no canary pod is ready: the route holds 100/0
    _gateway_programs(world)
    status = world.reconcile()
    assert status["canaryWeight"] == 10
    assert _actual(status) == {"stable": 100, "canary": 0}
    world.pods_ready()
    status = world.reconcile()  # the route gets 90/10; the Gateway has not taken it yet
    assert _actual(status) == {"stable": None, "canary": None}
    _gateway_programs(world)
    status = world.reconcile()
    assert _actual(status) == {"stable": 90, "canary": 10}


ROUTE = {"kind": "HTTPRoute", "gateway": "public"}


def _canary_behind_a_route() -> World:
    """v1 stable behind an HTTPRoute, v2's canary at 10 % with the Gateway routing it."""
    world = _serving_v1(trafficRouter=ROUTE, rollout={"steps": [{"weight": 10, "pause": "1h"}]})
    _bump_route_generation(world)
    _gateway_programs(world)
    world.edit(modelVersion="v2")
    world.settle()
    _gateway_programs(world)
    assert _actual(world.reconcile()) == {"stable": 90, "canary": 10}
    return world


def _applied_by_one_field_manager(world: World) -> None:
    """As server-side apply does for the operator's own fields: a field it no longer
    applies goes (a merge would keep, say, a selector key it dropped)."""
    apply = world.kube.apply

    def applying(manifest: dict[str, Any]) -> dict[str, Any]:
        key = (manifest["kind"], NS, manifest["metadata"]["name"])
        if key in world.kube.objects:
            world.kube.objects[key]["spec"] = {}
        return apply(manifest)

    world.kube.apply = applying  # type: ignore[method-assign]


def _service_pods(world: World, service: str) -> dict[str, int]:
    """Ready pods by version that Service ``service`` sends requests to."""
    chosen = world.kube.objects[("Service", NS, service)]["spec"]["selector"]
    found: dict[str, int] = {}
    for (kind, _, _), obj in world.kube.objects.items():
        labels = obj["metadata"].get("labels") or {}
        if (
            kind == "Deployment"
            and obj["apiVersion"] == "apps/v1"
            and chosen.items() <= labels.items()
        ):
            ready = min(obj["spec"]["replicas"], (obj.get("status") or {}).get("readyReplicas", 0))
            found[labels["trailboss.dev/model-version"]] = ready
    return found


def test_ready_waits_until_the_gateway_routes_everything_to_the_target() -> None:
    """Git pins the stable again mid-canary: until the Gateway takes the route that
    sends the canary nothing, a share of requests still reaches the canary."""
    world = _canary_behind_a_route()
    world.edit(modelVersion="v1")
    status = world.reconcile()
    assert status.get("canaryVersion") is None
    assert _service_pods(world, "churn-canary") == {"v2": 1}  # the Gateway still sends it 10 %
    assert (status["phase"], _ready(status)["status"]) == ("Progressing", "False")
    assert _ready(status)["reason"] == "WaitingForGateway"
    assert "v1" in _ready(status)["message"]
    _gateway_programs(world)
    status = world.reconcile()
    assert (status["phase"], _ready(status)["status"]) == ("Healthy", "True")
    assert _actual(status) == {"stable": 100}


def test_a_gateway_that_reports_no_route_status_is_not_waited_for() -> None:
    world = _serving_v1(trafficRouter=ROUTE, rollout={"steps": [{"weight": 10, "pause": "1h"}]})
    world.edit(modelVersion="v2")
    world.settle()
    world.edit(modelVersion="v1")
    status = world.settle()
    assert (status["phase"], _ready(status)["status"]) == ("Healthy", "True")


def test_switching_from_a_route_to_the_replica_ratio_removes_the_route_and_keeps_capacity() -> None:
    world = _canary_behind_a_route()
    assert world.servers() == {"v1": 10, "v2": 1}
    _applied_by_one_field_manager(world)
    world.edit(trafficRouter={"kind": "ReplicaRatio"})
    for _ in range(20):
        world.now += dt.timedelta(seconds=5)
        status = world.reconcile()
        assert ("HTTPRoute", NS, "churn") not in world.kube.objects
        assert sum(_service_pods(world, "churn").values()) >= 10 - 1, world.servers()
        _step_pods(world)
    assert _service_pods(world, "churn") == {"v1": 9, "v2": 1}  # the ratio of pods is the split
    assert status["canaryWeight"] == 10
    assert _actual(status) == {"stable": 90, "canary": 10}


def test_switching_to_a_route_mid_rollout_keeps_capacity_until_the_stable_carries_it() -> None:
    """v2 at 50 % under the replica ratio: five pods each. Behind a route `<name>`
    serves only the stable, so it waits for the stable's other pods, and the
    route is written once the stable alone can carry the traffic."""
    world = _serving_v1(rollout={"steps": [{"weight": 50, "pause": "1h"}]})
    world.edit(modelVersion="v2")
    world.settle()
    assert world.servers() == {"v1": 5, "v2": 5}
    _applied_by_one_field_manager(world)
    world.edit(trafficRouter=ROUTE)
    for _ in range(10):
        world.now += dt.timedelta(seconds=5)
        world.reconcile()
        assert sum(_service_pods(world, "churn").values()) >= 10 - 1, world.servers()
        if ("HTTPRoute", NS, "churn") in world.kube.objects:
            assert _service_pods(world, "churn-stable")["v1"] >= 10 - 1
        _step_pods(world)
    assert _service_pods(world, "churn") == {"v1": 10}
    assert ("HTTPRoute", NS, "churn") in world.kube.objects


def test_switching_from_a_route_to_the_replica_ratio_between_rollouts_removes_the_route() -> None:
    world = _serving_v1(trafficRouter=ROUTE)
    assert ("HTTPRoute", NS, "churn") in world.kube.objects
    _applied_by_one_field_manager(world)
    world.edit(trafficRouter={"kind": "ReplicaRatio"})
    status = world.settle()
    assert ("HTTPRoute", NS, "churn") not in world.kube.objects
    assert _service_pods(world, "churn") == {"v1": 10}
    assert (status["phase"], _ready(status)["status"]) == ("Healthy", "True")


def _series(name: str) -> dict[tuple[str, ...], float]:
    """Samples of one metric family of Deployment ml/churn, by their other labels."""
    found = {}
    for family in REGISTRY.collect():
        for sample in family.samples:
            labels = dict(sample.labels)
            if sample.name != name:
                continue
            if (labels.pop("namespace", None), labels.pop("deployment", None)) != (NS, "churn"):
                continue
            found[tuple(labels.values())] = sample.value
    return found


SERIES = {
    metrics.TRAFFIC_WEIGHT: "trailboss_deployment_traffic_weight_percent",
    metrics.ANALYSIS_VALUE: "trailboss_analysis_value",
    metrics.ANALYSIS_MEASUREMENTS: "trailboss_analysis_measurements_total",
    metrics.ROLLOUTS: "trailboss_rollouts_total",
}


def _wipe() -> None:
    """Other tests served ml/churn too: start from none of its series."""
    for collector, name in SERIES.items():
        for labels in _series(name):
            collector.remove(NS, "churn", *labels)


@pytest.fixture
def no_series() -> Iterator[None]:
    _wipe()
    yield
    _wipe()


@pytest.mark.usefixtures("no_series")
def test_a_promoted_version_is_exported_once_as_stable() -> None:
    world = _serving_v1(rollout={"steps": [{"weight": 50, "pause": "1m"}]})
    world.edit(modelVersion="v2")
    world.settle()
    assert _series("trailboss_deployment_traffic_weight_percent") == {
        ("v1", "stable"): 50,
        ("v2", "canary"): 50,
    }
    world.settle(61)
    status = world.settle(1)
    assert status["stableVersion"] == "v2"
    assert _series("trailboss_deployment_traffic_weight_percent") == {("v2", "stable"): 100}


@pytest.mark.usefixtures("no_series")
def test_deleting_a_deployment_removes_its_traffic_and_analysis_series() -> None:
    world = _serving_v1(rollout={"steps": [{"weight": 50, "pause": "1h"}], "analysis": ANALYSIS})
    world.prometheus.answers[BAD] = 0.01
    world.edit(modelVersion="v2")
    world.settle()
    assert _series("trailboss_deployment_traffic_weight_percent")
    assert _series("trailboss_analysis_value") == {("error-rate",): 0.01}
    assert _series("trailboss_analysis_measurements_total")
    deleted: Any = deployment_handlers.deleted  # kopf's handler, called as kopf would
    deleted(body=world.kube.current(world.body))
    for name in (
        "trailboss_deployment_traffic_weight_percent",
        "trailboss_analysis_value",
        "trailboss_analysis_measurements_total",
        "trailboss_rollouts_total",
    ):
        assert _series(name) == {}, name


@pytest.fixture(autouse=True)
def _isolated() -> None:
    deployment.forget("dep-1")
