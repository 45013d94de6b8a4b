"""Prometheus metrics of one model server, labelled with the model and version it serves.

The labels come from the server's own configuration, never from the request
URL, so a canary analysis query such as
``sum(rate(trailboss_model_requests_total{version="7",outcome="error"}[1m]))``
sees every request this version failed, whatever protocol it came in on. A
request the client got wrong (any 4xx answer: malformed, an unreadable
Content-Type, input the model's signature forbids, too large) counts as
``outcome="bad_input"``, never as ``error``, so a client's mistake cannot abort a
good version.
Every series is exported from the start (at zero), so ``rate()`` sees the first
error instead of a series that appears already at 1.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)

# No `<name>_created` series beside each counter and histogram: nothing reads
# them, and they would double the series Prometheus scrapes from every pod.
disable_created_metrics()  # type: ignore[no-untyped-call]

OUTCOMES = ("ok", "bad_input", "error")
CLIENT_ERRORS = frozenset({"bad_input", "too_large"})
ERROR_TYPES = ("bad_input", "too_large", "model_error", "timeout", "not_ready", "internal")
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class ServerMetrics:
    """The server's series, bound once to its model and version labels."""

    def __init__(self, model: str, version: str, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self._model_version = (model, version)
        requests = self._family(
            Counter,
            "requests",
            "Prediction requests answered, by outcome: ok, bad_input (4xx), error (5xx).",
            "outcome",
        )
        errors = self._family(
            Counter, "errors", "Failed prediction requests, by error type.", "type"
        )
        log_rows = self._family(
            Counter, "log_rows", "Prediction log rows written to S3 or dropped.", "result"
        )
        self._requests = {o: requests.labels(model, version, o) for o in OUTCOMES}
        self._errors = {t: errors.labels(model, version, t) for t in ERROR_TYPES}
        self._written = log_rows.labels(model, version, "written")
        self._dropped = log_rows.labels(model, version, "dropped")
        self._latency = Histogram(
            "trailboss_model_request_duration_seconds",
            "Time from request to response of prediction requests.",
            ["model", "version"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        ).labels(model, version)
        self._predictions = self._one(
            Counter, "predictions", "Rows predicted (a 10-row request counts 10)."
        )
        self._failed_batches = self._one(
            Counter, "log_failed_batches", "Prediction log files that could not be written."
        )
        self.buffered_rows = self._one(
            Gauge, "log_buffered_rows", "Prediction log rows waiting to be written."
        )
        self.load_seconds = self._one(
            Gauge,
            "load_duration_seconds",
            "Time taken to load the model and pass the warm-up prediction.",
        )
        self.ready = self._one(Gauge, "ready", "1 once the model is loaded and warmed up.")
        self.fault_injection = self._one(
            Gauge,
            "fault_injection",
            "1 when this version is a deliberately faulty test model (never in production).",
        )

    def _family(self, kind: type[Any], name: str, help_text: str, label: str) -> Any:
        """A ``trailboss_model_<name>`` family with one label besides model and version."""
        return kind(
            f"trailboss_model_{name}",
            help_text,
            ["model", "version", label],
            registry=self.registry,
        )

    def _one(self, kind: type[Any], name: str, help_text: str) -> Any:
        """The one ``trailboss_model_<name>`` series of this model and version."""
        family = kind(
            f"trailboss_model_{name}", help_text, ["model", "version"], registry=self.registry
        )
        return family.labels(*self._model_version)

    def observe(self, seconds: float, error: str | None, rows: int) -> None:
        """One prediction request: its latency, outcome, error type and rows predicted."""
        self._latency.observe(seconds)
        if error is None:
            self._requests["ok"].inc()
            self._predictions.inc(rows)
        else:
            self._requests["bad_input" if error in CLIENT_ERRORS else "error"].inc()
            self._errors[error if error in self._errors else "internal"].inc()

    def track_buffer(self, rows: Callable[[], int]) -> None:
        self.buffered_rows.set_function(lambda: float(rows()))

    # LogCounters, for the prediction logger.
    def rows_written(self, n: int) -> None:
        self._written.inc(n)

    def rows_dropped(self, n: int) -> None:
        self._dropped.inc(n)

    def batch_failed(self) -> None:
        self._failed_batches.inc()


ERROR_OF_STATUS = {413: "too_large", 503: "not_ready", 504: "timeout", 500: "model_error"}


def error_type(status: int) -> str | None:
    """The error type of an HTTP status; None for success."""
    if status < 400:
        return None
    return ERROR_OF_STATUS.get(status, "bad_input" if status < 500 else "internal")
