"""Drive one ModelVersion: verify the artifact in S3, register it in the MLflow
registry exactly once, and pass it through its validation gate.

The registry version is tagged with the ModelVersion's UID and found again by
it, so a restart between "created" and "status written" never registers twice.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from trailboss import metrics
from trailboss.api.common import explain
from trailboss.api.conditions import set_ready
from trailboss.api.modelversion import (
    RELEASE_FINALIZER_ANNOTATION,
    ArtifactStatus,
    DeletionPolicy,
    ModelPhase,
    ModelReason,
    ModelVersion,
    ModelVersionStatus,
)
from trailboss.clients.storage import DataNotFound, StoreUnavailable, verify_model_dir
from trailboss.clients.tracking import (
    OBJECT_TAG,
    UID_TAG,
    RegistryVersion,
    TrackingRejected,
    TrackingUnavailable,
)
from trailboss.policies import validation
from trailboss.reconcilers.common import (
    Guard,
    ObjectContext,
    Services,
    Waiting,
    note_waiting,
    reject_invalid,
    write_status,
)

KIND = "ModelVersion"
VALIDATED_ALIAS = "validated"
FINAL = frozenset({ModelPhase.VALIDATED, ModelPhase.REJECTED, ModelPhase.FAILED})
DELETION_GRACE = dt.timedelta(minutes=15)
log = logging.getLogger(__name__)
guard = Guard(KIND, base_delay=2.0)


@dataclass
class Context(ObjectContext):
    mv: ModelVersion
    status: ModelVersionStatus


def reconcile(body: dict[str, Any], svc: Services) -> None:
    """Bring one ModelVersion one step closer to Validated or Rejected."""
    uid = body["metadata"]["uid"]
    with guard.turn(uid) as mine:
        if not mine or body["metadata"].get("deletionTimestamp"):
            return
        try:
            mv = ModelVersion.model_validate(body)
        except ValidationError as error:
            _reject(body, svc, explain(error))
            return
        if mv.status.phase in FINAL:
            return
        ctx = Context(body, svc, mv, mv.status.model_copy(deep=True))
        before = mv.status.to_json()
        try:
            guard.step(uid, lambda: _advance(ctx), lambda wait: _waiting(ctx, wait))
        finally:
            if ctx.status.to_json() != before:
                write_status(ctx.svc, ctx.body, ctx.status)


def _advance(ctx: Context) -> None:
    ctx.status.observed_generation = ctx.generation
    ctx.status.phase = ctx.status.phase or ModelPhase.PENDING
    try:
        location = _resolve(ctx)
        _verify(ctx, location)
        _read_metrics(ctx)
        version = _register(ctx, location)
        _gate(ctx, version)
    except TrackingUnavailable as error:
        raise Waiting(
            ModelReason.REGISTRY_UNAVAILABLE,
            f"MLflow at {ctx.svc.tracking.uri} is unreachable: {error} (retrying)",
        ) from error
    except TrackingRejected as error:
        _fail(ctx, ModelReason.REGISTRATION_FAILED, f"MLflow refused the request: {error}")


def _resolve(ctx: Context) -> str:
    """The S3 location of the model directory; ``runs:/`` goes through MLflow."""
    uri = ctx.mv.spec.artifact_uri
    if uri.startswith("s3://"):
        return uri.rstrip("/")
    run_id, _, path = uri[len("runs:/") :].partition("/")
    root = ctx.svc.tracking.artifact_uri_of_run(run_id)
    if not root.startswith("s3://"):
        raise Waiting(
            ModelReason.ARTIFACT_NOT_FOUND,
            f"run {run_id} stores artifacts at {root}; only S3 artifact stores can be "
            "verified: use an s3:// artifactUri",
        )
    return f"{root.rstrip('/')}/{path.strip('/')}" if path else root.rstrip("/")


def _verify(ctx: Context, location: str) -> None:
    if ctx.status.artifact and ctx.status.artifact.uri == location:
        return
    try:
        listing = ctx.svc.storage.list(location)
        verify_model_dir(listing)
    except DataNotFound as error:
        raise Waiting(
            ModelReason.ARTIFACT_NOT_FOUND,
            f"spec.artifactUri: {error}; waiting for it to appear (retrying)",
        ) from error
    except StoreUnavailable as error:
        raise Waiting(ModelReason.ARTIFACT_NOT_FOUND, f"S3: {error} (retrying)") from error
    ctx.status.artifact = ArtifactStatus(
        uri=location,
        size_bytes=listing.size_bytes,
        objects=listing.objects,
        digest=listing.digest,
        verified_at=ctx.svc.clock(),
    )
    ctx.event(
        ModelReason.ARTIFACT_VERIFIED, f"{location}: {listing.objects} files, {listing.digest}"
    )


def _run_id(ctx: Context) -> str | None:
    spec = ctx.mv.spec
    if spec.source and spec.source.mlflow_run_id:
        return spec.source.mlflow_run_id
    if spec.artifact_uri.startswith("runs:/"):
        return spec.artifact_uri[len("runs:/") :].split("/", 1)[0]
    return None


def _read_metrics(ctx: Context) -> None:
    if ctx.status.metrics:
        return
    if ctx.mv.spec.metrics:
        ctx.status.metrics = dict(ctx.mv.spec.metrics)
        return
    run_id = _run_id(ctx)
    if run_id:
        ctx.status.metrics = ctx.svc.tracking.get_run(run_id).metrics


def _lineage_tags(ctx: Context) -> dict[str, str]:
    spec, meta = ctx.mv.spec, ctx.meta
    tags = {UID_TAG: meta["uid"], OBJECT_TAG: f"{meta['namespace']}/{meta['name']}"}
    if spec.source:
        for key, value in (
            ("trailboss.dev/trainingrun", spec.source.training_run),
            ("trailboss.dev/image", spec.source.image),
            ("trailboss.dev/dataset", spec.source.dataset),
        ):
            if value:
                tags[key] = value
    if ctx.status.artifact and ctx.status.artifact.digest:
        tags["trailboss.dev/artifact-digest"] = ctx.status.artifact.digest
    return tags


def _register(ctx: Context, location: str) -> RegistryVersion:
    """Find the version tagged with this object's UID, or create it once."""
    tracking, name, uid = ctx.svc.tracking, ctx.mv.spec.model, ctx.meta["uid"]
    version = None
    if ctx.status.registry_version:
        version = tracking.get_version(name, ctx.status.registry_version)
    if version is None:
        version = tracking.find_version(name, uid)
    if version is None:
        tracking.ensure_registered_model(name)
        version = tracking.create_version(name, location, _run_id(ctx), _lineage_tags(ctx))
        ctx.event(ModelReason.REGISTERING, f"registering {name} version {version.version}")
    ctx.status.registered_model = name
    ctx.status.registry_version = version.version
    ctx.status.model_uri = f"models:/{name}/{version.version}"
    if version.status == "FAILED_REGISTRATION":
        _fail(ctx, ModelReason.REGISTRATION_FAILED, f"MLflow could not register {location}")
    elif version.status != "READY":
        raise Waiting(ModelReason.REGISTERING, f"waiting for MLflow: version is {version.status}")
    return version


