"""`trailboss profile` then `trailboss drift`, end to end against a real S3
API (moto's server on loopback): reference CSV in, result JSON out."""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Iterator
from typing import Any

import boto3
import numpy as np
import pyarrow.parquet as pq
import pytest
from moto.server import ThreadedMotoServer

from tests.unit.driftlogs import log_key, log_table
from trailboss.cli import main

NOW = dt.datetime(2026, 5, 4, 12, 30, tzinfo=dt.UTC)
LOGS = "s3://predictions/logs"
DEPLOYMENT = "shop.churn"
VERSION = "churn-v1"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "TRAILBOSS_S3_ENDPOINT_URL": endpoint,
    }.items():
        monkeypatch.setenv(name, value)
    client = boto3.client("s3", endpoint_url=endpoint)
    for bucket in ("datasets", "models", "predictions"):
        client.create_bucket(Bucket=bucket)
    yield client
    for bucket in ("datasets", "models", "predictions"):
        for obj in client.list_objects_v2(Bucket=bucket).get("Contents", []):
            client.delete_object(Bucket=bucket, Key=obj["Key"])
        client.delete_bucket(Bucket=bucket)


def _reference_csv(rng: np.random.Generator, rows: int) -> bytes:
    lines = ["customer_id,tenure,charges,plan,churned"]
    plans = rng.choice(["basic", "plus", "pro"], size=rows, p=[0.5, 0.3, 0.2])
    for i in range(rows):
        tenure, charges = rng.normal(24, 6), rng.normal(70, 10)
        lines.append(f"c{i},{tenure:.6f},{charges:.6f},{plans[i]},{int(rng.random() < 0.2)}")
    return ("\n".join(lines) + "\n").encode()


def _put_logs(s3: Any, rng: np.random.Generator, *, shift_charges: float, parts: int) -> None:
    """`parts` one-minute parts before NOW, plus one part outside the window."""
    for i in range(parts + 1):
        ago = dt.timedelta(minutes=5 * (i + 1)) if i < parts else dt.timedelta(hours=3)
        start = NOW - ago
        n = 2000
        table = log_table(
            start,
            {
                "tenure": rng.normal(24, 6, n),
                "charges": rng.normal(70 + shift_charges, 10, n),
                "plan": rng.choice(["basic", "plus", "pro"], size=n, p=[0.5, 0.3, 0.2]),
            },
            {"prediction": (rng.random(n) < 0.2).astype(float)},
            errors=50,
        )
        sink = io.BytesIO()
        pq.write_table(table, sink)
        key = log_key("logs", DEPLOYMENT, VERSION, start + dt.timedelta(minutes=1))
        s3.put_object(Bucket="predictions", Key=key, Body=sink.getvalue())


