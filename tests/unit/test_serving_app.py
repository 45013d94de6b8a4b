"""The server's front door, called as ASGI: readiness gating, liveness, 413, request ids."""

from __future__ import annotations

import asyncio
import json
import re
import tempfile
import threading
from pathlib import Path
from typing import Any

import pytest
from starlette.types import ASGIApp, Message

from trailboss.serving.app import ModelServer
from trailboss.serving.config import ServeSettings
from trailboss.serving.metrics import ServerMetrics
from trailboss.serving.model import LoadedModel, ServedModel
from trailboss.serving.request import CURRENT_REQUEST, RequestState
from trailboss.serving.server import confined_writes

SETTINGS = ServeSettings(
    model_uri="/models/churn", model_name="churn", model_version="7", max_request_bytes=100
)


class Metadata:
    def get_input_schema(self) -> None:
        return None


class Pyfunc:
    metadata = Metadata()


async def model_routes(scope: Any, receive: Any, send: Any) -> None:
    """Stands in for MLflow's app once the model is loaded: answers 200 with the path."""
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": scope["path"].encode()})


def call(
    app: ModelServer, path: str, body: bytes = b"", headers: list[Any] | None = None
) -> tuple[int, bytes, dict[bytes, bytes]]:
    scope = {"type": "http", "method": "POST" if body else "GET", "path": path,
             "headers": headers or [(b"content-length", b"%d" % len(body))]}  # fmt: skip
    sent: list[Message] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start = sent[0]
    return start["status"], b"".join(m.get("body", b"") for m in sent[1:]), dict(start["headers"])


def server(loader: Any) -> ModelServer:
    return ModelServer(SETTINGS, ServerMetrics("churn", "7"), None, loader, lambda _: model_routes)


def test_nothing_but_liveness_and_metrics_answers_before_the_model_is_ready() -> None:
    release = threading.Event()

    def load() -> LoadedModel:
        release.wait(10)
        return LoadedModel(Pyfunc(), seconds=1.5, warmed_up=True, faulty=False)

    app = server(load)
    app.start()
    assert call(app, "/v2/health/live")[0] == 200
    for path in ("/ping", "/health", "/v2/health/ready", "/version"):
        assert call(app, path)[0] == 503, path
    assert b"not ready yet" in call(app, "/ping")[1]
    assert call(app, "/invocations", b"{}")[0] == 503
    assert b"trailboss_model_ready" in call(app, "/metrics")[1]
    assert (
        app.metrics.registry.get_sample_value(
            "trailboss_model_errors_total", {"model": "churn", "version": "7", "type": "not_ready"}
        )
        == 1
    )

    release.set()
    deadline = threading.Event()
    while app.routes is None and not deadline.wait(0.01):
        pass
    assert call(app, "/ping") == (200, b"/ping", {})
    assert (
        app.metrics.registry.get_sample_value(
            "trailboss_model_load_duration_seconds", {"model": "churn", "version": "7"}
        )
        == 1.5
    )


def test_a_model_that_fails_to_load_says_why_and_stops_the_server() -> None:
    def load() -> LoadedModel:
        raise FileNotFoundError("no MLmodel at /models/churn")

    stopped = threading.Event()
    app = server(load)
    app.on_load_failure = stopped.set
    app.load_model()
    assert stopped.is_set()
    status, body, _ = call(app, "/ping")
    assert status == 503
    assert (
        "failed to load: FileNotFoundError: no MLmodel at /models/churn"
        in json.loads(body)["message"]
    )


def loaded() -> ModelServer:
    app = server(lambda: LoadedModel(Pyfunc(), 0.1, True, False))
    app.load_model()
    return app


def test_an_oversized_body_gets_413_naming_the_limit_and_the_flag() -> None:
    status, body, _ = call(loaded(), "/invocations", b"x" * 101)
    assert status == 413
    assert "at most 100 bytes" in json.loads(body)["message"]
    v2_status, v2_body, _ = call(loaded(), "/v2/models/churn/infer", b"x" * 101)
    assert (v2_status, "--max-request-bytes" in json.loads(v2_body)["error"]) == (413, True)


def test_an_oversized_body_without_content_length_is_refused_too() -> None:
    status, _, _ = call(loaded(), "/invocations", b"x" * 101, headers=[])
    assert status == 413


