"""What `up` checks before starting and creates in the cluster and in S3."""

from __future__ import annotations

import importlib.util
import os
import sys
from typing import Any

from .settings import BIN_DIR, BUCKETS, FAKE_NODE_ANNOTATION, FAKE_NODES, StackError
from .state import State
from .web import api

GO_BINARIES = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubectl",
    "kwok",
    "prometheus",
)
POD_NETWORK_BINARIES = ("kube-proxy", "traefik", "gateway-api-crds")


def kube_version() -> str:
    try:
        stamp = (BIN_DIR / ".stamps" / "kube-apiserver").read_text().split()
        return stamp[1]
    except (OSError, IndexError):
        return "unknown"


def fake_node(name: str) -> dict[str, Any]:
    """A Node object kwok adopts by its annotation; it then plays the node stages."""
    # Room for the GPU requests TrainingRuns may carry.
    capacity = {"cpu": "16", "memory": "64Gi", "pods": "110", "nvidia.com/gpu": "4"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {
                FAKE_NODE_ANNOTATION[0]: FAKE_NODE_ANNOTATION[1],
                "node.alpha.kubernetes.io/ttl": "0",
                "trailboss.dev/kubelet-version": kube_version(),
            },
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
            },
        },
        "status": {"capacity": capacity, "allocatable": dict(capacity)},
    }


def create_fake_nodes(st: State) -> None:
    for name in FAKE_NODES:
        status, body = api(st, "POST", "/api/v1/nodes", fake_node(name))
        if status not in (201, 409):
            raise StackError(f"creating node {name}: HTTP {status}: {body}")


def _is_ready(node: dict[str, Any]) -> bool:
    conditions = node.get("status", {}).get("conditions", [])
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def nodes_ready(st: State) -> bool:
    try:
        status, body = api(st, "GET", "/api/v1/nodes")
    except OSError:
        return False
    if status != 200 or not isinstance(body, dict):
        return False
    ready = {n["metadata"]["name"] for n in body.get("items", []) if _is_ready(n)}
    return set(FAKE_NODES) <= ready


def create_buckets(st: State) -> None:
    from .services import s3_client

    s3 = s3_client(st, timeout=10.0)
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    for bucket in BUCKETS:
        if bucket not in existing:
            s3.create_bucket(Bucket=bucket)


S3_BACKENDS = ("auto", "minio", "moto")


def choose_s3_backend(requested: str, has_minio: bool, has_moto: bool, in_ci: bool) -> str:
    """MinIO when it was built, else moto; under CI only MinIO, the real thing."""
    if requested not in S3_BACKENDS:
        raise StackError(
            f"S3 backend {requested!r} unknown (--s3 or TRAILBOSS_S3_BACKEND): "
            f"use one of {', '.join(S3_BACKENDS)}"
        )
    minio_log = BIN_DIR.parent / "build-logs" / "minio.log"
    if in_ci and requested == "moto":
        raise StackError(
            "S3 backend moto refused under CI=true: CI runs MinIO "
            "(unset TRAILBOSS_S3_BACKEND or set it to minio)"
        )
    if (in_ci or requested == "minio") and not has_minio:
        why = "required under CI=true" if in_ci else "requested"
        raise StackError(
            f"S3 backend minio {why} but {BIN_DIR / 'minio'} is missing "
            f"(make stack-build; the build's output is in {minio_log})"
        )
    if requested == "moto" and not has_moto:
        raise StackError(
            "S3 backend moto requested but moto is not installed in "
            f"{sys.executable} (pip install 'moto[server]')"
        )
    if requested != "auto":
        return requested
    if has_minio or has_moto:
        return "minio" if has_minio else "moto"
    raise StackError("no S3 server: neither the MinIO binary nor moto[server] is available")


def s3_backend_for(requested: str) -> str:
    """The backend for this machine and environment (see choose_s3_backend)."""
    return choose_s3_backend(
        requested,
        has_minio=(BIN_DIR / "minio").exists(),
        has_moto=importlib.util.find_spec("moto") is not None,
        in_ci=in_ci(),
    )


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def grant_prometheus(st: State) -> None:
    """Prometheus lists pods through the API server: read-only access, like in a cluster."""
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "trailboss-prometheus"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [
            {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "User",
                "name": "trailboss-prometheus",
            }
        ],
    }
    path = "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings"
    status, body = api(st, "POST", path, binding)
    if status not in (201, 409):
        raise StackError(f"granting Prometheus read access: HTTP {status}: {body}")


def preflight(pod_network: bool) -> None:
    wanted = GO_BINARIES + (POD_NETWORK_BINARIES if pod_network else ())
    missing = [b for b in wanted if not (BIN_DIR / b).exists()]
    if missing:
        raise StackError(
            f"missing {', '.join(missing)} in {BIN_DIR}: run `make stack-build` "
            "(e2e/stack/system-deps.sh and e2e/stack/build.sh) first"
        )
    for module in ("mlflow", "boto3", "yaml"):
        if importlib.util.find_spec(module) is None:
            raise StackError(
                f"{module} is not importable by {sys.executable}: run the stack "
                "with the project's venv (make dev; .venv/bin/python)"
            )
