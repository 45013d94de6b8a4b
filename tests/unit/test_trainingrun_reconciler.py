"""The TrainingRun reconciler against in-memory fakes: each step done once, even
when a reconcile is repeated without the status it wrote (a crash before the write)."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest

from tests.unit.fakes import NOW, FakeKube, services
from trailboss.reconcilers import trainingrun
from trailboss.reconcilers.common import Services
from trailboss.reconcilers.driver import Result

BODY: dict[str, Any] = {
    "apiVersion": "trailboss.dev/v1alpha1",
    "kind": "TrainingRun",
    "metadata": {"name": "churn", "namespace": "ml", "uid": "uid-1", "generation": 1},
    "spec": {
        "model": "churn",
        "image": "trainer:1",
        "dataset": {"uri": "s3://datasets/churn.csv"},
        "hyperparameters": {"n_estimators": "10"},
        "register": {"validation": {"minimums": {"accuracy": 0.8}}},
    },
}


@pytest.fixture(autouse=True)
def _fresh_state() -> None:
    trainingrun.forget("uid-1")


def _with_status(kube: FakeKube) -> dict[str, Any]:
    return kube.current(BODY)


def _finish_job(kube: FakeKube, condition: str = "Complete") -> None:
    job = kube.jobs()[0]
    job["status"] = {
        "succeeded": 1 if condition == "Complete" else 0,
        "failed": 1 if condition == "Failed" else 0,
        "startTime": "2026-11-22T10:00:00Z",
        "completionTime": "2026-11-22T10:04:00Z",
        "conditions": [{"type": condition, "status": "True", "reason": "BackoffLimitExceeded"}],
    }


def test_first_reconcile_pins_data_opens_one_run_and_creates_one_job() -> None:
    svc, kube, tracking, storage = services()
    storage.objects["s3://datasets/churn.csv"] = "etag-1"
    trainingrun.reconcile(kube.put(BODY), svc)
    status = kube.statuses[-1]
    assert status["phase"] == "Pending"
    assert status["dataset"]["etag"] == "etag-1"
    assert status["mlflow"]["runId"] == "run1"
    assert status["jobName"].startswith("churn-train-")
    assert len(kube.jobs()) == 1
    assert tracking.runs["run1"]["params"] == {
        "n_estimators": "10",
        "trailboss.dataset": "s3://datasets/churn.csv",
        "trailboss.dataset_version": "etag-1",
    }
    # A crash before the status write: the next reconcile sees no status at all.
    trainingrun.reconcile(kube.put(BODY), svc)
    assert len(kube.jobs()) == 1
    assert list(tracking.runs) == ["run1"]


def test_success_records_metrics_closes_run_and_registers_once() -> None:
    svc, kube, tracking, storage = services()
    storage.objects["s3://datasets/churn.csv"] = "etag-1"
    trainingrun.reconcile(kube.put(BODY), svc)
    tracking.runs["run1"]["metrics"] = {"accuracy": 0.91}
    _finish_job(kube)
    trainingrun.reconcile(_with_status(kube), svc)
    status = kube.statuses[-1]
    assert status["phase"] == "Succeeded"
    assert status["metrics"] == {"accuracy": 0.91}
    assert status["modelVersion"] == "churn"
    assert tracking.runs["run1"]["status"] == "FINISHED"
    mv = kube.get("", "ModelVersion", "ml", "churn")
    assert mv is not None
    assert mv["spec"]["artifactUri"] == "runs:/run1/model"
    writes = len(kube.statuses)
    trainingrun.reconcile(_with_status(kube), svc)
    assert len(kube.statuses) == writes  # settled: nothing to write


def test_missing_dataset_waits_without_job_or_run() -> None:
    svc, kube, tracking, _ = services()
    trainingrun.reconcile(kube.put(BODY), svc)
    status = kube.statuses[-1]
    ready = status["conditions"][0]
    assert (ready["status"], ready["reason"]) == ("False", "DatasetNotFound")
    assert "spec.dataset.uri" in ready["message"]
    assert kube.jobs() == []
    assert tracking.runs == {}


def _created_at(minutes_ago: float, **dataset: str) -> tuple[dict[str, Any], Any]:
    """BODY created ``minutes_ago`` (the API server's creationTimestamp) and the
    services with a clock at now."""
    body = copy.deepcopy(BODY)
    body["metadata"]["creationTimestamp"] = (NOW - dt.timedelta(minutes=minutes_ago)).isoformat()
    body["spec"]["dataset"].update(dataset)
    return body, services()


@pytest.mark.parametrize(
    ("wait_timeout", "minutes", "phase"),
    [
        (None, 9.9, "Pending"),  # the default is ten minutes
        (None, 10, "Failed"),
        ("1h", 59, "Pending"),
        ("30s", 0.5, "Failed"),
        ("0s", 0, "Failed"),
    ],
)
def test_a_missing_dataset_is_waited_for_until_the_wait_timeout(
    wait_timeout: str | None, minutes: float, phase: str
) -> None:
    body, (svc, kube, tracking, _) = _created_at(
        minutes, **({"waitTimeout": wait_timeout} if wait_timeout else {})
    )
    trainingrun.reconcile(kube.put(body), svc)
    status = kube.statuses[-1]
    assert (status["phase"], status["conditions"][0]["reason"]) == (phase, "DatasetNotFound")
    assert kube.jobs() == []
    assert tracking.runs == {}


def test_a_dataset_still_missing_at_the_deadline_fails_the_run_once_with_a_warning() -> None:
    body, (svc, kube, _, _) = _created_at(9)
    now = NOW
    svc.clock = lambda: now
    trainingrun.reconcile(kube.put(body), svc)
    assert kube.statuses[-1]["phase"] == "Pending"
    now = NOW + dt.timedelta(minutes=1)
    trainingrun.forget("uid-1")  # the requeue at the deadline, not the backoff
    trainingrun.reconcile(_with_status(kube), svc)
    status = kube.statuses[-1]
    message = status["conditions"][0]["message"]
    assert status["phase"] == "Failed"
    assert status["failure"]["reason"] == "DatasetNotFound"
    assert "spec.dataset.uri: s3://datasets/churn.csv does not exist 10m after" in message
    assert "spec.dataset.waitTimeout" in message
    assert kube.warnings[-1] == ("DatasetNotFound", message)
    assert [m for _, m in kube.events].count(message) == 1
    assert kube.jobs() == []
    trainingrun.reconcile(_with_status(kube), svc)  # settled: nothing more happens
    assert kube.current(body)["status"] == status


def test_a_restarted_operator_does_not_start_the_wait_over() -> None:
    # No status yet, as if the operator had been down since the run was created:
    # the time already waited counts, from the run's creation.
    body, (svc, kube, _, _) = _created_at(11)
    trainingrun.reconcile(kube.put(body), svc)
    assert kube.statuses[-1]["phase"] == "Failed"


def test_the_run_comes_back_when_its_wait_runs_out_rather_than_after_the_backoff() -> None:
    body, (svc, kube, _, _) = _created_at(0, waitTimeout="3s")
    ended = trainingrun.reconcile(kube.put(body), svc)
    assert ended.requeue_after == 3.0  # sooner than the first backoff step (5 s)


def test_a_dataset_uploaded_while_the_run_waits_is_trained_on() -> None:
    body, (svc, kube, _, storage) = _created_at(5)
    trainingrun.reconcile(kube.put(body), svc)
    storage.objects["s3://datasets/churn.csv"] = "etag-1"
    trainingrun.forget("uid-1")
    trainingrun.reconcile(_with_status(kube), svc)
    assert kube.statuses[-1]["dataset"]["etag"] == "etag-1"
    assert len(kube.jobs()) == 1


def test_tracking_outage_waits_then_converges() -> None:
    svc, kube, tracking, storage = services()
    storage.objects["s3://datasets/churn.csv"] = "etag-1"
    tracking.down = True
    trainingrun.reconcile(kube.put(BODY), svc)
    assert kube.statuses[-1]["conditions"][0]["reason"] == "TrackingServerUnavailable"
    assert kube.jobs() == []
    tracking.down = False
    trainingrun.forget("uid-1")  # skip the backoff delay
    trainingrun.reconcile(_with_status(kube), svc)
    assert len(kube.jobs()) == 1
    assert len(tracking.runs) == 1


def test_failure_is_reported_with_an_event() -> None:
    svc, kube, tracking, storage = services()
    storage.objects["s3://datasets/churn.csv"] = "etag-1"
    trainingrun.reconcile(kube.put(BODY), svc)
    _finish_job(kube, "Failed")
    trainingrun.reconcile(_with_status(kube), svc)
    status = kube.statuses[-1]
    assert status["phase"] == "Failed"
    assert status["failure"]["reason"] == "BackoffLimitExceeded"
    assert tracking.runs["run1"]["status"] == "FAILED"
    assert "modelVersion" not in status
    assert any(reason == "Failed" for reason, _ in kube.events)


def test_invalid_object_fails_with_the_field_named() -> None:
    svc, kube, _, _ = services()
    body = copy.deepcopy(BODY)
    body["spec"]["workers"] = 0
    trainingrun.reconcile(kube.put(body), svc)
    status = kube.statuses[-1]
    assert status["phase"] == "Failed"
    assert "spec.workers" in status["conditions"][0]["message"]


def test_outage_when_the_job_ends_is_waited_out_and_the_metrics_recorded() -> None:
    svc, kube, tracking, storage = services()
    storage.objects["s3://datasets/churn.csv"] = "etag-1"
    trainingrun.reconcile(kube.put(BODY), svc)
    tracking.runs["run1"]["metrics"] = {"accuracy": 0.91}
    _finish_job(kube)
    tracking.down = True
    trainingrun.reconcile(_with_status(kube), svc)
    status = kube.statuses[-1]
    assert status["phase"] == "Succeeded"
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "TrackingServerUnavailable"
    assert "training succeeded" in ready["message"]
    assert not status.get("metrics")
    tracking.down = False
    trainingrun.forget("uid-1")
    trainingrun.reconcile(_with_status(kube), svc)
    status = kube.statuses[-1]
    assert status["metrics"] == {"accuracy": 0.91}
    assert tracking.runs["run1"]["status"] == "FINISHED"
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "Registered")


def test_pods_refused_at_admission_are_named_instead_of_waiting_silently() -> None:
    svc, kube, _, storage = services()
    storage.objects["s3://datasets/churn.csv"] = "etag-1"
    ended = trainingrun.reconcile(kube.put(BODY), svc)
    job = kube.jobs()[0]["metadata"]
    assert ended.requeue_after is not None  # no pod yet: it looks again by itself
    kube.cluster_events.append(
        {
            "involvedObject": {"kind": "Job", "name": job["name"], "namespace": "ml"},
            "reason": "FailedCreate",
            "message": 'Error creating: pods "x" is forbidden: violates PodSecurity '
            '"restricted:latest": runAsNonRoot != true',
            "lastTimestamp": "2026-11-22T10:00:05Z",
        }
    )
    trainingrun.reconcile(_with_status(kube), svc)
    ready = kube.statuses[-1]["conditions"][0]
    assert (ready["status"], ready["reason"]) == ("False", "PodsRejected")
    assert "violates PodSecurity" in ready["message"]


class Clock:
    """A clock the test moves on."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> dt.datetime:
        return self.now

    def after(self, seconds: float) -> None:
        self.now = NOW + dt.timedelta(seconds=seconds)


def _a_run_with_its_job(clock: Clock) -> tuple[Services, FakeKube, dict[str, Any]]:
    """A run reconciled once at ``clock``'s time, its data there: it has its Job."""
    svc, kube, _, storage = services()
    storage.objects["s3://datasets/churn.csv"] = "etag-1"
    svc.clock = clock
    trainingrun.reconcile(kube.put(BODY), svc)
    return svc, kube, kube.jobs()[0]


def test_a_job_just_created_is_not_searched_for_refusals_until_the_job_controller_tried() -> None:
    clock = Clock()
    svc, kube, job = _a_run_with_its_job(clock)
    job["metadata"]["creationTimestamp"] = NOW.isoformat()
    kube.cluster_events.append(
        {
            "involvedObject": {"kind": "Job", "name": job["metadata"]["name"], "namespace": "ml"},
            "reason": "FailedCreate",
            "message": 'Error creating: pods "x" is forbidden: exceeded quota: team',
            "lastTimestamp": NOW.isoformat(),
        }
    )
    listed: list[str] = []
    events_for = kube.events_for

    def listing(namespace: str, kind: str, name: str) -> list[dict[str, Any]]:
        listed.append(name)
        return events_for(namespace, kind, name)

    kube.events_for = listing  # type: ignore[method-assign]
    clock.after(1)
    ended = trainingrun.reconcile(_with_status(kube), svc)
    assert listed == []
    assert kube.statuses[-1]["conditions"][0]["reason"] == "JobCreated"
    assert ended.requeue_after is not None  # it looks again by itself
    clock.after(10)
    trainingrun.reconcile(_with_status(kube), svc)
    assert listed == [job["metadata"]["name"]]
    ready = kube.statuses[-1]["conditions"][0]
    assert (ready["status"], ready["reason"]) == ("False", "PodsRejected")
    assert "exceeded quota" in ready["message"]


def test_a_pod_waiting_on_a_missing_secret_is_named_instead_of_running() -> None:
    clock = Clock()
    svc, kube, job = _a_run_with_its_job(clock)
    job["status"] = {"active": 1, "ready": 0, "startTime": NOW.isoformat()}
    kube.put(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "churn-x-0", "namespace": "ml",
                         "labels": {"job-name": job["metadata"]["name"]}},
            "status": {"phase": "Pending", "containerStatuses": [{"name": "train", "state": {
                "waiting": {"reason": "CreateContainerConfigError",
                            "message": 'secret "s3-creds" not found'}}}]},
        }
    )  # fmt: skip
    ended = trainingrun.reconcile(_with_status(kube), svc)
    assert kube.statuses[-1]["phase"] == "Running"  # a pod gets a moment to start
    assert ended.requeue_after is not None  # and it looks again by itself
    clock.after(10)
    trainingrun.reconcile(_with_status(kube), svc)
    status = kube.statuses[-1]
    ready = status["conditions"][0]
    assert (status["phase"], ready["status"], ready["reason"]) == (
        "Pending", "False", "PodsNotStarting"
    )  # fmt: skip
    assert 'secret "s3-creds" not found' in ready["message"]
    assert "spec.s3CredentialsSecret" in ready["message"]


