"""Go-style durations (`30s`, `5m`, `1h30m`), as the API's Duration fields hold them."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def duration_seconds(text: str) -> float:
    """Seconds in a duration such as `1h30m`; ValueError for anything else."""
    parts = _PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a duration like 30s, 5m or 1h30m: {text!r}")
    return sum(float(number) * _UNIT[unit] for number, unit in parts)


TIME_SCALE_ANNOTATION = "trailboss.dev/time-scale"
"""A number in (0, 1] by which an object's spec durations are multiplied, honoured
only by an operator started for tests (``TRAILBOSS_TIME_SCALE_ANNOTATIONS``): a
retraining loop whose intervals are the input of a test, not its subject, then
runs in a fraction of the time. The CRD's minimums stay what users get."""

_scale: ContextVar[float] = ContextVar("trailboss_time_scale", default=1.0)


def spec_seconds(text: str) -> float:
    """How long a spec duration lasts for the reconcile in progress: its seconds,
    times the time scale of the object being reconciled (1 but under tests)."""
    return duration_seconds(text) * _scale.get()


@contextmanager
def time_scale(scale: float) -> Iterator[None]:
    """Spec durations last ``scale`` times as long within the block."""
    token = _scale.set(scale)
    try:
        yield
    finally:
        _scale.reset(token)


def parse_time_scale(text: str) -> float:
    """The value of ``trailboss.dev/time-scale``; ValueError naming the fix otherwise."""
    try:
        scale = float(text)
    except ValueError:
        scale = math.nan
    if not 0 < scale <= 1:
        raise ValueError(
            f"{TIME_SCALE_ANNOTATION}: {text!r} is not a number in (0, 1]; write 0.25 for "
            "durations that pass four times as fast"
        )
    return scale
