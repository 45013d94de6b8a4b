"""Prometheus metrics the operator exports on ``/metrics``."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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
    "trailboss_trainingruns_total",
    "TrainingRuns that finished, by namespace, model and outcome.",
    ["namespace", "model", "outcome"],
)
TRAINING_SECONDS = Histogram(
    "trailboss_trainingrun_duration_seconds",
    "Wall time from Job start to completion, by outcome.",
    ["outcome"],
    buckets=(10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400),
)
MODEL_VERSIONS = Counter(
    "trailboss_modelversions_total",
    "ModelVersions that reached a final phase, by namespace, model and phase.",
    ["namespace", "model", "phase"],
)
TRAFFIC_WEIGHT = Gauge(
    "trailboss_deployment_traffic_weight_percent",
    "Percent of a Deployment's traffic each served version should get, by role.",
    ["namespace", "deployment", "version", "role"],
)
ROLLOUTS = Counter(
    "trailboss_rollouts_total",
    "Rollouts that ended, by result (promoted or aborted).",
    ["namespace", "deployment", "result"],
)
ANALYSIS_VALUE = Gauge(
    "trailboss_analysis_value",
    "The last value an analysis query measured.",
    ["namespace", "deployment", "query"],
)
ANALYSIS_MEASUREMENTS = Counter(
    "trailboss_analysis_measurements_total",
    "Analysis measurements, by phase (Successful, Failed, Inconclusive, Error).",
    ["namespace", "deployment", "query", "phase"],
)
TRAINING_OUTCOMES = ("succeeded", "failed")
MODEL_PHASES = ("Validated", "Rejected", "Failed")


def first_seen_trainingrun(namespace: str, model: str) -> None:
    """Export a model's outcome series at 0 once one of its runs is seen, so
    `increase()` and alerts see its first failure."""
    for outcome in TRAINING_OUTCOMES:
        TRAINING_RUNS.labels(namespace, model, outcome)


def first_seen_modelversion(namespace: str, model: str) -> None:
    for phase in MODEL_PHASES:
        MODEL_VERSIONS.labels(namespace, model, phase)


def _zero_series() -> None:
    """Export every known series from the start, so `rate()` and `increase()` see
    the first failure instead of a series that appears already at 1."""
    for kind in ("TrainingRun", "ModelVersion", "Deployment"):
        RECONCILE_ERRORS.labels(kind)
    for outcome in TRAINING_OUTCOMES:
        TRAINING_SECONDS.labels(outcome)


_zero_series()
