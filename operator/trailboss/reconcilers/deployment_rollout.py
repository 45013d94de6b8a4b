"""A rollout, one level-based step at a time: start it, hold each step for its
pause while analysis runs, then promote; abort on a failed analysis, a passed
progress deadline or a request. Everything it decides lives in status, so a
restarted operator resumes exactly where it was."""

from __future__ import annotations

import datetime as dt

from trailboss import metrics
from trailboss.api.deployment import (
    ABORTED,
    PROMOTED,
    AnalysisResult,
    Deployment,
    DeploymentReason,
    DeploymentStatus,
    PromotedVersion,
    RetiringVersion,
    RolloutStep,
    RolloutStrategy,
)
from trailboss.api.durations import duration_seconds
from trailboss.clients.prometheus import QueryFailed
from trailboss.policies import rollout as policy
from trailboss.reconcilers.turn import Turn

ANALYSIS_HISTORY = 20
PROMOTED_HISTORY = 5
POD_POLL_SECONDS = 2.0

Rollout = Turn[Deployment]


def steps(turn: Rollout) -> list[RolloutStep]:
    rollout = turn.obj.spec.rollout
    if rollout.strategy == RolloutStrategy.REPLACE:
        return [RolloutStep(weight=100)]
    return policy.steps_of(rollout)


def start(turn: Rollout, version: str) -> None:
    """A new target: it becomes the canary, from the first step (or straight to
    100 % when it is a recent stable version coming back)."""
    status: DeploymentStatus = turn.status
    now = turn.svc.clock()
    if status.canary_version is not None:
        retire(turn, status.canary_version, now)
        turn.event(
            DeploymentReason.SUPERSEDED,
            f"{status.canary_version} superseded by {version}; restarting from stable "
            f"{status.stable_version}",
        )
    fast = policy.recently_promoted(
        status.promoted, version, turn.obj.spec.rollout.fast_rollback_window, now
    )
    status.canary_version = version
    status.current_step = len(steps(turn)) - 1 if fast else 0
    status.canary_weight = steps(turn)[status.current_step].weight
    status.step_started_at = now
    status.pause_started_at = None
    status.rollout_started_at = now
    status.analysis = []
    status.analysis_failures = None
    status.analysis_consecutive_errors = None
    how = "fast rollback to a recent stable version" if fast else "canary"
    turn.event(
        DeploymentReason.ROLLOUT_STARTED,
        f"rolling out {version} ({how}) over stable {status.stable_version}",
    )


def advance(turn: Rollout, canary_ready: bool) -> None:
    """Hold, measure, move to the next step, or promote."""
    status: DeploymentStatus = turn.status
    now = turn.svc.clock()
    started = status.step_started_at or now
    deadline = duration_seconds(turn.obj.spec.rollout.progress_deadline)
    if not canary_ready:
        if (now - started).total_seconds() > deadline:
            abort(
                turn,
                DeploymentReason.PROGRESS_DEADLINE_EXCEEDED,
                f"{status.canary_version}'s pods were not ready within "
                f"{turn.obj.spec.rollout.progress_deadline}",
            )
            return
        turn.requeue(POD_POLL_SECONDS)
        return
    if status.pause_started_at is None:
        status.pause_started_at = now
    analysis_ok = _analyse(turn, now)
    if status.canary_version is None or not analysis_ok:
        return
    step = steps(turn)[status.current_step or 0]
    pause = duration_seconds(step.pause) if step.pause else 0.0
    remaining = pause - (now - status.pause_started_at).total_seconds()
    if remaining > 0:
        turn.requeue(remaining)
        return
    _next_step(turn, now)


def _analyse(turn: Rollout, now: dt.datetime) -> bool:
    """Run the analysis when due; False while the step must hold (or it aborted)."""
    analysis = turn.obj.spec.rollout.analysis
    status: DeploymentStatus = turn.status
    if analysis is None:
        return True
    interval = duration_seconds(analysis.interval)
    mine = [r for r in status.analysis if r.step == status.current_step]
    last = mine[-1].measured_at if mine else None
    if last is None or (now - last).total_seconds() >= interval:
        _measure(turn, now)
        mine = [r for r in status.analysis if r.step == status.current_step]
        turn.requeue(interval)
    else:
        turn.requeue(interval - (now - last).total_seconds())
    result = policy.verdict(
        status.analysis_failures or 0,
        status.analysis_consecutive_errors or 0,
        status.analysis,
        analysis,
    )
    if result.failed:
        abort(turn, DeploymentReason.ANALYSIS_FAILED, result.message)
        return False
    if result.inconclusive:
        return _hold_inconclusive(turn, now)
    return any(r.passed for r in mine)


