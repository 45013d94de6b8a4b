"""Deployment: serve a model version behind a Service, roll new versions out
progressively with analysis, watch for drift and trigger retraining."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from itertools import pairwise
from typing import Annotated, ClassVar

from pydantic import Field, field_validator, model_validator

from trailboss.api.common import (
    AGE_COLUMN,
    MAX_ITEMS,
    MAX_NAME,
    MAX_STRING,
    READY_COLUMN,
    ApiModel,
    CommonStatus,
    Duration,
    EnvVar,
    KindInfo,
    ModelName,
    Name,
    PrinterColumn,
    Resource,
    ResourceRequirements,
    S3Uri,
)
from trailboss.api.trainingrun import TrainingRunSpec


class DeploymentPhase(StrEnum):
    PROGRESSING = "Progressing"
    HEALTHY = "Healthy"
    DEGRADED = "Degraded"
    ROLLED_BACK = "RolledBack"


class RolloutStrategy(StrEnum):
    CANARY = "Canary"
    REPLACE = "Replace"
    SHADOW = "Shadow"


class TrafficRouterKind(StrEnum):
    REPLICA_RATIO = "ReplicaRatio"
    HTTP_ROUTE = "HTTPRoute"


class DriftMethod(StrEnum):
    AUTO = "auto"
    PSI = "psi"
    KS = "ks"
    JENSEN_SHANNON = "jensen-shannon"
    WASSERSTEIN = "wasserstein"
    CHI_SQUARE = "chi-square"
    Z_TEST = "z-test"


class DriftCorrection(StrEnum):
    """Multiple-testing correction of the p-values that decide a verdict."""

    NONE = "none"
    BONFERRONI = "bonferroni"
    HOLM = "holm"
    BENJAMINI_HOCHBERG = "benjamini-hochberg"


class FeatureType(StrEnum):
    NUMERIC = "numeric"
    CATEGORICAL = "categorical"


class FeatureStatus(StrEnum):
    """Whether a feature could be checked, and if not, why."""

    OK = "Ok"
    INVALID_VALUES = "InvalidValues"
    INSUFFICIENT_DATA = "InsufficientData"
    MISSING_COLUMN = "MissingColumn"
    NOT_IN_REFERENCE = "NotInReference"
    CONSTANT_REFERENCE = "ConstantReference"


class VersionPolicy(ApiModel):
    """Pick the version to serve by rule rather than by name, so Git can hold a
    policy instead of a number."""

    latest: Annotated[str, Field(pattern=r"^(Validated|Registered)$")] = "Validated"
    """Serve the newest ModelVersion of the model in this phase."""
    match_labels: Annotated[
        dict[str, Annotated[str, Field(max_length=63)]], Field(max_length=16)
    ] = {}
    """Only consider ModelVersions with these labels."""


class ServerSpec(ApiModel):
    """The model server. By default Trailboss's own server runs the MLflow
    pyfunc model; with an image, the user's server runs behind the logging sidecar."""

    image: Annotated[str, Field(max_length=1024)] | None = None
    """Your own model server image; empty uses the built-in server."""
    port: Annotated[int, Field(ge=1, le=65535)] = 8080
    """Port the server listens on."""
    args: Annotated[
        list[Annotated[str, Field(max_length=MAX_STRING)]], Field(max_length=MAX_ITEMS)
    ] = []
    """Arguments to the server."""
    env: Annotated[list[EnvVar], Field(max_length=MAX_ITEMS)] = []
    """Extra environment variables for the server."""


class RolloutStep(ApiModel):
    """Send `weight` percent of traffic to the new version, then wait."""

    weight: Annotated[int, Field(ge=0, le=100)]
    """Percent of traffic for the canary, 0 to 100."""
    pause: Duration | None = None
    """How long to hold this step while analysis runs, e.g. `5m`."""


class AnalysisQuery(ApiModel):
    """A PromQL query whose result must stay within bounds."""

    name: Annotated[str, Field(min_length=1, max_length=63)]
    """Name shown in status, e.g. `error-rate`."""
    query: Annotated[str, Field(min_length=1, max_length=MAX_STRING)]
    """PromQL returning one number; `{{version}}` is replaced by the canary version."""
    min: float | None = None
    """Fail when the result is below this."""
    max: float | None = None
    """Fail when the result is above this."""


