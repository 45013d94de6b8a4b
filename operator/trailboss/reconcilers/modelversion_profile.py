"""A Validated ModelVersion's reference profile: one Job builds it beside the
model in S3, and its summary lands in status.referenceProfile.

The profile is what drift checks compare live predictions with, so it is built
once, when the version can first be served, and never again: a failure is
recorded in the ReferenceProfileReady condition, not retried in a loop (the
data would be just as unreadable the next time).
"""

from __future__ import annotations

from trailboss.api.modelversion import (
    REFERENCE_PROFILE_READY,
    ModelReason,
    ModelVersion,
    ModelVersionSpec,
    ModelVersionStatus,
    ReferenceProfileStatus,
)
from trailboss.builders import drift as jobs
from trailboss.clients.storage import StoreUnavailable
from trailboss.policies import drift as policy
from trailboss.policies.training import observe_job
from trailboss.reconcilers.common import drift_job_context
from trailboss.reconcilers.turn import Turn

Version = Turn[ModelVersion]
POLL_SECONDS = 30.0
"""A safety net beside the Job's own events."""


def pending(spec: ModelVersionSpec, status: ModelVersionStatus) -> bool:
    """Whether this version still has profile work to do."""
    if status.reference_profile is not None:
        return False
    if policy.reference_source(spec) is None or not _artifact(status):
        return False
    done = next((c for c in status.conditions if c.type == REFERENCE_PROFILE_READY), None)
    return done is None or done.reason == ModelReason.PROFILE_BUILDING


def ensure(turn: Version) -> None:
    """One step: create the Job, or record what it built or why it failed."""
    if not pending(turn.obj.spec, turn.status):
        if policy.reference_source(turn.obj.spec) is None and not _has_condition(turn):
            turn.set_condition(
                REFERENCE_PROFILE_READY, False, ModelReason.NO_REFERENCE_DATA,
                "no drift checks: set spec.referenceData (CSV or Parquet in S3) or "
                "spec.source.dataset to profile",
            )  # fmt: skip
        return
    owner = _owner(turn)
    name = jobs.profile_job_name(owner)
    job = turn.svc.kube.get("batch/v1", "Job", turn.namespace, name)
    if job is None:
        _create(turn, owner)
        return
    seen = observe_job(job)
    if seen.failed_reason is not None or (seen.failed and not seen.active):
        turn.set_condition(
            REFERENCE_PROFILE_READY, False, ModelReason.PROFILE_FAILED,
            f"Job {name} failed ({seen.failed_reason or 'pod failed'}): "
            f"see `kubectl logs job/{name}`; fix the reference data and create a new ModelVersion",
        )  # fmt: skip
        turn.event(ModelReason.PROFILE_FAILED, f"reference profile Job {name} failed", warning=True)
        return
    if not seen.complete:
        turn.requeue(POLL_SECONDS)
        return
    _record(turn, name)


def _create(turn: Version, owner: jobs.ModelVersionOwner) -> None:
    source = policy.reference_source(turn.obj.spec)
    location = policy.profile_location(_artifact(turn.status) or "")
    if source is None or location is None:
        return
    ctx = drift_job_context(turn.svc.settings)
    turn.svc.kube.create(jobs.profile_job(owner, policy.profile_command(source, location), ctx))
    turn.set_condition(
        REFERENCE_PROFILE_READY, False, ModelReason.PROFILE_BUILDING,
        f"profiling {source} into {location}",
    )  # fmt: skip
    turn.requeue(POLL_SECONDS)


def _record(turn: Version, job: str) -> None:
    location = policy.profile_location(_artifact(turn.status) or "") or ""
    try:
        document = turn.svc.storage.read_json(location + policy.PROFILE_STATUS)
    except StoreUnavailable:
        turn.requeue(POLL_SECONDS)
        return
    if document is None:
        turn.set_condition(
            REFERENCE_PROFILE_READY, False, ModelReason.PROFILE_FAILED,
            f"Job {job} completed but wrote no {location}{policy.PROFILE_STATUS}",
        )  # fmt: skip
        return
    profile = ReferenceProfileStatus.model_validate(document)
    turn.status.reference_profile = profile
    message = f"{profile.features} features from {profile.rows} rows of {profile.source}"
    turn.set_condition(REFERENCE_PROFILE_READY, True, ModelReason.PROFILE_READY, message)
    turn.event(ModelReason.PROFILE_READY, f"reference profile: {message}")


def _artifact(status: ModelVersionStatus) -> str | None:
    return status.artifact.uri if status.artifact else None


def _has_condition(turn: Version) -> bool:
    return any(c.type == REFERENCE_PROFILE_READY for c in turn.status.conditions)


def _owner(turn: Version) -> jobs.ModelVersionOwner:
    return jobs.ModelVersionOwner(turn.name, turn.namespace, turn.uid)
