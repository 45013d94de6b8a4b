"""A TrainingRun's MLflow run after training: record the outcome and metrics,
close the run, and mark it KILLED when the TrainingRun is deleted first."""

from __future__ import annotations

from typing import Any

from trailboss.api.common import READY
from trailboss.api.conditions import find, is_true, set_condition
from trailboss.api.trainingrun import (
    FailureStatus,
    TrainingPhase,
    TrainingReason,
    TrainingRun,
    TrainingRunStatus,
)
from trailboss.clients.protocols import TrackingUnavailable
from trailboss.policies import training as policy
from trailboss.reconcilers.common import Services
from trailboss.reconcilers.outcomes import Waiting
from trailboss.reconcilers.turn import Turn

TRACKED = "Tracked"
"""Condition: the MLflow run holds the outcome and status holds its metrics."""


def close_run(turn: Turn[TrainingRun]) -> None:
    """Copy the run's metrics into status and close the run if the trainer did not.
    An outage here is waited out: the outcome is known, its record is not yet."""
    status = turn.status
    run_id = status.mlflow.run_id if status.mlflow else None
    if run_id is None or is_true(status.conditions, TRACKED) or status.phase is None:
        return
    state = policy.mlflow_run_status(status.phase)
    try:
        turn.svc.tracking.finish_run(run_id, state)
        status.metrics = turn.svc.tracking.get_run(run_id).metrics
    except TrackingUnavailable as error:
        raise Waiting(
            TrainingReason.TRACKING_UNAVAILABLE,
            f"training {str(status.phase).lower()}, but MLflow at {turn.svc.tracking.uri} is "
            f"unreachable to record it: {error} (retrying)",
        ) from error
    status.conditions = set_condition(
        status.conditions,
        TRACKED,
        True,
        "RunClosed",
        f"MLflow run {run_id} recorded",
        turn.generation,
    )
    _restore_ready(turn)


def _restore_ready(turn: Turn[TrainingRun]) -> None:
    """After an outage the Ready condition says so; put the outcome back."""
    status = turn.status
    ready = find(status.conditions, READY)
    if ready is None or ready.reason != TrainingReason.TRACKING_UNAVAILABLE:
        return
    if status.phase == TrainingPhase.SUCCEEDED:
        reason, message = TrainingReason.SUCCEEDED, "training finished"
    else:
        failure = status.failure or FailureStatus()
        reason, message = TrainingReason.FAILED, failure.message or failure.reason or "failed"
    turn.set_ready(status.phase == TrainingPhase.SUCCEEDED, reason, message)


def kill_mlflow_run(body: dict[str, Any], svc: Services) -> None:
    """On deletion of an unfinished run: mark its MLflow run KILLED."""
    status = TrainingRunStatus.model_validate(body.get("status") or {})
    if status.phase in policy.TERMINAL or not (status.mlflow and status.mlflow.run_id):
        return
    svc.tracking.finish_run(status.mlflow.run_id, "KILLED")
