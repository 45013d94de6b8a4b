"""The ModelVersion a successful TrainingRun registers. Pure.

It is named after the run and labelled with it, but not owned by it: the model
must outlive the run's Job TTL and a clean-up of old TrainingRuns.
"""

from __future__ import annotations

import math
import re
from typing import Any

from trailboss.api.common import API_VERSION
from trailboss.api.trainingrun import DatasetPin, TrainingRunSpec, TrainingRunStatus
from trailboss.builders.labels import (
    MODEL_LABEL,
    SOURCE_RUN_LABEL,
    SOURCE_RUN_UID_LABEL,
    label_value,
    standard,
)
from trailboss.builders.training import Owner


def model_version_name(owner: Owner) -> str:
    return owner.name


def dataset_lineage(pin: DatasetPin | None) -> str | None:
    """``s3://bucket/key@etag:…`` — the URI plus the exact version trained on."""
    if pin is None:
        return None
    if pin.version_id:
        return f"{pin.uri}@version:{pin.version_id}"
    if pin.etag:
        return f"{pin.uri}@etag:{pin.etag}"
    return f"{pin.uri}@{pin.digest}" if pin.digest else pin.uri


def _source(
    owner: Owner, spec: TrainingRunSpec, status: TrainingRunStatus, run_id: str
) -> dict[str, str]:
    lineage = {
        "trainingRun": owner.name,
        "mlflowRunId": run_id,
        "image": spec.image,
        "dataset": dataset_lineage(status.dataset),
    }
    return {k: v for k, v in lineage.items() if v}


_METRIC_NAME = re.compile(r"[A-Za-z0-9_./: -]{1,128}")  # as api.fields.MetricName
MAX_METRICS = 128
"""What a ModelVersion's spec admits (and so its registry entry records)."""


def registrable_metrics(metrics: dict[str, float]) -> dict[str, float]:
    """The run's metrics a ModelVersion may carry: finite values with MLflow-style
    ASCII names, at most 128 (by name). The MLflow run keeps them all."""
    kept = {
        name: value
        for name, value in sorted(metrics.items())
        if _METRIC_NAME.fullmatch(name) and math.isfinite(value)
    }
    return dict(list(kept.items())[:MAX_METRICS])


def build_model_version(
    owner: Owner, spec: TrainingRunSpec, status: TrainingRunStatus
) -> dict[str, Any]:
    registration = spec.registration
    if registration is None or status.mlflow is None or not status.mlflow.run_id:
        raise ValueError("registration needs spec.register and a tracked MLflow run")
    run_id = status.mlflow.run_id
    reference = registration.reference_data
    if reference is None and spec.dataset and not spec.dataset.uri.endswith("/"):
        reference = spec.dataset.uri
    mv_spec: dict[str, Any] = {
        "model": spec.model,
        "artifactUri": f"runs:/{run_id}/{registration.artifact_path}",
        "flavor": registration.flavor,
        "source": _source(owner, spec, status, run_id),
        "metrics": registrable_metrics(status.metrics),
        "deletionPolicy": registration.deletion_policy,
    }
    if registration.validation:
        mv_spec["validation"] = registration.validation.to_json()
    if reference:
        mv_spec["referenceData"] = reference
    name = model_version_name(owner)
    return {
        "apiVersion": API_VERSION,
        "kind": "ModelVersion",
        "metadata": {
            "name": name,
            "namespace": owner.namespace,
            "labels": {
                **registration.labels,  # the operator's own labels below win
                **standard("trailboss-model", "model", label_value(name)),
                MODEL_LABEL: label_value(spec.model),
                SOURCE_RUN_LABEL: label_value(owner.name),
                SOURCE_RUN_UID_LABEL: owner.uid,
            },
        },
        "spec": mv_spec,
    }
