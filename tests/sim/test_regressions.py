"""Sequences the simulation found, kept as regression tests: each replays the
shrunk steps it printed, with every invariant checked after each step."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.sim.machine import DeploymentSimulation

START = {"replicas": 1, "router": "ReplicaRatio", "strategy": "Canary", "steps": "",
         "analysis": None, "source": "pinned", "retraining": False, "release": "good"}  # fmt: skip


@pytest.fixture
def simulation() -> Iterator[DeploymentSimulation]:
    machine = DeploymentSimulation()
    yield machine
    machine.teardown()


def _replay(machine: DeploymentSimulation, *steps: Callable[[], None]) -> None:
    for step in steps:
        step()
        machine.holds_now()


def test_a_promote_behind_a_route_waits_for_the_promoted_versions_pods(
    simulation: DeploymentSimulation,
) -> None:
    """The router switched to HTTPRoute mid-rollout, then a promote: the route
    must not send all traffic to a version whose pods are not ready."""
    m = simulation
    m.start(**START)
    _replay(m, lambda: m.set_router(kind="HTTPRoute"), m.reconcile, m.promote, m.quiesce)


def test_a_rollout_right_after_a_promotion_waits_for_the_gateway_to_let_go_of_the_canary(
    simulation: DeploymentSimulation,
) -> None:
    """The canary Service keeps its pods until the Gateway holds a route that
    sends it nothing: only then may it select the next version."""
    m = simulation
    m.start(**START)
    _replay(
        m,
        lambda: m.set_router(kind="HTTPRoute"),
        m.quiesce,
        lambda: m.new_version(
            labelled=False, phase="Validated", pin=True, pods="ok", quality="good"
        ),
        m.quiesce,
    )


ROUTED = {**START, "replicas": 2, "router": "HTTPRoute", "steps": "10@1m", "release": None}
"""v1 Healthy behind an HTTPRoute, canaries held at 10 % for a minute."""


def _next_version(m: DeploymentSimulation) -> None:
    m.new_version(labelled=False, phase="Validated", pin=True, pods="ok", quality="good")


def test_ready_waits_for_the_gateway_to_stop_routing_to_a_canary_the_spec_went_back_from(
    simulation: DeploymentSimulation,
) -> None:
    """v3's canary behind a route, then Git pins the stable v2 again: not Ready while
    the Gateway still sends v3 its share."""
    m = simulation
    m.start(**ROUTED)
    _replay(
        m,
        lambda: _next_version(m),
        m.quiesce,
        lambda: _next_version(m),
        lambda: m.advance_time(seconds=30),
        lambda: m.pin(version="v2"),
        m.reconcile,
        m.quiesce,
    )


def test_a_switch_to_the_replica_ratio_removes_the_route(
    simulation: DeploymentSimulation,
) -> None:
    m = simulation
    m.start(**ROUTED)
    _replay(
        m,
        lambda: _next_version(m),
        lambda: m.advance_time(seconds=30),
        lambda: m.set_router(kind="ReplicaRatio"),
        lambda: m.advance_time(seconds=5),
        m.quiesce,
    )


def test_a_withdrawn_canary_serves_while_the_gateway_still_holds_its_route(
    simulation: DeploymentSimulation,
) -> None:
    """The canary's ModelVersion is deleted: its weight goes from the route at once,
    and its pods stay until the Gateway takes that route."""
    m = simulation
    m.start(**ROUTED)
    _replay(
        m,
        lambda: _next_version(m),
        lambda: m.advance_time(seconds=30),
        lambda: m.delete_version(version="v2"),
        m.reconcile,
        m.quiesce,
    )


def test_the_cooldown_counts_from_the_schedule_time_of_a_run_that_started_late(
    simulation: DeploymentSimulation,
) -> None:
    """Every 30 minutes, a 10 minute cooldown, one run at a time: the 11:00 run waits
    for the 10:30 one to end and starts at 11:25; the 11:30 run is 30 minutes after
    it by the schedule, though 5 minutes after it started."""
    m = simulation
    m.start(**{**START, "retraining": True, "release": None})
    _replay(
        m,
        lambda: m.set_retraining(
            on_drift=False, schedule="*/30 * * * *", cooldown="10m", max_runs=1
        ),
        lambda: m.advance_time_long(seconds=1800),
        lambda: m.advance_time_long(seconds=1800),
        lambda: m.advance_time_long(seconds=600),
        lambda: m.advance_time_long(seconds=600),
        lambda: m.advance_time_long(seconds=300),
        lambda: m.finish_training(outcome="Failed"),
        lambda: m.advance_time(seconds=60),
        lambda: m.finish_training(outcome="Failed"),
        lambda: m.advance_time_long(seconds=300),
    )
    assert len(m.world.trainings) == 3


def test_an_abort_with_one_replica_keeps_a_pod_answering(
    simulation: DeploymentSimulation,
) -> None:
    """Replace with one replica: v2's pod took over, then an abort. The aborted
    pod answers until v1's new pod is ready: never no pod at all."""
    m = simulation
    m.start(**{**START, "strategy": "Replace", "analysis": "10s", "release": "good", "replicas": 1})
    _replay(m, lambda: m.advance_time(seconds=10), m.abort, m.quiesce)


def test_a_switch_to_a_route_mid_rollout_keeps_capacity(simulation: DeploymentSimulation) -> None:
    """Ten pods, v2's canary at 50 % under the replica ratio, then HTTPRoute: `<name>`
    must not drop to the stable's five pods while its other five start."""
    m = simulation
    m.start(**{**START, "replicas": 10, "steps": "50@10s 100"})
    _replay(
        m, lambda: m.advance_time(seconds=10), lambda: m.set_router(kind="HTTPRoute"), m.quiesce
    )


