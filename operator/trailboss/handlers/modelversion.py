"""kopf handlers for ModelVersions."""

from __future__ import annotations

from typing import Any

import kopf

from trailboss.api.common import GROUP, VERSION
from trailboss.handlers.services import services
from trailboss.reconcilers import modelversion

RESOURCE = (GROUP, VERSION, "modelversions")
POLL_SECONDS = 5.0


@kopf.on.create(*RESOURCE)
@kopf.on.resume(*RESOURCE)
def reconcile(body: kopf.Body, **_: Any) -> None:
    modelversion.reconcile(dict(body), services())


@kopf.timer(*RESOURCE, interval=POLL_SECONDS, initial_delay=POLL_SECONDS)
def poll(body: kopf.Body, **_: Any) -> None:
    # Retries missing artifacts and registry outages; returns at once when settled.
    modelversion.reconcile(dict(body), services())


@kopf.on.delete(*RESOURCE)
def deleted(body: kopf.Body, logger: kopf.Logger, **_: Any) -> None:
    svc = services()
    try:
        outcome = modelversion.finalize(dict(body), svc)
    except modelversion.FinalizerBlocked as blocked:
        raise kopf.TemporaryError(str(blocked), delay=15) from blocked
    logger.info(outcome)
    modelversion.forget(body["metadata"]["uid"])
