"""Progressive rollout decisions: which version to serve, the steps, the pod
split for a weight, and what analysis measurements mean. Pure."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from trailboss.api.deployment import DeploymentSpec
from trailboss.api.durations import spec_seconds
from trailboss.api.rollout import (
    DEFAULT_STEPS,
    AnalysisQuery,
    AnalysisResult,
    AnalysisSpec,
    MeasurementPhase,
    PromotedVersion,
    RolloutSpec,
    RolloutStep,
)

SERVABLE = frozenset({"Validated"})
PHASE_ORDER = ("Registered", "Validated")
"""How far a ModelVersion got: a phase filter means "at least this far"."""


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
    deleting: bool = False
    """Its deletion was requested: it is served only while the rollout moves off it."""


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


def canary_pods(replicas: int, wanted: int, stable_ready: int, current: int) -> int:
    """Canary pods to keep under the replica ratio when the canary's share falls
    while it runs (Replace switched to a canary's first step, fewer steps): a canary
    pod goes only once a ready stable pod can take its requests, the mirror of
    ``stable_pods``. Never more than the canary has: this holds pods, it adds none."""
    return max(wanted, min(current, replicas - stable_ready))


def capacity_held(replicas: int) -> int:
    """Ready pods a Service keeps while versions change under the replica ratio:
    one fewer than wanted, as a rolling update with maxUnavailable 1, but never
    none while any are wanted (one replica would mean no answer at all)."""
    return min(replicas, max(1, replicas - 1))


def retiring_pods(short: int, retiring: list[tuple[str, int, int]]) -> dict[str, int]:
    """Pods each retiring version keeps, from (version, pods, ready pods), newest
    first: together the ready ones cover the ``short`` ready pods the serving
    versions lack, so their pods go only as the stable's become ready."""
    kept = {}
    for version, pods, ready in retiring:
        kept[version] = min(pods, short)
        short -= min(ready, kept[version])
    return kept


def servable(candidate: Candidate, spec: DeploymentSpec) -> str | None:
    """Why a ModelVersion may not be served, or None when it may."""
    if candidate.deleting:
        return "is being deleted; it is served only until traffic moves to another version"
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
    wanted = [c for c in matching if reached(c.phase, policy.latest) and servable(c, spec) is None]
    if not wanted:
        return Choice(
            None,
            "VersionNotFound",
            f"no ModelVersion of model {spec.model} is {policy.latest} yet"
            + (f" with labels {policy.match_labels}" if policy.match_labels else ""),
        )
    newest = max(wanted, key=lambda c: (c.registry_version or 0, c.created, c.name))
    return Choice(newest.name, "Resolved", f"newest {policy.latest} version is {newest.name}")


def reached(phase: str | None, wanted: str) -> bool:
    """Whether a ModelVersion in ``phase`` got at least as far as ``wanted``:
    `latest: Registered` keeps a version that went on to pass its gate."""
    if phase not in PHASE_ORDER:
        return False
    return PHASE_ORDER.index(phase) >= PHASE_ORDER.index(wanted)


def kept(spec: DeploymentSpec, version: str | None, candidates: list[Candidate]) -> Choice:
    """The last resolved target while the registry cannot be read: kept as long
    as its ModelVersion is still here and servable, so a rollout in progress goes
    on (steps, analysis, aborts) through a registry outage."""
    unreadable = "the model registry cannot be read"
    if version is None:
        return Choice(None, "RegistryUnavailable", f"{unreadable}; no version was resolved yet")
    found = next((c for c in candidates if c.name == version and c.model == spec.model), None)
    if found is None:
        return Choice(None, "VersionNotFound", f"{unreadable}, and ModelVersion {version} is gone")
    problem = servable(found, spec)
    if problem:
        return Choice(
            None, "VersionNotReady", f"{unreadable}, and ModelVersion {version} {problem}"
        )
    return Choice(
        version, "RegistryUnavailable", f"{unreadable}; keeping the last target {version}"
    )


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


def clamped_step(plan: list[RolloutStep], index: int | None) -> int:
    """The step a rollout is at once its plan was edited under it: an index past the
    edited plan's end (steps removed, or a switch to Replace) becomes its last step."""
    return min(index or 0, len(plan) - 1)


def hold_seconds(step: RolloutStep, analysis: AnalysisSpec | None) -> float:
    """How long a step holds once its pods are ready: its pause and, under analysis,
    at least one full interval, so a measurement covers the weight really served
    rather than only the moment it began."""
    pause = spec_seconds(step.pause) if step.pause else 0.0
    if analysis is None:
        return pause
    return max(pause, spec_seconds(analysis.interval))


def stable_within(
    history: list[PromotedVersion], version: str, window: str, now: dt.datetime
) -> bool:
    """Whether ``version`` was the stable version at any moment of the last
    ``window``: a rollback to it is immediate. ``history`` holds the stable versions,
    oldest first, each stable until the next one was promoted; what counts is when a
    version stopped being stable, however long ago it became stable."""
    horizon = now - dt.timedelta(seconds=spec_seconds(window))
    successors: list[PromotedVersion | None] = [*history[1:], None]
    for entry, successor in zip(history, successors, strict=True):
        until = successor.promoted_at if successor is not None else now
        if entry.version == version and until >= horizon:
            return True
    return False


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
    # Status is JSON, which has no infinity: the message keeps the value instead.
    shown = value if math.isfinite(value) else None
    message = broken or (None if shown is not None else f"{query.name} = {_number(value)}")
    return AnalysisResult(**common, value=shown, phase=phase, passed=not broken, message=message)


def _broken_bound(query: AnalysisQuery, value: float) -> str | None:
    if query.min is not None and value < query.min:
        return f"{query.name} = {_number(value)} is below its minimum {query.min:g}"
    if query.max is not None and value > query.max:
        return f"{query.name} = {_number(value)} is above its maximum {query.max:g}"
    return None


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"  # as Prometheus writes them
    return f"{value:.4g}"


@dataclass(frozen=True)
class Verdict:
    """What the measurements of one rollout so far say."""

    failed: bool
    inconclusive: bool
    message: str


def tally(
    failures: int, errors_in_a_row: dict[str, int], result: AnalysisResult
) -> tuple[int, dict[str, int]]:
    """The rollout's failure count and each query's errors in a row after one more
    measurement. Counted apart from the bounded history, so that limits hold however
    many measurements a rollout takes; and per query, since another query's
    success says nothing about a query that cannot run."""
    errors = dict(errors_in_a_row)
    if result.phase == MeasurementPhase.ERROR:
        errors[result.name] = errors.get(result.name, 0) + 1
        return failures, errors
    errors.pop(result.name, None)
    return failures + (result.phase == MeasurementPhase.FAILED), errors


def inconclusive_since(
    since: dt.datetime | None, round_: list[AnalysisResult], now: dt.datetime
) -> dt.datetime | None:
    """When analysis began to have no data, in a row, after one more round of
    measurements: a round with no data for a query starts the clock (or keeps it
    going), a round with data for every query stops it, and a round in which a query
    could not run leaves it as it was (errors count on their own)."""
    phases = {r.phase for r in round_}
    if MeasurementPhase.INCONCLUSIVE in phases:
        return since or now
    if MeasurementPhase.ERROR in phases:
        return since
    return None


def verdict(
    failures: int,
    errors_in_a_row: dict[str, int],
    results: list[AnalysisResult],
    analysis: AnalysisSpec,
) -> Verdict:
    """Abort once ``failures`` pass ``failureLimit`` or one query's errors in a row
    pass ``consecutiveErrorLimit`` (limits as the spec says now, also when lowered
    mid-rollout); hold while the latest round of ``results`` has no data."""
    if failures > analysis.failure_limit:
        return Verdict(True, False, _too_many_failures(failures, results, analysis))
    erring = _erring_query(errors_in_a_row, analysis)
    if erring is not None:
        name, count = erring
        last = next((r for r in reversed(results) if r.name == name and r.message), None)
        return Verdict(
            True,
            False,
            f"{count} analysis errors in a row of query {name} (consecutiveErrorLimit "
            f"{analysis.consecutive_error_limit})" + (f": {last.message}" if last else ""),
        )
    newest = results[-1].measured_at if results else None
    latest = [r for r in results if r.measured_at == newest]
    inconclusive = any(r.phase == MeasurementPhase.INCONCLUSIVE for r in latest)
    return Verdict(False, inconclusive, "inconclusive: no data yet" if inconclusive else "passing")


def _too_many_failures(failures: int, results: list[AnalysisResult], analysis: AnalysisSpec) -> str:
    said = f"analysis failed {failures} times (failureLimit {analysis.failure_limit})"
    last = next((r for r in reversed(results) if r.phase == MeasurementPhase.FAILED), None)
    if last is None:  # the failures are older than the measurements status keeps
        return f"{said}; the last failures are older than the measurements kept in status"
    return f"{said}: {last.message}"


def _erring_query(
    errors_in_a_row: dict[str, int], analysis: AnalysisSpec
) -> tuple[str, int] | None:
    """The query with the most errors in a row beyond the limit, of those the spec
    still has."""
    names = {q.name for q in analysis.queries}
    over = [
        (count, name)
        for name, count in errors_in_a_row.items()
        if name in names and count > analysis.consecutive_error_limit
    ]
    if not over:
        return None
    count, name = max(over)
    return name, count
