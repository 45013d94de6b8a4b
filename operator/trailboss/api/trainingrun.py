"""TrainingRun: one training of a model, run as a Kubernetes Job and tracked
as an MLflow run; on success it can register a ModelVersion."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import ConfigDict, Field, model_validator

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
    PrinterColumn,
    Resource,
    ResourceRequirements,
    S3Uri,
    Seconds,
    Toleration,
    ValidationGate,
)
from trailboss.api.constraints import (
    ObjectNameRule,
    Rule,
    checked,
    enforce,
    model_rules,
    total_map_length,
)
from trailboss.api.fields import (
    Arguments,
    ArtifactPath,
    Command,
    ExperimentName,
    Flavor,
    HyperparameterName,
    Image,
    LabelValue,
    ObjectName,
)
from trailboss.api.podtemplate import KUEUE_QUEUE_LABEL, PodTemplate
from trailboss.api.security import PodSecurity

TRAINING_RUN_NAME_LIMIT = 40
"""A TrainingRun's Job is `<name>-train-<hash5>` and must leave room for the
`-<index>` of distributed workers' hostnames within 63 characters."""


def _hp_variable(name: str) -> str:
    return name.upper().replace("-", "_").replace(".", "_")


_CEL_HP_VARIABLE = "{0}.upperAscii().replace('-', '_').replace('.', '_')"
_DISTINCT_HP_VARIABLES = Rule(
    "self.all(a, self.filter(b, "
    + _CEL_HP_VARIABLE.format("b")
    + " == "
    + _CEL_HP_VARIABLE.format("a")
    + ").size() == 1)",
    "two hyperparameter names give the same HP_<NAME> variable (names differ only in case, "
    "'-', '.' or '_'): rename one",
    lambda hps: len({_hp_variable(k) for k in hps}) == len(hps),
)


INFRASTRUCTURE_FAILURE_EXIT_CODE = 75
"""The trainer contract's exit code for "storage or tracking stayed unreachable
longer than I retry" (EX_TEMPFAIL). The Job replaces such pods without counting
them against spec.backoffLimit."""