class AnalysisSpec(ApiModel):
    """Prometheus analysis run during each rollout step."""

    prometheus_url: Annotated[str, Field(pattern=r"^https?://", max_length=1024)]
    """Prometheus base URL, e.g. `http://prometheus.monitoring:9090`."""
    queries: Annotated[list[AnalysisQuery], Field(min_length=1, max_length=16)]
    """Queries evaluated at every interval."""
    interval: Duration = "1m"
    """How often the queries run."""
    failure_limit: Annotated[int, Field(ge=0, le=100)] = 2
    """Failed measurements tolerated before rolling back."""


class RolloutSpec(ApiModel):
    """How a new version replaces the serving one."""

    strategy: RolloutStrategy = RolloutStrategy.CANARY
    """Canary shifts traffic in steps; Replace swaps at once; Shadow mirrors traffic."""
    steps: Annotated[
        list[RolloutStep],
        Field(
            max_length=20,
            json_schema_extra={
                "x-kubernetes-validations": [
                    {
                        "rule": "self.all(s, self.exists_one(t, t.weight == s.weight)) "
                        "&& self.map(s, s.weight).isSorted()",
                        "message": "spec.rollout.steps: weights must strictly increase, "
                        "e.g. 10, 50, 100",
                    }
                ]
            },
        ),
    ] = []
    """Canary steps; weights strictly increase. Empty means 10, 50, 100 with 1m pauses."""

    @field_validator("steps")
    @classmethod
    def _weights_increase(cls, steps: list[RolloutStep]) -> list[RolloutStep]:
        weights = [s.weight for s in steps]
        if any(a >= b for a, b in pairwise(weights)):
            raise ValueError(f"weights must strictly increase, e.g. 10, 50, 100 (got {weights})")
        return steps

    analysis: AnalysisSpec | None = None
    """Prometheus checks gating each step; without it, steps advance on time."""


class TrafficRouterSpec(ApiModel):
    """How traffic is split between stable and canary."""

    kind: TrafficRouterKind = TrafficRouterKind.REPLICA_RATIO
    """ReplicaRatio needs nothing extra; HTTPRoute sets Gateway API backend weights."""
    gateway: Name | None = None
    """Gateway the HTTPRoute attaches to (HTTPRoute only)."""


class FeatureDriftSpec(ApiModel):
    """A different method or threshold for one feature."""

    name: Annotated[str, Field(min_length=1, max_length=MAX_NAME)]
    """Feature name as in the reference data (a prediction is `output.<name>`)."""
    method: DriftMethod | None = None
    """Method for this feature; empty uses spec.monitoring.method."""
    threshold: Annotated[float, Field(gt=0)] | None = None
    """Score threshold for this feature; empty uses the method's default."""


