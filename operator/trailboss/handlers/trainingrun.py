"""kopf handlers for TrainingRuns: every path leads to the same level-based reconcile."""

from __future__ import annotations

from typing import Any

import kopf

from trailboss.api.common import GROUP, VERSION
from trailboss.builders.labels import TRAININGRUN_LABEL
from trailboss.handlers.services import services
from trailboss.reconcilers import trainingrun

RESOURCE = (GROUP, VERSION, "trainingruns")
POLL_SECONDS = 10.0


@kopf.on.create(*RESOURCE)
@kopf.on.resume(*RESOURCE)
@kopf.on.update(*RESOURCE, field="spec.suspend")
def reconcile(body: kopf.Body, **_: Any) -> None:
    trainingrun.reconcile(dict(body), services())


@kopf.timer(*RESOURCE, interval=POLL_SECONDS, initial_delay=POLL_SECONDS)
def poll(body: kopf.Body, **_: Any) -> None:
    # Level-based safety net: progress even when a Job event was missed.
    trainingrun.reconcile(dict(body), services())


@kopf.on.event("batch", "v1", "jobs", labels={TRAININGRUN_LABEL: kopf.PRESENT})
def job_changed(body: kopf.Body, type: str | None, **_: Any) -> None:
    """A training Job changed: reconcile its TrainingRun now rather than at the next poll."""
    if type is None:  # the initial listing; resume handlers cover it
        return
    owner = next(
        (
            o
            for o in body.get("metadata", {}).get("ownerReferences", [])
            if o.get("kind") == "TrainingRun"
        ),
        None,
    )
    if owner is None:
        return
    svc = services()
    parent = svc.kube.get(
        f"{GROUP}/{VERSION}", "TrainingRun", body["metadata"]["namespace"], owner["name"]
    )
    if parent is not None and parent["metadata"]["uid"] == owner["uid"]:
        trainingrun.reconcile(parent, svc)


@kopf.on.delete(*RESOURCE, retries=5, backoff=5)
def deleted(body: kopf.Body, **_: Any) -> None:
    """The Job goes by garbage collection; the MLflow run is marked KILLED.
    After five failed tries the finalizer is released anyway."""
    try:
        trainingrun.kill_mlflow_run(dict(body), services())
    finally:
        trainingrun.forget(body["metadata"]["uid"])
