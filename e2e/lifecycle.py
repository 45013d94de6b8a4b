"""Manifests and MLflow / S3 look-ups shared by the lifecycle tests."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import boto3

from e2e.cluster import ROOT

# Relative to the image's working directory (/app in examples/trainer/Dockerfile,
# the repository root for the local pod runner): never a path of this machine.
TRAINER = "examples/trainer/train.py"
MAKE_DATASET = str(ROOT / "examples" / "trainer" / "make_dataset.py")


def training_run(
    name: str,
    *,
    model: str = "churn",
    command: list[str] | None = None,
    dataset: str | None = None,
    register: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    hyperparameters: dict[str, str] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "model": model,
        "image": "ghcr.io/trailboss-dev/trainer-sklearn:0.1.0",
        "command": command or ["python", TRAINER],
    }
    if dataset:
        spec["dataset"] = {"uri": dataset}
    if register is not None:
        spec["register"] = register
    if env:
        spec["env"] = [{"name": k, "value": v} for k, v in env.items()]
    if hyperparameters:
        spec["hyperparameters"] = hyperparameters
    return {
        "apiVersion": "trailboss.dev/v1alpha1",
        "kind": "TrainingRun",
        "metadata": {"name": name},
        "spec": spec,
    }


def seed_dataset(env: dict[str, str], uri: str) -> None:
    subprocess.run([sys.executable, MAKE_DATASET, uri], env=env, check=True, capture_output=True)


def s3(env: dict[str, str]) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=env.get("AWS_ENDPOINT_URL_S3"),
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env.get("AWS_DEFAULT_REGION", "us-east-1"),
    )


def mlflow(env: dict[str, str]) -> Any:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])


def runs_tagged(env: dict[str, str], uid: str) -> list[Any]:
    client = mlflow(env)
    experiments = [e.experiment_id for e in client.search_experiments()]
    return list(
        client.search_runs(experiments, filter_string=f"tags.`trailboss.dev/uid` = '{uid}'")
    )


def versions_tagged(env: dict[str, str], model: str, uid: str) -> list[Any]:
    return list(
        mlflow(env).search_model_versions(f"name = '{model}' and tag.`trailboss.dev/uid` = '{uid}'")
    )


def split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key
