"""Example trainer: a random forest on a CSV in S3 (or scikit-learn's bundled breast-cancer
data), tracked in the MLflow run Trailboss created. Copy it; replace ``train_and_evaluate``."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import boto3
import mlflow
import pandas as pd
from pandas.api.types import is_numeric_dtype
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score
from sklearn.model_selection import train_test_split

LABEL = "target"
DEFAULTS: dict[str, int | None] = {"n_estimators": 100, "max_depth": None, "random_state": 42}
TERMINATION_LOG = Path("/dev/termination-log")


class TrainerError(Exception):
    """A problem worth a one-line message, not a traceback."""


class SimulatedFailureError(TrainerError):
    """Raised when ``TRAILBOSS_FAIL`` is set, to exercise failure reporting."""


def log(message: str) -> None:
    print(f"[trainer] {message}", flush=True)


def hyperparameters_from_env(env: Mapping[str, str]) -> dict[str, str]:
    """``TRAILBOSS_HYPERPARAMETERS`` (JSON), or else every ``HP_<NAME>`` variable."""
    if raw := env.get("TRAILBOSS_HYPERPARAMETERS"):
        try:
            values = json.loads(raw)
        except json.JSONDecodeError:
            values = None
        if not isinstance(values, dict):
            raise TrainerError(f"TRAILBOSS_HYPERPARAMETERS must be a JSON object, got {raw!r}")
        return {str(k): str(v) for k, v in values.items()}
    return {k[3:].lower(): v for k, v in env.items() if k.startswith("HP_")}


def parse_hyperparameters(raw: Mapping[str, str]) -> dict[str, int | None]:
    """Typed model arguments; unknown names and bad values are errors naming them."""
    if unknown := ", ".join(sorted(set(raw) - set(DEFAULTS))):
        raise TrainerError(f"unknown hyperparameters: {unknown} (known: {', '.join(DEFAULTS)})")
    params = dict(DEFAULTS)
    for name, text in raw.items():
        if name == "max_depth" and text.strip().lower() in ("", "none"):
            params[name] = None
            continue
        try:
            value = int(text)
        except ValueError:
            raise TrainerError(f"hyperparameter {name} must be an integer, got {text!r}") from None
        if value < (0 if name == "random_state" else 1):
            raise TrainerError(f"hyperparameter {name} is out of range: {value}")
        params[name] = value
    return params


def split_features(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """Features and label: the column named ``target``, or else the last column."""
    if frame.shape[1] < 2 or len(frame) < 10:
        raise TrainerError(f"dataset too small: {len(frame)} rows, {frame.shape[1]} columns")
    label = LABEL if LABEL in frame.columns else frame.columns[-1]
    features = frame.drop(columns=[label])
    if text := ", ".join(str(c) for c in features if not is_numeric_dtype(features[c])):
        raise TrainerError(f"feature columns must be numeric: {text}")
    return features, frame[label]


def bundled_dataset() -> pd.DataFrame:
    """scikit-learn's breast-cancer data (ships with scikit-learn), snake_case columns."""
    frame: pd.DataFrame = load_breast_cancer(as_frame=True).frame
    return frame.rename(columns=lambda c: c.replace(" ", "_"))


def s3_client() -> Any:
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("MLFLOW_S3_ENDPOINT_URL")
    return boto3.client("s3", endpoint_url=endpoint or None)


