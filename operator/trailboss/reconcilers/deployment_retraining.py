"""Retraining of a Deployment's model: on drift, on a schedule or on demand, a
TrainingRun from spec.retraining.template, followed until its ModelVersion is
Validated or Rejected.

Runs are numbered like drift checks: run N has a name derived from N, and
status.retrainingCount becomes N in the write that records it, so a restart
between "created" and "recorded" finds the run it made instead of making a
second one. A Validated result reaches traffic the usual way: a versionPolicy
picks it and the rollout's steps and analysis decide; a pinned Deployment is
told which version to pin.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from trailboss import metrics
from trailboss.api.common import API_VERSION
from trailboss.api.deployment import (
    RETRAIN_ANNOTATION,
    RETRAINING,
    Deployment,
    DeploymentReason,
    DeploymentStatus,
    RetrainingSpec,
    RetrainingStatus,
)
from trailboss.builders import retraining as builder
from trailboss.policies import cron
from trailboss.policies import retraining as policy
from trailboss.reconcilers.turn import Turn

Served = Turn[Deployment]
FINISHED = {"Validated", "Rejected", "Failed", "Lost"}
POLL_SECONDS = 30.0


def step(turn: Served) -> None:
    """Follow the runs in progress, then start one if a trigger is due."""
    spec = turn.obj.spec.retraining
    if spec is None:
        return
    namespace, name = turn.namespace, turn.name
    turn.after_write(lambda: metrics.first_seen_retraining(namespace, name))
    _follow(turn)
    now = turn.svc.clock()
    annotation = (turn.meta.get("annotations") or {}).get(RETRAIN_ANNOTATION)
    trigger = policy.due(spec, turn.status, annotation, now, _created(turn))
    if trigger is None:
        _idle(turn)
        return
    held = policy.hold(spec, turn.status, trigger, now)
    if held is not None:
        _held(turn, trigger, held)
        return
    _start(turn, spec, trigger)


def _start(turn: Served, spec: RetrainingSpec, trigger: policy.Trigger) -> None:
    status: DeploymentStatus = turn.status
    number = (status.retraining_count or 0) + 1
    # As the user wrote it (defaults stay defaults), validated with the Deployment.
    template: dict[str, Any] = dict(
        (turn.body["spec"].get("retraining") or {}).get("template") or {}
    )
    manifest = builder.training_run(
        deployment=turn.name, namespace=turn.namespace, uid=turn.uid, number=number,
        template=template, reason=trigger.reason, trigger=trigger.key,
        drift_score=trigger.drift_score, replaces=status.stable_version,
    )  # fmt: skip
    name = manifest["metadata"]["name"]
    turn.svc.kube.create(manifest)  # already there after a restart: that is this run
    now = turn.svc.clock()
    record = RetrainingStatus(
        training_run=name, reason=trigger.reason, trigger=trigger.key, triggered_at=now,
        replaces=status.stable_version, drift_score=trigger.drift_score, phase=policy.RUNNING,
    )  # fmt: skip
    status.retraining_count = number
    status.retrainings = [*status.retrainings, record][-policy.HISTORY :]
    status.last_retraining = record
    if trigger.reason == policy.MANUAL:
        status.handled_retrain = trigger.key
    if trigger.slot is not None:
        status.last_scheduled = trigger.slot
    message = f"{trigger.reason}: created TrainingRun {name}" + (
        f" (drift score {trigger.drift_score:.3g})" if trigger.drift_score is not None else ""
    )
    turn.set_condition(RETRAINING, True, DeploymentReason.RETRAINING_RUNNING, message)
    turn.event(DeploymentReason.RETRAINING_TRIGGERED, message)
    namespace, deployment, reason = turn.namespace, turn.name, trigger.reason
    turn.after_write(lambda: metrics.retraining_triggered(namespace, deployment, reason, now))


def _held(turn: Served, trigger: policy.Trigger, held: policy.Hold) -> None:
    status: DeploymentStatus = turn.status
    if trigger.slot is not None and held.reason != DeploymentReason.MAX_CONCURRENT_RUNS:
        status.last_scheduled = trigger.slot  # a skipped schedule time is not made up later
    if held.retry_after is not None:
        turn.requeue(held.retry_after)
    if not _running(status):
        turn.set_condition(RETRAINING, False, held.reason, held.message)


def _idle(turn: Served) -> None:
    status: DeploymentStatus = turn.status
    spec = turn.obj.spec.retraining
    if spec is not None and spec.schedule:
        upcoming = cron.next_fire(spec.schedule, turn.svc.clock(), spec.time_zone)
        if upcoming is not None:
            turn.requeue(max(1.0, (upcoming - turn.svc.clock()).total_seconds()))
    if _running(status):
        turn.requeue(POLL_SECONDS)  # a failed TrainingRun sends this Deployment no event
        return
    last = status.last_retraining
    if last is not None and last.phase in FINISHED and last.model_version:
        _outcome(turn, last)
        return
    turn.set_condition(RETRAINING, False, DeploymentReason.RETRAINING_IDLE, "no retraining due")


def _outcome(turn: Served, last: RetrainingStatus) -> None:
    """What became of the last run, and what the user has to do about it."""
    version = last.model_version
    if last.phase == "Validated" and turn.obj.spec.version_policy is None:
        turn.set_condition(
            RETRAINING, False, DeploymentReason.NEW_VERSION_VALIDATED,
            f"ModelVersion {version} from {last.training_run} ({last.reason}) is Validated: "
            f"set spec.modelVersion: {version} to roll it out",
        )  # fmt: skip
    elif last.phase == "Validated":
        turn.set_condition(
            RETRAINING, False, DeploymentReason.NEW_VERSION_VALIDATED,
            f"ModelVersion {version} from {last.training_run} ({last.reason}) is Validated "
            "and rolls out by spec.versionPolicy",
        )  # fmt: skip
    else:
        turn.set_condition(
            RETRAINING, False, DeploymentReason.NEW_VERSION_REJECTED,
            f"ModelVersion {version} from {last.training_run} ({last.reason}) is "
            f"{last.phase}: it is never served",
        )  # fmt: skip


def _follow(turn: Served) -> None:
    """Update the phase of every run in progress from its TrainingRun and ModelVersion."""
    status: DeploymentStatus = turn.status
    updated = []
    for record in status.retrainings:
        if record.phase in FINISHED or record.training_run is None:
            updated.append(record)
            continue
        updated.append(_observe(turn, record))
    status.retrainings = updated
    if updated:
        status.last_retraining = updated[-1]


def _observe(turn: Served, record: RetrainingStatus) -> RetrainingStatus:
    kube = turn.svc.kube
    run = kube.get(API_VERSION, "TrainingRun", turn.namespace, str(record.training_run))
    if run is None:
        return _finish(turn, record, "Lost", None)
    run_status = run.get("status") or {}
    phase = run_status.get("phase")
    if phase == "Failed":
        return _finish(turn, record, "Failed", None)
    version = run_status.get("modelVersion")
    if phase != "Succeeded" or not version:
        return record
    found = kube.get(API_VERSION, "ModelVersion", turn.namespace, str(version)) or {}
    mv_phase = (found.get("status") or {}).get("phase")
    if mv_phase in ("Validated", "Rejected", "Failed"):
        return _finish(turn, record, str(mv_phase), str(version))
    return record.model_copy(update={"model_version": version})


def _finish(
    turn: Served, record: RetrainingStatus, phase: str, version: str | None
) -> RetrainingStatus:
    done = record.model_copy(update={"phase": phase, "model_version": version})
    what = f"ModelVersion {version} is {phase}" if version else f"TrainingRun {phase.lower()}"
    warning = phase != "Validated"
    reason = (
        DeploymentReason.RETRAINING_FAILED if warning else DeploymentReason.NEW_VERSION_VALIDATED
    )
    turn.event(
        reason, f"retraining {record.training_run} ({record.reason}): {what}", warning=warning
    )
    return done


def _running(status: DeploymentStatus) -> bool:
    return any(r.phase == policy.RUNNING for r in status.retrainings)


def _created(turn: Served) -> dt.datetime:
    stamp = turn.meta.get("creationTimestamp")
    if not stamp:
        return turn.svc.clock()
    return dt.datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
