"""Prometheus metrics the operator exports on ``/metrics``."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

RECONCILES = Counter(
    "trailboss_reconcile_total", "Reconciles run, by kind and result.", ["kind", "result"]
)
RECONCILE_ERRORS = Counter(
    "trailboss_reconcile_errors_total", "Reconciles that ended in an error, by kind.", ["kind"]
)
RECONCILE_SECONDS = Histogram(
    "trailboss_reconcile_duration_seconds",
    "Time spent in one reconcile, by kind.",
    ["kind"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
TRAINING_RUNS = Counter(
    "trailboss_trainingruns_total", "TrainingRuns that finished, by outcome.", ["outcome"]
)
TRAINING_SECONDS = Histogram(
    "trailboss_trainingrun_duration_seconds",
    "Wall time from Job start to completion, by outcome.",
    ["outcome"],
    buckets=(10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400),
)
MODEL_VERSIONS = Counter(
    "trailboss_modelversions_total", "ModelVersions that reached a final phase.", ["phase"]
)


def _zero_series() -> None:
    """Export every known series from the start, so `rate()` and `increase()` see
    the first failure instead of a series that appears already at 1."""
    for kind in ("TrainingRun", "ModelVersion", "Deployment"):
        RECONCILE_ERRORS.labels(kind)
    for outcome in ("succeeded", "failed"):
        TRAINING_RUNS.labels(outcome)
    for phase in ("Validated", "Rejected", "Failed"):
        MODEL_VERSIONS.labels(phase)


_zero_series()
