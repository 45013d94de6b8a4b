"""Drive one TrainingRun: pin data, open the MLflow run, run the Job, record
the outcome, register the model.

Each step is idempotent, so the reconcile can stop anywhere (crash, outage,
conflict) and the next one picks up without duplicating work: the Job has a
deterministic name, the MLflow run is found again by the TrainingRun's UID, and
the ModelVersion has a deterministic name and carries the run's UID.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, NoReturn

from trailboss import metrics
from trailboss.api.conditions import is_true
from trailboss.api.durations import spec_seconds
from trailboss.api.trainingrun import (
    COMPLETE,
    FAILED,
    DatasetSpec,
    FailureStatus,
    MlflowRunStatus,
    TrainingPhase,
    TrainingReason,
    TrainingRun,
    TrainingRunStatus,
)
from trailboss.builders import training
from trailboss.clients.protocols import DataNotFound, StoreUnavailable, TrackingUnavailable
from trailboss.policies import podstart
from trailboss.policies import training as policy
from trailboss.reconcilers.common import Services
from trailboss.reconcilers.driver import Driver, Ended, Result
from trailboss.reconcilers.latest import LatestBodies
from trailboss.reconcilers.outcomes import Failed, Outcome, Waiting
from trailboss.reconcilers.trainingrun_registration import register
from trailboss.reconcilers.trainingrun_tracking import TRACKED, close_run, kill_mlflow_run
from trailboss.reconcilers.turn import Turn

PODS_POLL_SECONDS = 10.0
RESYNC_SECONDS = 60.0
"""An unfinished run is looked at again at least this often, in case a Job event
was missed (a watch that broke and resumed)."""
KILL_RETRIES = 5
KILL_RETRY_SECONDS = 5.0
log = logging.getLogger(__name__)

Run = Turn[TrainingRun]


class TrainingRunKind:
    kind = "TrainingRun"
    model = TrainingRun
    failed_phase = str(TrainingPhase.FAILED)
    failed_conditions = (FAILED,)
    phases = tuple(str(phase) for phase in TrainingPhase)

    def settled(self, run: TrainingRun) -> bool:
        """Finished, and everything that follows a finish has been done."""
        status = run.status
        if status.phase not in policy.TERMINAL:
            return False
        if status.mlflow and status.mlflow.run_id and not is_true(status.conditions, TRACKED):
            return False
        wants_model = run.spec.registration is not None and status.phase == TrainingPhase.SUCCEEDED
        return not wants_model or status.model_version is not None

    def advance(self, turn: Run) -> None:
        _advance(turn)

    def failed(self, turn: Run, outcome: Outcome) -> None:
        status: TrainingRunStatus = turn.status
        if status.phase == TrainingPhase.SUCCEEDED:
            return  # the training succeeded; only what follows it did not (Ready says so)
        status.failure = status.failure or FailureStatus(
            reason=outcome.reason, message=outcome.message
        )
        status.completion_time = status.completion_time or turn.svc.clock()
        # The driver has posted the Warning event with this reason and message.
        _transition(turn, TrainingPhase.FAILED, outcome.reason, outcome.message, announce=False)


driver: Driver[TrainingRun] = Driver(
    TrainingRunKind(), base_delay=5.0, latest=LatestBodies(keep=policy.unfinished)
)


def reconcile(body: dict[str, Any], svc: Services) -> Ended:
    """Bring one TrainingRun one step closer to done. Never raises for a bad object."""
    return driver.reconcile(body, svc)


def watched(body: dict[str, Any], first_sight: bool, svc: Services) -> Ended | None:
    """A watch event of a run: kept as its latest body, and reconciled when it asks
    for it (see ``policy.needs_reconcile``). None when it asked for nothing."""
    assert driver.latest is not None
    driver.latest.offer(body)
    if not policy.needs_reconcile(body, first_sight=first_sight):
        return None
    return driver.reconcile(body, svc)


def deleted(body: dict[str, Any], svc: Services, attempt: int = 1) -> None:
    """The run is gone (its Job goes by garbage collection): an unfinished run's
    MLflow run is marked KILLED, tried again a few times while MLflow is away."""
    uid = str(body["metadata"]["uid"])
    forget(uid)
    try:
        kill_mlflow_run(body, svc)
    except TrackingUnavailable as error:
        meta = body["metadata"]
        if attempt >= KILL_RETRIES or driver.requeue is None:
            log.warning(
                "TrainingRun %s/%s was deleted; its MLflow run stays open: %s",
                meta["namespace"],
                meta["name"],
                error,
            )
            return
        delay = KILL_RETRY_SECONDS * attempt
        # Under a key of its own: forgetting the run (its Job's deletion) must not cancel it.
        driver.requeue.schedule(f"{uid}/kill", delay, lambda: deleted(body, svc, attempt + 1))


def reconcile_latest(namespace: str, name: str, uid: str, svc: Services) -> Ended:
    return driver.reconcile_latest(namespace, name, uid, svc)


class JobsActedOn:
    """What each unfinished run's Job looked like when a Job event last reconciled
    the run. The Job controller writes a Job's status several times per pod, some
    of them changing nothing a TrainingRun shows; those cost no reconcile."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, policy.JobObservation] = {}

    def is_news(self, uid: str, observed: policy.JobObservation) -> bool:
        with self._lock:
            return self._seen.get(uid) != observed

    def acted_on(self, uid: str, observed: policy.JobObservation) -> None:
        with self._lock:
            if observed.complete or observed.failed_reason is not None:
                self._seen.pop(uid, None)  # finished: nothing more to compare with
            else:
                self._seen[uid] = observed

    def forget(self, uid: str) -> None:
        with self._lock:
            self._seen.pop(uid, None)

    def __len__(self) -> int:
        return len(self._seen)


