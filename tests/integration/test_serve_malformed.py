"""``trailboss serve`` on loopback against a corpus of requests a client got wrong: each is
answered 4xx with a message and counted as ``bad_input``, never as an error of the model
(the series canary analysis reads). Also what a KServe or Triton client expects: safe
integer-to-float widening, and v2 metadata naming the outputs as inference does."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.integration.servers import (
    LOOPBACK,
    Response,
    ServerProcess,
    call,
    churn_frame,
    post_json,
)

JSON = "application/json"
ROW = {"tenure": 1.0, "spend": 2.0, "plan": "pro"}
INFER = "/v2/models/churn/infer"


@dataclass(frozen=True)
class Bad:
    """One malformed request: what a client sent and why it is wrong."""

    why: str
    path: str
    body: bytes
    content_type: str | None = JSON


def records(*rows: dict[str, Any]) -> bytes:
    return json.dumps({"dataframe_records": list(rows)}).encode()


def split(*rows: list[Any]) -> bytes:
    return json.dumps({"dataframe_split": {"columns": list(ROW), "data": list(rows)}}).encode()


def tensors(**overrides: Any) -> list[dict[str, Any]]:
    """A valid v2 request's inputs (one tensor per feature), with some fields replaced."""
    inputs = [
        {"name": "tenure", "shape": [1], "datatype": "FP64", "data": [1.0]},
        {"name": "spend", "shape": [1], "datatype": "FP64", "data": [2.0]},
        {"name": "plan", "shape": [1], "datatype": "BYTES", "data": ["pro"]},
    ]
    inputs[0] = {**inputs[0], **overrides}
    return inputs


def v2(**body: Any) -> bytes:
    return json.dumps({"inputs": tensors(), **body}).encode()


def v2_tenure(**overrides: Any) -> bytes:
    return json.dumps({"inputs": tensors(**overrides)}).encode()


def raw(text: str) -> bytes:
    """JSON as Python writes it: ``NaN`` and ``Infinity`` are not JSON, but clients send them."""
    return text.encode()


