"""kopf handlers for Deployments (trailboss.dev): spec and annotation changes,
their model servers' readiness, and new ModelVersions of their model all lead
to the same level-based reconcile."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import kopf

from trailboss import metrics
from trailboss.api.common import GROUP, VERSION
from trailboss.builders.drift import DRIFT_CHECK_LABEL
from trailboss.builders.serving import DEPLOYMENT_LABEL
from trailboss.handlers.owners import mine, owner
from trailboss.handlers.services import services
from trailboss.reconcilers import deployment

RESOURCE = (GROUP, VERSION, "deployments")
RESYNC_SECONDS = 30.0


@kopf.on.create(*RESOURCE, when=mine)
@kopf.on.resume(*RESOURCE, when=mine)
@kopf.on.update(*RESOURCE, when=mine)
def reconcile(body: kopf.Body, **_: Any) -> None:
    deployment.reconcile(dict(body), services())


@kopf.timer(*RESOURCE, interval=RESYNC_SECONDS, initial_delay=RESYNC_SECONDS, when=mine)
def resync(body: kopf.Body, **_: Any) -> None:
    # Safety net: rollout pauses and analysis intervals come back through the
    # reconciler's requeue at their exact time.
    deployment.reconcile(dict(body), services())


class DeploymentsByModel:
    """Deployments by (namespace, model), so a new ModelVersion reaches the
    Deployments that may serve it without a list call.

    Kept here rather than as a kopf index: kopf holds back every handler until
    all indexed objects are listed, which with a bounded number of kopf workers
    (see ``startup.configure``) waits forever once there are more Deployments
    than workers. Updated and read on the event loop only."""

    def __init__(self) -> None:
        self._keys: dict[str, tuple[str, str]] = {}
        self._names: dict[tuple[str, str], dict[str, str]] = {}

    def seen(self, body: Mapping[str, Any], gone: bool) -> None:
        meta = body["metadata"]
        uid = str(meta["uid"])
        self._drop(uid)
        if not gone:
            key = (str(meta["namespace"]), str((body.get("spec") or {}).get("model", "")))
            self._keys[uid] = key
            self._names.setdefault(key, {})[uid] = str(meta["name"])

    def _drop(self, uid: str) -> None:
        key = self._keys.pop(uid, None)
        if key is not None:
            names = self._names[key]
            names.pop(uid, None)
            if not names:
                del self._names[key]

    def serving(self, namespace: str, model: str) -> list[tuple[str, str]]:
        """(name, uid) of each Deployment of ``model`` in ``namespace``."""
        return [(name, uid) for uid, name in self._names.get((namespace, model), {}).items()]


BY_MODEL = DeploymentsByModel()


@kopf.on.event(*RESOURCE, when=mine)
async def deployment_seen(body: kopf.Body, type: str | None, **_: Any) -> None:
    BY_MODEL.seen(body, gone=type == "DELETED")


@kopf.on.event(GROUP, VERSION, "modelversions")
async def model_version_changed(body: kopf.Body, type: str | None, **_: Any) -> None:
    """A ModelVersion appeared or changed phase: a version policy may pick it.

    Async on purpose: the map of Deployments is read on the event loop, where it
    is updated. The reconciles themselves block, so they run in a thread. Every
    ModelVersion counts, whichever operator handles it: the map holds only this
    operator's Deployments."""
    if type is None:  # the initial listing; the Deployments' own resume covers it
        return
    meta = body["metadata"]
    model = str((body.get("spec") or {}).get("model", ""))
    for name, uid in BY_MODEL.serving(meta["namespace"], model):
        await asyncio.to_thread(
            deployment.reconcile_latest, meta["namespace"], name, uid, services()
        )


@kopf.on.event("apps", "v1", "deployments", labels={DEPLOYMENT_LABEL: kopf.PRESENT})
def server_changed(body: kopf.Body, type: str, **_: Any) -> None:
    """A model server's pods changed: the rollout may move on now."""
    if type is None:
        return
    _reconcile_owner(body)


@kopf.on.event("batch", "v1", "jobs", labels={DRIFT_CHECK_LABEL: kopf.PRESENT})
def drift_check_changed(body: kopf.Body, type: str, **_: Any) -> None:
    """A drift check Job finished: record its result now, not at the next resync."""
    if type is None:
        return
    _reconcile_owner(body)


def _reconcile_owner(body: kopf.Body) -> None:
    found = owner(body, "Deployment")
    if found is not None:
        deployment.reconcile_latest(*found, services())


@kopf.on.delete(*RESOURCE, optional=True, when=mine)
def deleted(body: kopf.Body, **_: Any) -> None:
    """Children go by garbage collection; the operator forgets the object and
    its series (traffic, analysis, rollouts, drift)."""
    meta = body["metadata"]
    deployment.forget(meta["uid"])
    metrics.export_drift(meta["namespace"], meta["name"], None)
    metrics.forget_deployment(meta["namespace"], meta["name"])
