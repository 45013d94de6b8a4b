"""kopf handlers: parse the object, hand it to a reconciler, nothing more.

Importing this package registers every handler with kopf's default registry.
"""

from __future__ import annotations

from typing import Any

import kopf

from trailboss.runtime import configure
from trailboss.settings import Settings

_settings = Settings()


def install(settings: Settings) -> None:
    """Use these settings instead of the ones read from the environment."""
    global _settings
    _settings = settings


def current_settings() -> Settings:
    return _settings


@kopf.on.startup()
def _startup(settings: kopf.OperatorSettings, **_: Any) -> None:
    configure(settings, _settings.peering)