def test_a_run_in_a_kueue_queue_waits_for_kueue_and_is_never_resumed_by_the_operator() -> None:
    svc, kube, _, storage = services()
    storage.objects["s3://datasets/churn.csv"] = "etag-1"
    body = copy.deepcopy(BODY)
    body["spec"]["podTemplate"] = {"metadata": {"labels": {"kueue.x-k8s.io/queue-name": "team-a"}}}
    trainingrun.reconcile(kube.put(body), svc)
    job = kube.jobs()[0]
    assert job["spec"]["suspend"] is True
    assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team-a"
    trainingrun.reconcile(_with_status(kube), svc)
    assert kube.jobs()[0]["spec"]["suspend"] is True  # still Kueue's to resume
    ready = kube.statuses[-1]["conditions"][0]
    assert (kube.statuses[-1]["phase"], ready["reason"]) == ("Pending", "Queued")
    assert ready["message"] == "waiting for Kueue to admit the Job from queue team-a"
    admitted = kube.jobs()[0]
    admitted["spec"]["suspend"] = False  # Kueue admits it
    admitted["status"] = {"active": 1, "ready": 1, "startTime": "2026-11-22T10:01:00Z"}
    trainingrun.reconcile(_with_status(kube), svc)
    assert kube.statuses[-1]["phase"] == "Running"
    assert kube.jobs()[0]["spec"]["suspend"] is False


