"""What a Deployment (trailboss.dev) becomes: one apps/v1 Deployment of the model
server per served ModelVersion, the Services clients and analysis use, and,
with the HTTPRoute router, a Gateway API route with backend weights. Pure.

Pods carry the Deployment's name and their ModelVersion as labels, never a
role: promotion moves a Service selector, not a pod, so no pod restarts when a
canary becomes stable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from trailboss.api.deployment import DeploymentSpec
from trailboss.api.rollout import TrafficRouterKind
from trailboss.api.security import PodSecurity
from trailboss.builders import names
from trailboss.builders.labels import (
    MODEL_LABEL,
    label_value,
    standard,
)
from trailboss.builders.names import child_name
from trailboss.builders.podsecurity import container_security_context, pod_security_context

DEPLOYMENT_LABEL = "trailboss.dev/deployment"
VERSION_LABEL = "trailboss.dev/model-version"
COMPONENT_SERVING = "serving"
CONTAINER = "server"
GATEWAY_GROUP = "gateway.networking.k8s.io"
DRAIN_SECONDS = 5
NO_VERSION = "none"
"""Selects no pod: the Services of a Deployment that serves nothing yet."""
READY_PATH = "/v2/health/ready"
LIVE_PATH = "/v2/health/live"
SERVING_SECURITY = PodSecurity(read_only_root_filesystem=True)
"""Pod Security `restricted`, and a read-only root: the server writes only to /tmp."""


@dataclass(frozen=True)
class Owner(names.Owner):
    """The Deployment (trailboss.dev) as the owner of its children."""

    kind = "Deployment"


@dataclass(frozen=True)
class ServedVersion:
    """A ModelVersion to serve, as its status describes it."""

    name: str
    model: str
    artifact_uri: str


@dataclass(frozen=True)
class ServingContext:
    """What the operator knows besides the spec when it builds a server."""

    image: str
    tracking_uri: str
    s3_endpoint_url: str | None = None
    credentials_secret: str | None = None
    pod_labels: dict[str, str] = field(default_factory=dict)
    image_pull_policy: str | None = None
    """For ``image``, the built-in server; none: Kubernetes' default for its tag."""
    image_pull_secrets: tuple[str, ...] = ()
    """Names of Secrets in the Deployment's namespace, for images in a private
    registry: the built-in server's, or one the Deployment names."""


def server_name(owner: Owner, version: str) -> str:
    return child_name(owner.name, "serve", f"{owner.uid}/{version}")


def service_names(owner: Owner) -> tuple[str, str, str]:
    """The Service clients call, and the stable and canary Services for analysis."""
    return owner.name, f"{owner.name}-stable", f"{owner.name}-canary"


def selector(owner: Owner, version: str | None = None) -> dict[str, str]:
    chosen = {DEPLOYMENT_LABEL: label_value(owner.name)}
    if version is not None:
        chosen[VERSION_LABEL] = label_value(version)
    return chosen


def labels(owner: Owner, spec: DeploymentSpec, version: str) -> dict[str, str]:
    return {
        **standard("trailboss-model-server", COMPONENT_SERVING, label_value(owner.name)),
        "app.kubernetes.io/version": label_value(version),
        MODEL_LABEL: label_value(spec.model),
        **selector(owner, version),
    }


def build_server(
    owner: Owner,
    spec: DeploymentSpec,
    served: ServedVersion,
    replicas: int,
    ctx: ServingContext,
) -> dict[str, Any]:
    """The apps/v1 Deployment running the model server for one ModelVersion."""
    pod_labels = {**labels(owner, spec, served.name), **ctx.pod_labels}
    port = spec.server.port
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": server_name(owner, served.name),
            "namespace": owner.namespace,
            "labels": labels(owner, spec, served.name),
            "ownerReferences": [owner.reference()],
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector(owner, served.name)},
            "template": {
                "metadata": {
                    "labels": pod_labels,
                    # Found by any Prometheus that follows the common annotations.
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(port),
                        "prometheus.io/path": "/metrics",
                    },
                },
                "spec": _pod_spec(owner, spec, served, ctx),
            },
        },
    }


def _pod_spec(
    owner: Owner, spec: DeploymentSpec, served: ServedVersion, ctx: ServingContext
) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": spec.server.image or ctx.image,
        "env": server_env(owner, spec, served, ctx),
        "ports": [{"name": "http", "containerPort": spec.server.port, "protocol": "TCP"}],
        "readinessProbe": _probe(READY_PATH, spec.server.port, period=2, failures=3),
        "livenessProbe": _probe(LIVE_PATH, spec.server.port, period=10, failures=3),
        "securityContext": container_security_context(SERVING_SECURITY),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        # Keep answering while the endpoint's removal reaches every proxy, so that
        # scaling down or retiring a version drops no request.
        "lifecycle": {"preStop": {"sleep": {"seconds": DRAIN_SECONDS}}},
    }
    if spec.server.image is None:
        container["command"] = ["trailboss", "serve"]
        # The operator's pull policy is for its own server image; a user's image
        # keeps Kubernetes' default for its tag.
        if ctx.image_pull_policy:
            container["imagePullPolicy"] = ctx.image_pull_policy
    if spec.server.args:
        container["args"] = list(spec.server.args)
    if spec.resources is not None:
        resources = spec.resources.to_json()
        if resources:
            container["resources"] = resources
    pod: dict[str, Any] = {
        "containers": [container],
        "securityContext": pod_security_context(SERVING_SECURITY),
        "volumes": [{"name": "tmp", "emptyDir": {}}],
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": DRAIN_SECONDS + 25,
    }
    if ctx.image_pull_secrets:
        pod["imagePullSecrets"] = [{"name": name} for name in ctx.image_pull_secrets]
    return pod


