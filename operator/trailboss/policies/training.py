"""Decide a TrainingRun's phase from what its Job and pods report. Pure."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from trailboss.api.podtemplate import KUEUE_QUEUE_LABEL
from trailboss.api.trainingrun import FailureStatus, TrainingPhase, TrainingReason

TERMINAL = frozenset({TrainingPhase.SUCCEEDED, TrainingPhase.FAILED})
MESSAGE_LIMIT = 1024


def unfinished(body: dict[str, Any]) -> bool:
    """The run has not reached Succeeded or Failed (as its status says)."""
    return (body.get("status") or {}).get("phase") not in TERMINAL


def needs_reconcile(body: dict[str, Any], *, first_sight: bool) -> bool:
    """Whether a watch event of a run asks for a reconcile: the first sight of it
    (created, or listed when the operator starts), or a spec the status does not
    answer yet (``spec.suspend`` edited). The operator's own status writes come
    back as events too: those ask for nothing."""
    meta = body["metadata"]
    if meta.get("deletionTimestamp"):
        return False
    if first_sight:
        return True
    observed = (body.get("status") or {}).get("observedGeneration")
    return bool(observed != meta.get("generation"))


@dataclass(frozen=True)
class JobObservation:
    """The parts of a batch/v1 Job status a TrainingRun cares about."""

    active: int = 0
    ready: int = 0
    succeeded: int = 0
    failed: int = 0
    complete: bool = False
    failed_reason: str | None = None
    failed_message: str | None = None
    suspended: bool = False
    queue: str | None = None
    """The Kueue queue the Job waits in, from its label."""
    start_time: dt.datetime | None = None
    completion_time: dt.datetime | None = None
    created: dt.datetime | None = None

    @property
    def attempts(self) -> int:
        return self.active + self.succeeded + self.failed


@dataclass(frozen=True)
class Progress:
    phase: TrainingPhase
    reason: str
    message: str


def observe_job(job: dict[str, Any]) -> JobObservation:
    status = job.get("status") or {}
    conditions = {
        c.get("type"): c for c in status.get("conditions") or [] if c.get("status") == "True"
    }
    failed = conditions.get("Failed")
    return JobObservation(
        active=status.get("active") or 0,
        ready=status.get("ready") or 0,
        succeeded=status.get("succeeded") or 0,
        failed=status.get("failed") or 0,
        complete="Complete" in conditions,
        failed_reason=failed.get("reason") if failed else None,
        failed_message=failed.get("message") if failed else None,
        suspended="Suspended" in conditions or bool((job.get("spec") or {}).get("suspend")),
        queue=((job.get("metadata") or {}).get("labels") or {}).get(KUEUE_QUEUE_LABEL),
        start_time=_time(status.get("startTime")),
        completion_time=_time(status.get("completionTime")),
        created=_time((job.get("metadata") or {}).get("creationTimestamp")),
    )


def _time(value: Any) -> dt.datetime | None:
    if value is None or isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def progress(job: JobObservation, failure: FailureStatus | None) -> Progress:
    """The first rule that matches decides; order matters."""
    if job.complete:
        return Progress(TrainingPhase.SUCCEEDED, TrainingReason.SUCCEEDED, "training finished")
    if job.failed_reason is not None:
        return _failed(job, failure)
    if job.suspended and job.queue:
        return Progress(
            TrainingPhase.PENDING,
            TrainingReason.QUEUED,
            f"waiting for Kueue to admit the Job from queue {job.queue}",
        )
    if job.suspended:
        return Progress(
            TrainingPhase.PENDING, TrainingReason.SUSPENDED, "suspended: set spec.suspend to false"
        )
    if job.active:
        return Progress(
            TrainingPhase.RUNNING,
            TrainingReason.RUNNING,
            f"{job.active} worker(s) running, {job.ready} ready",
        )
    return Progress(TrainingPhase.PENDING, TrainingReason.JOB_CREATED, "waiting for pods to start")


def _failed(job: JobObservation, failure: FailureStatus | None) -> Progress:
    reason = (
        TrainingReason.DEADLINE_EXCEEDED
        if job.failed_reason == "DeadlineExceeded"
        else TrainingReason.FAILED
    )
    parts = [job.failed_message or job.failed_reason or "the Job failed"]
    if failure and failure.exit_code is not None:
        parts.append(f"exit code {failure.exit_code}")
    if failure and failure.message:
        parts.append(failure.message.strip().splitlines()[-1][:200])
    return Progress(TrainingPhase.FAILED, reason, ": ".join(parts))


def pod_failure(pods: list[dict[str, Any]], job: JobObservation) -> FailureStatus | None:
    """Why the most recent failed worker stopped: its exit code and last words."""
    terminated = [
        (pod, state)
        for pod in pods
        for cs in (pod.get("status") or {}).get("containerStatuses") or []
        if (state := (cs.get("state") or {}).get("terminated")) and state.get("exitCode")
    ]
    if not terminated and job.failed_reason is None:
        return None
    if not terminated:
        return FailureStatus(reason=job.failed_reason, message=job.failed_message)
    _, state = max(terminated, key=lambda item: str(item[1].get("finishedAt") or ""))
    message = (state.get("message") or "").strip()
    return FailureStatus(
        reason=job.failed_reason or state.get("reason") or "Error",
        message=message[-MESSAGE_LIMIT:] or None,
        exit_code=state.get("exitCode"),
    )


def dataset_wait_left(created: Any, now: dt.datetime, timeout_seconds: float) -> float:
    """Seconds a run may still wait for its dataset to appear; none left at zero
    or below. Counted from the run's ``metadata.creationTimestamp``, which the
    API server always sets and a restart of the operator cannot reset."""
    since = _time(created)
    waited = (now - since).total_seconds() if since is not None else 0.0
    return timeout_seconds - waited


def mlflow_run_status(phase: TrainingPhase) -> str:
    """How the MLflow run is closed when the trainer did not close it."""
    return "FINISHED" if phase == TrainingPhase.SUCCEEDED else "FAILED"


# What the API server says when an admission plugin, a quota or a webhook refuses
# a pod the Job controller tries to create (reported only as FailedCreate events;
# a Job has no condition for it).
_REFUSED = ("is forbidden", "denied the request", "exceeded quota")


def pods_rejected(job: JobObservation, events: list[dict[str, Any]]) -> Progress | None:
    """`PodsRejected` when the Job has no pod because admission refuses them, with
    the API server's words and what to change; None while pods exist or the Job
    is finished. ``events`` are the Job's core/v1 or events.k8s.io/v1 Events."""
    if job.complete or job.failed_reason is not None or job.active or job.suspended:
        return None
    refusals = [e for e in events if e.get("reason") == "FailedCreate" and _refused(e)]
    if not refusals:
        return None
    latest = max(refusals, key=_event_time)
    message = _event_message(latest).removeprefix("Error creating: ").strip()
    return Progress(
        TrainingPhase.PENDING,
        TrainingReason.PODS_REJECTED,
        f"the training pods are refused at admission: {message[:MESSAGE_LIMIT]}; "
        f"{_remedy(message)}",
    )


