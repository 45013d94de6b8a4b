"""A Deployment's status from what its model servers report: traffic per
version, phase, conditions, and the weights exported to Prometheus."""

from __future__ import annotations

from trailboss import metrics
from trailboss.api.conditions import find
from trailboss.api.deployment import (
    ABORTED,
    AVAILABLE,
    PROGRESSING,
    TARGET_RESOLVED,
    Deployment,
    DeploymentPhase,
    DeploymentReason,
    DeploymentStatus,
)
from trailboss.api.rollout import TrafficRouterKind, TrafficStatus
from trailboss.builders.serving import service_names, service_url
from trailboss.reconcilers import deployment_rollout as rollout
from trailboss.reconcilers.deployment_children import Route, Server, owner_of
from trailboss.reconcilers.turn import Turn

Served = Turn[Deployment]


def summarise(
    turn: Served, servers: dict[str, Server], route: Route | None, *, paused: bool
) -> None:
    """Traffic, phase and conditions from what the servers and the route report."""
    status: DeploymentStatus = turn.status
    status.traffic = _traffic(turn, servers, route)
    owner = owner_of(turn)
    status.service_name = service_names(owner)[0]
    status.url = service_url(owner, turn.obj.spec)
    stable = servers.get(status.stable_version or "")
    available = stable is not None and stable.ready >= min(1, turn.obj.spec.replicas)
    turn.set_condition(
        AVAILABLE,
        available,
        DeploymentReason.SERVING if available else "NoReadyPods",
        f"{stable.ready if stable else 0} ready pods of stable {status.stable_version}",
    )
    _phase(turn, stable, route, paused)
    _export_weights(turn)


def _traffic(turn: Served, servers: dict[str, Server], route: Route | None) -> list[TrafficStatus]:
    status: DeploymentStatus = turn.status
    weight = status.canary_weight or 0 if status.canary_version else 0
    roles = [
        ("stable", status.stable_version, 100 - weight),
        ("canary", status.canary_version, weight),
    ]
    ready_total = sum(servers[v].ready for _, v, _ in roles if v in servers)
    routed = route.held_weights() if route is not None else None
    entries = []
    for role, version, desired in roles:
        if version is None:
            continue
        server = servers.get(version)
        ready = server.ready if server else 0
        actual: int | None
        if turn.obj.spec.traffic_router.kind == TrafficRouterKind.REPLICA_RATIO:
            actual = round(100 * ready / ready_total) if ready_total else 0
        else:
            actual = None if routed is None else routed.get(role, 0)
        entries.append(
            TrafficStatus(
                version=version,
                role=role,
                desired_weight=desired,
                actual_weight=actual,
                replicas=server.replicas if server else 0,
                ready_replicas=ready,
            )
        )
    return entries


def _phase(turn: Served, stable: Server | None, route: Route | None, paused: bool) -> None:
    status: DeploymentStatus = turn.status
    ready = stable is not None and stable.ready >= turn.obj.spec.replicas
    if status.canary_version is not None:
        phase = DeploymentPhase.PAUSED if paused else DeploymentPhase.PROGRESSING
        message = (
            f"rolling out {status.canary_version}: step {(status.current_step or 0) + 1}, "
            f"{status.canary_weight}% of traffic"
        )
        reason = DeploymentReason.PAUSED if paused else DeploymentReason.STEP_STARTED
        turn.set_condition(PROGRESSING, True, reason, message)
        turn.set_ready(False, reason, message)
    elif status.target_version is None:
        phase = DeploymentPhase.DEGRADED
        _not_servable(turn)
    elif status.aborted_version is not None:
        phase = DeploymentPhase.DEGRADED
        aborted = find(status.conditions, ABORTED)
        message = (
            aborted.message
            if aborted is not None and aborted.status == "True"
            else f"rollout of {status.aborted_version} aborted; serving {status.stable_version}"
        )
        turn.set_condition(PROGRESSING, False, DeploymentReason.ABORTED, message)
        turn.set_ready(False, DeploymentReason.ABORTED, message)
    elif not ready:
        phase = DeploymentPhase.PROGRESSING
        turn.set_ready(
            False,
            DeploymentReason.WAITING_FOR_PODS,
            f"waiting for {status.stable_version}'s pods to be ready",
        )
        turn.requeue(rollout.POD_POLL_SECONDS)
    elif route is not None and not route.sends_canary_nothing():
        phase = DeploymentPhase.PROGRESSING
        _waiting_for_gateway(turn)
    else:
        phase = DeploymentPhase.HEALTHY
        turn.set_condition(PROGRESSING, False, DeploymentReason.SERVING, "no rollout")
        turn.set_ready(
            True,
            DeploymentReason.SERVING,
            f"serving {status.stable_version} with {stable.ready if stable else 0} pods",
        )
    if status.phase != phase:
        turn.event(str(phase), f"Deployment is {phase}")
    status.phase = phase


def _waiting_for_gateway(turn: Served) -> None:
    """Ready means the stable serves all traffic: a Gateway takes a changed route a
    while after it is written, and until then it may still send a share to the
    canary that just ended."""
    status: DeploymentStatus = turn.status
    gateway = turn.obj.spec.traffic_router.gateway
    message = (
        f"waiting for Gateway {gateway} to take HTTPRoute {turn.name}, which sends all "
        f"traffic to {status.stable_version}"
    )
    turn.set_ready(False, DeploymentReason.WAITING_FOR_GATEWAY, message)
    turn.requeue(rollout.POD_POLL_SECONDS)  # a route's status sends this Deployment no event


def _not_servable(turn: Served) -> None:
    """The spec names no servable version: not Ready, with the reason, although
    the stable version still serves."""
    status: DeploymentStatus = turn.status
    resolved = find(status.conditions, TARGET_RESOLVED)
    reason = resolved.reason if resolved else str(DeploymentReason.VERSION_NOT_FOUND)
    why = resolved.message if resolved else "the spec names no servable version"
    message = f"{why}; serving stable {status.stable_version}"
    turn.set_condition(PROGRESSING, False, reason, message)
    turn.set_ready(False, reason, message)


def _export_weights(turn: Served) -> None:
    """Exactly the versions and roles served now: a promoted canary's series goes,
    so no version shows as stable and canary at once."""
    weights = {(t.version, t.role): t.desired_weight for t in turn.status.traffic}
    namespace, name = turn.namespace, turn.name
    turn.after_write(lambda: metrics.export_traffic(namespace, name, weights))