def _profile(s3: Any, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    csv = _reference_csv(np.random.default_rng(1), 5000)
    s3.put_object(Bucket="datasets", Key="churn/valid.csv", Body=csv)
    code = main(
        [
            "profile",
            "--reference=s3://datasets/churn/valid.csv",
            "--output=s3://models/churn/1/reference-profile",
            "--exclude=customer_id",
            "--prediction=prediction=churned",
        ]
    )
    assert code == 0
    status: dict[str, Any] = json.loads(capsys.readouterr().out)
    return status


def _drift(capsys: pytest.CaptureFixture[str], monitoring: dict[str, Any]) -> dict[str, Any]:
    code = main(
        [
            "drift",
            "--profile=s3://models/churn/1/reference-profile",
            f"--logs={LOGS}",
            f"--deployment={DEPLOYMENT}",
            f"--model-version={VERSION}",
            f"--monitoring={json.dumps(monitoring)}",
            "--output=s3://predictions/drift/shop.churn/result.json",
            f"--now={NOW.isoformat()}",
        ]
    )
    assert code == 0
    result: dict[str, Any] = json.loads(capsys.readouterr().out)
    return result


def test_profile_records_location_rows_digest_and_types(
    s3: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    status = _profile(s3, capsys)
    assert status["location"] == "s3://models/churn/1/reference-profile/"
    assert status["rows"] == 5000
    assert status["digest"].startswith("sha256:")
    assert status["features"] == 4  # tenure, charges, plan, output.prediction
    document = json.loads(
        s3.get_object(Bucket="models", Key="churn/1/reference-profile/profile.json")["Body"].read()
    )
    types = {name: column["type"] for name, column in document["columns"].items()}
    assert types == {
        "tenure": "numeric",
        "charges": "numeric",
        "plan": "categorical",
        "output.prediction": "numeric",
    }


def test_drift_flags_only_the_shifted_feature(s3: Any, capsys: pytest.CaptureFixture[str]) -> None:
    _profile(s3, capsys)
    _put_logs(s3, np.random.default_rng(2), shift_charges=8.0, parts=4)
    result = _drift(capsys, {"window": "1h", "predictionLogs": f"{LOGS}/"})
    drift = result["drift"]
    by_name = {f["name"]: f for f in drift["features"]}
    assert drift["windowRows"] == 4 * 1950  # errors and the part outside the window left out
    assert result["window"]["files"] == 4  # the 3-hours-old part is in an earlier hour
    assert by_name["charges"]["drifted"] is True
    assert by_name["charges"]["method"] == "wasserstein"
    assert by_name["tenure"]["drifted"] is False
    assert by_name["plan"]["method"] == "jensen-shannon"
    assert by_name["plan"]["drifted"] is False
    assert by_name["output.prediction"]["drifted"] is False
    assert drift["driftShare"] == pytest.approx(1 / 3)
    assert drift["drifted"] is False
    assert drift["predictionDrifted"] is False
    stored = s3.get_object(Bucket="predictions", Key="drift/shop.churn/result.json")["Body"].read()
    assert json.loads(stored) == result


def test_empty_window_is_insufficient_data_for_every_feature(
    s3: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    _profile(s3, capsys)
    drift = _drift(capsys, {"window": "30m"})["drift"]
    assert drift["windowRows"] == 0
    assert {f["status"] for f in drift["features"]} == {"InsufficientData"}
    assert "drifted" not in drift  # no verdict without data
    assert drift["checkedFeatures"] == 0


def test_missing_profile_is_a_clear_error(s3: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "drift",
            "--profile=s3://models/nothing-here",
            f"--logs={LOGS}",
            f"--deployment={DEPLOYMENT}",
            f"--model-version={VERSION}",
        ]
    )
    assert code == 1
    assert "s3://models/nothing-here/profile.json does not exist" in capsys.readouterr().err


def test_unreadable_reference_is_a_clear_error(s3: Any, capsys: pytest.CaptureFixture[str]) -> None:
    s3.put_object(Bucket="datasets", Key="churn/broken.parquet", Body=b"PAR1 not really")
    code = main(
        [
            "profile",
            "--reference=s3://datasets/churn/broken.parquet",
            "--output=s3://models/churn/2/reference-profile",
        ]
    )
    assert code == 1
    assert "s3://datasets/churn/broken.parquet is not a readable CSV or Parquet file" in (
        capsys.readouterr().err
    )


def test_the_training_data_is_profiled_at_its_pinned_version_or_not_at_all(
    s3: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    body = _reference_csv(np.random.default_rng(3), 200)
    s3.put_object(Bucket="datasets", Key="churn/train.csv", Body=body)
    etag = s3.head_object(Bucket="datasets", Key="churn/train.csv")["ETag"].strip('"')
    pinned = f"s3://datasets/churn/train.csv@etag:{etag}"
    command = ["profile", f"--reference={pinned}", "--output=s3://models/churn/3/reference-profile"]
    assert main(command) == 0
    status = json.loads(capsys.readouterr().out)
    assert (status["rows"], status["source"]) == (200, pinned)
    # The file is replaced after training: its profile would describe other data.
    s3.put_object(Bucket="datasets", Key="churn/train.csv", Body=body + b"c-extra,1,2,pro,0\n")
    assert main(command) == 1
    err = capsys.readouterr().err
    assert "s3://datasets/churn/train.csv changed since the model was trained on it" in err
    assert "spec.referenceData" in err


@pytest.mark.parametrize("command", ["drift", "profile"])
def test_without_the_drift_engine_the_commands_name_the_image_to_use(
    command: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The operator's image carries no numpy, scipy or pyarrow: run there, the Job's
    commands refuse at once, naming the image that has them."""
    import importlib.util

    found = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "scipy" else found(name, *a)
    )
    args = {
        "drift": ["--profile", "s3://b/p", "--logs", "s3://b/l", "--deployment", "ns.d",
                  "--model-version", "1"],
        "profile": ["--reference", "s3://b/r.csv", "--output", "s3://b/p"],
    }[command]  # fmt: skip
    assert main([command, *args]) == 2
    error = capsys.readouterr().err
    assert f"trailboss {command}: this installation lacks scipy" in error
    assert "trailboss-drift image" in error
