"""Progressive rollout decisions: which version to serve, the steps, the pod
split for a weight, and what analysis measurements mean. Pure."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from trailboss.api.deployment import (
    AnalysisQuery,
    AnalysisResult,
    AnalysisSpec,
    DeploymentSpec,
    MeasurementPhase,
    PromotedVersion,
    RolloutSpec,
    RolloutStep,
)
from trailboss.api.durations import duration_seconds

DEFAULT_STEPS = (
    RolloutStep(weight=10, pause="1m"),
    RolloutStep(weight=50, pause="1m"),
    RolloutStep(weight=100),
)
SERVABLE = frozenset({"Validated"})


@dataclass(frozen=True)
class Candidate:
    """A ModelVersion as the version policy sees it."""

    name: str
    model: str
    phase: str | None
    ready: bool
    registry_version: int | None
    labels: dict[str, str]
    created: str = ""


@dataclass(frozen=True)
class Choice:
    """The version to serve, or why there is none yet."""

    version: str | None
    reason: str
    message: str


def steps_of(rollout: RolloutSpec) -> list[RolloutStep]:
    """The canary steps, always ending at 100 %."""
    steps = list(rollout.steps) or list(DEFAULT_STEPS)
    if steps[-1].weight < 100:
        steps.append(RolloutStep(weight=100))
    return steps


def replica_split(replicas: int, canary_weight: int) -> tuple[int, int]:
    """(stable, canary) pods that give the canary ``canary_weight`` percent of the
    requests when a Service balances over both. Rounded as Argo Rollouts' basic
    canary does: the canary up, and the stable never below what its share needs."""
    if canary_weight <= 0:
        return replicas, 0
    if canary_weight >= 100:
        return 0, replicas
    canary = math.ceil(replicas * canary_weight / 100)
    stable = math.ceil(replicas * (100 - canary_weight) / 100)
    return stable, canary


def stable_pods(replicas: int, wanted: int, canary_ready: int) -> int:
    """Stable pods to keep under the replica ratio while the canary scales up: a
    stable pod goes only once a ready canary pod can take its requests. Without
    this a 100 % step (Replace, a fast rollback, a canary's last step) would leave
    the Service with no ready endpoint while the new version's pods load."""
    return max(wanted, replicas - canary_ready)


def servable(candidate: Candidate, spec: DeploymentSpec) -> str | None:
    """Why a ModelVersion may not be served, or None when it may."""
    if spec.serve_unvalidated:
        return (
            None
            if candidate.phase in ("Registered", "Validated")
            else (f"is {candidate.phase or 'Pending'}; it is served once Registered")
        )
    if candidate.phase not in SERVABLE or not candidate.ready:
        return (
            f"is {candidate.phase or 'Pending'}, not Validated; it is served once it passes "
            "its gate (or set spec.serveUnvalidated)"
        )
    return None


def choose(
    spec: DeploymentSpec, candidates: list[Candidate], alias_version: int | None = None
) -> Choice:
    """The version the spec asks for: pinned, by alias, or the newest that qualifies."""
    if spec.model_version is not None:
        return _pinned(spec, spec.model_version, candidates)
    policy = spec.version_policy
    assert policy is not None  # the API guarantees one of the two
    matching = [
        c
        for c in candidates
        if c.model == spec.model and policy.match_labels.items() <= c.labels.items()
    ]
    if policy.alias is not None:
        return _by_alias(spec, policy.alias, alias_version, matching)
    wanted = [c for c in matching if c.phase == policy.latest and servable(c, spec) is None]
    if not wanted:
        return Choice(
            None,
            "VersionNotFound",
            f"no ModelVersion of model {spec.model} is {policy.latest} yet"
            + (f" with labels {policy.match_labels}" if policy.match_labels else ""),
        )
    newest = max(wanted, key=lambda c: (c.registry_version or 0, c.created, c.name))
    return Choice(newest.name, "Resolved", f"newest {policy.latest} version is {newest.name}")


def _pinned(spec: DeploymentSpec, name: str, candidates: list[Candidate]) -> Choice:
    found = next((c for c in candidates if c.name == name), None)
    if found is None:
        return Choice(None, "VersionNotFound", f"spec.modelVersion: ModelVersion {name} not found")
    if found.model != spec.model:
        return Choice(
            None,
            "VersionNotFound",
            f"spec.modelVersion: ModelVersion {name} is of model {found.model}, not {spec.model}",
        )
    problem = servable(found, spec)
    if problem:
        return Choice(None, "VersionNotReady", f"ModelVersion {name} {problem}")
    return Choice(name, "Resolved", f"pinned to {name}")


def _by_alias(
    spec: DeploymentSpec, alias: str, version: int | None, matching: list[Candidate]
) -> Choice:
    if version is None:
        return Choice(None, "VersionNotFound", f"the registry has no alias {alias} on {spec.model}")
    found = next((c for c in matching if c.registry_version == version), None)
    if found is None:
        return Choice(
            None,
            "VersionNotFound",
            f"alias {alias} points at {spec.model} version {version}, which no ModelVersion "
            "in this namespace registered",
        )
    problem = servable(found, spec)
    if problem:
        return Choice(None, "VersionNotReady", f"ModelVersion {found.name} {problem}")
    return Choice(found.name, "Resolved", f"alias {alias} points at {found.name}")


def recently_promoted(
    history: list[PromotedVersion], version: str, window: str, now: dt.datetime
) -> bool:
    """Whether ``version`` was fully promoted within ``window``: a rollback to it
    skips the steps."""
    horizon = now - dt.timedelta(seconds=duration_seconds(window))
    return any(p.version == version and p.promoted_at >= horizon for p in history)


def render(query: str, values: dict[str, str]) -> str:
    """``{{version}}``, ``{{stableVersion}}``, ``{{namespace}}``, ``{{deployment}}``."""
    for key, value in values.items():
        query = query.replace("{{" + key + "}}", value).replace("{{ " + key + " }}", value)
    return query


def measure(
    query: AnalysisQuery, value: float | None, error: str | None, **where: object
) -> AnalysisResult:
    """One measurement: out of bounds fails; no data is inconclusive, not a pass."""
    common = {"name": query.name, **where}
    if error is not None:
        return AnalysisResult(**common, phase=MeasurementPhase.ERROR, passed=False, message=error)
    if value is None or math.isnan(value):
        return AnalysisResult(
            **common,
            phase=MeasurementPhase.INCONCLUSIVE,
            passed=False,
            message="the query returned no data",
        )
    broken = _broken_bound(query, value)
    phase = MeasurementPhase.FAILED if broken else MeasurementPhase.SUCCESSFUL
    return AnalysisResult(**common, value=value, phase=phase, passed=not broken, message=broken)


def _broken_bound(query: AnalysisQuery, value: float) -> str | None:
    if query.min is not None and value < query.min:
        return f"{query.name} = {value:.4g} is below its minimum {query.min:g}"
    if query.max is not None and value > query.max:
        return f"{query.name} = {value:.4g} is above its maximum {query.max:g}"
    return None


@dataclass(frozen=True)
class Verdict:
    """What the measurements of one rollout so far say."""

    failed: bool
    inconclusive: bool
    message: str


def tally(failures: int, errors_in_a_row: int, result: AnalysisResult) -> tuple[int, int]:
    """The rollout's failure count and errors in a row after one more measurement.
    Counted apart from the bounded history so that limits hold however many
    measurements a rollout takes."""
    if result.phase == MeasurementPhase.ERROR:
        return failures, errors_in_a_row + 1
    return failures + (result.phase == MeasurementPhase.FAILED), 0


def verdict(
    failures: int, errors_in_a_row: int, results: list[AnalysisResult], analysis: AnalysisSpec
) -> Verdict:
    """Abort once ``failures`` pass ``failureLimit`` or ``errors_in_a_row`` pass
    ``consecutiveErrorLimit``; hold while the latest round (the newest of
    ``results``) has no data."""
    if failures > analysis.failure_limit:
        last = next(r for r in reversed(results) if r.phase == MeasurementPhase.FAILED)
        return Verdict(True, False, f"analysis failed {failures} times: {last.message}")
    if errors_in_a_row > analysis.consecutive_error_limit:
        return Verdict(
            True, False, f"{errors_in_a_row} analysis errors in a row: {results[-1].message}"
        )
    latest = results[-len(analysis.queries) :] if results else []
    inconclusive = any(r.phase == MeasurementPhase.INCONCLUSIVE for r in latest)
    return Verdict(False, inconclusive, "inconclusive: no data yet" if inconclusive else "passing")
