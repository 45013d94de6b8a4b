"""What must hold in the simulated world after every reconcile, whatever the
user and the faults did before. Each check fails with a message that says
what a user would have seen."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.metrics import MetricWrapperBase

from tests.sim.world import MODEL, NAME, Pass, TrainingRecord, World, stamp, training
from trailboss import metrics
from trailboss.api.deployment import ABORT_ANNOTATION, PAUSED_ANNOTATION, PROMOTE_ANNOTATION
from trailboss.api.durations import duration_seconds
from trailboss.policies import cron
from trailboss.reconcilers.driver import Result

UNEXPECTED = "ReconcileError"
"""The Ready reason the driver gives an exception it did not expect (a bug)."""
COOLDOWN_SLACK = 60.0
"""Seconds a schedule slot may start before the cooldown is quite over."""
ANALYSIS_SLACK = 60.0
"""Seconds beyond an interval before analysis counts as stalled (resync, pods)."""


@dataclass
class Request:
    """A promote or abort annotation value, and the rollout in progress when it was set."""

    value: str
    rollout: tuple[str, str] | None


@dataclass
class Invariants:
    established: int = 0
    """Ready pods the stable had once fully up, at the current replicas."""
    requests: dict[str, Request] = field(default_factory=dict)
    canary_ready_since: dt.datetime | None = None
    measured_canary: str | None = None

    def attach(self, world: World) -> None:
        world.observers.append(self.observe)

    # -- recorded as the user acts ----------------------------------------------

    def requested(self, world: World, annotation: str, value: str) -> None:
        status = world.status()
        canary, started = status.get("canaryVersion"), status.get("rolloutStartedAt")
        rollout = (str(canary), str(started)) if canary else None
        self.requests[annotation] = Request(value, rollout)

    def replicas_changed(self, replicas: int) -> None:
        self.established = min(self.established, replicas)

    def recreated(self, world: World) -> None:
        world.trainings.clear()
        self.established = 0
        self.requests.clear()
        self.canary_ready_since = None

    # -- after every reconcile ---------------------------------------------------

    def observe(self, world: World, step: Pass) -> None:
        no_exception(step)
        self._establish(world)
        self.instant(world, step.route_before)
        only_servable_versions(world)
        route_follows_the_router(world)
        manual_commands_scoped(self, step)
        ready_only_when_serving_target(world, step)
        status_matches_metrics(world, step.after)
        promotion_earned(world, step)
        self._analysis_runs(world, step.after)
        retraining_bounded(world)

    def instant(self, world: World, route_before: dict[str, int] | None = None) -> None:
        """What must hold at every instant, between reconciles too."""
        assert world.parsed is not None
        if self.established > 0 and world.parsed.replicas > 0:
            backends_have_pods(world, world.route(), "the HTTPRoute")
            backends_have_pods(world, world.gateway, "the route the Gateway holds")
            if route_before is not None:
                backends_have_pods(world, route_before, "the route the Gateway held")
            capacity = world.capacity()
            assert capacity >= self.established - 1, (
                f"capacity dropped to {capacity} ready pods; the stable had "
                f"{self.established} (at {stamp(world.now)}, status {_brief(world.status())})"
            )

    def _establish(self, world: World) -> None:
        assert world.parsed is not None
        stable = world.status().get("stableVersion")
        replicas = world.parsed.replicas
        if (
            stable
            and replicas > 0
            and world.ready_pods(_server_selector(stable)).get(stable, 0) >= replicas
        ):
            self.established = replicas

    def _analysis_runs(self, world: World, status: dict[str, Any]) -> None:
        """While a canary's pods are all ready and it is not paused, its analysis
        measures at least once per interval (an outage elsewhere does not stop it)."""
        assert world.parsed is not None
        analysis = world.parsed.rollout.analysis
        canary = status.get("canaryVersion")
        paused = world.annotations().get(PAUSED_ANNOTATION) == "true"
        ready = _canary_fully_ready(world, canary) if canary else False
        if analysis is None or not canary or paused or not ready:
            self.canary_ready_since, self.measured_canary = None, None
            return
        if self.canary_ready_since is None or self.measured_canary != canary:
            self.canary_ready_since, self.measured_canary = world.now, canary
            return
        mine = [r for r in status.get("analysis") or [] if r.get("version") == canary]
        last = max((_time(r["measuredAt"]) for r in mine if r.get("measuredAt")), default=None)
        since = max(self.canary_ready_since, last) if last else self.canary_ready_since
        late = (world.now - since).total_seconds() - duration_seconds(analysis.interval)
        assert late <= ANALYSIS_SLACK, (
            f"analysis of canary {canary} stalled: no measurement since {stamp(since)} "
            f"(now {stamp(world.now)}, interval {analysis.interval}); status {_brief(status)}"
        )


def no_exception(step: Pass) -> None:
    ready = _condition(step.after, "Ready") or {}
    unexpected = step.ended.result == Result.ERROR or ready.get("reason") == UNEXPECTED
    assert not unexpected, f"a reconcile raised an unexpected exception: {ready.get('message')}"


def backends_have_pods(world: World, route: dict[str, int] | None, which: str) -> None:
    for service, weight in (route or {}).items():
        if weight > 0:
            assert sum(world.service_pods(service).values()) > 0, (
                f"{which} sends {weight}% to {service}, which has no ready pods "
                f"(at {stamp(world.now)}, status {_brief(world.status())})"
            )
    if world.kube.objects.get(("Service", world.namespace, NAME)) is not None:
        assert sum(world.service_pods(NAME).values()) > 0, (
            f"Service {NAME} has no ready pods (status {_brief(world.status())})"
        )


def only_servable_versions(world: World) -> None:
    """Requests reach only versions the spec allows, the stable (which may have
    lost its ModelVersion), versions whose traffic is being drained, or versions
    the Gateway still reaches by a route the operator has already replaced (their
    pods stay on purpose until the Gateway takes the new one)."""
    status = world.status()
    allowed = {status.get("stableVersion")} | {r["version"] for r in status.get("retiring") or []}
    allowed |= left_to_the_gateway(world)
    for version in world.serving():
        assert version in allowed or world.servable(version), (
            f"requests reach {version}, which is {_phase_of(world, version)} and not the "
            f"stable (status {_brief(status)})"
        )


def left_to_the_gateway(world: World) -> set[str]:
    """Versions reached only through a backend the Gateway still weights but the
    route as written no longer does: the Gateway lags (GATEWAY_LAG), not the operator."""
    written = world.route() or {}
    lagging: set[str] = set()
    for service, weight in (world.gateway or {}).items():
        if weight > 0 and written.get(service, 0) == 0:
            lagging |= set(world.service_pods(service))
    return lagging


def route_follows_the_router(world: World) -> None:
    """An HTTPRoute exists only while spec.trafficRouter is HTTPRoute: one left
    behind keeps the Gateway splitting by weights nothing updates any more."""
    assert world.parsed is not None
    if world.parsed.traffic_router.kind != "HTTPRoute":
        left = world.route()
        assert left is None, (
            f"the HTTPRoute stays under the {world.parsed.traffic_router.kind} router: {left}"
        )


def manual_commands_scoped(invariants: Invariants, step: Pass) -> None:
    """A promote or abort acts on the rollout in progress when it was requested."""
    for reason, message in step.events:
        for annotation, action in ((PROMOTE_ANNOTATION, "Promoted"), (ABORT_ANNOTATION, "Aborted")):
            if reason != action or annotation not in message:
                continue
            before = step.before
            canary = before.get("canaryVersion")
            named = f"{canary} promoted" if action == "Promoted" else f"rollout of {canary} "
            ended = (
                (str(canary), str(before.get("rolloutStartedAt")))
                if canary and named in message
                else (message, "a rollout that started in the same reconcile")
            )
            request = invariants.requests.get(annotation)
            made = request.rollout if request else None
            assert made == ended, (
                f"{annotation} ({request.value if request else '?'}) was set during "
                f"{_rollout(made)} but {action.lower()} {_rollout(ended)}"
            )


def ready_only_when_serving_target(world: World, step: Pass) -> None:
    status = step.after
    ready = _condition(status, "Ready") or {}
    if ready.get("status") != "True":
        return
    known, target = step.target
    stable = status.get("stableVersion")
    assert not known or target == stable, (
        f"Ready=True while the spec asks for {target or 'a version that cannot be served'} "
        f"and {stable} serves (status {_brief(status)})"
    )
    assert not status.get("canaryVersion"), f"Ready=True mid-rollout ({_brief(status)})"
    assert world.parsed is not None
    serving = set(world.serving())
    assert world.parsed.replicas == 0 or serving == {stable}, (
        f"Ready=True while requests reach {sorted(serving)}, not only {stable}"
    )


def status_matches_metrics(world: World, status: dict[str, Any]) -> None:
    exported = traffic_series(world.namespace)
    stated = {
        (t["version"], t["role"]): float(t["desiredWeight"]) for t in status.get("traffic") or []
    }
    assert exported == stated, (
        f"trailboss_deployment_traffic_weight_percent {exported} but status.traffic {stated}"
    )
    phase = status.get("phase")
    if phase:
        labels = {"kind": "Deployment", "namespace": world.namespace, "model": MODEL}
        value = _sample(metrics.OBJECTS, {**labels, "phase": phase})
        assert value == 1.0, f"trailboss_objects{{phase={phase}}} is {value}, status.phase {phase}"
    assert world.parsed is not None
    if world.parsed.traffic_router.kind == "HTTPRoute":
        held = {"stable": f"{NAME}-stable", "canary": f"{NAME}-canary"}
        for entry in status.get("traffic") or []:
            shown = entry.get("actualWeight")
            routed = (world.gateway or {}).get(held[entry["role"]], 0)
            assert shown is None or shown == routed, (
                f"status.traffic shows {entry['role']} {entry['version']} at {shown}% "
                f"while the Gateway routes {routed}% to it"
            )


def traffic_series(namespace: str) -> dict[tuple[str, str], float]:
    found: dict[tuple[str, str], float] = {}
    for family in metrics.TRAFFIC_WEIGHT.collect():
        for sample in family.samples:
            labels = sample.labels
            if labels["namespace"] == namespace and labels["deployment"] == NAME:
                found[(labels["version"], labels["role"])] = sample.value
    return found


def forget_series(namespace: str) -> None:
    """Between sequences: the registry is global, each world has its own namespace,
    and every series left behind would make each later look at the metrics slower."""
    for collector in vars(metrics).values():
        if isinstance(collector, MetricWrapperBase) and "namespace" in collector._labelnames:
            where = collector._labelnames.index("namespace")
            for labels in list(collector._metrics):
                if labels[where] == namespace:
                    collector.remove(*labels)


def _sample(collector: MetricWrapperBase, labels: dict[str, str]) -> float | None:
    """The value of the one series of ``collector`` with ``labels`` (the registry
    as a whole would also read /proc for the process metrics on every look)."""
    for family in collector.collect():
        for sample in family.samples:
            if sample.labels == labels:
                return sample.value
    return None


def promotion_earned(world: World, step: Pass) -> None:
    """A promotion by the steps (not by request) never follows analysis that broke
    its limits: per query, errors in a row; in all, failed measurements."""
    analysis = world.parsed.rollout.analysis if world.parsed else None
    promoted = [m for r, m in step.events if r == "Promoted" and PROMOTE_ANNOTATION not in m]
    version = step.after.get("stableVersion")
    if analysis is None or not promoted or step.before.get("canaryVersion") != version:
        return
    mine = [r for r in step.after.get("analysis") or [] if r.get("version") == version]
    failed = sum(r.get("phase") == "Failed" for r in mine)
    assert failed <= analysis.failure_limit, (
        f"{version} promoted after {failed} failed measurements "
        f"(failureLimit {analysis.failure_limit})"
    )
    for query in analysis.queries:
        streak = 0
        for result in (r for r in mine if r.get("name") == query.name):
            streak = streak + 1 if result.get("phase") == "Error" else 0
        assert streak <= analysis.consecutive_error_limit, (
            f"{version} promoted after {streak} errors in a row of query {query.name} "
            f"(consecutiveErrorLimit {analysis.consecutive_error_limit})"
        )


def retraining_bounded(world: World) -> None:
    """A new TrainingRun never exceeds maxConcurrentRuns, and a drift or schedule
    one is never due within the cooldown of the previous retraining. As
    docs/retraining.md has it, each is taken when it was due: a scheduled one at its
    schedule time (the operator may act on it later, held by maxConcurrentRuns),
    and two schedule times are compared on the schedule's wall clock."""
    retraining = world.parsed.retraining if world.parsed else None
    for run in world.training_runs():
        name = run["metadata"]["name"]
        if name in world.trainings:
            continue
        reason = (run["metadata"].get("labels") or {}).get("trailboss.dev/retraining-reason", "")
        slot = _slot(run) if reason == "Schedule" else None
        record = TrainingRecord(name, reason, world.now, slot=slot)
        running = [
            r for r in world.training_runs() if r["metadata"]["name"] != name and training(r)
        ]  # fmt: skip
        previous = max(world.trainings.values(), key=lambda r: r.created, default=None)
        world.trainings[name] = record
        if retraining is None:
            continue
        assert len(running) + 1 <= retraining.max_concurrent_runs, (
            f"TrainingRun {name} ({reason}) is run {len(running) + 1} at once "
            f"(maxConcurrentRuns {retraining.max_concurrent_runs})"
        )
        if reason in ("Drift", "Schedule") and previous is not None:
            gap = _between(previous, record, retraining.time_zone)
            cooldown = duration_seconds(retraining.cooldown)
            assert gap >= cooldown - COOLDOWN_SLACK, (
                f"{reason} TrainingRun {name} was due {gap:.0f}s after {previous.reason} "
                f"TrainingRun {previous.name} (cooldown {retraining.cooldown})"
            )


