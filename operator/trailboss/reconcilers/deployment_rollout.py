"""A rollout, one level-based step at a time: start it, hold each step for its
pause while analysis runs, then promote; abort on a failed analysis, a passed
progress deadline or a request. Everything it decides lives in status, so a
restarted operator resumes exactly where it was.

Promote and abort requests are for the rollout in progress when the operator sees
them; with none in progress they are answered and dropped. The progress deadline
counts from when progress stopped (pods not ready, or no data), with time paused
left out. A version stable within the fast-rollback window comes back at once."""

from __future__ import annotations

import datetime as dt

from trailboss import metrics
from trailboss.api.deployment import (
    ABORT_ANNOTATION,
    ABORTED,
    MANUAL_REQUEST,
    PROMOTE_ANNOTATION,
    PROMOTED,
    Deployment,
    DeploymentReason,
    DeploymentStatus,
)
from trailboss.api.durations import spec_seconds
from trailboss.api.rollout import (
    AnalysisResult,
    PromotedVersion,
    RetiringVersion,
    RolloutStep,
    RolloutStrategy,
)
from trailboss.clients.protocols import Endpoint, QueryFailed
from trailboss.policies import rollout as policy
from trailboss.reconcilers import prometheus_access
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


def serve_first(turn: Rollout, version: str) -> None:
    """The first version served: nothing to protect yet, so no canary. It enters the
    history of stable versions, so that a rollback to it is a fast one."""
    status: DeploymentStatus = turn.status
    status.stable_version = version
    _remember_stable(status, version, turn.svc.clock())
    turn.event(DeploymentReason.SERVING, f"serving {version}")


def follow_plan(turn: Rollout) -> None:
    """Keep a rollout in progress on its plan after a spec edit: an index past the
    edited plan's end moves to its last step, and a step whose weight changed starts
    again at the new weight. Every edit is a transition, never an error."""
    status: DeploymentStatus = turn.status
    if status.canary_version is None:
        return
    plan = steps(turn)
    # A fast rollback or a promotion stays at the last step (100 %) whatever the
    # steps now say.
    at_last = status.fast_rollback or status.promoting
    index = len(plan) - 1 if at_last else policy.clamped_step(plan, status.current_step)
    if (index, plan[index].weight) == (status.current_step, status.canary_weight):
        return
    status.current_step = index
    status.canary_weight = plan[index].weight
    _begin_step(status, turn.svc.clock())
    turn.event(
        DeploymentReason.STEP_STARTED,
        f"spec.rollout changed: step {index + 1}/{len(plan)}: {status.canary_weight}% to "
        f"{status.canary_version}",
    )


def start(turn: Rollout, version: str) -> None:
    """A new target: it becomes the canary, from the first step (or straight to
    100 %, unanalysed, when it was stable moments ago)."""
    status: DeploymentStatus = turn.status
    now = turn.svc.clock()
    if status.canary_version is not None:
        retire(turn, status.canary_version, now)
        turn.event(
            DeploymentReason.SUPERSEDED,
            f"{status.canary_version} superseded by {version}; restarting from stable "
            f"{status.stable_version}",
        )
    window = turn.obj.spec.rollout.fast_rollback_window
    fast = policy.stable_within(status.promoted, version, window, now)
    plan = steps(turn)
    status.canary_version = version
    status.fast_rollback = fast or None
    status.promoting = None
    status.current_step = len(plan) - 1 if fast else 0
    status.canary_weight = plan[status.current_step].weight
    _begin_step(status, now)
    status.rollout_started_at = now
    status.paused_at = None
    status.inconclusive_since = None
    status.analysis = []
    status.analysis_failures = None
    status.analysis_consecutive_errors = None
    status.analysis_errors_in_a_row = {}
    how = "fast rollback to a version stable within " + window if fast else "canary"
    turn.event(
        DeploymentReason.ROLLOUT_STARTED,
        f"rolling out {version} ({how}) over stable {status.stable_version}",
    )


def _begin_step(status: DeploymentStatus, now: dt.datetime) -> None:
    status.step_started_at = now
    status.pause_started_at = None
    status.pods_not_ready_since = None


def requested_promote(turn: Rollout, *, one_step: bool = False) -> None:
    """A new promote request: the rollout in progress skips its remaining steps, or
    with ``one_step`` only the current one (at the last step, that promotes)."""
    version = turn.status.canary_version
    if version is None:
        _no_rollout(turn, "promote", PROMOTE_ANNOTATION)
        return
    plan = steps(turn)
    following = (turn.status.current_step or 0) + 1
    if one_step and following < len(plan):
        _next_step(turn, turn.svc.clock())
        message = (
            f"step promote requested ({PROMOTE_ANNOTATION}): {version} moved to step "
            f"{following + 1}/{len(plan)} ({turn.status.canary_weight}%)"
        )
        turn.set_condition(MANUAL_REQUEST, True, DeploymentReason.STEP_PROMOTED, message)
        return
    _promote_when_ready(turn, plan)
    message = (
        f"promote requested ({PROMOTE_ANNOTATION}): {version} goes to 100% without "
        "analysis and is promoted once its pods are ready"
    )
    turn.set_condition(MANUAL_REQUEST, True, DeploymentReason.PROMOTED, message)


