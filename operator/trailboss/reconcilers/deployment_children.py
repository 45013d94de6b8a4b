"""A Deployment's children: observe the model servers, apply the wanted ones,
the Services and the route, and remove what is no longer served."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trailboss.api.common import API_VERSION
from trailboss.api.deployment import Deployment
from trailboss.api.rollout import TrafficRouterKind, TrafficRouterSpec
from trailboss.builders import serving
from trailboss.builders.labels import label_value
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
        image_pull_policy=settings.server_image_pull_policy,
        image_pull_secrets=tuple(settings.image_pull_secrets),
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


@dataclass(frozen=True)
class Route:
    """The Deployment's HTTPRoute as read or as just applied."""

    weights: dict[str, int]
    """Backend weights by role: `stable`, `canary`."""
    held: bool
    """A Gateway accepted this version (generation) of the route."""
    reported: bool
    """A Gateway reports status on the route at all (some never do)."""

    def held_weights(self) -> dict[str, int] | None:
        """The weights the Gateway routes by; None (unknown) until it accepted
        these, since it may still route by the previous ones."""
        return self.weights if self.held else None

    def taken_weights(self) -> dict[str, int] | None:
        """The weights the Gateway is taken to route by: these once it accepted
        them, or at once when it reports no status (there is nothing to wait for);
        None while it may still route by the previous ones."""
        return self.weights if self.held or not self.reported else None

    def sends_canary_nothing(self) -> bool:
        """Whether `<name>-canary` gets no weight and the Gateway holds that."""
        taken = self.taken_weights()
        return taken is not None and taken.get("canary", 0) == 0


@dataclass(frozen=True)
class Traffic:
    """What steers requests as observed at the start of a pass, read once."""

    route: Route | None
    canary_selects: str | None
    """The served version whose pods `<name>-canary` selects."""
    routed_before: bool
    """`<name>` selects one version's pods: it was built for an HTTPRoute."""
    services_exist: bool
    """`<name>` exists: this is not the Deployment's first pass."""


def observe_traffic(turn: Turn[Deployment], servers: dict[str, Server]) -> Traffic:
    """The route (behind that router) and the Services as they are now."""
    owner = owner_of(turn)
    main, _, canary = serving.service_names(owner)
    mine = {DEPLOYMENT_LABEL: label_value(turn.name)}
    found = turn.svc.kube.list("v1", "Service", turn.namespace, mine)
    selectors = {
        item["metadata"]["name"]: ((item.get("spec") or {}).get("selector") or {})
        for item in found
        if _owned_by(item, turn.uid)
    }
    chosen = selectors.get(canary)
    canary_selects = next((v for v in servers if serving.selector(owner, v) == chosen), None)
    route = None
    if _by_route(turn):
        read = turn.svc.kube.get(f"{GATEWAY_GROUP}/v1", "HTTPRoute", turn.namespace, turn.name)
        route = _parse_route(turn, read)
    routed_before = VERSION_LABEL in selectors.get(main, {})
    return Traffic(route, canary_selects, routed_before, main in selectors)


def apply_traffic(
    turn: Turn[Deployment],
    stable: str | None,
    canary: str | None,
    canary_weight: int,
    canary_selects: str | None,
    *,
    routed: bool,
) -> Route | None:
    """Services always (`<name>-canary` selecting ``canary_selects``); when
    ``routed``, `<name>` selects only the stable and the HTTPRoute gets its weights
    (returned as applied), otherwise `<name>` balances over every version's pods."""
    owner, spec = owner_of(turn), turn.obj.spec
    if not routed:  # as under the replica ratio, whichever router is chosen
        spec = spec.model_copy(update={"traffic_router": TrafficRouterSpec()})
    for service in serving.build_services(owner, spec, stable, canary_selects):
        turn.svc.kube.apply(service)
    if not routed:
        return None
    applied = turn.svc.kube.apply(serving.build_route(owner, spec, canary_weight, canary))
    return _parse_route(turn, applied)


def delete_route(turn: Turn[Deployment]) -> None:
    """The route of a router no longer chosen: left behind, a Gateway would go on
    splitting by weights nothing updates any more."""
    turn.svc.kube.delete(f"{GATEWAY_GROUP}/v1", "HTTPRoute", turn.namespace, turn.name)


def _by_route(turn: Turn[Deployment]) -> bool:
    return turn.obj.spec.traffic_router.kind == TrafficRouterKind.HTTP_ROUTE


def _parse_route(turn: Turn[Deployment], route: dict[str, Any] | None) -> Route | None:
    if route is None:
        return None
    reported = bool((route.get("status") or {}).get("parents"))
    return Route(_weights(turn, route), _accepted(route), reported)


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