class MonitoringSpec(ApiModel):
    """Drift monitoring of live predictions against the ModelVersion's reference profile.

    Every `interval`, a Job compares the last `window` of prediction logs with
    the reference, feature by feature. Methods: `psi` (population stability
    index), `jensen-shannon` (distance, natural log), `wasserstein` (W1 divided
    by the reference's standard deviation), `ks` (Kolmogorov-Smirnov D),
    `chi-square` (2xk test of homogeneity, scored by Cramer's V) and `z-test`
    (two proportions, scored by |phi|). PSI and Jensen-Shannon bin numeric
    features by ten equal-frequency bins of the reference, or value by value
    when the reference has at most 20 distinct values.

    `auto` picks per feature as Evidently's data drift preset does: with at
    most 1000 reference rows, `ks` for numeric features, `chi-square` for
    features with 3 to 5 values (numeric) or more than 2 (categorical), else
    `z-test`, decided by p-value < 0.05; with more reference rows,
    `jensen-shannon` for categorical features and numeric ones with at most 5
    values, else `wasserstein`, decided by score > 0.1.

    KS, chi-square and z-test decide by p-value only while the effective sample
    size n_ref*n_cur/(n_ref+n_cur) is at most 1000; above it even a negligible
    difference is significant, so they decide by their score like the distances
    do, and the p-value is reported, not decisive.
    """

    prediction_logs: S3Uri | None = None
    """Where the server writes request features and predictions."""
    method: DriftMethod = DriftMethod.AUTO
    """Drift method for every feature; `auto` picks per feature (see above)."""
    threshold: Annotated[float, Field(gt=0)] | None = None
    """A feature drifts when its score exceeds this. Empty uses the method's
    default: 0.1 for every method (PSI 0.1 is "some shift"; 0.25 is "major")."""
    p_value_threshold: Annotated[float, Field(gt=0, lt=1)] = 0.05
    """A feature drifts when a deciding p-value (after correction) is below this."""
    correction: DriftCorrection = DriftCorrection.NONE
    """Correct deciding p-values for testing many features at once:
    `bonferroni`, `holm` or `benjamini-hochberg` (false discovery rate)."""
    drift_share: Annotated[float, Field(gt=0, le=1)] = 0.5
    """The dataset drifts when at least this share of checked features drift."""
    min_samples: Annotated[int, Field(ge=1, le=100_000_000)] = 1000
    """Below this many valid rows in the window a feature is `InsufficientData`,
    never drifted. Small windows inflate distances: for an unshifted normal
    feature, W1/std exceeds 0.1 in 28% of 200-row windows, 4.5% of 500-row
    and 0.5% of 1000-row ones."""
    feature_types: Annotated[dict[str, FeatureType], Field(max_length=1024)] = {}
    """Override the inferred type of a feature: `numeric` or `categorical`
    (e.g. an integer-coded category)."""
    features: Annotated[list[FeatureDriftSpec], Field(max_length=1024)] = []
    """Per-feature method or threshold."""
    window: Duration = "1h"
    """Recent predictions compared with the reference."""
    interval: Duration = "5m"
    """How often drift is computed."""


class RetrainingSpec(ApiModel):
    """When to train a new version, and what to do with it."""

    on_drift: bool = False
    """Start a TrainingRun when drift exceeds the threshold."""
    schedule: Annotated[str, Field(max_length=128)] | None = None
    """Cron schedule for periodic retraining, e.g. `0 3 * * 1`."""
    cooldown: Duration = "24h"
    """Minimum time between two retrainings."""
    max_concurrent_runs: Annotated[int, Field(ge=1, le=16)] = 1
    """Retraining runs allowed at once."""
    auto_rollout: bool = False
    """Roll out the new version once it is Validated."""
    template: TrainingRunSpec | None = None
    """The TrainingRun to create."""


class DeploymentSpec(ApiModel):
    """What to serve and how to roll it out, monitor it and retrain it."""

    model: ModelName
    """Registered model name."""
    model_version: Name | None = None
    """Serve this ModelVersion (by name). Set this or versionPolicy."""
    version_policy: VersionPolicy | None = None
    """Serve whichever ModelVersion the policy picks. Set this or modelVersion."""
    replicas: Annotated[int, Field(ge=0, le=1000)] = 1
    """Serving pods at full traffic."""
    resources: ResourceRequirements | None = None
    """CPU and memory per serving pod."""
    server: ServerSpec = ServerSpec()
    """The model server."""
    rollout: RolloutSpec = RolloutSpec()
    """Progressive delivery of new versions."""
    traffic_router: TrafficRouterSpec = TrafficRouterSpec()
    """How traffic is split."""
    monitoring: MonitoringSpec | None = None
    """Drift monitoring."""
    retraining: RetrainingSpec | None = None
    """Automatic retraining."""

    @model_validator(mode="after")
    def _one_version_source(self) -> DeploymentSpec:
        # Mirrors the CRD's CEL rule for objects that reach the operator
        # without it (an older CRD, or a dry run of the Python API).
        if (self.model_version is None) == (self.version_policy is None):
            raise ValueError(
                "set exactly one of spec.modelVersion (a pinned version) or "
                "spec.versionPolicy (e.g. latest: Validated)"
            )
        return self


class AnalysisResult(ApiModel):
    """The latest measurement of one analysis query."""

    name: str
    """Query name."""
    value: float | None = None
    """Measured value."""
    passed: bool
    """Whether it stayed within bounds."""
    failures: int = 0
    """Failed measurements in this step so far."""
    measured_at: dt.datetime | None = None
    """When it was measured."""


