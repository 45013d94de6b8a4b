"""A TrainingRun's Complete and Failed conditions, as a batch/v1 Job has them:
absent while it runs, one of them True once it ends, so `kubectl wait
--for=condition=Complete` (or `Failed`) works the way CI pipelines use it on Jobs."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.unit.fakes import FakeKube, services
from tests.unit.test_trainingrun_reconciler import BODY
from trailboss.reconcilers import trainingrun


@pytest.fixture(autouse=True)
def _fresh_state() -> None:
    trainingrun.forget("uid-1")


def _conditions(kube: FakeKube) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in kube.current(BODY)["status"]["conditions"]}


def _started() -> tuple[Any, FakeKube]:
    svc, kube, _, storage = services()
    storage.objects["s3://datasets/churn.csv"] = "etag-1"
    trainingrun.reconcile(kube.put(BODY), svc)
    return svc, kube


def _job_ends(kube: FakeKube, condition: str, reason: str) -> None:
    job = kube.jobs()[0]
    job["status"] = {
        "succeeded": int(condition == "Complete"),
        "failed": int(condition == "Failed"),
        "startTime": "2026-11-22T10:00:00Z",
        "completionTime": "2026-11-22T10:04:00Z",
        "conditions": [{"type": condition, "status": "True", "reason": reason}],
    }


def test_a_running_run_has_neither_complete_nor_failed() -> None:
    _, kube = _started()
    conditions = _conditions(kube)
    assert "Complete" not in conditions
    assert "Failed" not in conditions
    assert conditions["Ready"]["status"] == "False"


def test_a_run_that_succeeded_is_complete_and_not_failed() -> None:
    svc, kube = _started()
    _job_ends(kube, "Complete", "CompletionsReached")
    trainingrun.reconcile(kube.current(BODY), svc)
    conditions = _conditions(kube)
    complete = conditions["Complete"]
    assert (complete["status"], complete["reason"]) == ("True", "Succeeded")
    assert complete["message"]
    assert complete["lastTransitionTime"]
    assert complete["observedGeneration"] == 1
    assert "Failed" not in conditions
    assert conditions["Ready"]["status"] == "True"
    assert kube.current(BODY)["status"]["phase"] == "Succeeded"


def test_a_run_whose_job_failed_is_failed_with_the_reason_and_not_complete() -> None:
    svc, kube = _started()
    _job_ends(kube, "Failed", "BackoffLimitExceeded")
    trainingrun.reconcile(kube.current(BODY), svc)
    conditions = _conditions(kube)
    failed = conditions["Failed"]
    assert failed["status"] == "True"
    assert failed["reason"] == conditions["Ready"]["reason"]
    assert failed["message"] == conditions["Ready"]["message"]
    assert "Complete" not in conditions
    assert kube.current(BODY)["status"]["phase"] == "Failed"


def test_a_run_refused_for_its_spec_is_failed() -> None:
    svc, kube, _, _ = services()
    body = copy.deepcopy(BODY)
    body["spec"]["workers"] = 0
    trainingrun.reconcile(kube.put(body), svc)
    failed = _conditions(kube)["Failed"]
    assert failed["status"] == "True"
    assert "spec.workers" in failed["message"]


def test_the_conditions_do_not_move_once_the_run_has_ended() -> None:
    svc, kube = _started()
    _job_ends(kube, "Complete", "CompletionsReached")
    trainingrun.reconcile(kube.current(BODY), svc)
    before = _conditions(kube)["Complete"]
    trainingrun.forget("uid-1")
    trainingrun.reconcile(kube.current(BODY), svc)
    assert _conditions(kube)["Complete"] == before
