"""``trailboss serve``: put the pieces together and run them under uvicorn in one process."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator

from trailboss.serving.app import ModelServer
from trailboss.serving.config import ServeSettings
from trailboss.serving.metrics import ServerMetrics
from trailboss.serving.partitions import LogLocation
from trailboss.serving.predlog import LogPolicy, PredictionLogger

log = logging.getLogger("trailboss.serve")


def prediction_logger(settings: ServeSettings, metrics: ServerMetrics) -> PredictionLogger | None:
    if not settings.log_uri:
        return None
    from trailboss.serving.sink import S3Sink

    location = LogLocation.from_uri(
        settings.log_uri, settings.namespace, settings.deployment_name, settings.model_version
    )
    policy = LogPolicy(
        sample_rate=settings.log_sample_rate,
        batch_rows=settings.batch_rows,
        buffer_rows=settings.log_buffer_rows,
        flush_seconds=settings.log_flush_seconds,
    )
    logger = PredictionLogger(
        location, S3Sink(settings.s3_endpoint_url), metrics, policy, model=settings.model_name
    )
    metrics.track_buffer(lambda: logger.buffered_rows)
    return logger


def build_server(settings: ServeSettings) -> ModelServer:
    from trailboss.serving import model, routes

    metrics = ServerMetrics(settings.model_name, settings.model_version)
    return ModelServer(
        settings,
        metrics,
        prediction_logger(settings, metrics),
        load=lambda: model.load(settings.model_uri),
        build_routes=lambda served: routes.model_app(
            served, settings.model_name, settings.model_version
        ),
    )


@contextlib.contextmanager
def confined_writes(tmp_dir: str | None) -> Iterator[str]:
    """Send every temporary file (model downloads, MLflow's scratch) to one directory
    of this process under ``tmp_dir``, removed when the server stops: the server
    runs on a read-only root filesystem with an emptyDir at ``tmp_dir``, and
    several servers sharing one machine's /tmp leave nothing behind."""
    base = tmp_dir or tempfile.gettempdir()
    os.environ.setdefault("HOME", base)
    os.environ.setdefault("MLFLOW_HOME", base)
    scratch = tempfile.mkdtemp(prefix="trailboss-serve-", dir=base)
    before = tempfile.tempdir, os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = tempfile.tempdir = scratch
    try:
        yield scratch
    finally:
        tempfile.tempdir = before[0]
        if before[1] is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = before[1]
        shutil.rmtree(scratch, ignore_errors=True)


def serve(settings: ServeSettings, verbose: bool = False) -> int:
    """Serve until SIGTERM/SIGINT; exits 1 when the model cannot be loaded."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    with confined_writes(settings.tmp_dir):
        return _run(settings, verbose)


def _run(settings: ServeSettings, verbose: bool) -> int:
    import uvicorn

    app = build_server(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        lifespan="on",
        access_log=False,
        log_level="debug" if verbose else "info",
        server_header=False,
    )
    server = uvicorn.Server(config)

    def stop() -> None:
        server.should_exit = True

    app.on_load_failure = stop
    # uvicorn shuts down gracefully on SIGTERM (the prediction log is flushed), then
    # re-raises the signal to the handler it found: make that a no-op so the pod's
    # container exits 0, as after any orderly stop.
    signal.signal(signal.SIGTERM, lambda *_: None)
    server.run()
    return 1 if app.load_error else 0
