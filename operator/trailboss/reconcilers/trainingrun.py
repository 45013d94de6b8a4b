"""Drive one TrainingRun: pin data, open the MLflow run, run the Job, record
the outcome, register the model.

Each step is idempotent, so the reconcile can stop anywhere (crash, outage,
conflict) and the next one picks up without duplicating work: the Job has a
deterministic name, the MLflow run is found again by the TrainingRun's UID, and
the ModelVersion has a deterministic name.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from trailboss import metrics
from trailboss.api.common import API_VERSION, READY, explain
from trailboss.api.conditions import find, is_true, set_condition, set_ready
from trailboss.api.trainingrun import (
    FailureStatus,
    MlflowRunStatus,
    TrainingPhase,
    TrainingReason,
    TrainingRun,
    TrainingRunStatus,
)
from trailboss.builders import training
from trailboss.builders.registration import build_model_version
from trailboss.clients.storage import DataNotFound, StoreUnavailable
from trailboss.clients.tracking import TrackingRejected, TrackingUnavailable
from trailboss.policies import training as policy
from trailboss.reconcilers.common import (
    Guard,
    ObjectContext,
    Services,
    Waiting,
    note_waiting,
    reject_invalid,
    write_status,
)

KIND = "TrainingRun"
TRACKED = "Tracked"
"""Condition: the MLflow run holds the outcome and status holds its metrics."""
log = logging.getLogger(__name__)
guard = Guard(KIND, base_delay=5.0)


@dataclass
class Context(ObjectContext):
    """One reconcile: the object, its parsed form and the status being built."""

    run: TrainingRun
    status: TrainingRunStatus

    @property
    def owner(self) -> training.Owner:
        return training.Owner(self.meta["name"], self.meta["namespace"], self.meta["uid"])


def reconcile(body: dict[str, Any], svc: Services) -> None:
    """Bring one TrainingRun one step closer to done. Never raises for a bad object."""
    uid = body["metadata"]["uid"]
    with guard.turn(uid) as mine:
        if not mine:
            return
        try:
            run = TrainingRun.model_validate(body)
        except ValidationError as error:
            _reject(body, svc, explain(error))
            return
        if _settled(run):
            return
        ctx = Context(body, svc, run, run.status.model_copy(deep=True))
        before = run.status.to_json()
        try:
            guard.step(uid, lambda: _advance(ctx), lambda wait: _waiting(ctx, wait))
        finally:
            _write_status(ctx, before)


def _settled(run: TrainingRun) -> bool:
    """Finished, and everything that follows a finish has been done."""
    status = run.status
    if status.phase not in policy.TERMINAL:
        return False
    if status.mlflow and status.mlflow.run_id and not is_true(status.conditions, TRACKED):
        return False
    wants_model = run.spec.registration is not None and status.phase == TrainingPhase.SUCCEEDED
    return not wants_model or status.model_version is not None


def _advance(ctx: Context) -> None:
    if ctx.status.phase is None:
        ctx.status.phase = TrainingPhase.PENDING
    ctx.status.observed_generation = ctx.generation
    if ctx.status.phase not in policy.TERMINAL:
        _pin_dataset(ctx)
        _open_mlflow_run(ctx)
        job = _ensure_job(ctx)
        _observe(ctx, job)
    if ctx.status.phase in policy.TERMINAL:
        _close_run(ctx)
    if ctx.status.phase == TrainingPhase.SUCCEEDED and ctx.run.spec.registration:
        _register(ctx)


def _pin_dataset(ctx: Context) -> None:
    dataset = ctx.run.spec.dataset
    if dataset is None or ctx.status.dataset is not None:
        return
    try:
        ctx.status.dataset = ctx.svc.storage.pin(dataset.uri, ctx.svc.clock())
    except DataNotFound as error:
        raise Waiting(
            TrainingReason.DATASET_NOT_FOUND,
            f"spec.dataset.uri: {error}; upload it or fix the URI (retrying)",
        ) from error
    except StoreUnavailable as error:
        raise Waiting(TrainingReason.DATA_STORE_UNAVAILABLE, f"S3: {error} (retrying)") from error
    pin = ctx.status.dataset
    ctx.event("DatasetPinned", f"pinned {pin.uri} at {pin.version_id or pin.etag or pin.digest}")


def _open_mlflow_run(ctx: Context) -> None:
    if ctx.status.mlflow and ctx.status.mlflow.run_id:
        return
    spec = ctx.run.spec
    params = dict(spec.hyperparameters)
    if ctx.status.dataset:
        pin = ctx.status.dataset
        params["trailboss.dataset"] = pin.uri
        params["trailboss.dataset_version"] = pin.version_id or pin.etag or pin.digest or ""
    tracking = ctx.svc.tracking
    try:
        info = tracking.ensure_run(
            experiment=spec.experiment or spec.model,
            uid=ctx.owner.uid,
            run_name=ctx.owner.name,
            tags={
                "trailboss.dev/trainingrun": f"{ctx.owner.namespace}/{ctx.owner.name}",
                "trailboss.dev/model": spec.model,
                "trailboss.dev/image": spec.image,
            },
            params=params,
        )
    except TrackingUnavailable as error:
        raise Waiting(
            TrainingReason.TRACKING_UNAVAILABLE,
            f"MLflow at {tracking.uri} is unreachable: {error} (retrying; no Job is "
            "created until the run is tracked)",
        ) from error
    except TrackingRejected as error:
        raise Waiting(TrainingReason.INVALID_SPEC, f"MLflow refused the run: {error}") from error
    ctx.status.mlflow = MlflowRunStatus(
        run_id=info.run_id,
        experiment_id=info.experiment_id,
        url=tracking.run_url(info.experiment_id, info.run_id),
    )


def _ensure_job(ctx: Context) -> dict[str, Any] | None:
    """The Job, created when missing. None when it was lost after it had started."""
    kube, owner, spec = ctx.svc.kube, ctx.owner, ctx.run.spec
    name = training.job_name(owner)
    # A run whose status names no Job yet almost never has one: create first and
    # read only on a conflict (a restart after creating it), saving a round trip.
    first_time = ctx.status.job_name is None
    ctx.status.job_name = name
    job = None if first_time else kube.get("batch/v1", "Job", owner.namespace, name)
    if job is None and ctx.status.start_time is not None:
        return None
    if job is None:
        if spec.workers > 1:
            kube.create(training.build_worker_service(owner, spec))
        manifest = training.build_job(owner, spec, _training_context(ctx))
        job = kube.create(manifest) or kube.get("batch/v1", "Job", owner.namespace, name)
        ctx.event(TrainingReason.JOB_CREATED, f"created Job {name}")
    elif bool((job.get("spec") or {}).get("suspend")) != spec.suspend:
        job = kube.apply(_suspend_patch(job, spec.suspend))
    return job


def _suspend_patch(job: dict[str, Any], suspend: bool) -> dict[str, Any]:
    meta = job["metadata"]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
        "spec": {"suspend": suspend},
    }


def _training_context(ctx: Context) -> training.TrainingContext:
    settings = ctx.svc.settings
    mlflow = ctx.status.mlflow
    if mlflow is None or not mlflow.run_id or not mlflow.experiment_id:
        raise RuntimeError("the Job is built only after the MLflow run is open")
    return training.TrainingContext(
        tracking_uri=settings.mlflow_tracking_uri,
        run_id=mlflow.run_id,
        experiment_id=mlflow.experiment_id,
        dataset=ctx.status.dataset,
        s3_endpoint_url=settings.s3_endpoint_url,
        credentials_secret=settings.s3_credentials_secret,
        pod_labels=settings.training_pod_labels,
    )


def _observe(ctx: Context, job: dict[str, Any] | None) -> None:
    if job is None:
        _lost_job(ctx)
        return
    observed = policy.observe_job(job)
    failure = None
    if observed.failed:
        pods = ctx.svc.kube.list(
            "v1", "Pod", ctx.owner.namespace, {"job-name": job["metadata"]["name"]}
        )
        failure = policy.pod_failure(pods, observed)
    progress = policy.progress(observed, failure)
    status = ctx.status
    status.attempts = observed.attempts
    status.start_time = status.start_time or observed.start_time
    if progress.phase == TrainingPhase.FAILED:
        status.failure = failure or FailureStatus(reason=observed.failed_reason)
    if progress.phase in policy.TERMINAL:
        status.completion_time = observed.completion_time or ctx.svc.clock()
    _transition(ctx, progress.phase, progress.reason, progress.message)


def _lost_job(ctx: Context) -> None:
    """The Job vanished after it started (deleted by hand, or its TTL ran out
    while the operator was away): the MLflow run tells how training ended."""
    run_id = ctx.status.mlflow.run_id if ctx.status.mlflow else None
    try:
        state = ctx.svc.tracking.get_run(run_id).status if run_id else "UNKNOWN"
    except TrackingUnavailable as error:
        raise Waiting(TrainingReason.TRACKING_UNAVAILABLE, f"MLflow: {error} (retrying)") from error
    ctx.status.completion_time = ctx.svc.clock()
    if state == "FINISHED":
        _transition(ctx, TrainingPhase.SUCCEEDED, TrainingReason.SUCCEEDED, "training finished")
        return
    ctx.status.failure = FailureStatus(reason="JobDeleted", message=f"MLflow run is {state}")
    _transition(
        ctx,
        TrainingPhase.FAILED,
        TrainingReason.FAILED,
        f"Job {ctx.status.job_name} was deleted before it finished",
    )


def _transition(ctx: Context, phase: TrainingPhase, reason: str, message: str) -> None:
    status = ctx.status
    previous = status.phase
    status.phase = phase
    succeeded = phase == TrainingPhase.SUCCEEDED
    status.conditions = set_ready(status.conditions, succeeded, reason, message, ctx.generation)
    if previous == phase:
        return
    ctx.event(reason, message, warning=phase == TrainingPhase.FAILED)
    if phase in policy.TERMINAL:
        _count_outcome(status)


def _count_outcome(status: TrainingRunStatus) -> None:
    outcome = str(status.phase).lower()
    metrics.TRAINING_RUNS.labels(outcome).inc()
    if status.start_time and status.completion_time:
        seconds = (status.completion_time - status.start_time).total_seconds()
        metrics.TRAINING_SECONDS.labels(outcome).observe(max(0.0, seconds))


def _close_run(ctx: Context) -> None:
    """Copy the run's metrics into status and close the run if the trainer did not.
    An outage here is waited out: the outcome is known, its record is not yet."""
    status = ctx.status
    run_id = status.mlflow.run_id if status.mlflow else None
    if run_id is None or is_true(status.conditions, TRACKED) or status.phase is None:
        return
    state = policy.mlflow_run_status(status.phase)
    try:
        ctx.svc.tracking.finish_run(run_id, state)
        status.metrics = ctx.svc.tracking.get_run(run_id).metrics
    except TrackingUnavailable as error:
        raise Waiting(
            TrainingReason.TRACKING_UNAVAILABLE,
            f"training {str(status.phase).lower()}, but MLflow at {ctx.svc.tracking.uri} is "
            f"unreachable to record it: {error} (retrying)",
        ) from error
    except TrackingRejected as error:
        log.warning("MLflow run %s could not be closed: %s", run_id, error)
    status.conditions = set_condition(
        status.conditions,
        TRACKED,
        True,
        "RunClosed",
        f"MLflow run {run_id} recorded",
        ctx.generation,
    )
    _restore_ready(ctx)


def _restore_ready(ctx: Context) -> None:
    """After an outage the Ready condition says so; put the outcome back."""
    status = ctx.status
    ready = find(status.conditions, READY)
    if ready is None or ready.reason != TrainingReason.TRACKING_UNAVAILABLE:
        return
    if status.phase == TrainingPhase.SUCCEEDED:
        reason, message = TrainingReason.SUCCEEDED, "training finished"
    else:
        failure = status.failure or FailureStatus()
        reason, message = TrainingReason.FAILED, failure.message or failure.reason or "failed"
    ok = status.phase == TrainingPhase.SUCCEEDED
    status.conditions = set_ready(status.conditions, ok, reason, message, ctx.generation)


def _register(ctx: Context) -> None:
    if ctx.status.model_version is not None:
        return
    status = ctx.status
    manifest = build_model_version(ctx.owner, ctx.run.spec, status)
    existing = ctx.svc.kube.create(manifest)
    name = manifest["metadata"]["name"]
    if existing is None:
        found = ctx.svc.kube.get(API_VERSION, "ModelVersion", ctx.owner.namespace, name) or {}
        source = (found.get("spec") or {}).get("source") or {}
        if source.get("trainingRun") != ctx.owner.name:
            raise Waiting(
                TrainingReason.INVALID_SPEC,
                f"ModelVersion {name} exists and was not made by this run; delete or rename it",
            )
    status.model_version = name
    status.conditions = set_ready(
        status.conditions,
        True,
        TrainingReason.REGISTERED,
        f"registered as ModelVersion {name}",
        ctx.generation,
    )
    ctx.event(TrainingReason.REGISTERED, f"created ModelVersion {name}")


def _waiting(ctx: Context, wait: Waiting) -> None:
    ctx.status.conditions, new_reason = note_waiting(ctx.status.conditions, wait, ctx.generation)
    if new_reason:
        ctx.event(wait.reason, wait.message, warning=True)
    log.info("TrainingRun %s/%s waiting: %s", ctx.owner.namespace, ctx.owner.name, wait.message)


def _write_status(ctx: Context, before: dict[str, Any]) -> None:
    if ctx.status.to_json() != before:
        write_status(ctx.svc, ctx.body, ctx.status)


def _reject(body: dict[str, Any], svc: Services, problem: str) -> None:
    status = TrainingRunStatus.model_validate(body.get("status") or {})
    reject_invalid(svc, body, status, TrainingPhase.FAILED, problem)


def forget(uid: str) -> None:
    guard.forget(uid)


def kill_mlflow_run(body: dict[str, Any], svc: Services) -> None:
    """On deletion of an unfinished run: mark its MLflow run KILLED."""
    status = TrainingRunStatus.model_validate(body.get("status") or {})
    if status.phase in policy.TERMINAL or not (status.mlflow and status.mlflow.run_id):
        return
    svc.tracking.finish_run(status.mlflow.run_id, "KILLED")