def test_a_switch_from_replace_to_a_canary_keeps_the_new_versions_pods_until_the_stable_is_back(
    simulation: DeploymentSimulation,
) -> None:
    """Replace has moved every pod to v3 when the strategy becomes a canary whose first
    step gives v3 10 %: v3's pods may go only as the stable's become ready again."""
    m = simulation
    m.start(**{**START, "strategy": "Replace"})
    _replay(
        m,
        lambda: m.set_replicas(replicas=3),
        lambda: m.advance_time(seconds=1),
        lambda: m.pause(paused=True),
        lambda: m.new_version(
            labelled=False, phase="Validated", pin=True, pods="ok", quality="good"
        ),
        lambda: m.advance_time(seconds=10),
        lambda: m.set_steps(steps="", strategy="Canary"),
        m.quiesce,
    )


def test_a_switch_back_to_the_replica_ratio_keeps_the_canary_for_the_route_the_gateway_holds(
    simulation: DeploymentSimulation,
) -> None:
    """HTTPRoute for half a minute, then back to the replica ratio, then a new version:
    the canary Service keeps pods while the route the Gateway still holds weights it."""
    m = simulation
    m.start(**START)
    _replay(
        m,
        lambda: m.set_router(kind="HTTPRoute"),
        lambda: m.advance_time(seconds=30),
        lambda: m.set_router(kind="ReplicaRatio"),
        lambda: _next_version(m),
        m.quiesce,
    )


def test_a_switch_back_to_the_replica_ratio_after_the_canary_went_lets_its_pods_go(
    simulation: DeploymentSimulation,
) -> None:
    """v2's canary behind a route loses its ModelVersion, then the router goes back to
    the replica ratio: `<name>` selects every version's pods from then on, so the
    canary Service must not keep v2's for the route the Gateway may still hold."""
    m = simulation
    m.start(**{**START, "router": "HTTPRoute"})
    _replay(
        m,
        lambda: m.advance_time(seconds=10),
        lambda: m.delete_version(version="v2"),
        lambda: m.set_router(kind="ReplicaRatio"),
        m.quiesce,
    )


def test_a_switch_to_the_replica_ratio_keeps_the_stable_the_route_still_sends_to(
    simulation: DeploymentSimulation,
) -> None:
    """One replica, v2's canary at its one step of 100 % behind a route, then the
    replica ratio: the stable's pod stays while a route still sends requests to it."""
    m = simulation
    m.start(**{**START, "router": "HTTPRoute", "steps": "100", "analysis": "10s"})
    _replay(
        m, lambda: m.advance_time(seconds=10), lambda: m.set_router(kind="ReplicaRatio"), m.quiesce
    )


def test_a_canary_behind_a_route_keeps_its_pods_until_the_gateway_holds_its_smaller_weight(
    simulation: DeploymentSimulation,
) -> None:
    """Ten pods behind a route; v3 replaced v2 (paused, so never promoted), then the
    strategy goes back to a canary at 10 %: v3's pods may go down to one only once
    the Gateway routes by the 10 %, not while it still sends v3 everything."""
    m = simulation
    m.start(**{**START, "replicas": 10, "router": "HTTPRoute"})
    _replay(
        m,
        lambda: m.advance_time_long(seconds=120),
        lambda: m.pause(paused=True),
        lambda: _next_version(m),
        lambda: m.advance_time_long(seconds=120),
        lambda: m.set_steps(steps="", strategy="Replace"),
        lambda: m.advance_time_long(seconds=120),
        lambda: m.pause(paused=False),
        lambda: m.set_steps(steps="", strategy="Canary"),
        lambda: m.advance_time_long(seconds=120),
    )


def test_a_training_run_past_its_deadline_is_suspended_before_its_slot_is_taken_again(
    simulation: DeploymentSimulation,
) -> None:
    """Manual retrains every few hours while no TrainingRun ever finishes: each
    run past spec.retraining.runDeadline is suspended, so the runs that still
    train never exceed maxConcurrentRuns, even once status no longer keeps the
    records of the oldest ones."""
    m = simulation
    m.start(**{**START, "retraining": True})

    def hours(n: float) -> Callable[[], None]:
        return lambda: m.advance_time_long(seconds=int(n * 3600))

    _replay(
        m,
        *[m.retrain] * 5, hours(3), m.retrain, m.retrain, hours(0.5), m.retrain, m.retrain,
        hours(3), m.retrain, hours(1), hours(2 / 60), m.retrain, hours(3), hours(3), hours(3),
        m.retrain, hours(3), hours(3), hours(0.5), m.retrain, hours(1),
    )  # fmt: skip


def test_a_training_run_past_its_deadline_whose_record_status_no_longer_keeps_is_suspended(
    simulation: DeploymentSimulation,
) -> None:
    """Twelve runs at once, status keeps ten records: the two oldest, past their
    deadline, are suspended too before their slots are taken again."""
    m = simulation
    m.start(**{**START, "retraining": True})
    m.set_retraining(on_drift=False, schedule=None, cooldown="10m", max_runs=12)
    m.holds_now()
    retrain = [m.retrain, lambda: m.advance_time_long(seconds=60)]
    _replay(m, *retrain * 12, lambda: m.advance_time_long(seconds=25 * 3600), *retrain * 20)
