"""Deployment: serve a model version behind a Service, roll new versions out
progressively with analysis, watch for drift and trigger retraining."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from itertools import pairwise
from typing import Annotated, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, ConfigDict, Field, model_validator

from trailboss.api.common import (
    AGE_COLUMN,
    READY_COLUMN,
    ApiModel,
    CommonStatus,
    Duration,
    EnvList,
    KindInfo,
    LabelKey,
    ModelName,
    Name,
    PrinterColumn,
    Resource,
    ResourceRequirements,
    S3Uri,
)
from trailboss.api.constraints import ObjectNameRule, Rule, checked, enforce, finite, model_rules
from trailboss.api.corev1 import LocalObjectReference
from trailboss.api.durations import duration_seconds
from trailboss.api.fields import Arguments, Cron, FeatureName, Image, LabelValue
from trailboss.api.trainingrun import TrainingRunSpec


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
    INSUFFICIENT_REFERENCE = "InsufficientReference"
    CONSTANT_REFERENCE = "ConstantReference"
    """No longer reported: a constant reference is measured against a scale floor."""


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


class RolloutStep(ApiModel):
    """Send `weight` percent of traffic to the new version, then wait."""

    weight: Annotated[int, Field(ge=0, le=100)]
    """Percent of traffic for the canary, 0 to 100."""
    pause: Duration | None = None
    """How long to hold this step while analysis runs, e.g. `5m`. It counts from
    when the step's pods are ready, so the weight is really served that long. With
    analysis, a step holds at least one full analysis interval (a pause shorter than
    spec.rollout.analysis.interval is extended to it), so a measurement always covers
    the weight served rather than only the moment it began."""


_QUERY_MIN_AT_MOST_MAX = Rule(
    "!has(self.min) || !has(self.max) || self.min <= self.max",
    "min must be at most max",
    lambda q: q.min is None or q.max is None or q.min <= q.max,
)
Bound = Annotated[float, AfterValidator(finite)]


class AnalysisQuery(ApiModel):
    """A PromQL query whose result must stay within bounds."""

    model_config = ConfigDict(json_schema_extra=model_rules(_QUERY_MIN_AT_MOST_MAX))

    name: Name
    """Name shown in status, e.g. `error-rate`."""
    query: Annotated[str, Field(min_length=1, max_length=1024)]
    """PromQL returning one number; `{{version}}` is replaced by the canary version."""
    min: Bound | None = None
    """Fail when the result is below this."""
    max: Bound | None = None
    """Fail when the result is above this."""

    @model_validator(mode="after")
    def _min_at_most_max(self) -> AnalysisQuery:
        enforce(self, _QUERY_MIN_AT_MOST_MAX)
        return self


_QUERIES_TOTAL = Rule(
    "self.map(q, size(q.query)).sum() <= 2048",
    "the queries may hold at most 2048 characters of PromQL in all",
    lambda qs: sum(len(q.query) for q in qs) <= 2048,
)
PROMETHEUS_URL = r"^https?://[A-Za-z0-9.:_\[\]-]+(/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*)?$"


_AT_LEAST_10S = Rule(
    "duration(self) >= duration('10s')",
    "must be at least 10s, so that Prometheus has new samples between measurements",
    lambda interval: duration_seconds(interval) >= 10,
)


_QUERY_TIMEOUT = Rule(
    "duration(self) >= duration('1s') && duration(self) <= duration('60s')",
    "must be between 1s and 60s: long enough for a busy Prometheus, short enough "
    "not to hold up the operator",
    lambda timeout: 1 <= duration_seconds(timeout) <= 60,
)


class PrometheusAuth(ApiModel):
    """Credentials for a Prometheus that requires authentication."""

    secret_ref: LocalObjectReference
    """A Secret in the Deployment's namespace with either the key `token` (sent as a
    bearer token) or the keys `username` and `password` (basic auth), and optionally
    `ca.crt`: PEM certificates that alone are trusted to verify an https
    prometheusUrl. It is read at every analysis interval, so a rotated Secret takes
    effect at the next measurement. A missing Secret or key is recorded as an Error
    measurement naming it. The operator needs `get` on Secrets (the chart grants it unless
    rbac.readSecrets is false)."""


class AnalysisSpec(ApiModel):
    """Prometheus analysis run during each rollout step."""

    prometheus_url: Annotated[str, Field(pattern=PROMETHEUS_URL, max_length=512)]
    """Prometheus base URL, e.g. `http://prometheus.monitoring:9090`. It is never
    followed to a redirect."""
    prometheus_auth: PrometheusAuth | None = None
    """How to authenticate to Prometheus. Without it no credentials are sent, except
    to the platform's Prometheus the operator is installed with (chart value
    `prometheus.url`): a prometheusUrl with its scheme, host and port, under its
    path, is sent the operator's own token and verified with its CA bundle."""
    queries: Annotated[
        list[AnalysisQuery], Field(min_length=1, max_length=8), checked(_QUERIES_TOTAL)
    ]
    """Queries evaluated at every interval."""
    interval: Annotated[Duration, checked(_AT_LEAST_10S)] = "1m"
    """How often the queries run (at least 10s). Every step holds at least this long
    after its pods are ready, so that a measurement covers it."""
    timeout: Annotated[Duration, checked(_QUERY_TIMEOUT)] = "10s"
    """How long one query may take, 1s to 60s: a query Prometheus has not answered by
    then is an Error measurement (and Prometheus is asked to stop evaluating it)."""
    failure_limit: Annotated[int, Field(ge=0, le=100)] = 2
    """Failed measurements tolerated in a rollout; one more aborts it. Lowered
    mid-rollout below the failures already counted, it aborts the rollout at once."""
    consecutive_error_limit: Annotated[int, Field(ge=0, le=100)] = 4
    """Errors in a row of one query (it could not run: Prometheus down, a bad query,
    an answer that is not one number) before the rollout aborts; each query counts
    its own. A query that returns no data is inconclusive: the step holds, and the
    progress deadline decides."""


