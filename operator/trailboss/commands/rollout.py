"""`promote`, `abort`, `pause` (and `resume deployment NAME`) of a Deployment's
rollout, `retrain` of its model, and `undo`.

All but `undo` write annotations, never the spec, so a GitOps tool does not see
the object as changed: promote and abort carry a new value each time (the
operator acts once per value and records it in status); pause is `"true"` until
removed. `undo` changes spec.modelVersion, as `kubectl argo rollouts undo`
changes the spec: under GitOps the same change belongs in Git.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from typing import Any

from trailboss.api.deployment import (
    ABORT_ANNOTATION,
    PAUSED_ANNOTATION,
    PROMOTE_ANNOTATION,
    PROMOTE_STEP_PREFIX,
    RETRAIN_ANNOTATION,
)
from trailboss.commands import errors
from trailboss.commands.cluster import Cluster, Obj
from trailboss.commands.errors import Refused
from trailboss.commands.kinds import resolve

EXIT_OK, EXIT_REFUSED = errors.OK, errors.REFUSED
DEPLOYMENT = resolve("deployment")


def run_promote(args: argparse.Namespace) -> int:
    """One step (the operator ends the current step's pause and analysis), or with
    --full every remaining step, as `kubectl argo rollouts promote [--full]`."""
    if getattr(args, "full", False):
        return _request(args, PROMOTE_ANNOTATION, "full promotion of")
    return _request(
        args, PROMOTE_ANNOTATION, "promotion of", prefix=PROMOTE_STEP_PREFIX,
        note=" (one step; --full for all)",
    )  # fmt: skip


def run_abort(args: argparse.Namespace) -> int:
    return _request(args, ABORT_ANNOTATION, "abort of")


def run_retrain(args: argparse.Namespace) -> int:
    """On demand: skips the cooldown and a rollout in progress, never maxConcurrentRuns."""
    cluster = Cluster.connect(args)
    spec = cluster.get(DEPLOYMENT, args.name).get("spec") or {}
    if not (spec.get("retraining") or {}).get("template"):
        raise Refused(f"{DEPLOYMENT.ref(args.name)} has no spec.retraining.template to train from")
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


def _request(
    args: argparse.Namespace, annotation: str, what: str, *, prefix: str = "", note: str = ""
) -> int:
    cluster = Cluster.connect(args)
    status = cluster.get(DEPLOYMENT, args.name).get("status") or {}
    canary = status.get("canaryVersion")
    if not canary:
        raise Refused(
            f"{DEPLOYMENT.ref(args.name)} has no rollout in progress (stable: "
            f"{status.get('stableVersion')}); start one by changing spec.modelVersion"
        )
    cluster.patch_annotations(DEPLOYMENT, args.name, {annotation: prefix + _stamp()})
    print(f"{DEPLOYMENT.ref(args.name)}: {what} {canary} requested{note}")
    return EXIT_OK


def previous_stable(status: Obj) -> str | None:
    """Where `undo` goes: during a rollout the stable version; otherwise the stable
    version before the current one (so a second undo goes forward again, as
    `kubectl argo rollouts undo` does)."""
    if status.get("canaryVersion"):
        stable: str | None = status.get("stableVersion")
        return stable
    current = status.get("stableVersion")
    earlier = [p.get("version") for p in status.get("promoted") or []]
    earlier = [v for v in earlier if v and v != current]
    return earlier[-1] if earlier else None


def undo_patch(deployment: Obj, target: str, *, pin: bool) -> Obj:
    """The spec change that serves ``target``; a version policy is replaced by a pin
    only when asked, since the policy would otherwise pick the newer version again."""
    spec = deployment.get("spec") or {}
    name = deployment["metadata"]["name"]
    if spec.get("modelVersion") == target:
        raise Refused(f"{DEPLOYMENT.ref(name)} already has spec.modelVersion {target}")
    if "versionPolicy" in spec and not pin:
        patch = json.dumps({"spec": {"versionPolicy": None, "modelVersion": target}})
        raise Refused(
            f"{DEPLOYMENT.ref(name)} picks its version by spec.versionPolicy, which would pick "
            f"the newer one again: pin {target} with `kubectl trailboss undo {name} --pin` "
            f"or `kubectl patch {DEPLOYMENT.qualified} {name} --type merge -p '{patch}'`"
        )
    change: dict[str, Any] = {"modelVersion": target}
    if "versionPolicy" in spec:
        change["versionPolicy"] = None
    return change


def run_undo(args: argparse.Namespace) -> int:
    cluster = Cluster.connect(args)
    deployment = cluster.get(DEPLOYMENT, args.name)
    status = deployment.get("status") or {}
    target = args.to_version or previous_stable(status)
    if not target:
        raise Refused(
            f"{DEPLOYMENT.ref(args.name)} has served no other version to go back to "
            f"(stable: {status.get('stableVersion')})"
        )
    old = (deployment.get("spec") or {}).get("modelVersion") or "spec.versionPolicy"
    cluster.patch_spec(DEPLOYMENT, args.name, undo_patch(deployment, target, pin=args.pin))
    print(
        f"{DEPLOYMENT.ref(args.name)}: spec.modelVersion set to {target} (was {old}); "
        "put the same change in Git, or a GitOps tool will set it back"
    )
    return EXIT_OK
