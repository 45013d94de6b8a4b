"""Prometheus's HTTP API, as rollout analysis uses it: one instant query, one number."""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

TIMEOUT_SECONDS = 10.0


class QueryFailed(Exception):
    """The query could not be answered: Prometheus unreachable, or the query refused."""


class Prometheus:
    def query(self, base_url: str, promql: str) -> float | None:
        """The query's single value now; None when it returns no data. A result of
        several series is refused: a bound on "one of them" would mean nothing."""
        url = f"{base_url.rstrip('/')}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        try:
            with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as answer:
                body: dict[str, Any] = json.load(answer)
        except urllib.error.HTTPError as error:
            message = f"Prometheus refused the query ({error.code}): {_error(error)}"
            raise QueryFailed(message) from error
        except (OSError, ValueError) as error:
            raise QueryFailed(f"Prometheus at {base_url} is unreachable: {error}") from error
        return single_value(body)


def single_value(body: Any) -> float | None:
    """The number in an instant-query answer (a vector of at most one series, or a
    scalar); None for no data. Any other answer (several series, a range vector, a
    string, an error, a malformed body) raises QueryFailed, which analysis records as
    an Error measurement: never another exception."""
    try:
        return _read(body)
    except (LookupError, TypeError, ValueError, AttributeError) as error:
        raise QueryFailed(
            f"Prometheus's answer could not be read ({error!r}): {body!r:.200}"
        ) from error


def _read(body: Any) -> float | None:
    if body.get("status") == "error":
        raise QueryFailed(f"Prometheus could not run the query: {body.get('error')!s:.300}")
    data: dict[str, Any] = body["data"]
    kind, result = data.get("resultType"), data["result"]
    if kind == "scalar":
        return _number(result[1])
    if kind != "vector":
        raise QueryFailed(
            f"the query returned a {kind}, not one number; write an instant query that "
            "returns one series (e.g. sum(rate(x[5m])), not x[5m])"
        )
    if not result:
        return None
    if len(result) > 1:
        raise QueryFailed(
            f"the query returned {len(result)} series; aggregate it to one (e.g. sum(...))"
        )
    return _number(result[0]["value"][1])


def _number(text: str) -> float | None:
    value = float(text)
    return None if math.isnan(value) else value


def _error(error: urllib.error.HTTPError) -> str:
    try:
        return str(json.loads(error.read()).get("error", error.reason))[:300]
    except (OSError, ValueError):
        return str(error.reason)
