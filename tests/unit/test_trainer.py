"""The example trainer's pure parts: hyperparameters, label detection, train and evaluate."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd
import pytest
from sklearn.datasets import load_wine

TRAIN_PY = Path(__file__).resolve().parents[2] / "examples" / "trainer" / "train.py"


def _load_trainer() -> ModuleType:
    spec = importlib.util.spec_from_file_location("example_trainer", TRAIN_PY)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


trainer = _load_trainer()


def test_hyperparameters_are_typed_with_defaults() -> None:
    params = trainer.parse_hyperparameters({"n_estimators": "10", "max_depth": "6"})
    assert params == {"n_estimators": 10, "max_depth": 6, "random_state": 42}
    assert trainer.parse_hyperparameters({"max_depth": "None"})["max_depth"] is None


def test_unknown_hyperparameter_is_named() -> None:
    with pytest.raises(trainer.TrainerError, match=r"unknown hyperparameters: learning_rate\b"):
        trainer.parse_hyperparameters({"n_estimators": "10", "learning_rate": "0.1"})


@pytest.mark.parametrize(
    ("raw", "named"),
    [({"n_estimators": "ten"}, "n_estimators"), ({"max_depth": "0"}, "max_depth")],
)
def test_bad_hyperparameter_value_is_named(raw: dict[str, str], named: str) -> None:
    with pytest.raises(trainer.TrainerError, match=named):
        trainer.parse_hyperparameters(raw)


def test_hyperparameters_from_json_or_hp_variables() -> None:
    env = {"TRAILBOSS_HYPERPARAMETERS": '{"n_estimators": "100"}', "HP_N_ESTIMATORS": "7"}
    assert trainer.hyperparameters_from_env(env) == {"n_estimators": "100"}
    assert trainer.hyperparameters_from_env({"HP_MAX_DEPTH": "3"}) == {"max_depth": "3"}
    with pytest.raises(trainer.TrainerError, match="JSON object"):
        trainer.hyperparameters_from_env({"TRAILBOSS_HYPERPARAMETERS": '["n_estimators"]'})


def test_label_is_the_target_column_wherever_it_is() -> None:
    frame = pd.DataFrame({"target": [0, 1] * 6, "a": range(12), "b": range(12)})
    features, labels = trainer.split_features(frame)
    assert labels.name == "target"
    assert list(features.columns) == ["a", "b"]


def test_label_is_the_last_column_without_a_target() -> None:
    frame = pd.DataFrame({"a": range(12), "b": range(12), "churned": ["no", "yes"] * 6})
    features, labels = trainer.split_features(frame)
    assert labels.name == "churned"
    assert list(features.columns) == ["a", "b"]


def test_text_features_are_named() -> None:
    frame = pd.DataFrame({"plan": ["basic", "pro"] * 6, "a": range(12), "target": [0, 1] * 6})
    with pytest.raises(trainer.TrainerError, match="numeric: plan"):
        trainer.split_features(frame)


def test_binary_metrics_on_the_bundled_dataset() -> None:
    frame = trainer.bundled_dataset()
    assert "target" in frame.columns
    assert not any(" " in str(c) for c in frame.columns)
    features, labels = trainer.split_features(frame)
    params = trainer.parse_hyperparameters({"n_estimators": "25", "max_depth": "4"})
    model, metrics = trainer.train_and_evaluate(features, labels, params)
    assert set(metrics) >= {"accuracy", "f1", "roc_auc", "log_loss", "train_rows"}
    assert 0.85 <= metrics["accuracy"] <= 1.0
    assert 0.85 <= metrics["f1"] <= 1.0
    assert 0.9 <= metrics["roc_auc"] <= 1.0
    assert 0.0 < metrics["log_loss"] < 0.5
    assert metrics["train_rows"] + metrics["test_rows"] == len(frame)
    assert metrics["train_rows"] == pytest.approx(0.8 * len(frame), abs=1)
    assert list(model.feature_names_in_) == list(features.columns)


def test_training_is_reproducible_with_a_fixed_seed() -> None:
    features, labels = trainer.split_features(trainer.bundled_dataset())
    params = trainer.parse_hyperparameters({"n_estimators": "10", "random_state": "7"})
    _, first = trainer.train_and_evaluate(features, labels, params)
    _, second = trainer.train_and_evaluate(features, labels, params)
    assert first == second


def test_multiclass_string_labels_skip_roc_auc() -> None:
    wine = load_wine(as_frame=True)
    frame = wine.frame.assign(target=wine.target.map(dict(enumerate(wine.target_names))))
    features, labels = trainer.split_features(frame)
    params = trainer.parse_hyperparameters({"n_estimators": "25"})
    _, metrics = trainer.train_and_evaluate(features, labels, params)
    assert "roc_auc" not in metrics
    assert 0.8 <= metrics["accuracy"] <= 1.0
    assert 0.8 <= metrics["f1"] <= 1.0


def test_binary_string_labels() -> None:
    frame = trainer.bundled_dataset()
    frame["target"] = frame["target"].map({0: "churned", 1: "stayed"})
    features, labels = trainer.split_features(frame)
    params = trainer.parse_hyperparameters({"n_estimators": "25"})
    model, metrics = trainer.train_and_evaluate(features, labels, params)
    assert list(model.classes_) == ["churned", "stayed"]
    assert 0.9 <= metrics["roc_auc"] <= 1.0
    assert 0.85 <= metrics["f1"] <= 1.0


def test_failure_is_one_line_and_the_termination_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    termination_log = tmp_path / "termination-log"
    termination_log.touch()
    monkeypatch.setattr(trainer, "TERMINATION_LOG", termination_log)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    assert trainer.main() == 1
    message = "training failed: MLFLOW_RUN_ID is not set; the operator creates the run"
    assert capsys.readouterr().err == message + "\n"
    assert termination_log.read_text() == message


# --------------------------------------------------------------------------- outages


class FakeClock:
    """Time that passes only when the trainer sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def time(self) -> float:
        return self.now


