"""Conditions keep their transition time until the status flips."""

from __future__ import annotations

import datetime as dt

from trailboss.api.conditions import find, is_true, set_condition, set_ready

T0 = dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.UTC)
T1 = T0 + dt.timedelta(minutes=5)


def test_transition_time_moves_only_when_status_flips() -> None:
    conditions = set_condition([], "Ready", False, "Running", "1 worker", 1, at=T0)
    conditions = set_condition(conditions, "Ready", False, "Running", "2 workers", 2, at=T1)
    ready = find(conditions, "Ready")
    assert ready is not None
    assert ready.last_transition_time == T0
    assert (ready.message, ready.observed_generation) == ("2 workers", 2)
    conditions = set_condition(conditions, "Ready", True, "Succeeded", "done", 2, at=T1)
    assert find(conditions, "Ready").last_transition_time == T1  # type: ignore[union-attr]
    assert is_true(conditions)


def test_conditions_are_keyed_by_type() -> None:
    conditions = set_condition([], "Registered", True, "Registered", "", 1)
    conditions = set_ready(conditions, False, "Waiting", "", 1)
    conditions = set_ready(conditions, False, "Waiting", "again", 1)
    assert [c.type for c in conditions] == ["Registered", "Ready"]
