"""`promote`, `abort`, `pause` (and `resume deployment NAME`) of a Deployment's
rollout, and `retrain` of its model.

They write annotations, never the spec, so a GitOps tool does not see the
object as changed: promote and abort carry a new value each time (the operator
acts once per value and records it in status); pause is `"true"` until removed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys

from trailboss.api.deployment import (
    ABORT_ANNOTATION,
    PAUSED_ANNOTATION,
    PROMOTE_ANNOTATION,
    RETRAIN_ANNOTATION,
)
from trailboss.commands.cluster import Cluster
from trailboss.commands.kinds import resolve

EXIT_OK, EXIT_REFUSED = 0, 1
DEPLOYMENT = resolve("deployment")


def run_promote(args: argparse.Namespace) -> int:
    return _request(args, PROMOTE_ANNOTATION, "promotion of")


def run_abort(args: argparse.Namespace) -> int:
    return _request(args, ABORT_ANNOTATION, "abort of")


def run_retrain(args: argparse.Namespace) -> int:
    """On demand: skips the cooldown and a rollout in progress, never maxConcurrentRuns."""
    cluster = Cluster.connect(args)
    spec = cluster.get(DEPLOYMENT, args.name).get("spec") or {}
    if not (spec.get("retraining") or {}).get("template"):
        print(f"{DEPLOYMENT.ref(args.name)} has no spec.retraining.template to train from",
              file=sys.stderr)  # fmt: skip
        return EXIT_REFUSED
    cluster.patch_annotations(DEPLOYMENT, args.name, {RETRAIN_ANNOTATION: _stamp()})
    print(f"{DEPLOYMENT.ref(args.name)}: retraining requested")
    return EXIT_OK


def _stamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def run_pause(args: argparse.Namespace) -> int:
    return pause(args, args.name)


def pause(args: argparse.Namespace, name: str) -> int:
    cluster = Cluster.connect(args)
    cluster.get(DEPLOYMENT, name)  # a clear "not found" first
    cluster.patch_annotations(DEPLOYMENT, name, {PAUSED_ANNOTATION: "true"})
    print(f"{DEPLOYMENT.ref(name)}: rollout paused at its current step")
    return EXIT_OK


def unpause(args: argparse.Namespace, name: str) -> int:
    cluster = Cluster.connect(args)
    cluster.get(DEPLOYMENT, name)
    cluster.patch_annotations(DEPLOYMENT, name, {PAUSED_ANNOTATION: None})
    print(f"{DEPLOYMENT.ref(name)}: rollout resumed")
    return EXIT_OK


def _request(args: argparse.Namespace, annotation: str, what: str) -> int:
    cluster = Cluster.connect(args)
    status = cluster.get(DEPLOYMENT, args.name).get("status") or {}
    canary = status.get("canaryVersion")
    if not canary:
        print(f"{DEPLOYMENT.ref(args.name)} has no rollout in progress (stable: "
              f"{status.get('stableVersion')})", file=sys.stderr)  # fmt: skip
        return EXIT_REFUSED
    cluster.patch_annotations(DEPLOYMENT, args.name, {annotation: _stamp()})
    print(f"{DEPLOYMENT.ref(args.name)}: {what} {canary} requested")
    return EXIT_OK
