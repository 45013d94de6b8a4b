"""Pure decisions of the retraining loop: which trigger fires now and what
holds it back.

Drift and schedule are automatic and therefore bounded: by the cooldown, by a
rollout in progress and by the number of runs at once. An on-demand request
is a person's decision and skips cooldown and rollout, but never the limit.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from trailboss.api.deployment import DeploymentReason, DeploymentStatus
from trailboss.api.durations import spec_seconds
from trailboss.api.retraining import RetrainingSpec, RetrainingStatus
from trailboss.policies import cron

DRIFT, SCHEDULE, MANUAL = "Drift", "Schedule", "Manual"
RUNNING = "Running"
HISTORY = 10
STARTING_DEADLINE = dt.timedelta(hours=1)
"""A schedule time missed by more than this (the operator was down) is skipped,
not run late: a retraining at an unexpected hour surprises more than a missed one."""


@dataclass(frozen=True)
class Trigger:
    reason: str
    key: str
    """Identifies what fired, so the same firing is never acted on twice."""
    drift_score: float | None = None
    slot: dt.datetime | None = None


@dataclass(frozen=True)
class Hold:
    reason: str
    message: str
    retry_after: float | None = None


def due(
    spec: RetrainingSpec,
    status: DeploymentStatus,
    annotation: str | None,
    now: dt.datetime,
    created: dt.datetime,
) -> Trigger | None:
    """The trigger that wants a run now, if any (on demand first)."""
    if annotation and annotation != status.handled_retrain:
        return Trigger(MANUAL, annotation)
    drift = status.drift
    if spec.on_drift and drift_streak(status) >= spec.drift_checks and drift is not None:
        key = f"check-{drift.checks}"
        if not any(r.trigger == key for r in status.retrainings):
            return Trigger(DRIFT, key, drift_score=drift.score)
    if spec.schedule:
        slot = cron.previous_fire(spec.schedule, now, spec.time_zone)
        fresh = slot is not None and slot >= now - STARTING_DEADLINE
        if fresh and slot is not None and slot > (status.last_scheduled or created):
            return Trigger(SCHEDULE, slot.isoformat(), slot=slot)
    return None


def drift_streak(status: DeploymentStatus) -> int:
    """Drifted checks in a row that may retrain: those of the version serving now,
    and only while the latest check succeeded. A streak of the version before a
    promotion, or one a failed check interrupted, retrains nothing."""
    drift = status.drift
    if drift is None or drift.model_version != status.stable_version:
        return 0
    if drift.failed_at is not None and (
        drift.checked_at is None or drift.failed_at >= drift.checked_at
    ):
        return 0
    return drift.consecutive or 0


def hold(
    spec: RetrainingSpec,
    status: DeploymentStatus,
    trigger: Trigger,
    now: dt.datetime,
    running: int,
) -> Hold | None:
    """Why ``trigger`` may not start a run now; None when it may. ``running``:
    the retrainings in progress, all of them (status keeps only the last few)."""
    if running >= spec.max_concurrent_runs:
        return Hold(
            DeploymentReason.MAX_CONCURRENT_RUNS,
            f"{trigger.reason} retraining waits: {running} run(s) in progress "
            f"(spec.retraining.maxConcurrentRuns: {spec.max_concurrent_runs})",
        )
    if trigger.reason == MANUAL:
        return None
    if status.canary_version is not None and not spec.during_rollout:
        return Hold(
            DeploymentReason.ROLLOUT_IN_PROGRESS,
            f"{trigger.reason} retraining waits for the rollout of {status.canary_version} "
            "to end (spec.retraining.duringRollout: false)",
        )
    last = status.last_retraining
    if last is not None and last.triggered_at is not None:
        left = spec_seconds(spec.cooldown) - _since(spec, last, trigger, now)
        if left > 0:
            return Hold(
                DeploymentReason.COOLDOWN,
                f"{trigger.reason} retraining waits {left:.0f}s more: the last one started "
                f"at {last.triggered_at.isoformat()} (spec.retraining.cooldown: {spec.cooldown})",
                retry_after=left,
            )
    return None


def _since(
    spec: RetrainingSpec, last: RetrainingStatus, trigger: Trigger, now: dt.datetime
) -> float:
    """Seconds from the last retraining to ``trigger``, each taken when it was due:
    a schedule time rather than the moment the operator got to it (a requeue lands
    a second or two late, which would make a daily schedule with a 24h cooldown
    fire every other day). Two schedule times are compared on the schedule's wall
    clock, so a day stays a day when daylight saving time changes."""
    previous = _slot_of(last)
    if trigger.slot is not None and previous is not None:
        zone = cron.zone(spec.time_zone)
        wall = trigger.slot.astimezone(zone).replace(tzinfo=None)
        return (wall - previous.astimezone(zone).replace(tzinfo=None)).total_seconds()
    start = previous or last.triggered_at or now
    return ((trigger.slot or now) - start).total_seconds()


def _slot_of(record: RetrainingStatus) -> dt.datetime | None:
    """The schedule time a scheduled retraining ran for (its trigger)."""
    if record.reason != SCHEDULE or not record.trigger:
        return None
    try:
        return dt.datetime.fromisoformat(record.trigger)
    except ValueError:
        return None


def overdue(spec: RetrainingSpec, record: RetrainingStatus, now: dt.datetime) -> bool:
    """Whether a retraining in progress has run past spec.retraining.runDeadline."""
    if record.triggered_at is None:
        return False
    return (now - record.triggered_at).total_seconds() > spec_seconds(spec.run_deadline)


def in_progress(record: RetrainingStatus | None, finished: bool, suspended: bool) -> bool:
    """Whether one TrainingRun of this Deployment holds a slot of maxConcurrentRuns:
    as its record says while status keeps one; past that, until it finished or
    was suspended (a suspended TrainingRun's Job keeps no pods)."""
    if record is not None:
        return record.phase == RUNNING
    return not (finished or suspended)


def run_overdue(created: dt.datetime | None, spec: RetrainingSpec, now: dt.datetime) -> bool:
    """Whether a TrainingRun, created at ``created``, has run past spec.retraining.runDeadline."""
    return created is not None and (now - created).total_seconds() > spec_seconds(spec.run_deadline)
