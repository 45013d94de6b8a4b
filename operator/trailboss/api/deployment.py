"""Deployment: serve a model version behind a Service, roll new versions out
progressively with analysis, watch for drift and trigger retraining."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import Field, model_validator

from trailboss.api.common import (
    AGE_COLUMN,
    READY_COLUMN,
    ApiModel,
    CommonStatus,
    EnvList,
    KindInfo,
    LabelKey,
    ModelName,
    Name,
    PrinterColumn,
    Resource,
    ResourceRequirements,
)
from trailboss.api.constraints import ObjectNameRule
from trailboss.api.fields import Arguments, Image, LabelValue
from trailboss.api.monitoring import DriftStatus, MonitoringSpec
from trailboss.api.retraining import RetrainingSpec, RetrainingStatus
from trailboss.api.rollout import (
    AnalysisResult,
    PromotedVersion,
    RetiringVersion,
    RolloutSpec,
    TrafficRouterSpec,
    TrafficStatus,
)


class DeploymentPhase(StrEnum):
    PROGRESSING = "Progressing"
    HEALTHY = "Healthy"
    PAUSED = "Paused"
    DEGRADED = "Degraded"


class DeploymentReason(StrEnum):
    """Reasons on the Deployment's conditions and events."""

    RESOLVED = "Resolved"
    VERSION_NOT_FOUND = "VersionNotFound"
    VERSION_NOT_READY = "VersionNotReady"
    REGISTRY_UNAVAILABLE = "RegistryUnavailable"
    ROLLOUT_STARTED = "RolloutStarted"
    STEP_STARTED = "StepStarted"
    WAITING_FOR_PODS = "WaitingForPods"
    WAITING_FOR_GATEWAY = "WaitingForGateway"
    ANALYSIS_PASSED = "AnalysisPassed"
    ANALYSIS_FAILED = "AnalysisFailed"
    ANALYSIS_INCONCLUSIVE = "AnalysisInconclusive"
    PROGRESS_DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"
    PROMOTED = "Promoted"
    STEP_PROMOTED = "StepPromoted"
    ABORTED = "Aborted"
    NO_ROLLOUT_IN_PROGRESS = "NoRolloutInProgress"
    SUPERSEDED = "Superseded"
    PAUSED = "Paused"
    SERVING = "Serving"
    UNSUPPORTED = "UnsupportedConfiguration"
    NO_DRIFT = "NoDrift"
    DRIFT_DETECTED = "DriftDetected"
    DRIFT_CLEARED = "DriftCleared"
    INSUFFICIENT_DATA = "InsufficientData"
    INSUFFICIENT_REFERENCE = "InsufficientReference"
    REFERENCE_PROFILE_MISSING = "ReferenceProfileMissing"
    DRIFT_CHECK_FAILED = "DriftCheckFailed"
    RETRAINING_TRIGGERED = "RetrainingTriggered"
    RETRAINING_RUNNING = "RetrainingRunning"
    RETRAINING_IDLE = "Idle"
    RETRAINING_FAILED = "RetrainingFailed"
    COOLDOWN = "Cooldown"
    MAX_CONCURRENT_RUNS = "MaxConcurrentRuns"
    ROLLOUT_IN_PROGRESS = "RolloutInProgress"
    NEW_VERSION_VALIDATED = "NewVersionValidated"
    NEW_VERSION_REJECTED = "NewVersionRejected"


AVAILABLE = "Available"
"""Condition: the stable version has its serving pods ready."""


PROGRESSING = "Progressing"
"""Condition: a rollout is under way."""


TARGET_RESOLVED = "TargetResolved"
"""Condition: the spec (pinned version, policy or alias) names a servable
ModelVersion (True), or why not (False): VersionNotFound or VersionNotReady (a
canary of it is withdrawn; the stable keeps serving, Ready is False), or
RegistryUnavailable (the registry cannot be read: the last resolved target is
kept, and a rollout in progress goes on)."""


PROMOTED = "Promoted"
"""Condition: the last rollout promoted its version."""


ABORTED = "Aborted"
"""Condition: the last rollout was aborted and traffic returned to stable."""


