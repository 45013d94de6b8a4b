"""``trailboss serve`` as a process on loopback, with a real scikit-learn model and a real
S3 endpoint (moto's server): every endpoint and input format, metrics labels, prediction
logs in S3, an S3 outage, a deliberately bad version and SIGTERM."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
from moto.server import ThreadedMotoServer

from tests.integration.servers import (
    FEATURES,
    LOOPBACK,
    ServerProcess,
    call,
    churn_frame,
    free_port,
    log_files,
    post_json,
    s3_client,
    wait_for,
)
from trailboss.serving.faults import Faults, save_faulty_model

BUCKET = "pred-logs"
LIMIT = 64 * 1024
KEY = re.compile(
    r"^serving/deployment=ml\.churn-api/version=(?P<version>[^/]+)/date=(?P<date>\d{4}-\d\d-\d\d)"
    r"/hour=(?P<hour>\d\d)/part-\d{13}-[0-9a-f]{8}\.parquet$"
)


@dataclass
class World:
    s3: Any
    model: Any  # the fitted pipeline, for expected predictions
    main: ServerProcess
    faulty: ServerProcess
    outage: ServerProcess


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory, churn_model: tuple[Path, Any]
) -> Iterator[World]:
    workdir = tmp_path_factory.mktemp("serve")
    moto = ThreadedMotoServer(ip_address=LOOPBACK, port=free_port(), verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    s3 = s3_client(endpoint)
    s3.create_bucket(Bucket=BUCKET)
    model_dir, fitted = churn_model
    save_faulty_model(str(workdir / "churn-bad"), str(model_dir), Faults(error_share=1.0))
    logs = {"log-uri": f"s3://{BUCKET}/serving", "namespace": "ml", "deployment": "churn-api"}
    servers = World(
        s3,
        fitted,
        main=ServerProcess(str(model_dir), "7", {
            **logs, "s3-endpoint-url": endpoint, "log-batch-rows": "50",
            "log-flush-seconds": "0.5", "max-request-bytes": str(LIMIT)}),
        faulty=ServerProcess(str(workdir / "churn-bad"), "8-bad", {
            **logs, "s3-endpoint-url": endpoint, "log-flush-seconds": "3600"}),
        outage=ServerProcess(str(model_dir), "9", {
            **logs, "s3-endpoint-url": f"http://{LOOPBACK}:{free_port()}",
            "log-flush-seconds": "0.3"}),
    )  # fmt: skip
    for server in (servers.main, servers.faulty, servers.outage):
        server.start(workdir)
    try:
        for server in (servers.main, servers.faulty, servers.outage):
            server.wait_ready()
        yield servers
    finally:
        for server in (servers.main, servers.faulty, servers.outage):
            server.kill()
        moto.stop()


def split_of(frame: pd.DataFrame) -> dict[str, Any]:
    """``dataframe_split`` with every digit (pandas' own JSON rounds to 10)."""
    return {"columns": list(frame.columns), "data": frame.to_numpy().tolist()}


def predictions_of(reply: Any) -> list[Any]:
    assert reply.status == 200, reply.body
    return list(reply.json()["predictions"])


def test_every_mlflow_input_format_gives_the_models_predictions(world: World) -> None:
    frame = churn_frame(10, seed=1)
    expected = world.model.predict(frame).tolist()
    url = world.main.url + "/invocations"
    split = split_of(frame)
    records = frame.to_dict(orient="records")
    parquet = io.BytesIO()
    frame.to_parquet(parquet)
    replies = {
        "dataframe_split": post_json(url, {"dataframe_split": split}),
        "dataframe_records": post_json(url, {"dataframe_records": records}),
        "instances": post_json(url, {"instances": records}),
        "inputs": post_json(url, {"inputs": frame.to_dict(orient="list")}),
        "csv": call(url, frame.to_csv(index=False).encode(), "text/csv"),
        "parquet": call(url, parquet.getvalue(), "application/vnd.apache.parquet"),
    }
    assert {name: predictions_of(r) for name, r in replies.items()} == dict.fromkeys(
        replies, expected
    )


def test_health_version_and_v2_metadata(world: World) -> None:
    import mlflow

    url = world.main.url
    for path in ("/ping", "/health", "/v2/health/live", "/v2/health/ready",
                 "/v2/models/churn/ready", "/v2/models/churn/versions/7/ready"):  # fmt: skip
        assert call(url + path).status == 200, path
    assert call(url + "/version").body.decode() == mlflow.__version__
    assert call(url + "/v2").json()["name"] == "trailboss"
    metadata = call(url + "/v2/models/churn").json()
    assert (metadata["name"], metadata["versions"]) == ("churn", ["7"])
    assert [(i["name"], i["datatype"]) for i in metadata["inputs"]] == [
        ("tenure", "FP64"), ("spend", "FP64"), ("plan", "BYTES")
    ]  # fmt: skip
    wrong_model = call(url + "/v2/models/fraud")
    assert wrong_model.status == 404
    assert "serves 'churn'" in wrong_model.json()["error"]
    assert call(url + "/v2/models/churn/versions/6").status == 404


def test_v2_inference_with_one_tensor_per_feature(world: World) -> None:
    frame = churn_frame(4, seed=2)
    inputs = [
        {"name": "tenure", "shape": [4], "datatype": "FP64", "data": frame.tenure.tolist()},
        {"name": "spend", "shape": [4], "datatype": "FP64", "data": frame.spend.tolist()},
        {"name": "plan", "shape": [4], "datatype": "BYTES", "data": frame.plan.tolist()},
    ]
    reply = post_json(world.main.url + "/v2/models/churn/versions/7/infer",
                      {"id": "v2-req-1", "inputs": inputs})  # fmt: skip
    assert reply.status == 200, reply.body
    body = reply.json()
    assert (body["model_name"], body["model_version"], body["id"]) == ("churn", "7", "v2-req-1")
    (output,) = body["outputs"]
    assert output["shape"] == [4]
    assert output["data"] == world.model.predict(frame).tolist()
    assert reply.headers["x-request-id"] == "v2-req-1"
    bad = post_json(world.main.url + "/v2/models/churn/infer", {"inputs": [inputs[0]]})
    assert bad.status == 400
    assert "missing inputs" in bad.json()["error"]


def test_an_oversized_request_gets_a_clear_413(world: World) -> None:
    before = world.main.metric("trailboss_model_errors_total", type="too_large")
    big = {"dataframe_records": churn_frame(2000).to_dict(orient="records")}
    reply = post_json(world.main.url + "/invocations", big)
    assert reply.status == 413
    message = reply.json()["message"]
    assert f"at most {LIMIT} bytes" in message
    assert "--max-request-bytes" in message
    assert world.main.metric("trailboss_model_errors_total", type="too_large") == before + 1


def test_metrics_count_requests_rows_and_errors_under_the_served_version(world: World) -> None:
    server = world.main
    ok, bad, errors, rows = (server.metric("trailboss_model_requests_total", outcome="ok"),
                             server.metric("trailboss_model_requests_total", outcome="bad_input"),
                             server.metric("trailboss_model_requests_total", outcome="error"),
                             server.metric("trailboss_model_predictions_total"))  # fmt: skip
    latency = server.metric("trailboss_model_request_duration_seconds_count")
    records = churn_frame(10).to_dict(orient="records")
    for _ in range(3):
        predictions_of(post_json(server.url + "/invocations", {"dataframe_records": records}))
    missing = post_json(server.url + "/invocations", {"dataframe_records": [{"tenure": 1.0}]})
    assert missing.status == 400
    assert server.metric("trailboss_model_requests_total", outcome="ok") == ok + 3
    assert server.metric("trailboss_model_requests_total", outcome="bad_input") == bad + 1
    assert server.metric("trailboss_model_requests_total", outcome="error") == errors
    assert server.metric("trailboss_model_predictions_total") == rows + 30
    assert server.metric("trailboss_model_request_duration_seconds_count") == latency + 4
    assert server.metric("trailboss_model_ready") == 1
    assert server.metric("trailboss_model_fault_injection") == 0
    assert server.metric("trailboss_model_load_duration_seconds") > 0


def test_prediction_logs_land_in_s3_with_the_contracts_schema_and_partition(world: World) -> None:
    sent = {f"log-{i}": churn_frame(10, seed=10 + i) for i in range(5)}
    for request_id, frame in sent.items():
        reply = post_json(world.main.url + "/invocations",
                          {"dataframe_split": split_of(frame)},
                          headers={"X-Request-ID": request_id})  # fmt: skip
        assert reply.headers["x-request-id"] == request_id

    def logged() -> tuple[pd.DataFrame] | None:
        files = log_files(world.s3, BUCKET, "serving/deployment=ml.churn-api/version=7/")
        if not files:
            return None
        rows = pd.concat([t.to_pandas() for t in files.values()])
        mine = rows[rows.request_id.isin(sent)]
        return (mine,) if len(mine) == 50 else None

    (rows,) = wait_for(logged, what="50 logged rows in S3")
    files = log_files(world.s3, BUCKET, "serving/deployment=ml.churn-api/version=7/")
    for key, table in files.items():
        match = KEY.match(key)
        assert match, key
        assert table.schema.field("timestamp").type == pa.timestamp("us", tz="UTC")
        stamp = table.column("timestamp")[0].as_py()
        assert (match["date"], match["hour"]) == (f"{stamp:%Y-%m-%d}", f"{stamp:%H}")
        types = {f.name: f.type for f in table.schema}
        assert types["request_id"] == types["model"] == types["outcome"] == pa.string()
        assert (types["input.tenure"], types["input.plan"]) == (pa.float64(), pa.string())
        assert types["output.prediction"] == pa.float64()
    for request_id, frame in sent.items():
        mine = rows[rows.request_id == request_id]
        assert len(mine) == 10
        assert (set(mine.outcome), set(mine.version)) == ({"ok"}, {"7"})
        assert mine["input.tenure"].tolist() == frame.tenure.tolist()
        assert mine["input.plan"].tolist() == frame.plan.tolist()
        assert (
            mine["output.prediction"].tolist() == world.model.predict(frame).astype(float).tolist()
        )
    assert world.main.metric("trailboss_model_log_rows_total", result="written") >= 50


def test_an_s3_outage_drops_and_counts_rows_and_never_fails_a_prediction(world: World) -> None:
    server = world.outage
    records = churn_frame(10).to_dict(orient="records")
    for _ in range(3):
        predictions_of(post_json(server.url + "/invocations", {"dataframe_records": records}))
    wait_for(lambda: server.metric("trailboss_model_log_rows_total", result="dropped") >= 30,
             what="dropped rows counted")  # fmt: skip
    assert server.metric("trailboss_model_log_failed_batches_total") >= 1
    assert server.metric("trailboss_model_log_rows_total", result="written") == 0
    assert server.metric("trailboss_model_requests_total", outcome="ok") == 3


def test_a_deliberately_bad_version_fails_requests_and_sigterm_flushes_its_log(
    world: World,
) -> None:
    server = world.faulty
    assert server.metric("trailboss_model_fault_injection") == 1
    assert "INJECTS FAULTS ON PURPOSE" in server.log()
    frame = churn_frame(10, seed=3)
    reply = post_json(server.url + "/invocations", {"dataframe_records": frame.to_dict("records")},
                      headers={"X-Request-ID": "bad-1"})  # fmt: skip
    assert reply.status == 500
    assert "deliberate fault" in reply.json()["message"]
    assert server.metric("trailboss_model_errors_total", type="model_error") == 1
    prefix = "serving/deployment=ml.churn-api/version=8-bad/"
    assert log_files(world.s3, BUCKET, prefix) == {}  # buffered: the flush interval is an hour

    assert server.terminate() == 0
    (table,) = log_files(world.s3, BUCKET, prefix).values()
    rows = table.to_pandas()
    assert rows.request_id.tolist() == ["bad-1"] * 10
    assert set(rows.outcome) == {"error"}
    assert rows["input.spend"].tolist() == frame.spend.tolist()
    outputs = [c for c in rows.columns if c.startswith("output.")]
    assert rows[outputs].isna().all().all()
    assert set(FEATURES) == {
        c.removeprefix("input.") for c in rows.columns if c.startswith("input.")
    }


def test_a_model_that_cannot_be_loaded_stops_the_server_with_the_reason(tmp_path: Path) -> None:
    server = ServerProcess(str(tmp_path / "no-such-model"), "1").start(tmp_path)
    assert server.process is not None
    assert server.process.wait(120) == 1
    assert "could not be loaded" in server.log()
