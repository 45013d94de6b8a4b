"""Drive one Deployment (trailboss.dev): resolve the version to serve, roll a
new one out progressively, and keep the model servers, Services and route in
line with where the rollout is.

The operator writes only status and its own children, never the user's spec,
so Argo CD stays Synced through rollouts and rollbacks; manual promote and
abort are annotations whose handled value is remembered in status.
"""

from __future__ import annotations

import logging
from typing import Any

from trailboss.api.common import API_VERSION
from trailboss.api.deployment import (
    ABORT_ANNOTATION,
    PAUSED_ANNOTATION,
    PROGRESSING,
    PROMOTE_ANNOTATION,
    Deployment,
    DeploymentPhase,
    DeploymentReason,
    DeploymentStatus,
    RolloutStrategy,
    TrafficRouterKind,
)
from trailboss.api.durations import duration_seconds
from trailboss.policies import rollout as policy
from trailboss.reconcilers import deployment_drift as drift
from trailboss.reconcilers import deployment_retraining as retraining
from trailboss.reconcilers import deployment_rollout as rollout
from trailboss.reconcilers.common import Services
from trailboss.reconcilers.deployment_children import (
    Server,
    apply_server,
    apply_traffic,
    delete_server,
    observe_servers,
    scale_server,
)
from trailboss.reconcilers.deployment_status import summarise
from trailboss.reconcilers.driver import Driver, Ended
from trailboss.reconcilers.outcomes import Failed, Outcome, Waiting
from trailboss.reconcilers.turn import Turn

log = logging.getLogger(__name__)
Served = Turn[Deployment]


class DeploymentKind:
    kind = "Deployment"
    model = Deployment
    failed_phase = str(DeploymentPhase.DEGRADED)
    phases = tuple(str(phase) for phase in DeploymentPhase)

    def settled(self, obj: Deployment) -> bool:
        return False  # level-based: children and traffic are checked on every pass

    def advance(self, turn: Served) -> None:
        _advance(turn)

    def failed(self, turn: Served, outcome: Outcome) -> None:
        turn.status.phase = DeploymentPhase.DEGRADED


driver: Driver[Deployment] = Driver(DeploymentKind(), base_delay=5.0)


def reconcile(body: dict[str, Any], svc: Services) -> Ended:
    return driver.reconcile(body, svc)


def reconcile_latest(namespace: str, name: str, uid: str, svc: Services) -> Ended:
    return driver.reconcile_latest(namespace, name, uid, svc)


def forget(uid: str) -> None:
    driver.forget(uid)


def _advance(turn: Served) -> None:
    status: DeploymentStatus = turn.status
    status.observed_generation = turn.generation
    if turn.obj.spec.rollout.strategy == RolloutStrategy.SHADOW:
        _unsupported(
            turn,
            "spec.rollout.strategy: Shadow needs request mirroring, which no "
            "traffic router here offers yet; use Canary or Replace",
        )
    target = _target(turn)
    servers = observe_servers(turn)  # once: the rollout and the apply both decide from it
    _steer(turn, target, servers)
    _reconcile_servers(turn, servers)
    summarise(turn, observe_servers(turn), paused=_paused(turn))
    drift.monitor(turn)
    retraining.step(turn)


def _unsupported(turn: Served, message: str) -> None:
    raise Failed(DeploymentReason.UNSUPPORTED, message)


def _target(turn: Served) -> str | None:
    """The version the spec resolves to now; None keeps serving what serves."""
    spec, status = turn.obj.spec, turn.status
    items = turn.svc.kube.list(API_VERSION, "ModelVersion", turn.namespace)
    candidates = [_candidate(item) for item in items]
    alias = spec.version_policy.alias if spec.version_policy else None
    alias_version = turn.svc.tracking.alias_version(spec.model, alias) if alias else None
    choice = policy.choose(spec, candidates, int(alias_version) if alias_version else None)
    status.target_version = choice.version
    if choice.version is None:
        if status.stable_version is None:
            raise Waiting(choice.reason, choice.message, retry_after=15.0)
        turn.set_condition(PROGRESSING, False, choice.reason, choice.message)
    return choice.version


def _candidate(item: dict[str, Any]) -> policy.Candidate:
    status = item.get("status") or {}
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )
    version = status.get("registryVersion")
    return policy.Candidate(
        name=item["metadata"]["name"],
        model=(item.get("spec") or {}).get("model", ""),
        phase=status.get("phase"),
        ready=ready,
        registry_version=int(version) if version and str(version).isdigit() else None,
        labels=item["metadata"].get("labels") or {},
        created=str(item["metadata"].get("creationTimestamp") or ""),
    )