def _slot(run: dict[str, Any]) -> dt.datetime | None:
    """The schedule time a scheduled TrainingRun ran for (its trigger)."""
    trigger = (run["metadata"].get("annotations") or {}).get("trailboss.dev/trigger")
    return dt.datetime.fromisoformat(trigger) if trigger else None


def _between(before: TrainingRecord, after: TrainingRecord, time_zone: str | None) -> float:
    """Seconds between when two retrainings were due."""
    if before.slot is not None and after.slot is not None:
        zone = cron.zone(time_zone)
        wall = [s.astimezone(zone).replace(tzinfo=None) for s in (before.slot, after.slot)]
        return (wall[1] - wall[0]).total_seconds()
    return ((after.slot or after.created) - (before.slot or before.created)).total_seconds()


def _canary_fully_ready(world: World, canary: str) -> bool:
    for server in world.servers().values():
        if server["metadata"]["labels"].get("trailboss.dev/model-version") == canary:
            want = int(server["spec"].get("replicas") or 0)
            ready = int((server.get("status") or {}).get("readyReplicas") or 0)
            return want > 0 and ready >= want
    return False


def _server_selector(version: str) -> dict[str, str]:
    return {"trailboss.dev/model-version": version}


def _condition(status: dict[str, Any], kind: str) -> dict[str, Any] | None:
    return next((c for c in status.get("conditions") or [] if c.get("type") == kind), None)


def _time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _phase_of(world: World, version: str) -> str:
    found = world.model_version(version)
    if found is None:
        return "deleted"
    return str((found.get("status") or {}).get("phase") or "Pending")


def _rollout(rollout: tuple[str, str] | None) -> str:
    return "no rollout" if rollout is None else f"the rollout of {rollout[0]} ({rollout[1]})"


def _brief(status: dict[str, Any]) -> str:
    keys = ("phase", "stableVersion", "canaryVersion", "canaryWeight", "currentStep",
            "abortedVersion", "targetVersion")  # fmt: skip
    ready = _condition(status, "Ready") or {}
    shown = {k: status[k] for k in keys if status.get(k) is not None}
    return f"{shown} Ready={ready.get('status')} {ready.get('reason')}: {ready.get('message')}"
