"""kopf handlers for TrainingRuns: every path leads to the same level-based reconcile."""

from __future__ import annotations

from typing import Any

import kopf

from trailboss.api.common import GROUP, VERSION
from trailboss.builders.labels import TRAININGRUN_LABEL
from trailboss.handlers.owners import mine, owner
from trailboss.handlers.services import services
from trailboss.reconcilers import trainingrun, trainingrun_tracking

RESOURCE = (GROUP, VERSION, "trainingruns")
RESYNC_SECONDS = 60.0
UNFINISHED = ("Succeeded", "Failed")


def unfinished(status: kopf.Status, meta: Any, **_: Any) -> bool:
    return mine(meta) and status.get("phase") not in UNFINISHED


@kopf.on.create(*RESOURCE, when=mine)
@kopf.on.resume(*RESOURCE, when=mine)
@kopf.on.update(*RESOURCE, field="spec.suspend", when=mine)
def reconcile(body: kopf.Body, **_: Any) -> None:
    trainingrun.reconcile(dict(body), services())


@kopf.timer(*RESOURCE, interval=RESYNC_SECONDS, initial_delay=RESYNC_SECONDS, when=unfinished)
def resync(body: kopf.Body, **_: Any) -> None:
    # Level-based safety net for a missed Job event; finished runs have no timer.
    # Waits and outages come back on their own through the reconciler's requeue.
    trainingrun.reconcile(dict(body), services())


@kopf.on.event("batch", "v1", "jobs", labels={TRAININGRUN_LABEL: kopf.PRESENT})
def job_changed(body: kopf.Body, type: str | None, **_: Any) -> None:
    """A training Job changed: reconcile its TrainingRun now rather than at the next resync."""
    if type is None:  # the initial listing; resume handlers cover it
        return
    found = owner(body, "TrainingRun")
    if found is not None:
        trainingrun.job_changed(found, dict(body), type == "DELETED", services())


@kopf.on.delete(*RESOURCE, retries=5, backoff=5, when=mine)
def deleted(body: kopf.Body, **_: Any) -> None:
    """The Job goes by garbage collection; the MLflow run is marked KILLED.
    After five failed tries the finalizer is released anyway."""
    try:
        trainingrun_tracking.kill_mlflow_run(dict(body), services())
    finally:
        trainingrun.forget(body["metadata"]["uid"])