INV = "/invocations"
PLAN_OBJECT = {"name": "plan", "shape": [1], "datatype": "BYTES", "data": [{"a": 1}]}
AGE = {"name": "age", "shape": [1], "datatype": "FP64", "data": [3.0]}
NO_ROWS = [{**t, "shape": [0], "data": []} for t in tensors()]
WIDE = {"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [1, 2]}
DEEP = b'{"inputs": ' + b"[" * 5000 + b"]" * 5000 + b"}"
FORM = "application/x-www-form-urlencoded"
PARQUET = "application/vnd.apache.parquet"


def v2_inputs(*inputs: dict[str, Any]) -> bytes:
    return json.dumps({"inputs": list(inputs)}).encode()


CORPUS = [
    # /invocations: the Content-Type
    Bad("no Content-Type", INV, records(ROW), content_type=None),
    Bad("an empty Content-Type", INV, records(ROW), content_type=""),
    Bad("curl -d's form type", INV, records(ROW), FORM),
    Bad("text/plain", INV, records(ROW), "text/plain"),
    Bad("a charset other than UTF-8", INV, records(ROW), "application/json; charset=latin-1"),
    Bad("an unknown media type parameter", INV, records(ROW), "application/json; v=2"),
    # /invocations: the body is not JSON, or not MLflow's
    Bad("malformed JSON", INV, b'{"dataframe_records": [{"tenure": 1'),
    Bad("an empty body", INV, b""),
    Bad("bytes that are not UTF-8", INV, b"\xff\xfe\x00"),
    Bad("a JSON list", INV, b"[1, 2, 3]"),
    Bad("no input field", INV, b'{"data": [[1, 2, "pro"]]}'),
    Bad("two input fields", INV, b'{"dataframe_records": [], "instances": []}'),
    Bad("nesting deeper than a parser goes", INV, DEEP),
    # /invocations: the body is MLflow's, the data is not what the model takes
    Bad("NaN in a required column", INV, raw(
        '{"dataframe_split": {"columns": ["tenure", "spend", "plan"],'
        ' "data": [[NaN, 2.0, "pro"]]}}')),
    Bad("Infinity in a required column", INV, raw(
        '{"dataframe_records": [{"tenure": Infinity, "spend": 2.0, "plan": "pro"}]}')),
    Bad("-Infinity through 'inputs'", INV, raw(
        '{"inputs": {"tenure": [-Infinity], "spend": [2.0], "plan": ["pro"]}}')),
    Bad("null in a required column", INV, split([None, 2.0, "pro"])),
    Bad("NaN in CSV", INV, b"tenure,spend,plan\nnan,2.0,pro\n", "text/csv"),
    Bad("a missing column", INV, records({"tenure": 1.0, "spend": 2.0})),
    Bad("text in a number column", INV, records({**ROW, "tenure": "ten"})),
    Bad("an object in a number column", INV, records({**ROW, "spend": {"a": 1}})),
    Bad("an object in a text column", INV, records({**ROW, "plan": {"a": 1}})),
    Bad("more values than columns", INV, split([1.0, 2.0, "pro", 4.0])),
    Bad("columns of different lengths", INV, raw(
        '{"inputs": {"tenure": [1.0], "spend": [2.0, 3.0], "plan": ["pro"]}}')),
    Bad("no rows", INV, records()),
    Bad("CSV without the model's columns", INV, b"a;b\n1;2\n", "text/csv"),
    Bad("Parquet that is not Parquet", INV, b"PAR1 not really", PARQUET),
    Bad("a body over the size limit", INV, records(*[ROW] * 2000)),
    # v2 infer
    Bad("v2: malformed JSON", INFER, b'{"inputs": ['),
    Bad("v2: not UTF-8", INFER, b"\xff"),
    Bad("v2: no inputs", INFER, b'{"id": "x"}'),
    Bad("v2: inputs not a list", INFER, b'{"inputs": {"tenure": [1]}}'),
    Bad("v2: an input that is not an object", INFER, b'{"inputs": [5]}'),
    Bad("v2: an unknown datatype", INFER, v2_tenure(datatype="FP128")),
    Bad("v2: a negative dimension", INFER, v2_tenure(shape=[-1])),
    Bad("v2: a boolean dimension", INFER, v2_tenure(shape=[True])),
    Bad("v2: a scalar shape", INFER, v2_tenure(shape=[], data=1.0)),
    Bad("v2: no data", INFER, v2_tenure(data=None)),
    Bad("v2: fewer values than the shape", INFER, v2_tenure(shape=[3])),
    Bad("v2: a shape too large to hold", INFER, v2_tenure(shape=[10**10, 10**10])),
    Bad("v2: text for FP64", INFER, v2_tenure(data=["ten"])),
    Bad("v2: 1.5 for INT64", INFER, v2_tenure(datatype="INT64", data=[1.5])),
    Bad("v2: 300 for UINT8", INFER, v2_tenure(datatype="UINT8", data=[300])),
    Bad("v2: NaN in a required input", INFER, v2_tenure(data=[float("nan")])),
    Bad("v2: an object for BYTES", INFER, v2_inputs(*tensors()[:2], PLAN_OBJECT)),
    Bad("v2: three dimensions", INFER, v2_tenure(shape=[1, 1, 1])),
    Bad("v2: an input the model does not have", INFER, v2_inputs(*tensors(), AGE)),
    Bad("v2: a missing input", INFER, v2_inputs(*tensors()[:2])),
    Bad("v2: inputs of different rows", INFER, v2_tenure(shape=[2], data=[1.0, 2.0])),
    Bad("v2: no rows", INFER, v2_inputs(*NO_ROWS)),
    Bad("v2: a matrix of the wrong width", INFER, v2_inputs(WIDE)),
    Bad("v2: outputs not a list", INFER, v2(outputs=5)),
    Bad("v2: an output that does not exist", INFER, v2(outputs=[{"name": "proba"}])),
    Bad("v2: an unknown model", "/v2/models/fraud/infer", v2()),
    Bad("v2: an unknown version", "/v2/models/churn/versions/6/infer", v2()),
    Bad("v2: a body over the size limit", INFER, v2_tenure(shape=[20000], data=[1.0] * 20000)),
]  # fmt: skip


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, churn_model: tuple[Path, Any]
) -> Iterator[ServerProcess]:
    workdir = tmp_path_factory.mktemp("malformed")
    process = ServerProcess(str(churn_model[0]), "7", {"max-request-bytes": str(64 * 1024)})
    process.start(workdir)
    try:
        yield process.wait_ready()
    finally:
        process.kill()


def send(server: ServerProcess, bad: Bad) -> Response:
    """The request exactly as written: urllib would add a Content-Type of its own."""
    connection = http.client.HTTPConnection(LOOPBACK, server.port, timeout=30)
    headers = {}
    if bad.content_type is not None:
        headers["Content-Type"] = bad.content_type
    try:
        connection.request("POST", bad.path, body=bad.body, headers=headers)
        reply = connection.getresponse()
        return Response(reply.status, reply.read(), dict(reply.getheaders()))
    finally:
        connection.close()


def test_the_corpus_covers_both_protocols_with_over_fifty_requests() -> None:
    assert len(CORPUS) >= 50
    assert sum(b.path == "/invocations" for b in CORPUS) >= 20
    assert sum(b.path.startswith("/v2") for b in CORPUS) >= 20
    assert len({b.why for b in CORPUS}) == len(CORPUS)


