"""Deleting a ModelVersion: apply its deletionPolicy to the registry version,
and never hang deletion forever."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import ValidationError

from trailboss.api.common import API_VERSION
from trailboss.api.conditions import set_ready
from trailboss.api.modelversion import (
    RELEASE_FINALIZER_ANNOTATION,
    DeletionPolicy,
    ModelReason,
    ModelVersionStatus,
)
from trailboss.builders.patch import merge_patch
from trailboss.clients.protocols import TrackingRejected, TrackingUnavailable
from trailboss.reconcilers.common import Services
from trailboss.reconcilers.outcomes import Verdict, classify

DELETION_GRACE = dt.timedelta(minutes=15)
GONE_CODES = frozenset({"RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"})


class FinalizerBlocked(Exception):
    """Deletion must wait for the registry; the message says how to force it."""


def finalize(body: dict[str, Any], svc: Services) -> str:
    """Apply the deletion policy to the registry version. Returns what was done.

    While a Deployment serves the version (stable, canary, or retiring pods),
    deletion waits, as a PersistentVolumeClaim in use waits for its pods: new
    pods of that version must still find its artifact. Otherwise it never
    blocks forever: when the registry stays unreachable past the grace period,
    or an admin sets the release annotation, the finalizer is let go.
    """
    meta = body["metadata"]
    spec = body.get("spec") or {}
    if (meta.get("annotations") or {}).get(RELEASE_FINALIZER_ANNOTATION) == "true":
        return f"released by the {RELEASE_FINALIZER_ANNOTATION} annotation; registry left as is"
    status = _readable_status(body)
    serving = serving_deployments(svc, meta["namespace"], meta["name"])
    if serving:
        message = (
            f"Deployment {', '.join(serving)} serves it; deletion waits until no Deployment "
            f"serves this version. To delete now, annotate with {RELEASE_FINALIZER_ANNOTATION}=true"
        )
        _say_blocked(body, svc, status, ModelReason.IN_USE, message)
        raise FinalizerBlocked(message)
    name = status.registered_model or spec.get("model")
    if not name:
        return "nothing registered"
    try:
        return _apply_deletion_policy(svc, name, meta["uid"], status, spec)
    except TrackingRejected as error:
        if error.code in GONE_CODES:
            return f"{name}: the registry version is already gone"
        outcome = classify(error)
        if outcome is None or outcome.verdict == Verdict.FAIL:
            return f"MLflow refused to apply deletionPolicy ({error}); registry left as is"
        cause = outcome.message
    except TrackingUnavailable as error:
        cause = f"cannot reach MLflow to apply deletionPolicy ({error})"
    if _past_grace(meta, svc.clock()):
        return f"{cause}; released after {DELETION_GRACE} without cleanup"
    message = f"{cause}; retrying. To delete now, annotate with {RELEASE_FINALIZER_ANNOTATION}=true"
    _say_blocked(body, svc, status, ModelReason.REGISTRY_UNAVAILABLE, message)
    raise FinalizerBlocked(message)


def _readable_status(body: dict[str, Any]) -> ModelVersionStatus:
    """The status as written, or an empty one when it cannot be read (edited by
    hand): the registry version is then found by the object's UID tag, so a bad
    status never holds the finalizer."""
    try:
        return ModelVersionStatus.model_validate(body.get("status") or {})
    except ValidationError:
        return ModelVersionStatus()


def serving_deployments(svc: Services, namespace: str, version: str) -> list[str]:
    """Names of the Deployments (trailboss.dev) whose status serves ``version``."""
    found = []
    for item in svc.kube.list(API_VERSION, "Deployment", namespace):
        status = item.get("status") or {}
        served = {status.get("stableVersion"), status.get("canaryVersion")}
        served |= {r.get("version") for r in status.get("retiring") or []}
        if version in served:
            found.append(str(item["metadata"]["name"]))
    return sorted(found)


def _say_blocked(
    body: dict[str, Any], svc: Services, status: ModelVersionStatus, reason: str, message: str
) -> None:
    meta = body["metadata"]
    before = status.to_json()
    status.conditions = set_ready(status.conditions, False, reason, message, None)
    patch = merge_patch(before, status.to_json())
    if patch:
        svc.kube.patch_status(
            API_VERSION, "ModelVersion", meta["namespace"], meta["name"], patch, None
        )


def _apply_deletion_policy(
    svc: Services, name: str, uid: str, status: ModelVersionStatus, spec: dict[str, Any]
) -> str:
    version = status.registry_version
    if version is None:
        found = svc.tracking.find_version(name, uid)
        version = found.version if found else None
    if version is None:
        return "nothing registered"
    if spec.get("deletionPolicy") == DeletionPolicy.DELETE:
        svc.tracking.delete_version(name, version)
        return f"deleted {name} version {version} from the registry"
    svc.tracking.tag_version(
        name, version, {"trailboss.dev/deleted-in-kubernetes": svc.clock().isoformat()}
    )
    return f"kept {name} version {version} in the registry (deletionPolicy Retain)"


def _past_grace(meta: dict[str, Any], now: dt.datetime) -> bool:
    since = meta.get("deletionTimestamp")
    if not since:
        return False
    started = (
        since
        if isinstance(since, dt.datetime)
        else dt.datetime.fromisoformat(str(since).replace("Z", "+00:00"))
    )
    return now - started > DELETION_GRACE