def test_a_suspended_run_outside_a_queue_is_resumed_by_the_operator() -> None:
    svc, kube, _, storage = services()
    storage.objects["s3://datasets/churn.csv"] = "etag-1"
    body = copy.deepcopy(BODY)
    body["spec"]["suspend"] = True
    trainingrun.reconcile(kube.put(body), svc)
    assert kube.jobs()[0]["spec"]["suspend"] is True
    assert kube.statuses[-1]["conditions"][0]["reason"] == "Suspended"
    resumed = kube.current(body)
    resumed["spec"]["suspend"] = False
    trainingrun.reconcile(kube.put(resumed), svc)
    assert kube.jobs()[0]["spec"]["suspend"] is False


class Reads:
    """Counts the reads of each kind the reconciler makes through ``kube``."""

    def __init__(self, kube: FakeKube) -> None:
        self.kinds: list[str] = []
        read = kube.get

        def get(api_version: str, kind: str, namespace: str, name: str) -> Any:
            self.kinds.append(kind)
            return read(api_version, kind, namespace, name)

        kube.get = get  # type: ignore[method-assign]


def _job_event(kube: FakeKube, svc: Any) -> Any:
    job = kube.jobs()[0]
    return trainingrun.job_changed(("ml", "churn", "uid-1"), job, False, svc)