jobs_acted_on = JobsActedOn()


def job_changed(
    run: tuple[str, str, str], job: dict[str, Any], deleted: bool, svc: Services
) -> Ended | None:
    """A watch event of ``run``'s Job: reconcile the run from the Job in the event
    (no read of it), unless nothing the run shows of its Job changed. None when skipped."""
    namespace, name, uid = run
    if deleted:  # the reconcile reads the run: is it gone too, or did its Job go alone?
        jobs_acted_on.forget(uid)
        return driver.reconcile_latest(namespace, name, uid, svc, read=True)
    observed = policy.observe_job(job)
    if not jobs_acted_on.is_news(uid, observed):
        return None
    ended = driver.reconcile_latest(namespace, name, uid, svc, seen={"Job": job})
    if ended.result != Result.SKIPPED:  # a busy run skipped it: the next event must not be
        jobs_acted_on.acted_on(uid, observed)
    return ended


def _owner(turn: Run) -> training.Owner:
    return training.Owner(turn.name, turn.namespace, turn.uid)


def _advance(turn: Run) -> None:
    status: TrainingRunStatus = turn.status
    if status.phase is None:
        status.phase = TrainingPhase.PENDING
        namespace, model = turn.namespace, turn.obj.spec.model
        turn.after_write(lambda: metrics.first_seen_trainingrun(namespace, model))
    status.observed_generation = turn.generation
    if status.phase not in policy.TERMINAL:
        _pin_dataset(turn)
        _open_mlflow_run(turn)
        job = _ensure_job(turn)
        _observe(turn, job)
    if status.phase not in policy.TERMINAL:
        turn.requeue(RESYNC_SECONDS)  # a wait on the way here asked for its own time
        return
    close_run(turn)
    if status.phase == TrainingPhase.SUCCEEDED and turn.obj.spec.registration:
        register(turn)


def _pin_dataset(turn: Run) -> None:
    dataset = turn.obj.spec.dataset
    if dataset is None or turn.status.dataset is not None:
        return
    try:
        turn.status.dataset = turn.svc.storage.pin(dataset.uri, turn.svc.clock())
    except DataNotFound as error:
        _dataset_missing(turn, dataset, error)
    except StoreUnavailable as error:
        raise Waiting(TrainingReason.DATA_STORE_UNAVAILABLE, f"S3: {error} (retrying)") from error


def _dataset_missing(turn: Run, dataset: DatasetSpec, error: DataNotFound) -> NoReturn:
    """Wait for the data until spec.dataset.waitTimeout after the run was created,
    then fail: a run must not wait forever for a URI nobody will ever write."""
    timeout = dataset.wait_timeout
    left = policy.dataset_wait_left(
        turn.meta.get("creationTimestamp"), turn.svc.clock(), spec_seconds(timeout)
    )
    if left <= 0:
        raise Failed(
            TrainingReason.DATASET_NOT_FOUND,
            f"spec.dataset.uri: {error} {timeout} after the run was created "
            "(spec.dataset.waitTimeout): upload it or fix the URI, then create a new TrainingRun",
        ) from error
    turn.requeue(left)  # fail on time even when the backoff would come back later
    raise Waiting(
        TrainingReason.DATASET_NOT_FOUND,
        f"spec.dataset.uri: {error}; upload it or fix the URI (retrying; the run fails if it "
        f"is still missing {timeout} after it was created)",
    ) from error