def _gate(ctx: Context, version: RegistryVersion) -> None:
    if ctx.status.phase == ModelPhase.FAILED:
        return
    result = validation.evaluate(ctx.mv.spec.validation, ctx.status.metrics)
    ctx.status.validation = result
    tracking, name = ctx.svc.tracking, ctx.mv.spec.model
    tracking.tag_version(
        name,
        version.version,
        {
            "trailboss.dev/validation": "passed" if result.passed else "failed",
            "trailboss.dev/validation-message": result.message or "",
        },
    )
    if result.passed:
        _promote_alias(ctx, version)
        phase, reason = ModelPhase.VALIDATED, ModelReason.VALIDATED
    else:
        phase, reason = ModelPhase.REJECTED, ModelReason.GATE_FAILED
    message = f"{ctx.status.model_uri}: {result.message}"
    ctx.status.phase = phase
    ctx.status.conditions = set_ready(
        ctx.status.conditions, bool(result.passed), reason, message, ctx.generation
    )
    ctx.event(reason, message, warning=not result.passed)
    metrics.MODEL_VERSIONS.labels(str(phase)).inc()


def _promote_alias(ctx: Context, version: RegistryVersion) -> None:
    """Point the ``validated`` alias at the newest validated version, never back."""
    tracking, name = ctx.svc.tracking, ctx.mv.spec.model
    for _ in range(3):  # two versions validated at once race for the alias
        current = tracking.alias_version(name, VALIDATED_ALIAS)
        if current is not None and int(current) >= int(version.version):
            return
        try:
            tracking.set_alias(name, VALIDATED_ALIAS, version.version)
        except TrackingRejected as error:
            log.info("alias %s of %s not set yet: %s", VALIDATED_ALIAS, name, error)


def _fail(ctx: Context, reason: str, message: str) -> None:
    ctx.status.phase = ModelPhase.FAILED
    ctx.status.conditions = set_ready(ctx.status.conditions, False, reason, message, ctx.generation)
    ctx.event(reason, message, warning=True)
    metrics.MODEL_VERSIONS.labels(str(ModelPhase.FAILED)).inc()


def _waiting(ctx: Context, wait: Waiting) -> None:
    ctx.status.conditions, new_reason = note_waiting(ctx.status.conditions, wait, ctx.generation)
    if new_reason:
        ctx.event(wait.reason, wait.message, warning=wait.reason != ModelReason.REGISTERING)


def _reject(body: dict[str, Any], svc: Services, problem: str) -> None:
    status = ModelVersionStatus.model_validate(body.get("status") or {})
    reject_invalid(svc, body, status, ModelPhase.FAILED, problem)


class FinalizerBlocked(Exception):
    """Deletion must wait for the registry; the message says how to force it."""


def finalize(body: dict[str, Any], svc: Services) -> str:
    """Apply the deletion policy to the registry version. Returns what was done.

    Never blocks forever: when the registry stays unreachable past the grace
    period, or an admin sets the release annotation, the finalizer is let go.
    """
    meta = body["metadata"]
    spec = body.get("spec") or {}
    status = ModelVersionStatus.model_validate(body.get("status") or {})
    name = status.registered_model or spec.get("model")
    if not name:
        return "nothing registered"
    if (meta.get("annotations") or {}).get(RELEASE_FINALIZER_ANNOTATION) == "true":
        return f"released by the {RELEASE_FINALIZER_ANNOTATION} annotation; registry left as is"
    try:
        return _apply_deletion_policy(svc, name, meta["uid"], status, spec)
    except (TrackingUnavailable, TrackingRejected) as error:
        if _past_grace(meta, svc.clock()):
            return f"registry unreachable for {DELETION_GRACE}; released without cleanup"
        message = (
            f"cannot reach MLflow to apply deletionPolicy ({error}); retrying. To delete now, "
            f"annotate with {RELEASE_FINALIZER_ANNOTATION}=true"
        )
        status.conditions = set_ready(
            status.conditions, False, ModelReason.REGISTRY_UNAVAILABLE, message, None
        )
        write_status(svc, body, status)
        raise FinalizerBlocked(message) from error


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


def forget(uid: str) -> None:
    guard.forget(uid)
