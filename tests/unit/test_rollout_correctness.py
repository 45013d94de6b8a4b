"""Rollouts as an SRE would try them: promote and abort at the wrong moment,
Prometheus answering oddly, the spec edited mid-rollout, pauses, rollbacks.
Every case is one a user saw go wrong; each asserts what the user sees."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tests.unit.test_deployment_reconciler import ANALYSIS, ERRORS, World, _mv, _ready
from trailboss.clients.prometheus import single_value
from trailboss.clients.protocols import QueryFailed
from trailboss.reconcilers import deployment

PROMOTE = "trailboss.dev/promote"
ABORT = "trailboss.dev/abort"
PAUSED = "trailboss.dev/paused"
V2_ERRORS = 'sum(rate(errors{version="v2"}[1m]))'
V3_ERRORS = 'sum(rate(errors{version="v3"}[1m]))'


def _condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == type_)


def _unannotate(world: World, key: str) -> None:
    body = world.kube.objects[("Deployment", "ml", "churn")]
    body["metadata"].get("annotations", {}).pop(key, None)


def _edit_rollout(world: World, **changes: Any) -> None:
    rollout = dict(world.kube.current(world.body)["spec"].get("rollout") or {})
    rollout.update(changes)
    world.edit(rollout=rollout)


def _no_reconcile_error(world: World) -> None:
    assert _ready(world.status())["reason"] != "ReconcileError", _ready(world.status())


def _serving(world: World, version: str) -> None:
    """``version`` serves as stable, all pods ready."""
    world.add(_mv("v1", 1), _mv("v2", 2), _mv("v3", 3))
    world.settle()
    assert world.status()["stableVersion"] == version


# 1. Promote and abort act on the rollout in progress when they are seen, or on none.


@pytest.mark.parametrize("annotation", [PROMOTE, ABORT])
def test_a_request_made_while_no_rollout_runs_is_answered_and_dropped(annotation: str) -> None:
    world = World(modelVersion="v1", rollout={"steps": [{"weight": 10, "pause": "5m"}]})
    _serving(world, "v1")
    world.annotate(annotation, "while-idle")
    status = world.settle()
    what = "promote" if annotation == PROMOTE else "abort"
    request = _condition(status, "ManualRequest")
    assert (request["status"], request["reason"]) == ("False", "NoRolloutInProgress")
    assert f"no rollout to {what}" in request["message"]
    assert any(r == "NoRolloutInProgress" for r, _ in world.kube.events)
    world.now += dt.timedelta(days=1)
    world.edit(modelVersion="v2")  # a day later: a rollout the request was never about
    status = world.settle()
    assert (status["canaryVersion"], status["canaryWeight"], status["phase"]) == (
        "v2",
        10,
        "Progressing",
    )
    assert status["stableVersion"] == "v1"


def test_a_request_applies_to_the_rollout_in_progress_not_to_the_one_that_follows() -> None:
    world = World(modelVersion="v1", rollout={"steps": [{"weight": 10, "pause": "5m"}]})
    _serving(world, "v1")
    world.edit(modelVersion="v2")
    world.settle()
    # The request and the next commit arrive together: the request was for v2,
    # which v3 supersedes before its pods could take all traffic; v3 is not promoted.
    world.annotate(PROMOTE, "for-v2")
    world.edit(modelVersion="v3")
    status = world.settle()
    assert status["stableVersion"] == "v1"
    assert (status["canaryVersion"], status["canaryWeight"]) == ("v3", 10)
    assert _condition(status, "ManualRequest")["reason"] == "Promoted"
    assert any(r == "Superseded" and "v2 superseded by v3" in m for r, m in world.kube.events)


def test_a_promote_takes_all_traffic_once_the_pods_are_ready_then_promotes() -> None:
    world = World(modelVersion="v1", rollout={"steps": [{"weight": 10, "pause": "5m"}]})
    _serving(world, "v1")
    world.edit(modelVersion="v2")
    world.settle()
    world.annotate(PROMOTE, "now")
    status = world.reconcile()  # the request is seen; v2's pods are not all there yet
    assert (status["stableVersion"], status["canaryWeight"]) == ("v1", 100)
    assert world.servers()["v1"] > 0  # the stable keeps serving until v2's pods are ready
    status = world.settle()
    assert (status["stableVersion"], status.get("canaryVersion")) == ("v2", None)
    assert any(r == "Promoted" and PROMOTE in m for r, m in world.kube.events)


# 2. The progress deadline counts from when progress stopped, paused time left out.

PASSING_ANALYSIS = {**ANALYSIS, "interval": "1m", "failureLimit": 2}


def test_the_deadline_for_no_data_counts_from_the_first_inconclusive_measurement() -> None:
    world = World(
        modelVersion="v1",
        rollout={
            "steps": [{"weight": 10, "pause": "1h"}],
            "analysis": PASSING_ANALYSIS,
            "progressDeadline": "10m",
        },
    )
    _serving(world, "v1")
    world.prometheus.answers[V2_ERRORS] = 0.01
    world.edit(modelVersion="v2")
    world.settle()
    for _ in range(30):  # half an hour of passing measurements
        world.settle(60)
    del world.prometheus.answers[V2_ERRORS]  # then the data stops
    status = world.settle(60)
    assert status["analysis"][-1]["phase"] == "Inconclusive"
    assert (status["phase"], status["canaryWeight"]) == ("Progressing", 10)
    for _ in range(9):
        assert world.settle(60)["phase"] == "Progressing"
    status = world.settle(70)  # ten minutes and more without data
    assert status["phase"] == "Degraded"
    assert "no data for 10m" in _ready(status)["message"]


def test_a_conclusive_measurement_restarts_the_no_data_deadline() -> None:
    world = World(
        modelVersion="v1",
        rollout={
            "steps": [{"weight": 10, "pause": "1h"}],
            "analysis": PASSING_ANALYSIS,
            "progressDeadline": "10m",
        },
    )
    _serving(world, "v1")
    world.edit(modelVersion="v2")
    world.settle()
    for _ in range(8):  # eight minutes without data
        world.settle(60)
    world.prometheus.answers[V2_ERRORS] = 0.01  # one good measurement
    world.settle(60)
    del world.prometheus.answers[V2_ERRORS]
    for _ in range(8):  # eight more: sixteen in all, never ten in a row
        status = world.settle(60)
    assert (status["phase"], status["canaryVersion"]) == ("Progressing", "v2")


def test_time_paused_does_not_count_towards_the_pods_deadline() -> None:
    world = World(
        modelVersion="v1",
        rollout={"steps": [{"weight": 10, "pause": "5m"}], "progressDeadline": "10m"},
    )
    _serving(world, "v1")
    world.edit(modelVersion="v2")
    world.reconcile()  # v2's pod starts, and will not get ready
    world.now += dt.timedelta(minutes=4)
    world.reconcile()
    world.annotate(PAUSED, "true")
    world.now += dt.timedelta(seconds=1)
    assert world.reconcile()["phase"] == "Paused"
    world.now += dt.timedelta(minutes=30)
    world.reconcile()
    deployment.forget("dep-1")  # the operator restarts while paused
    _unannotate(world, PAUSED)
    world.now += dt.timedelta(seconds=1)
    status = world.reconcile()
    assert (status["phase"], status["canaryVersion"]) == ("Progressing", "v2")
    world.now += dt.timedelta(minutes=5)
    assert world.reconcile()["phase"] == "Progressing"  # 9 minutes unready, unpaused
    world.now += dt.timedelta(minutes=2)
    status = world.reconcile()
    assert status["phase"] == "Degraded"
    assert _condition(status, "Aborted")["reason"] == "ProgressDeadlineExceeded"


def test_time_paused_does_not_count_towards_the_no_data_deadline() -> None:
    world = World(
        modelVersion="v1",
        rollout={
            "steps": [{"weight": 10, "pause": "1h"}],
            "analysis": PASSING_ANALYSIS,
            "progressDeadline": "10m",
        },
    )
    _serving(world, "v1")
    world.edit(modelVersion="v2")
    world.settle()
    for _ in range(5):  # five minutes without data
        world.settle(60)
    world.annotate(PAUSED, "true")
    world.settle(1)
    world.settle(3600)  # paused for an hour
    _unannotate(world, PAUSED)
    status = world.settle(1)
    assert (status["phase"], status["canaryVersion"]) == ("Progressing", "v2")
    for _ in range(3):
        assert world.settle(60)["phase"] == "Progressing"
    status = world.settle(180)
    assert status["phase"] == "Degraded"
    assert "no data" in _ready(status)["message"]


# 3. consecutiveErrorLimit counts each query's errors in a row.


def test_a_query_that_always_errors_aborts_though_another_query_succeeds() -> None:
    queries = [
        {"name": "broken", "query": "sum(rate(broken[1m])", "max": 1},
        {"name": "error-rate", "query": ERRORS, "max": 0.05},
    ]
    analysis = {**ANALYSIS, "consecutiveErrorLimit": 2, "queries": queries}
    world = World(
        modelVersion="v1",
        rollout={"steps": [{"weight": 10, "pause": "5m"}], "analysis": analysis},
    )
    _serving(world, "v1")
    world.prometheus.refused["sum(rate(broken[1m])"] = "parse error: unclosed left parenthesis"
    world.prometheus.answers[V2_ERRORS] = 0.01
    world.edit(modelVersion="v2")
    world.settle()
    assert world.settle(10)["phase"] == "Progressing"  # two errors of broken: within the limit
    status = world.settle(10)  # the third in a row
    assert (status["phase"], status["abortedVersion"]) == ("Degraded", "v2")
    message = _ready(status)["message"]
    assert "3 analysis errors in a row" in message
    assert "of query broken" in message
    assert "unclosed left parenthesis" in message


# 6. Odd answers and spec edits mid-rollout are defined transitions, never exceptions.

SERIES = {"metric": {"version": "v2"}, "value": [1.7e9, "0.01"]}
ODD_ANSWERS = {
    "two series": {"status": "success", "data": {"resultType": "vector", "result": [SERIES] * 2}},
    "a range vector": {
        "status": "success",
        "data": {
            "resultType": "matrix",
            "result": [{"metric": {}, "values": [[1.7e9, "0.01"], [1.7e9 + 15, "0.02"]]}],
        },
    },
    "a string": {"status": "success", "data": {"resultType": "string", "result": [1.7e9, "up"]}},
    "a series without a value": {
        "status": "success",
        "data": {"resultType": "vector", "result": [{"metric": {}}]},
    },
    "not a number": {
        "status": "success",
        "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1.7e9, "many"]}]},
    },
    "an error body": {"status": "error", "errorType": "execution", "error": "query timed out"},
    "no data field": {"status": "success"},
    "a list": [1, 2],
}


@pytest.mark.parametrize("shape", list(ODD_ANSWERS))
def test_every_answer_prometheus_can_give_is_a_measurement(shape: str) -> None:
    analysis = {**ANALYSIS, "consecutiveErrorLimit": 1}
    world = World(
        modelVersion="v1",
        rollout={"steps": [{"weight": 10, "pause": "5m"}], "analysis": analysis},
    )
    _serving(world, "v1")
    world.prometheus.bodies[V2_ERRORS] = ODD_ANSWERS[shape]
    world.edit(modelVersion="v2")
    status = world.settle()
    _no_reconcile_error(world)
    assert status["analysis"][-1]["phase"] == "Error"
    assert status["canaryVersion"] == "v2"
    status = world.settle(10)
    assert (status["phase"], status["abortedVersion"]) == ("Degraded", "v2")
    assert "2 analysis errors in a row" in _ready(status)["message"]


@pytest.mark.parametrize("body", list(ODD_ANSWERS.values()), ids=list(ODD_ANSWERS))
def test_the_prometheus_client_raises_only_query_failed(body: Any) -> None:
    with pytest.raises(QueryFailed):
        single_value(body)


def test_one_series_and_a_scalar_are_read_as_numbers() -> None:
    vector = {"status": "success", "data": {"resultType": "vector", "result": [SERIES]}}
    scalar = {"status": "success", "data": {"resultType": "scalar", "result": [1.7e9, "2.5"]}}
    empty = {"status": "success", "data": {"resultType": "vector", "result": []}}
    nan = {"status": "success", "data": {"resultType": "scalar", "result": [1.7e9, "NaN"]}}
    assert [single_value(b) for b in (vector, scalar, empty, nan)] == [0.01, 2.5, None, None]


def test_an_infinite_value_fails_its_bound_and_is_stored_without_the_infinity() -> None:
    world = World(
        modelVersion="v1",
        rollout={"steps": [{"weight": 10, "pause": "5m"}], "analysis": ANALYSIS},
    )
    _serving(world, "v1")
    inf = {"metric": {}, "value": [1.7e9, "+Inf"]}
    world.prometheus.bodies[V2_ERRORS] = {
        "status": "success",
        "data": {"resultType": "vector", "result": [inf]},
    }
    world.edit(modelVersion="v2")
    status = world.settle()
    _no_reconcile_error(world)
    last = status["analysis"][-1]
    assert (last["phase"], last.get("value")) == ("Failed", None)
    assert "+Inf" in last["message"] or "inf" in last["message"]


def _at_step(world: World, index: int) -> dict[str, Any]:
    for _ in range(index):
        world.settle(61)
    status = world.status()
    assert status["currentStep"] == index
    return status


def test_steps_shortened_below_the_current_step_continue_from_the_new_last_step() -> None:
    steps = [{"weight": w, "pause": "1m"} for w in (10, 20, 30, 50)]
    world = World(modelVersion="v1", rollout={"steps": steps})
    _serving(world, "v1")
    world.edit(modelVersion="v2")
    world.settle()
    assert _at_step(world, 3)["canaryWeight"] == 50
    _edit_rollout(world, steps=[{"weight": 10, "pause": "1m"}])  # now 10, then 100
    status = world.reconcile()
    _no_reconcile_error(world)
    assert (status["currentStep"], status["canaryWeight"]) == (1, 100)
    status = world.settle(1)
    assert (status["stableVersion"], status.get("canaryVersion")) == ("v2", None)


def test_a_switch_to_replace_mid_rollout_goes_to_100_percent() -> None:
    steps = [{"weight": 10, "pause": "1m"}, {"weight": 50, "pause": "1m"}]
    world = World(modelVersion="v1", rollout={"steps": steps})
    _serving(world, "v1")
    world.edit(modelVersion="v2")
    world.settle()
    _at_step(world, 1)
    _edit_rollout(world, strategy="Replace")
    status = world.reconcile()
    _no_reconcile_error(world)
    assert (status["currentStep"], status["canaryWeight"]) == (0, 100)
    status = world.settle(1)
    assert (status["stableVersion"], status.get("canaryVersion")) == ("v2", None)
    assert world.servers() == {"v1": 0, "v2": 10}


def test_edited_step_weights_apply_to_the_step_in_progress() -> None:
    steps = [{"weight": 10, "pause": "5m"}, {"weight": 50, "pause": "5m"}]
    world = World(modelVersion="v1", rollout={"steps": steps})
    _serving(world, "v1")
    world.edit(modelVersion="v2")
    world.settle()
    _edit_rollout(world, steps=[{"weight": 20, "pause": "5m"}, {"weight": 50, "pause": "5m"}])
    status = world.settle()
    assert (status["currentStep"], status["canaryWeight"]) == (0, 20)
    assert world.servers() == {"v1": 8, "v2": 2}


def test_a_failure_limit_lowered_below_the_failures_so_far_aborts_with_a_message() -> None:
    analysis = {**ANALYSIS, "failureLimit": 5}
    world = World(
        modelVersion="v1",
        rollout={
            "steps": [{"weight": 10, "pause": "1h"}],
            "analysis": analysis,
            "progressDeadline": "1h",
        },
    )
    _serving(world, "v1")
    world.prometheus.answers[V2_ERRORS] = 0.3
    world.edit(modelVersion="v2")
    world.settle()
    world.settle(10)
    world.settle(10)  # three failures, within the limit of five
    world.prometheus.answers[V2_ERRORS] = 0.01
    for _ in range(21):  # passing measurements push the failures out of the history
        world.settle(10)
    status = world.status()
    assert status["analysisFailures"] == 3
    assert all(r["phase"] == "Successful" for r in status["analysis"])
    _edit_rollout(world, analysis={**analysis, "failureLimit": 1})
    status = world.settle()
    _no_reconcile_error(world)
    assert (status["phase"], status["abortedVersion"]) == ("Degraded", "v2")
    assert "analysis failed 3 times" in _ready(status)["message"]
    assert "failureLimit 1" in _ready(status)["message"]


# 9. Rollback to a version that was stable within the window is immediate and not analysed.


def _promote(world: World, version: str) -> None:
    world.edit(modelVersion=version)
    world.settle()
    world.annotate(PROMOTE, f"promote-{version}-{world.now.isoformat()}")
    status = world.settle()
    assert (status["stableVersion"], status.get("canaryVersion")) == (version, None)


def _rolls_back_at_once(world: World, version: str) -> None:
    world.edit(modelVersion=version)
    status = world.reconcile()
    assert (status["canaryVersion"], status["canaryWeight"]) == (version, 100)
    assert any("fast rollback" in m for r, m in world.kube.events if r == "RolloutStarted")
    status = world.settle(1)
    assert (status["stableVersion"], status.get("canaryVersion")) == (version, None)


def test_the_first_version_served_rolls_back_at_once() -> None:
    world = World(modelVersion="v1", rollout={"steps": [{"weight": 10, "pause": "5m"}]})
    _serving(world, "v1")
    world.now += dt.timedelta(days=1)
    _promote(world, "v2")
    world.now += dt.timedelta(minutes=1)
    _rolls_back_at_once(world, "v1")


def test_a_version_stable_for_a_day_and_replaced_a_minute_ago_rolls_back_at_once() -> None:
    world = World(modelVersion="v1", rollout={"steps": [{"weight": 10, "pause": "5m"}]})
    _serving(world, "v1")
    _promote(world, "v2")
    world.now += dt.timedelta(days=1)
    _promote(world, "v3")
    world.now += dt.timedelta(minutes=1)
    _rolls_back_at_once(world, "v2")


def test_a_version_replaced_longer_ago_than_the_window_gets_the_full_canary() -> None:
    world = World(
        modelVersion="v1",
        rollout={"steps": [{"weight": 10, "pause": "5m"}], "fastRollbackWindow": "1h"},
    )
    _serving(world, "v1")
    _promote(world, "v2")
    world.now += dt.timedelta(hours=2)
    world.edit(modelVersion="v1")
    status = world.settle()
    assert (status["canaryVersion"], status["canaryWeight"]) == ("v1", 10)


def test_a_fast_rollback_is_not_analysed_so_no_data_cannot_abort_it() -> None:
    world = World(
        modelVersion="v1",
        rollout={
            "steps": [{"weight": 10, "pause": "5m"}],
            "analysis": ANALYSIS,
            "progressDeadline": "2m",
        },
    )
    _serving(world, "v1")
    world.prometheus.answers[V2_ERRORS] = 0.01
    _promote(world, "v2")
    world.now += dt.timedelta(minutes=1)
    world.prometheus.answers.clear()  # the old version's series are gone: no data
    world.edit(modelVersion="v1")
    world.settle()
    status = world.settle(180)
    assert (status["stableVersion"], status.get("canaryVersion"), status["phase"]) == (
        "v1",
        None,
        "Healthy",
    )
    assert not [r for r in status["analysis"] if r.get("version") == "v1"]


# 13. A step holds at least one full analysis interval after its pods are ready.


def test_a_step_shorter_than_the_interval_holds_until_a_measurement_covers_it() -> None:
    analysis = {**ANALYSIS, "interval": "5m"}
    world = World(
        modelVersion="v1",
        rollout={"steps": [{"weight": 10, "pause": "1m"}, {"weight": 50}], "analysis": analysis},
    )
    _serving(world, "v1")
    world.prometheus.answers[V2_ERRORS] = 0.01
    world.edit(modelVersion="v2")
    ready_at = world.now
    world.settle()  # pods ready: the first measurement, as the weight starts to be served
    assert world.settle(61)["canaryWeight"] == 10  # the pause is over, the interval is not
    status = world.settle(240)
    assert status["canaryWeight"] == 50
    taken = [dt.datetime.fromisoformat(r["measuredAt"]) for r in status["analysis"]]
    assert any(t >= ready_at + dt.timedelta(minutes=5) for t in taken)
    assert [r["step"] for r in status["analysis"]][:2] == [0, 0]


@pytest.fixture(autouse=True)
def _isolated() -> None:
    deployment.forget("dep-1")
