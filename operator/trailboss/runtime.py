"""Start the operator: serve metrics, run kopf until stopped (kopf is configured
by the handlers' startup hook)."""

from __future__ import annotations

import asyncio
import logging
import os

import kopf

from trailboss.settings import Settings, refuse_test_settings


def run_operator(settings: Settings, *, verbose: bool = False) -> None:
    refuse_test_settings(settings, os.environ)
    import trailboss.handlers as handlers  # registers the kopf handlers

    handlers.install(settings)
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if settings.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(settings.metrics_port)
    from trailboss.memory import start_trimming

    start_trimming()  # gives a burst's memory back to the OS once it is over
    liveness = (
        f"http://0.0.0.0:{settings.liveness_port}/healthz" if settings.liveness_port else None
    )
    asyncio.run(
        kopf.operator(
            clusterwide=not settings.namespaces,
            namespaces=settings.namespaces,
            liveness_endpoint=liveness,
            standalone=settings.peering is None,
            peering_name=settings.peering,
        )
    )
