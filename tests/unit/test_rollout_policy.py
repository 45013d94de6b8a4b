"""Pure rollout decisions: the step after a plan edit, how long a step holds, when
a rollback is fast, and what a run of measurements means."""

from __future__ import annotations

import datetime as dt

import pytest

from trailboss.api.rollout import (
    AnalysisQuery,
    AnalysisResult,
    AnalysisSpec,
    MeasurementPhase,
    PromotedVersion,
    RolloutStep,
)
from trailboss.policies import rollout as policy

T0 = dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.UTC)
MINUTE = dt.timedelta(minutes=1)
QUERIES = [
    AnalysisQuery(name="errors", query="e", max=0.05),
    AnalysisQuery(name="latency", query="l", max=0.5),
]


def _analysis(**fields: object) -> AnalysisSpec:
    return AnalysisSpec.model_validate(
        {"prometheusUrl": "http://prometheus:9090", "queries": QUERIES, **fields}
    )


def _result(name: str, phase: MeasurementPhase, at: dt.datetime = T0) -> AnalysisResult:
    return AnalysisResult(
        name=name,
        phase=phase,
        passed=phase == MeasurementPhase.SUCCESSFUL,
        message=f"{name} {phase}",
        measured_at=at,
    )


OK, FAILED = MeasurementPhase.SUCCESSFUL, MeasurementPhase.FAILED
NO_DATA, ERROR = MeasurementPhase.INCONCLUSIVE, MeasurementPhase.ERROR


@pytest.mark.parametrize(
    ("steps", "index", "expected"),
    [(3, 1, 1), (3, 2, 2), (2, 3, 1), (1, 4, 0), (3, None, 0)],
)
def test_a_step_index_past_an_edited_plan_becomes_its_last_step(
    steps: int, index: int | None, expected: int
) -> None:
    plan = [RolloutStep(weight=w) for w in (10, 50, 100)[-steps:]]
    assert policy.clamped_step(plan, index) == expected


@pytest.mark.parametrize(
    ("pause", "interval", "expected"),
    [("1m", None, 60), (None, None, 0), ("1m", "5m", 300), ("10m", "5m", 600), (None, "1m", 60)],
)
def test_under_analysis_a_step_holds_at_least_one_interval(
    pause: str | None, interval: str | None, expected: float
) -> None:
    analysis = _analysis(interval=interval) if interval else None
    assert policy.hold_seconds(RolloutStep(weight=10, pause=pause), analysis) == expected


def _history(*entries: tuple[str, dt.datetime]) -> list[PromotedVersion]:
    return [PromotedVersion(version=v, promoted_at=at) for v, at in entries]


@pytest.mark.parametrize(
    ("version", "now", "fast"),
    [
        ("v1", T0 + dt.timedelta(days=2) + MINUTE, True),  # stable a day, replaced 1m ago
        ("v2", T0 + dt.timedelta(days=2) + MINUTE, True),  # the current stable
        ("v1", T0 + dt.timedelta(days=2, hours=2), False),  # replaced 2h ago
        ("v0", T0 + dt.timedelta(days=1, minutes=30), True),  # first served, replaced 30m ago
        ("v0", T0 + dt.timedelta(days=2), False),
        ("v9", T0, False),  # never stable
    ],
)
def test_a_rollback_is_fast_to_a_version_stable_within_the_window(
    version: str, now: dt.datetime, fast: bool
) -> None:
    history = _history(
        ("v0", T0 - dt.timedelta(days=30)),
        ("v1", T0 + dt.timedelta(days=1)),
        ("v2", T0 + dt.timedelta(days=2)),
    )
    assert policy.stable_within(history, version, "1h", now) is fast


def test_each_query_counts_its_own_errors_in_a_row() -> None:
    failures, errors = 0, dict[str, int]()
    for _ in range(3):
        failures, errors = policy.tally(failures, errors, _result("errors", ERROR))
        failures, errors = policy.tally(failures, errors, _result("latency", OK))
    assert (failures, errors) == (0, {"errors": 3})
    failures, errors = policy.tally(failures, errors, _result("errors", FAILED))
    assert (failures, errors) == (1, {})