def _retry(budget: float) -> tuple[Any, FakeClock]:
    clock = FakeClock()
    return trainer.Retry(budget=budget, sleep=clock.sleep, clock=clock.time), clock


def _unreachable_s3() -> Exception:
    from botocore.exceptions import EndpointConnectionError

    return EndpointConnectionError(endpoint_url="http://127.0.0.1:9000/datasets/churn.csv")


def _mlflow_down() -> Exception:
    import requests
    from mlflow.exceptions import MlflowException

    try:
        try:
            raise requests.exceptions.ConnectionError("Max retries exceeded: Connection refused")
        except requests.exceptions.ConnectionError as cause:
            raise MlflowException(
                "API request to http://mlflow/api/2.0/mlflow/runs/get failed"
            ) from cause
    except MlflowException as error:
        return error


def _s3_error(code: str, status: int) -> Exception:
    from botocore.exceptions import ClientError

    response: Any = {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(response, "GetObject")


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (_unreachable_s3(), True),
        (_mlflow_down(), True),
        (_s3_error("SlowDown", 503), True),
        (_s3_error("InternalError", 500), True),
        (ConnectionResetError(104, "Connection reset by peer"), True),
        (TimeoutError("timed out"), True),
        (_s3_error("NoSuchKey", 404), False),
        (_s3_error("AccessDenied", 403), False),
        (ValueError("could not convert string to float: 'abc'"), False),
        (trainer.TrainerError("dataset too small"), False),
    ],
    ids=lambda v: type(v).__name__ if not isinstance(v, bool) else str(v),
)
def test_only_unreachable_or_overloaded_servers_are_retried(
    error: Exception, transient: bool
) -> None:
    assert trainer.is_transient(error) is transient


def test_an_outage_shorter_than_the_budget_is_ridden_out() -> None:
    retry, clock = _retry(budget=300)
    failures = iter([_unreachable_s3()] * 5)

    def read() -> str:
        if (error := next(failures, None)) is not None:
            raise error
        return "rows"

    assert retry.call("S3 (s3://datasets/churn.csv)", read) == "rows"
    assert clock.sleeps == [1, 2, 4, 8, 16]


def test_backoff_is_capped_and_giving_up_is_an_infrastructure_failure() -> None:
    retry, clock = _retry(budget=120)

    def down() -> None:
        raise _mlflow_down()

    with pytest.raises(
        trainer.InfrastructureError, match=r"MLflow \(log metrics\): unreachable for 120s"
    ):
        retry.call("MLflow (log metrics)", down)
    assert max(clock.sleeps) == trainer.MAX_RETRY_DELAY
    assert sum(clock.sleeps) <= 120
    assert trainer.exit_code(trainer.InfrastructureError("x")) == 75


def test_errors_of_the_request_itself_are_not_retried() -> None:
    retry, clock = _retry(budget=300)

    def missing() -> None:
        raise _s3_error("NoSuchKey", 404)

    with pytest.raises(Exception, match="NoSuchKey"):
        retry.call("S3", missing)
    assert clock.sleeps == []


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (trainer.InfrastructureError("S3: unreachable"), 75),
        (trainer.SimulatedFailureError("simulated"), 3),
        (trainer.TrainerError("dataset too small"), 1),
        (KeyError("target"), 1),
    ],
)
def test_the_exit_code_says_whose_failure_it_was(error: Exception, code: int) -> None:
    assert trainer.exit_code(error) == code


def test_the_retry_budget_comes_from_the_environment() -> None:
    assert trainer.Retry.from_env({"TRAILBOSS_RETRY_SECONDS": "45"}).budget == 45
    assert trainer.Retry.from_env({}).budget == trainer.DEFAULT_RETRY_SECONDS
    with pytest.raises(trainer.TrainerError, match="TRAILBOSS_RETRY_SECONDS"):
        trainer.Retry.from_env({"TRAILBOSS_RETRY_SECONDS": "soon"})
