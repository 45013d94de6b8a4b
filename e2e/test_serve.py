"""The model server against the stack's real MLflow and S3 (MinIO when built): it loads a
logged model from its S3 artifact and through the registry, answers, and its prediction
logs land in the stack's S3 on SIGTERM."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from tests.integration.servers import (
    ServerProcess,
    churn_frame,
    log_files,
    post_json,
    save_churn_model,
)

from e2e.cluster import unique

# The module-scoped set-up below is built once: one worker runs the whole file.
pytestmark = pytest.mark.xdist_group("serve")

BUCKET = "predictions"


@pytest.fixture(scope="module")
def logged_model(
    stack_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """A scikit-learn model logged to the stack's MLflow (artifacts in its S3) and registered."""
    import mlflow

    saved = os.environ.copy()
    os.environ.update(stack_env)
    # MLflow uploads through boto3's default session, which keeps the credentials
    # it first resolved (an earlier test's S3 in this process): start a new one.
    boto3.setup_default_session()
    try:
        model_dir, _ = save_churn_model(tmp_path_factory.mktemp("serve") / "churn")
        name = unique("churn-serve")
        mlflow.set_experiment(name)
        with mlflow.start_run() as run:
            mlflow.log_artifacts(str(model_dir), artifact_path="model")
        version = mlflow.register_model(f"runs:/{run.info.run_id}/model", name)
        artifact = f"{run.info.artifact_uri}/model"
        yield {"s3": artifact, "registry": f"models:/{name}/{version.version}"}
    finally:
        os.environ.clear()
        os.environ.update(saved)
        boto3.setup_default_session()


def s3(env: dict[str, str]) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL_S3"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env.get("AWS_DEFAULT_REGION", "us-east-1"),
    )


@pytest.mark.parametrize("source", ["s3", "registry"])
def test_serves_a_logged_model_and_its_logs_land_in_the_stacks_s3(
    source: str, stack_env: dict[str, str], logged_model: dict[str, str], tmp_path: Path
) -> None:
    store = s3(stack_env)
    if BUCKET not in {b["Name"] for b in store.list_buckets().get("Buckets", [])}:
        store.create_bucket(Bucket=BUCKET)
    deployment = unique("churn")
    server = ServerProcess(
        logged_model[source],
        "3",
        {"log-uri": f"s3://{BUCKET}/serving", "namespace": "e2e", "deployment": deployment,
         "s3-endpoint-url": stack_env["AWS_ENDPOINT_URL_S3"], "log-flush-seconds": "3600"},
        env=stack_env,
    )  # fmt: skip
    server.start(tmp_path)
    try:
        server.wait_ready(timeout=180)
        frame = churn_frame(10, seed=7)
        records = {"dataframe_records": frame.to_dict("records")}
        reply = post_json(
            server.url + "/invocations", records, headers={"X-Request-ID": f"e2e-{source}"}
        )
        assert reply.status == 200, reply.body
        assert len(reply.json()["predictions"]) == 10
        assert server.terminate() == 0, server.log()
    finally:
        server.kill()
    prefix = f"serving/deployment=e2e.{deployment}/version=3/"
    (table,) = log_files(store, BUCKET, prefix).values()
    assert table.column("request_id").to_pylist() == [f"e2e-{source}"] * 10
    assert table.column("input.spend").to_pylist() == frame.spend.tolist()
