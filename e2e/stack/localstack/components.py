"""The registry: every component with its command, environment and health check."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from . import control_plane, dataplane, gateway, services
from .bootstrap import nodes_ready
from .state import State
from .web import admin_tls, http_ok, insecure_tls


@dataclass
class Component:
    name: str
    argv: Callable[[State], list[str]]
    healthy: Callable[[State], bool]
    timeout: float = 60.0
    env: Callable[[State], dict[str, str]] = lambda _state: {}
    port: str | None = None


def _https_ok(name: str, path: str) -> Callable[[State], bool]:
    def check(st: State) -> bool:
        tls = admin_tls() if name == "kube-apiserver" else insecure_tls()
        return http_ok(st.url(name, "https") + path, tls=tls)

    return check


# Start order; `down` goes the other way.
ORDER = (
    "s3",
    "mlflow",
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
    "kube-proxy",
    "podrunner",
    "prometheus",
    "gateway",
)
# Started only with the pod network (network.py).
NEEDS_POD_NETWORK = ("kube-proxy", "gateway")

PORT_NAMES = [
    "etcd",
    "etcd-peer",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "mlflow",
    "s3",
    "s3-console",
    "kube-proxy",
    "kube-proxy-metrics",
    "prometheus",
    "gateway",
    "gateway-admin",
]

COMPONENTS = {
    c.name: c
    for c in (
        Component("s3", services.s3, services.s3_healthy, env=services.s3_env, port="s3"),
        Component(
            "mlflow",
            services.mlflow,
            lambda st: http_ok(st.url("mlflow") + "/health", expect=b"OK"),
            timeout=120.0,
            env=services.mlflow_env,
            port="mlflow",
        ),
        Component(
            "etcd",
            control_plane.etcd,
            lambda st: http_ok(st.url("etcd") + "/health", expect=b"true"),
            port="etcd",
        ),
        Component(
            "kube-apiserver",
            control_plane.apiserver,
            _https_ok("kube-apiserver", "/readyz"),
            timeout=90.0,
            port="kube-apiserver",
        ),
        Component(
            "kube-controller-manager",
            control_plane.controller_manager,
            _https_ok("kube-controller-manager", "/healthz"),
            port="kube-controller-manager",
        ),
        Component(
            "kube-scheduler",
            control_plane.scheduler,
            _https_ok("kube-scheduler", "/healthz"),
            port="kube-scheduler",
        ),
        Component("kwok", control_plane.kwok, nodes_ready),
        Component(
            "kube-proxy", dataplane.kube_proxy, dataplane.kube_proxy_healthy, port="kube-proxy"
        ),
        Component("podrunner", services.podrunner, lambda _st: True),
        Component(
            "prometheus", dataplane.prometheus, dataplane.prometheus_healthy, port="prometheus"
        ),
        Component(
            "gateway",
            gateway.traefik,
            gateway.traefik_healthy,
            env=gateway.traefik_env,
            port="gateway",
        ),
    )
}


def expected(st: State) -> list[str]:
    """The components of this stack, in start order."""
    return [n for n in ORDER if st.pod_network or n not in NEEDS_POD_NETWORK]
