"""kopf handlers: parse the object, hand it to a reconciler, nothing more.

Importing this package registers every handler with kopf's default registry.
"""

from __future__ import annotations

from typing import Any

import kopf

from trailboss.handlers import deployment, modelversion, trainingrun
from trailboss.handlers.services import install, services
from trailboss.handlers.startup import configure
from trailboss.reconcilers import deployment as deployment_reconciler
from trailboss.reconcilers import modelversion as modelversion_reconciler
from trailboss.reconcilers import trainingrun as trainingrun_reconciler
from trailboss.reconcilers.requeue import Requeue

__all__ = ["deployment", "install", "modelversion", "trainingrun"]


@kopf.on.startup()
def _startup(settings: kopf.OperatorSettings, **_: Any) -> None:
    svc = services()
    configure(settings, svc.settings.peering)
    # One queue of "come back at T" for every kind.
    requeue = Requeue()
    trainingrun_reconciler.driver.requeue = requeue
    modelversion_reconciler.driver.requeue = requeue
    deployment_reconciler.driver.requeue = requeue
