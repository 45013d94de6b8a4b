"""Reading a registry alias: only "there is no such alias (or model)" reads as
unset; any other refusal raises, so a Deployment under an alias policy keeps
its target instead of taking a refused read for an alias that moved away."""

from __future__ import annotations

from typing import Any

import pytest
from mlflow.exceptions import MlflowException
from mlflow.protos import databricks_pb2

from trailboss.clients.protocols import TrackingRejected
from trailboss.clients.tracking import Tracking


class _Registry:
    def __init__(self, code: str) -> None:
        self.code = code

    def get_model_version_by_alias(self, name: str, alias: str) -> Any:
        code = databricks_pb2.ErrorCode.Value(self.code)
        raise MlflowException(f"{alias} refused", error_code=code)


def _tracking(code: str) -> Tracking:
    tracking = Tracking("http://mlflow:5000")
    tracking._made = _Registry(code)  # the client MLflow would have built
    return tracking


@pytest.mark.parametrize("code", ["RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"])
def test_a_missing_alias_or_model_is_unset(code: str) -> None:
    assert _tracking(code).alias_version("churn", "champion") is None


@pytest.mark.parametrize("code", ["PERMISSION_DENIED", "UNAUTHENTICATED", "REQUEST_LIMIT_EXCEEDED"])
def test_any_other_refusal_raises(code: str) -> None:
    with pytest.raises(TrackingRejected):
        _tracking(code).alias_version("churn", "champion")