DEFAULT_STEPS = (
    RolloutStep(weight=10, pause="1m"),
    RolloutStep(weight=50, pause="1m"),
    RolloutStep(weight=100),
)
"""The canary steps of a rollout whose spec.rollout.steps is empty (its description says so)."""

_WEIGHTS_INCREASE = Rule(
    "self.all(s, self.exists_one(t, t.weight == s.weight)) && self.map(s, s.weight).isSorted()",
    "weights must strictly increase, e.g. 10, 50, 100",
    lambda steps: all(a.weight < b.weight for a, b in pairwise(steps)),
)


class RolloutSpec(ApiModel):
    """How a new version replaces the serving one."""

    strategy: RolloutStrategy = RolloutStrategy.CANARY
    """Canary shifts traffic in steps; Replace swaps once the new version's pods are
    ready. Shadow (mirroring a share of requests) needs a router that mirrors; neither
    router here does, so it is refused with UnsupportedConfiguration."""
    steps: Annotated[list[RolloutStep], Field(max_length=20), checked(_WEIGHTS_INCREASE)] = []
    """Canary steps; weights strictly increase. Empty means 10, 50, 100 with 1m pauses.
    A last step below 100 is followed by promotion at 100. Edited mid-rollout (or the
    strategy switched), the rollout goes on from the same step index in the new plan,
    or from its last step when the plan is now shorter; a step whose weight changed
    starts again at its new weight."""

    analysis: AnalysisSpec | None = None
    """Prometheus checks gating each step; without it, steps advance on time."""
    progress_deadline: Duration = "10m"
    """A rollout whose canary pods stay not ready, or whose analysis has no data, this
    long in a row aborts. Each clock starts at the first pass that finds the pods not
    ready or a query without data and stops when they are ready or every query has
    data again; time paused (trailboss.dev/paused) does not count."""
    scale_down_delay: Duration = "30s"
    """How long an aborted canary or a replaced stable version keeps its pods after its
    traffic is gone (in-flight requests finish; an aborted canary can be inspected)."""
    fast_rollback_window: Duration = "1h"
    """Rolling back to a version that was stable at any moment this recently (however
    long ago it became stable; the first version served counts) goes to 100 % at once,
    without steps or analysis: it was serving moments ago."""


_GATEWAY_FOR_ROUTE = Rule(
    "!has(self.kind) || self.kind != 'HTTPRoute' || has(self.gateway)",
    "kind: HTTPRoute needs gateway, the Gateway the route attaches to",
    lambda t: t.kind != TrafficRouterKind.HTTP_ROUTE or t.gateway is not None,
)


