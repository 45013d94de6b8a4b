"""Identity set once at startup: finalizer, where kopf keeps its bookkeeping."""

from __future__ import annotations

import random

import kopf

from trailboss.api.common import GROUP
from trailboss.builders.labels import MANAGED_BY, MANAGED_BY_LABEL, OPERATOR_INSTANCE_LABEL
from trailboss.builders.serving import DEPLOYMENT_LABEL
from trailboss.settings import KOPF_WORKERS, WORKERS

FINALIZER = "trailboss.dev/finalizer"


def configure(
    settings: kopf.OperatorSettings, peering: str | None, instance: str | None = None
) -> None:
    """Identity set once: finalizer, where kopf keeps its own bookkeeping."""
    settings.persistence.finalizer = FINALIZER
    # Progress and diff-base live in annotations so kopf never writes into
    # the strict, generated status schema.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="trailboss.dev")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="trailboss.dev", key="last-handled-configuration"
    )
    # The operator posts its own events with reasons users can match on.
    settings.posting.enabled = False
    settings.peering.standalone = peering is None
    if peering:
        settings.peering.name = peering
        settings.peering.mandatory = True
        # kopf pauses every replica when two share a priority; a random one per
        # process lets exactly one replica lead and the others stand by.
        settings.peering.priority = random.randint(1, 2**31 - 1)
    settings.watching.server_timeout = 300
    settings.execution.max_workers = WORKERS
    _bound_the_backlog(settings)
    _watch_only_own_children(settings)
    _watch_only_own_objects(settings, instance)


def _bound_the_backlog(settings: kopf.OperatorSettings) -> None:
    """kopf starts one worker per object with pending events. Unbounded, a
    startup backlog of thousands of new objects starts thousands at once: each
    holds its object and its PATCH in flight, so memory grows by gigabytes and
    the API server times requests out. Bounded, the others wait their turn,
    and a worker leaves soon after its object is handled to make room."""
    queueing = getattr(settings, "queueing", None) or settings.batching
    queueing.worker_limit = KOPF_WORKERS
    queueing.idle_timeout = 1.0
    queueing.error_delays = [1, 2, 5, 10, 30, 60]


def _watch_only_own_children(settings: kopf.OperatorSettings) -> None:
    """The API server sends only the Jobs and model servers the operator made
    (every Job it makes is labelled managed-by trailboss, every model server with
    its Deployment), so the operator neither receives nor keeps in memory the
    other Jobs and apps/v1 Deployments of the cluster. The handlers' own label
    filters stay as they are. Older kopf (before 1.45) filters on its side only."""
    selectors = getattr(settings.watching, "label_selectors", None)
    if selectors is None:
        return
    selectors["batch", "v1", "jobs"] = f"{MANAGED_BY_LABEL}={MANAGED_BY}"
    selectors["apps", "v1", "deployments"] = DEPLOYMENT_LABEL


def _watch_only_own_objects(settings: kopf.OperatorSettings, instance: str | None) -> None:
    """The API server sends only this operator's Deployments, TrainingRuns and
    ModelVersions (``trailboss.dev/operator-instance``): kopf then never keeps its
    bookkeeping on another operator's objects, where two operators' writes would
    conflict. The handlers' ``mine`` filter does the same on older kopf."""
    selectors = getattr(settings.watching, "label_selectors", None)
    if selectors is None:
        return
    wanted = f"{OPERATOR_INSTANCE_LABEL}={instance}" if instance else f"!{OPERATOR_INSTANCE_LABEL}"
    for plural in ("deployments", "trainingruns", "modelversions"):
        selectors[GROUP, plural] = wanted
