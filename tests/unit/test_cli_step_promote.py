"""`kubectl trailboss promote` moves a rollout ONE step, as `kubectl argo rollouts
promote` does; `promote --full` skips every remaining step. The operator reads
the step request from the promote annotation's value (`step:<stamp>`); any other
value still promotes fully, so requests written before keep their meaning."""

from __future__ import annotations

from typing import Any

from tests.unit.test_deployment_reconciler import World, _mv

PROMOTE = "trailboss.dev/promote"
STEPS = [{"weight": 10, "pause": "1h"}, {"weight": 50, "pause": "1h"}]


def _rolling() -> World:
    """v2 is the canary at its first step (10 %), holding for an hour."""
    world = World(modelVersion="v1", rollout={"steps": STEPS})
    world.add(_mv("v1", 1), _mv("v2", 2))
    world.settle()
    world.edit(modelVersion="v2")
    status = world.settle()
    assert (status["canaryVersion"], status["canaryWeight"]) == ("v2", 10)
    return world


def _request(status: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == "ManualRequest")


def test_a_step_promote_moves_the_canary_one_step_and_no_further() -> None:
    world = _rolling()
    world.annotate(PROMOTE, "step:2026-11-22T10:00:00Z")
    status = world.settle()
    assert (status["stableVersion"], status["canaryVersion"], status["canaryWeight"]) == (
        "v1",
        "v2",
        50,
    )
    assert world.servers() == {"v1": 5, "v2": 5}
    request = _request(status)
    assert (request["status"], request["reason"]) == ("True", "StepPromoted")
    assert "step 2/3" in request["message"]
    # The new step holds its own pause: the request is not replayed.
    assert world.settle(60)["canaryWeight"] == 50


def test_step_promotes_walk_the_steps_and_the_last_one_promotes() -> None:
    world = World(modelVersion="v1", rollout={"steps": [*STEPS, {"weight": 100, "pause": "1h"}]})
    world.add(_mv("v1", 1), _mv("v2", 2))
    world.settle()
    world.edit(modelVersion="v2")
    assert world.settle()["canaryWeight"] == 10
    world.annotate(PROMOTE, "step:1")
    assert world.settle()["canaryWeight"] == 50
    world.annotate(PROMOTE, "step:2")
    assert world.settle()["canaryWeight"] == 100
    world.annotate(PROMOTE, "step:3")
    status = world.settle()
    assert (status["stableVersion"], status.get("canaryVersion")) == ("v2", None)
    assert status["phase"] == "Healthy"


def test_any_other_value_still_promotes_fully() -> None:
    world = _rolling()
    world.annotate(PROMOTE, "2026-11-22T10:00:00Z")
    status = world.settle()
    assert (status["stableVersion"], status.get("canaryVersion")) == ("v2", None)
    assert _request(status)["reason"] == "Promoted"


def test_a_step_promote_with_no_rollout_is_answered_and_dropped() -> None:
    world = World(modelVersion="v1", rollout={"steps": STEPS})
    world.add(_mv("v1", 1), _mv("v2", 2))
    world.settle()
    world.annotate(PROMOTE, "step:idle")
    request = _request(world.settle())
    assert (request["status"], request["reason"]) == ("False", "NoRolloutInProgress")
    world.edit(modelVersion="v2")
    assert world.settle()["canaryWeight"] == 10  # the later rollout starts at its first step