class TrafficRouterSpec(ApiModel):
    """How traffic is split between stable and canary."""

    model_config = ConfigDict(json_schema_extra=model_rules(_GATEWAY_FOR_ROUTE))

    kind: TrafficRouterKind = TrafficRouterKind.REPLICA_RATIO
    """ReplicaRatio needs nothing extra; HTTPRoute sets Gateway API backend weights, and
    Ready then also waits until the Gateway has accepted a route that sends all traffic
    to the target. Switching back to ReplicaRatio deletes the HTTPRoute."""
    gateway: Name | None = None
    """Gateway the HTTPRoute attaches to (HTTPRoute only)."""
    gateway_namespace: Name | None = None
    """Namespace of that Gateway, when it is shared from another namespace (its
    listener must allow routes from this one); empty means this namespace."""
    hostnames: Annotated[
        list[
            Annotated[
                str,
                Field(
                    pattern=r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
                    max_length=253,
                ),
            ]
        ],
        Field(max_length=16),
    ] = []
    """Host names the route answers for; empty answers every request the Gateway
    listener passes to it."""

    @model_validator(mode="after")
    def _gateway_for_route(self) -> TrafficRouterSpec:
        enforce(self, _GATEWAY_FOR_ROUTE)
        return self


class FeatureDriftSpec(ApiModel):
    """A different method or threshold for one feature."""

    name: FeatureName
    """Feature name as in the reference data (a prediction is `output.<name>`)."""
    method: DriftMethod | None = None
    """Method for this feature; empty uses spec.monitoring.method."""
    threshold: Annotated[float, Field(gt=0)] | None = None
    """Score threshold for this feature; empty uses the method's default."""


MAX_DRIFT_PODS = 32
"""Most pods one drift check may spread over (spec.monitoring.parallelism)."""


class MonitoringSpec(ApiModel):
    """Drift monitoring of live predictions against the ModelVersion's reference profile.

    Every `interval`, a Job compares the last `window` of prediction logs with
    the reference, feature by feature, and gives each a score and a p-value.
    Methods (score; p-value): `psi` (population stability index on bins; the
    chi-square test on the same bins), `jensen-shannon` (distance, natural log,
    on bins; chi-square), `wasserstein` (W1 divided by the reference's
    interquartile range / 1.349, its standard deviation when that is 0, and
    at least 1e-6 x max(1, |median|); KS's asymptotic p-value), `ks`
    (Kolmogorov-Smirnov D; KS's p-value), `chi-square` (Cramer's V of the two
    distributions given equal weight, free of the sample sizes; chi-square
    test of homogeneity) and `z-test` (|phi| likewise; the two-proportion
    z-test; only for two categories, chi-square otherwise). PSI and
    Jensen-Shannon bin numeric features by ten equal-frequency bins of the
    reference, or value by value when it has at most 20 distinct values; an
    empty bin counts as a share of 0.0001 in PSI.

    A feature drifts when its score exceeds its threshold and its p-value
    (after `correction`) is below `pValueThreshold`: the score says the shift
    is large enough to matter, the p-value that it is not sampling noise. The
    rule is the same at every sample size. A feature also drifts when its
    share of invalid rows (missing, NaN, not a number, infinite) moved from
    the reference's by |phi| > 0.1.

    `auto` picks per feature, at every reference size: `jensen-shannon` for
    categorical features and numeric ones with at most 5 values, else
    `wasserstein`. A reference with fewer valid rows than a method needs (50
    for `ks`, 100 for the others) makes the feature `InsufficientReference`.
    """

    prediction_logs: S3Uri | None = None
    """Where the server writes request features and predictions."""
    method: DriftMethod = DriftMethod.AUTO
    """Drift method for every feature; `auto` picks per feature (see above)."""
    threshold: Annotated[float, Field(gt=0)] | None = None
    """A feature drifts when its score exceeds this (and its p-value is below
    pValueThreshold). Empty uses the method's default: 0.1 for every method
    (PSI 0.1 is "some shift"; 0.25 is "major")."""
    p_value_threshold: Annotated[float, Field(gt=0, lt=1)] = 0.05
    """A feature drifts only when its p-value (after correction) is below this,
    so that too few rows to tell a score from sampling noise never drift."""
    correction: DriftCorrection = DriftCorrection.NONE
    """Correct the features' p-values for testing many features at once:
    `bonferroni`, `holm` or `benjamini-hochberg` (false discovery rate)."""
    drift_share: Annotated[float, Field(gt=0, le=1)] = 0.5
    """The dataset drifts when at least this share of checked features drift."""
    min_samples: Annotated[int, Field(ge=1, le=100_000_000)] = 1000
    """Below this many valid rows in the window a feature is `InsufficientData`,
    never drifted. Small windows inflate distances (for an unshifted normal
    feature, normed W1 exceeds 0.1 in 28% of 200-row windows, 4.5% of 500-row
    and 0.5% of 1000-row ones); the p-value keeps most of those from drifting,
    this keeps all of them."""
    feature_types: Annotated[dict[FeatureName, FeatureType], Field(max_length=32)] = {}
    """Override the inferred type of a feature: `numeric` or `categorical`
    (e.g. an integer-coded category)."""
    features: Annotated[list[FeatureDriftSpec], Field(max_length=32)] = []
    """Per-feature method or threshold."""
    window: Duration = "1h"
    """Recent predictions compared with the reference."""
    interval: Duration = "5m"
    """How often drift is computed."""
    parallelism: Annotated[int, Field(ge=1, le=MAX_DRIFT_PODS)] = 1
    """Pods that share each check: above 1, the check is one Indexed Job of N
    pods, each measuring 1/N of the features (every N-th by name) and writing
    its own part; the operator merges the parts into one result, the same as
    one pod's, and a missing part fails the check. Each pod gets the drift
    Job's resources and holds one column of its own features at a time, so
    N divides each pod's work, not its peak memory. Each pod fetches from the
    window's Parquet files only its own features' columns (range reads)."""


