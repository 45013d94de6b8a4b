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
from trailboss.api.conditions import find
from trailboss.api.deployment import (
    ABORT_ANNOTATION,
    PAUSED_ANNOTATION,
    PROMOTE_ANNOTATION,
    PROMOTE_STEP_PREFIX,
    TARGET_RESOLVED,
    Deployment,
    DeploymentPhase,
    DeploymentReason,
    DeploymentStatus,
)
from trailboss.api.durations import spec_seconds
from trailboss.api.rollout import RolloutStrategy, TrafficRouterKind
from trailboss.clients.protocols import TrackingRejected, TrackingUnavailable
from trailboss.policies import rollout as policy
from trailboss.reconcilers import deployment_drift as drift
from trailboss.reconcilers import deployment_retraining as retraining
from trailboss.reconcilers import deployment_rollout as rollout
from trailboss.reconcilers.common import Services
from trailboss.reconcilers.deployment_children import (
    Route,
    Server,
    Traffic,
    apply_server,
    apply_traffic,
    delete_route,
    delete_server,
    observe_servers,
    observe_traffic,
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
    traffic = observe_traffic(turn, servers)
    _steer(turn, target, servers)
    route = _reconcile_servers(turn, servers, traffic)
    summarise(turn, observe_servers(turn), route, paused=_paused(turn))
    drift.monitor(turn)
    retraining.step(turn)


def _unsupported(turn: Served, message: str) -> None:
    raise Failed(DeploymentReason.UNSUPPORTED, message)


def _target(turn: Served) -> str | None:
    """The version the spec resolves to now; None when it names nothing servable
    (the stable keeps serving, and the TargetResolved condition says why)."""
    status = turn.status
    items = turn.svc.kube.list(API_VERSION, "ModelVersion", turn.namespace)
    choice = _resolve(turn, [_candidate(item) for item in items])
    status.target_version = choice.version
    resolved = choice.reason == DeploymentReason.RESOLVED
    turn.set_condition(TARGET_RESOLVED, resolved, choice.reason, choice.message)
    if choice.version is None and status.stable_version is None:
        raise Waiting(choice.reason, choice.message, retry_after=15.0)
    return choice.version


def _resolve(turn: Served, candidates: list[policy.Candidate]) -> policy.Choice:
    spec = turn.obj.spec
    alias = spec.version_policy.alias if spec.version_policy else None
    if alias is None:
        return policy.choose(spec, candidates)
    try:
        alias_version = turn.svc.tracking.alias_version(spec.model, alias)
    except (TrackingUnavailable, TrackingRejected):
        # An outage (or a refused read) is not a new target: the rollout in progress goes on.
        return policy.kept(spec, turn.status.target_version, candidates)
    return policy.choose(spec, candidates, int(alias_version) if alias_version else None)


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
        deleting=bool(item["metadata"].get("deletionTimestamp")),
    )


def _steer(turn: Served, target: str | None, servers: dict[str, Server]) -> None:
    """Move the rollout one step towards ``target``."""
    status: DeploymentStatus = turn.status
    rollout.follow_plan(turn)  # a spec edit mid-rollout is a transition, never an error
    _manual(turn)  # a request is for the rollout in progress as it is seen, or for none
    if target is None and status.canary_version is not None:
        _withdraw_unservable(turn)
    if target is None or target == status.aborted_version:
        return
    status.aborted_version = None
    if status.stable_version is None:
        rollout.serve_first(turn, target)
        return
    if target == status.stable_version:
        if status.canary_version is not None:  # the target went back: drop the canary
            # The target went back (a Git revert): not a failure, so no abort.
            rollout.retire(turn, status.canary_version, turn.svc.clock())
            _withdraw(
                turn,
                DeploymentReason.SUPERSEDED,
                f"{status.canary_version} is no longer the target; "
                f"serving stable {status.stable_version}",
            )
        return
    if status.canary_version != target:
        rollout.start(turn, target)
    if _paused(turn) and not status.promoting:  # a promote request ends a pause
        rollout.pause(turn)
    else:
        rollout.advance(turn, canary_ready=_canary_ready(turn, servers))


def _withdraw_unservable(turn: Served) -> None:
    """The target stopped resolving mid-rollout (a typo, its ModelVersion deleted,
    an alias moved to a version unknown here): holding the canary at its weight
    would serve a version the spec no longer names, so traffic goes back to stable."""
    status: DeploymentStatus = turn.status
    assert status.canary_version is not None
    resolved = find(status.conditions, TARGET_RESOLVED)
    reason = resolved.reason if resolved else DeploymentReason.VERSION_NOT_FOUND
    why = resolved.message if resolved else "the target no longer resolves"
    rollout.retire(turn, status.canary_version, turn.svc.clock())
    _withdraw(
        turn,
        reason,
        f"{status.canary_version} withdrawn: {why}; serving stable {status.stable_version}",
        warning=True,
    )


