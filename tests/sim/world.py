"""The world one Deployment (trailboss.dev) lives in, simulated: the API server
(the unit tests' fakes, with its resourceVersion rules), an MLflow registry with
aliases, Prometheus answering in every shape it can, model server pods that
become ready after a while (or never, or only some), TrainingRuns that finish,
and a clock that only moves when the simulation moves it.

The operator is the real reconciler, ``trailboss.reconcilers.deployment.reconcile``.
Time runs as kopf would run it: a reconcile at the time the last one asked to
come back, at every resync (30 s) and whenever something the operator watches
changes (the spec, an annotation, a ModelVersion, a server's ready pods). After
every reconcile the observers (the invariants) look at the world."""

from __future__ import annotations

import datetime as dt
import itertools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from pydantic import ValidationError

from tests.unit.fakes import (
    NOW,
    FakeKube,
    FakeStorage,
    FakeTracking,
    ShapedPrometheus,
    instant_vector,
    range_matrix,
    scalar,
)
from trailboss.api.common import API_VERSION
from trailboss.api.deployment import DeploymentSpec
from trailboss.builders.patch import apply_merge_patch
from trailboss.builders.serving import VERSION_LABEL
from trailboss.clients.protocols import QueryFailed
from trailboss.handlers import deployment as handlers
from trailboss.reconcilers import deployment
from trailboss.reconcilers.common import Services
from trailboss.reconcilers.driver import Ended
from trailboss.settings import Settings

MODEL = "churn"
NAME = "churn"
RESYNC = handlers.RESYNC_SECONDS
POD_START = {"ok": 10.0, "slow": 300.0}
"""Seconds from a pod's creation to ready, by how a version's pods behave."""
PROMETHEUS = "http://prometheus:9090"
QUERIES = {
    "error-rate": (
        'sum(rate(model_errors_total{namespace="{{namespace}}",version="{{version}}"}[1m]))',
        {"max": 0.05},
    ),
    "latency": (
        'histogram_quantile(0.99, sum by (le) (rate(latency_bucket{version="{{version}}"}[1m])))',
        {"max": 0.5},
    ),
}
GOOD = {"error-rate": "0.01", "latency": "0.1"}
BAD = {"error-rate": "0.9", "latency": "2.5"}
TEMPLATE = {
    "model": MODEL,
    "image": "trainer:1",
    "command": ["python", "train.py"],
    "dataset": {"uri": "s3://datasets/churn.csv"},
}
IDLE_RESYNC = 300.0
"""Between resyncs that find nothing to do and were asked for no time, the
simulation skips ahead this far rather than 30 s: they would all be alike.
``quiesce`` runs with the real 30 s."""
GATEWAY_LAG = 2.0
"""Seconds before the Gateway routes by a changed HTTPRoute (and says so in its status)."""
SAME_INSTANT_LIMIT = 100
"""Reconciles at one instant before the operator counts as spinning."""
_worlds = itertools.count(1)


def clone(value: Any) -> Any:
    """A deep copy of JSON-shaped data, several times faster than copy.deepcopy."""
    if type(value) is dict:
        return {k: clone(v) for k, v in value.items()}
    if type(value) is list:
        return [clone(v) for v in value]
    return value


def _copy(obj: dict[str, Any]) -> dict[str, Any]:
    """A copy for a reader. A pod template is shared, not copied: nothing that reads
    a server changes its template, and copying them was most of a reconcile's time."""
    copied: dict[str, Any] = {k: clone(v) for k, v in obj.items() if k != "spec"}
    spec = obj.get("spec")
    if isinstance(spec, dict):
        copied["spec"] = {k: v if k == "template" else clone(v) for k, v in spec.items()}
    return copied


def training(run: dict[str, Any]) -> bool:
    """Whether a TrainingRun still trains: not finished, and not suspended (its
    Job keeps no pods, as the TrainingRun reconciler has it)."""
    if (run.get("spec") or {}).get("suspend"):
        return False
    return not (run.get("status") or {}).get("phase")


