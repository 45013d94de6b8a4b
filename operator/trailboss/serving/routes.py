"""The HTTP app of a loaded model: MLflow's own scoring app plus the v2 routes.

``/invocations``, ``/ping``, ``/health`` and ``/version`` are MLflow's, unchanged,
so every input format MLflow accepts (``dataframe_split``, ``dataframe_records``,
``instances``, ``inputs``, CSV, Parquet) works as with ``mlflow models serve``.
A request MLflow's parsing fails on with an error it does not expect (a body nested too
deeply, for one) is answered 400 as the client's mistake, never as the model's.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response

from trailboss import __version__
from trailboss.serving import v2
from trailboss.serving.model import ServedModel
from trailboss.serving.request import CURRENT_REQUEST, is_valid_request_id

JSON = "application/json"


def model_app(served: ServedModel, name: str, version: str) -> FastAPI:
    from mlflow.pyfunc import scoring_server

    app: FastAPI = scoring_server.init(served)  # type: ignore[arg-type]  # duck-typed pyfunc
    app.add_exception_handler(Exception, unreadable_request)
    V2Routes(served, name, version).mount(app)
    return app


async def unreadable_request(request: Request, error: Exception) -> Response:
    """An error MLflow's scoring app let escape. Before the model was called, it came from
    reading the request, which the client wrote: 400. After, the server's own fault: 500.
    (The model's own failures never get here: :class:`ServedModel` answers them.)"""
    state = CURRENT_REQUEST.get()
    if state is not None and not state.predicted:
        message = f"the request could not be read: {type(error).__name__}: {error}"
        return _json({"error_code": "BAD_REQUEST", "message": message}, 400)
    message = f"internal server error: {type(error).__name__}: {error}"
    return _json({"error_code": "INTERNAL_ERROR", "message": message}, 500)


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status_code=status, media_type=JSON)


def v2_error(message: str, status: int) -> Response:
    return _json({"error": message}, status)


class V2Routes:
    def __init__(self, served: ServedModel, name: str, version: str) -> None:
        self.served, self.name, self.version = served, name, version

    def mount(self, app: FastAPI) -> None:
        app.add_api_route("/v2", self.server_metadata, methods=["GET"])
        app.add_api_route("/v2/health/ready", self.ready, methods=["GET"])
        for base in ("/v2/models/{name}", "/v2/models/{name}/versions/{version}"):
            app.add_api_route(base, self.model_metadata, methods=["GET"])
            app.add_api_route(base + "/ready", self.model_ready, methods=["GET"])
            app.add_api_route(base + "/infer", self.infer, methods=["POST"])

    async def server_metadata(self) -> Response:
        return _json({"name": "trailboss", "version": __version__, "extensions": []})

    async def ready(self) -> Response:
        return _json({"ready": True})

    def _unknown(self, name: str, version: str | None) -> Response | None:
        if name != self.name:
            return v2_error(
                f"model '{name}' is not served here; this server serves '{self.name}'", 404
            )
        if version is not None and version != self.version:
            return v2_error(
                f"version '{version}' of '{name}' is not served here; this server serves "
                f"version '{self.version}'",
                404,
            )
        return None

    async def model_metadata(self, name: str, version: str | None = None) -> Response:
        metadata = self.served.metadata
        return self._unknown(name, version) or _json(
            {
                "name": self.name,
                "versions": [self.version],
                "platform": "mlflow",
                "inputs": v2.input_metadata(metadata.get_input_schema()),
                "outputs": v2.output_metadata(metadata.get_output_schema()),
            }
        )

    async def model_ready(self, name: str, version: str | None = None) -> Response:
        return self._unknown(name, version) or _json({"name": self.name, "ready": True})

    async def infer(self, request: Request, name: str, version: str | None = None) -> Response:
        unknown = self._unknown(name, version)
        if unknown is not None:
            return unknown
        try:
            body = json.loads(await request.body())
        except ValueError as error:
            return v2_error(f"the body is not valid JSON: {error}", 400)
        state = CURRENT_REQUEST.get()
        client_id = body.get("id") if isinstance(body, dict) else None
        # The answer echoes any id; the X-Request-ID header and the log take only one that
        # is a valid header value.
        if state is not None and isinstance(client_id, str) and is_valid_request_id(client_id):
            state.request_id = client_id
        try:
            data = v2.model_input(body, self.served.signature)
            predictions = await asyncio.to_thread(self.served.predict, data)
            tensors = v2.select(v2.outputs(predictions), body.get("outputs"))
        except v2.BadInferenceRequest as error:
            return v2_error(str(error), 400)
        except Exception as error:  # any model failure is answered, not raised
            return v2_error(_message(error), _status(error))
        reply = {"model_name": self.name, "model_version": self.version, "outputs": tensors}
        if isinstance(client_id, str):
            reply["id"] = client_id
        elif state is not None:
            reply["id"] = state.request_id
        return _json(reply)


def _status(error: Exception) -> int:
    from mlflow.exceptions import MlflowException

    if isinstance(error, MlflowException):
        return int(error.get_http_status_code())  # type: ignore[no-untyped-call]
    return 500


def _message(error: Exception) -> str:
    return str(getattr(error, "message", error))
