"""An object's tree of children (what `get KIND NAME` shows) and `status` (health as
an exit code)."""

from __future__ import annotations

import argparse
import sys
import time

from trailboss.builders.labels import TRAININGRUN_LABEL
from trailboss.commands import errors, tree
from trailboss.commands.cluster import Cluster, NotFound, Obj, owned_by
from trailboss.commands.kinds import Kind, resolve, split_ref

# The phases each kind ends in, as the Argo CD health checks read them.
HEALTHY = {"TrainingRun": {"Succeeded"}, "ModelVersion": {"Validated"}, "Deployment": {"Healthy"}}
DEGRADED = {
    "TrainingRun": {"Failed"},
    "ModelVersion": {"Rejected", "Failed"},
    "Deployment": {"Degraded"},
}
SUSPENDED = {"Deployment": {"Paused"}}  # a rollout paused by hand: Argo CD's Suspended
EXIT_HEALTHY, EXIT_DEGRADED, EXIT_TIMEOUT = errors.OK, errors.DEGRADED, errors.TIMEOUT


def health(kind: Kind, obj: Obj) -> str:
    """Healthy, Degraded, Suspended or Progressing: the same verdict as the Argo CD
    health checks."""
    status = obj.get("status") or {}
    observed = status.get("observedGeneration")
    if observed is None or observed < obj["metadata"].get("generation", 0):
        return "Progressing"
    phase = status.get("phase")
    if phase in DEGRADED[kind.kind]:
        return "Degraded"
    if phase in SUSPENDED.get(kind.kind, ()):
        return "Suspended"
    return "Healthy" if phase in HEALTHY[kind.kind] else "Progressing"


def build_tree(cluster: Cluster, kind: Kind, obj: Obj) -> tree.Node:
    """The object and what the operator made for it."""
    root = tree.resource_node(kind, obj)
    uid = obj["metadata"]["uid"]
    name = obj["metadata"]["name"]
    if kind.kind == "TrainingRun":
        selector = f"{TRAININGRUN_LABEL}={name}"
        pods = cluster.pods(selector)
        root.children += [tree.job_node(j, pods) for j in owned_by(cluster.jobs(selector), uid)]
        root.children += [tree.service_node(s) for s in owned_by(cluster.services(), uid)]
        produced = (obj.get("status") or {}).get("modelVersion")
        if produced:
            root.children.append(_optional_child(cluster, resolve("modelversion"), produced))
    elif kind.kind == "Deployment":
        root.children += [tree.app_deployment_node(d)
                          for d in owned_by(cluster.app_deployments(), uid)]  # fmt: skip
        root.children += [tree.service_node(s) for s in owned_by(cluster.services(), uid)]
        routes = cluster.list_custom("gateway.networking.k8s.io", "v1", "httproutes")
        root.children += [tree.route_node(r) for r in owned_by(routes, uid)]
        runs = cluster.list_custom("trailboss.dev", "v1alpha1", "trainingruns")
        run_kind = resolve("trainingrun")
        root.children += [tree.resource_node(run_kind, r) for r in owned_by(runs, uid)]
    return root


def _optional_child(cluster: Cluster, kind: Kind, name: str) -> tree.Node:
    try:
        return tree.resource_node(kind, cluster.get(kind, name))
    except NotFound:
        return tree.Node(kind.ref(name), "NotFound")


def run_status(args: argparse.Namespace) -> int:
    kind, name = split_ref(args.kind, args.name)
    cluster = Cluster.connect(args)
    deadline = time.monotonic() + (args.timeout or 0)
    while True:
        obj = cluster.get(kind, name)
        verdict = health(kind, obj)
        if verdict != "Progressing" or not args.wait or time.monotonic() >= deadline:
            break
        time.sleep(1)
    _print_status(kind, obj, verdict)
    if verdict == "Degraded":
        return EXIT_DEGRADED
    if verdict == "Progressing" and args.wait:
        print(f"timed out after {args.timeout:.0f}s, still Progressing", file=sys.stderr)
        return EXIT_TIMEOUT
    return EXIT_HEALTHY


def _print_status(kind: Kind, obj: Obj, verdict: str) -> None:
    status = obj.get("status") or {}
    print(f"{kind.ref(obj['metadata']['name'])}: {verdict} (phase {status.get('phase')})")
    for cond in status.get("conditions") or []:
        print(f"  {cond['type']}={cond['status']}  {cond.get('reason', '')}: "
              f"{cond.get('message', '')}")  # fmt: skip
    failure = status.get("failure")
    if failure:
        print(f"  failure: {failure.get('reason')} (exit code {failure.get('exitCode')})")
        for line in (failure.get("message") or "").splitlines()[-5:]:
            print(f"    {line}")