def read_s3_csv(uri: str, pinned: str | None, version_id: str | None = None) -> pd.DataFrame:
    """The CSV at ``uri``: the pinned version on a versioned bucket, else the
    current object, which must still be the one pinned at start."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not uri.startswith("s3://") or not key or key.endswith("/"):
        raise TrainerError(f"dataset must be one CSV object, s3://bucket/key.csv; got {uri}")
    try:
        version = {"VersionId": version_id} if version_id else {}
        obj = s3_client().get_object(Bucket=bucket, Key=key, **version)
    except Exception as error:
        raise TrainerError(f"cannot read dataset {uri}: {error}") from error
    etag = str(obj.get("ETag", "")).strip('"')
    if pinned and pinned.strip('"') not in (etag, obj.get("VersionId")):
        raise TrainerError(f"dataset {uri} changed since it was pinned ({pinned}): ETag {etag}")
    log(f"dataset {uri} ETag {etag}" + (" matches the pinned version" if pinned else ""))
    return pd.read_csv(obj["Body"])


def train_and_evaluate(
    features: pd.DataFrame, labels: pd.Series, params: Mapping[str, int | None]
) -> tuple[RandomForestClassifier, dict[str, float]]:
    """Fit on 80% of the rows; score on the held-out 20%."""
    x_train, x_test, y_train, y_test = train_test_split(
        features, labels, test_size=0.2, random_state=params["random_state"], stratify=labels
    )
    model = RandomForestClassifier(**params, n_jobs=-1).fit(x_train, y_train)
    predicted = model.predict(x_test)
    proba = model.predict_proba(x_test)
    binary = len(model.classes_) == 2
    f1 = {"average": "binary", "pos_label": model.classes_[1]} if binary else {"average": "macro"}
    metrics = {
        "accuracy": float(accuracy_score(y_test, predicted)),
        "f1": float(f1_score(y_test, predicted, **f1)),
        "log_loss": float(log_loss(y_test, proba, labels=model.classes_)),
        "train_rows": float(len(x_train)),
        "test_rows": float(len(x_test)),
    }
    if binary:
        metrics["roc_auc"] = float(roc_auc_score(y_test, proba[:, 1]))
    return model, metrics


def run(env: Mapping[str, str]) -> None:
    if not (run_id := env.get("MLFLOW_RUN_ID")):
        raise TrainerError("MLFLOW_RUN_ID is not set; the operator creates the run")
    artifact_path = env.get("TRAILBOSS_ARTIFACT_PATH") or "model"
    # Any error inside the block marks the run FAILED in MLflow as well.
    with mlflow.start_run(run_id=run_id) as active:
        log(f"attached to MLflow run {run_id} ({active.info.artifact_uri})")
        raw = hyperparameters_from_env(env)
        params = parse_hyperparameters(raw)
        if uri := env.get("TRAILBOSS_DATASET_URI"):
            frame = read_s3_csv(
                uri, env.get("TRAILBOSS_DATASET_VERSION"), env.get("TRAILBOSS_DATASET_VERSION_ID")
            )
        else:
            log("no TRAILBOSS_DATASET_URI: using the bundled breast-cancer dataset")
            frame = bundled_dataset()
        features, labels = split_features(frame)
        log(f"{len(frame)} rows, {features.shape[1]} features, label {labels.name!r}")
        # The operator logged the given hyperparameters; record only the defaults used.
        mlflow.log_params({k: str(v) for k, v in params.items() if k not in raw})
        if env.get("TRAILBOSS_FAIL"):
            mlflow.log_metric("train_rows", len(frame))
            raise SimulatedFailureError(f"simulated failure: {env['TRAILBOSS_FAIL']}")
        log(f"training RandomForestClassifier({params})")
        model, metrics = train_and_evaluate(features, labels, params)
        mlflow.log_metrics(metrics)
        log("metrics " + ", ".join(f"{k}={v:.4g}" for k, v in sorted(metrics.items())))
        example = features.head(5)
        signature = mlflow.models.infer_signature(example, model.predict(example))
        with tempfile.TemporaryDirectory() as tmp:
            local = str(Path(tmp) / "model")  # save_model wants a directory that does not exist
            # cloudpickle loads on every MLflow 2 and 3 release (MLflow 3's skops default does not)
            mlflow.sklearn.save_model(
                model,
                local,
                serialization_format="cloudpickle",
                signature=signature,
                input_example=example,
            )
            mlflow.log_artifacts(local, artifact_path=artifact_path)
        log(f"model uploaded to {active.info.artifact_uri}/{artifact_path}")


def main() -> int:
    try:
        run(os.environ)
    except Exception as error:
        kind = "" if isinstance(error, TrainerError) else f"{type(error).__name__}: "
        message = f"training failed: {kind}{error}".splitlines()[0]
        print(message, file=sys.stderr, flush=True)
        if TERMINATION_LOG.exists():  # Kubernetes shows it as the container's exit message
            with contextlib.suppress(OSError):
                TERMINATION_LOG.write_text(message)
        return 3 if isinstance(error, SimulatedFailureError) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
