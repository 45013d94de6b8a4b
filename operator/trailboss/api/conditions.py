"""Set and read standard conditions, keyed by type; the transition time moves
only when the status flips, so `kubectl describe` shows since-when."""

from __future__ import annotations

import datetime as dt

from trailboss.api.common import READY, Condition, ConditionStatus


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def find(conditions: list[Condition], type_: str) -> Condition | None:
    return next((c for c in conditions if c.type == type_), None)


def set_condition(
    conditions: list[Condition],
    type_: str,
    status: ConditionStatus | bool,
    reason: str,
    message: str,
    generation: int | None,
    at: dt.datetime | None = None,
) -> list[Condition]:
    """A new list with `type_` set; the others are kept in order."""
    if isinstance(status, bool):
        status = ConditionStatus.TRUE if status else ConditionStatus.FALSE
    old = find(conditions, type_)
    flipped = old is None or old.status != status
    new = Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message,
        observed_generation=generation,
        last_transition_time=(at or now()) if flipped or old is None else old.last_transition_time,
    )
    if old is None:
        return [*conditions, new]
    return [new if c.type == type_ else c for c in conditions]


def set_ready(
    conditions: list[Condition],
    ready: bool,
    reason: str,
    message: str,
    generation: int | None,
) -> list[Condition]:
    return set_condition(conditions, READY, ready, reason, message, generation)


def is_true(conditions: list[Condition], type_: str = READY) -> bool:
    found = find(conditions, type_)
    return found is not None and found.status == ConditionStatus.TRUE
