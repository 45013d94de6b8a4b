"""Field types with the syntax of what they become: Kubernetes names and labels,
S3 URIs, MLflow names, environment variables, quantities, cron schedules.

Every bound here is also part of the size budget of an object (see
``trailboss.sizebudget``): the operator stores a copy of each spec in an
annotation, and the API server caps all annotations of an object at 256 KiB.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Annotated

from pydantic import AfterValidator, Field, WithJsonSchema

from trailboss.api.constraints import checked, excludes, matches, total_length

_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS_LABEL = rf"^{_LABEL}$"
DNS_1035_LABEL = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = rf"^{_LABEL}(\.{_LABEL})*$"
_QUALIFIED = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
LABEL_KEY = rf"^({_LABEL}(\.{_LABEL})*/)?{_QUALIFIED}$"
LABEL_KEY_OR_EMPTY = rf"^(({_LABEL}(\.{_LABEL})*/)?{_QUALIFIED})?$"
LABEL_VALUE = r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$"
NO_CONTROL = r"^[^\x00-\x1f\x7f]*$"

Name = Annotated[str, Field(pattern=DNS_LABEL, min_length=1, max_length=63)]
"""A Kubernetes object name in the same namespace (DNS-1123 label)."""

ObjectName = Annotated[str, Field(pattern=DNS_SUBDOMAIN, min_length=1, max_length=253)]
"""The name of a Secret, ConfigMap or service account (DNS-1123 subdomain)."""

LabelKey = Annotated[
    str,
    Field(
        pattern=LABEL_KEY,
        max_length=253,
        json_schema_extra={
            "x-syntax": "keys must be label keys: an optional DNS prefix and '/', then up to "
            "63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
        },
    ),
]
LabelValue = Annotated[str, Field(pattern=LABEL_VALUE, max_length=63)]
"""A label value: up to 63 letters, digits, '-', '_' or '.', alphanumeric at both ends."""

ModelName = Annotated[
    str,
    Field(pattern=r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$", max_length=63),
]
"""A registered model name in MLflow, e.g. `churn` or `fraud-detector`: up to 63
letters, digits, '.', '_' or '-', starting and ending with a letter or digit, so
that it is also a valid label value."""

ExperimentName = Annotated[
    str,
    Field(min_length=1, max_length=256),
    checked(
        matches(
            r"^[^\x00-\x1f\x7f]*[^\x00-\x20\x7f][^\x00-\x1f\x7f]*$",
            "an MLflow experiment name needs a visible character and no control "
            "characters, e.g. `churn` or `/teams/risk/churn`",
        )
    ),
]

FeatureName = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9_./:-]{1,128}$",
        max_length=128,
        json_schema_extra={
            "x-syntax": "feature names are column names: 1-128 letters, digits, "
            "'_', '.', '/', ':' or '-'"
        },
    ),
]
"""A feature (column) of the model's input, as the prediction logs and the
reference data name it."""

MetricName = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9_./: -]{1,128}$",
        max_length=128,
        json_schema_extra={
            "x-syntax": "metric names are MLflow metric keys: 1-128 letters, digits, "
            "spaces, '_', '.', '/', ':' or '-'"
        },
    ),
]

HyperparameterName = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z_][A-Za-z0-9_.-]{0,62}$",
        max_length=63,
        json_schema_extra={
            "x-syntax": "hyperparameter names become MLflow param keys and HP_<NAME> "
            "variables: a letter or '_', then up to 62 letters, digits, '_', '.' or '-'"
        },
    ),
]

EnvName = Annotated[
    str,
    Field(min_length=1, max_length=128),
    checked(
        matches(
            r"^[-._a-zA-Z][-._a-zA-Z0-9]*$",
            "an environment variable name is letters, digits, '_', '-' or '.', "
            "not starting with a digit, e.g. `LOG_LEVEL`",
        )
    ),
]

Image = Annotated[
    str,
    Field(min_length=1, max_length=512),
    checked(
        matches(
            r"^[A-Za-z0-9][A-Za-z0-9._/:@+-]*$",
            "an image reference is `registry/repository:tag` or `...@sha256:<digest>`, "
            "without spaces, e.g. `ghcr.io/acme/trainer:1.2`",
        )
    ),
]

_S3_KEY_CHARS = r"[A-Za-z0-9!_.*'()/$@=;:+,-]"
_S3_BUCKET = r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"
S3_URI = rf"^s3://{_S3_BUCKET}(/{_S3_KEY_CHARS}*)?$"
_S3_BUCKET_RULES = (
    excludes(
        r"^s3://[^/]*(\.\.|\.-|-\.)",
        "S3 bucket names cannot contain '..', '.-' or '-.'",
    ),
    excludes(
        r"^s3://[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+(/|$)",
        "an S3 bucket name cannot be an IP address",
    ),
    excludes(
        r"^s3://(xn--|sthree-|amzn-s3-demo-)",
        "S3 bucket names cannot start with 'xn--', 'sthree-' or 'amzn-s3-demo-'",
    ),
    excludes(
        r"^s3://[^/]*(-s3alias|--ol-s3|\.mrap|--x-s3|--table-s3)(/|$)",
        "S3 bucket names cannot end with '-s3alias', '--ol-s3', '.mrap', '--x-s3' or '--table-s3'",
    ),
)

S3Uri = Annotated[
    str,
    Field(pattern=S3_URI, max_length=1024),
    checked(*_S3_BUCKET_RULES),
]
"""An `s3://bucket/key` or `s3://bucket/prefix/` URI: a bucket name of 3-63
lowercase letters, digits, '.' or '-', and a key of letters, digits and
!_.*'()/$@=;:+,-."""

