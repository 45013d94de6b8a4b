"""An object and its children as a tree, the way `kubectl argo rollouts get` shows one.

Pure: it turns objects (dicts as the API server returns them) into lines.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from trailboss.commands.kinds import Kind

Obj = dict[str, Any]


@dataclass
class Node:
    ref: str
    state: str
    detail: str = ""
    children: list[Node] = field(default_factory=list)


def render(root: Node) -> list[str]:
    lines = [_line(root, "")]
    lines += _render_children(root.children, "")
    return lines


def _render_children(children: list[Node], indent: str) -> list[str]:
    lines: list[str] = []
    for i, child in enumerate(children):
        last = i == len(children) - 1
        lines.append(_line(child, indent + ("└── " if last else "├── ")))
        lines += _render_children(child.children, indent + ("    " if last else "│   "))
    return lines


def _line(node: Node, prefix: str) -> str:
    return "  ".join(part for part in (prefix + node.ref, node.state, node.detail) if part)


def ready(obj: Obj) -> Obj:
    """The Ready condition, or {} before the operator wrote one."""
    conditions = (obj.get("status") or {}).get("conditions") or []
    found: Obj = next((c for c in conditions if c.get("type") == "Ready"), {})
    return found


def resource_node(kind: Kind, obj: Obj) -> Node:
    """A Trailboss object: its phase, Ready condition and why."""
    status = obj.get("status") or {}
    cond = ready(obj)
    state = status.get("phase") or "Unknown"
    if cond:
        state += f"  Ready={cond.get('status')}"
    detail = f"{cond.get('reason')}: {cond.get('message')}" if cond.get("message") else ""
    return Node(kind.ref(obj["metadata"]["name"]), state, detail)


def job_node(job: Obj, pods: list[Obj]) -> Node:
    status = job.get("status") or {}
    done = {c["type"] for c in status.get("conditions") or [] if c.get("status") == "True"}
    state = next((t for t in ("Failed", "Complete", "Suspended") if t in done), "Running")
    completions = (job.get("spec") or {}).get("completions") or 1
    detail = f"{status.get('succeeded', 0)}/{completions} succeeded"
    if status.get("failed"):
        detail += f", {status['failed']} failed"
    node = Node(f"job.batch/{job['metadata']['name']}", state, detail)
    uid = job["metadata"].get("uid")
    mine = [p for p in pods if any(r.get("uid") == uid for r in _owners(p))]
    node.children = [pod_node(p) for p in sorted(mine, key=_created)]
    return node


def pod_node(pod: Obj) -> Node:
    status = pod.get("status") or {}
    detail = ""
    for container in status.get("containerStatuses") or []:
        terminated = (container.get("state") or {}).get("terminated")
        if terminated:
            detail = f"exit code {terminated.get('exitCode')}"
    return Node(f"pod/{pod['metadata']['name']}", status.get("phase") or "Pending", detail)


def service_node(service: Obj) -> Node:
    spec = service.get("spec") or {}
    return Node(f"service/{service['metadata']['name']}", spec.get("type", "ClusterIP"),
                spec.get("clusterIP") or "")  # fmt: skip


def app_deployment_node(deployment: Obj) -> Node:
    status = deployment.get("status") or {}
    wanted = (deployment.get("spec") or {}).get("replicas", 1)
    state = f"{status.get('readyReplicas', 0)}/{wanted} ready"
    return Node(f"deployment.apps/{deployment['metadata']['name']}", state)


def route_node(route: Obj) -> Node:
    weights = [
        f"{b.get('name')}={b.get('weight', 1)}"
        for rule in (route.get("spec") or {}).get("rules") or []
        for b in rule.get("backendRefs") or []
    ]
    return Node(f"httproute.gateway.networking.k8s.io/{route['metadata']['name']}", "weights",
                " ".join(weights))  # fmt: skip


def _owners(obj: Obj) -> list[Obj]:
    owners: list[Obj] = obj["metadata"].get("ownerReferences") or []
    return owners


def _created(obj: Obj) -> str:
    created: str = obj["metadata"].get("creationTimestamp") or ""
    return created