def _withdraw(turn: Served, reason: str, message: str, *, warning: bool = False) -> None:
    status: DeploymentStatus = turn.status
    turn.event(reason, message, warning=warning)
    rollout.end(status)


def _manual(turn: Served) -> None:
    """Act once on a new promote or abort annotation value, on the rollout in
    progress now; with none, the request is answered and dropped."""
    annotations = turn.meta.get("annotations") or {}
    status: DeploymentStatus = turn.status
    abort, promote = annotations.get(ABORT_ANNOTATION), annotations.get(PROMOTE_ANNOTATION)
    if abort and abort != status.handled_abort:
        status.handled_abort = abort
        rollout.requested_abort(turn)
    if promote and promote != status.handled_promote:
        status.handled_promote = promote
        rollout.requested_promote(turn, one_step=promote.startswith(PROMOTE_STEP_PREFIX))


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


def _reconcile_servers(turn: Served, servers: dict[str, Server], traffic: Traffic) -> Route | None:
    """Servers, Services and route as the rollout now wants them; the route as applied."""
    status: DeploymentStatus = turn.status
    weight = status.canary_weight or 0
    stable_replicas, canary_replicas = _replicas(turn, weight if status.canary_version else 0)
    if status.canary_version is not None and _by_replica_ratio(turn):
        replicas = turn.obj.spec.replicas
        canary = servers.get(status.canary_version)
        stable = servers.get(status.stable_version) if status.stable_version else None
        ready = canary.ready if canary is not None else 0
        stable_replicas = policy.stable_pods(replicas, stable_replicas, ready)
        canary_replicas = policy.canary_pods(
            replicas,
            canary_replicas,
            stable.ready if stable is not None else 0,
            canary.replicas if canary is not None else 0,
        )
    elif status.canary_version is not None:
        canary_replicas = _canary_held_for_the_gateway(turn, servers, traffic, canary_replicas)
    if status.stable_version is not None:
        if traffic.routed_before and _by_replica_ratio(turn):
            stable_replicas = _held_for_the_route(turn, servers, stable_replicas)
        _serve(turn, status.stable_version, stable_replicas, servers)
    if status.canary_version is not None:
        _serve(turn, status.canary_version, canary_replicas, servers)
    backend = _canary_backend(turn, traffic)
    routed = _routed(turn, servers, traffic)
    _retire_servers(turn, servers, held=backend, routed=routed)
    if traffic.routed_before and _by_replica_ratio(turn):
        # Switched to the replica ratio: from now on `<name>` selects every version.
        delete_route(turn)
    # The canary gets route weight only once its Service selects the canary's pods.
    route_weight = _route_weight(turn, weight, servers) if backend == status.canary_version else 0
    return apply_traffic(
        turn, status.stable_version, status.canary_version, route_weight, backend, routed=routed
    )


def _canary_held_for_the_gateway(
    turn: Served, servers: dict[str, Server], traffic: Traffic, wanted: int
) -> int:
    """The canary's pods behind a route: fewer only once the Gateway holds a route
    whose canary weight they carry. A lower weight written this pass reaches the
    Gateway some time later, and until then it sends the canary its old share."""
    running = servers.get(turn.status.canary_version or "")
    if running is None or running.replicas <= wanted:
        return wanted
    held = traffic.route.taken_weights() if traffic.route is not None else None
    if held is None:
        turn.requeue(rollout.POD_POLL_SECONDS)
        return running.replicas
    _, needed = _replicas(turn, held.get("canary", 0))
    if needed > wanted:
        turn.requeue(rollout.POD_POLL_SECONDS)
    return min(running.replicas, max(wanted, needed))


def _held_for_the_route(turn: Served, servers: dict[str, Server], wanted: int) -> int:
    """The stable's pods in the pass that switches back from a route: this pass
    deletes the route, but the Gateway may send the stable its share by it a
    little longer, so the stable gives up pods on the next pass, not this one."""
    running = servers.get(turn.status.stable_version or "")
    if running is None or running.replicas <= wanted:
        return wanted
    turn.requeue(rollout.POD_POLL_SECONDS)
    return running.replicas


def _routed(turn: Served, servers: dict[str, Server], traffic: Traffic) -> bool:
    """Whether the Services and the route take the HTTPRoute's shape this pass. Right
    after a switch from the replica ratio the stable may hold only its share of the
    pods: `<name>` keeps every version's pods, and no route is written, until the
    stable alone has the ready pods to carry the traffic (spec.replicas minus one)."""
    if _by_replica_ratio(turn):
        return False
    if traffic.routed_before or not traffic.services_exist:
        return True
    stable = servers.get(turn.status.stable_version or "")
    ready = stable.ready if stable is not None else 0
    return ready >= policy.capacity_held(turn.obj.spec.replicas)


