"""`rerun`, `suspend` and `resume`: the changes a user makes to a TrainingRun.

A TrainingRun's spec is immutable except `spec.suspend`, so running it again
means a new TrainingRun with the old one's spec.
"""

from __future__ import annotations

import argparse
import sys

from kubernetes.client.exceptions import ApiException

from trailboss.api.common import API_VERSION
from trailboss.builders import names
from trailboss.commands import errors
from trailboss.commands.cluster import Cluster, Obj
from trailboss.commands.kinds import resolve, split_ref

RERUN_OF = "trailboss.dev/rerun-of"
EXIT_OK, EXIT_REFUSED = errors.OK, errors.REFUSED


def rerun_manifest(old: Obj, name: str) -> Obj:
    """A new TrainingRun with the old one's spec, labels and annotations, running."""
    meta = old["metadata"]
    spec = {k: v for k, v in old["spec"].items() if k != "suspend"}
    annotations = {
        k: v
        for k, v in (meta.get("annotations") or {}).items()
        # kopf's bookkeeping and kubectl's last-applied state belong to the old object.
        if not k.startswith(("trailboss.dev/", "kubectl.kubernetes.io/"))
    }
    return {
        "apiVersion": API_VERSION,
        "kind": "TrainingRun",
        "metadata": {
            "name": name,
            "labels": {**(meta.get("labels") or {}), RERUN_OF: meta["name"]},
            "annotations": annotations,
        },
        "spec": spec,
    }


def rerun_name(old: str, taken: set[str]) -> str:
    """`<old>-rerun-<n>`, the first n not taken, within a TrainingRun name's limit."""
    n = 1
    while names.rerun_name(old, n) in taken:
        n += 1
    return names.rerun_name(old, n)


def run_rerun(args: argparse.Namespace) -> int:
    kind, name = resolve("trainingrun"), args.name
    cluster = Cluster.connect(args)
    old = cluster.get(kind, name)
    taken = {o["metadata"]["name"] for o in cluster.list_custom("trailboss.dev", "v1alpha1",
                                                                 kind.plural)}  # fmt: skip
    new_name = args.new_name or rerun_name(name, taken)
    try:
        created = cluster.create(kind, rerun_manifest(old, new_name))
    except ApiException as error:
        print(f"cannot create {kind.ref(new_name)}: {_api_message(error)}", file=sys.stderr)
        return EXIT_REFUSED
    print(f"{kind.ref(created['metadata']['name'])} created (a rerun of {name})")
    return EXIT_OK


def run_suspend(args: argparse.Namespace) -> int:
    return _set_suspend(args, suspend=True)


def run_resume(args: argparse.Namespace) -> int:
    return _set_suspend(args, suspend=False)


def _set_suspend(args: argparse.Namespace, *, suspend: bool) -> int:
    kind, name = split_ref(args.kind, args.name)
    if kind.kind == "Deployment":  # a Deployment's rollout pauses instead
        from trailboss.commands import rollout

        return rollout.pause(args, name) if suspend else rollout.unpause(args, name)
    if kind.kind != "TrainingRun":
        print(f"{kind.qualified} cannot be suspended: only TrainingRuns have spec.suspend",
              file=sys.stderr)  # fmt: skip
        return EXIT_REFUSED
    cluster = Cluster.connect(args)
    phase = (cluster.get(kind, name).get("status") or {}).get("phase")
    if phase in ("Succeeded", "Failed"):
        print(f"{kind.ref(name)} already {phase}: nothing to "
              f"{'suspend' if suspend else 'resume'}", file=sys.stderr)  # fmt: skip
        return EXIT_REFUSED
    cluster.patch_spec(kind, name, {"suspend": suspend})
    print(f"{kind.ref(name)} {'suspended' if suspend else 'resumed'}")
    return EXIT_OK


def _api_message(error: ApiException) -> str:
    import json

    try:
        message: str = json.loads(error.body or "")["message"]
    except (TypeError, ValueError, KeyError):
        return f"{error.status} {error.reason}"
    return message
