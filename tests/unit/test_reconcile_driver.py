"""The shared reconcile driver, seen through the TrainingRun and ModelVersion
reconcilers: what a user would notice in status, events and metrics."""

from __future__ import annotations

import copy
import threading
from typing import Any

import pytest
from prometheus_client import REGISTRY

from tests.unit.fakes import FakeKube, services
from trailboss.api.trainingrun import TrainingRun
from trailboss.reconcilers import modelversion, trainingrun
from trailboss.reconcilers.driver import Driver, Result
from trailboss.reconcilers.outcomes import Outcome
from trailboss.reconcilers.turn import Turn

RUN: dict[str, Any] = {
    "apiVersion": "trailboss.dev/v1alpha1",
    "kind": "TrainingRun",
    "metadata": {"name": "churn", "namespace": "ml", "uid": "uid-1", "generation": 1},
    "spec": {
        "model": "churn",
        "image": "trainer:1",
        "register": {"validation": {"minimums": {"accuracy": 0.8}}},
    },
}


@pytest.fixture(autouse=True)
def _fresh_state() -> None:
    for uid in ("uid-1", "uid-2"):
        trainingrun.forget(uid)


def _metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _complete(kube: FakeKube) -> None:
    for job in kube.jobs():
        job["status"] = {
            "succeeded": 1,
            "startTime": "2026-11-22T10:00:00Z",
            "completionTime": "2026-11-22T10:01:00Z",
            "conditions": [{"type": "Complete", "status": "True"}],
        }


def test_a_stale_view_neither_counts_nor_announces_a_success_twice() -> None:
    svc, kube, _, _ = services()
    trainingrun.reconcile(kube.put(RUN), svc)
    stale = kube.current(RUN)  # what a timer tick still holds
    _complete(kube)
    labels = {"namespace": "ml", "model": "churn", "outcome": "succeeded"}
    succeeded = _metric("trailboss_trainingruns_total", **labels)
    trainingrun.reconcile(kube.current(RUN), svc)
    assert kube.current(RUN)["status"]["phase"] == "Succeeded"
    trainingrun.reconcile(stale, svc)  # conflicts, re-reads, finds nothing to do
    assert _metric("trailboss_trainingruns_total", **labels) == succeeded + 1
    assert [r for r, _ in kube.events].count("Succeeded") == 1
    assert [r for r, _ in kube.events].count("Registered") == 1


def test_a_removed_status_field_is_removed_on_the_server() -> None:
    class ClearFailure:
        kind, model, failed_phase = "TrainingRun", TrainingRun, "Failed"
        phases: tuple[str, ...] = ("Pending", "Failed")

        def settled(self, obj: TrainingRun) -> bool:
            return False

        def advance(self, turn: Turn[TrainingRun]) -> None:
            turn.status.failure = None

        def failed(self, turn: Turn[TrainingRun], outcome: Outcome) -> None:
            raise AssertionError(outcome)

    svc, kube, _, _ = services()
    body = copy.deepcopy(RUN)
    body["status"] = {"phase": "Running", "failure": {"reason": "Evicted"}}
    Driver(ClearFailure(), base_delay=1.0).reconcile(kube.put(body), svc)
    assert kube.patches[-1] == {"failure": None}
    assert "failure" not in kube.current(RUN)["status"]


def test_an_object_being_deleted_is_left_alone() -> None:
    svc, kube, tracking, _ = services()
    body = copy.deepcopy(RUN)
    body["metadata"]["deletionTimestamp"] = "2026-11-22T10:00:00Z"
    ended = trainingrun.reconcile(kube.put(body), svc)
    assert ended.result == Result.SKIPPED
    assert (kube.jobs(), tracking.runs, kube.statuses) == ([], {}, [])