class FeatureDrift(ApiModel):
    """Drift of one feature (or prediction) in the last check."""

    name: str
    """Feature name; predictions are `output.<name>`."""
    status: FeatureStatus = FeatureStatus.OK
    """Ok, InvalidValues (checked without the invalid rows), InsufficientData,
    MissingColumn, NotInReference or ConstantReference."""
    method: DriftMethod | None = None
    """Method used (never `auto`: the one it picked)."""
    score: float | None = None
    """Drift statistic of the method."""
    p_value: float | None = None
    """p-value of KS, chi-square or z-test (after correction when it decides)."""
    threshold: float | None = None
    """The threshold the verdict compared against (a score or a p-value)."""
    decided_by: Annotated[str, Field(pattern=r"^(score|pValue)$")] | None = None
    """`score` or `pValue`: which number the verdict rests on."""
    drifted: bool = False
    """Whether the feature drifted; never true without a verdict."""
    rows: int | None = None
    """Valid rows of this feature in the window."""
    message: str | None = None
    """Why the status is not Ok, and what to do."""


class DriftStatus(ApiModel):
    """Result of the last drift check."""

    score: float | None = None
    """Largest feature score (scores of different methods are not comparable)."""
    drifted: bool | None = None
    """Dataset drift: at least spec.monitoring.driftShare of the checked
    features drifted. Empty when no feature could be checked."""
    drift_share: float | None = None
    """Share of checked features that drifted."""
    drifted_features: int | None = None
    """Number of features that drifted."""
    checked_features: int | None = None
    """Number of features with a verdict (status Ok or InvalidValues)."""
    prediction_drifted: bool | None = None
    """Whether any prediction (output) drifted."""
    model_version: str | None = None
    """The ModelVersion whose predictions and reference were compared."""
    window_rows: int | None = None
    """Successful predictions in the window."""
    features: list[FeatureDrift] = []
    """Per-feature results, predictions included."""
    checked_at: dt.datetime | None = None
    """When drift was last computed."""


class RetrainingStatus(ApiModel):
    """The last retraining triggered by this Deployment."""

    training_run: str | None = None
    """TrainingRun created."""
    reason: str | None = None
    """Drift or Schedule."""
    triggered_at: dt.datetime | None = None
    """When it was created."""


class DeploymentStatus(CommonStatus):
    """Observed state of a Deployment."""

    phase: DeploymentPhase | None = None
    """Progressing, Healthy, Degraded or RolledBack."""
    stable_version: str | None = None
    """ModelVersion serving the stable share of traffic."""
    stable_replicas: int | None = None
    """Ready pods of the stable version."""
    canary_version: str | None = None
    """ModelVersion being rolled out."""
    canary_weight: int | None = None
    """Percent of traffic on the canary."""
    current_step: int | None = None
    """Index of the rollout step in progress."""
    analysis: list[AnalysisResult] = []
    """Latest analysis measurements."""
    service_name: str | None = None
    """Service clients call."""
    url: str | None = None
    """In-cluster URL of the model."""
    drift: DriftStatus | None = None
    """Latest drift check."""
    last_retraining: RetrainingStatus | None = None
    """Latest retraining."""


class Deployment(Resource):
    """A served model with progressive rollout, drift monitoring and retraining."""

    info: ClassVar[KindInfo] = KindInfo(
        kind="Deployment",
        plural="deployments",
        short_names=("mdeploy", "mdep"),
        spec_rules=(
            {
                "rule": "has(self.modelVersion) != has(self.versionPolicy)",
                "message": "set exactly one of spec.modelVersion (a pinned version) or "
                "spec.versionPolicy (e.g. latest: Validated)",
            },
        ),
        columns=(
            PrinterColumn("Model", ".spec.model"),
            PrinterColumn("Stable", ".status.stableVersion"),
            PrinterColumn("Canary", ".status.canaryVersion"),
            PrinterColumn("Weight", ".status.canaryWeight", "integer", "Canary weight (%)"),
            PrinterColumn("Phase", ".status.phase"),
            READY_COLUMN,
            PrinterColumn("Service", ".status.serviceName", priority=1),
            AGE_COLUMN,
        ),
    )

    kind: str = "Deployment"
    spec: DeploymentSpec
    status: DeploymentStatus = DeploymentStatus()