def _steer(turn: Served, target: str | None, servers: dict[str, Server]) -> None:
    """Move the rollout one step towards ``target``."""
    status: DeploymentStatus = turn.status
    if target is None or target == status.aborted_version:
        _manual(turn)  # an abort request still applies to a running canary
        return
    status.aborted_version = None
    if status.stable_version is None:
        status.stable_version = target  # first version: nothing to protect yet
        annotations = turn.meta.get("annotations") or {}
        # Requests made before this Deployment served anything are not for a rollout.
        status.handled_promote = annotations.get(PROMOTE_ANNOTATION)
        status.handled_abort = annotations.get(ABORT_ANNOTATION)
        turn.event(DeploymentReason.SERVING, f"serving {target}")
        return
    if target == status.stable_version:
        if status.canary_version is not None:  # the target went back: drop the canary
            # The target went back (a Git revert): not a failure, so no abort.
            rollout.retire(turn, status.canary_version, turn.svc.clock())
            _withdraw(turn)
        return
    if status.canary_version != target:
        rollout.start(turn, target)
    if not _manual(turn) and not _paused(turn):
        rollout.advance(turn, canary_ready=_canary_ready(turn, servers))


def _withdraw(turn: Served) -> None:
    status: DeploymentStatus = turn.status
    turn.event(
        DeploymentReason.SUPERSEDED,
        f"{status.canary_version} is no longer the target; serving stable {status.stable_version}",
    )
    status.canary_version = None
    status.canary_weight = None
    status.current_step = None
    status.step_started_at = None
    status.pause_started_at = None
    status.rollout_started_at = None


def _manual(turn: Served) -> bool:
    """Act once on a new promote or abort annotation value. True when one acted."""
    annotations = turn.meta.get("annotations") or {}
    status: DeploymentStatus = turn.status
    abort, promote = annotations.get(ABORT_ANNOTATION), annotations.get(PROMOTE_ANNOTATION)
    if abort and abort != status.handled_abort:
        status.handled_abort = abort
        if status.canary_version is not None:
            rollout.abort(turn, DeploymentReason.ABORTED, f"requested ({ABORT_ANNOTATION})")
            return True
    if promote and promote != status.handled_promote:
        status.handled_promote = promote
        if status.canary_version is not None:
            rollout.promote(turn, f"requested ({PROMOTE_ANNOTATION})")
            return True
    return False


def _paused(turn: Served) -> bool:
    return (turn.meta.get("annotations") or {}).get(PAUSED_ANNOTATION) == "true"


def _canary_ready(turn: Served, servers: dict[str, Server]) -> bool:
    status: DeploymentStatus = turn.status
    if status.canary_version is None:
        return False
    _, canary = _replicas(turn, status.canary_weight or 0)
    server = servers.get(status.canary_version)
    return server is not None and server.replicas >= canary and server.ready >= canary


def _replicas(turn: Served, weight: int) -> tuple[int, int]:
    """(stable, canary) pods for a canary weight, by router."""
    replicas = turn.obj.spec.replicas
    if _by_replica_ratio(turn):
        return policy.replica_split(replicas, weight)
    # Behind weighted routes the stable keeps all its pods until promotion.
    canary = 0 if weight <= 0 else max(1, policy.replica_split(replicas, weight)[1])
    return replicas, canary


def _by_replica_ratio(turn: Served) -> bool:
    return turn.obj.spec.traffic_router.kind == TrafficRouterKind.REPLICA_RATIO


def _reconcile_servers(turn: Served, servers: dict[str, Server]) -> None:
    status: DeploymentStatus = turn.status
    weight = status.canary_weight or 0
    stable_replicas, canary_replicas = _replicas(turn, weight if status.canary_version else 0)
    if status.canary_version is not None and _by_replica_ratio(turn):
        canary = servers.get(status.canary_version)
        ready = canary.ready if canary is not None else 0
        stable_replicas = policy.stable_pods(turn.obj.spec.replicas, stable_replicas, ready)
    if status.stable_version is not None:
        apply_server(turn, status.stable_version, stable_replicas)
    if status.canary_version is not None:
        apply_server(turn, status.canary_version, canary_replicas)
    _retire_servers(turn, servers)
    route_weight = _route_weight(turn, weight, servers)
    apply_traffic(turn, status.stable_version, status.canary_version, route_weight)


def _route_weight(turn: Served, weight: int, servers: dict[str, Server]) -> int:
    """Behind a route, a step's weight moves only once its canary pods are ready
    (the route would send requests to a backend with no endpoints); until then
    the previous step's weight holds."""
    status: DeploymentStatus = turn.status
    if status.canary_version is None or _canary_ready(turn, servers):
        return weight
    step = status.current_step or 0
    return rollout.steps(turn)[step - 1].weight if step > 0 else 0


def _retire_servers(turn: Served, servers: dict[str, Server]) -> None:
    """Retiring versions lose their traffic now and their pods after the delay;
    a server of any other version is removed."""
    status: DeploymentStatus = turn.status
    now = turn.svc.clock()
    delay = duration_seconds(turn.obj.spec.rollout.scale_down_delay)
    live = {status.stable_version, status.canary_version}
    keep = []
    for retiring in status.retiring:
        server = servers.get(retiring.version)
        left = delay - (now - retiring.since).total_seconds()
        if retiring.version in live or server is None:
            continue
        if left <= 0:
            delete_server(turn, server)
            continue
        keep.append(retiring)
        turn.requeue(left)
        if turn.obj.spec.traffic_router.kind == TrafficRouterKind.REPLICA_RATIO:
            scale_server(turn, server, 0)  # in the main Service, pods are traffic
    status.retiring = keep
    kept = live | {r.version for r in keep}
    for version, server in servers.items():
        if version not in kept:
            delete_server(turn, server)
