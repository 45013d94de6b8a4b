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
)
from trailboss.api.retraining import RetrainingSpec, RetrainingStatus
from trailboss.builders import retraining as builder
from trailboss.builders.labels import label_value, same_operator
from trailboss.clients.protocols import TrackingRejected, TrackingUnavailable
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
    held = policy.hold(spec, turn.status, trigger, now, _in_progress(turn, spec))
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
    policy_labels = (
        turn.obj.spec.version_policy.match_labels if turn.obj.spec.version_policy else {}
    )
    manifest = same_operator(builder.training_run(
        deployment=turn.name, namespace=turn.namespace, uid=turn.uid, number=number,
        template=template, reason=trigger.reason, trigger=trigger.key,
        drift_score=trigger.drift_score, replaces=status.stable_version,
        version_labels=dict(policy_labels),
    ), turn.meta)  # fmt: skip
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
    version, status = last.model_version, turn.status
    origin = f"ModelVersion {version} from {last.training_run} ({last.reason})"
    if last.phase != "Validated":
        turn.set_condition(
            RETRAINING, False, DeploymentReason.NEW_VERSION_REJECTED,
            f"{origin} is {last.phase}: it is never served",
        )  # fmt: skip
        return
    if turn.obj.spec.version_policy is None:
        fate = f"set spec.modelVersion: {version} to roll it out"
    elif version in (status.canary_version, status.stable_version):
        fate = "it serves" if version == status.stable_version else "it rolls out now"
    elif version == status.target_version:
        fate = "it rolls out through spec.rollout"
    else:
        picked = status.target_version or "no version"
        fate = last.message or f"spec.versionPolicy picks {picked}, so it does not roll out"
    turn.set_condition(
        RETRAINING, False, DeploymentReason.NEW_VERSION_VALIDATED, f"{origin} is Validated: {fate}"
    )


def _follow(turn: Served) -> None:
    """Update the phase of every run in progress from its TrainingRun and ModelVersion."""
    status: DeploymentStatus = turn.status
    updated = []
    spec = turn.obj.spec.retraining
    now = turn.svc.clock()
    for record in status.retrainings:
        if record.phase in FINISHED or record.training_run is None:
            updated.append(record)
            continue
        observed = _observe(turn, record)
        if (
            spec is not None
            and observed.phase == policy.RUNNING
            and policy.overdue(spec, observed, now)
        ):
            observed = _overdue(turn, observed, spec)
        updated.append(observed)
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
    if mv_phase == "Validated":
        handed = _reach_traffic(turn, record, found)
        if handed is None:  # the registry is out of reach: try again on the next pass
            return record.model_copy(update={"model_version": version})
        return _finish(
            turn, record.model_copy(update={"message": handed}), "Validated", str(version)
        )
    if mv_phase in ("Rejected", "Failed"):
        return _finish(turn, record, str(mv_phase), str(version))
    return record.model_copy(update={"model_version": version})


def _overdue(turn: Served, record: RetrainingStatus, spec: RetrainingSpec) -> RetrainingStatus:
    """Past spec.retraining.runDeadline: closed as Failed, and a training that has
    not finished is suspended, so it holds no slot it no longer counts in."""
    name = str(record.training_run)
    run = turn.svc.kube.get(API_VERSION, "TrainingRun", turn.namespace, name) or {}
    phase = (run.get("status") or {}).get("phase")
    if phase not in ("Succeeded", "Failed") and run:
        _suspend(turn, name)
        what = f"TrainingRun {name} did not finish (suspended it)"
    elif record.model_version is None:
        what = f"TrainingRun {name} registered no ModelVersion (see its spec.register)"
    else:
        what = _unsettled(turn, str(record.model_version))
    message = f"{what} within spec.retraining.runDeadline ({spec.run_deadline}) of its start"
    closed = record.model_copy(update={"message": message})
    done = closed.model_copy(update={"phase": "Failed"})
    turn.event(
        DeploymentReason.RETRAINING_FAILED,
        f"retraining {name} ({record.reason}): {message}",
        warning=True,
    )
    return done


def _suspend(turn: Served, name: str) -> None:
    turn.svc.kube.patch(
        API_VERSION, "TrainingRun", turn.namespace, name, {"spec": {"suspend": True}}
    )


def _unsettled(turn: Served, version: str) -> str:
    found = turn.svc.kube.get(API_VERSION, "ModelVersion", turn.namespace, version) or {}
    phase = (found.get("status") or {}).get("phase")
    if phase == "Validated":  # Validated, but the alias could never be moved
        return f"ModelVersion {version} is Validated but the MLflow registry was out of reach"
    return f"ModelVersion {version} was neither Validated nor Rejected ({phase or 'missing'})"