def test_every_prediction_answer_carries_a_request_id() -> None:
    app = loaded()
    _, _, headers = call(app, "/invocations", b"{}", [(b"x-request-id", b"abc-123")])
    assert headers[b"x-request-id"] == b"abc-123"
    _, _, generated = call(app, "/invocations", b"{}", [(b"x-request-id", b"bad id with spaces")])
    _, _, another = call(app, "/invocations", b"{}", [])
    ids = {generated[b"x-request-id"], another[b"x-request-id"]}
    assert len(ids) == 2
    assert all(re.fullmatch(rb"[0-9a-f]{32}", i) for i in ids)


def test_the_wrapped_model_is_what_the_routes_get() -> None:
    seen: list[ServedModel] = []

    def routes(served: ServedModel) -> ASGIApp:
        seen.append(served)
        return model_routes

    app = ModelServer(SETTINGS, ServerMetrics("churn", "7"), None,
                      lambda: LoadedModel(Pyfunc(), 0.1, True, False), routes)  # fmt: skip
    app.load_model()
    assert isinstance(seen[0], ServedModel)
    assert seen[0].metadata is Pyfunc.metadata


class Recorder:
    def __init__(self) -> None:
        self.records: list[Any] = []

    def record(self, record: Any) -> None:
        self.records.append(record)


class Crashing(Pyfunc):
    def predict(self, data: Any) -> Any:
        raise ValueError("weights are NaN")


def test_a_model_crash_is_a_500_and_its_rows_are_logged_as_errors() -> None:
    from mlflow.exceptions import MlflowException

    recorder = Recorder()
    served = ServedModel(Crashing(), recorder)  # type: ignore[arg-type]
    with pytest.raises(MlflowException, match="ValueError: weights are NaN") as raised:
        served.predict([[1.0], [2.0]])
    # MLflow leaves get_http_status_code unannotated.
    assert raised.value.get_http_status_code() == 500  # type: ignore[no-untyped-call]
    (record,) = recorder.records
    assert (record.outcome, record.rows, record.outputs) == ("error", 2, None)


class Doubling(Pyfunc):
    def predict(self, data: Any) -> Any:
        return [2 * x for x in data]


def test_a_prediction_is_logged_by_reference_with_its_requests_id_and_arrival() -> None:
    recorder = Recorder()
    served = ServedModel(Doubling(), recorder)  # type: ignore[arg-type]
    state = RequestState("req-1")
    token = CURRENT_REQUEST.set(state)
    try:
        data = [1.0, 2.0]
        assert served.predict(data) == [2.0, 4.0]
    finally:
        CURRENT_REQUEST.reset(token)
    (record,) = recorder.records
    assert (record.request_id, record.timestamp_us, record.outcome) == (
        "req-1",
        state.arrived_us,
        "ok",
    )
    assert record.inputs is data
    assert (record.outputs, record.rows) == ([2.0, 4.0], 2)


def test_fault_settings_are_checked_and_only_the_error_share_fails() -> None:
    from trailboss.serving.faults import ERROR_SHARE, Faults, InjectedFault

    with pytest.raises(ValueError, match=ERROR_SHARE):
        Faults.from_config({ERROR_SHARE: 1.5})
    faults = Faults(error_share=0.25)
    faults.apply(draw=0.25)
    with pytest.raises(InjectedFault, match="deliberate fault"):
        faults.apply(draw=0.24)


def test_the_servers_temporary_files_go_when_it_stops(tmp_path: Path) -> None:
    # Several servers can share one machine's /tmp: each leaves nothing behind.
    with confined_writes(str(tmp_path)) as scratch:
        download = Path(tempfile.mkdtemp(prefix="model-"))
        (download / "model.pkl").write_bytes(b"weights")
        assert download.parent == Path(scratch)
        assert Path(scratch).parent == tmp_path
    assert list(tmp_path.iterdir()) == []
    assert tempfile.gettempdir() != scratch  # the rest of the process is as it was


def sample(app: ModelServer, name: str, **labels: str) -> float | None:
    return app.metrics.registry.get_sample_value(name, {"model": "churn", "version": "7", **labels})


def outcomes(app: ModelServer) -> dict[str, float | None]:
    return {o: sample(app, "trailboss_model_requests_total", outcome=o)
            for o in ("ok", "bad_input", "error")}  # fmt: skip


