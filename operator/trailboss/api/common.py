"""Types shared by every kind: the base model, conditions, status, resource
shapes borrowed from core/v1, and the metadata the CRD generator reads."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any, ClassVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from trailboss.api.constraints import (
    ObjectNameRule,
    Rule,
    checked,
    enforce,
    finite,
    model_rules,
)
from trailboss.api.fields import DNS_LABEL as DNS_LABEL
from trailboss.api.fields import (
    LABEL_KEY_OR_EMPTY,
    EnvName,
    LabelValue,
    MetricName,
    ObjectName,
    ResourceName,
    quantity_value,
)
from trailboss.api.fields import Duration as Duration
from trailboss.api.fields import LabelKey as LabelKey
from trailboss.api.fields import ModelName as ModelName
from trailboss.api.fields import Name as Name
from trailboss.api.fields import Quantity as Quantity
from trailboss.api.fields import S3Uri as S3Uri
from trailboss.api.fields import Seconds as Seconds

GROUP = "trailboss.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

# Bounds keep the API server's CEL cost estimates finite; they are far above
# anything a real manifest needs.
MAX_NAME = 253
MAX_STRING = 4096
MAX_ITEMS = 64
MAX_MAP = 64
MAX_CONDITION_MESSAGE = 32768

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
    message: Annotated[str, Field(max_length=MAX_CONDITION_MESSAGE)] = ""
    """What happened and, when something is wrong, what to do about it."""
    last_transition_time: dt.datetime | None = None
    """When the status last changed (not when it was last checked)."""
    observed_generation: int | None = None
    """The .metadata.generation this condition was computed from."""

    @field_validator("message", mode="before")
    @classmethod
    def _fit_message(cls, message: object) -> object:
        # A long error (a traceback, a server's HTML page) is cut rather than
        # making the whole status write fail.
        if isinstance(message, str) and len(message) > MAX_CONDITION_MESSAGE:
            return message[: MAX_CONDITION_MESSAGE - 3] + "..."
        return message


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


SECRET_KEY = r"^[-._a-zA-Z0-9]+$"
ENV_FIELD_PATH = (
    r"^(metadata\.(name|namespace|uid)|metadata\.(labels|annotations)\['[-._a-zA-Z0-9/]+'\]|"
    r"spec\.(nodeName|serviceAccountName)|status\.(hostIP|hostIPs|podIP|podIPs))$"
)


class SecretKeySelector(ApiModel):
    """Selects a key of a Secret or ConfigMap."""

    name: ObjectName
    """Name of the Secret or ConfigMap."""
    key: Annotated[str, Field(pattern=SECRET_KEY, max_length=253)]
    """The key to read: letters, digits, '-', '_' or '.'."""
    optional: bool | None = None
    """Whether the container starts when the key is missing."""


class FieldSelector(ApiModel):
    """Selects a field of the pod."""

    field_path: Annotated[str, Field(pattern=ENV_FIELD_PATH, max_length=253)]
    """Path of the field: `metadata.name`, `metadata.namespace`, `metadata.uid`,
    `metadata.labels['<key>']`, `metadata.annotations['<key>']`, `spec.nodeName`,
    `spec.serviceAccountName`, `status.hostIP` or `status.podIP`."""


_ONE_SOURCE = Rule(
    "(has(self.secretKeyRef) ? 1 : 0) + (has(self.configMapKeyRef) ? 1 : 0)"
    " + (has(self.fieldRef) ? 1 : 0) == 1",
    "valueFrom takes exactly one of secretKeyRef, configMapKeyRef or fieldRef",
    lambda s: [s.secret_key_ref, s.config_map_key_ref, s.field_ref].count(None) == 2,
)


class EnvVarSource(ApiModel):
    """Where an environment variable's value comes from."""

    model_config = ConfigDict(json_schema_extra=model_rules(_ONE_SOURCE))

    secret_key_ref: SecretKeySelector | None = None
    """A key of a Secret in the same namespace."""
    config_map_key_ref: SecretKeySelector | None = None
    """A key of a ConfigMap in the same namespace."""
    field_ref: FieldSelector | None = None
    """A field of the pod, e.g. `metadata.name`."""

    @model_validator(mode="after")
    def _one_source(self) -> EnvVarSource:
        enforce(self, _ONE_SOURCE)
        return self


_VALUE_OR_SOURCE = Rule(
    "!(has(self.value) && has(self.valueFrom))",
    "set value or valueFrom, not both",
    lambda e: e.value is None or e.value_from is None,
)


class EnvVar(ApiModel):
    """An environment variable for the container, as in core/v1."""

    model_config = ConfigDict(json_schema_extra=model_rules(_VALUE_OR_SOURCE))

    name: EnvName
    """Variable name, e.g. `LOG_LEVEL`."""
    value: Annotated[str, Field(max_length=1024)] | None = None
    """Literal value."""
    value_from: EnvVarSource | None = None
    """Read the value from a Secret, ConfigMap or pod field instead."""

    @model_validator(mode="after")
    def _value_or_source(self) -> EnvVar:
        enforce(self, _VALUE_OR_SOURCE)
        return self


