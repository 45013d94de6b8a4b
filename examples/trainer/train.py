"""Example trainer: a random forest on a CSV in S3 (or scikit-learn's bundled breast-cancer
data), tracked in the MLflow run Trailboss created. Copy it; replace ``train_and_evaluate``.

It follows the trainer contract (``examples/trainer/README.md``): configuration comes in
environment variables, every S3 and MLflow call is retried with bounded backoff, and the
exit code says whose failure it was: 0 trained, 1 the training failed (bad data, bad
hyperparameters, a bug), 75 storage or tracking stayed unreachable (the Job replaces the
pod without counting it against ``backoffLimit``).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import boto3
import mlflow
import pandas as pd
from botocore.config import Config
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient
from pandas.api.types import is_numeric_dtype
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score
from sklearn.model_selection import train_test_split

LABEL = "target"
DEFAULTS: dict[str, int | None] = {"n_estimators": 100, "max_depth": None, "random_state": 42}
TERMINATION_LOG = Path("/dev/termination-log")
EXIT_TRAINING_FAILED = 1
EXIT_SIMULATED_FAILURE = 3
EXIT_INFRASTRUCTURE_FAILURE = 75  # EX_TEMPFAIL: try again later, elsewhere
DEFAULT_RETRY_SECONDS = 300.0
MAX_RETRY_DELAY = 30.0
T = TypeVar("T")


class TrainerError(Exception):
    """A problem worth a one-line message, not a traceback."""


class SimulatedFailureError(TrainerError):
    """Raised when ``TRAILBOSS_FAIL`` is set, to exercise failure reporting."""


class InfrastructureError(TrainerError):
    """S3 or MLflow stayed unreachable for the whole retry budget."""


# Errors that say "the server could not be reached or is overloaded", not "the
# request is wrong": connection refused or reset, timeouts, 5xx, throttling.
_TRANSIENT_NAMES = {
    "ConnectionError",  # builtins, requests and botocore all have one
    "Timeout",
    "ConnectTimeout",
    "ReadTimeout",
    "RetryError",
    "MaxRetryError",
    "NewConnectionError",
    "ProtocolError",
    "EndpointConnectionError",
    "ConnectTimeoutError",
    "ReadTimeoutError",
    "ConnectionClosedError",
    "ResponseStreamingError",
    "IncompleteReadError",
}
_TRANSIENT_S3_CODES = {"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout"}
_TRANSIENT_MLFLOW_CODES = {"TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED"}


def _causes(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def is_transient(error: BaseException) -> bool:
    """Whether retrying later may help: the error or one of its causes is a
    connection failure, a timeout, a 5xx or throttling from S3 or MLflow."""
    for cause in _causes(error):
        if isinstance(cause, ConnectionError | TimeoutError):
            return True
        if any(t.__name__ in _TRANSIENT_NAMES for t in type(cause).__mro__):
            return True
        response = getattr(cause, "response", None)
        if isinstance(response, dict):  # botocore ClientError
            code = str(response.get("Error", {}).get("Code", ""))
            status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            if code in _TRANSIENT_S3_CODES or status >= 500:
                return True
        if getattr(cause, "error_code", None) in _TRANSIENT_MLFLOW_CODES:
            return True
    return False


def _summary(error: BaseException) -> str:
    """The error and, when it wraps one, its root cause (`Connection refused`)."""
    *_, root = _causes(error)
    text = f"{type(error).__name__}: {error}".splitlines()[0][:200]
    if root is not error:
        text += f" (cause: {type(root).__name__}: {str(root).splitlines()[0][:200]})"
    return text


@dataclass
class Retry:
    """Retries transient S3 and MLflow errors with exponential backoff (1 s doubling to
    30 s) for at most ``budget`` seconds per call, then raises InfrastructureError."""

    budget: float = DEFAULT_RETRY_SECONDS
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    retries: int = field(default=0, init=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Retry:
        raw = env.get("TRAILBOSS_RETRY_SECONDS", str(DEFAULT_RETRY_SECONDS))
        try:
            return cls(budget=max(0.0, float(raw)))
        except ValueError:
            raise TrainerError(f"TRAILBOSS_RETRY_SECONDS must be a number, got {raw!r}") from None

    def call(self, what: str, action: Callable[[], T]) -> T:
        deadline, delay = self.clock() + self.budget, 1.0
        while True:
            try:
                return action()
            except Exception as error:
                if not is_transient(error):
                    raise
                if self.clock() + delay > deadline:
                    raise InfrastructureError(
                        f"{what}: unreachable for {self.budget:.0f}s: {_summary(error)}"
                    ) from error
                log(f"{what}: {_summary(error)}; retrying in {delay:.0f}s")
                self.retries += 1
                self.sleep(delay)
                delay = min(delay * 2, MAX_RETRY_DELAY)


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
    config = Config(
        connect_timeout=5, read_timeout=60, retries={"mode": "standard", "max_attempts": 2}
    )
    return boto3.client("s3", endpoint_url=endpoint or None, config=config)


def read_s3_csv(
    uri: str, pinned: str | None, version_id: str | None = None, retry: Retry | None = None
) -> pd.DataFrame:
    """The CSV at ``uri``: the pinned version on a versioned bucket, else the
    current object, which must still be the one pinned at start."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not uri.startswith("s3://") or not key or key.endswith("/"):
        raise TrainerError(f"dataset must be one CSV object, s3://bucket/key.csv; got {uri}")
    version = {"VersionId": version_id} if version_id else {}

    def fetch() -> tuple[dict[str, Any], bytes]:
        obj = s3_client().get_object(Bucket=bucket, Key=key, **version)
        return obj, obj["Body"].read()

    try:
        obj, body = (retry or Retry()).call(f"S3 ({uri})", fetch)
    except InfrastructureError:
        raise
    except Exception as error:
        raise TrainerError(f"cannot read dataset {uri}: {error}") from error
    etag = str(obj.get("ETag", "")).strip('"')
    if pinned and pinned.strip('"') not in (etag, obj.get("VersionId")):
        raise TrainerError(f"dataset {uri} changed since it was pinned ({pinned}): ETag {etag}")
    log(f"dataset {uri} ETag {etag}" + (" matches the pinned version" if pinned else ""))
    return pd.read_csv(io.BytesIO(body))


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


