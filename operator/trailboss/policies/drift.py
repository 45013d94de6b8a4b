"""Pure decisions around drift checks: where a ModelVersion's reference
profile lives, the command a drift Job runs, and reading its result."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from pydantic import ValidationError

from trailboss.api.common import explain
from trailboss.api.deployment import DeploymentReason
from trailboss.api.durations import spec_seconds
from trailboss.api.modelversion import ModelVersionSpec
from trailboss.api.monitoring import DriftStatus, FeatureDrift, FeatureStatus, MonitoringSpec

PROFILE_DIR = "reference-profile"
PROFILE_STATUS = "status.json"
"""Beside a profile, written last: its ReferenceProfileStatus, for the ModelVersion."""
RESULTS_DIR = "drift-results"
COMPLETION_INDEX_ENV = "JOB_COMPLETION_INDEX"
"""The pod's index in an Indexed Job, which Kubernetes sets in its env."""
PROFILE_ATTEMPTS = 4
"""Reference profile Jobs tried per ModelVersion: a blip of S3 or of a node heals
by itself, data that cannot be read does not."""
PROFILE_BACKOFF_SECONDS = 300.0


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
    argv = [
        "drift",
        f"--profile={profile}",
        f"--logs={monitoring.prediction_logs}",
        f"--deployment={log_deployment(namespace, deployment)}",
        f"--model-version={model_version}",
        f"--monitoring={json.dumps(monitoring.to_json(), sort_keys=True)}",
    ]
    pods = monitoring.parallelism
    if pods == 1:
        return [*argv, f"--output={result}"]
    # The kubelet puts each pod's own index in place of $(JOB_COMPLETION_INDEX).
    return [
        *argv,
        f"--shard=$({COMPLETION_INDEX_ENV})/{pods}",
        f"--output={part_location(result, f'$({COMPLETION_INDEX_ENV})', pods)}",
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


def reference_source(spec: ModelVersionSpec) -> str | None:
    """The data a ModelVersion's profile is built from: spec.referenceData, else
    the training data its TrainingRun pinned, at the pinned version (`@etag:…`,
    `@version:…`), so the profile describes what the model was trained on. A
    digest pin (a prefix of several objects) cannot be read back by version."""
    if spec.reference_data:
        return spec.reference_data
    dataset = spec.source.dataset if spec.source else None
    if not dataset or not dataset.startswith("s3://"):
        return None
    location, _, pin = dataset.partition("@")
    return dataset if pin.startswith(("etag:", "version:")) else location


def profile_command(reference: str, output: str) -> list[str]:
    """Arguments of `trailboss profile` for one ModelVersion."""
    return ["profile", f"--reference={reference}", f"--output={output}"]


def result_location(prediction_logs: str, namespace: str, deployment: str, job: str) -> str:
    """Where a check's Job writes its result: beside the logs, outside any
    `deployment=` partition, so a check never reads another's result as logs."""
    base = prediction_logs.rstrip("/")
    return f"{base}/{RESULTS_DIR}/deployment={log_deployment(namespace, deployment)}/{job}.json"


def part_location(result: str, index: int | str, count: int) -> str:
    """Where pod `index` of a check spread over `count` pods writes its part:
    beside the check's result, a key of its own, so pods never overwrite each
    other: `.../<job>.json` -> `.../<job>.part-<index>-of-<count>.json`."""
    stem = result.removesuffix(".json")
    return f"{stem}.part-{index}-of-{count}.json"


def pods_of(job: dict[str, Any]) -> int:
    """How many pods a check's Job spreads it over: its completions when it is
    an Indexed Job. Read from the Job, not the spec, so a check is merged from
    the parts it was started with even if parallelism changed since."""
    spec = job.get("spec") or {}
    if spec.get("completionMode") != "Indexed":
        return 1
    return int(spec.get("completions") or 1)


def started_with(job: dict[str, Any]) -> MonitoringSpec | None:
    """The monitoring spec a check's Job was given (its `--monitoring`), so its
    parts are decided by the rules they were measured under; None if unreadable."""
    containers = (((job.get("spec") or {}).get("template") or {}).get("spec") or {}).get(
        "containers"
    ) or [{}]
    flag = "--monitoring="
    for arg in containers[0].get("command") or []:
        if isinstance(arg, str) and arg.startswith(flag):
            try:
                return MonitoringSpec.model_validate(json.loads(arg[len(flag) :]))
            except (ValueError, ValidationError):
                return None
    return None


def part_problem(document: dict[str, Any], index: int, count: int) -> str | None:
    """What makes a pod's part unfit to merge as shard `index` of `count`, or None."""
    shard = document.get("shard")
    if not isinstance(shard, dict) or (shard.get("index"), shard.get("count")) != (index, count):
        return f"it is not the part of shard {index} of {count} (it says {shard!r})"
    missing = [k for k in _PART_KEYS if k not in document]
    if missing:
        return f"it has no {', '.join(missing)}: not written by trailboss drift --shard"
    try:
        dt.datetime.fromisoformat(str(document["checkedAt"]))
        int(document["windowRows"])
        if not isinstance(document["features"], list):
            raise ValueError("features is not a list")
        for feature in document["features"]:
            FeatureDrift.model_validate(feature)
    except ValidationError as error:
        return f"malformed: {explain(error, 'features[]')}"
    except (TypeError, ValueError) as error:
        return f"malformed: {error}"
    return None


_PART_KEYS = ("deployment", "window", "profile", "modelVersion", "windowRows", "checkedAt",
              "features")  # fmt: skip


def seconds_until_due(last: DriftStatus | None, interval: str, now: dt.datetime) -> float:
    """0 when the next check is due: none ran yet, or `interval` has passed
    since the last one completed or failed."""
    if last is None:
        return 0.0
    tried = [t for t in (last.checked_at, last.failed_at) if t is not None]
    if not tried:
        return 0.0
    elapsed = (now - max(tried)).total_seconds()
    return max(0.0, spec_seconds(interval) - elapsed)


def verdict_of(status: DriftStatus) -> tuple[str, str]:
    """The DriftMonitoring condition's reason and message for a check's result."""
    checked = f"{status.checked_features or 0} features over {status.window_rows or 0} rows"
    if status.drifted:
        names = ", ".join(drifted_features(status))
        return (
            DeploymentReason.DRIFT_DETECTED,
            f"{status.model_version}: drift in {names} "
            f"(share {status.drift_share or 0:.2f} of {checked})",
        )
    if status.drifted is None:
        short = [
            f.name for f in status.features if f.status == FeatureStatus.INSUFFICIENT_REFERENCE
        ]
        if short:
            # More predictions would not help: the reference itself is too small.
            return (
                DeploymentReason.INSUFFICIENT_REFERENCE,
                f"{status.model_version}: its reference data has too few rows to decide for "
                f"{', '.join(short)}; register the version with a larger reference dataset",
            )
        return (
            DeploymentReason.INSUFFICIENT_DATA,
            f"{status.model_version}: too few predictions in the window to decide "
            f"({status.window_rows or 0} rows); see spec.monitoring.minSamples",
        )
    drifted = drifted_features(status)
    some = f"; drifted but under the share: {', '.join(drifted)}" if drifted else ""
    return DeploymentReason.NO_DRIFT, f"{status.model_version}: no dataset drift in {checked}{some}"


def profile_retry_delay(attempts: int) -> float | None:
    """Seconds before the next reference profile attempt after ``attempts`` failed
    ones (5, 10, 20 minutes); None once all PROFILE_ATTEMPTS are used."""
    if attempts >= PROFILE_ATTEMPTS:
        return None
    return PROFILE_BACKOFF_SECONDS * float(2 ** (max(attempts, 1) - 1))
