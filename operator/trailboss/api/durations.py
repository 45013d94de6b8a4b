"""Go-style durations (`30s`, `5m`, `1h30m`), as the API's Duration fields hold them."""

from __future__ import annotations

import re

_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def duration_seconds(text: str) -> float:
    """Seconds in a duration such as `1h30m`; ValueError for anything else."""
    parts = _PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a duration like 30s, 5m or 1h30m: {text!r}")
    return sum(float(number) * _UNIT[unit] for number, unit in parts)
