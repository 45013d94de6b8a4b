"""Shapes borrowed from core/v1 (environment variables, resources,
tolerations), with the checks Kubernetes would otherwise make only when the
operator creates the pod, long after the object was admitted."""

from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, Field, model_validator

from trailboss.api.base import ApiModel
from trailboss.api.constraints import Rule, checked, enforce, model_rules
from trailboss.api.fields import (
    LABEL_KEY_OR_EMPTY,
    EnvName,
    LabelValue,
    ObjectName,
    Quantity,
    ResourceName,
    Seconds,
    quantity_value,
)

SECRET_KEY = r"^[-._a-zA-Z0-9]+$"
ENV_FIELD_PATH = (
    r"^(metadata\.(name|namespace|uid)|metadata\.(labels|annotations)\['[-._a-zA-Z0-9/]+'\]|"
    r"spec\.(nodeName|serviceAccountName)|status\.(hostIP|hostIPs|podIP|podIPs))$"
)


class LocalObjectReference(ApiModel):
    """An object in the same namespace, by name."""

    name: ObjectName
    """Its name."""


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
