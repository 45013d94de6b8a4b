"""Drift checks of a Deployment's stable version: every spec.monitoring.interval
one Job compares the last window of prediction logs with the ModelVersion's
reference profile, and its result becomes status.drift.

Checks are numbered. Check N runs as a Job with a name derived from N, and
status.drift.checks becomes N in the same write that records its result, so
a restart, a conflict or a second event finds the same Job and never runs or
counts a check twice. The Job writes its result to S3; the operator reads a
few kilobytes of JSON, never the logs. With spec.monitoring.parallelism N the
Job is Indexed: each of its N pods writes the part of its features, and the
operator merges the N parts into the one result.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from trailboss import metrics
from trailboss.api.common import API_VERSION
from trailboss.api.deployment import (
    DRIFT_MONITORING,
    Deployment,
    DeploymentReason,
    DeploymentStatus,
)
from trailboss.api.durations import spec_seconds
from trailboss.api.monitoring import DriftStatus, MonitoringSpec
from trailboss.builders import drift as jobs
from trailboss.builders.serving import Owner
from trailboss.clients.protocols import StoreUnavailable
from trailboss.policies import drift as policy
from trailboss.policies.training import observe_job
from trailboss.reconcilers.common import drift_job_context
from trailboss.reconcilers.deployment_children import owner_of
from trailboss.reconcilers.turn import Turn

Served = Turn[Deployment]
POLL_SECONDS = 30.0
"""While a check runs: a safety net beside the Job's own events."""


def monitor(turn: Served) -> None:
    """One step of drift monitoring, after the rollout has decided what serves."""
    monitoring, status = turn.obj.spec.monitoring, turn.status
    _export(turn)
    if monitoring is None or status.stable_version is None:
        return
    if not monitoring.prediction_logs:
        turn.set_condition(
            DRIFT_MONITORING, False, DeploymentReason.DRIFT_CHECK_FAILED,
            "spec.monitoring.predictionLogs is empty: set the s3:// prefix the model "
            "server writes prediction logs to",
        )  # fmt: skip
        return
    number = (status.drift.checks if status.drift else None) or 0
    owner = owner_of(turn)
    name = jobs.check_job_name(owner, number + 1)
    job = turn.svc.kube.get("batch/v1", "Job", turn.namespace, name)
    if job is None:
        _start(turn, monitoring, owner, number + 1)
    else:
        _finish(turn, monitoring, job, number + 1)


def _start(turn: Served, monitoring: MonitoringSpec, owner: Owner, number: int) -> None:
    status: DeploymentStatus = turn.status
    wait = policy.seconds_until_due(status.drift, monitoring.interval, turn.svc.clock())
    if wait > 0:
        turn.requeue(wait)
        return
    version = str(status.stable_version)
    profile = _profile(turn, version)
    if profile is None:
        turn.set_condition(
            DRIFT_MONITORING, False, DeploymentReason.REFERENCE_PROFILE_MISSING,
            f"ModelVersion {version} has no reference profile yet (see its "
            "ReferenceProfileReady condition); drift checks start once it has one",
        )  # fmt: skip
        turn.requeue(POLL_SECONDS)
        return
    name = jobs.check_job_name(owner, number)
    result = policy.result_location(
        str(monitoring.prediction_logs), turn.namespace, turn.name, name
    )
    args = policy.drift_command(
        monitoring, profile=profile, namespace=turn.namespace, deployment=turn.name,
        model_version=version, result=result,
    )  # fmt: skip
    ctx = drift_job_context(turn.svc.settings)
    turn.svc.kube.create(jobs.check_job(owner, number, args, ctx, pods=monitoring.parallelism))
    turn.requeue(POLL_SECONDS)


def _profile(turn: Served, version: str) -> str | None:
    found = turn.svc.kube.get(API_VERSION, "ModelVersion", turn.namespace, version) or {}
    profile = (found.get("status") or {}).get("referenceProfile") or {}
    location = profile.get("location")
    return str(location) if location else None


def _finish(turn: Served, monitoring: MonitoringSpec, job: dict[str, Any], number: int) -> None:
    """Record a finished check's result, or its failure, exactly once."""
    seen, name = observe_job(job), job["metadata"]["name"]
    if seen.failed_reason is None and not seen.complete:
        turn.requeue(POLL_SECONDS)
        return
    if seen.complete:
        result = policy.result_location(
            str(monitoring.prediction_logs), turn.namespace, turn.name, name
        )
        try:
            document = _result(turn, job, result)
            if document is None:
                raise ValueError(f"Job {name} completed but wrote no {result}")
            _record(turn, policy.status_from_result(document), number)
            _timed(turn, seen.created, "Completed")
            return
        except StoreUnavailable as error:
            turn.set_condition(
                DRIFT_MONITORING, False, DeploymentReason.DRIFT_CHECK_FAILED,
                f"cannot read {result}: {error} (retrying)",
            )  # fmt: skip
            turn.requeue(POLL_SECONDS)
            return
        except ValueError as error:
            message = str(error)
    else:
        message = (
            f"Job {name} failed ({seen.failed_reason}): see `kubectl logs job/{name}`; "
            f"the next check runs in {monitoring.interval}"
        )
    _failed(turn, message, number)
    _timed(turn, seen.created, "Failed")


