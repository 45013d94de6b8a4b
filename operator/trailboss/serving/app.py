"""The server's front door: readiness, metrics, the request size limit and per-request accounting.

A thin ASGI layer in front of the model's app (MLflow's scoring app plus the
v2 routes, see :mod:`trailboss.serving.routes`). It answers at once, while the
model still loads: ``/v2/health/live`` says the process is up, ``/metrics``
works, and everything else says 503 until the model is loaded and a warm-up
prediction passed, so a readiness probe on ``/ping``, ``/health`` or
``/v2/health/ready`` lets no request reach a pod that cannot answer. It is
plain ASGI rather than framework middleware, which keeps its cost per request
to a few microseconds.

Whose fault a failed request is decides how it is counted: an answer in 4xx is
the client's (``outcome="bad_input"``), one in 5xx the server's or the model's
(``outcome="error"``, the series canary analysis reads). So a client's mistake is
answered 4xx here whenever the layers behind would get it wrong: no readable
Content-Type on ``/invocations`` is a 415, and an error escaping the model's app
is never counted as the model's.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import re
import threading
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from trailboss.serving import content_type
from trailboss.serving.config import ServeSettings
from trailboss.serving.metrics import ServerMetrics, error_type
from trailboss.serving.model import LoadedModel, ServedModel
from trailboss.serving.predlog import PredictionLogger
from trailboss.serving.request import (
    CURRENT_REQUEST,
    RequestState,
    is_valid_request_id,
    new_request_id,
)

log = logging.getLogger(__name__)

PREDICTION_PATH = re.compile(r"^/(invocations|v2/models/[^/]+(/versions/[^/]+)?/infer)$")


class ModelServer:
    """ASGI app of one model server; the model loads in a thread after startup."""

    def __init__(
        self,
        settings: ServeSettings,
        metrics: ServerMetrics,
        logger: PredictionLogger | None,
        load: Callable[[], LoadedModel],
        build_routes: Callable[[ServedModel], ASGIApp],
    ) -> None:
        self.settings, self.metrics, self.logger = settings, metrics, logger
        self._load, self._build_routes = load, build_routes
        self.routes: ASGIApp | None = None
        self.load_error: str | None = None
        self.on_load_failure: Callable[[], None] = lambda: None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        if path == "/metrics":
            body = generate_latest(self.metrics.registry)
            await respond(send, 200, body, CONTENT_TYPE_LATEST)
        elif path == "/v2/health/live":
            await respond_json(send, 200, {"live": True})
        elif scope["method"] == "POST" and PREDICTION_PATH.match(path):
            await self._predict(scope, receive, send)
        elif self.routes is None:
            await self._not_ready(path, send)
        else:
            await self.routes(scope, receive, send)

    async def _predict(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        state = RequestState(request_id=_request_id(scope))
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [
                    *message.get("headers", []),
                    (b"x-request-id", state.request_id.encode()),
                ]
                message = {**message, "headers": headers}
            await send(message)

        token = CURRENT_REQUEST.set(state)
        crashed = False
        try:
            body = await read_body(scope, receive, self.settings.max_request_bytes)
            if body is None:
                await self._too_large(scope["path"], send_with_id)
            elif self.routes is None:
                await self._not_ready(scope["path"], send_with_id)
            elif scope["path"] == "/invocations":
                await self._invocations(scope, replay(body, receive), send_with_id)
            else:
                await self.routes(scope, replay(body, receive), send_with_id)
        except Exception as escaped:
            crashed = True
            status = await self._crashed(scope["path"], status, escaped, send_with_id)
        finally:
            CURRENT_REQUEST.reset(token)
            error = error_type(status or 500)
            if crashed and error == "model_error":
                error = "internal"  # the model's failures are answered, never raised
            self.metrics.observe(time.perf_counter() - started, error, state.rows)

    async def _invocations(self, scope: Scope, receive: Receive, send: Send) -> None:
        """MLflow's scoring app, for a body whose Content-Type it can read."""
        assert self.routes is not None
        value = _header(scope, b"content-type")
        if value not in content_type.READABLE:  # the usual request costs this lookup only
            refused = content_type.unreadable(value)
            if refused is not None:
                await respond_json(send, 415, error_body(scope["path"], "BAD_REQUEST", refused))
                return
            assert value is not None
            scope = _with_header(scope, b"content-type", content_type.normalized(value))
        await self.routes(scope, receive, send)

    async def _crashed(self, path: str, status: int, error: Exception, send: Send) -> int:
        """An error escaped the app: logged (with its traceback when it is the server's) and
        answered 500 unless an answer already started. Returns the status the client got."""
        if 0 < status < 500:
            log.warning("request to %s refused: %s: %s", path, type(error).__name__, error)
            return status
        log.error("request to %s failed", path, exc_info=error)
        if status == 0:
            with contextlib.suppress(Exception):  # the client may be gone
                message = "internal server error; the server's log has the details"
                await respond_json(send, 500, error_body(path, "INTERNAL_ERROR", message))
        return status or 500

    async def _too_large(self, path: str, send: Send) -> None:
        limit = self.settings.max_request_bytes
        message = (
            f"request body too large: this server accepts at most {limit} bytes "
            "(TRAILBOSS_MAX_REQUEST_BYTES / --max-request-bytes); send fewer rows per request"
        )
        await respond_json(send, 413, error_body(path, "REQUEST_TOO_LARGE", message))

    async def _not_ready(self, path: str, send: Send) -> None:
        what = f"model '{self.settings.model_name}' version '{self.settings.model_version}'"
        message = (
            f"{what} failed to load: {self.load_error}"
            if self.load_error
            else f"{what} is not ready yet: loading and warming up"
        )
        await respond_json(send, 503, error_body(path, "NOT_READY", message))

    # -- lifecycle ----------------------------------------------------------------

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await asyncio.to_thread(self.stop)
                await send({"type": "lifespan.shutdown.complete"})
                return

    def start(self) -> None:
        if self.logger is not None:
            self.logger.start()
        threading.Thread(target=self.load_model, name="model-load", daemon=True).start()

    def stop(self) -> None:
        """Flush the prediction log (SIGTERM path)."""
        if self.logger is not None:
            rows = self.logger.buffered_rows
            log.info("shutting down: writing %d buffered prediction log rows", rows)
            self.logger.close(timeout=10.0)

    def load_model(self) -> None:
        settings = self.settings
        log.info("loading model '%s' version '%s'", settings.model_name, settings.model_version)
        try:
            loaded = self._load()
            routes = self._build_routes(ServedModel(loaded.pyfunc, self.logger))
        except Exception as error:
            log.exception("the model could not be loaded")
            self.load_error = f"{type(error).__name__}: {error}"
            self.on_load_failure()
            return
        if loaded.faulty:
            log.warning(
                "THIS VERSION INJECTS FAULTS ON PURPOSE (test model): never use in production"
            )
        self.metrics.fault_injection.set(1 if loaded.faulty else 0)
        self.metrics.load_seconds.set(loaded.seconds)
        # The model and the libraries live as long as the process: keep them out of every
        # future garbage collection, which otherwise rescans them on the request path.
        gc.collect()
        gc.freeze()
        self.routes = routes
        self.metrics.ready.set(1)
        log.info("ready after %.2f s (warm-up prediction: %s)", loaded.seconds, loaded.warmed_up)


def _request_id(scope: Scope) -> str:
    value = _header(scope, b"x-request-id")
    if value is not None:
        text = value.decode("latin-1")
        if is_valid_request_id(text):
            return text
    return new_request_id()


def _with_header(scope: Scope, name: bytes, value: bytes) -> Scope:
    """The scope with one header replaced (HTTP media types ignore case; MLflow does not)."""
    headers = [(n, v) for n, v in scope["headers"] if n != name]
    return {**scope, "headers": [*headers, (name, value)]}


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            found: bytes = value
            return found
    return None


def error_body(path: str, code: str, message: str) -> dict[str, str]:
    """MLflow's error shape on MLflow's routes, the v2 shape on v2 routes."""
    if path.startswith("/v2"):
        return {"error": message}
    return {"error_code": code, "message": message}


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None as soon as it is known to exceed ``limit`` bytes."""
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > limit:
            return None
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the already-read body to the app, then defers to the client."""
    pending = True

    async def receive_again() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return receive_again


async def respond(send: Send, status: int, body: bytes, content_type: str) -> None:
    headers = [(b"content-type", content_type.encode()), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def respond_json(send: Send, status: int, body: Any) -> None:
    await respond(send, status, json.dumps(body).encode(), "application/json")
