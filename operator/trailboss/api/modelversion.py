"""ModelVersion: one trained model artifact, verified in S3, registered in the
MLflow model registry and gated on its metrics."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import AfterValidator, Field

from trailboss.api.common import (
    AGE_COLUMN,
    READY_COLUMN,
    ApiModel,
    CommonStatus,
    KindInfo,
    ModelName,
    Name,
    PrinterColumn,
    Resource,
    S3Uri,
    ValidationGate,
)
from trailboss.api.constraints import ObjectNameRule, finite
from trailboss.api.fields import ArtifactUri, Flavor, Image, MetricName, RunId

RELEASE_FINALIZER_ANNOTATION = "trailboss.dev/release-finalizer"
"""Set to `"true"` to let a ModelVersion be deleted while its registry is
unreachable, or while a Deployment still serves it; the registry entry is then
left as it is, and the running model servers keep the artifact they loaded."""


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
    IN_USE = "InUse"
    REGISTERING = "Registering"
    REGISTERED = "Registered"
    REGISTRATION_FAILED = "RegistrationFailed"
    VALIDATED = "Validated"
    GATE_FAILED = "ValidationFailed"
    METRIC_MISSING = "MetricMissing"
    PROFILE_BUILDING = "ProfileBuilding"
    PROFILE_READY = "ProfileReady"
    PROFILE_FAILED = "ProfileFailed"
    PROFILE_RETRYING = "ProfileRetrying"
    NO_REFERENCE_DATA = "NoReferenceData"


REFERENCE_PROFILE_READY = "ReferenceProfileReady"
"""Condition: the reference profile drift checks need is built (True), being
built or impossible (False, with the reason)."""


class DeletionPolicy(StrEnum):
    RETAIN = "Retain"
    DELETE = "Delete"


class ModelSource(ApiModel):
    """Where the model came from (lineage), recorded as registry tags."""

    training_run: Name | None = None
    """The TrainingRun that produced it, when one did."""
    mlflow_run_id: RunId | None = None
    """The MLflow run that logged it; also where metrics are read from."""
    image: Image | None = None
    """Training image."""
    dataset: Annotated[str, Field(max_length=1280)] | None = None
    """The pinned training data, e.g. `s3://datasets/churn.csv@etag:…`."""


class ModelVersionSpec(ApiModel):
    """A model artifact to register. Immutable: a new model is a new ModelVersion."""

    model: ModelName
    """Registered model name in MLflow."""
    artifact_uri: ArtifactUri
    """The MLflow model directory: `s3://bucket/path/model` or
    `runs:/<run-id>/<artifact-path>`. It must contain an `MLmodel` file."""
    flavor: Flavor = "python_function"
    """MLflow flavor the model is loaded with."""
    source: ModelSource | None = None
    """Lineage: the run, image and data that produced the model."""
    metrics: Annotated[
        dict[MetricName, Annotated[float, AfterValidator(finite)]], Field(max_length=128)
    ] = {}
    """Metrics of the model. When empty, they are read from the MLflow run."""
    reference_data: S3Uri | None = None
    """Data drift is measured against, e.g. the training or validation set (CSV
    or Parquet). Empty uses the training data in spec.source.dataset, at the
    version pinned there: if that object has changed since, the profile Job
    fails and says so. Once the version is Validated, a Job profiles it into
    status.referenceProfile."""
    validation: ValidationGate | None = None
    """Metric bounds to pass before the version is Validated."""
    deletion_policy: DeletionPolicy = DeletionPolicy.RETAIN
    """Retain keeps the registry version (tagged as deleted in Kubernetes);
    Delete removes it from the registry. Either way, deleting the ModelVersion
    waits while a Deployment serves it (stable, canary, or pods still retiring),
    so new serving pods of it always find its artifact; the Ready condition says
    which Deployment (reason InUse)."""


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


class ReferenceProfileStatus(ApiModel):
    """The compact summary of the reference data that drift checks read,
    built once per ModelVersion and stored next to the model in S3."""

    location: str | None = None
    """`s3://` prefix of the profile (`profile.json` and `sample.parquet`)."""
    rows: int | None = None
    """Rows of the reference data."""
    features: int | None = None
    """Columns profiled, predictions included."""
    digest: str | None = None
    """`sha256:` of the profile's files."""
    source: str | None = None
    """The reference data it was built from."""
    created_at: dt.datetime | None = None
    """When the profile was built."""


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
    reference_profile: ReferenceProfileStatus | None = None
    """The reference profile drift checks compare with."""
    profile_attempts: int | None = None
    """Reference profile Jobs started so far; each attempt has its own Job, named
    after this count."""
    profile_retry_at: dt.datetime | None = None
    """When the reference profile is tried again after a failed attempt."""


class ModelVersion(Resource):
    """A version of a model, registered in MLflow."""

    info: ClassVar[KindInfo] = KindInfo(
        kind="ModelVersion",
        plural="modelversions",
        short_names=("mver",),
        name_rule=ObjectNameRule(
            63, "it becomes a label value and is how Deployments pin a version"
        ),
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