def _known_time_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


_KNOWN_TIME_ZONE = Rule(
    # CEL reads the zone with the API server's own tz database (Go's
    # time.LoadLocation) and fails the rule for a name it does not know.
    "timestamp('2000-01-01T00:00:00Z').getHours(self) >= 0",
    "must be a time zone of the IANA tz database, e.g. Europe/Berlin or UTC",
    _known_time_zone,
)
_NOT_LOCAL = Rule(
    "self != 'Local'",
    "must name a time zone: Local would be the operator's own, whatever it is",
    lambda name: name != "Local",
)


class RetrainingSpec(ApiModel):
    """When to train a new version from `template`.

    Triggers: drift (`onDrift`, after `driftChecks` consecutive checks found
    dataset drift), a cron `schedule`, and on demand (set the
    `trailboss.dev/retrain` annotation to a new value, e.g. with
    `kubectl trailboss retrain deployment NAME`). Drift and schedule wait for
    the `cooldown` after the last retraining and, unless `duringRollout`, for
    a rollout in progress to end; no trigger starts more than
    `maxConcurrentRuns` at once, and a run past `runDeadline` is given up.
    The result is a ModelVersion like any other: with a versionPolicy it rolls
    out through the same canary steps and analysis once Validated (it is
    labelled with the policy's matchLabels, and under an alias policy the alias
    is moved to it unless someone moved it while it trained); with a pinned
    modelVersion the Retraining condition says which version to pin."""

    on_drift: bool = False
    """Retrain when drift checks find dataset drift."""
    drift_checks: Annotated[int, Field(ge=1, le=100)] = 2
    """Consecutive drifted checks before a drift retraining."""
    schedule: Cron | None = None
    """Cron schedule for periodic retraining, e.g. `0 3 * * 1`."""
    time_zone: (
        Annotated[
            str,
            Field(pattern=r"^[A-Za-z][A-Za-z0-9_+/-]{0,63}$", max_length=64),
            checked(_KNOWN_TIME_ZONE, _NOT_LOCAL),
        ]
        | None
    ) = None
    """IANA time zone of the schedule, e.g. `Europe/Berlin`; empty is UTC. A name
    the tz database does not know is refused, as a CronJob's timeZone is."""
    cooldown: Duration = "24h"
    """Minimum time between two drift or scheduled retrainings. Each is measured at
    the time it was due: a scheduled run at its schedule time (not when the operator
    got to it), others when they started, and two schedule times on the schedule's
    own wall clock. So a daily schedule with a 24h cooldown fires every day, across
    daylight saving changes too."""
    max_concurrent_runs: Annotated[int, Field(ge=1, le=16)] = 1
    """Retraining runs allowed at once: every TrainingRun this Deployment started
    that has not finished, not only those kept in status.retrainings."""
    run_deadline: Duration = "24h"
    """How long a retraining may take, from its TrainingRun's creation until its
    ModelVersion is Validated or Rejected. Past it the retraining is recorded as
    Failed, no longer counts towards maxConcurrentRuns, and a TrainingRun still
    pending or running is suspended (spec.suspend; resume it by hand if wanted)."""
    during_rollout: bool = False
    """Also retrain while a rollout is in progress."""
    template: TrainingRunSpec | None = None
    """The TrainingRun to create; its model must be spec.model."""


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


class MeasurementPhase(StrEnum):
    SUCCESSFUL = "Successful"
    FAILED = "Failed"
    INCONCLUSIVE = "Inconclusive"
    ERROR = "Error"


