"""Types shared by every kind: conditions, status, the validation gate, and
the metadata the CRD generator reads. The base model and the core/v1 shapes
live in their own modules and are re-exported here."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, ConfigDict, Field, field_validator, model_validator

from trailboss.api.base import ApiModel as ApiModel
from trailboss.api.base import explain as explain
from trailboss.api.constraints import ObjectNameRule, Rule, enforce, finite, model_rules
from trailboss.api.corev1 import EnvList as EnvList
from trailboss.api.corev1 import EnvVar as EnvVar
from trailboss.api.corev1 import EnvVarSource as EnvVarSource
from trailboss.api.corev1 import FieldSelector as FieldSelector
from trailboss.api.corev1 import ResourceRequirements as ResourceRequirements
from trailboss.api.corev1 import SecretKeySelector as SecretKeySelector
from trailboss.api.corev1 import Toleration as Toleration
from trailboss.api.fields import DNS_LABEL as DNS_LABEL
from trailboss.api.fields import Duration as Duration
from trailboss.api.fields import LabelKey as LabelKey
from trailboss.api.fields import MetricName
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