# The Job controller reports a refused pod with the Job's first pod creation, a
# moment after the Job exists; before that there is nothing to find.
REFUSAL_GRACE = dt.timedelta(seconds=3)


def may_show_refusals(job: JobObservation, now: dt.datetime) -> bool:
    """Whether the Job is old enough for its Events to say that pods were refused.

    In a burst every new Job is seen first without pods: listing its Events then
    costs the API server a LIST per run and finds nothing."""
    return job.created is None or now - job.created >= REFUSAL_GRACE


def _refused(event: dict[str, Any]) -> bool:
    message = _event_message(event)
    return any(marker in message for marker in _REFUSED)


def _event_message(event: dict[str, Any]) -> str:
    return str(event.get("message") or event.get("note") or "")


def _event_time(event: dict[str, Any]) -> str:
    for key in ("lastTimestamp", "last_timestamp", "eventTime", "event_time"):
        if value := event.get(key):
            return value.isoformat() if isinstance(value, dt.datetime) else str(value)
    return ""


def _remedy(message: str) -> str:
    if "PodSecurity" in message:
        return (
            "the namespace enforces Pod Security; training pods meet `restricted` unless "
            "spec.securityContext.runAsRoot is true"
        )
    if "exceeded quota" in message:
        return (
            "a ResourceQuota is exhausted: lower spec.resources or spec.workers, or raise the quota"
        )
    return "an admission policy or webhook refuses them: see the message for what it requires"