def _hold_inconclusive(turn: Rollout, now: dt.datetime) -> bool:
    status: DeploymentStatus = turn.status
    started = status.step_started_at or now
    deadline = turn.obj.spec.rollout.progress_deadline
    if (now - started).total_seconds() > duration_seconds(deadline):
        abort(
            turn,
            DeploymentReason.ANALYSIS_INCONCLUSIVE,
            f"analysis had no data for {deadline} (the progress deadline)",
        )
    return False


def _measure(turn: Rollout, now: dt.datetime) -> None:
    analysis = turn.obj.spec.rollout.analysis
    assert analysis is not None
    status: DeploymentStatus = turn.status
    values = {
        "version": status.canary_version or "",
        "stableVersion": status.stable_version or "",
        "namespace": turn.namespace,
        "deployment": turn.name,
    }
    for query in analysis.queries:
        promql = policy.render(query.query, values)
        try:
            value, error = turn.svc.prometheus.query(analysis.prometheus_url, promql), None
        except QueryFailed as failed:
            value, error = None, str(failed)
        result = policy.measure(
            query,
            value,
            error,
            version=status.canary_version,
            step=status.current_step,
            measured_at=now,
        )
        status.analysis = [*status.analysis, result][-ANALYSIS_HISTORY:]
        status.analysis_failures, status.analysis_consecutive_errors = policy.tally(
            status.analysis_failures or 0, status.analysis_consecutive_errors or 0, result
        )
        _export(turn, result)


def _export(turn: Rollout, result: AnalysisResult) -> None:
    labels = (turn.namespace, turn.name, result.name)
    value, phase = result.value, str(result.phase)

    def record() -> None:
        metrics.ANALYSIS_MEASUREMENTS.labels(*labels, phase).inc()
        if value is not None:
            metrics.ANALYSIS_VALUE.labels(*labels).set(value)

    turn.after_write(record)


def _next_step(turn: Rollout, now: dt.datetime) -> None:
    status: DeploymentStatus = turn.status
    plan = steps(turn)
    following = (status.current_step or 0) + 1
    if following >= len(plan):
        promote(turn, "all steps passed")
        return
    status.current_step = following
    status.canary_weight = plan[following].weight
    status.step_started_at = now
    status.pause_started_at = None
    turn.event(
        DeploymentReason.STEP_STARTED,
        f"step {following + 1}/{len(plan)}: {status.canary_weight}% to {status.canary_version}",
    )
    turn.requeue(0.0)


def promote(turn: Rollout, why: str) -> None:
    """The canary becomes stable; the old stable keeps its pods for the scale-down delay."""
    status: DeploymentStatus = turn.status
    now = turn.svc.clock()
    version, old = status.canary_version, status.stable_version
    if version is None:
        return
    if old is not None:
        retire(turn, old, now)
    status.stable_version = version
    status.promoted = [*status.promoted, PromotedVersion(version=version, promoted_at=now)][
        -PROMOTED_HISTORY:
    ]
    _end(turn)
    message = f"{version} promoted to stable ({why}); replaced {old}"
    turn.set_condition(PROMOTED, True, DeploymentReason.PROMOTED, message)
    turn.set_condition(ABORTED, False, DeploymentReason.PROMOTED, message)
    turn.event(DeploymentReason.PROMOTED, message)
    _count(turn, "promoted")


def abort(turn: Rollout, reason: str, why: str) -> None:
    """Traffic back to stable now; the failed version is not retried until the
    target changes again."""
    status: DeploymentStatus = turn.status
    version = status.canary_version
    if version is None:
        return
    retire(turn, version, turn.svc.clock())
    status.aborted_version = version
    _end(turn)
    message = f"rollout of {version} aborted: {why}; serving stable {status.stable_version}"
    turn.set_condition(ABORTED, True, reason, message)
    turn.event(reason, message, warning=True)
    _count(turn, "aborted")


def _end(turn: Rollout) -> None:
    status: DeploymentStatus = turn.status
    status.canary_version = None
    status.canary_weight = None
    status.current_step = None
    status.step_started_at = None
    status.pause_started_at = None
    status.rollout_started_at = None


def retire(turn: Rollout, version: str, since: dt.datetime) -> None:
    status: DeploymentStatus = turn.status
    kept = [r for r in status.retiring if r.version != version]
    status.retiring = [*kept, RetiringVersion(version=version, since=since)][-10:]


def _count(turn: Rollout, result: str) -> None:
    labels = (turn.namespace, turn.name, result)
    turn.after_write(lambda: metrics.ROLLOUTS.labels(*labels).inc())
