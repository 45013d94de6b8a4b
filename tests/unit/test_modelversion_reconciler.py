"""The ModelVersion reconciler against in-memory fakes: verified, registered once,
gated; deletion honours the policy and never hangs."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.unit.fakes import NOW, FakeKube, FakeStorage, services
from trailboss.clients.protocols import TrackingRejected
from trailboss.reconcilers import modelversion, modelversion_deletion

ARTIFACT = "s3://mlflow/imports/churn/model"
BODY: dict[str, Any] = {
    "apiVersion": "trailboss.dev/v1alpha1",
    "kind": "ModelVersion",
    "metadata": {"name": "churn-v1", "namespace": "ml", "uid": "mv-1", "generation": 1},
    "spec": {
        "model": "churn",
        "artifactUri": ARTIFACT,
        "metrics": {"accuracy": 0.93},
        "validation": {"minimums": {"accuracy": 0.9}},
    },
}


@pytest.fixture(autouse=True)
def _fresh_state() -> None:
    modelversion.forget("mv-1")


def _upload(storage: FakeStorage) -> None:
    storage.objects[f"{ARTIFACT}/MLmodel"] = "e1"
    storage.objects[f"{ARTIFACT}/model.pkl"] = "e2"


def _with_status(kube: FakeKube, body: dict[str, Any] = BODY) -> dict[str, Any]:
    return kube.current(body)


def _ready(kube: FakeKube) -> dict[str, Any]:
    return next(c for c in kube.statuses[-1]["conditions"] if c["type"] == "Ready")


def test_verified_registered_once_and_validated() -> None:
    svc, kube, tracking, storage = services()
    _upload(storage)
    modelversion.reconcile(kube.put(BODY), svc)
    status = kube.statuses[-1]
    assert status["phase"] == "Validated"
    assert status["artifact"]["objects"] == 2
    assert status["artifact"]["digest"].startswith("sha256:")
    assert status["modelUri"] == "models:/churn/1"
    assert status["validation"]["message"] == "accuracy=0.93 >= 0.9"
    assert tracking.aliases[("churn", "validated")] == "1"
    assert tracking.versions["churn"][0].tags["trailboss.dev/validation"] == "passed"
    # Lost status (a crash before it was written): found again by its UID tag.
    modelversion.reconcile(kube.put(BODY), svc)
    assert len(tracking.versions["churn"]) == 1


def test_missing_artifact_waits_then_converges() -> None:
    svc, kube, tracking, storage = services()
    modelversion.reconcile(kube.put(BODY), svc)
    assert (_ready(kube)["reason"], kube.statuses[-1]["phase"]) == ("ArtifactNotFound", "Pending")
    assert "spec.artifactUri" in _ready(kube)["message"]
    assert tracking.versions == {}
    _upload(storage)
    modelversion.forget("mv-1")
    modelversion.reconcile(_with_status(kube), svc)
    assert kube.statuses[-1]["phase"] == "Validated"


def test_failing_gate_rejects_naming_metric_value_and_bound() -> None:
    svc, kube, tracking, storage = services()
    _upload(storage)
    body = copy.deepcopy(BODY)
    body["spec"]["metrics"] = {"accuracy": 0.71}
    modelversion.reconcile(kube.put(body), svc)
    assert kube.statuses[-1]["phase"] == "Rejected"
    assert _ready(kube)["reason"] == "ValidationFailed"
    assert "accuracy=0.71 below minimum 0.9" in _ready(kube)["message"]
    assert ("churn", "validated") not in tracking.aliases


def test_registry_outage_waits_without_registering() -> None:
    svc, kube, tracking, storage = services()
    _upload(storage)
    tracking.down = True
    modelversion.reconcile(kube.put(BODY), svc)
    assert _ready(kube)["reason"] == "RegistryUnavailable"
    tracking.down = False
    modelversion.forget("mv-1")
    modelversion.reconcile(_with_status(kube), svc)
    assert kube.statuses[-1]["phase"] == "Validated"
    assert len(tracking.versions["churn"]) == 1


@pytest.mark.parametrize(("policy", "kept"), [("Retain", True), ("Delete", False)])
def test_deletion_policy(policy: str, kept: bool) -> None:
    svc, kube, tracking, storage = services()
    _upload(storage)
    body = copy.deepcopy(BODY)
    body["spec"]["deletionPolicy"] = policy
    modelversion.reconcile(kube.put(body), svc)
    outcome = modelversion_deletion.finalize(_with_status(kube, body), svc)
    versions = tracking.versions["churn"]
    assert (len(versions) == 1) is kept, outcome
    if kept:
        assert "trailboss.dev/deleted-in-kubernetes" in versions[0].tags


def test_finalizer_reports_an_outage_and_yields_to_the_release_annotation() -> None:
    svc, kube, tracking, storage = services()
    _upload(storage)
    modelversion.reconcile(kube.put(BODY), svc)
    body = _with_status(kube)
    body["metadata"]["deletionTimestamp"] = NOW.isoformat()
    tracking.down = True
    with pytest.raises(
        modelversion_deletion.FinalizerBlocked, match=r"trailboss\.dev/release-finalizer=true"
    ):
        modelversion_deletion.finalize(body, svc)
    body["metadata"]["annotations"] = {"trailboss.dev/release-finalizer": "true"}
    assert "released" in modelversion_deletion.finalize(body, svc)
    body["metadata"]["annotations"] = {}
    body["metadata"]["deletionTimestamp"] = "2026-11-22T09:00:00+00:00"  # an hour before NOW
    assert "released after" in modelversion_deletion.finalize(body, svc)


def test_a_rotated_token_waits_instead_of_failing_an_immutable_object() -> None:
    svc, kube, tracking, storage = services()
    _upload(storage)

    def denied(name: str) -> None:
        raise TrackingRejected("token expired", "UNAUTHENTICATED")

    tracking.ensure_registered_model = denied  # type: ignore[method-assign]
    modelversion.reconcile(kube.put(BODY), svc)
    assert kube.statuses[-1]["phase"] == "Pending"
    assert _ready(kube)["reason"] == "TrackingUnauthorized"


def test_a_run_without_an_s3_artifact_store_fails_once_naming_the_field() -> None:
    svc, kube, tracking, _ = services()
    tracking.runs["abc"] = {
        "id": "abc",
        "uid": "x",
        "status": "FINISHED",
        "metrics": {},
        "params": {},
    }
    tracking.artifact_uri_of_run = lambda run_id: "file:///mlruns/1/abc"  # type: ignore[method-assign]
    body = copy.deepcopy(BODY)
    body["spec"]["artifactUri"] = "runs:/abc/model"
    modelversion.reconcile(kube.put(body), svc)
    assert kube.statuses[-1]["phase"] == "Failed"
    assert "spec.artifactUri" in _ready(kube)["message"]
    writes = len(kube.statuses)
    modelversion.reconcile(kube.current(body), svc)
    assert len(kube.statuses) == writes


def test_a_status_edited_into_nonsense_does_not_hold_the_finalizer() -> None:
    svc, kube, _, storage = services()
    _upload(storage)
    modelversion.reconcile(kube.put(BODY), svc)
    body = _with_status(kube)
    body["status"] = {"phase": 42, "conditions": "not a list", "registryVersion": {"x": 1}}
    outcome = modelversion_deletion.finalize(body, svc)
    assert outcome.startswith("kept churn version 1 in the registry"), outcome


def test_retain_lets_go_when_the_registry_version_was_deleted_by_hand() -> None:
    svc, kube, tracking, storage = services()
    _upload(storage)
    modelversion.reconcile(kube.put(BODY), svc)
    tracking.versions["churn"] = []
    assert "already gone" in modelversion_deletion.finalize(_with_status(kube), svc)
