"""How a TrainingRun's phase follows its Job."""

from __future__ import annotations

import pytest

from tests.unit.factories import job, pod_terminated
from trailboss.api.trainingrun import TrainingPhase, TrainingReason
from trailboss.policies import training as policy


def _true(type_: str, reason: str = "", message: str = "") -> dict[str, str]:
    return {"type": type_, "status": "True", "reason": reason, "message": message}


@pytest.mark.parametrize(
    ("observed", "phase", "reason"),
    [
        (job(), TrainingPhase.PENDING, TrainingReason.JOB_CREATED),
        (job(active=2), TrainingPhase.RUNNING, TrainingReason.RUNNING),
        (job(succeeded=1, conditions=[_true("Complete")]), TrainingPhase.SUCCEEDED, "Succeeded"),
        (
            job(failed=1, conditions=[_true("Failed", "BackoffLimitExceeded", "too many")]),
            TrainingPhase.FAILED,
            TrainingReason.FAILED,
        ),
        (
            job(active=1, conditions=[_true("Failed", "DeadlineExceeded", "past deadline")]),
            TrainingPhase.FAILED,
            TrainingReason.DEADLINE_EXCEEDED,
        ),
        (job(conditions=[_true("Suspended")]), TrainingPhase.PENDING, TrainingReason.SUSPENDED),
    ],
)
def test_phase_follows_the_job(observed: dict, phase: str, reason: str) -> None:  # type: ignore[type-arg]
    result = policy.progress(policy.observe_job(observed), None)
    assert (result.phase, result.reason) == (phase, reason)


def test_failure_names_exit_code_and_last_line_of_output() -> None:
    observed = policy.observe_job(
        job(
            failed=2,
            conditions=[
                _true(
                    "Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit"
                )
            ],
        )
    )
    pods = [
        pod_terminated(1, "old", finished="2026-11-22T10:01:00Z"),
        pod_terminated(
            3, "loading data\nValueError: label column missing", finished="2026-11-22T10:09:00Z"
        ),
    ]
    failure = policy.pod_failure(pods, observed)
    assert failure is not None
    assert failure.exit_code == 3
    assert failure.reason == "BackoffLimitExceeded"
    result = policy.progress(observed, failure)
    assert result.message == (
        "Job has reached the specified backoff limit: exit code 3: ValueError: label column missing"
    )
    assert observed.attempts == 2


def test_no_failure_while_pods_are_healthy() -> None:
    observed = policy.observe_job(job(active=1))
    assert policy.pod_failure([pod_terminated(0)], observed) is None


def test_mlflow_run_is_closed_to_match_the_outcome() -> None:
    assert policy.mlflow_run_status(TrainingPhase.SUCCEEDED) == "FINISHED"
    assert policy.mlflow_run_status(TrainingPhase.FAILED) == "FAILED"