def _probe(path: str, port: int, *, period: int, failures: int = 1) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": port},
        "periodSeconds": period,
        "failureThreshold": failures,
        "timeoutSeconds": 2,
    }


def server_env(
    owner: Owner, spec: DeploymentSpec, served: ServedVersion, ctx: ServingContext
) -> list[dict[str, Any]]:
    """The server's configuration: what it serves is its own identity, so its
    metrics and prediction logs say which version answered."""
    plain = {
        "TRAILBOSS_MODEL_URI": served.artifact_uri,
        "TRAILBOSS_MODEL_NAME": spec.model,
        "TRAILBOSS_MODEL_VERSION": served.name,
        "TRAILBOSS_PORT": str(spec.server.port),
        "TRAILBOSS_NAMESPACE": owner.namespace,
        "TRAILBOSS_DEPLOYMENT": owner.name,
        "TRAILBOSS_TMP_DIR": "/tmp",
        "MLFLOW_TRACKING_URI": ctx.tracking_uri,
    }
    if spec.monitoring is not None and spec.monitoring.prediction_logs:
        plain["TRAILBOSS_LOG_URI"] = spec.monitoring.prediction_logs
    env: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in plain.items()]
    env += names.s3_env(ctx.s3_endpoint_url, ctx.credentials_secret)
    env += [var.to_json() for var in spec.server.env]
    return env


def build_services(
    owner: Owner, spec: DeploymentSpec, stable: str | None, canary: str | None
) -> list[dict[str, Any]]:
    """`<name>` selects every version's pods under the replica ratio (the ratio is
    the traffic split), and the stable version's only behind an HTTPRoute (the
    Gateway applies the weights; a caller inside the cluster must not get a share
    of the canary that the rollout never set). `<name>-stable` selects the stable
    version and `<name>-canary` the canary.

    Between rollouts `<name>-canary` selects the stable version, as in Argo
    Rollouts: a Gateway applies a route change some time after the Services
    change, so at promotion or abort it may still send the canary's share to
    `<name>-canary` for a moment; that share must find pods, not an empty
    backend (which answers 503)."""
    main, stable_name, canary_name = service_names(owner)
    by_route = spec.traffic_router.kind == TrafficRouterKind.HTTP_ROUTE
    stable_pods = selector(owner, stable or NO_VERSION)
    return [
        _service(owner, spec, main, stable_pods if by_route else selector(owner)),
        _service(owner, spec, stable_name, stable_pods),
        _service(owner, spec, canary_name, selector(owner, canary or stable or NO_VERSION)),
    ]


def _service(
    owner: Owner, spec: DeploymentSpec, name: str, chosen: dict[str, str]
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": owner.namespace,
            "labels": {
                **standard("trailboss-model-server", COMPONENT_SERVING, label_value(owner.name)),
                DEPLOYMENT_LABEL: label_value(owner.name),
            },
            "ownerReferences": [owner.reference()],
        },
        "spec": {
            "selector": chosen,
            "ports": [
                {"name": "http", "port": spec.server.port, "targetPort": "http", "protocol": "TCP"}
            ],
        },
    }


def build_route(
    owner: Owner, spec: DeploymentSpec, canary_weight: int, canary: str | None
) -> dict[str, Any]:
    """An HTTPRoute on the Deployment's Gateway splitting by backend weight."""
    _, stable_name, canary_name = service_names(owner)
    port = spec.server.port
    backends = [{"name": stable_name, "port": port, "weight": 100 - canary_weight}]
    if canary is not None:
        backends.append({"name": canary_name, "port": port, "weight": canary_weight})
    return {
        "apiVersion": f"{GATEWAY_GROUP}/v1",
        "kind": "HTTPRoute",
        "metadata": {
            "name": owner.name,
            "namespace": owner.namespace,
            "labels": {DEPLOYMENT_LABEL: label_value(owner.name)},
            "ownerReferences": [owner.reference()],
        },
        "spec": _route_spec(spec, backends),
    }


def _route_spec(spec: DeploymentSpec, backends: list[dict[str, Any]]) -> dict[str, Any]:
    router = spec.traffic_router
    parent: dict[str, Any] = {"group": GATEWAY_GROUP, "kind": "Gateway", "name": router.gateway}
    if router.gateway_namespace:
        parent["namespace"] = router.gateway_namespace
    route: dict[str, Any] = {"parentRefs": [parent], "rules": [{"backendRefs": backends}]}
    if router.hostnames:
        route["hostnames"] = list(router.hostnames)
    return route


def service_url(owner: Owner, spec: DeploymentSpec) -> str:
    return f"http://{owner.name}.{owner.namespace}.svc.cluster.local:{spec.server.port}"
