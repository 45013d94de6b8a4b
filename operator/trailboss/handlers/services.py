"""The clients handlers hand to reconcilers, created once per process."""

from __future__ import annotations

import functools

from trailboss.clients.kube import Kube
from trailboss.clients.prometheus import Prometheus
from trailboss.clients.storage import Storage
from trailboss.clients.tracking import Tracking
from trailboss.reconcilers.common import Services
from trailboss.settings import Settings

_settings = Settings()


def install(settings: Settings) -> None:
    """Use these settings instead of the ones read from the environment."""
    global _settings
    _settings = settings
    services.cache_clear()


@functools.cache
def services() -> Services:
    return Services(
        settings=_settings,
        kube=Kube(),
        tracking=Tracking(_settings.mlflow_tracking_uri, _settings.mlflow_ui_url),
        storage=Storage(_settings.s3_endpoint_url),
        prometheus=Prometheus(),
    )
