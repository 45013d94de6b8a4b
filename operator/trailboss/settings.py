"""Operator settings, from flags and ``TRAILBOSS_*`` environment variables."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from trailboss import __version__

WORKERS = 16
"""kopf's handler threads: how many reconciles run at once."""
KOPF_WORKERS = 256
"""Objects kopf handles at once, per kind: more wait their turn (see
``handlers.startup``). Handlers still run on the WORKERS threads."""
REQUEUE_WORKERS = 4
"""Threads that run the reconciles objects asked to come back for."""
CONNECTIONS = WORKERS + REQUEUE_WORKERS
"""Connections each client keeps to its server: one per thread that may call it,
so no reconcile waits for a connection or opens one that is then thrown away."""
LABEL_VALUE = r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
PullPolicy = Literal["Always", "IfNotPresent", "Never"]
"""A container's imagePullPolicy."""


class Settings(BaseSettings):
    """Everything the operator needs to know about its surroundings.

    Credentials are never settings: boto3 and MLflow read them from their usual
    environment variables (``AWS_ACCESS_KEY_ID``, ``MLFLOW_TRACKING_TOKEN``…),
    which the Helm chart fills from a Secret.
    """

    model_config = SettingsConfigDict(env_prefix="TRAILBOSS_", extra="ignore")

    namespaces: Annotated[list[str], NoDecode] = []
    """Namespaces to watch; empty watches all namespaces."""
    metrics_port: int = 9090
    """Port of the Prometheus ``/metrics`` endpoint; 0 disables it."""
    liveness_port: int = 8081
    """Port of the ``/healthz`` liveness endpoint; 0 disables it."""
    peering: str | None = None
    """kopf peering name for running two replicas (one active); none runs standalone."""
    mlflow_tracking_uri: str = Field(
        default="http://mlflow.mlflow:5000", validation_alias="MLFLOW_TRACKING_URI"
    )
    """Tracking server the operator and training containers use."""
    mlflow_ui_url: str | None = None
    """Base URL of the MLflow UI for links in status; defaults to the tracking URI."""
    s3_endpoint_url: str | None = None
    """S3 endpoint for non-AWS stores such as MinIO; empty uses AWS."""
    s3_credentials_secret: str | None = None
    """Secret (in each TrainingRun's namespace) with AWS_ACCESS_KEY_ID and
    AWS_SECRET_ACCESS_KEY for training containers."""
    training_pod_labels: dict[str, str] = {}
    """Extra labels on every training pod, e.g. for a mesh or a node runner."""
    serving_pod_labels: dict[str, str] = {}
    """Extra labels on every model server pod."""
    server_image: str = f"ghcr.io/trailboss-dev/trailboss-serve:{__version__}"
    """Image of the built-in model server (`trailboss serve`)."""
    drift_image: str = f"ghcr.io/trailboss-dev/trailboss-drift:{__version__}"
    """Image of the reference-profile and drift check Jobs (`trailboss profile`,
    `trailboss drift`): the operator's plus the drift engine (numpy, scipy, pyarrow)."""
    drift_pod_labels: dict[str, str] = {}
    """Extra labels on every profile and drift check pod."""
    server_image_pull_policy: PullPolicy | None = None
    """imagePullPolicy of the model servers that run ``server_image``; none:
    Kubernetes' default (Always for ``:latest``, IfNotPresent otherwise)."""
    drift_image_pull_policy: PullPolicy | None = None
    """imagePullPolicy of the profile and drift check pods."""
    image_pull_secrets: Annotated[list[str], NoDecode] = []
    """Pull secrets (comma-separated names) of every model server, profile and
    drift check pod. Secrets are namespaced: each must exist in the namespace
    of the Deployment or ModelVersion whose pods pull with it."""
    prometheus_url: str | None = None
    """The platform's Prometheus, for rollout analysis. A Deployment that names no
    Secret of its own (spec.rollout.analysis.prometheusAuth) and whose prometheusUrl
    is under this URL (same scheme, host, port and path prefix) is sent the token
    of ``prometheus_token_file``; no other URL ever is, since any user who may
    write a Deployment chooses its URL."""
    prometheus_token_file: str | None = None
    """File with the operator's bearer token for ``prometheus_url``, read at every
    analysis, so that a rotated token takes effect (the chart mounts it from a
    Secret). A path, not the token: settings hold no credentials."""
    prometheus_ca_file: str | None = None
    """File of PEM certificates that alone are trusted to verify ``prometheus_url``
    over https (for a Deployment whose own Secret has no ``ca.crt``)."""

    operator_instance: Annotated[str | None, Field(pattern=LABEL_VALUE, max_length=63)] = None
    """Handle only objects labelled ``trailboss.dev/operator-instance`` with this
    value; none: only objects without that label. Several operators so share a
    cluster, each with its own objects."""
    time_scale_annotations: bool = False
    """Honour each object's ``trailboss.dev/time-scale`` annotation, which shortens
    its spec durations: for tests of an operator run outside a cluster, and
    refused in one (see ``refuse_test_settings``)."""

    @field_validator("namespaces", "image_pull_secrets", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [ns.strip() for ns in value.split(",") if ns.strip()]
        return value

    @field_validator("prometheus_url", "prometheus_token_file", "prometheus_ca_file")
    @classmethod
    def _empty_is_none(cls, value: str | None) -> str | None:
        return value or None

    @model_validator(mode="after")
    def _prometheus_files_need_its_url(self) -> Settings:
        if self.prometheus_url is None and (self.prometheus_token_file or self.prometheus_ca_file):
            raise ValueError(
                "TRAILBOSS_PROMETHEUS_TOKEN_FILE and TRAILBOSS_PROMETHEUS_CA_FILE are for the "
                "Prometheus that TRAILBOSS_PROMETHEUS_URL names; set it too"
            )
        if self.prometheus_url is not None and not self.prometheus_url.startswith(
            ("http://", "https://")
        ):
            raise ValueError(
                f"TRAILBOSS_PROMETHEUS_URL must be an http:// or https:// URL, not "
                f"{self.prometheus_url!r}"
            )
        return self


IN_CLUSTER = "KUBERNETES_SERVICE_HOST"
"""Set by the kubelet in every container of a pod: the operator runs in a cluster."""


def refuse_test_settings(settings: Settings, environ: Mapping[str, str]) -> None:
    """A setting made for tests stops the operator before it starts in a cluster:
    there, a user's annotation would cut the cooldowns and deadlines that
    protect their production traffic."""
    if settings.time_scale_annotations and environ.get(IN_CLUSTER):
        raise SettingRefused(
            "TRAILBOSS_TIME_SCALE_ANNOTATIONS is for tests of an operator run outside a "
            "cluster, and this one runs in a pod; unset it (the Helm chart never sets it)"
        )


class SettingRefused(Exception):
    """A setting the operator will not start with where it runs."""