def _open_mlflow_run(turn: Run) -> None:
    if turn.status.mlflow and turn.status.mlflow.run_id:
        return
    spec = turn.obj.spec
    params = dict(spec.hyperparameters)
    if turn.status.dataset:
        pin = turn.status.dataset
        params["trailboss.dataset"] = pin.uri
        params["trailboss.dataset_version"] = pin.version_id or pin.etag or pin.digest or ""
    tracking = turn.svc.tracking
    try:
        info = tracking.ensure_run(
            experiment=spec.experiment or spec.model,
            uid=turn.uid,
            run_name=turn.name,
            tags={
                "trailboss.dev/trainingrun": f"{turn.namespace}/{turn.name}",
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
    turn.status.mlflow = MlflowRunStatus(
        run_id=info.run_id,
        experiment_id=info.experiment_id,
        url=tracking.run_url(info.experiment_id, info.run_id),
    )


def _ensure_job(turn: Run) -> dict[str, Any] | None:
    """The Job, created when missing. None when it was lost after it had started."""
    kube, owner, spec = turn.svc.kube, _owner(turn), turn.obj.spec
    name = training.job_name(owner)
    # A run whose status names no Job yet almost never has one: create first and
    # read only on a conflict (a restart after creating it), saving a round trip.
    first_time = turn.status.job_name is None
    turn.status.job_name = name
    job = (
        None
        if first_time
        else _seen_job(turn, name) or kube.get("batch/v1", "Job", owner.namespace, name)
    )
    if job is None and turn.status.start_time is not None:
        return None
    if job is None:
        if spec.workers > 1:
            kube.create(training.build_worker_service(owner, spec))
        manifest = training.build_job(owner, spec, _training_context(turn))
        # No Event of its own: status.jobName says it, and the Job controller's
        # Events on the Job follow its pods.
        job = kube.create(manifest) or kube.get("batch/v1", "Job", owner.namespace, name)
    elif _suspend_differs(job, spec.suspend):
        job = kube.apply(_suspend_patch(job, spec.suspend))
    return job


def _suspend_differs(job: dict[str, Any], suspend: bool) -> bool:
    """Kueue holds a queued Job suspended until it admits it: resuming it here
    would jump the queue (and a queued run cannot ask for suspension)."""
    if training.queue_name(job["metadata"].get("labels") or {}) is not None:
        return False
    return bool((job.get("spec") or {}).get("suspend")) != suspend


def _suspend_patch(job: dict[str, Any], suspend: bool) -> dict[str, Any]:
    meta = job["metadata"]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
        "spec": {"suspend": suspend},
    }


def _training_context(turn: Run) -> training.TrainingContext:
    settings = turn.svc.settings
    mlflow = turn.status.mlflow
    if mlflow is None or not mlflow.run_id or not mlflow.experiment_id:
        raise RuntimeError("the Job is built only after the MLflow run is open")
    return training.TrainingContext(
        tracking_uri=settings.mlflow_tracking_uri,
        run_id=mlflow.run_id,
        experiment_id=mlflow.experiment_id,
        dataset=turn.status.dataset,
        s3_endpoint_url=settings.s3_endpoint_url,
        credentials_secret=settings.s3_credentials_secret,
        pod_labels=settings.training_pod_labels,
    )


def _seen_job(turn: Run, name: str) -> dict[str, Any] | None:
    """The Job as the event behind this turn delivered it, when it is this run's."""
    job = turn.seen.get("Job")
    return job if job is not None and job["metadata"]["name"] == name else None


def _observe(turn: Run, job: dict[str, Any] | None) -> None:
    if job is None:
        _lost_job(turn)
        return
    observed = policy.observe_job(job)
    failure = None
    if observed.failed:
        pods = turn.svc.kube.list(
            "v1", "Pod", turn.namespace, {"job-name": job["metadata"]["name"]}
        )
        failure = policy.pod_failure(pods, observed)
    progress = policy.progress(observed, failure)
    if progress.reason == TrainingReason.JOB_CREATED:
        progress = _refused_pods(turn, job, observed) or progress
    elif progress.reason == TrainingReason.RUNNING and not observed.ready:
        progress = _pods_not_starting(turn, job, observed) or progress
    status = turn.status
    status.attempts = observed.attempts
    status.start_time = status.start_time or observed.start_time
    if progress.phase == TrainingPhase.FAILED:
        status.failure = failure or FailureStatus(reason=observed.failed_reason)
    if progress.phase in policy.TERMINAL:
        status.completion_time = observed.completion_time or turn.svc.clock()
    _transition(turn, progress.phase, progress.reason, progress.message)


def _refused_pods(
    turn: Run, job: dict[str, Any], observed: policy.JobObservation
) -> policy.Progress | None:
    """No pod yet: say so when admission refuses them, instead of "waiting for
    pods to start", and look again soon (a refusal changes nothing on the Job)."""
    turn.requeue(PODS_POLL_SECONDS)
    if not policy.may_show_refusals(observed, turn.svc.clock()):
        return None
    events = turn.svc.kube.events_for(turn.namespace, "Job", job["metadata"]["name"])
    return policy.pods_rejected(observed, events)


def _pods_not_starting(
    turn: Run, job: dict[str, Any], observed: policy.JobObservation
) -> policy.Progress | None:
    """Pods exist but none is ready: say so when the kubelet cannot start them (a
    missing Secret, an image it cannot pull) instead of "worker(s) running", and look
    again soon (a waiting container changes nothing on the Job)."""
    turn.requeue(PODS_POLL_SECONDS)
    if not podstart.may_be_stuck(observed, turn.svc.clock()):
        return None
    pods = turn.svc.kube.list("v1", "Pod", turn.namespace, {"job-name": job["metadata"]["name"]})
    return podstart.not_starting(pods)


def _lost_job(turn: Run) -> None:
    """The Job vanished after it started (deleted by hand, or its TTL ran out
    while the operator was away): the MLflow run tells how training ended."""
    run_id = turn.status.mlflow.run_id if turn.status.mlflow else None
    try:
        state = turn.svc.tracking.get_run(run_id).status if run_id else "UNKNOWN"
    except TrackingUnavailable as error:
        raise Waiting(TrainingReason.TRACKING_UNAVAILABLE, f"MLflow: {error} (retrying)") from error
    turn.status.completion_time = turn.svc.clock()
    if state == "FINISHED":
        _transition(turn, TrainingPhase.SUCCEEDED, TrainingReason.SUCCEEDED, "training finished")
        return
    turn.status.failure = FailureStatus(reason="JobDeleted", message=f"MLflow run is {state}")
    _transition(
        turn,
        TrainingPhase.FAILED,
        TrainingReason.FAILED,
        f"Job {turn.status.job_name} was deleted before it finished",
    )


def _transition(
    turn: Run, phase: TrainingPhase, reason: str, message: str, *, announce: bool = True
) -> None:
    status: TrainingRunStatus = turn.status
    previous = status.phase
    status.phase = phase
    turn.set_ready(phase == TrainingPhase.SUCCEEDED, reason, message)
    _set_finished(turn, phase, reason, message)
    if previous == phase:
        return
    if announce:
        turn.event(reason, message, warning=phase == TrainingPhase.FAILED)
    if phase in policy.TERMINAL:
        labels = (turn.namespace, turn.obj.spec.model, str(phase).lower())
        seconds = _duration(status)
        turn.after_write(lambda: _count_outcome(labels, seconds))


def _set_finished(turn: Run, phase: TrainingPhase, reason: str, message: str) -> None:
    """Complete or Failed, True, as the Job controller sets them on a Job: absent
    until the run ends, so `kubectl wait --for=condition=...` waits until then."""
    if phase == TrainingPhase.SUCCEEDED:
        turn.set_condition(COMPLETE, True, reason, message)
    elif phase == TrainingPhase.FAILED:
        turn.set_condition(FAILED, True, reason, message)


def _duration(status: TrainingRunStatus) -> float | None:
    if status.start_time and status.completion_time:
        return max(0.0, (status.completion_time - status.start_time).total_seconds())
    return None


def _count_outcome(labels: tuple[str, str, str], seconds: float | None) -> None:
    metrics.TRAINING_RUNS.labels(*labels).inc()
    if seconds is not None:
        metrics.TRAINING_SECONDS.labels(labels[2]).observe(seconds)


def forget(uid: str) -> None:
    driver.forget(uid)
    jobs_acted_on.forget(uid)
