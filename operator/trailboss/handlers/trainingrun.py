"""kopf handlers for TrainingRuns: every path leads to the same level-based reconcile.

TrainingRuns are watched with an event handler alone, not kopf's change
detection, timers or deletion handlers: kopf then writes nothing to a run (no
finalizer, no last-handled-configuration annotation) and keeps no run in memory,
so a run costs the API server only the operator's own writes. The reconciler
keeps the latest body of each unfinished run and looks at each again at least
every ``trainingrun.RESYNC_SECONDS`` through its own requeue. A run that still carries the
finalizer of an earlier version has it removed by kopf at its next event.
"""

from __future__ import annotations

from typing import Any

import kopf

from trailboss.api.common import GROUP, VERSION
from trailboss.builders.labels import TRAININGRUN_LABEL
from trailboss.handlers.owners import mine, owner
from trailboss.handlers.services import services
from trailboss.reconcilers import trainingrun

RESOURCE = (GROUP, VERSION, "trainingruns")


@kopf.on.event(*RESOURCE, when=mine)
def run_changed(body: kopf.Body, type: str | None, **_: Any) -> None:
    """Created, listed at startup (``type`` None), edited, written, deleted."""
    if type == "DELETED":
        trainingrun.deleted(dict(body), services())
    else:
        trainingrun.watched(dict(body), type in (None, "ADDED"), services())


@kopf.on.event("batch", "v1", "jobs", labels={TRAININGRUN_LABEL: kopf.PRESENT})
def job_changed(body: kopf.Body, type: str | None, **_: Any) -> None:
    """A training Job changed: reconcile its TrainingRun now rather than at the next resync."""
    if type is None:  # the initial listing; the runs' own listing covers it
        return
    found = owner(body, "TrainingRun")
    if found is not None:
        trainingrun.job_changed(found, dict(body), type == "DELETED", services())