@pytest.mark.parametrize(
    ("content_type", "why"),
    [
        (None, "the request has no Content-Type header"),
        (b"", "the request has no Content-Type header"),
        (b"application/x-www-form-urlencoded", "is not one this server reads"),
        (b"text/plain; charset=utf-8", "is not one this server reads"),
        (b"application/json; charset=latin-1", "reads UTF-8 only"),
        (b"application/json; version=2", "takes no parameter but charset=utf-8"),
    ],
)
def test_invocations_without_a_readable_content_type_is_a_415_and_the_clients_error(
    content_type: bytes | None, why: str
) -> None:
    app = loaded()
    headers = [] if content_type is None else [(b"content-type", content_type)]
    status, body, _ = call(app, "/invocations", b'{"inputs": [[1]]}', headers)
    assert status == 415
    message = json.loads(body)["message"]
    assert why in message
    assert "Content-Type" in message
    assert outcomes(app) == {"ok": 0, "bad_input": 1, "error": 0}
    assert sample(app, "trailboss_model_errors_total", type="model_error") == 0


async def echo_content_type(scope: Any, receive: Any, send: Any) -> None:
    value = dict(scope["headers"]).get(b"content-type", b"")
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": value})


def test_a_media_type_in_upper_case_reaches_mlflow_in_lower_case() -> None:
    app = ModelServer(SETTINGS, ServerMetrics("churn", "7"), None,
                      lambda: LoadedModel(Pyfunc(), 0.1, True, False),
                      lambda _: echo_content_type)  # fmt: skip
    app.load_model()
    for sent, seen in [(b"Application/JSON; charset=UTF-8", b"application/json; charset=UTF-8"),
                       (b"text/csv", b"text/csv")]:  # fmt: skip
        assert call(app, "/invocations", b"a\n1\n", [(b"content-type", sent)])[:2] == (200, seen)


async def failing_routes(scope: Any, receive: Any, send: Any) -> None:
    raise AttributeError("'NoneType' object has no attribute 'split'")


def test_an_error_escaping_the_models_app_is_answered_and_never_counted_as_the_models() -> None:
    app = ModelServer(SETTINGS, ServerMetrics("churn", "7"), None,
                      lambda: LoadedModel(Pyfunc(), 0.1, True, False),
                      lambda _: failing_routes)  # fmt: skip
    app.load_model()
    status, body, headers = call(app, "/v2/models/churn/infer", b"{}")
    assert status == 500
    assert "server's log" in json.loads(body)["error"]
    assert b"x-request-id" in headers
    assert outcomes(app) == {"ok": 0, "bad_input": 0, "error": 1}
    assert sample(app, "trailboss_model_errors_total", type="model_error") == 0
    assert sample(app, "trailboss_model_errors_total", type="internal") == 1


class Schema:
    """A column signature: tenure (a required double), as MLflow infers it from training data."""

    def __init__(self) -> None:
        from mlflow.types import ColSpec

        self.inputs = [ColSpec("double", "tenure")]

    def is_tensor_spec(self) -> bool:
        return False

    def has_input_names(self) -> bool:
        return True


class ChurnMetadata:
    def get_input_schema(self) -> Schema:
        return Schema()


class RefusesNaN:
    metadata = ChurnMetadata()

    def predict(self, data: Any) -> Any:
        raise ValueError("Input X contains NaN.")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), None])
def test_a_model_failing_on_input_its_signature_forbids_is_the_clients_error(
    value: float | None,
) -> None:
    import pandas as pd
    from mlflow.exceptions import MlflowException

    recorder = Recorder()
    served = ServedModel(RefusesNaN(), recorder)  # type: ignore[arg-type]
    with pytest.raises(MlflowException, match="column 'tenure' is required") as raised:
        served.predict(pd.DataFrame({"tenure": [1.0, value]}))
    assert raised.value.get_http_status_code() == 400  # type: ignore[no-untyped-call]
    assert "row 1" in raised.value.message
    (record,) = recorder.records
    assert (record.outcome, record.rows) == ("error", 2)


def test_a_model_failing_on_input_its_signature_allows_is_still_the_models_error() -> None:
    import pandas as pd
    from mlflow.exceptions import MlflowException

    served = ServedModel(RefusesNaN(), Recorder())  # type: ignore[arg-type]
    with pytest.raises(MlflowException, match="the model failed to predict") as raised:
        served.predict(pd.DataFrame({"tenure": [1.0, 2.0]}))
    assert raised.value.get_http_status_code() == 500  # type: ignore[no-untyped-call]