def run(env: Mapping[str, str], retry: Retry) -> None:
    if not (run_id := env.get("MLFLOW_RUN_ID")):
        raise TrainerError("MLFLOW_RUN_ID is not set; the operator creates the run")
    tracking = MlflowClient()
    info = retry.call("MLflow (attach to the run)", lambda: tracking.get_run(run_id).info)
    retry.call("MLflow (mark the run running)", lambda: tracking.update_run(run_id, "RUNNING"))
    log(f"attached to MLflow run {run_id} ({info.artifact_uri})")
    try:
        train_and_log(env, retry, tracking, run_id)
    except InfrastructureError:
        raise  # the run stays RUNNING: the replacement pod attaches to it again
    except Exception:
        with contextlib.suppress(Exception):
            tracking.set_terminated(run_id, "FAILED")
        raise
    retry.call("MLflow (finish the run)", lambda: tracking.set_terminated(run_id, "FINISHED"))
    log(f"model uploaded to {info.artifact_uri}/{env.get('TRAILBOSS_ARTIFACT_PATH') or 'model'}")


def train_and_log(env: Mapping[str, str], retry: Retry, tracking: Any, run_id: str) -> None:
    raw = hyperparameters_from_env(env)
    params = parse_hyperparameters(raw)
    frame = load_dataset(env, retry)
    features, labels = split_features(frame)
    log(f"{len(frame)} rows, {features.shape[1]} features, label {labels.name!r}")
    # The operator logged the given hyperparameters; record only the defaults used.
    defaults = [Param(k, str(v)) for k, v in params.items() if k not in raw]
    retry.call("MLflow (log params)", lambda: tracking.log_batch(run_id, params=defaults))
    if env.get("TRAILBOSS_FAIL"):
        log_metrics(retry, tracking, run_id, {"train_rows": float(len(frame))})
        raise SimulatedFailureError(f"simulated failure: {env['TRAILBOSS_FAIL']}")
    log(f"training RandomForestClassifier({params})")
    model, metrics = train_and_evaluate(features, labels, params)
    log_metrics(retry, tracking, run_id, metrics)
    log("metrics " + ", ".join(f"{k}={v:.4g}" for k, v in sorted(metrics.items())))
    upload_model(retry, tracking, run_id, model, features, env)


def load_dataset(env: Mapping[str, str], retry: Retry) -> pd.DataFrame:
    if uri := env.get("TRAILBOSS_DATASET_URI"):
        return read_s3_csv(
            uri,
            env.get("TRAILBOSS_DATASET_VERSION"),
            env.get("TRAILBOSS_DATASET_VERSION_ID"),
            retry,
        )
    log("no TRAILBOSS_DATASET_URI: using the bundled breast-cancer dataset")
    return bundled_dataset()


def log_metrics(retry: Retry, tracking: Any, run_id: str, metrics: Mapping[str, float]) -> None:
    now = int(time.time() * 1000)
    batch = [Metric(k, v, now, 0) for k, v in metrics.items()]
    retry.call("MLflow (log metrics)", lambda: tracking.log_batch(run_id, metrics=batch))


def upload_model(
    retry: Retry,
    tracking: Any,
    run_id: str,
    model: RandomForestClassifier,
    features: pd.DataFrame,
    env: Mapping[str, str],
) -> None:
    artifact_path = env.get("TRAILBOSS_ARTIFACT_PATH") or "model"
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
            pip_requirements=_requirements(),
        )
        retry.call(
            "S3 (upload the model)",
            lambda: tracking.log_artifacts(run_id, local, artifact_path=artifact_path),
        )


def _requirements() -> list[str]:
    """What serving the model needs, pinned to what trained it. Named rather than
    left to MLflow, whose inference loads the model in a subprocess to see what it
    imports: most of the time a save takes."""
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in ("mlflow", "scikit-learn", "cloudpickle")]


def exit_code(error: Exception) -> int:
    if isinstance(error, InfrastructureError):
        return EXIT_INFRASTRUCTURE_FAILURE
    if isinstance(error, SimulatedFailureError):
        return EXIT_SIMULATED_FAILURE
    return EXIT_TRAINING_FAILED


def bound_client_retries() -> None:
    """MLflow's own HTTP retries would hold one call for minutes before ours see it;
    ours are bounded and logged. (MLflow reads these when it sends a request.)"""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")


def main() -> int:
    bound_client_retries()
    try:
        run(os.environ, Retry.from_env(os.environ))
    except Exception as error:
        kind = "" if isinstance(error, TrainerError) else f"{type(error).__name__}: "
        what = (
            "infrastructure failure"
            if isinstance(error, InfrastructureError)
            else "training failed"
        )
        message = f"{what}: {kind}{error}".splitlines()[0]
        print(message, file=sys.stderr, flush=True)
        if TERMINATION_LOG.exists():  # Kubernetes shows it as the container's exit message
            with contextlib.suppress(OSError):
                TERMINATION_LOG.write_text(message)
        return exit_code(error)
    return 0


if __name__ == "__main__":
    sys.exit(main())
