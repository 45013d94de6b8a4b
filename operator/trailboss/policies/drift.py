"""Pure decisions around drift checks: where a ModelVersion's reference
profile lives, the command a drift Job runs, and reading its result."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from trailboss.api.common import explain
from trailboss.api.deployment import DriftStatus, MonitoringSpec

PROFILE_DIR = "reference-profile"


def profile_location(artifact_uri: str) -> str | None:
    """The profile sits beside the model directory, not inside it, so the
    artifact's digest does not change: `s3://b/run/model` -> `s3://b/run/reference-profile/`.
    None for `runs:/` URIs, whose S3 location only the registry knows."""
    if not artifact_uri.startswith("s3://"):
        return None
    parent = artifact_uri.rstrip("/").rsplit("/", 1)[0]
    if parent == "s3:/" or "/" not in parent[len("s3://") :]:
        return f"{artifact_uri.rstrip('/')}-{PROFILE_DIR}/"  # a model at a bucket's root
    return f"{parent}/{PROFILE_DIR}/"


def log_deployment(namespace: str, name: str) -> str:
    """How the prediction-log path names a Deployment: `namespace.name`."""
    return f"{namespace}.{name}"


def drift_command(
    monitoring: MonitoringSpec,
    *,
    profile: str,
    namespace: str,
    deployment: str,
    model_version: str,
    result: str,
) -> list[str]:
    """Arguments of `trailboss drift` for one served version."""
    if not monitoring.prediction_logs:
        raise ValueError(
            "spec.monitoring.predictionLogs is empty: set the s3:// prefix the model server "
            "writes prediction logs to"
        )
    return [
        "drift",
        f"--profile={profile}",
        f"--logs={monitoring.prediction_logs}",
        f"--deployment={log_deployment(namespace, deployment)}",
        f"--model-version={model_version}",
        f"--monitoring={json.dumps(monitoring.to_json(), sort_keys=True)}",
        f"--output={result}",
    ]


def status_from_result(document: dict[str, Any]) -> DriftStatus:
    """The DriftStatus in a drift Job's result JSON; ValueError naming what is wrong."""
    try:
        return DriftStatus.model_validate(document["drift"])
    except KeyError as error:
        raise ValueError(
            "drift result has no `drift` object: not written by trailboss drift"
        ) from error
    except ValidationError as error:
        raise ValueError(f"drift result is malformed: {explain(error, 'drift')}") from error


def drifted_features(status: DriftStatus) -> list[str]:
    """Names of the features that drifted, for events and conditions."""
    return [f.name for f in status.features if f.drifted]