def _timed(turn: Served, created: dt.datetime | None, outcome: str) -> None:
    """How long the check took, from its Job's creation to its result read here."""
    if created is None:
        return
    took = max(0.0, (turn.svc.clock() - created).total_seconds())
    labels = (turn.namespace, turn.name, outcome)
    turn.after_write(lambda: metrics.DRIFT_CHECK_SECONDS.labels(*labels).observe(took))


def _result(turn: Served, job: dict[str, Any], result: str) -> dict[str, Any] | None:
    """The result document of a completed check: the one its pod wrote, or the
    merge of every pod's part. ValueError naming a part that is missing or
    unreadable: part of the features is never a verdict on the dataset."""
    pods = policy.pods_of(job)
    if pods == 1:
        return turn.svc.storage.read_json(result)
    name = job["metadata"]["name"]
    parts = [_part(turn, name, result, index, pods) for index in range(pods)]
    spec = policy.started_with(job) or turn.obj.spec.monitoring or MonitoringSpec()
    # The drift engine (numpy, scipy: about 20 MiB) is loaded only once a
    # parallel check has finished, never by an operator that runs none.
    from trailboss.drift.shard import merge

    return merge(spec, parts)


def _part(turn: Served, job: str, result: str, index: int, pods: int) -> dict[str, Any]:
    location = policy.part_location(result, index, pods)
    document = turn.svc.storage.read_json(location)
    if document is None:
        raise ValueError(
            f"shard {index} of {pods} wrote no {location}, so the check has no verdict; see "
            f"`kubectl logs -l batch.kubernetes.io/job-name={job},"
            f"batch.kubernetes.io/job-completion-index={index}`"
        )
    problem = policy.part_problem(document, index, pods)
    if problem:
        raise ValueError(f"shard {index} of {pods} ({location}): {problem}")
    return document


def _record(turn: Served, result: DriftStatus, number: int) -> None:
    status: DeploymentStatus = turn.status
    previous = status.drift
    was_drifted = bool(previous and previous.drifted)
    result.checks = number
    streak = previous.consecutive or 0 if previous else 0
    if previous is None or previous.model_version != result.model_version:
        streak = 0  # a new version starts its own record
    result.consecutive = streak + 1 if result.drifted else 0
    result.checked_at = turn.svc.clock()  # the interval counts from when it was read
    status.drift = result
    reason, message = policy.verdict_of(result)
    turn.set_condition(DRIFT_MONITORING, True, reason, message)
    if result.drifted:
        turn.event(DeploymentReason.DRIFT_DETECTED, message, warning=True)
    elif was_drifted and result.drifted is False:
        turn.event(DeploymentReason.DRIFT_CLEARED, message)
    _closed(turn, reason)


def _failed(turn: Served, message: str, number: int) -> None:
    status: DeploymentStatus = turn.status
    drift = status.drift.model_copy() if status.drift else DriftStatus()
    drift.checks = number
    drift.failed_at = turn.svc.clock()  # the next try waits a whole interval
    drift.consecutive = 0  # checks in a row: a check that found nothing breaks the row
    status.drift = drift
    turn.set_condition(DRIFT_MONITORING, False, DeploymentReason.DRIFT_CHECK_FAILED, message)
    turn.event(DeploymentReason.DRIFT_CHECK_FAILED, message, warning=True)
    _closed(turn, DeploymentReason.DRIFT_CHECK_FAILED)


def _closed(turn: Served, result: str) -> None:
    """A check is done either way: count it once written, and wait an interval."""
    namespace, name = turn.namespace, turn.name
    turn.after_write(lambda: metrics.DRIFT_CHECKS.labels(namespace, name, result).inc())
    turn.requeue(spec_seconds(turn.obj.spec.monitoring.interval))  # type: ignore[union-attr]


def _export(turn: Served) -> None:
    """Drift gauges follow status: set from it on every pass, so they come back
    after a restart and go when monitoring is switched off."""
    namespace, name, watched = turn.namespace, turn.name, turn.obj.spec.monitoring is not None
    status: DeploymentStatus = turn.status  # read at write time: this pass may add a check
    turn.after_write(
        lambda: metrics.export_drift(namespace, name, status.drift if watched else None)
    )
