"""Prometheus metrics of one model server, labelled with the model and version it serves.

The labels come from the server's own configuration, never from the request
URL, so a canary analysis query such as
``sum(rate(trailboss_model_requests_total{version="7",outcome="error"}[1m]))``
sees every request this version answered, whatever protocol it came in on.
Every series is exported from the start (at zero), so ``rate()`` sees the first
error instead of a series that appears already at 1.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)

OUTCOMES = ("ok", "error")
ERROR_TYPES = ("bad_input", "too_large", "model_error", "timeout", "not_ready", "internal")
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class ServerMetrics:
    """The server's series, bound once to its model and version labels."""

    def __init__(self, model: str, version: str, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        mv = ("model", "version")
        r = self.registry
        requests = Counter(
            "trailboss_model_requests",
            "Prediction requests answered, by outcome.",
            [*mv, "outcome"],
            registry=r,
        )
        errors = Counter(
            "trailboss_model_errors",
            "Failed prediction requests, by error type.",
            [*mv, "type"],
            registry=r,
        )
        self._requests = {o: requests.labels(model, version, o) for o in OUTCOMES}
        self._errors = {t: errors.labels(model, version, t) for t in ERROR_TYPES}
        self._latency = Histogram(
            "trailboss_model_request_duration_seconds",
            "Time from request to response of prediction requests.",
            mv,
            buckets=LATENCY_BUCKETS,
            registry=r,
        ).labels(model, version)
        self._predictions = Counter(
            "trailboss_model_predictions",
            "Rows predicted (a 10-row request counts 10).",
            mv,
            registry=r,
        ).labels(model, version)
        log_rows = Counter(
            "trailboss_model_log_rows",
            "Prediction log rows written to S3 or dropped.",
            [*mv, "result"],
            registry=r,
        )
        self._written = log_rows.labels(model, version, "written")
        self._dropped = log_rows.labels(model, version, "dropped")
        self._failed_batches = Counter(
            "trailboss_model_log_failed_batches",
            "Prediction log files that could not be written.",
            mv,
            registry=r,
        ).labels(model, version)
        self.buffered_rows = Gauge(
            "trailboss_model_log_buffered_rows",
            "Prediction log rows waiting to be written.",
            mv,
            registry=r,
        ).labels(model, version)
        self.load_seconds = Gauge(
            "trailboss_model_load_duration_seconds",
            "Time taken to load the model and pass the warm-up prediction.",
            mv,
            registry=r,
        ).labels(model, version)
        self.ready = Gauge(
            "trailboss_model_ready", "1 once the model is loaded and warmed up.", mv, registry=r
        ).labels(model, version)
        self.fault_injection = Gauge(
            "trailboss_model_fault_injection",
            "1 when this version is a deliberately faulty test model (never in production).",
            mv,
            registry=r,
        ).labels(model, version)

    def observe(self, seconds: float, error: str | None, rows: int) -> None:
        """One prediction request: its latency, outcome, error type and rows predicted."""
        self._latency.observe(seconds)
        if error is None:
            self._requests["ok"].inc()
            self._predictions.inc(rows)
        else:
            self._requests["error"].inc()
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


def error_type(status: int) -> str | None:
    """The error type of an HTTP status; None for success."""
    if status < 400:
        return None
    return {413: "too_large", 503: "not_ready", 504: "timeout", 500: "model_error"}.get(
        status, "bad_input" if status < 500 else "internal"
    )
