"""The ModelVersion a successful TrainingRun registers."""

from __future__ import annotations

import pytest

from tests.unit.factories import OWNER, training_spec
from trailboss.api.modelversion import ModelVersion
from trailboss.api.trainingrun import DatasetPin, MlflowRunStatus, TrainingRunStatus
from trailboss.builders.registration import build_model_version


def _status() -> TrainingRunStatus:
    return TrainingRunStatus(
        mlflow=MlflowRunStatus(run_id="r1", experiment_id="1"),
        dataset=DatasetPin(uri="s3://datasets/churn.csv", etag="e7a1"),
        metrics={"accuracy": 0.93},
    )


def test_model_version_carries_artifact_metrics_lineage_and_gate() -> None:
    spec = training_spec(
        dataset={"uri": "s3://datasets/churn.csv"},
        register={"artifactPath": "model", "validation": {"minimums": {"accuracy": 0.9}}},
    )
    manifest = build_model_version(OWNER, spec, _status())
    assert manifest["metadata"]["name"] == OWNER.name
    assert "ownerReferences" not in manifest["metadata"]  # outlives the run
    assert manifest["metadata"]["labels"]["trailboss.dev/source-trainingrun"] == OWNER.name
    mv = ModelVersion.model_validate(manifest)  # valid against the API
    assert mv.spec.artifact_uri == "runs:/r1/model"
    assert mv.spec.metrics == {"accuracy": 0.93}
    assert mv.spec.source is not None
    assert mv.spec.source.dataset == "s3://datasets/churn.csv@etag:e7a1"
    assert mv.spec.source.image == "trainer:1"
    assert mv.spec.reference_data == "s3://datasets/churn.csv"
    assert mv.spec.validation is not None
    assert mv.spec.validation.minimums == {"accuracy": 0.9}


def test_registration_needs_a_tracked_run() -> None:
    spec = training_spec(register={})
    with pytest.raises(ValueError, match="MLflow run"):
        build_model_version(OWNER, spec, TrainingRunStatus())


def test_only_metrics_a_model_version_admits_are_copied() -> None:
    from trailboss.builders.registration import registrable_metrics

    metrics = {"accuracy": 0.9, "épsilon": 1.0, "loss": float("nan")}
    metrics.update({f"m{i:03d}": float(i) for i in range(200)})
    kept = registrable_metrics(metrics)
    assert len(kept) == 128
    assert kept["accuracy"] == 0.9
    assert "épsilon" not in kept
    assert "loss" not in kept
