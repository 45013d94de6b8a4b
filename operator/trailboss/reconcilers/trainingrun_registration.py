"""A successful TrainingRun registers its model as a ModelVersion, once, and
never takes over one that an earlier run of the same name registered."""

from __future__ import annotations

from trailboss.api.common import API_VERSION
from trailboss.api.trainingrun import TrainingReason, TrainingRun, TrainingRunStatus
from trailboss.builders import training
from trailboss.builders.labels import SOURCE_RUN_UID_LABEL, same_operator
from trailboss.builders.registration import build_model_version
from trailboss.reconcilers.outcomes import Waiting
from trailboss.reconcilers.turn import Turn

MODEL_VERSION_TAKEN = "ModelVersionNameTaken"
Run = Turn[TrainingRun]


def register(turn: Run) -> None:
    status: TrainingRunStatus = turn.status
    if status.model_version is not None:
        return
    manifest = same_operator(
        build_model_version(
            training.Owner(turn.name, turn.namespace, turn.uid), turn.obj.spec, status
        ),
        turn.meta,
    )
    name = manifest["metadata"]["name"]
    if turn.svc.kube.create(manifest) is None:
        _check_made_by_this_run(turn, name)
    status.model_version = name
    turn.set_ready(True, TrainingReason.REGISTERED, f"registered as ModelVersion {name}")
    turn.event(TrainingReason.REGISTERED, f"created ModelVersion {name}")


def _check_made_by_this_run(turn: Run, name: str) -> None:
    """A ModelVersion of this name exists: adopt it only if it carries this run's
    UID (a restart after creating it). One left by an earlier TrainingRun of the
    same name points at that run's artifact and is never taken over."""
    found = turn.svc.kube.get(API_VERSION, "ModelVersion", turn.namespace, name) or {}
    labels = (found.get("metadata") or {}).get("labels") or {}
    if labels.get(SOURCE_RUN_UID_LABEL) == turn.uid:
        return
    source = (found.get("spec") or {}).get("source") or {}
    raise Waiting(
        MODEL_VERSION_TAKEN,
        f"ModelVersion {name} already exists and was registered by an earlier TrainingRun "
        f"named {turn.name} (MLflow run {source.get('mlflowRunId', 'unknown')}); delete that "
        "ModelVersion to register this run's model, or train under another name (retrying)",
    )