def test_every_malformed_request_is_the_clients_error_never_the_models(
    server: ServerProcess,
) -> None:
    errors_before = server.metric("trailboss_model_requests_total", outcome="error")
    answers = {bad.why: send(server, bad) for bad in CORPUS}
    wrong = {
        why: (r.status, r.body[:300]) for why, r in answers.items() if not 400 <= r.status < 500
    }
    assert wrong == {}
    assert server.metric("trailboss_model_errors_total", type="model_error") == 0
    assert server.metric("trailboss_model_errors_total", type="internal") == 0
    assert server.metric("trailboss_model_requests_total", outcome="error") == errors_before
    assert server.metric("trailboss_model_requests_total", outcome="bad_input") >= len(CORPUS)
    for why, reply in answers.items():
        assert reply.headers["content-type"] == JSON, why
        body = reply.json()
        message = body.get("message") or body.get("error")
        assert isinstance(message, str), why
        assert len(message) > 10, why
    assert "Traceback" not in server.log()


@pytest.mark.parametrize(
    ("why", "expected"),
    [
        ("no Content-Type", "no Content-Type header"),
        ("curl -d's form type", "-H 'Content-Type: application/json'"),
        ("NaN in a required column", "column 'tenure' is required"),
        ("Infinity in a required column", "row 0 holds inf"),
        ("v2: NaN in a required input", "row 0 holds NaN"),
        ("v2: an object for BYTES", "column 'plan'"),
        ("v2: 300 for UINT8", "300, which UINT8 cannot hold"),
        ("v2: an input the model does not have", "it takes: tenure, spend, plan"),
        ("nesting deeper than a parser goes", "could not be read"),
    ],
)
def test_the_message_says_what_is_wrong(server: ServerProcess, why: str, expected: str) -> None:
    (bad,) = [b for b in CORPUS if b.why == why]
    body = send(server, bad).json()
    assert expected in (body.get("message") or body.get("error"))


def test_a_v2_id_that_is_no_header_value_is_echoed_and_the_header_keeps_its_own(
    server: ServerProcess,
) -> None:
    reply = post_json(server.url + INFER, {"id": "line\nbreak", "inputs": tensors()})
    assert reply.status == 200, reply.body
    assert reply.json()["id"] == "line\nbreak"
    assert "\n" not in reply.headers["x-request-id"]


def test_an_upper_case_media_type_is_read_as_json(server: ServerProcess) -> None:
    reply = call(server.url + "/invocations", records(ROW), "Application/JSON; charset=UTF-8")
    assert reply.status == 200, reply.body


def test_v2_metadata_names_the_outputs_as_inference_returns_them(server: ServerProcess) -> None:
    metadata = call(server.url + "/v2/models/churn").json()
    reply = post_json(server.url + INFER, {"inputs": tensors()})
    assert reply.status == 200, reply.body
    inferred = [(o["name"], o["datatype"]) for o in reply.json()["outputs"]]
    assert [(o["name"], o["datatype"]) for o in metadata["outputs"]] == inferred


@pytest.fixture(scope="module")
def tensor_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Any]]:
    """A model whose signature is one FP64 tensor of two columns (a numpy-trained regressor)."""
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.linear_model import LinearRegression

    workdir = tmp_path_factory.mktemp("tensor")
    x = churn_frame(50)[["tenure", "spend"]].to_numpy()
    fitted = LinearRegression().fit(x, x.sum(axis=1))
    signature = infer_signature(x, fitted.predict(x))
    mlflow.sklearn.save_model(fitted, str(workdir / "model"), signature=signature)
    process = ServerProcess(str(workdir / "model"), "3").start(workdir)
    try:
        yield process.wait_ready(), fitted
    finally:
        process.kill()


def test_integer_data_for_a_float_input_is_widened(
    tensor_server: tuple[ServerProcess, Any],
) -> None:
    server, fitted = tensor_server
    body = {"inputs": [{"name": "x", "shape": [2, 2], "datatype": "INT64", "data": [1, 2, 3, 4]}]}
    reply = post_json(server.url + INFER, body)
    assert reply.status == 200, reply.body
    (output,) = reply.json()["outputs"]
    expected = fitted.predict(np.array([[1.0, 2.0], [3.0, 4.0]]))
    assert output["data"] == pytest.approx(expected.tolist())


def test_v2_metadata_of_a_tensor_model_names_its_output_as_inference_does(
    tensor_server: tuple[ServerProcess, Any],
) -> None:
    server, _ = tensor_server
    body = {"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [1.0, 2.0]}]}
    reply = post_json(server.url + INFER, body)
    assert reply.status == 200, reply.body
    metadata = call(server.url + "/v2/models/churn").json()
    inferred = [(o["name"], o["datatype"]) for o in reply.json()["outputs"]]
    assert [(o["name"], o["datatype"]) for o in metadata["outputs"]] == inferred


def test_float32_is_widened_too_but_booleans_are_not_numbers(
    tensor_server: tuple[ServerProcess, Any],
) -> None:
    server, _ = tensor_server
    body = {"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [1.5, 2.5]}]}
    assert post_json(server.url + INFER, body).status == 200
    flags = {**body["inputs"][0], "datatype": "BOOL", "data": [True, False]}
    assert post_json(server.url + INFER, {"inputs": [flags]}).status == 400
    assert server.metric("trailboss_model_errors_total", type="model_error") == 0
