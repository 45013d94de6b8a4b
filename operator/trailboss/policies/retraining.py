"""Pure decisions of the retraining loop: which trigger fires now and what
holds it back.

Drift and schedule are automatic and therefore bounded: by the cooldown, by a
rollout in progress and by the number of runs at once. An on-demand request
is a person's decision and skips cooldown and rollout, but never the limit.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from trailboss.api.deployment import DeploymentReason, DeploymentStatus, RetrainingSpec
from trailboss.api.durations import duration_seconds
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
    if spec.on_drift and drift and (drift.consecutive or 0) >= spec.drift_checks:
        key = f"check-{drift.checks}"
        if not any(r.trigger == key for r in status.retrainings):
            return Trigger(DRIFT, key, drift_score=drift.score)
    if spec.schedule:
        slot = cron.previous_fire(spec.schedule, now, spec.time_zone)
        fresh = slot is not None and slot >= now - STARTING_DEADLINE
        if fresh and slot is not None and slot > (status.last_scheduled or created):
            return Trigger(SCHEDULE, slot.isoformat(), slot=slot)
    return None


def hold(
    spec: RetrainingSpec, status: DeploymentStatus, trigger: Trigger, now: dt.datetime
) -> Hold | None:
    """Why ``trigger`` may not start a run now; None when it may."""
    running = sum(r.phase == RUNNING for r in status.retrainings)
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
    last = status.last_retraining.triggered_at if status.last_retraining else None
    if last is not None:
        left = duration_seconds(spec.cooldown) - (now - last).total_seconds()
        if left > 0:
            return Hold(
                DeploymentReason.COOLDOWN,
                f"{trigger.reason} retraining waits {left:.0f}s more: the last one started "
                f"at {last.isoformat()} (spec.retraining.cooldown: {spec.cooldown})",
                retry_after=left,
            )
    return None
