"""Health as Argo CD shows it: Healthy, Progressing, Suspended or Degraded, from
an object's phase and its Ready condition. The Lua health checks in
deploy/argocd/health/ decide the same way, and a test runs both on one table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

HEALTHY, PROGRESSING, SUSPENDED, DEGRADED = "Healthy", "Progressing", "Suspended", "Degraded"
UNOBSERVED = "Waiting for the operator to observe the latest spec"


@dataclass(frozen=True)
class Phases:
    """What a kind's phases mean to Argo CD."""

    done: str
    """The phase a kind aims for; Healthy there as long as Ready is not False."""
    failed: frozenset[str]
    first: str
    """The phase shown before the operator set one."""
    paused: frozenset[str] = frozenset()


PHASES = {
    "TrainingRun": Phases("Succeeded", frozenset({"Failed"}), "Pending"),
    "ModelVersion": Phases("Validated", frozenset({"Rejected", "Failed"}), "Pending"),
    "Deployment": Phases(
        "Healthy", frozenset({"Degraded"}), "Progressing", paused=frozenset({"Paused"})
    ),
}


def health(kind: str, obj: dict[str, Any]) -> tuple[str, str]:
    """The health of ``obj`` (a ``kind``) and the message Argo CD shows with it."""
    status = obj.get("status") or {}
    generation = obj["metadata"].get("generation")
    if _older(status.get("observedGeneration"), generation, missing=True):
        return PROGRESSING, UNOBSERVED
    phases, phase = PHASES[kind], status.get("phase")
    ready = _ready(status)
    message = (ready or {}).get("message") or f"{kind} is {phase or phases.first}"
    return _verdict(kind, obj, phases, phase, ready), message


def _verdict(
    kind: str, obj: dict[str, Any], phases: Phases, phase: str | None, ready: dict[str, Any] | None
) -> str:
    if phase in phases.failed:
        return DEGRADED
    if phase in phases.paused or _suspended_run(kind, obj, phase):
        return SUSPENDED
    if ready is not None and _older(
        ready.get("observedGeneration"), obj["metadata"].get("generation"), missing=False
    ):
        return PROGRESSING  # Ready speaks of an older spec
    if phase != phases.done:
        return PROGRESSING
    if ready is None or ready.get("status") == "True":
        return HEALTHY
    return DEGRADED if ready.get("status") == "False" else PROGRESSING


def _suspended_run(kind: str, obj: dict[str, Any], phase: str | None) -> bool:
    """A suspended TrainingRun that has not finished, like a suspended Job."""
    spec = obj.get("spec") or {}
    return kind == "TrainingRun" and spec.get("suspend") is True and phase != "Succeeded"


def _older(observed: int | None, generation: int | None, *, missing: bool) -> bool:
    if observed is None:
        return missing
    return generation is not None and observed < generation


def _ready(status: dict[str, Any]) -> dict[str, Any] | None:
    return next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
