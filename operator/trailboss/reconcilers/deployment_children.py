"""A Deployment's children: observe the model servers, apply the wanted ones,
the Services and the route, and remove what is no longer served."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trailboss.api.common import API_VERSION
from trailboss.api.deployment import Deployment, TrafficRouterKind
from trailboss.builders import serving
from trailboss.builders.serving import (
    DEPLOYMENT_LABEL,
    GATEWAY_GROUP,
    VERSION_LABEL,
    Owner,
    ServedVersion,
)
from trailboss.reconcilers.outcomes import Waiting
from trailboss.reconcilers.turn import Turn


@dataclass(frozen=True)
class Server:
    """One model server Deployment as observed."""

    name: str
    version: str
    replicas: int
    ready: int


def owner_of(turn: Turn[Deployment]) -> Owner:
    return Owner(turn.name, turn.namespace, turn.uid)


def observe_servers(turn: Turn[Deployment]) -> dict[str, Server]:
    """The model servers this Deployment owns now, by ModelVersion."""
    found = turn.svc.kube.list(
        "apps/v1", "Deployment", turn.namespace, {DEPLOYMENT_LABEL: turn.name}
    )
    servers: dict[str, Server] = {}
    for item in found:
        if not _owned_by(item, turn.uid):
            continue
        meta, spec, status = item["metadata"], item.get("spec") or {}, item.get("status") or {}
        version = (meta.get("labels") or {}).get(VERSION_LABEL, "")
        servers[version] = Server(
            meta["name"],
            version,
            int(spec.get("replicas") or 0),
            int(status.get("readyReplicas") or 0),
        )
    return servers


def _owned_by(obj: dict[str, Any], uid: str) -> bool:
    return any(o.get("uid") == uid for o in obj["metadata"].get("ownerReferences") or [])


def served_version(turn: Turn[Deployment], name: str) -> ServedVersion:
    """What the server of ModelVersion ``name`` loads: its verified artifact."""
    found = turn.svc.kube.get(API_VERSION, "ModelVersion", turn.namespace, name) or {}
    status = found.get("status") or {}
    uri = (status.get("artifact") or {}).get("uri") or status.get("modelUri")
    if not uri:
        raise Waiting(
            "VersionNotReady",
            f"ModelVersion {name} has no verified artifact yet (retrying)",
            retry_after=10.0,
        )
    return ServedVersion(name=name, model=turn.obj.spec.model, artifact_uri=uri)


def apply_server(turn: Turn[Deployment], version: str, replicas: int) -> None:
    settings = turn.svc.settings
    ctx = serving.ServingContext(
        image=settings.server_image,
        tracking_uri=settings.mlflow_tracking_uri,
        s3_endpoint_url=settings.s3_endpoint_url,
        credentials_secret=settings.s3_credentials_secret,
        pod_labels=settings.serving_pod_labels,
    )
    served = served_version(turn, version)
    turn.svc.kube.apply(serving.build_server(owner_of(turn), turn.obj.spec, served, replicas, ctx))


def scale_server(turn: Turn[Deployment], server: Server, replicas: int) -> None:
    """Only the replica count: a retiring server keeps the pods it has."""
    if server.replicas == replicas:
        return
    # A patch, not an apply: applying a partial object would try to create a
    # server that was deleted meanwhile.
    turn.svc.kube.patch(
        "apps/v1", "Deployment", turn.namespace, server.name, {"spec": {"replicas": replicas}}
    )


def delete_server(turn: Turn[Deployment], server: Server) -> None:
    turn.svc.kube.delete("apps/v1", "Deployment", turn.namespace, server.name)


def apply_traffic(
    turn: Turn[Deployment],
    stable: str | None,
    canary: str | None,
    canary_weight: int,
    canary_selects: str | None,
) -> None:
    """Services always (`<name>-canary` selecting ``canary_selects``); the
    HTTPRoute with its weights when that router is chosen."""
    owner, spec = owner_of(turn), turn.obj.spec
    for service in serving.build_services(owner, spec, stable, canary_selects):
        turn.svc.kube.apply(service)
    if spec.traffic_router.kind == TrafficRouterKind.HTTP_ROUTE:
        turn.svc.kube.apply(serving.build_route(owner, spec, canary_weight, canary))


def canary_service_version(turn: Turn[Deployment], servers: dict[str, Server]) -> str | None:
    """The served version whose pods `<name>-canary` selects now, if any."""
    owner = owner_of(turn)
    found = turn.svc.kube.get("v1", "Service", turn.namespace, serving.service_names(owner)[2])
    chosen = ((found or {}).get("spec") or {}).get("selector") or {}
    return next((v for v in servers if serving.selector(owner, v) == chosen), None)


def held_route_weights(turn: Turn[Deployment]) -> dict[str, int] | None:
    """The weights by role (`stable`, `canary`) of the HTTPRoute, read back, once
    its Gateway has accepted that version of the route; None (unknown) until then,
    since the Gateway may still route by the previous weights."""
    route = _route(turn)
    if route is None or not _accepted(route):
        return None
    return _weights(turn, route)


def route_sends_canary_nothing(turn: Turn[Deployment]) -> bool:
    """Whether the route as written gives `<name>-canary` no weight and its Gateway
    holds that version of it: accepted it, or (a Gateway that reports no status on
    its routes) there is nothing to wait for."""
    route = _route(turn)
    if route is None:
        return True
    if _weights(turn, route).get("canary", 0) != 0:
        return False
    reported = (route.get("status") or {}).get("parents")
    return not reported or _accepted(route)


def _route(turn: Turn[Deployment]) -> dict[str, Any] | None:
    if turn.obj.spec.traffic_router.kind != TrafficRouterKind.HTTP_ROUTE:
        return None
    return turn.svc.kube.get(f"{GATEWAY_GROUP}/v1", "HTTPRoute", turn.namespace, turn.name)


def _weights(turn: Turn[Deployment], route: dict[str, Any]) -> dict[str, int]:
    _, stable, canary = serving.service_names(owner_of(turn))
    roles = {stable: "stable", canary: "canary"}
    weights: dict[str, int] = {}
    for rule in (route.get("spec") or {}).get("rules") or []:
        for backend in rule.get("backendRefs") or []:
            role = roles.get(backend.get("name", ""))
            if role is not None:
                weights[role] = weights.get(role, 0) + int(backend.get("weight", 1))
    return weights


def _accepted(route: dict[str, Any]) -> bool:
    """Whether a Gateway accepted the route as it is now (its generation)."""
    generation = route["metadata"].get("generation")
    for parent in (route.get("status") or {}).get("parents") or []:
        for condition in parent.get("conditions") or []:
            seen = condition.get("observedGeneration", generation)
            if (
                condition.get("type") == "Accepted"
                and condition.get("status") == "True"
                and (generation is None or (seen is not None and seen >= generation))
            ):
                return True
    return False
