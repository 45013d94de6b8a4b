"""Argo CD health of the three kinds, from every phase and every state of the Ready
condition: the Lua checks in deploy/argocd/health/, run by a real Lua 5.1 as Argo
CD runs them, and the operator's own verdict (policies.health, what `kubectl
trailboss status` shows) on the same samples, against one table."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from trailboss.api.common import Condition, ConditionStatus
from trailboss.api.conditions import set_condition
from trailboss.api.deployment import DeploymentPhase, DeploymentStatus
from trailboss.api.modelversion import ModelPhase, ModelVersionStatus
from trailboss.api.trainingrun import COMPLETE, FAILED, TrainingPhase, TrainingRunStatus
from trailboss.policies.health import UNOBSERVED, health

ARGOCD = Path(__file__).resolve().parents[2] / "deploy" / "argocd"

Obj = dict[str, Any]

# What each phase means to Argo CD: the phase a kind aims for, a failure, a
# paused rollout, or work still going on.
PHASES: dict[str, dict[str | None, str]] = {
    "TrainingRun": {
        None: "working",
        TrainingPhase.PENDING: "working",
        TrainingPhase.RUNNING: "working",
        TrainingPhase.SUCCEEDED: "done",
        TrainingPhase.FAILED: "failed",
    },
    "ModelVersion": {
        None: "working",
        ModelPhase.PENDING: "working",
        ModelPhase.REGISTERED: "working",
        ModelPhase.VALIDATED: "done",
        ModelPhase.REJECTED: "failed",
        ModelPhase.FAILED: "failed",
    },
    "Deployment": {
        None: "working",
        DeploymentPhase.PROGRESSING: "working",
        DeploymentPhase.HEALTHY: "done",
        DeploymentPhase.PAUSED: "paused",
        DeploymentPhase.DEGRADED: "failed",
    },
}
ENUMS = {"TrainingRun": TrainingPhase, "ModelVersion": ModelPhase, "Deployment": DeploymentPhase}
STATUS = {
    "TrainingRun": TrainingRunStatus,
    "ModelVersion": ModelVersionStatus,
    "Deployment": DeploymentStatus,
}

READY_STATES = (None, "True", "False", "Unknown")  # None: no Ready condition

# (what the phase means, the Ready condition's status) -> Argo CD health
HEALTH = {
    ("done", None): "Healthy",
    ("done", "True"): "Healthy",
    ("done", "False"): "Degraded",
    ("done", "Unknown"): "Progressing",
    **{("failed", ready): "Degraded" for ready in READY_STATES},
    **{("paused", ready): "Suspended" for ready in READY_STATES},
    **{("working", ready): "Progressing" for ready in READY_STATES},
}


def lua_health(kind: str, obj: Obj) -> tuple[str, str]:
    from lupa import lua51

    script = (ARGOCD / "health" / f"trailboss.dev_{kind}" / "health.lua").read_text()
    lua = lua51.LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = lua.table_from(obj, recursive=True)
    result = dict(lua.execute(script).items())
    assert set(result) == {"status", "message"}
    return result["status"], result["message"]


def both(kind: str, obj: Obj) -> tuple[str, str]:
    """The Lua check's verdict, once the operator's own verdict agreed with it."""
    lua = lua_health(kind, obj)
    assert health(kind, obj) == lua
    return lua


def sample(
    kind: str,
    phase: str | None,
    ready: str | None,
    *,
    generation: int = 2,
    observed: int | None = 2,
    ready_generation: int = 2,
    message: str = "",
    extra: dict[str, bool] | None = None,
    **spec: Any,
) -> Obj:
    conditions: list[Condition] = []
    for type_, true in (extra or {}).items():
        conditions = set_condition(conditions, type_, true, "Reason", "other", 2)
    if ready is not None:
        conditions = set_condition(
            conditions, "Ready", ConditionStatus(ready), "Why", message, ready_generation
        )
    status = STATUS[kind](phase=phase, observed_generation=observed, conditions=conditions)
    return {
        "apiVersion": "trailboss.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": "churn", "namespace": "ml", "generation": generation},
        "spec": spec,
        "status": status.to_json(),
    }


def test_the_table_names_every_phase_of_every_kind() -> None:
    for kind, enum in ENUMS.items():
        assert set(PHASES[kind]) == {None, *(str(p) for p in enum)}, kind


SAMPLES = [
    (kind, phase, ready)
    for kind, phases in PHASES.items()
    for phase, ready in itertools.product(phases, READY_STATES)
]


@pytest.mark.parametrize(("kind", "phase", "ready"), SAMPLES)
def test_health_follows_the_phase_and_the_ready_condition(
    kind: str, phase: str | None, ready: str | None
) -> None:
    expected = HEALTH[(PHASES[kind][phase], ready)]
    got, message = both(kind, sample(kind, phase, ready, message="what Ready says"))
    assert got == expected
    assert message == ("what Ready says" if ready else f"{kind} is {phase or _first(kind)}")


def _first(kind: str) -> str:
    return "Progressing" if kind == "Deployment" else "Pending"


def test_a_validated_model_version_that_is_not_ready_is_degraded() -> None:
    mv = sample("ModelVersion", "Validated", "False", message="MLflow is unreachable")
    assert both("ModelVersion", mv) == ("Degraded", "MLflow is unreachable")


@pytest.mark.parametrize("kind", sorted(PHASES))
@pytest.mark.parametrize(
    "stale",
    [
        {"observed": None},  # the operator has not written its view yet
        {"observed": 1},  # nor seen the latest spec
    ],
)
def test_health_is_progressing_until_the_operator_observes_the_spec(
    kind: str, stale: dict[str, Any]
) -> None:
    done = next(p for p, meaning in PHASES[kind].items() if meaning == "done")
    for ready in READY_STATES:
        obj = sample(kind, done, ready, **stale)
        assert both(kind, obj) == ("Progressing", UNOBSERVED)
    bare = sample(kind, done, "True")
    del bare["status"]
    assert both(kind, bare) == ("Progressing", UNOBSERVED)


@pytest.mark.parametrize("kind", sorted(PHASES))
def test_a_ready_condition_about_an_older_spec_is_not_taken_as_healthy(kind: str) -> None:
    done = next(p for p, meaning in PHASES[kind].items() if meaning == "done")
    assert both(kind, sample(kind, done, "True", ready_generation=1))[0] == "Progressing"
    assert both(kind, sample(kind, done, "False", ready_generation=1))[0] == "Progressing"


@pytest.mark.parametrize(
    ("phase", "ready"), list(itertools.product(PHASES["TrainingRun"], READY_STATES))
)
def test_a_suspended_training_run_is_suspended_until_it_ends(
    phase: str | None, ready: str | None
) -> None:
    run = sample("TrainingRun", phase, ready, suspend=True)
    meaning = PHASES["TrainingRun"][phase]
    expected = "Suspended" if meaning == "working" else HEALTH[(meaning, ready)]
    assert both("TrainingRun", run)[0] == expected


@pytest.mark.parametrize(
    ("phase", "finished", "expected"),
    [
        ("Succeeded", {COMPLETE: True}, "Healthy"),
        ("Failed", {FAILED: True}, "Degraded"),
        ("Running", {"Tracked": False}, "Progressing"),
        ("Succeeded", {COMPLETE: True, "Tracked": True}, "Healthy"),
    ],
)
def test_other_conditions_of_a_training_run_change_nothing(
    phase: str, finished: dict[str, bool], expected: str
) -> None:
    ready = "True" if phase == "Succeeded" else "False"
    run = sample("TrainingRun", phase, ready, extra=finished)
    assert both("TrainingRun", run)[0] == expected
