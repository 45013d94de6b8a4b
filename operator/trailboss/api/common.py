"""Types shared by every kind: the base model, conditions, status, resource
shapes borrowed from core/v1, and the metadata the CRD generator reads."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, WithJsonSchema
from pydantic.alias_generators import to_camel

GROUP = "trailboss.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

# Bounds keep the API server's CEL cost estimates finite; they are far above
# anything a real manifest needs.
MAX_NAME = 253
MAX_STRING = 4096
MAX_ITEMS = 64
MAX_MAP = 64

READY = "Ready"
"""The condition every kind carries, so `kubectl wait --for=condition=Ready` works."""


class ApiModel(BaseModel):
    """Base for every API object: camelCase JSON, field docstrings become
    descriptions, unknown fields ignored so an older operator reads newer objects."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        use_attribute_docstrings=True,
        extra="ignore",
        use_enum_values=True,
        loc_by_alias=True,
    )

    def to_json(self) -> dict[str, Any]:
        """The object as the API server stores it: camelCase, no unset optionals."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


def explain(error: ValidationError, prefix: str = "") -> str:
    """A validation error as one line per field, in the user's camelCase paths:
    `spec.workers: Input should be greater than or equal to 1`."""
    lines = []
    for item in error.errors():
        path = ".".join(str(p) for p in (prefix, *item["loc"]) if p != "")
        lines.append(f"{path}: {item['msg']}" if path else str(item["msg"]))
    return "; ".join(lines)


def _quantity_schema() -> dict[str, Any]:
    return {"x-kubernetes-int-or-string": True, "pattern": _QUANTITY_PATTERN}


_QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)

Quantity = Annotated[str | int, WithJsonSchema(_quantity_schema())]
"""A Kubernetes resource quantity such as `500m`, `2Gi` or `4`."""

Duration = Annotated[
    str,
    Field(pattern=r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$", max_length=32),
]
"""A Go-style duration such as `30s`, `5m` or `1h30m`."""

Name = Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)]
"""A Kubernetes object name in the same namespace (DNS-1123 label)."""

ModelName = Annotated[
    str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", min_length=1, max_length=128)
]
"""A registered model name in MLflow, e.g. `churn` or `fraud-detector`."""

S3Uri = Annotated[
    str, Field(pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$", max_length=1024)
]
"""An `s3://bucket/key` or `s3://bucket/prefix/` URI."""


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(ApiModel):
    """One observation of the object's state, as in metav1.Condition."""

    type: Annotated[str, Field(max_length=316)]
    """Condition type, e.g. `Ready`."""
    status: ConditionStatus
    """True, False or Unknown."""
    reason: Annotated[str, Field(max_length=1024)] = ""
    """A CamelCase word a program can match on, e.g. `DatasetNotFound`."""
    message: Annotated[str, Field(max_length=32768)] = ""
    """What happened and, when something is wrong, what to do about it."""
    last_transition_time: dt.datetime | None = None
    """When the status last changed (not when it was last checked)."""
    observed_generation: int | None = None
    """The .metadata.generation this condition was computed from."""


class CommonStatus(ApiModel):
    """The status fields every kind shares, following kstatus conventions."""

    observed_generation: int | None = None
    """The .metadata.generation the operator last acted on."""
    conditions: Annotated[
        list[Condition],
        Field(
            max_length=16,
            json_schema_extra={
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["type"],
            },
        ),
    ] = []
    """Current conditions; `Ready` summarises the object."""


class SecretKeySelector(ApiModel):
    """Selects a key of a Secret or ConfigMap."""

    name: Annotated[str, Field(max_length=MAX_NAME)]
    """Name of the Secret or ConfigMap."""
    key: Annotated[str, Field(max_length=MAX_NAME)]
    """The key to read."""
    optional: bool | None = None
    """Whether the container starts when the key is missing."""


class FieldSelector(ApiModel):
    """Selects a field of the pod."""

    field_path: Annotated[str, Field(max_length=MAX_NAME)]
    """Path of the field, e.g. `metadata.namespace`."""


class EnvVarSource(ApiModel):
    """Where an environment variable's value comes from."""

    secret_key_ref: SecretKeySelector | None = None
    """A key of a Secret in the same namespace."""
    config_map_key_ref: SecretKeySelector | None = None
    """A key of a ConfigMap in the same namespace."""
    field_ref: FieldSelector | None = None
    """A field of the pod, e.g. `metadata.name`."""


class EnvVar(ApiModel):
    """An environment variable for the container, as in core/v1."""

    name: Annotated[str, Field(min_length=1, max_length=MAX_NAME)]
    """Variable name."""
    value: Annotated[str, Field(max_length=MAX_STRING)] | None = None
    """Literal value."""
    value_from: EnvVarSource | None = None
    """Read the value from a Secret, ConfigMap or pod field instead."""


class ResourceRequirements(ApiModel):
    """CPU and memory requests and limits, as in core/v1."""

    requests: Annotated[dict[str, Quantity], Field(max_length=16)] = {}
    """Minimum resources, e.g. `{cpu: "2", memory: 4Gi}`."""
    limits: Annotated[dict[str, Quantity], Field(max_length=16)] = {}
    """Maximum resources."""


class Toleration(ApiModel):
    """Lets pods schedule onto nodes with matching taints, as in core/v1."""

    key: Annotated[str, Field(max_length=MAX_NAME)] | None = None
    """Taint key; empty with operator Exists matches every taint."""
    operator: Annotated[str, Field(pattern=r"^(Exists|Equal)$")] | None = None
    """Exists or Equal (default Equal)."""
    value: Annotated[str, Field(max_length=MAX_NAME)] | None = None
    """Taint value for operator Equal."""
    effect: Annotated[str, Field(pattern=r"^(NoSchedule|PreferNoSchedule|NoExecute)?$")] | None = (
        None
    )
    """NoSchedule, PreferNoSchedule or NoExecute; empty matches all."""
    toleration_seconds: int | None = None
    """How long a NoExecute taint is tolerated."""


class ValidationGate(ApiModel):
    """Bounds a model's metrics must meet to be promoted.

    Example: `minimums: {accuracy: 0.9}`, `maximums: {log_loss: 0.3}`.
    """

    minimums: Annotated[dict[str, float], Field(max_length=MAX_MAP)] = {}
    """Each metric must be at least this value."""
    maximums: Annotated[dict[str, float], Field(max_length=MAX_MAP)] = {}
    """Each metric must be at most this value."""


@dataclass(frozen=True)
class PrinterColumn:
    """One column of `kubectl get`."""

    name: str
    json_path: str
    type: str = "string"
    description: str = ""
    priority: int = 0


@dataclass(frozen=True)
class KindInfo:
    """What the CRD generator needs to know about a kind besides its schema."""

    kind: str
    plural: str
    short_names: tuple[str, ...]
    spec_rules: tuple[dict[str, str], ...] = ()
    columns: tuple[PrinterColumn, ...] = field(default_factory=tuple)


AGE_COLUMN = PrinterColumn("Age", ".metadata.creationTimestamp", "date")
READY_COLUMN = PrinterColumn("Ready", '.status.conditions[?(@.type=="Ready")].status')


class Resource(ApiModel):
    """A custom resource: apiVersion, kind, metadata, spec and status."""

    info: ClassVar[KindInfo]

    api_version: str = API_VERSION
    kind: str
    metadata: dict[str, Any] = {}