MANUAL_REQUEST = "ManualRequest"
"""Condition: what the last promote or abort request did: True when it acted on the
rollout in progress (reason Promoted, StepPromoted or Aborted), False with reason
NoRolloutInProgress when there was none to act on (the request is then dropped)."""


DRIFT_MONITORING = "DriftMonitoring"
"""Condition: drift checks of the stable version run (True) or cannot (False);
the reason says what the last check found."""


PROMOTE_ANNOTATION = "trailboss.dev/promote"
"""Set to any new value (e.g. a timestamp) to skip the remaining steps of the rollout in
progress. A value starting with `step:` (e.g. `step:2026-11-22T10:00:00Z`, what
`kubectl trailboss promote` writes) moves it one step only, ending the current step's
pause and analysis, as `kubectl argo rollouts promote` does; at the last step it
promotes. With none in progress the request is answered (an event and the ManualRequest
condition, reason NoRolloutInProgress) and dropped: it never applies to a later rollout."""


PROMOTE_STEP_PREFIX = "step:"
"""A promote annotation value with this prefix asks for one step, any other for all."""


ABORT_ANNOTATION = "trailboss.dev/abort"
"""Set to any new value (e.g. a timestamp) to abort the rollout in progress and return
to stable. With none in progress the request is answered and dropped, as for promote."""


PAUSED_ANNOTATION = "trailboss.dev/paused"
"""`"true"` holds the rollout at its current step until removed; time paused does not
count towards the progress deadline."""


RETRAIN_ANNOTATION = "trailboss.dev/retrain"
"""Set to any new value (e.g. a timestamp) to retrain now from spec.retraining.template."""


RETRAINING = "Retraining"
"""Condition: a retraining run is in progress (True), or why none is (False)."""


class VersionPolicy(ApiModel):
    """Pick the version to serve by rule rather than by name, so Git can hold a
    policy instead of a number."""

    latest: Annotated[str, Field(pattern=r"^(Validated|Registered)$", max_length=10)] = "Validated"
    """Serve the newest ModelVersion of the model that got at least this far:
    `Registered` also takes Validated versions (a version that passes its gate
    stays the target). Only Validated versions are served unless
    spec.serveUnvalidated is set."""
    match_labels: Annotated[dict[LabelKey, LabelValue], Field(max_length=16)] = {}
    """Only consider ModelVersions with these labels."""
    alias: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,255}$", max_length=255)] | None = None
    """Serve the ModelVersion that this MLflow registry alias (e.g. `champion`) points
    at, resolved through the registry; `latest` then only says which phase it needs."""


class ServerSpec(ApiModel):
    """The model server. By default Trailboss's own server runs the MLflow
    pyfunc model; with an image, the user's server runs behind the logging sidecar."""

    image: Image | None = None
    """Your own model server image; empty uses the built-in server."""
    port: Annotated[int, Field(ge=1, le=65535)] = 8080
    """Port the server listens on."""
    args: Arguments = []
    """Arguments to the server."""
    env: EnvList = []
    """Extra environment variables for the server."""


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
    serve_unvalidated: bool = False
    """Also serve a ModelVersion that is Registered but not Validated (or not Ready).
    Off by default: a version that failed or has not passed its gate is never served."""
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
        retraining = self.retraining
        if retraining is not None and retraining.template is None:
            raise ValueError(
                "spec.retraining needs spec.retraining.template: the TrainingRun spec to "
                "create when it triggers"
            )
        if retraining and retraining.template and retraining.template.model != self.model:
            raise ValueError(
                "spec.retraining.template.model must equal spec.model, or the retrained "
                "versions would never be served by this Deployment"
            )
        return self


