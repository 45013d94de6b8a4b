"""A container's environment, as a kubelet builds it: env, envFrom, $(VAR) expansion."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

from .kube import Kube, Pod


def _field(pod: Pod, path: str, pod_ip: str) -> str:
    m = pod["metadata"]
    simple = {
        "metadata.name": m["name"],
        "metadata.namespace": m["namespace"],
        "metadata.uid": m["uid"],
        "spec.nodeName": pod["spec"].get("nodeName", ""),
        "spec.serviceAccountName": pod["spec"].get("serviceAccountName", ""),
        "status.podIP": pod_ip,
        "status.hostIP": "127.0.0.1",
    }
    if path in simple:
        return str(simple[path])
    found = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
    if found:
        return str((m.get(found[1]) or {}).get(found[2], ""))
    raise ValueError(f"unsupported fieldRef {path}")


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion: known names are replaced, $$ escapes a $."""

    def repl(m: re.Match[str]) -> str:
        if m[0] == "$$":
            return "$"
        return env.get(m[1], m[0])

    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)", repl, text)


def container_env(kube: Kube, pod: Pod, container: dict[str, Any], pod_ip: str) -> dict[str, str]:
    ns = pod["metadata"]["namespace"]
    env: dict[str, str] = {}
    for src in container.get("envFrom") or []:
        prefix = src.get("prefix", "")
        if "configMapRef" in src:
            values = kube.all_keys("configmaps", ns, src["configMapRef"])
        else:
            values = kube.all_keys("secrets", ns, src["secretRef"])
        env.update({prefix + k: v for k, v in values.items()})
    for var in container.get("env") or []:
        value: str | None
        if "valueFrom" not in var:
            value = expand(var.get("value", ""), env)
        elif "secretKeyRef" in var["valueFrom"]:
            value = kube.key_ref("secrets", ns, var["valueFrom"]["secretKeyRef"])
        elif "configMapKeyRef" in var["valueFrom"]:
            value = kube.key_ref("configmaps", ns, var["valueFrom"]["configMapKeyRef"])
        elif "fieldRef" in var["valueFrom"]:
            value = _field(pod, var["valueFrom"]["fieldRef"]["fieldPath"], pod_ip)
        else:
            raise ValueError(f"unsupported valueFrom for {var['name']}")
        if value is not None:
            env[var["name"]] = value
    return env


def base_env() -> dict[str, str]:
    """What a container image would provide: a PATH (this venv first) and a home."""
    venv_bin = str(Path(sys.executable).parent)
    keep = {k: os.environ[k] for k in ("HOME", "LANG", "LC_ALL", "TZ", "TMPDIR") if k in os.environ}
    return {
        **keep,
        "PATH": f"{venv_bin}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "PYTHONUNBUFFERED": "1",
    }


# A pod's image is stood in for by this checkout: relative paths in a command
# (`python examples/trainer/train.py`) resolve against the repository root, the
# way they would against the WORKDIR of an image built from it.
IMAGE_WORKDIR = Path(
    os.environ.get("TRAILBOSS_PODRUNNER_WORKDIR", Path(__file__).resolve().parents[4])
)
PYTHON = re.compile(r"^python(3(\.\d+)?)?$")
POD_UID_ENV = "PODRUNNER_POD_UID"  # lets a restarted runner find the processes of its pods


def command_line(
    pod: Pod, container: dict[str, Any], pod_env: dict[str, str]
) -> tuple[list[str], dict[str, str]]:
    """The container's argv and environment; `python` is this interpreter (the venv)."""
    if not container.get("command"):
        raise ValueError(
            "the first container has no command; the pod runner cannot run an image's entrypoint"
        )
    argv = [expand(a, pod_env) for a in container["command"] + (container.get("args") or [])]
    if PYTHON.match(Path(argv[0]).name):
        argv[0] = sys.executable
    env = {
        **base_env(),
        "HOSTNAME": pod["metadata"]["name"],
        POD_UID_ENV: pod["metadata"]["uid"],
        **pod_env,
    }
    return argv, env