def test_a_run_recreated_under_the_same_name_never_takes_over_the_old_model() -> None:
    svc, kube, _, _ = services()
    trainingrun.reconcile(kube.put(RUN), svc)
    _complete(kube)
    trainingrun.reconcile(kube.current(RUN), svc)
    old_artifact = kube.current(_mv())["spec"]["artifactUri"]
    del kube.objects[("TrainingRun", "ml", "churn")]
    again = copy.deepcopy(RUN)
    again["metadata"]["uid"] = "uid-2"  # delete and apply again: same name, new object
    trainingrun.reconcile(kube.put(again), svc)
    _complete(kube)
    trainingrun.reconcile(kube.current(again), svc)
    status = kube.current(again)["status"]
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "ModelVersionNameTaken")
    assert "delete that ModelVersion" in ready["message"]
    assert "modelVersion" not in status
    del kube.objects[("ModelVersion", "ml", "churn")]
    trainingrun.forget("uid-2")
    trainingrun.reconcile(kube.current(again), svc)
    mv = kube.current(_mv())
    assert mv["spec"]["artifactUri"] != old_artifact
    assert mv["spec"]["artifactUri"] == f"runs:/{status['mlflow']['runId']}/model"
    assert kube.current(again)["status"]["modelVersion"] == "churn"


def _mv() -> dict[str, Any]:
    return {"kind": "ModelVersion", "metadata": {"name": "churn", "namespace": "ml"}}


def test_reconcile_results_are_counted_by_what_happened() -> None:
    svc, kube, tracking, _ = services()
    tracking.down = True
    waits = _metric("trailboss_reconcile_total", kind="TrainingRun", result="wait")
    timed = _metric("trailboss_reconcile_duration_seconds_count", kind="TrainingRun")
    ended = trainingrun.reconcile(kube.put(RUN), svc)
    assert ended.result == Result.WAIT
    assert ended.requeue_after == 5.0  # the first backoff step
    assert _metric("trailboss_reconcile_total", kind="TrainingRun", result="wait") == waits + 1
    assert _metric("trailboss_reconcile_duration_seconds_count", kind="TrainingRun") == timed + 1
    skipped = _metric("trailboss_reconcile_total", kind="TrainingRun", result="skipped")
    with trainingrun.driver.locks("uid-1"):  # another worker holds the object
        assert trainingrun.reconcile(kube.current(RUN), svc).result == Result.SKIPPED
    assert _metric("trailboss_reconcile_total", kind="TrainingRun", result="skipped") == (
        skipped + 1
    )
    assert _metric("trailboss_reconcile_duration_seconds_count", kind="TrainingRun") == timed + 1


def test_an_unexpected_error_becomes_a_condition_not_a_crash() -> None:
    svc, kube, _, _ = services()
    body = copy.deepcopy(RUN)
    body["spec"]["dataset"] = {"uri": "s3://datasets/churn.csv"}

    def broken(uri: str, now: object) -> None:
        raise KeyError("ETag")

    svc.storage.pin = broken  # type: ignore[method-assign,assignment]
    ended = trainingrun.reconcile(kube.put(body), svc)
    assert ended.result == Result.ERROR
    ready = kube.current(RUN)["status"]["conditions"][0]
    assert (ready["reason"], ready["message"]) == ("ReconcileError", "KeyError: 'ETag'")


MV: dict[str, Any] = {
    "apiVersion": "trailboss.dev/v1alpha1",
    "kind": "ModelVersion",
    "metadata": {"namespace": "ml", "generation": 1},
    "spec": {"model": "churn", "metrics": {"accuracy": 0.9}},
}


def _version_body(index: int) -> dict[str, Any]:
    body = copy.deepcopy(MV)
    body["metadata"].update(name=f"churn-{index}", uid=f"mv-{index}")
    body["spec"]["artifactUri"] = f"s3://mlflow/churn/{index}/model"
    return body


@pytest.mark.parametrize("attempt", range(20))
def test_concurrent_validations_leave_the_alias_on_the_highest_version(attempt: int) -> None:
    svc, kube, tracking, storage = services()
    bodies = [_version_body(i) for i in range(4)]
    for body in bodies:
        storage.objects[f"{body['spec']['artifactUri']}/MLmodel"] = "e"
        modelversion.forget(body["metadata"]["uid"])
        tracking.ensure_registered_model("churn")
        # Registered in order, validated all at once in any order.
        tracking.create_version(
            "churn",
            body["spec"]["artifactUri"],
            None,
            {"trailboss.dev/uid": body["metadata"]["uid"]},
        )
    start = threading.Barrier(len(bodies))

    def validate(body: dict[str, Any]) -> None:
        start.wait()
        modelversion.reconcile(kube.put(body), svc)

    threads = [threading.Thread(target=validate, args=(b,)) for b in reversed(bodies)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(kube.current(b)["status"]["phase"] == "Validated" for b in bodies)
    assert tracking.aliases[("churn", "validated")] == "4"