_ENV_VALUES_TOTAL = Rule(
    "self.filter(e, has(e.value)).map(e, size(e.value)).sum() <= 1024",
    "the values of env may hold at most 1024 characters in all: put long values in a "
    "ConfigMap and use valueFrom",
    lambda env: sum(len(e.value or "") for e in env) <= 1024,
)
EnvList = Annotated[list[EnvVar], Field(max_length=24), checked(_ENV_VALUES_TOTAL)]
"""Environment variables: at most 24, their literal values 1024 characters in all."""


def _requests_within_limits(resources: ResourceRequirements) -> bool:
    return all(
        quantity_value(amount) <= quantity_value(resources.limits[name])
        for name, amount in resources.requests.items()
        if name in resources.limits
    )


_REQUESTS_WITHIN_LIMITS = Rule(
    "!has(self.requests) || !has(self.limits) || self.requests.all(r, !(r in self.limits) || "
    "quantity(string(self.requests[r])).compareTo(quantity(string(self.limits[r]))) <= 0)",
    "each request must be at most its limit, e.g. requests.memory: 2Gi with limits.memory: 4Gi",
    _requests_within_limits,
)
Resources = Annotated[dict[ResourceName, Quantity], Field(max_length=8)]


class ResourceRequirements(ApiModel):
    """CPU and memory requests and limits, as in core/v1."""

    model_config = ConfigDict(json_schema_extra=model_rules(_REQUESTS_WITHIN_LIMITS))

    requests: Resources = {}
    """Minimum resources, e.g. `{cpu: "2", memory: 4Gi}`."""
    limits: Resources = {}
    """Maximum resources."""

    @model_validator(mode="after")
    def _within_limits(self) -> ResourceRequirements:
        enforce(self, _REQUESTS_WITHIN_LIMITS)
        return self


_TOLERATION_RULES = (
    Rule(
        "has(self.key) && self.key != '' || has(self.operator) && self.operator == 'Exists'",
        "a toleration without a key must use operator: Exists (it then matches every taint)",
        lambda t: bool(t.key) or t.operator == "Exists",
    ),
    Rule(
        "!has(self.operator) || self.operator != 'Exists' || !has(self.value) || self.value == ''",
        "a toleration with operator: Exists takes no value",
        lambda t: t.operator != "Exists" or not t.value,
    ),
    Rule(
        "!has(self.tolerationSeconds) || has(self.effect) && self.effect == 'NoExecute'",
        "tolerationSeconds needs effect: NoExecute",
        lambda t: t.toleration_seconds is None or t.effect == "NoExecute",
    ),
)


class Toleration(ApiModel):
    """Lets pods schedule onto nodes with matching taints, as in core/v1."""

    model_config = ConfigDict(json_schema_extra=model_rules(*_TOLERATION_RULES))

    key: Annotated[str, Field(pattern=LABEL_KEY_OR_EMPTY, max_length=253)] | None = None
    """Taint key; empty with operator Exists matches every taint."""
    operator: Annotated[str, Field(pattern=r"^(Exists|Equal)$", max_length=6)] | None = None
    """Exists or Equal (default Equal)."""
    value: LabelValue | None = None
    """Taint value for operator Equal."""
    effect: (
        Annotated[str, Field(pattern=r"^(NoSchedule|PreferNoSchedule|NoExecute)?$", max_length=16)]
        | None
    ) = None
    """NoSchedule, PreferNoSchedule or NoExecute; empty matches all."""
    toleration_seconds: Seconds | None = None
    """How long a NoExecute taint is tolerated."""

    @model_validator(mode="after")
    def _consistent(self) -> Toleration:
        enforce(self, *_TOLERATION_RULES)
        return self


MetricBounds = Annotated[
    dict[MetricName, Annotated[float, AfterValidator(finite)]], Field(max_length=16)
]
_MIN_AT_MOST_MAX = Rule(
    "!has(self.minimums) || !has(self.maximums) || "
    "self.minimums.all(m, !(m in self.maximums) || self.minimums[m] <= self.maximums[m])",
    "each metric's value in minimums must be at most its value in maximums",
    lambda g: all(v <= g.maximums.get(m, v) for m, v in g.minimums.items()),
)


class ValidationGate(ApiModel):
    """Bounds a model's metrics must meet to be promoted.

    Example: `minimums: {accuracy: 0.9}`, `maximums: {log_loss: 0.3}`.
    """

    model_config = ConfigDict(json_schema_extra=model_rules(_MIN_AT_MOST_MAX))

    minimums: MetricBounds = {}
    """Each metric must be at least this value."""
    maximums: MetricBounds = {}
    """Each metric must be at most this value."""

    @model_validator(mode="after")
    def _min_at_most_max(self) -> ValidationGate:
        enforce(self, _MIN_AT_MOST_MAX)
        return self


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
    name_rule: ObjectNameRule
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

    @model_validator(mode="after")
    def _name_fits(self) -> Resource:
        name = self.metadata.get("name")
        if isinstance(name, str) and not self.info.name_rule.holds(name):
            raise ValueError(self.info.name_rule.message(self.info.kind))
        return self