def stamp(when: dt.datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


class SimKube(FakeKube):
    """FakeKube with a fast copy, no write history, finalizers (a deleted object
    with finalizers stays, marked, until the last one is removed) and the
    creationTimestamp the API server sets, on the world's clock."""

    def __init__(self, clock: Callable[[], dt.datetime]) -> None:
        super().__init__()
        self.clock = clock

    def create(self, manifest: dict[str, Any]) -> dict[str, Any] | None:
        meta = {**manifest["metadata"], "creationTimestamp": stamp(self.clock())}
        return super().create({**manifest, "metadata": meta})

    def put(self, body: dict[str, Any]) -> dict[str, Any]:
        obj = clone(body)
        obj["metadata"]["resourceVersion"] = str(next(self._versions))
        meta = obj["metadata"]
        self.objects[(obj["kind"], meta["namespace"], meta["name"])] = obj
        return _copy(obj)

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        found = self.objects.get((kind, namespace, name))
        return _copy(found) if found else None

    def list(
        self, api_version: str, kind: str, namespace: str, labels: dict[str, str] | None = None
    ) -> list[dict[str, Any]]:
        wanted = (labels or {}).items()
        return [
            _copy(o)
            for (k, ns, _), o in self.objects.items()
            if k == kind
            and ns == namespace
            and wanted <= (o["metadata"].get("labels") or {}).items()
        ]

    def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        meta = manifest["metadata"]
        key = (manifest["kind"], meta["namespace"], meta["name"])
        if key not in self.objects:
            self.creations += 1
            created = stamp(self.clock())
            return self.put(
                {**manifest, "metadata": {**meta, "generation": 1, "creationTimestamp": created}}
            )
        obj = self.objects[key]
        # Most applies change nothing: compare first, and copy only what changed.
        applied = manifest.get("spec") or {}
        merged = apply_merge_patch(obj["metadata"], manifest["metadata"])
        if obj.get("spec") != applied:
            # Server-side apply by one field manager: a field it no longer applies goes
            # (a merge patch would keep, say, a selector key the operator dropped).
            obj["spec"] = clone(applied)
            merged["generation"] = int(merged.get("generation") or 1) + 1  # as the API server
        if merged != obj["metadata"]:
            obj["metadata"] = clone(merged)
        obj["metadata"]["resourceVersion"] = str(next(self._versions))
        return _copy(obj)

    def patch(
        self, api_version: str, kind: str, namespace: str, name: str, patch: dict[str, Any]
    ) -> dict[str, Any] | None:
        key = (kind, namespace, name)
        obj = self.objects.get(key)
        if obj is None:
            return None
        obj = apply_merge_patch(obj, clone(patch))
        obj["metadata"]["resourceVersion"] = str(next(self._versions))
        self.objects[key] = obj
        meta = obj["metadata"]
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            del self.objects[key]
        return _copy(obj)

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        key = (kind, namespace, name)
        obj = self.objects.get(key)
        if obj is None:
            return
        if obj["metadata"].get("finalizers"):
            obj["metadata"].setdefault("deletionTimestamp", stamp(NOW))
            obj["metadata"]["resourceVersion"] = str(next(self._versions))
            return
        del self.objects[key]

    def _copy(self, obj: dict[str, Any]) -> dict[str, Any]:
        return _copy(obj)

    def _status_written(self, patch: dict[str, Any], obj: dict[str, Any]) -> None:
        """No history: a long simulation would only pay for keeping it."""


class SimTracking(FakeTracking):
    """FakeTracking without the simulated network delay."""

    def alias_version(self, name: str, alias: str) -> str | None:
        self._check()
        return self.aliases.get((name, alias))


@dataclass
class VersionInfo:
    """What the world knows of a ModelVersion beyond its object."""

    number: int
    quality: str = "good"
    """good or bad: what Prometheus measures for it."""
    pods: str = "ok"
    """ok, slow, never or partial: how its server's pods come up."""


@dataclass
class Pass:
    """One reconcile as the observers see it."""

    before: dict[str, Any]
    after: dict[str, Any]
    ended: Ended
    events: list[tuple[str, str]]
    route_before: dict[str, int] | None
    target: tuple[bool, str | None]
    """What the spec asked for as the reconcile began (it may move an alias itself)."""


@dataclass
class TrainingRecord:
    name: str
    reason: str
    created: dt.datetime
    finished: bool = False
    slot: dt.datetime | None = None
    """The schedule time a scheduled run was due at."""


@dataclass
class World:
    """One Deployment, its model's versions, and everything around them."""

    number: int = field(default_factory=lambda: next(_worlds))
    now: dt.datetime = NOW

    def __post_init__(self) -> None:
        self.namespace = f"sim-{self.number}"
        self.kube = SimKube(clock=lambda: self.now)
        self.tracking = SimTracking()
        self.prometheus = ShapedPrometheus()
        self.prometheus.respond = self._answer
        self.svc = Services(
            settings=Settings(mlflow_tracking_uri="http://mlflow:5000"),
            kube=self.kube,
            tracking=self.tracking,
            storage=FakeStorage(),
            prometheus=self.prometheus,
            clock=lambda: self.now,
        )
        self.versions: dict[str, VersionInfo] = {}
        self.prometheus_modes: dict[str, str] = {}
        """Query name -> how Prometheus answers it: value, nan, empty, vector,
        matrix, scalar or refused."""
        self.pods: dict[str, list[dt.datetime | None]] = {}
        self.observers: list[Callable[[World, Pass], None]] = []
        self.uid = ""
        self.incarnation = 0
        self.dirty = True
        self.next_reconcile = self.now
        self.spec: dict[str, Any] = {}
        self.parsed: DeploymentSpec | None = None
        self.trainings: dict[str, TrainingRecord] = {}
        self.reconciles = 0
        self.idle_resync = IDLE_RESYNC
        self.gateway: dict[str, int] | None = None
        """The backend weights the Gateway routes by: the last route it accepted."""
        self._route_seen: tuple[int, dt.datetime] | None = None

    # -- the Deployment -----------------------------------------------------

    def create(self, spec: dict[str, Any]) -> None:
        self.incarnation += 1
        self.uid = f"sim-{self.number}-{self.incarnation}"
        self.spec = spec
        self.parsed = DeploymentSpec.model_validate(spec)
        self.kube.put({
            "apiVersion": API_VERSION,
            "kind": "Deployment",
            "metadata": {"name": NAME, "namespace": self.namespace, "uid": self.uid,
                         "generation": 1, "creationTimestamp": stamp(self.now)},
            "spec": clone(spec),
        })  # fmt: skip
        deployment.forget(self.uid)
        self.dirty = True

    def body(self) -> dict[str, Any]:
        return self.kube.objects[("Deployment", self.namespace, NAME)]

    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = self.body().get("status") or {}
        return status

    def edit(self, change: Callable[[dict[str, Any]], None]) -> bool:
        """Apply a spec edit as Argo CD would, if the CRD would accept it."""
        spec = clone(self.spec)
        change(spec)
        try:
            parsed = DeploymentSpec.model_validate(spec)
        except ValidationError:
            return False
        self.spec, self.parsed = spec, parsed
        body = self.body()
        body["spec"] = clone(spec)
        body["metadata"]["generation"] += 1
        body["metadata"]["resourceVersion"] = str(next(self.kube._versions))
        self.dirty = True
        return True

    def annotate(self, key: str, value: str | None) -> None:
        meta = self.body()["metadata"]
        annotations = meta.setdefault("annotations", {})
        if value is None:
            annotations.pop(key, None)
        else:
            annotations[key] = value
        meta["resourceVersion"] = str(next(self.kube._versions))
        self.dirty = True

    def annotations(self) -> dict[str, str]:
        found: dict[str, str] = self.body()["metadata"].get("annotations") or {}
        return found

    def delete(self) -> None:
        """kubectl delete: garbage collection takes the children, the handler forgets."""
        body = clone(self.body())
        for key, obj in list(self.kube.objects.items()):
            owners = obj["metadata"].get("ownerReferences") or []
            if any(o.get("uid") == self.uid for o in owners):
                del self.kube.objects[key]
        del self.kube.objects[("Deployment", self.namespace, NAME)]
        cast(Any, handlers.deleted)(body=body)
        self.sync_pods()

    def restart(self) -> None:
        """The operator restarts: what it held in memory is gone."""
        deployment.forget(self.uid)
        self.dirty = True

    # -- ModelVersions and the registry ---------------------------------------

    def add_version(
        self, name: str, phase: str, labels: dict[str, str], quality: str, pods: str
    ) -> None:
        number = max((v.number for v in self.versions.values()), default=0) + 1
        self.versions[name] = VersionInfo(number, quality, pods)
        self.kube.put({
            "apiVersion": API_VERSION,
            "kind": "ModelVersion",
            "metadata": {"name": name, "namespace": self.namespace, "uid": f"uid-{name}",
                         "labels": dict(labels), "creationTimestamp": stamp(self.now)},
            "spec": {"model": MODEL, "artifactUri": f"s3://mlflow/{name}/model"},
            "status": _version_status(name, phase, number),
        })  # fmt: skip
        self.dirty = True

    def model_version(self, name: str) -> dict[str, Any] | None:
        return self.kube.objects.get(("ModelVersion", self.namespace, name))

    def set_phase(self, name: str, phase: str) -> None:
        found = self.model_version(name)
        if found is None:
            return
        found["status"] = _version_status(name, phase, self.versions[name].number)
        found["metadata"]["resourceVersion"] = str(next(self.kube._versions))
        self.dirty = True

    def delete_version(self, name: str) -> None:
        self.kube.delete(API_VERSION, "ModelVersion", self.namespace, name)
        self.dirty = True

    def move_alias(self, alias: str, number: int) -> None:
        self.tracking.aliases[(MODEL, alias)] = str(number)
        self.dirty = True

    def servable(self, name: str) -> bool:
        """Whether the spec allows serving ModelVersion ``name`` as it is now."""
        found = self.model_version(name)
        if found is None or found["metadata"].get("deletionTimestamp"):
            return False
        status = found.get("status") or {}
        assert self.parsed is not None
        if self.parsed.serve_unvalidated:
            return status.get("phase") in ("Registered", "Validated")
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in status.get("conditions") or []
        )
        return bool(status.get("phase") == "Validated" and ready)

    def expected_target(self) -> tuple[bool, str | None]:
        """(known, version): what the spec asks to serve, worked out independently
        of the operator. Unknown while MLflow cannot resolve an alias."""
        spec = self.parsed
        assert spec is not None
        if spec.model_version is not None:
            name = spec.model_version
            return True, name if self.servable(name) else None
        policy = spec.version_policy
        assert policy is not None
        matching = [
            name
            for name in self.versions
            if self.model_version(name) is not None
            and policy.match_labels.items()
            <= (self.model_version(name) or {})["metadata"].get("labels", {}).items()
        ]
        if policy.alias is not None:
            if self.tracking.down:
                return False, None
            number = self.tracking.aliases.get((MODEL, policy.alias))
            found = [n for n in matching if str(self.versions[n].number) == number]
            return True, found[0] if found and self.servable(found[0]) else None
        rank = {"Registered": 1, "Validated": 2}
        wanted = [
            n
            for n in matching
            if rank.get(_phase(self.model_version(n)), 0) >= rank[policy.latest]
            and self.servable(n)
        ]
        if not wanted:
            return True, None
        return True, max(wanted, key=lambda n: self.versions[n].number)

    # -- Prometheus -----------------------------------------------------------

    def _answer(self, promql: str) -> dict[str, Any] | None:
        name = "latency" if promql.startswith("histogram_quantile") else "error-rate"
        mode = self.prometheus_modes.get(name, "value")
        found = re.search(r'version="([^"]*)"', promql)
        info = self.versions.get(found.group(1)) if found else None
        if mode == "refused":
            raise QueryFailed("Prometheus refused the query (400): bad_data: parse error")
        if mode == "empty" or info is None:
            return instant_vector()
        value = (GOOD if info.quality == "good" else BAD)[name]
        shapes: dict[str, Callable[[], dict[str, Any]]] = {
            "value": lambda: instant_vector(value),
            "nan": lambda: instant_vector("NaN"),
            "vector": lambda: instant_vector(value, value),
            "matrix": lambda: range_matrix(value),
            "scalar": lambda: scalar(value),
        }
        return shapes[mode]()

    # -- pods -----------------------------------------------------------------

    def servers(self) -> dict[str, dict[str, Any]]:
        """The model server Deployments (apps/v1) by name."""
        return {
            name: obj
            for (kind, ns, name), obj in self.kube.objects.items()
            if kind == "Deployment" and ns == self.namespace and obj["apiVersion"] == "apps/v1"
        }

    def sync_pods(self) -> bool:
        """Pods follow their servers' replicas and become ready when their time
        comes; True when a server's ready count changed (the operator hears of it)."""
        changed = False
        servers = self.servers()
        for gone in set(self.pods) - set(servers):
            del self.pods[gone]
        for name, server in servers.items():
            version = server["metadata"]["labels"].get(VERSION_LABEL, "")
            want = int(server["spec"].get("replicas") or 0)
            pods = self.pods.setdefault(name, [])
            if len(pods) > want:  # the not-ready pods go first, as a ReplicaSet does
                pods.sort(key=lambda t: (t is None or t > self.now, t or self.now))
                del pods[want:]
            while len(pods) < want:
                pods.append(self._ready_at(version, len(pods), want))
            ready = sum(1 for t in pods if t is not None and t <= self.now)
            wanted_status = {"replicas": len(pods), "readyReplicas": ready}
            if server.get("status") != wanted_status:
                before = (server.get("status") or {}).get("readyReplicas", 0)
                server["status"] = wanted_status
                changed = changed or before != ready
        return changed

    def _ready_at(self, version: str, index: int, want: int) -> dt.datetime | None:
        behaviour = self.versions[version].pods if version in self.versions else "ok"
        if behaviour == "never" or (behaviour == "partial" and index >= math.ceil(want / 2)):
            return None
        return self.now + dt.timedelta(seconds=POD_START.get(behaviour, POD_START["ok"]))

    def heal_pods(self) -> None:
        """Every version's pods start normally from now on, the stuck ones too."""
        soon = self.now + dt.timedelta(seconds=POD_START["ok"])
        for info in self.versions.values():
            info.pods = "ok"
        for pods in self.pods.values():
            pods[:] = [soon if t is None or t > soon else t for t in pods]

    def next_pod_change(self) -> dt.datetime | None:
        upcoming = [
            t for pods in self.pods.values() for t in pods if t is not None and t > self.now
        ]
        return min(upcoming, default=None)

    def ready_pods(self, selector: dict[str, str]) -> dict[str, int]:
        """Ready pods by version of the servers a Service with ``selector`` finds."""
        found: dict[str, int] = {}
        for server in self.servers().values():
            labels = server["metadata"].get("labels") or {}
            if selector.items() <= labels.items():
                version = labels.get(VERSION_LABEL, "")
                ready = int((server.get("status") or {}).get("readyReplicas") or 0)
                found[version] = found.get(version, 0) + ready
        return found

    def service_pods(self, service: str) -> dict[str, int]:
        found = self.kube.objects.get(("Service", self.namespace, service))
        if found is None:
            return {}
        return self.ready_pods(found["spec"]["selector"])

    def route(self) -> dict[str, int] | None:
        """The HTTPRoute's backend weights by Service, if there is a route."""
        found = self.kube.objects.get(("HTTPRoute", self.namespace, NAME))
        if found is None:
            return None
        return {b["name"]: int(b["weight"]) for b in found["spec"]["rules"][0]["backendRefs"]}

    def sync_gateway(self) -> None:
        """The Gateway takes a changed route GATEWAY_LAG seconds after it changed,
        and records that in the route's status as Gateway API implementations do."""
        found = self.kube.objects.get(("HTTPRoute", self.namespace, NAME))
        if found is None:
            self.gateway, self._route_seen = None, None
            return
        generation = int(found["metadata"].get("generation") or 1)
        accepted = ((found.get("status") or {}).get("parents") or [{}])[0].get("conditions")
        if accepted and accepted[0].get("observedGeneration") == generation:
            return
        if self._route_seen is None or self._route_seen[0] != generation:
            self._route_seen = (generation, self.now)
        if (self.now - self._route_seen[1]).total_seconds() < GATEWAY_LAG:
            return
        self.gateway = self.route()
        found["status"] = {"parents": [{
            "parentRef": {"name": "public"}, "controllerName": "sim.trailboss.dev/gateway",
            "conditions": [{"type": "Accepted", "status": "True",
                            "observedGeneration": generation, "reason": "Accepted"}],
        }]}  # fmt: skip

    def next_gateway_change(self) -> dt.datetime | None:
        if self._route_seen is None:
            return None
        due = self._route_seen[1] + dt.timedelta(seconds=GATEWAY_LAG)
        return due if due > self.now else None

    def serving(self) -> dict[str, int]:
        """Ready pods by version that clients' requests reach now: the main
        Service's, and behind an HTTPRoute those of every weighted backend."""
        reached = self.service_pods(NAME)
        for service, weight in (self.gateway or {}).items():
            if weight > 0:
                for version, ready in self.service_pods(service).items():
                    reached[version] = max(reached.get(version, 0), ready)
        return {v: n for v, n in reached.items() if n > 0}

    def capacity(self) -> int:
        """Ready pods that take requests through the way clients come in."""
        route = self.gateway
        assert self.parsed is not None
        if self.parsed.traffic_router.kind == "HTTPRoute" and route is not None:
            versions: dict[str, int] = {}
            for service, weight in route.items():
                if weight > 0:
                    versions.update(self.service_pods(service))
            return sum(versions.values())
        return sum(self.service_pods(NAME).values())

    # -- retraining -----------------------------------------------------------

    def training_runs(self) -> list[dict[str, Any]]:
        return [
            o
            for (k, ns, _), o in self.kube.objects.items()
            if k == "TrainingRun" and ns == self.namespace
        ]

    def finish_training(self, outcome: str) -> None:
        """The oldest unfinished TrainingRun ends: Failed, or Succeeded with a
        ModelVersion that is Validated, Rejected or stays Pending."""
        waiting = [r for r in self.training_runs() if training(r)]
        if not waiting:
            return
        run = min(waiting, key=lambda r: r["metadata"]["name"])
        name = run["metadata"]["name"]
        record = self.trainings.get(name)
        if record is not None:
            record.finished = True
        if outcome == "Failed":
            run["status"] = {"phase": "Failed"}
        else:
            version = f"r{len(self.versions) + 1}"
            self.add_version(version, outcome, {}, "good", "ok")
            run["status"] = {"phase": "Succeeded", "modelVersion": version}
        run["metadata"]["resourceVersion"] = str(next(self.kube._versions))
        self.dirty = True

    def drift_check(self, drifted: bool) -> None:
        """A drift check of the stable version finished (as deployment_drift records it)."""
        status = self.status()
        previous = status.get("drift") or {}
        checks = int(previous.get("checks") or 0) + 1
        streak = int(previous.get("consecutive") or 0) + 1 if drifted else 0
        drift = {
            "checks": checks, "consecutive": streak, "drifted": drifted,
            "score": 0.4 if drifted else 0.01, "modelVersion": status.get("stableVersion"),
            "checkedAt": stamp(self.now),
        }  # fmt: skip
        self.kube.patch_status(
            API_VERSION, "Deployment", self.namespace, NAME, {"drift": drift}, None
        )
        self.dirty = True

    # -- time -----------------------------------------------------------------

    def reconcile(self) -> Ended:
        """One reconcile of the Deployment as stored, then the observers look."""
        before = self.status()  # status is replaced on every write, never changed in place
        route_before = self.gateway
        target = self.expected_target()
        seen = len(self.kube.events)
        ended = deployment.reconcile(_copy(self.body()), self.svc)
        self.reconciles += 1
        wait = RESYNC if ended.requeue_after is None else min(ended.requeue_after, RESYNC)
        if (
            ended.requeue_after is None
            and self.status() is before
            and seen == len(self.kube.events)
        ):
            wait = self.idle_resync  # nothing changed and nothing is due: resyncs are alike
        self.next_reconcile = self.now + dt.timedelta(seconds=max(0.0, wait))
        if self.sync_pods():
            self.dirty = True
        self.sync_gateway()
        events = self.kube.events[seen:]
        del self.kube.events[:]
        del self.kube.warnings[:]
        self.prometheus.asked.clear()
        record = Pass(before, self.status(), ended, events, route_before, target)
        for observe in self.observers:
            observe(self, record)
        return ended

    def run(self, seconds: float, until: Callable[[], bool] | None = None) -> bool:
        """Let ``seconds`` pass as the operator would live them; stops early (True)
        once ``until`` holds after a reconcile."""
        end = self.now + dt.timedelta(seconds=seconds)
        same_instant = 0
        while True:
            if self.dirty or self.now >= self.next_reconcile:
                self.dirty = False
                self.reconcile()
                same_instant += 1
                assert same_instant <= SAME_INSTANT_LIMIT, (
                    f"the operator reconciled {same_instant} times at {stamp(self.now)} "
                    "without time passing"
                )
                if until is not None and until():
                    return True
                continue
            if self.now >= end:
                return False
            upcoming = [t for t in (self.next_pod_change(), self.next_gateway_change()) if t]
            self.now = min(self.next_reconcile, end, *upcoming)
            same_instant = 0
            self.sync_gateway()
            if self.sync_pods():
                self.dirty = True


def _phase(found: dict[str, Any] | None) -> str:
    return str(((found or {}).get("status") or {}).get("phase") or "")


def _version_status(name: str, phase: str, number: int) -> dict[str, Any]:
    status: dict[str, Any] = {
        "phase": phase,
        "conditions": [{"type": "Ready", "status": "True" if phase == "Validated" else "False"}],
    }
    if phase in ("Registered", "Validated", "Rejected"):
        status["registryVersion"] = str(number)
        status["artifact"] = {"uri": f"s3://mlflow/{name}/model"}
    return status
