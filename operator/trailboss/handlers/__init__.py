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
from trailboss.settings import REQUEUE_WORKERS

__all__ = ["deployment", "install", "modelversion", "trainingrun"]


@kopf.on.login()
def _login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """The pod's service account in a cluster, else the kubeconfig named by
    $KUBECONFIG when the operator starts (not when a library was imported)."""
    return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)


@kopf.on.startup()
def _startup(settings: kopf.OperatorSettings, **_: Any) -> None:
    svc = services()
    configure(settings, svc.settings.peering, svc.settings.operator_instance)
    # One queue of "come back at T" for every kind.
    requeue = Requeue(workers=REQUEUE_WORKERS)
    trainingrun_reconciler.driver.requeue = requeue
    modelversion_reconciler.driver.requeue = requeue
    deployment_reconciler.driver.requeue = requeue
