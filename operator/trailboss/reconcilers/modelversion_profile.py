"""A Validated ModelVersion's reference profile: one Job builds it beside the
model in S3, and its summary lands in status.referenceProfile.

The profile is what drift checks compare live predictions with, so it is built
once, when the version can first be served. A failed Job is tried again with a
new Job after a backoff (policies.drift.profile_retry_delay), a few times, since
S3 or a node can fail for a moment; after the last attempt the failure stays in
the ReferenceProfileReady condition.
"""

from __future__ import annotations

import datetime as dt

from trailboss.api.modelversion import (
    REFERENCE_PROFILE_READY,
    ModelReason,
    ModelVersion,
    ModelVersionSpec,
    ModelVersionStatus,
    ReferenceProfileStatus,
)
from trailboss.builders import drift as jobs
from trailboss.clients.protocols import StoreUnavailable
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
    return done is None or done.reason in (
        ModelReason.PROFILE_BUILDING,
        ModelReason.PROFILE_RETRYING,
    )


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
    owner, attempt = _owner(turn), turn.status.profile_attempts or 1
    if _retrying(turn):
        wait = (_retry_at(turn) - turn.svc.clock()).total_seconds()
        if wait > 0:
            turn.requeue(wait)
            return
        _create(turn, owner, attempt + 1)
        return
    name = jobs.profile_job_name(owner, attempt)
    job = turn.svc.kube.get("batch/v1", "Job", turn.namespace, name)
    if job is None:
        _create(turn, owner, attempt)
        return
    seen = observe_job(job)
    if seen.failed_reason is not None or (seen.failed and not seen.active):
        _failed(turn, name, seen.failed_reason or "pod failed", attempt)
        return
    if not seen.complete:
        turn.requeue(POLL_SECONDS)
        return
    _record(turn, name)


def _failed(turn: Version, name: str, why: str, attempt: int) -> None:
    """Try again after a backoff, with a Job of its own, or give up after the last."""
    failed = f"Job {name} failed ({why}): see `kubectl logs job/{name}`"
    delay = policy.profile_retry_delay(attempt)
    if delay is None:
        turn.set_condition(
            REFERENCE_PROFILE_READY, False, ModelReason.PROFILE_FAILED,
            f"{failed}; gave up after {attempt} attempts: fix the reference data and create "
            "a new ModelVersion",
        )  # fmt: skip
        turn.event(ModelReason.PROFILE_FAILED, f"reference profile Job {name} failed", warning=True)
        return
    retry_at = turn.svc.clock() + dt.timedelta(seconds=delay)
    turn.status.profile_retry_at = retry_at
    turn.set_condition(
        REFERENCE_PROFILE_READY, False, ModelReason.PROFILE_RETRYING,
        f"{failed}; retrying at {retry_at.isoformat()} "
        f"(attempt {attempt + 1} of {policy.PROFILE_ATTEMPTS})",
    )  # fmt: skip
    turn.event(
        ModelReason.PROFILE_RETRYING,
        f"reference profile Job {name} failed; retrying at {retry_at.isoformat()}",
        warning=True,
    )
    turn.requeue(delay)


def _create(turn: Version, owner: jobs.ModelVersionOwner, attempt: int) -> None:
    source = policy.reference_source(turn.obj.spec)
    location = policy.profile_location(_artifact(turn.status) or "")
    if source is None or location is None:
        return
    ctx = drift_job_context(turn.svc.settings)
    command = policy.profile_command(source, location)
    turn.svc.kube.create(jobs.profile_job(owner, command, ctx, attempt))
    turn.status.profile_attempts = attempt
    turn.status.profile_retry_at = None
    turn.set_condition(
        REFERENCE_PROFILE_READY, False, ModelReason.PROFILE_BUILDING,
        f"profiling {source} into {location}"
        + (f" (attempt {attempt} of {policy.PROFILE_ATTEMPTS})" if attempt > 1 else ""),
    )  # fmt: skip
    turn.requeue(POLL_SECONDS)


def _retrying(turn: Version) -> bool:
    done = next((c for c in turn.status.conditions if c.type == REFERENCE_PROFILE_READY), None)
    return done is not None and done.reason == ModelReason.PROFILE_RETRYING


def _retry_at(turn: Version) -> dt.datetime:
    return turn.status.profile_retry_at or turn.svc.clock()


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
