"""The retraining loop's pure decisions, one function at a time: which trigger is
due, what holds it back, and when a run counts against maxConcurrentRuns."""

from __future__ import annotations

import datetime as dt
from typing import Any

from trailboss.api.deployment import DeploymentReason, DeploymentStatus
from trailboss.api.monitoring import DriftStatus
from trailboss.api.retraining import RetrainingSpec, RetrainingStatus
from trailboss.policies import retraining as policy

NOW = dt.datetime(2026, 3, 28, 12, 0, tzinfo=dt.UTC)
CREATED = NOW - dt.timedelta(days=30)


def drifted(consecutive: int, version: str = "v1", checks: int = 7) -> DriftStatus:
    return DriftStatus(
        model_version=version,
        consecutive=consecutive,
        checks=checks,
        score=0.4,
        checked_at=NOW - dt.timedelta(minutes=1),
    )


def held_by(reason: str, *args: Any, **kwargs: Any) -> policy.Hold:
    """``policy.hold(*args, **kwargs)``, which must hold for ``reason``."""
    held = policy.hold(*args, **kwargs)
    assert held is not None
    assert held.reason == reason
    return held


def test_a_request_on_demand_comes_before_drift_and_is_acted_on_once() -> None:
    spec = RetrainingSpec(on_drift=True)
    status = DeploymentStatus(stable_version="v1", drift=drifted(3))
    trigger = policy.due(spec, status, "now", NOW, CREATED)
    assert trigger == policy.Trigger(policy.MANUAL, "now")
    status.handled_retrain = "now"
    after = policy.due(spec, status, "now", NOW, CREATED)
    assert after is not None
    assert after.reason == policy.DRIFT


def test_drift_is_due_after_enough_drifted_checks_of_the_serving_version_only() -> None:
    spec = RetrainingSpec(on_drift=True, drift_checks=2)
    status = DeploymentStatus(stable_version="v1", drift=drifted(1))
    assert policy.due(spec, status, None, NOW, CREATED) is None
    status.drift = drifted(2)
    assert policy.due(spec, status, None, NOW, CREATED) == policy.Trigger(
        policy.DRIFT, "check-7", drift_score=0.4
    )
    status.drift = drifted(5, version="v0")  # a streak of the version before a promotion
    assert policy.due(spec, status, None, NOW, CREATED) is None


def test_a_check_that_fired_once_fires_no_second_retraining() -> None:
    spec = RetrainingSpec(on_drift=True)
    status = DeploymentStatus(
        stable_version="v1",
        drift=drifted(2),
        retrainings=[RetrainingStatus(reason=policy.DRIFT, trigger="check-7")],
    )
    assert policy.due(spec, status, None, NOW, CREATED) is None


def test_a_failed_latest_check_breaks_the_streak() -> None:
    drift = drifted(4)
    drift.failed_at = NOW
    assert policy.drift_streak(DeploymentStatus(stable_version="v1", drift=drift)) == 0


def test_a_schedule_time_is_due_once_and_not_when_missed_by_more_than_an_hour() -> None:
    spec = RetrainingSpec(schedule="0 11 * * *")
    status = DeploymentStatus()
    trigger = policy.due(spec, status, None, NOW, CREATED)
    slot = dt.datetime(2026, 3, 28, 11, 0, tzinfo=dt.UTC)
    assert trigger == policy.Trigger(policy.SCHEDULE, slot.isoformat(), slot=slot)
    status.last_scheduled = slot
    assert policy.due(spec, status, None, NOW, CREATED) is None
    late = dt.datetime(2026, 3, 28, 12, 30, tzinfo=dt.UTC)
    assert policy.due(spec, DeploymentStatus(), None, late + dt.timedelta(hours=1), CREATED) is None


def test_the_limit_holds_every_trigger_and_a_person_skips_rollout_and_cooldown() -> None:
    spec = RetrainingSpec(max_concurrent_runs=1, cooldown="24h")
    last = RetrainingStatus(triggered_at=NOW - dt.timedelta(hours=1))
    status = DeploymentStatus(canary_version="v2", last_retraining=last)
    manual = policy.Trigger(policy.MANUAL, "now")
    held = held_by(DeploymentReason.MAX_CONCURRENT_RUNS, spec, status, manual, NOW, running=1)
    assert "maxConcurrentRuns: 1" in held.message
    assert policy.hold(spec, status, manual, NOW, running=0) is None


def test_drift_waits_for_the_rollout_then_for_the_cooldown() -> None:
    spec = RetrainingSpec(cooldown="24h")
    last = RetrainingStatus(triggered_at=NOW - dt.timedelta(hours=20))
    status = DeploymentStatus(canary_version="v2", last_retraining=last)
    trigger = policy.Trigger(policy.DRIFT, "check-7")
    held = held_by(DeploymentReason.ROLLOUT_IN_PROGRESS, spec, status, trigger, NOW, running=0)
    status.canary_version = None
    held = held_by(DeploymentReason.COOLDOWN, spec, status, trigger, NOW, running=0)
    assert held.retry_after == 4 * 3600
    assert policy.hold(RetrainingSpec(cooldown="20h"), status, trigger, NOW, running=0) is None


def test_a_daily_schedule_with_a_day_of_cooldown_fires_every_day_across_a_clock_change() -> None:
    """Cooldown is measured between schedule times on the schedule's wall clock: from
    noon to noon in Berlin across the night summer time starts is 23 hours, and a
    day all the same."""
    spec = RetrainingSpec(schedule="0 12 * * *", time_zone="Europe/Berlin", cooldown="24h")
    before = dt.datetime(2026, 3, 28, 11, 0, tzinfo=dt.UTC)  # 12:00 CET
    after = dt.datetime(2026, 3, 29, 10, 0, tzinfo=dt.UTC)  # 12:00 CEST, 23 h later
    last = RetrainingStatus(
        reason=policy.SCHEDULE,
        trigger=before.isoformat(),
        triggered_at=before + dt.timedelta(seconds=2),  # a requeue lands a little late
    )
    status = DeploymentStatus(last_retraining=last)
    trigger = policy.Trigger(policy.SCHEDULE, after.isoformat(), slot=after)
    assert policy.hold(spec, status, trigger, after, running=0) is None
    longer = RetrainingSpec(schedule="0 12 * * *", time_zone="Europe/Berlin", cooldown="25h")
    held = held_by(DeploymentReason.COOLDOWN, longer, status, trigger, after, running=0)
    assert held.retry_after == 3600


def test_a_run_holds_its_slot_until_it_finishes_or_is_suspended() -> None:
    running = RetrainingStatus(phase=policy.RUNNING)
    assert policy.in_progress(running, finished=False, suspended=False)
    assert not policy.in_progress(RetrainingStatus(phase="Validated"), False, False)
    # Past the records status keeps, the TrainingRun itself says.
    assert policy.in_progress(None, finished=False, suspended=False)
    assert not policy.in_progress(None, finished=True, suspended=False)
    assert not policy.in_progress(None, finished=False, suspended=True)


def test_the_run_deadline_counts_from_the_start() -> None:
    spec = RetrainingSpec(run_deadline="2h")
    assert policy.run_overdue(NOW - dt.timedelta(hours=3), spec, NOW)
    assert not policy.run_overdue(NOW - dt.timedelta(hours=1), spec, NOW)
    assert not policy.run_overdue(None, spec, NOW)
    record = RetrainingStatus(triggered_at=NOW - dt.timedelta(hours=2, seconds=1))
    assert policy.overdue(spec, record, NOW)
    assert not policy.overdue(spec, RetrainingStatus(), NOW)