class TrainingPhase(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class TrainingReason(StrEnum):
    """Reasons on the TrainingRun's conditions and events."""

    JOB_CREATED = "JobCreated"
    RUNNING = "Running"
    SUSPENDED = "Suspended"
    QUEUED = "Queued"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    DEADLINE_EXCEEDED = "DeadlineExceeded"
    DATASET_NOT_FOUND = "DatasetNotFound"
    DATA_STORE_UNAVAILABLE = "DataStoreUnavailable"
    TRACKING_UNAVAILABLE = "TrackingServerUnavailable"
    INVALID_SPEC = "InvalidSpec"
    PODS_REJECTED = "PodsRejected"
    PODS_NOT_STARTING = "PodsNotStarting"
    REGISTERED = "Registered"


COMPLETE = "Complete"
"""Condition, as a batch/v1 Job has it: True once the training succeeded, so
`kubectl wait --for=condition=Complete trun/NAME` waits for success. Absent until then."""
FAILED = "Failed"
"""Condition, as a batch/v1 Job has it: True once the run failed, with the reason
and message of the failure. Absent until then."""


class DatasetSpec(ApiModel):
    """The training data. It is pinned when the run starts so the run can be
    reproduced: the object's ETag and version id, or a digest over a prefix."""

    uri: S3Uri
    """`s3://bucket/key` for one object, or `s3://bucket/prefix/` (trailing
    slash) for every object under a prefix."""
    wait_timeout: Duration = "10m"
    """How long after the run was created it waits for the data to appear (e.g.
    an upstream job still writing it) before it fails with `DatasetNotFound`.
    Counted from `metadata.creationTimestamp`, so a restart of the operator
    does not reset it; `0s` fails at once."""


class RegisterSpec(ApiModel):
    """What to register as a ModelVersion when the run succeeds."""

    artifact_path: ArtifactPath = "model"
    """Path of the logged model inside the MLflow run's artifacts."""
    flavor: Flavor = "python_function"
    """MLflow flavor the model is served with."""
    validation: ValidationGate | None = None
    """Metric bounds the new ModelVersion must meet to become Validated."""
    reference_data: S3Uri | None = None
    """Data the model's drift is measured against; defaults to the training dataset."""
    deletion_policy: Annotated[str, Field(pattern=r"^(Retain|Delete)$", max_length=6)] = "Retain"
    """Passed to the ModelVersion: what deleting it does to the registry version."""
    labels: Annotated[dict[LabelKey, LabelValue], Field(max_length=16)] = {}
    """Labels of the ModelVersion it registers, e.g. for a Deployment's
    versionPolicy.matchLabels (a retraining adds its Deployment's own)."""


_GPUS_BY_FIELD = Rule(
    "!has(self.resources) || "
    "(!has(self.resources.requests) || !('nvidia.com/gpu' in self.resources.requests)) && "
    "(!has(self.resources.limits) || !('nvidia.com/gpu' in self.resources.limits))",
    "request GPUs with spec.gpus, not spec.resources",
    lambda s: (
        s.resources is None
        or all("nvidia.com/gpu" not in r for r in (s.resources.requests, s.resources.limits))
    ),
)


_QUEUED_RUNS_NOT_SUSPENDED = Rule(
    f"!has(self.suspend) || !self.suspend || !has(self.podTemplate) || "
    f"!has(self.podTemplate.metadata) || "
    f"!has(self.podTemplate.metadata.labels) || "
    f"!('{KUEUE_QUEUE_LABEL}' in self.podTemplate.metadata.labels)",
    f"a run with the label {KUEUE_QUEUE_LABEL} starts when Kueue admits it, and Kueue "
    "would resume a suspended Job: hold it by deactivating its Kueue Workload "
    "(spec.active: false) instead of spec.suspend",
    lambda s: (
        not s.suspend
        or s.pod_template is None
        or s.pod_template.metadata is None
        or KUEUE_QUEUE_LABEL not in s.pod_template.metadata.labels
    ),
    field="suspend",
)


class TrainingRunSpec(ApiModel):
    """What to train, on what data, with which container and resources."""

    model_config = ConfigDict(
        json_schema_extra=model_rules(_GPUS_BY_FIELD, _QUEUED_RUNS_NOT_SUSPENDED)
    )

    model: ModelName
    """Name of the model being trained; the registered model name in MLflow."""
    image: Image
    """Container image holding the training code."""
    command: Command = []
    """Entrypoint; the image's ENTRYPOINT when empty."""
    args: Arguments = []
    """Arguments to the entrypoint."""
    env: EnvList = []
    """Extra environment variables for the training container."""
    hyperparameters: Annotated[
        dict[HyperparameterName, Annotated[str, Field(max_length=1024)]],
        Field(max_length=64),
        checked(total_map_length(1024, "hyperparameters"), _DISTINCT_HP_VARIABLES),
    ] = {}
    """Passed to the container as `HP_<NAME>` variables and as
    `TRAILBOSS_HYPERPARAMETERS` (JSON), and logged as MLflow params.
    Values are strings: quote numbers (`learning_rate: "0.1"`)."""
    dataset: DatasetSpec | None = None
    """Training data in S3, pinned at start."""
    experiment: ExperimentName | None = None
    """MLflow experiment; defaults to the model name."""
    resources: ResourceRequirements | None = None
    """CPU and memory for each worker."""
    gpus: Annotated[int, Field(ge=0, le=64)] = 0
    """GPUs per worker, requested as `nvidia.com/gpu`."""
    node_selector: Annotated[dict[LabelKey, LabelValue], Field(max_length=8)] = {}
    """Schedule only on nodes with these labels."""
    tolerations: Annotated[list[Toleration], Field(max_length=8)] = []
    """Tolerate these node taints, e.g. a GPU pool's."""
    service_account_name: ObjectName | None = None
    """Service account the training pods run as (e.g. one bound to S3 access)."""
    s3_credentials_secret: ObjectName | None = None
    """Secret with `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` for the
    container; defaults to the operator's configured secret."""
    workers: Annotated[int, Field(ge=1, le=1024)] = 1
    """Number of pods. More than one gives an Indexed Job, a headless Service and
    the MASTER_ADDR / MASTER_PORT / WORLD_SIZE / RANK variables PyTorch DDP expects."""
    backoff_limit: Annotated[int, Field(ge=0, le=100)] = 0
    """Retries of failures of the training code before the run is marked Failed.
    Pods that exit with the infrastructure-failure code 75 (storage or tracking
    unreachable) or are evicted do not count: they are replaced."""
    active_deadline_seconds: Annotated[int, Field(ge=1, le=366 * 24 * 3600)] | None = None
    """Fail the run when it takes longer than this; also bounds how long pods are
    replaced while storage or tracking is unreachable."""
    ttl_seconds_after_finished: Seconds | None = None
    """Delete the Job (not the TrainingRun) this long after it finishes."""
    suspend: bool = False
    """Pause the run: no pods run while true. The only field that may change."""
    registration: RegisterSpec | None = Field(default=None, alias="register")
    """Register the trained model as a ModelVersion on success."""
    security_context: PodSecurity | None = None
    """Pod Security for the training pods. They meet the `restricted` profile by
    default (non-root, no privilege escalation, all capabilities dropped,
    RuntimeDefault seccomp); these settings can only tighten that, or name a user."""
    pod_template: PodTemplate | None = None
    """Labels, annotations, volumes, /dev/shm, image pull secrets, affinity, priority
    and scheduler of the training pods, as in a Kubeflow job's pod template."""

    @model_validator(mode="after")
    def _consistent(self) -> TrainingRunSpec:
        enforce(self, _GPUS_BY_FIELD, _QUEUED_RUNS_NOT_SUSPENDED)
        return self


class MlflowRunStatus(ApiModel):
    """The MLflow run that tracks this training."""

    run_id: str | None = None
    """MLflow run id."""
    experiment_id: str | None = None
    """MLflow experiment id."""
    url: str | None = None
    """Link to the run in the MLflow UI."""


class DatasetPin(ApiModel):
    """The exact data a run trained on."""

    uri: str
    """The dataset URI from the spec."""
    etag: str | None = None
    """ETag of the object (single-object datasets)."""
    version_id: str | None = None
    """S3 version id, when the bucket is versioned."""
    digest: str | None = None
    """`sha256:` over keys, sizes and ETags of every object (prefix datasets)."""
    objects: int | None = None
    """Number of objects pinned."""
    size_bytes: int | None = None
    """Total size in bytes."""
    pinned_at: dt.datetime | None = None
    """When the data was pinned."""


class FailureStatus(ApiModel):
    """Why the run failed, from the Job and its pods."""

    reason: str | None = None
    """Job or container reason, e.g. `BackoffLimitExceeded` or `Error`."""
    message: str | None = None
    """Termination message or log tail of the failed container."""
    exit_code: int | None = None
    """Exit code of the failed container."""


class TrainingRunStatus(CommonStatus):
    """Observed state of a TrainingRun."""

    phase: TrainingPhase | None = None
    """Pending, Running, Succeeded or Failed. A finished run also has the condition
    Complete (it succeeded) or Failed set to True, as a batch/v1 Job does."""
    job_name: str | None = None
    """The Job running the training."""
    attempts: int | None = None
    """Pods started so far (retries included)."""
    start_time: dt.datetime | None = None
    """When the Job started."""
    completion_time: dt.datetime | None = None
    """When the run finished."""
    mlflow: MlflowRunStatus | None = None
    """The MLflow run tracking this training."""
    dataset: DatasetPin | None = None
    """The pinned training data."""
    metrics: dict[str, float] = {}
    """Final metrics read from the MLflow run."""
    failure: FailureStatus | None = None
    """Why the run failed."""
    model_version: str | None = None
    """The ModelVersion registered from this run."""


def _immutable_except_suspend() -> str:
    fields = [f.alias or n for n, f in TrainingRunSpec.model_fields.items() if n != "suspend"]
    parts = [
        f"has(self.{f}) == has(oldSelf.{f}) && (!has(self.{f}) || self.{f} == oldSelf.{f})"
        for f in fields
    ]
    return " && ".join(f"({p})" for p in parts)


class TrainingRun(Resource):
    """A training run of a model."""

    info: ClassVar[KindInfo] = KindInfo(
        kind="TrainingRun",
        plural="trainingruns",
        short_names=("trun",),
        name_rule=ObjectNameRule(
            TRAINING_RUN_NAME_LIMIT,
            "its Job is named <name>-train-<hash5> and distributed workers' hostnames "
            "add -<index>, within 63 characters",
        ),
        spec_rules=(
            {
                "rule": _immutable_except_suspend(),
                "message": "a TrainingRun's spec is immutable except spec.suspend: "
                "create a new TrainingRun to train with other settings",
            },
        ),
        columns=(
            PrinterColumn("Model", ".spec.model"),
            PrinterColumn("Phase", ".status.phase"),
            READY_COLUMN,
            PrinterColumn("Job", ".status.jobName", priority=1),
            PrinterColumn("MLflow Run", ".status.mlflow.runId", priority=1),
            PrinterColumn("Model Version", ".status.modelVersion"),
            AGE_COLUMN,
        ),
    )

    kind: str = "TrainingRun"
    spec: TrainingRunSpec
    status: TrainingRunStatus = TrainingRunStatus()