def _canary_backend(turn: Served, traffic: Traffic) -> str | None:
    """The version `<name>-canary` selects: the canary, or the stable between
    rollouts. Behind a route it moves to another version only once the Gateway
    holds a route that sends it nothing: a Gateway applies a route some time after
    it is written, and until then a share may still reach `<name>-canary`, which
    must find ready pods rather than the next version's, still starting."""
    status: DeploymentStatus = turn.status
    wanted = status.canary_version or status.stable_version
    current = traffic.canary_selects
    if current is None or current == wanted:
        return wanted
    if _by_replica_ratio(turn):
        if not traffic.routed_before or wanted == status.stable_version:
            return wanted
        # Switching back from a route: this pass deletes it, but the Gateway may
        # route by it a little longer, so `<name>-canary` moves on the next pass.
        # It holds the stable meanwhile, never another version: `<name>` now
        # selects every version's pods, and the stable's are the ones it may serve.
        if current != status.stable_version:
            return status.stable_version
    elif traffic.route is None or traffic.route.sends_canary_nothing():
        return wanted
    turn.requeue(rollout.POD_POLL_SECONDS)
    return current


def _serve(turn: Served, version: str, replicas: int, servers: dict[str, Server]) -> None:
    try:
        apply_server(turn, version, replicas)
    except Waiting:
        running = servers.get(version)
        if running is None:
            raise
        # Its ModelVersion went anyway (its deletion was forced): the running
        # server keeps the artifact it loaded, and the rest of the rollout goes on.
        scale_server(turn, running, replicas)


def _route_weight(turn: Served, weight: int, servers: dict[str, Server]) -> int:
    """Behind a route, the canary gets a step's weight only once its pods for that
    step are ready (the route would send requests to a backend with no endpoints);
    until then, the largest weight of the plan so far that its ready pods carry."""
    status: DeploymentStatus = turn.status
    if status.canary_version is None or _canary_ready(turn, servers):
        return weight
    server = servers.get(status.canary_version)
    ready = server.ready if server is not None else 0
    plan = rollout.steps(turn)[: (status.current_step or 0) + 1]
    carried = [s.weight for s in plan if 0 < _replicas(turn, s.weight)[1] <= ready]
    return min(weight, max(carried, default=0))


def _retire_servers(
    turn: Served, servers: dict[str, Server], held: str | None, *, routed: bool
) -> None:
    """Retiring versions lose their traffic now and their pods after the delay;
    a server of any other version is removed. ``held`` (the version a Service still
    selects) keeps its pods; unless ``routed``, `<name>` selects every version's pods."""
    status: DeploymentStatus = turn.status
    now = turn.svc.clock()
    delay = spec_seconds(turn.obj.spec.rollout.scale_down_delay)
    live = {status.stable_version, status.canary_version, held}
    pods = {} if routed else _retiring_pods(turn, servers)
    keep = []
    for retiring in status.retiring:
        server = servers.get(retiring.version)
        left = delay - (now - retiring.since).total_seconds()
        if retiring.version in live or server is None:
            continue
        needed = pods.get(retiring.version, 0)
        if left <= 0 and needed == 0:
            delete_server(turn, server)
            continue
        keep.append(retiring)
        turn.requeue(left if left > 0 else rollout.POD_POLL_SECONDS)
        if not routed:
            scale_server(turn, server, needed)  # in the main Service, pods are traffic
    status.retiring = keep
    kept = live | {r.version for r in keep}
    for version, server in servers.items():
        if version not in kept:
            delete_server(turn, server)


def _retiring_pods(turn: Served, servers: dict[str, Server]) -> dict[str, int]:
    """Pods each retiring version keeps under the replica ratio: as many as the
    stable and canary lack of spec.replicas minus one ready (but at least one),
    newest retiring first, so an abort or a supersede never halves capacity (nor
    empties the Service of a single replica) while the stable scales back up, and
    an aborted version (perhaps failing) serves no longer than that needs."""
    status: DeploymentStatus = turn.status
    live = [servers[v] for v in (status.stable_version, status.canary_version) if v in servers]
    held = policy.capacity_held(turn.obj.spec.replicas)
    short = max(0, held - sum(s.ready for s in live))
    retiring = [servers[r.version] for r in reversed(status.retiring) if r.version in servers]
    return policy.retiring_pods(short, [(s.version, s.replicas, s.ready) for s in retiring])