MLFLOW_RUN_ID = r"[A-Za-z0-9_-]{1,64}"

ArtifactUri = Annotated[
    str,
    Field(max_length=1024),
    checked(
        matches(
            rf"^(s3://{_S3_BUCKET}/{_S3_KEY_CHARS}+|runs:/{MLFLOW_RUN_ID}(/{_S3_KEY_CHARS}+)?)$",
            "the artifact is `s3://<bucket>/<path>` or `runs:/<run-id>/<artifact-path>`, "
            "e.g. `runs:/0d5b465e3d42/model`",
        ),
        *_S3_BUCKET_RULES,
    ),
]

ArtifactPath = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*(/[A-Za-z0-9_-][A-Za-z0-9_.-]*)*$",
        min_length=1,
        max_length=253,
    ),
]
"""A relative path inside a run's artifacts, e.g. `model` or `models/churn`: no
leading '/', no '.' or '..' segments."""

Flavor = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
"""An MLflow flavor, e.g. `python_function` or `sklearn`."""

RunId = Annotated[str, Field(pattern=rf"^{MLFLOW_RUN_ID}$", max_length=64)]
"""An MLflow run id."""

Duration = Annotated[
    str,
    Field(pattern=r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$", max_length=32),
]
"""A Go-style duration such as `30s`, `5m` or `1h30m`."""

Seconds = Annotated[int, Field(ge=0, le=366 * 24 * 3600)]
"""A number of seconds, at most a year."""


def _cron_term(atom: str) -> str:
    return rf"(\*|\?|{atom}(-{atom})?)(/[1-9][0-9]?)?"


_MONTHS = "JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC"
_DAYS = "SUN|MON|TUE|WED|THU|FRI|SAT"
CRON_TERMS = tuple(
    _cron_term(atom)
    for atom in (
        r"[0-5]?[0-9]",
        r"(2[0-3]|[01]?[0-9])",
        r"(3[01]|[12][0-9]|0?[1-9])",
        rf"(1[0-2]|0?[1-9]|(?i:{_MONTHS}))",
        rf"([0-7]|(?i:{_DAYS}))",
    )
)
"""One comma-separated term of each cron field (minute, hour, day-of-month, month,
day-of-week) as the API accepts it: `*`, `?`, a value or a range, with an optional
step of 1-99. The schedule parser (policies/cron) checks terms against these, so
the CRD's pattern and the operator agree on what a schedule is."""

CRON = (
    r"^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|"
    + " +".join(rf"{term}(,{term})*" for term in CRON_TERMS)
    + ")$"
)

Cron = Annotated[
    str,
    Field(max_length=128),
    checked(
        matches(
            CRON,
            "a schedule is five cron fields, minute hour day-of-month month day-of-week "
            "(e.g. `0 3 * * 1`), or @hourly, @daily, @weekly, @monthly or @yearly",
        )
    ),
]

QUANTITY = (
    r"^\+?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
_SUFFIX = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
    **{f"{p}i": Decimal(1024) ** (i + 1) for i, p in enumerate("KMGTPE")},
}


def quantity_value(quantity: str | int) -> Decimal:
    """The number a Kubernetes quantity stands for: `500m` is 0.5, `1Gi` is 2**30."""
    if isinstance(quantity, int):
        return Decimal(quantity)
    found = re.fullmatch(r"\+?([0-9.]+)([eE][-+]?[0-9.]+|[KMGTPE]i|[numkMGTPE])?", quantity)
    if not found:
        raise ValueError(f"{quantity!r} is not a quantity")
    number, suffix = found[1], found[2] or ""
    try:
        if suffix[:1] in ("e", "E"):
            return Decimal(number + suffix)
        return Decimal(number) * _SUFFIX[suffix]
    except InvalidOperation as error:
        raise ValueError(f"{quantity!r} is not a quantity") from error


def _quantity(value: str | int) -> str | int:
    if isinstance(value, int):
        if value < 0:
            raise ValueError("a quantity cannot be negative")
        return value
    if not re.fullmatch(QUANTITY[1:-1], value):
        raise ValueError(
            f"{value!r} is not a quantity: use a number with an optional suffix, "
            "e.g. `500m`, `2`, `512Mi` or `4Gi`"
        )
    return value


Quantity = Annotated[
    str | int,
    AfterValidator(_quantity),
    WithJsonSchema(
        {"x-kubernetes-int-or-string": True, "pattern": QUANTITY, "minimum": 0, "maxLength": 64}
    ),
]
"""A Kubernetes resource quantity such as `500m`, `2Gi` or `4`."""

ResourceName = Annotated[
    str,
    Field(
        pattern=r"^(cpu|memory|ephemeral-storage|hugepages-[0-9]+[KMGTPE]i|"
        rf"{_LABEL}(\.{_LABEL})*/{_QUALIFIED})$",
        max_length=253,
        json_schema_extra={
            "x-syntax": "resource names are cpu, memory, ephemeral-storage, hugepages-<size> "
            "or an extended resource such as example.com/fpga"
        },
    ),
]

Command = Annotated[
    list[Annotated[str, Field(max_length=512)]],
    Field(max_length=16),
    checked(total_length(512, "the command")),
]
"""An entrypoint: at most 16 strings, 512 characters in all."""

Arguments = Annotated[
    list[Annotated[str, Field(max_length=1024)]],
    Field(max_length=64),
    checked(total_length(1024, "the arguments")),
]
"""Arguments: at most 64 strings, 1024 characters in all."""
