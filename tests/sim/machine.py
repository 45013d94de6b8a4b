"""Sequences of user actions and faults against one Deployment, as a Hypothesis
state machine. Rules are what an SRE, Argo CD or the world does: spec edits,
the CLI's annotations, ModelVersions appearing, passing their gate or being
deleted, MLflow and Prometheus failing, pods not starting, the operator
restarting, time passing. The invariants (invariants.py) are checked after
every reconcile and every step; ``quiesce`` checks that once the inputs stop
changing the Deployment settles. A failure prints the shrunk steps, which paste
into a regression test as they are."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from pydantic import ValidationError

from tests.sim.invariants import Invariants, forget_series, traffic_series
from tests.sim.world import (
    IDLE_RESYNC,
    PROMETHEUS,
    QUERIES,
    RESYNC,
    TEMPLATE,
    World,
    stamp,
)
from trailboss.api.deployment import (
    ABORT_ANNOTATION,
    PAUSED_ANNOTATION,
    PROMOTE_ANNOTATION,
    RETRAIN_ANNOTATION,
    DeploymentSpec,
)
from trailboss.api.durations import duration_seconds
from trailboss.policies.rollout import steps_of
from trailboss.reconcilers import deployment

VERSIONS = tuple(f"v{n}" for n in range(1, 7))
TYPO = "v2-typo"
STEPS = ("", "10@1m", "10@1m 50@1m", "25@30s 50@2m 75@1m", "20@5m", "50@10s 100", "100")
"""Canary steps as weight@pause, e.g. `10@1m 50@1m` (empty: the default steps)."""
SHORT = (1, 5, 10, 30, 60)
LONG = (120, 300, 600, 1800, 3600, 3 * 3600)
SETTLE_SLACK = 120.0
"""Beyond the deadline, interval and pauses: pods starting, resyncs, scale-down."""


def parse_steps(text: str) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = []
    for part in text.split():
        weight, _, pause = part.partition("@")
        steps.append({"weight": int(weight), **({"pause": pause} if pause else {})})
    return steps


def analysis_spec(
    interval: str, failure_limit: int, error_limit: int, queries: int
) -> dict[str, Any]:
    return {
        "prometheusUrl": PROMETHEUS,
        "interval": interval,
        "failureLimit": failure_limit,
        "consecutiveErrorLimit": error_limit,
        "queries": [
            {"name": name, "query": query, **bounds}
            for name, (query, bounds) in list(QUERIES.items())[:queries]
        ],
    }


class DeploymentSimulation(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.world = World()
        self.checks = Invariants()
        self.checks.attach(self.world)
        self.requests = 0

    def teardown(self) -> None:
        deployment.forget(self.world.uid)
        forget_series(self.world.namespace)

    # -- the starting point: a Deployment serving v1 ----------------------------

    @initialize(
        replicas=st.sampled_from([1, 2, 3, 5, 10]),
        router=st.sampled_from(["ReplicaRatio", "HTTPRoute"]),
        strategy=st.sampled_from(["Canary", "Replace"]),
        steps=st.sampled_from(STEPS),
        analysis=st.sampled_from([None, "10s", "30s", "1m", "5m"]),
        source=st.sampled_from(["pinned", "latest", "latest", "alias"]),
        retraining=st.booleans(),
        release=st.sampled_from(["good", "bad", None]),
    )
    def start(
        self,
        replicas: int,
        router: str,
        strategy: str,
        steps: str,
        analysis: str | None,
        source: str,
        retraining: bool,
        release: str | None,
    ) -> None:
        """A Deployment serving v1, Healthy; ``release``: v2 (good or bad) is then
        released, so the sequence starts mid-rollout."""
        world = self.world
        world.add_version("v1", "Validated", {"track": "prod"}, "good", "ok")
        world.move_alias("champion", 1)
        spec: dict[str, Any] = {
            "model": "churn",
            "replicas": replicas,
            "rollout": {"strategy": strategy, "steps": parse_steps(steps)},
            "trafficRouter": {
                "kind": router,
                **({"gateway": "public"} if router == "HTTPRoute" else {}),
            },
        }
        if analysis is not None:
            spec["rollout"]["analysis"] = analysis_spec(analysis, 1, 2, 2)
        if source == "pinned":
            spec["modelVersion"] = "v1"
        else:
            spec["versionPolicy"] = {"alias": "champion"} if source == "alias" else {}
        if retraining:
            spec["retraining"] = {"template": TEMPLATE, "onDrift": True, "cooldown": "1h",
                                  "schedule": "0 3 * * *", "maxConcurrentRuns": 2}  # fmt: skip
        try:
            DeploymentSpec.model_validate(spec)
        except ValidationError:  # e.g. a pause shorter than the interval: start without analysis
            spec["rollout"].pop("analysis", None)
        world.create(spec)
        assert world.run(300, until=lambda: world.status().get("phase") == "Healthy"), (
            f"never became Healthy serving v1: {world.status()}"
        )
        if release is not None:
            self.new_version("Validated", release, "ok", True, True)
            world.move_alias("champion", 2)

    # -- ModelVersions and the registry -----------------------------------------

    @precondition(lambda self: len(self.world.versions) < len(VERSIONS))
    @rule(
        phase=st.sampled_from(
            ["Validated", "Validated", "Validated", "Registered", "Pending", "Rejected"]
        ),
        quality=st.sampled_from(["good", "good", "bad"]),
        pods=st.sampled_from(["ok", "ok", "ok", "slow", "never", "partial"]),
        labelled=st.booleans(),
        pin=st.sampled_from([True, True, False]),
    )
    def new_version(self, phase: str, quality: str, pods: str, labelled: bool, pin: bool) -> None:
        """A new ModelVersion; ``pin``: a commit pins it, if the spec pins versions."""
        name = next(v for v in VERSIONS if v not in self.world.versions)
        self.world.add_version(name, phase, {"track": "prod"} if labelled else {}, quality, pods)
        if pin and "modelVersion" in self.world.spec:
            self.pin(name)

    @rule(
        version=st.sampled_from(VERSIONS),
        phase=st.sampled_from(["Validated", "Rejected", "Registered"]),
    )
    def version_phase(self, version: str, phase: str) -> None:
        self.world.set_phase(version, phase)

    @rule(version=st.sampled_from(VERSIONS))
    def delete_version(self, version: str) -> None:
        self.world.delete_version(version)

    @rule(number=st.integers(1, 8))
    def move_alias(self, number: int) -> None:
        self.world.move_alias("champion", number)

    # -- spec edits (Argo CD applies a commit) ----------------------------------

    @rule(version=st.sampled_from(("v2", "v3", "v1", "v4", "v5", "v6", TYPO)))
    def pin(self, version: str) -> None:
        def change(spec: dict[str, Any]) -> None:
            spec.pop("versionPolicy", None)
            spec["modelVersion"] = version

        self.world.edit(change)

    @rule(
        policy=st.sampled_from(
            [
                "latest Validated",
                "latest Registered",
                "latest Validated track=prod",
                "alias champion",
            ]
        )
    )
    def follow(self, policy: str) -> None:
        """versionPolicy instead of a pinned version, e.g. `latest Validated track=prod`."""
        kind, value, *labels = policy.split()
        chosen: dict[str, Any] = {kind: value}
        if labels:
            key, _, label = labels[0].partition("=")
            chosen["matchLabels"] = {key: label}
        self._policy(chosen)

    def _policy(self, policy: dict[str, Any]) -> None:
        def change(spec: dict[str, Any]) -> None:
            spec.pop("modelVersion", None)
            spec["versionPolicy"] = policy

        self.world.edit(change)

    @rule(strategy=st.sampled_from(["Canary", "Canary", "Replace"]), steps=st.sampled_from(STEPS))
    def set_steps(self, strategy: str, steps: str) -> None:
        def change(spec: dict[str, Any]) -> None:
            spec["rollout"]["strategy"] = strategy
            spec["rollout"]["steps"] = parse_steps(steps)

        self.world.edit(change)

    @rule(
        interval=st.sampled_from([None, "10s", "30s", "1m", "5m"]),
        failure_limit=st.integers(0, 3),
        error_limit=st.integers(0, 4),
        queries=st.integers(1, 2),
    )
    def set_analysis(
        self, interval: str | None, failure_limit: int, error_limit: int, queries: int
    ) -> None:
        def change(spec: dict[str, Any]) -> None:
            if interval is None:
                spec["rollout"].pop("analysis", None)
            else:
                spec["rollout"]["analysis"] = analysis_spec(
                    interval, failure_limit, error_limit, queries
                )

        self.world.edit(change)

    @rule(
        deadline=st.sampled_from(["2m", "10m", "30m"]),
        delay=st.sampled_from(["0s", "30s", "5m"]),
        window=st.sampled_from(["1h", "24h"]),
    )
    def set_timing(self, deadline: str, delay: str, window: str) -> None:
        def change(spec: dict[str, Any]) -> None:
            spec["rollout"]["progressDeadline"] = deadline
            spec["rollout"]["scaleDownDelay"] = delay
            spec["rollout"]["fastRollbackWindow"] = window

        self.world.edit(change)

    @rule(replicas=st.sampled_from([0, 1, 2, 3, 5, 10]))
    def set_replicas(self, replicas: int) -> None:
        if self.world.edit(lambda spec: spec.__setitem__("replicas", replicas)):
            self.checks.replicas_changed(replicas)

    @rule(kind=st.sampled_from(["ReplicaRatio", "HTTPRoute"]))
    def set_router(self, kind: str) -> None:
        router = {"kind": kind, **({"gateway": "public"} if kind == "HTTPRoute" else {})}
        self.world.edit(lambda spec: spec.__setitem__("trafficRouter", router))

    @rule(allowed=st.booleans())
    def serve_unvalidated(self, allowed: bool) -> None:
        self.world.edit(lambda spec: spec.__setitem__("serveUnvalidated", allowed))

    @rule(
        on_drift=st.booleans(),
        schedule=st.sampled_from([None, "0 3 * * *", "*/30 * * * *"]),
        cooldown=st.sampled_from(["10m", "1h", "24h"]),
        max_runs=st.sampled_from([1, 2, 12, 16]),
    )
    def set_retraining(
        self, on_drift: bool, schedule: str | None, cooldown: str, max_runs: int
    ) -> None:
        retraining: dict[str, Any] = {
            "template": TEMPLATE,
            "onDrift": on_drift,
            "cooldown": cooldown,
            "maxConcurrentRuns": max_runs,
        }
        if schedule:
            retraining["schedule"] = schedule
        self.world.edit(lambda spec: spec.__setitem__("retraining", retraining))

    # -- the CLI's annotations ---------------------------------------------------

    def _request(self, annotation: str) -> str:
        self.requests += 1
        value = f"{stamp(self.world.now)}#{self.requests}"
        self.checks.requested(self.world, annotation, value)
        self.world.annotate(annotation, value)
        return value

    @rule()
    def promote(self) -> None:
        self._request(PROMOTE_ANNOTATION)

    @rule()
    def abort(self) -> None:
        self._request(ABORT_ANNOTATION)

    @rule(paused=st.booleans())
    def pause(self, paused: bool) -> None:
        self.world.annotate(PAUSED_ANNOTATION, "true" if paused else None)

    @rule()
    def retrain(self) -> None:
        self.requests += 1
        self.world.annotate(RETRAIN_ANNOTATION, f"{stamp(self.world.now)}#{self.requests}")

    @rule()
    def delete_and_recreate(self) -> None:
        """kubectl delete, then Argo CD creates it again from Git."""
        world = self.world
        world.delete()
        left = traffic_series(world.namespace)
        assert not left, f"the deleted Deployment's traffic series stay: {left}"
        self.checks.recreated(world)
        world.create(world.spec)

    # -- faults ------------------------------------------------------------------

    @rule(
        query=st.sampled_from(["error-rate", "latency"]),
        answer=st.sampled_from(
            ["value", "nan", "empty", "vector", "matrix", "scalar", "refused", "down", "up"]
        ),
    )
    def prometheus(self, query: str, answer: str) -> None:
        """How Prometheus answers ``query`` from now on; `down`/`up` is all of it."""
        if answer in ("down", "up"):
            self.world.prometheus.down = answer == "down"
        else:
            self.world.prometheus_modes[query] = answer

    @rule(down=st.booleans())
    def mlflow_down(self, down: bool) -> None:
        self.world.tracking.down = down
        self.world.dirty = True

    @rule(
        version=st.sampled_from(VERSIONS),
        pods=st.sampled_from(["ok", "slow", "never", "partial"]),
        quality=st.sampled_from(["good", "bad"]),
    )
    def version_behaves(self, version: str, pods: str, quality: str) -> None:
        """How ``version``'s new pods start, and what Prometheus measures for it."""
        if version in self.world.versions:
            self.world.versions[version].pods = pods
            self.world.versions[version].quality = quality

    @rule(drifted=st.booleans())
    def drift_check(self, drifted: bool) -> None:
        self.world.drift_check(drifted)

    @rule(outcome=st.sampled_from(["Failed", "Validated", "Rejected", "Pending"]))
    def finish_training(self, outcome: str) -> None:
        self.world.finish_training(outcome)

    @rule()
    def restart_operator(self) -> None:
        self.world.restart()

    # -- time ----------------------------------------------------------------------

    @rule()
    def reconcile(self) -> None:
        self.world.reconcile()

    @rule(seconds=st.sampled_from(SHORT))
    def advance_time(self, seconds: int) -> None:
        self.world.run(seconds)

    @rule(seconds=st.sampled_from(LONG))
    def advance_time_long(self, seconds: int) -> None:
        self.world.run(seconds)

    @rule()
    def quiesce(self) -> None:
        """The inputs stop changing, pods start, Prometheus answers good values:
        the Deployment must reach Healthy or Degraded within the progress
        deadline plus one analysis interval (and the steps' pauses)."""
        world = self.world
        world.heal_pods()
        world.tracking.down = False
        world.prometheus.down = False
        world.prometheus_modes.clear()
        for info in world.versions.values():
            info.quality = "good"
        world.annotate(PAUSED_ANNOTATION, None)
        budget = settle_budget(world)
        world.idle_resync = RESYNC
        try:
            settled = world.run(budget, until=lambda: world.status().get("phase") in _SETTLED)
        finally:
            world.idle_resync = IDLE_RESYNC
        if not world.status().get("stableVersion") and world.expected_target() == (True, None):
            return  # nothing was ever served and the spec names nothing servable: it waits
        status = world.status()
        shown = {
            k: status.get(k) for k in ("phase", "stableVersion", "canaryVersion", "canaryWeight")
        }
        ready = next((c for c in status.get("conditions") or [] if c["type"] == "Ready"), None)
        assert settled, (
            f"wedged: not Healthy or Degraded {budget:.0f}s after the inputs stopped "
            f"changing: {shown}, Ready: {ready}"
        )

    @invariant()
    def holds_now(self) -> None:
        if self.world.uid:
            self.checks.instant(self.world)


_SETTLED = ("Healthy", "Degraded")


def settle_budget(world: World) -> float:
    spec = world.parsed
    assert spec is not None
    rollout = spec.rollout
    plan = steps_of(rollout) if rollout.strategy == "Canary" else []
    pauses = sum(duration_seconds(s.pause) for s in plan if s.pause)
    interval = duration_seconds(rollout.analysis.interval) if rollout.analysis else 0.0
    per_step = SETTLE_SLACK + interval
    return (
        duration_seconds(rollout.progress_deadline)
        + pauses
        + per_step * max(1, len(plan))
        + duration_seconds(rollout.scale_down_delay)
    )
