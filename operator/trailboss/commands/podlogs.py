"""`logs`: the output of a TrainingRun's training pods.

Logs come from the kubelet through the API server. When it cannot serve them
(the pod is gone, its node is unreachable) the command still shows what the
cluster kept: each container's termination message, which for training pods
holds the tail of the output of a failed run.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from kubernetes.client.exceptions import ApiException

from trailboss.builders.labels import TRAININGRUN_LABEL
from trailboss.builders.training import CONTAINER
from trailboss.commands import errors
from trailboss.commands.cluster import Cluster, Obj
from trailboss.commands.kinds import resolve

EXIT_OK, EXIT_NO_LOGS = errors.OK, errors.REFUSED


def run_logs(args: argparse.Namespace) -> int:
    kind, name = resolve("trainingrun"), args.name
    cluster = Cluster.connect(args)
    run = cluster.get(kind, name)
    pods = sorted(
        cluster.pods(f"{TRAININGRUN_LABEL}={name}"),
        key=lambda p: p["metadata"].get("creationTimestamp") or "",
    )
    if not pods:
        phase = (run.get("status") or {}).get("phase")
        print(f"{kind.ref(name)} has no training pods (phase {phase})", file=sys.stderr)
        return EXIT_NO_LOGS
    shown = 0
    for pod in pods:
        prefix = f"[{pod['metadata']['name']}] " if len(pods) > 1 else ""
        shown += _show(cluster, pod, prefix, follow=args.follow)
    return EXIT_OK if shown else EXIT_NO_LOGS


def _show(cluster: Cluster, pod: Obj, prefix: str, *, follow: bool) -> int:
    """Print one pod's output; 1 if anything was shown."""
    name = pod["metadata"]["name"]
    try:
        output = cluster.pod_log(name, CONTAINER, follow=follow)
    except ApiException as error:
        return _termination_message(pod, prefix, f"{error.status} {error.reason}")
    if follow:
        _stream(output, prefix)
    else:
        _print(str(output), prefix)
    return 1


def _stream(chunks: Any, prefix: str) -> None:
    pending = ""
    for chunk in chunks:
        pending += chunk.decode(errors="replace")
        *lines, pending = pending.split("\n")
        for line in lines:
            print(prefix + line, flush=True)
    if pending:
        print(prefix + pending, flush=True)


def _print(text: str, prefix: str) -> None:
    for line in text.splitlines():
        print(prefix + line)


def _termination_message(pod: Obj, prefix: str, why: str) -> int:
    name = pod["metadata"]["name"]
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    for container in statuses:
        terminated = (container.get("state") or {}).get("terminated") or {}
        if container.get("name") == CONTAINER and terminated.get("message"):
            print(f"pod/{name}: the API server cannot serve its log ({why}); "
                  "showing its termination message", file=sys.stderr)  # fmt: skip
            _print(terminated["message"], prefix)
            return 1
    print(f"pod/{name}: no log available ({why}) and no termination message", file=sys.stderr)
    return 0