def _promote_when_ready(turn: Rollout, plan: list[RolloutStep]) -> None:
    """Skip to the last step (100 %), unanalysed and unpaused: the version becomes
    stable once its pods are all ready, never before, so the stable Service (and a
    route's whole weight) never points at pods still starting."""
    status: DeploymentStatus = turn.status
    status.promoting = True
    last = len(plan) - 1
    if status.current_step != last:
        status.current_step = last
        status.canary_weight = plan[last].weight
        _begin_step(status, turn.svc.clock())
    turn.requeue(0.0)


def requested_abort(turn: Rollout) -> None:
    """A new abort request: the rollout in progress returns traffic to stable."""
    version = turn.status.canary_version
    if version is None:
        _no_rollout(turn, "abort", ABORT_ANNOTATION)
        return
    abort(turn, DeploymentReason.ABORTED, f"requested ({ABORT_ANNOTATION})")
    message = f"abort requested ({ABORT_ANNOTATION}): rollout of {version} aborted"
    turn.set_condition(MANUAL_REQUEST, True, DeploymentReason.ABORTED, message)


def _no_rollout(turn: Rollout, command: str, annotation: str) -> None:
    """Answer a request made while no rollout runs, and drop it: kept, it would act
    on whichever rollout came next, perhaps days later."""
    message = (
        f"{command} requested ({annotation}) while no rollout was in progress: no "
        f"rollout to {command}, the request is dropped; serving {turn.status.stable_version}"
    )
    reason = DeploymentReason.NO_ROLLOUT_IN_PROGRESS
    turn.set_condition(MANUAL_REQUEST, False, reason, message)
    turn.event(reason, message, warning=True)


def pause(turn: Rollout) -> None:
    """Hold the rollout where it is; the time until it resumes does not count
    towards the progress deadline."""
    status: DeploymentStatus = turn.status
    if status.canary_version is not None and status.paused_at is None:
        status.paused_at = turn.svc.clock()


def _resume(status: DeploymentStatus, now: dt.datetime) -> None:
    """Move the deadline clocks forward by the time spent paused."""
    if status.paused_at is None:
        return
    paused = now - status.paused_at
    if status.pods_not_ready_since is not None:
        status.pods_not_ready_since += paused
    if status.inconclusive_since is not None:
        status.inconclusive_since += paused
    status.paused_at = None


def advance(turn: Rollout, canary_ready: bool) -> None:
    """Hold, measure, move to the next step, or promote."""
    status: DeploymentStatus = turn.status
    now = turn.svc.clock()
    _resume(status, now)
    if not canary_ready:
        _wait_for_pods(turn, now)
        return
    status.pods_not_ready_since = None
    if status.pause_started_at is None:
        status.pause_started_at = now
    unanalysed = status.fast_rollback or status.promoting
    analysis = None if unanalysed else turn.obj.spec.rollout.analysis
    if analysis is not None and (not _analyse(turn, now) or status.canary_version is None):
        return
    step = steps(turn)[status.current_step or 0]
    hold = 0.0 if status.promoting else policy.hold_seconds(step, analysis)
    remaining = hold - (now - status.pause_started_at).total_seconds()
    if remaining > 0:
        turn.requeue(remaining)
        return
    _next_step(turn, now)


def _wait_for_pods(turn: Rollout, now: dt.datetime) -> None:
    status: DeploymentStatus = turn.status
    if status.pods_not_ready_since is None:
        status.pods_not_ready_since = now
    deadline = turn.obj.spec.rollout.progress_deadline
    if (now - status.pods_not_ready_since).total_seconds() > spec_seconds(deadline):
        abort(
            turn,
            DeploymentReason.PROGRESS_DEADLINE_EXCEEDED,
            f"{status.canary_version}'s pods were not ready for {deadline} "
            "(spec.rollout.progressDeadline)",
        )
        return
    turn.requeue(POD_POLL_SECONDS)


