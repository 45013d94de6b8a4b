"""Where profiles live, what a drift Job runs, and reading its result."""

from __future__ import annotations

import json

import pytest

from trailboss.api.modelversion import ModelVersionSpec
from trailboss.api.monitoring import DriftStatus, FeatureDrift, FeatureStatus, MonitoringSpec
from trailboss.cli import _parser
from trailboss.policies import drift


@pytest.mark.parametrize(
    ("artifact", "profile"),
    [
        ("s3://mlflow/1/abc/artifacts/model", "s3://mlflow/1/abc/artifacts/reference-profile/"),
        ("s3://models/churn/v3/", "s3://models/churn/reference-profile/"),
        ("s3://models/churn", "s3://models/churn-reference-profile/"),
        ("runs:/abc/model", None),
    ],
)
def test_profile_sits_beside_the_model(artifact: str, profile: str | None) -> None:
    assert drift.profile_location(artifact) == profile


def test_drift_command_parses_with_the_cli_and_carries_the_monitoring_spec() -> None:
    spec = MonitoringSpec(prediction_logs="s3://predictions/churn/", drift_share=0.3)
    argv = drift.drift_command(
        spec,
        profile="s3://models/churn/reference-profile/",
        namespace="shop",
        deployment="churn",
        model_version="churn-v3",
        result="s3://predictions/drift/shop.churn.json",
    )
    args = _parser().parse_args(argv)
    assert args.deployment == "shop.churn"
    assert args.logs == "s3://predictions/churn/"
    assert MonitoringSpec.model_validate(json.loads(args.monitoring)) == spec


def test_drift_command_without_prediction_logs_names_the_field() -> None:
    with pytest.raises(ValueError, match=r"spec.monitoring.predictionLogs"):
        drift.drift_command(
            MonitoringSpec(),
            profile="p",
            namespace="n",
            deployment="d",
            model_version="v",
            result="r",
        )


def test_result_round_trips_into_the_status_and_names_drifted_features() -> None:
    status = DriftStatus(
        drifted=False,
        window_rows=10,
        features=[FeatureDrift(name="age", drifted=True), FeatureDrift(name="plan")],
    )
    parsed = drift.status_from_result({"drift": status.to_json()})
    assert parsed == status
    assert drift.drifted_features(parsed) == ["age"]


def test_malformed_result_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no `drift` object"):
        drift.status_from_result({})
    with pytest.raises(ValueError, match=r"drift.windowRows"):
        drift.status_from_result({"drift": {"windowRows": "many"}})


@pytest.mark.parametrize(
    ("source", "reference"),
    [
        ({"dataset": "s3://datasets/churn.csv@etag:e7a1"}, "s3://datasets/churn.csv@etag:e7a1"),
        ({"dataset": "s3://datasets/churn.csv@version:3Lg"}, "s3://datasets/churn.csv@version:3Lg"),
        # A prefix of several objects is pinned by a digest, which no GET can ask for.
        ({"dataset": "s3://datasets/churn/@sha256:9f2c"}, "s3://datasets/churn/"),
        ({"dataset": "https://example.com/churn.csv"}, None),
    ],
)
def test_the_reference_is_the_training_data_at_its_pinned_version(
    source: dict[str, str], reference: str | None
) -> None:
    spec = ModelVersionSpec.model_validate(
        {"model": "churn", "artifactUri": "s3://models/churn/1/model", "source": source}
    )
    assert drift.reference_source(spec) == reference


def test_a_reference_too_small_to_decide_is_named_not_blamed_on_the_window() -> None:
    status = DriftStatus(
        model_version="v1",
        window_rows=50_000,
        checked_features=0,
        features=[
            FeatureDrift(name="age", status=FeatureStatus.INSUFFICIENT_REFERENCE, rows=50_000),
            FeatureDrift(name="plan", status=FeatureStatus.INSUFFICIENT_REFERENCE, rows=50_000),
        ],
    )
    reason, message = drift.verdict_of(status)
    assert reason == "InsufficientReference"
    assert "age, plan" in message
    assert "reference data" in message
    assert "minSamples" not in message
