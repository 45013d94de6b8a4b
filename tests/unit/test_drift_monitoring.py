"""Drift monitoring against in-memory fakes: a Validated ModelVersion's
reference profile Job, and a Deployment's numbered drift checks whose results
reach status, events and metrics exactly once."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from prometheus_client import REGISTRY

from tests.unit.fakes import NOW, FakeKube, FakeStorage, services
from trailboss import metrics
from trailboss.builders import drift as jobs
from trailboss.reconcilers import deployment, modelversion

NS = "ml"
ARTIFACT = "s3://mlflow/runs/abc/model"
PROFILE = "s3://mlflow/runs/abc/reference-profile/"
LOGS = "s3://predictions/churn/"


def _model_version(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "trailboss.dev/v1alpha1",
        "kind": "ModelVersion",
        "metadata": {"name": "v1", "namespace": NS, "uid": "mv-1", "generation": 1},
        "spec": {
            "model": "churn",
            "artifactUri": ARTIFACT,
            "metrics": {"accuracy": 0.9},
            **spec,
        },
    }


def _upload(storage: FakeStorage) -> None:
    storage.objects[f"{ARTIFACT}/MLmodel"] = "e1"
    storage.objects[f"{ARTIFACT}/model.pkl"] = "e2"


def _finish(kube: FakeKube, name: str, *, failed: bool = False) -> None:
    job = kube.objects[("Job", NS, name)]
    kind = "Failed" if failed else "Complete"
    job["status"] = {
        "conditions": [{"type": kind, "status": "True", "reason": "BackoffLimitExceeded"}]
    }


def _condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == kind)


@pytest.fixture(autouse=True)
def _fresh() -> None:
    modelversion.forget("mv-1")
    deployment.forget("dep-1")


def test_a_validated_version_is_profiled_once_from_its_training_data() -> None:
    svc, kube, _, storage = services()
    _upload(storage)
    body = kube.put(_model_version(source={"dataset": "s3://datasets/churn.csv@etag:abc"}))
    modelversion.reconcile(body, svc)
    (job,) = kube.jobs()
    command = job["spec"]["template"]["spec"]["containers"][0]["command"]
    # The data the model was trained on, at the version its TrainingRun pinned.
    assert command == ["trailboss", "profile", "--reference=s3://datasets/churn.csv@etag:abc",
                       f"--output={PROFILE}"]  # fmt: skip
    assert job["metadata"]["ownerReferences"][0]["uid"] == "mv-1"
    status = kube.current(body)["status"]
    assert status["phase"] == "Validated"
    assert _condition(status, "ReferenceProfileReady")["reason"] == "ProfileBuilding"

    modelversion.reconcile(kube.current(body), svc)  # still running: nothing new
    assert len(kube.jobs()) == 1
    _finish(kube, job["metadata"]["name"])
    storage.documents[PROFILE + "status.json"] = {
        "location": PROFILE, "rows": 5000, "features": 7, "digest": "sha256:1",
        "source": "s3://datasets/churn.csv@etag:abc",
    }  # fmt: skip
    modelversion.reconcile(kube.current(body), svc)
    status = kube.current(body)["status"]
    assert status["referenceProfile"]["rows"] == 5000
    ready = _condition(status, "ReferenceProfileReady")
    assert (ready["status"], ready["reason"]) == ("True", "ProfileReady")
    assert "7 features from 5000 rows" in ready["message"]
    assert modelversion.driver.kind.settled(modelversion.driver.kind.model.model_validate(
        kube.current(body)))  # fmt: skip


def test_a_failed_profile_is_named_and_not_retried_at_once() -> None:
    svc, kube, _, storage = services()
    _upload(storage)
    body = kube.put(_model_version(referenceData="s3://datasets/ref.parquet"))
    modelversion.reconcile(body, svc)
    (job,) = kube.jobs()
    _finish(kube, job["metadata"]["name"], failed=True)
    modelversion.reconcile(kube.current(body), svc)
    status = kube.current(body)["status"]
    condition = _condition(status, "ReferenceProfileReady")
    assert (condition["status"], condition["reason"]) == ("False", "ProfileRetrying")
    assert f"kubectl logs job/{job['metadata']['name']}" in condition["message"]
    assert status["phase"] == "Validated"  # the version still serves; only drift is off
    kube.objects.pop(("Job", NS, job["metadata"]["name"]))  # its TTL ran out
    modelversion.reconcile(kube.current(body), svc)
    assert kube.jobs() == []


def test_a_version_without_reference_data_says_how_to_get_drift_checks() -> None:
    svc, kube, _, storage = services()
    _upload(storage)
    body = kube.put(_model_version())
    modelversion.reconcile(body, svc)
    assert kube.jobs() == []
    condition = _condition(kube.current(body)["status"], "ReferenceProfileReady")
    assert condition["reason"] == "NoReferenceData"
    assert "spec.referenceData" in condition["message"]


def _served(profile: str | None = PROFILE) -> dict[str, Any]:
    status: dict[str, Any] = {
        "phase": "Validated", "registryVersion": "1", "artifact": {"uri": ARTIFACT},
        "conditions": [{"type": "Ready", "status": "True"}],
    }  # fmt: skip
    if profile:
        status["referenceProfile"] = {"location": profile, "rows": 5000}
    return {**_model_version(), "status": status}


class Monitored:
    def __init__(self, profile: str | None = PROFILE) -> None:
        self.svc, self.kube, _, self.storage = services()
        self.now = NOW
        self.svc.clock = lambda: self.now
        self.kube.put(_served(profile))
        self.body = self.kube.put({
            "apiVersion": "trailboss.dev/v1alpha1",
            "kind": "Deployment",
            "metadata": {"name": "churn", "namespace": NS, "uid": "dep-1", "generation": 1},
            "spec": {"model": "churn", "modelVersion": "v1",
                     "monitoring": {"predictionLogs": LOGS, "interval": "5m", "window": "1h"}},
        })  # fmt: skip

    def reconcile(self, after: float = 0.0) -> dict[str, Any]:
        self.now += dt.timedelta(seconds=after)
        deployment.reconcile(self.kube.current(self.body), self.svc)
        status: dict[str, Any] = self.kube.current(self.body)["status"]
        return status

    def checks(self) -> list[str]:
        return sorted(
            j["metadata"]["name"] for j in self.kube.jobs()
            if jobs.DRIFT_CHECK_LABEL in j["metadata"]["labels"]
        )  # fmt: skip

    def result(self, job: str, drifted: bool) -> None:
        feature = {"name": "tenure", "method": "psi", "score": 0.4 if drifted else 0.02,
                   "threshold": 0.1, "drifted": drifted, "rows": 3000}  # fmt: skip
        location = f"{LOGS}drift-results/deployment={NS}.churn/{job}.json"
        self.storage.documents[location] = {"drift": {
            "score": feature["score"], "drifted": drifted, "driftShare": 1.0 if drifted else 0.0,
            "driftedFeatures": int(drifted), "checkedFeatures": 1, "modelVersion": "v1",
            "windowRows": 3000, "features": [feature],
        }}  # fmt: skip


def _gauge(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"namespace": NS, "deployment": "churn", **labels})


def test_a_drift_check_runs_once_per_interval_and_its_result_reaches_status_and_metrics() -> None:
    world = Monitored()
    world.reconcile()
    (first,) = world.checks()
    job = world.kube.objects[("Job", NS, first)]
    command = job["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[:3] == ["trailboss", "drift", f"--profile={PROFILE}"]
    assert f"--output={LOGS}drift-results/deployment={NS}.churn/{first}.json" in command
    world.reconcile(10)  # running: no second Job
    assert world.checks() == [first]

    world.result(first, drifted=True)
    _finish(world.kube, first)
    status = world.reconcile(10)
    assert status["drift"]["checks"] == 1
    assert status["drift"]["features"][0]["name"] == "tenure"
    condition = _condition(status, "DriftMonitoring")
    assert (condition["status"], condition["reason"]) == ("True", "DriftDetected")
    assert "tenure" in condition["message"]
    events = [message for reason, message in world.kube.events if reason == "DriftDetected"]
    assert len(events) == 1
    assert "tenure" in events[0]
    assert _gauge("trailboss_dataset_drift", model_version="v1") == 1
    assert _gauge("trailboss_drift_score", model_version="v1", feature="tenure") == 0.4

    world.reconcile(10)  # the same finished Job seen again: counted once
    assert world.kube.current(world.body)["status"]["drift"]["checks"] == 1
    assert [reason for reason, _ in world.kube.events].count("DriftDetected") == 1
    assert len(world.checks()) == 1  # the next one waits for the interval

    world.reconcile(300)
    second = [name for name in world.checks() if name != first]
    assert len(second) == 1
    world.result(second[0], drifted=False)
    _finish(world.kube, second[0])
    status = world.reconcile(10)
    assert status["drift"]["checks"] == 2
    assert _condition(status, "DriftMonitoring")["reason"] == "NoDrift"
    assert [reason for reason, _ in world.kube.events].count("DriftCleared") == 1
    assert _gauge("trailboss_dataset_drift", model_version="v1") == 0


def test_a_failed_check_is_reported_and_the_next_waits_an_interval() -> None:
    world = Monitored()
    world.reconcile()
    (first,) = world.checks()
    _finish(world.kube, first, failed=True)
    status = world.reconcile(10)
    condition = _condition(status, "DriftMonitoring")
    assert (condition["status"], condition["reason"]) == ("False", "DriftCheckFailed")
    assert f"kubectl logs job/{first}" in condition["message"]
    assert status["drift"]["checks"] == 1
    world.reconcile(60)
    assert world.checks() == [first]
    world.reconcile(300)
    assert len(world.checks()) == 2


def test_no_check_runs_before_the_version_has_a_profile() -> None:
    world = Monitored(profile=None)
    status = world.reconcile()
    assert world.checks() == []
    condition = _condition(status, "DriftMonitoring")
    assert (condition["status"], condition["reason"]) == ("False", "ReferenceProfileMissing")
    assert "ReferenceProfileReady" in condition["message"]


def _duration(outcome: str) -> tuple[float, float]:
    labels = {"outcome": outcome}
    count = _gauge("trailboss_drift_check_duration_seconds_count", **labels) or 0.0
    total = _gauge("trailboss_drift_check_duration_seconds_sum", **labels) or 0.0
    return count, total


def test_how_long_each_check_took_is_observed_once_by_outcome() -> None:
    """From the Job's creation until its result was read: a completed check 40 s
    after its Job was made, a failed one 20 s after; each counted once."""
    world = Monitored()
    completed, failed = _duration("Completed"), _duration("Failed")
    world.reconcile()
    (first,) = world.checks()
    world.kube.objects[("Job", NS, first)]["metadata"]["creationTimestamp"] = (
        world.now.isoformat().replace("+00:00", "Z")
    )
    world.result(first, drifted=False)
    _finish(world.kube, first)
    world.reconcile(40)
    world.reconcile(10)  # the same finished Job seen again
    assert _duration("Completed") == (completed[0] + 1, completed[1] + 40)

    world.reconcile(300)
    (second,) = [name for name in world.checks() if name != first]
    world.kube.objects[("Job", NS, second)]["metadata"]["creationTimestamp"] = (
        world.now.isoformat().replace("+00:00", "Z")
    )
    _finish(world.kube, second, failed=True)
    world.reconcile(20)
    assert _duration("Failed") == (failed[0] + 1, failed[1] + 20)

    metrics.forget_deployment(NS, "churn")  # the Deployment is gone: so are its series
    assert _duration("Completed") == (0.0, 0.0)