def _analyse(turn: Rollout, now: dt.datetime) -> bool:
    """Run the analysis when due; False while the step must hold (or it aborted)."""
    analysis = turn.obj.spec.rollout.analysis
    assert analysis is not None
    status: DeploymentStatus = turn.status
    interval = spec_seconds(analysis.interval)
    mine = _this_step(status)
    last = mine[-1].measured_at if mine else None
    if last is None or (now - last).total_seconds() >= interval:
        _measure(turn, now)
        mine = _this_step(status)
        turn.requeue(interval)
    else:
        turn.requeue(interval - (now - last).total_seconds())
    result = policy.verdict(
        status.analysis_failures or 0,
        status.analysis_errors_in_a_row,
        status.analysis,
        analysis,
    )
    if result.failed:
        abort(turn, DeploymentReason.ANALYSIS_FAILED, result.message)
        return False
    if result.inconclusive:
        return _hold_inconclusive(turn, now)
    return any(r.passed for r in mine)


def _this_step(status: DeploymentStatus) -> list[AnalysisResult]:
    """Measurements of the step in progress (a step the plan's edit restarted
    does not count what was measured before)."""
    started = status.step_started_at
    return [
        r
        for r in status.analysis
        if r.step == status.current_step
        and (started is None or r.measured_at is None or r.measured_at >= started)
    ]


def _hold_inconclusive(turn: Rollout, now: dt.datetime) -> bool:
    status: DeploymentStatus = turn.status
    since = status.inconclusive_since or now
    deadline = turn.obj.spec.rollout.progress_deadline
    if (now - since).total_seconds() > spec_seconds(deadline):
        abort(
            turn,
            DeploymentReason.ANALYSIS_INCONCLUSIVE,
            f"analysis had no data for {deadline} in a row (spec.rollout.progressDeadline)",
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
    round_ = []
    where = _where_to_ask(turn)
    for query in analysis.queries:
        value, error = _ask(turn, where, policy.render(query.query, values))
        result = policy.measure(
            query,
            value,
            error,
            version=status.canary_version,
            step=status.current_step,
            measured_at=now,
        )
        round_.append(result)
        status.analysis = [*status.analysis, result][-ANALYSIS_HISTORY:]
        status.analysis_failures, status.analysis_errors_in_a_row = policy.tally(
            status.analysis_failures or 0, status.analysis_errors_in_a_row, result
        )
        _export(turn, result)
    status.analysis_consecutive_errors = max(status.analysis_errors_in_a_row.values(), default=0)
    status.inconclusive_since = policy.inconclusive_since(status.inconclusive_since, round_, now)


def _where_to_ask(turn: Rollout) -> Endpoint | str:
    """Prometheus with this pass's credentials, or why it cannot be asked (a
    missing Secret or key), which every query of the pass records as its error."""
    analysis = turn.obj.spec.rollout.analysis
    assert analysis is not None
    try:
        return prometheus_access.endpoint(turn.svc, turn.namespace, analysis)
    except prometheus_access.NoAccess as missing:
        return str(missing)


def _ask(turn: Rollout, where: Endpoint | str, promql: str) -> tuple[float | None, str | None]:
    """The query's value, or the error that kept it from one."""
    if isinstance(where, str):
        return None, where
    try:
        return turn.svc.prometheus.query(where, promql), None
    except QueryFailed as failed:
        return None, str(failed)


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
        promote(
            turn, f"requested ({PROMOTE_ANNOTATION})" if status.promoting else "all steps passed"
        )
        return
    status.current_step = following
    status.canary_weight = plan[following].weight
    _begin_step(status, now)
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
    _remember_stable(status, version, now)
    end(status)
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
    end(status)
    message = f"rollout of {version} aborted: {why}; serving stable {status.stable_version}"
    turn.set_condition(ABORTED, True, reason, message)
    turn.event(reason, message, warning=True)
    _count(turn, "aborted")


def _remember_stable(status: DeploymentStatus, version: str, now: dt.datetime) -> None:
    entry = PromotedVersion(version=version, promoted_at=now)
    status.promoted = [*status.promoted, entry][-PROMOTED_HISTORY:]


def end(status: DeploymentStatus) -> None:
    """No rollout in progress any more: clear what only a rollout in progress means."""
    status.canary_version = None
    status.canary_weight = None
    status.current_step = None
    status.step_started_at = None
    status.pause_started_at = None
    status.rollout_started_at = None
    status.fast_rollback = None
    status.promoting = None
    status.pods_not_ready_since = None
    status.inconclusive_since = None
    status.paused_at = None


def retire(turn: Rollout, version: str, since: dt.datetime) -> None:
    status: DeploymentStatus = turn.status
    kept = [r for r in status.retiring if r.version != version]
    status.retiring = [*kept, RetiringVersion(version=version, since=since)][-10:]


def _count(turn: Rollout, result: str) -> None:
    labels = (turn.namespace, turn.name, result)
    turn.after_write(lambda: metrics.ROLLOUTS.labels(*labels).inc())
