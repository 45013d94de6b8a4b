"""The Gateway API: the standard CRDs and Traefik as the implementation.

Traefik's Kubernetes Gateway provider watches Gateways of the `trailboss`
GatewayClass and routes HTTPRoutes to the ready endpoints of their backend
Services by weight. The stack's Gateway `trailboss-gateway/trailboss` has one
HTTP listener; Traefik serves it on loopback, on a port picked like the others
(a Gateway listener's port is the port of a Traefik entry point).
Traefik does not implement the HTTPRoute RequestMirror filter.
"""

from __future__ import annotations

import subprocess
import time
from typing import Any

from .settings import BIN_DIR, P, StackError
from .state import State
from .web import api, http_ok

CRDS = BIN_DIR / "gateway-api-crds"
CONTROLLER_NAME = "traefik.io/gateway-controller"
GATEWAY_CLASS = "trailboss"
NAMESPACE, GATEWAY = "trailboss-gateway", "trailboss"
GROUP = "/apis/gateway.networking.k8s.io/v1"


def traefik(st: State) -> list[str]:
    return [
        str(BIN_DIR / "traefik"),
        f"--entryPoints.web.address=127.0.0.1:{st.ports['gateway']}",
        f"--entryPoints.traefik.address=127.0.0.1:{st.ports['gateway-admin']}",
        "--ping=true",
        "--ping.entryPoint=traefik",
        "--metrics.prometheus=true",
        "--metrics.prometheus.entryPoint=traefik",
        "--providers.kubernetesGateway=true",
        # What the Gateway's status reports as its address.
        "--providers.kubernetesGateway.statusAddress.ip=127.0.0.1",
        "--global.checkNewVersion=false",
        "--global.sendAnonymousUsage=false",
        "--log.level=INFO",
    ]


def traefik_env(_st: State) -> dict[str, str]:
    return {"KUBECONFIG": str(P.kubeconfig_for("trailboss-gateway"))}


def traefik_healthy(st: State) -> bool:
    return http_ok(f"{st.url('gateway-admin')}/ping", expect=b"OK")


def install_crds() -> None:
    """The standard channel's CRDs, applied with the stack's own kubectl."""
    result = subprocess.run(
        [
            *(str(BIN_DIR / "kubectl"), "--kubeconfig", str(P.kubeconfig)),
            *("apply", "--server-side", "--force-conflicts", "-f", str(CRDS)),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if result.returncode != 0:
        raise StackError(f"installing the Gateway API CRDs from {CRDS}: {result.stderr}")


def gateway_objects(st: State) -> list[tuple[str, dict[str, Any]]]:
    """(collection path, object) for the namespace, GatewayClass and Gateway."""
    listener = {
        "name": "http",
        "protocol": "HTTP",
        "port": st.ports["gateway"],
        "allowedRoutes": {"namespaces": {"from": "All"}},
    }
    return [
        (
            "/api/v1/namespaces",
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        ),
        (
            f"{GROUP}/gatewayclasses",
            {
                "apiVersion": "gateway.networking.k8s.io/v1",
                "kind": "GatewayClass",
                "metadata": {"name": GATEWAY_CLASS},
                "spec": {"controllerName": CONTROLLER_NAME},
            },
        ),
        (
            f"{GROUP}/namespaces/{NAMESPACE}/gateways",
            {
                "apiVersion": "gateway.networking.k8s.io/v1",
                "kind": "Gateway",
                "metadata": {"name": GATEWAY, "namespace": NAMESPACE},
                "spec": {"gatewayClassName": GATEWAY_CLASS, "listeners": [listener]},
            },
        ),
    ]


def create_gateway(st: State) -> None:
    """Apply the objects (the listener port follows the port picked for this `up`)."""
    for path, obj in gateway_objects(st):
        status, body = _create_or_replace(st, path, obj)
        if status not in (200, 201):
            raise StackError(
                f"creating {obj['kind']} {obj['metadata']['name']}: HTTP {status}: {body}"
            )


def _create_or_replace(st: State, path: str, obj: dict[str, Any]) -> tuple[int, object]:
    deadline = time.monotonic() + 30  # a CRD just created is served a moment later
    while True:
        status, body = api(st, "POST", path, obj)
        if status == 409:
            url = f"{path}/{obj['metadata']['name']}"
            return api(
                st, "PATCH", url, {"spec": obj.get("spec", {})}, "application/merge-patch+json"
            )
        if status != 404 or time.monotonic() > deadline:
            return status, body
        time.sleep(0.5)


def gateway_programmed(st: State) -> bool:
    status, body = api(st, "GET", f"{GROUP}/namespaces/{NAMESPACE}/gateways/{GATEWAY}")
    if status != 200 or not isinstance(body, dict):
        return False
    conditions = body.get("status", {}).get("conditions", [])
    return any(c["type"] == "Programmed" and c["status"] == "True" for c in conditions)
