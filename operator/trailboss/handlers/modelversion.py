"""kopf handlers for ModelVersions."""

from __future__ import annotations

from typing import Any

import kopf

from trailboss.api.common import GROUP, VERSION
from trailboss.builders.drift import PROFILE_LABEL
from trailboss.handlers.owners import mine, owner
from trailboss.handlers.services import services
from trailboss.reconcilers import modelversion, modelversion_deletion

RESOURCE = (GROUP, VERSION, "modelversions")
RESYNC_SECONDS = 60.0
FINAL = ("Validated", "Rejected", "Failed")


def unfinished(status: kopf.Status, meta: Any, **_: Any) -> bool:
    return mine(meta) and status.get("phase") not in FINAL


@kopf.on.create(*RESOURCE, when=mine)
@kopf.on.resume(*RESOURCE, when=mine)
def reconcile(body: kopf.Body, **_: Any) -> None:
    modelversion.reconcile(dict(body), services())


@kopf.timer(*RESOURCE, interval=RESYNC_SECONDS, initial_delay=RESYNC_SECONDS, when=unfinished)
def resync(body: kopf.Body, **_: Any) -> None:
    # Safety net only: missing artifacts and registry outages come back through
    # the reconciler's requeue with backoff.
    modelversion.reconcile(dict(body), services())


@kopf.on.event("batch", "v1", "jobs", labels={PROFILE_LABEL: kopf.PRESENT})
def profile_job_changed(body: kopf.Body, type: str | None, **_: Any) -> None:
    """A reference profile Job changed: record the profile now."""
    if type is None:
        return
    found = owner(body, "ModelVersion")
    if found is not None:
        modelversion.reconcile_latest(*found, services())


@kopf.on.delete(*RESOURCE, when=mine)
def deleted(body: kopf.Body, logger: kopf.Logger, **_: Any) -> None:
    svc = services()
    try:
        outcome = modelversion_deletion.finalize(dict(body), svc)
    except modelversion_deletion.FinalizerBlocked as blocked:
        raise kopf.TemporaryError(str(blocked), delay=15) from blocked
    logger.info(outcome)
    modelversion.forget(body["metadata"]["uid"])
