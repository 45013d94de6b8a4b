"""ModelVersion: one trained model artifact, verified in S3, registered in the
MLflow model registry and gated on its metrics."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import Field

from trailboss.api.common import (
    AGE_COLUMN,
    MAX_MAP,
    MAX_NAME,
    READY_COLUMN,
    ApiModel,
    CommonStatus,
    KindInfo,
    ModelName,
    PrinterColumn,
    Resource,
    S3Uri,
    ValidationGate,
)

RELEASE_FINALIZER_ANNOTATION = "trailboss.dev/release-finalizer"
"""Set to `"true"` to let a ModelVersion be deleted while its registry is
unreachable; the registry entry is then left as it is."""


class ModelPhase(StrEnum):
    PENDING = "Pending"
    REGISTERED = "Registered"
    VALIDATED = "Validated"
    REJECTED = "Rejected"
    FAILED = "Failed"


class ModelReason(StrEnum):
    """Reasons on the ModelVersion's conditions and events."""

    ARTIFACT_NOT_FOUND = "ArtifactNotFound"
    ARTIFACT_VERIFIED = "ArtifactVerified"
    REGISTRY_UNAVAILABLE = "RegistryUnavailable"
    REGISTERING = "Registering"
    REGISTERED = "Registered"
    REGISTRATION_FAILED = "RegistrationFailed"
    VALIDATED = "Validated"
    GATE_FAILED = "ValidationFailed"
    METRIC_MISSING = "MetricMissing"


class DeletionPolicy(StrEnum):
    RETAIN = "Retain"
    DELETE = "Delete"


class ModelSource(ApiModel):
    """Where the model came from (lineage), recorded as registry tags."""

    training_run: Annotated[str, Field(max_length=MAX_NAME)] | None = None
    """The TrainingRun that produced it, when one did."""
    mlflow_run_id: Annotated[str, Field(max_length=64)] | None = None
    """The MLflow run that logged it; also where metrics are read from."""
    image: Annotated[str, Field(max_length=1024)] | None = None
    """Training image."""
    dataset: Annotated[str, Field(max_length=2048)] | None = None
    """The pinned training data, e.g. `s3://datasets/churn.csv@etag:…`."""


class ModelVersionSpec(ApiModel):
    """A model artifact to register. Immutable: a new model is a new ModelVersion."""

    model: ModelName
    """Registered model name in MLflow."""
    artifact_uri: Annotated[str, Field(pattern=r"^(s3://|runs:/).+", max_length=2048)]
    """The MLflow model directory: `s3://bucket/path/model` or
    `runs:/<run-id>/<artifact-path>`. It must contain an `MLmodel` file."""
    flavor: Annotated[str, Field(max_length=64)] = "python_function"
    """MLflow flavor the model is loaded with."""
    source: ModelSource | None = None
    """Lineage: the run, image and data that produced the model."""
    metrics: Annotated[dict[str, float], Field(max_length=MAX_MAP)] = {}
    """Metrics of the model. When empty, they are read from the MLflow run."""
    reference_data: S3Uri | None = None
    """Data drift is measured against, e.g. the training or validation set."""
    validation: ValidationGate | None = None
    """Metric bounds to pass before the version is Validated."""
    deletion_policy: DeletionPolicy = DeletionPolicy.RETAIN
    """Retain keeps the registry version (tagged as deleted in Kubernetes);
    Delete removes it from the registry."""


class ArtifactStatus(ApiModel):
    """The artifact as verified in S3."""

    uri: str | None = None
    """The S3 location the artifact resolved to."""
    size_bytes: int | None = None
    """Total size of the model directory."""
    objects: int | None = None
    """Number of files in the model directory."""
    digest: str | None = None
    """`sha256:` over every file's key, size and ETag."""
    verified_at: dt.datetime | None = None
    """When the artifact was checked."""


class MetricCheck(ApiModel):
    """One bound of the validation gate and how the model fared."""

    metric: str
    """Metric name."""
    bound: str
    """`min` or `max`."""
    threshold: float
    """The bound from the gate."""
    value: float | None = None
    """The model's value; empty when the metric is missing."""
    passed: bool
    """Whether the bound holds."""


class ValidationStatus(ApiModel):
    """Result of the validation gate."""

    passed: bool | None = None
    """Whether every bound holds."""
    message: str | None = None
    """Summary naming each failing metric, its value and bound."""
    checks: list[MetricCheck] = []
    """One entry per bound."""


class ModelVersionStatus(CommonStatus):
    """Observed state of a ModelVersion."""

    phase: ModelPhase | None = None
    """Pending, Registered, Validated, Rejected or Failed."""
    registered_model: str | None = None
    """Registered model name in MLflow."""
    registry_version: str | None = None
    """Version number in the MLflow registry."""
    model_uri: str | None = None
    """`models:/<name>/<version>`, the URI to load the model with."""
    artifact: ArtifactStatus | None = None
    """The verified artifact."""
    metrics: dict[str, float] = {}
    """Metrics the gate was evaluated on."""
    validation: ValidationStatus | None = None
    """Result of the validation gate."""
    reference_profile: str | None = None
    """Location of the reference data profile used for drift."""


class ModelVersion(Resource):
    """A version of a model, registered in MLflow."""

    info: ClassVar[KindInfo] = KindInfo(
        kind="ModelVersion",
        plural="modelversions",
        short_names=("mver",),
        spec_rules=(
            {
                "rule": "self == oldSelf",
                "message": "a ModelVersion's spec is immutable: create a new ModelVersion "
                "for a new artifact or gate",
            },
        ),
        columns=(
            PrinterColumn("Model", ".spec.model"),
            PrinterColumn("Version", ".status.registryVersion"),
            PrinterColumn("Phase", ".status.phase"),
            READY_COLUMN,
            PrinterColumn(
                "Gate", ".status.validation.message", description="Validation gate result"
            ),
            PrinterColumn("Artifact", ".spec.artifactUri", priority=1),
            AGE_COLUMN,
        ),
    )

    kind: str = "ModelVersion"
    spec: ModelVersionSpec
    status: ModelVersionStatus = ModelVersionStatus()
