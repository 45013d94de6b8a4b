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
