"""A TrainingRun as its watch delivers it: which events ask for a reconcile, the
latest body the operator keeps (and what a stale one costs), the safety-net
requeue of an unfinished run, and what a deletion does."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.unit.fakes import FakeKube, services
from trailboss.policies import training as policy
from trailboss.reconcilers import trainingrun
from trailboss.reconcilers.driver import Result
from trailboss.reconcilers.latest import LatestBodies
from trailboss.reconcilers.requeue import Requeue

BODY: dict[str, Any] = {
    "apiVersion": "trailboss.dev/v1alpha1",
    "kind": "TrainingRun",
    "metadata": {"name": "churn", "namespace": "ml", "uid": "uid-w", "generation": 1},
    "spec": {"model": "churn", "image": "trainer:1"},
}
RUN = ("ml", "churn", "uid-w")


class Scheduled:
    """A Requeue that only records what was asked of it; a test runs the work."""

    def __init__(self) -> None:
        self.due: dict[str, tuple[float, Any]] = {}

    def schedule(self, key: str, delay: float, work: Any) -> None:
        self.due[key] = (delay, work)

    def cancel(self, key: str) -> None:
        self.due.pop(key, None)


@pytest.fixture(autouse=True)
def _fresh_state() -> Any:
    trainingrun.forget("uid-w")
    yield
    trainingrun.forget("uid-w")
    trainingrun.driver.requeue = None


def _job(kube: FakeKube) -> dict[str, Any]:
    return kube.jobs()[0]


def test_only_a_first_sight_or_a_spec_the_status_does_not_answer_asks_for_a_reconcile() -> None:
    svc, kube, _, _ = services()
    assert trainingrun.watched(kube.put(BODY), True, svc) is not None  # created
    assert len(kube.statuses) == 1
    # The operator's own status write comes back through the watch: nothing to do.
    assert trainingrun.watched(kube.current(BODY), False, svc) is None
    assert len(kube.statuses) == 1
    # A spec edit (the API server bumps the generation) does ask.
    edited = kube.current(BODY)
    edited["metadata"]["generation"] = 2
    edited["spec"]["suspend"] = True
    assert trainingrun.watched(kube.put(edited), False, svc) is not None
    assert kube.statuses[-1]["observedGeneration"] == 2
    # A run being deleted asks for nothing.
    leaving = kube.current(BODY)
    leaving["metadata"] = {**leaving["metadata"], "generation": 3, "deletionTimestamp": "now"}
    assert trainingrun.watched(leaving, False, svc) is None


def test_a_stale_kept_body_costs_a_read_never_a_lost_edit() -> None:
    svc, kube, _, _ = services()
    trainingrun.watched(kube.put(BODY), True, svc)
    # Someone edits the run; the operator has not seen that event yet.
    edited = kube.current(BODY)
    edited["metadata"]["generation"] = 2
    edited["spec"]["suspend"] = True
    kube.put(edited)
    _job(kube)["status"] = {"active": 1, "startTime": "2026-11-22T10:00:00Z"}
    ended = trainingrun.job_changed(RUN, copy.deepcopy(_job(kube)), False, svc)
    assert ended is not None
    assert ended.result == Result.OK
    # The write from the kept body conflicted; the run was read and the edit answered.
    assert kube.current(BODY)["status"]["observedGeneration"] == 2
    assert _job(kube)["spec"]["suspend"] is True


def test_an_unfinished_run_is_looked_at_again_within_the_resync_and_a_finished_one_is_not() -> None:
    svc, kube, tracking, _ = services()
    ended = trainingrun.watched(kube.put(BODY), True, svc)
    assert ended is not None
    assert ended.requeue_after is not None
    assert ended.requeue_after <= trainingrun.RESYNC_SECONDS
    assert trainingrun.driver.latest is not None
    assert trainingrun.driver.latest.get("uid-w")
    _job(kube)["status"] = {
        "succeeded": 1,
        "startTime": "2026-11-22T10:00:00Z",
        "completionTime": "2026-11-22T10:04:00Z",
        "conditions": [{"type": "Complete", "status": "True"}],
    }
    ended = trainingrun.job_changed(RUN, copy.deepcopy(_job(kube)), False, svc)
    assert ended is not None
    assert kube.statuses[-1]["phase"] == "Succeeded"
    assert ended.requeue_after is None
    assert tracking.runs["run1"]["status"] == "FINISHED"
    # Nothing of a finished run is kept.
    assert trainingrun.driver.latest.get("uid-w") is None


def test_a_failed_status_write_is_tried_again_by_the_operator_itself() -> None:
    svc, kube, _, _ = services()

    def unreachable(*_: Any, **__: Any) -> Any:
        raise ConnectionError("the API server is restarting")

    write = kube.patch_status
    kube.patch_status = unreachable  # type: ignore[method-assign]
    ended = trainingrun.watched(kube.put(BODY), True, svc)
    assert ended is not None
    assert ended.result == Result.ERROR
    assert ended.requeue_after is not None
    assert ended.requeue_after > 0
    kube.patch_status = write  # type: ignore[method-assign]
    ended = trainingrun.reconcile_latest("ml", "churn", "uid-w", svc)
    assert ended.result == Result.OK
    assert len(kube.jobs()) == 1  # the Job of the first try, not a second one
    assert kube.current(BODY)["status"]["phase"] == "Pending"


def test_deleting_an_unfinished_run_kills_its_mlflow_run_even_after_an_outage() -> None:
    svc, kube, tracking, _ = services()
    requeue = Scheduled()
    trainingrun.driver.requeue = requeue  # type: ignore[assignment]
    trainingrun.watched(kube.put(BODY), True, svc)
    gone = kube.current(BODY)
    tracking.down = True
    trainingrun.deleted(gone, svc)
    assert tracking.runs["run1"]["status"] == "RUNNING"
    # The Job goes next, by garbage collection: the retry stays due.
    trainingrun.job_changed(RUN, _job(kube), True, svc)
    ((delay, retry),) = (requeue.due[k] for k in requeue.due if k.endswith("/kill"))
    assert delay > 0
    tracking.down = False
    retry()
    assert tracking.runs["run1"]["status"] == "KILLED"


def test_deleting_a_finished_run_leaves_its_mlflow_run_as_it_ended() -> None:
    svc, kube, tracking, _ = services()
    trainingrun.watched(kube.put(BODY), True, svc)
    done = kube.current(BODY)
    done["status"]["phase"] = "Succeeded"
    tracking.runs["run1"]["status"] = "FINISHED"
    trainingrun.deleted(done, svc)
    assert tracking.runs["run1"]["status"] == "FINISHED"


def test_the_real_requeue_accepts_the_kill_retry_key() -> None:
    requeue = Requeue(workers=1)
    requeue.schedule("uid-w/kill", 3600, lambda: None)
    requeue.cancel("uid-w")
    requeue.cancel("uid-w/kill")


def _at(version: str, phase: str | None = None) -> dict[str, Any]:
    body = copy.deepcopy(BODY)
    body["metadata"]["resourceVersion"] = version
    if phase is not None:
        body["status"] = {"phase": phase}
    return body


def test_a_late_watch_event_never_replaces_a_newer_kept_body() -> None:
    latest = LatestBodies(keep=policy.unfinished)
    latest.offer(_at("12", "Running"))  # the operator's own write, answered at once
    latest.offer(_at("11", "Pending"))  # the watch event of the state before it
    held = latest.get("uid-w")
    assert held is not None
    assert held["metadata"]["resourceVersion"] == "12"
    latest.offer(_at("not-a-number"))  # an API server whose versions are not etcd's
    assert latest.get("uid-w") == _at("not-a-number")
    latest.offer(_at("13", "Succeeded"))  # finished: nothing is kept
    assert latest.get("uid-w") is None
    assert len(latest) == 0