def test_a_job_event_is_decided_from_the_job_it_carries_and_once_per_change() -> None:
    svc, kube, tracking, storage = services()
    storage.objects["s3://datasets/churn.csv"] = "etag-1"
    trainingrun.reconcile(kube.put(BODY), svc)
    reads = Reads(kube)
    kube.jobs()[0]["status"] = {"active": 1, "ready": 0, "startTime": "2026-11-22T10:00:00Z"}
    assert _job_event(kube, svc) is not None
    # Nothing read: the Job came with the event, the run is as the operator wrote it.
    assert reads.kinds == []
    assert kube.statuses[-1]["conditions"][0]["reason"] == "Running"
    writes = len(kube.statuses)
    # The Job controller writes again, changing nothing the run shows.
    kube.jobs()[0]["status"]["uncountedTerminatedPods"] = {}
    assert _job_event(kube, svc) is None
    assert reads.kinds == []
    assert len(kube.statuses) == writes
    tracking.runs["run1"]["metrics"] = {"accuracy": 0.91}
    _finish_job(kube)
    assert _job_event(kube, svc) is not None
    assert kube.statuses[-1]["phase"] == "Succeeded"
    assert len(trainingrun.jobs_acted_on) == 0  # nothing kept for a finished run


def test_a_job_event_that_found_its_run_busy_is_not_taken_as_handled() -> None:
    svc, kube, _, storage = services()
    storage.objects["s3://datasets/churn.csv"] = "etag-1"
    trainingrun.reconcile(kube.put(BODY), svc)
    kube.jobs()[0]["status"] = {"active": 1, "startTime": "2026-11-22T10:00:00Z"}
    with trainingrun.driver.locks("uid-1"):  # another worker is reconciling the run
        assert _job_event(kube, svc).result == Result.SKIPPED
    assert _job_event(kube, svc).result == Result.OK
    assert kube.statuses[-1]["conditions"][0]["reason"] == "Running"


def test_a_distributed_run_gets_one_rendezvous_service_and_an_indexed_job() -> None:
    svc, kube, _, storage = services()
    storage.objects["s3://datasets/churn.csv"] = "etag-1"
    body = copy.deepcopy(BODY)
    body["spec"]["workers"] = 2
    trainingrun.reconcile(kube.put(body), svc)
    (job,) = kube.jobs()
    assert job["spec"]["completionMode"] == "Indexed"
    services_made = [o for (kind, _, _), o in kube.objects.items() if kind == "Service"]
    assert [s["spec"]["clusterIP"] for s in services_made] == ["None"]
    # A crash before the status write: nothing is made twice.
    trainingrun.reconcile(kube.put(body), svc)
    assert len(kube.jobs()) == 1
    assert len([k for k in kube.objects if k[0] == "Service"]) == 1