class DeploymentStatus(CommonStatus):
    """Observed state of a Deployment."""

    phase: DeploymentPhase | None = None
    """Healthy, Progressing, Paused or Degraded."""
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
    step_started_at: dt.datetime | None = None
    """When the current step began (its weight was set)."""
    pause_started_at: dt.datetime | None = None
    """When the current step's pods were all ready: its pause counts from here,
    so a step holds its weight for the whole pause, however long pods take."""
    rollout_started_at: dt.datetime | None = None
    """When the rollout of the canary version began."""
    fast_rollback: bool | None = None
    """True while the rollout in progress is a fast rollback to a version stable within
    spec.rollout.fastRollbackWindow: at 100 % at once, and not analysed."""
    promoting: bool | None = None
    """True once a full promote was requested for the rollout in progress: it is at
    100 % without analysis or pause, and becomes stable once its pods are ready."""
    pods_not_ready_since: dt.datetime | None = None
    """Since when the canary's pods have not been ready, in a row, time paused left
    out (the clock moves forward by it); the progress deadline counts from here."""
    inconclusive_since: dt.datetime | None = None
    """Since when analysis has had no data, in a row, time paused left out; a round
    with data for every query clears it. The progress deadline counts from here."""
    paused_at: dt.datetime | None = None
    """When the rollout in progress was paused (trailboss.dev/paused)."""
    target_version: str | None = None
    """The version the spec resolves to now (pinned, by policy or by alias)."""
    aborted_version: str | None = None
    """A version whose rollout was aborted; it is not retried until the target changes."""
    traffic: list[TrafficStatus] = []
    """Every served version with its desired and actual weight and ready pods."""
    analysis: Annotated[list[AnalysisResult], Field(max_length=20)] = []
    """Analysis measurements of the current or last rollout, newest last (at most 20)."""
    analysis_failures: int | None = None
    """Failed measurements in the current rollout, all of them (not only the 20 kept
    in analysis): one more than failureLimit aborts it."""
    analysis_consecutive_errors: int | None = None
    """The most errors in a row of any one query in the current rollout."""
    analysis_errors_in_a_row: Annotated[dict[str, int], Field(max_length=8)] = {}
    """Errors in a row of each query that could not run lately, by query name: one
    more than consecutiveErrorLimit aborts the rollout."""
    promoted: Annotated[list[PromotedVersion], Field(max_length=5)] = []
    """The last versions to become stable (the first one served included), newest
    last: each was stable until the next one's promotion."""
    retiring: Annotated[list[RetiringVersion], Field(max_length=10)] = []
    """Versions without traffic whose pods are about to go."""
    handled_promote: str | None = None
    """The last trailboss.dev/promote annotation value handled (acted on, or answered
    when no rollout was in progress)."""
    handled_abort: str | None = None
    """The last trailboss.dev/abort annotation value handled."""
    service_name: str | None = None
    """Service clients call."""
    url: str | None = None
    """In-cluster URL of the model."""
    drift: DriftStatus | None = None
    """Latest drift check."""
    last_retraining: RetrainingStatus | None = None
    """Latest retraining."""
    retrainings: Annotated[list[RetrainingStatus], Field(max_length=10)] = []
    """The last retrainings, newest last (at most 10)."""
    retraining_count: int | None = None
    """Retrainings triggered so far; the next TrainingRun is named after it, so a
    restart never starts one trigger's run twice."""
    handled_retrain: str | None = None
    """The last trailboss.dev/retrain annotation value acted on."""
    last_scheduled: dt.datetime | None = None
    """The last schedule time acted on (run or skipped)."""


class Deployment(Resource):
    """A served model with progressive rollout, drift monitoring and retraining."""

    info: ClassVar[KindInfo] = KindInfo(
        kind="Deployment",
        plural="deployments",
        short_names=("mdeploy",),
        name_rule=ObjectNameRule(
            40, "its serving Deployments and Services are named <name>-<role>-<hash5>"
        ),
        spec_rules=(
            {
                "rule": "has(self.modelVersion) != has(self.versionPolicy)",
                "message": "set exactly one of spec.modelVersion (a pinned version) or "
                "spec.versionPolicy (e.g. latest: Validated)",
            },
            {
                "rule": "!has(self.retraining) || has(self.retraining.template)",
                "message": "spec.retraining needs spec.retraining.template: the TrainingRun "
                "spec to create when it triggers",
            },
            {
                "rule": "!has(self.retraining) || !has(self.retraining.template) || "
                "self.retraining.template.model == self.model",
                "message": "spec.retraining.template.model must equal spec.model, or the "
                "retrained versions would never be served by this Deployment",
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