def test_a_query_erring_beyond_the_limit_fails_the_analysis() -> None:
    results = [_result("errors", ERROR), _result("latency", OK)]
    verdict = policy.verdict(0, {"errors": 3}, results, _analysis(consecutiveErrorLimit=2))
    assert verdict.failed
    assert verdict.message.startswith("3 analysis errors in a row of query errors")
    assert "errors Error" in verdict.message
    removed = policy.verdict(0, {"gone": 9}, results, _analysis(consecutiveErrorLimit=2))
    assert not removed.failed  # a query no longer in the spec does not count


def test_failures_over_a_lowered_limit_fail_even_when_no_longer_kept() -> None:
    kept = [_result("errors", OK)] * 20
    verdict = policy.verdict(3, {}, kept, _analysis(failureLimit=1))
    assert verdict.failed
    assert "analysis failed 3 times (failureLimit 1)" in verdict.message


def test_the_latest_round_is_the_newest_measurements_whatever_the_queries_now() -> None:
    results = [_result("errors", NO_DATA, T0), _result("errors", OK, T0 + MINUTE)]
    assert not policy.verdict(0, {}, results, _analysis()).inconclusive
    results.append(_result("latency", NO_DATA, T0 + MINUTE))
    assert policy.verdict(0, {}, results, _analysis()).inconclusive


@pytest.mark.parametrize(
    ("since", "round_", "expected"),
    [
        (None, [NO_DATA, OK], T0 + MINUTE),  # the clock starts
        (T0, [NO_DATA, OK], T0),  # and keeps going
        (T0, [OK, FAILED], None),  # data for every query stops it
        (T0, [ERROR, OK], T0),  # an error neither starts nor stops it
        (None, [ERROR, OK], None),
    ],
)
def test_the_no_data_clock(
    since: dt.datetime | None, round_: list[MeasurementPhase], expected: dt.datetime | None
) -> None:
    results = [_result(q.name, phase) for q, phase in zip(QUERIES, round_, strict=True)]
    assert policy.inconclusive_since(since, results, T0 + MINUTE) == expected


def test_an_infinite_value_is_judged_by_its_bounds_and_kept_out_of_the_value() -> None:
    query = QUERIES[0]
    failed = policy.measure(query, float("inf"), None)
    assert (failed.phase, failed.value) == (FAILED, None)
    assert failed.message == "errors = +Inf is above its maximum 0.05"
    low = policy.measure(AnalysisQuery(name="up", query="up", min=1), float("-inf"), None)
    assert low.message == "up = -Inf is below its minimum 1"
    fine = policy.measure(AnalysisQuery(name="up", query="up", min=1), float("inf"), None)
    assert (fine.phase, fine.value, fine.message) == (OK, None, "up = +Inf")


@pytest.mark.parametrize(("replicas", "held"), [(0, 0), (1, 1), (2, 1), (3, 2), (4, 3), (10, 9)])
def test_capacity_held_is_one_fewer_than_wanted_but_never_none(replicas: int, held: int) -> None:
    assert policy.capacity_held(replicas) == held


@pytest.mark.parametrize(
    ("replicas", "wanted", "stable_ready", "current", "kept"),
    [
        (3, 1, 0, 3, 3),  # the stable has no ready pod yet: every canary pod stays
        (3, 1, 1, 3, 2),  # one stable pod ready: one canary pod may go
        (3, 1, 3, 3, 1),  # the stable is back: down to the step's share
        (3, 1, 0, 1, 1),  # never more than the canary has
        (10, 5, 0, 2, 5),  # scaling up is the step's own doing
    ],
)
def test_a_canary_pod_goes_only_once_a_ready_stable_pod_takes_its_requests(
    replicas: int, wanted: int, stable_ready: int, current: int, kept: int
) -> None:
    assert policy.canary_pods(replicas, wanted, stable_ready, current) == kept