def _in_progress(turn: Served, spec: RetrainingSpec) -> int:
    """Retrainings in progress: every TrainingRun of this Deployment, not only the
    ones status still keeps, that has neither finished nor run past its deadline.
    One past its deadline that status no longer keeps (more runs at once than
    status keeps records, or status lost) is suspended here, as a kept one is
    when its record is closed: its slot is free only once it trains no more."""
    kept = {r.training_run: r for r in turn.status.retrainings}
    selector = {builder.RETRAINED_BY_LABEL: label_value(turn.name)}
    runs = turn.svc.kube.list(API_VERSION, "TrainingRun", turn.namespace, selector)
    now, count = turn.svc.clock(), 0
    # The next run, made before a restart lost its record: starting it again is no new run.
    upcoming = builder.run_name(turn.name, turn.uid, (turn.status.retraining_count or 0) + 1)
    for run in runs:
        meta = run["metadata"]
        mine = any(o.get("uid") == turn.uid for o in meta.get("ownerReferences") or [])
        if not mine or meta["name"] == upcoming:
            continue
        phase = (run.get("status") or {}).get("phase")
        finished = phase == "Failed" or (phase == "Succeeded" and _settled(turn, run))
        suspended = bool((run.get("spec") or {}).get("suspend"))
        record = kept.get(meta["name"])
        unkept = record is None and not (finished or suspended)
        if unkept and policy.run_overdue(_timestamp(meta.get("creationTimestamp")), spec, now):
            _suspend(turn, meta["name"])
            _overdue_event(turn, meta["name"], spec)
            suspended = True
        count += policy.in_progress(record, finished, suspended)
    listed = {str(o["metadata"]["name"]) for o in runs}
    unlisted = [  # created in this pass, or not yet visible in the list
        r
        for r in turn.status.retrainings
        if r.phase == policy.RUNNING and r.training_run not in listed
    ]
    return count + len(unlisted)


def _overdue_event(turn: Served, name: str, spec: RetrainingSpec) -> None:
    turn.event(
        DeploymentReason.RETRAINING_FAILED,
        f"retraining {name}: TrainingRun {name} did not finish within "
        f"spec.retraining.runDeadline ({spec.run_deadline}) of its start (suspended it)",
        warning=True,
    )


def _settled(turn: Served, run: dict[str, Any]) -> bool:
    version = (run.get("status") or {}).get("modelVersion")
    if not version:
        return True  # succeeded without registering: nothing more will come of it
    found = turn.svc.kube.get(API_VERSION, "ModelVersion", turn.namespace, str(version)) or {}
    return (found.get("status") or {}).get("phase") in ("Validated", "Rejected", "Failed")


def _timestamp(stamp: object) -> dt.datetime | None:
    if not stamp:
        return None
    return dt.datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))


def _finish(
    turn: Served, record: RetrainingStatus, phase: str, version: str | None
) -> RetrainingStatus:
    done = record.model_copy(update={"phase": phase, "model_version": version})
    what = f"ModelVersion {version} is {phase}" if version else f"TrainingRun {phase.lower()}"
    if record.message:
        what += f": {record.message}"
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
    return _timestamp(turn.meta.get("creationTimestamp")) or turn.svc.clock()


def _reach_traffic(turn: Served, record: RetrainingStatus, found: dict[str, Any]) -> str | None:
    """Make a Validated retrained version one the version policy can pick, and say
    how it reaches traffic; None while the registry cannot be reached (retried)."""
    chosen = turn.obj.spec.version_policy
    if chosen is None:
        return ""
    meta, name = found.get("metadata") or {}, str(record.model_version)
    labels = meta.get("labels") or {}
    missing = {k: v for k, v in chosen.match_labels.items() if labels.get(k) != v}
    if missing:
        wanted = " ".join(f"{k}={v}" for k, v in missing.items())
        return (
            f"it lacks the labels of spec.versionPolicy.matchLabels ({wanted}), so it does "
            f"not roll out: `kubectl label modelversion {name} {wanted}` to roll it out"
        )
    if chosen.alias is None:
        return ""  # the policy picks it like any version: the Retraining condition says whether
    registry = str((found.get("status") or {}).get("registryVersion") or "")
    try:
        return _move_alias(turn, chosen.alias, registry, record.replaces)
    except TrackingUnavailable:
        return None
    except TrackingRejected as error:
        return (
            f"the MLflow registry refused to move alias {chosen.alias} ({error}): set the "
            f"MLflow alias {chosen.alias} of {turn.obj.spec.model} to version {registry} "
            "to roll it out"
        )


def _move_alias(turn: Served, alias: str, registry: str, replaces: str | None) -> str:
    """Point the alias at the retrained version, unless someone moved it since the
    run started: a person's choice of version wins over the loop's."""
    tracking, model = turn.svc.tracking, turn.obj.spec.model
    current = tracking.alias_version(model, alias)
    before = None
    if replaces:
        replaced = turn.svc.kube.get(API_VERSION, "ModelVersion", turn.namespace, replaces) or {}
        before = (replaced.get("status") or {}).get("registryVersion")
    if current == registry:
        return f"MLflow alias {alias} points at it: it rolls out through spec.rollout"
    if current is not None and str(current) != str(before):
        return (
            f"MLflow alias {alias} of {model} was moved to version {current} while it "
            f"trained, so it was left there: set the MLflow alias {alias} of {model} to "
            f"version {registry} to roll this one out"
        )
    tracking.set_alias(model, alias, registry)
    return (
        f"moved MLflow alias {alias} of {model} from version {current} to {registry}: "
        "it rolls out through spec.rollout"
    )
