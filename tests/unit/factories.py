"""Small factories for unit tests: valid objects with just the fields a test cares about."""

from __future__ import annotations

from typing import Any

from trailboss.api.trainingrun import TrainingRunSpec
from trailboss.builders.training import Owner, TrainingContext

OWNER = Owner(name="churn-2026-11", namespace="ml", uid="0b7c3c7e-8f1e-4a53-9d1c-7c1f2b8e9a10")


def training_spec(**fields: Any) -> TrainingRunSpec:
    base: dict[str, Any] = {"model": "churn", "image": "trainer:1", "command": ["python", "t.py"]}
    return TrainingRunSpec.model_validate({**base, **fields})


def context(**fields: Any) -> TrainingContext:
    base: dict[str, Any] = {
        "tracking_uri": "http://mlflow:5000",
        "run_id": "abc123",
        "experiment_id": "7",
    }
    return TrainingContext(**{**base, **fields})


def job(
    *, active: int = 0, succeeded: int = 0, failed: int = 0, conditions: list[Any] | None = None
) -> dict[str, Any]:
    return {
        "metadata": {"name": "j"},
        "spec": {},
        "status": {
            "active": active,
            "succeeded": succeeded,
            "failed": failed,
            "startTime": "2026-11-22T10:00:00Z",
            "conditions": conditions or [],
        },
    }


def pod_terminated(
    exit_code: int, message: str = "", finished: str = "2026-11-22T10:05:00Z"
) -> Any:
    return {
        "status": {
            "containerStatuses": [
                {
                    "name": "trainer",
                    "state": {
                        "terminated": {
                            "exitCode": exit_code,
                            "reason": "Error",
                            "message": message,
                            "finishedAt": finished,
                        }
                    },
                }
            ]
        }
    }