class AnalysisResult(ApiModel):
    """One measurement of one analysis query."""

    name: str
    """Query name."""
    version: str | None = None
    """The canary version measured."""
    step: int | None = None
    """Rollout step the measurement was taken in."""
    value: float | None = None
    """Measured value; empty when the query returned no data or failed."""
    phase: MeasurementPhase = MeasurementPhase.SUCCESSFUL
    """Successful, Failed (out of bounds), Inconclusive (no data) or Error."""
    passed: bool
    """Whether it stayed within bounds."""
    message: str | None = None
    """The bound it broke, or why it could not be measured."""
    measured_at: dt.datetime | None = None
    """When it was measured."""


class TrafficStatus(ApiModel):
    """One served version and its share of traffic."""

    version: str
    """ModelVersion name."""
    role: str
    """`stable` or `canary`."""
    desired_weight: int
    """Percent of traffic it should get."""
    actual_weight: int | None = None
    """Percent it gets now: its share of ready pods (ReplicaRatio), or its weight in
    the HTTPRoute as read back once the Gateway accepted that route (HTTPRoute);
    empty while the Gateway has not yet taken the latest weights."""
    replicas: int = 0
    """Serving pods wanted."""
    ready_replicas: int = 0
    """Serving pods ready."""


class PromotedVersion(ApiModel):
    """A version that reached 100 % of traffic. It stayed stable until the next
    one in the list became stable."""

    version: str
    """ModelVersion name."""
    promoted_at: dt.datetime
    """When it became stable (promoted, or first served)."""


class RetiringVersion(ApiModel):
    """A version whose traffic is gone and whose pods go after the scale-down delay."""

    version: str
    """ModelVersion name."""
    since: dt.datetime
    """When its traffic was removed."""


class FeatureDrift(ApiModel):
    """Drift of one feature (or prediction) in the last check."""

    name: str
    """Feature name; predictions are `output.<name>`."""
    status: FeatureStatus = FeatureStatus.OK
    """Ok, InvalidValues (checked without the invalid rows), InsufficientData
    (too few rows in the window), InsufficientReference (too few in the
    reference for the method), MissingColumn or NotInReference."""
    method: DriftMethod | None = None
    """Method used (never `auto`: the one it picked)."""
    score: float | None = None
    """Drift statistic of the method."""
    p_value: float | None = None
    """p-value of the method's test (see spec.monitoring), after correction."""
    threshold: float | None = None
    """The score threshold the verdict compared against."""
    p_value_threshold: float | None = None
    """The p-value threshold the verdict compared against."""
    decided_by: Annotated[str, Field(pattern=r"^(score|pValue)$")] | None = None
    """`pValue` when the score exceeded its threshold but the p-value did not
    fall below its own (too few rows to tell the shift from noise); else `score`."""
    drifted: bool = False
    """Whether the feature drifted; never true without a verdict."""
    rows: int | None = None
    """Valid rows of this feature in the window."""
    missing: int | None = None
    """Rows of the window dropped as missing, NaN or not a number."""
    infinite: int | None = None
    """Rows of the window dropped as +inf or -inf (an overflow upstream)."""
    invalid_share_drifted: bool | None = None
    """Whether the share of invalid (missing or infinite) rows drifted from the
    reference's; a feature whose share drifted is drifted."""
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
    failed_at: dt.datetime | None = None
    """When the last check failed (its result is not in this status)."""
    consecutive: int | None = None
    """Checks in a row, up to this one, that found dataset drift in this model version.
    A failed check ends the streak (0); only a streak of the stable version retrains."""
    checks: int | None = None
    """Checks completed so far, failed ones included. The next check's Job is
    named after this count, so a restart never runs one check twice."""


class RetrainingStatus(ApiModel):
    """One retraining triggered by this Deployment."""

    training_run: str | None = None
    """TrainingRun created."""
    reason: str | None = None
    """Drift, Schedule or Manual."""
    trigger: str | None = None
    """What fired: the drift check number, the schedule's time or the annotation value."""
    triggered_at: dt.datetime | None = None
    """When it was created."""
    replaces: str | None = None
    """The stable version when it was triggered."""
    drift_score: float | None = None
    """Largest feature drift score of the check that triggered it."""
    phase: str | None = None
    """Running, then the TrainingRun's outcome and its ModelVersion's phase:
    Failed, Validated or Rejected."""
    model_version: str | None = None
    """The ModelVersion it registered."""
    message: str | None = None
    """Why it failed, or how its version reaches traffic."""


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
