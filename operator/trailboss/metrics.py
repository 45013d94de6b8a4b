"""Prometheus metrics the operator exports on ``/metrics``."""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import importlib.metadata
import platform
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

import trailboss

if TYPE_CHECKING:
    from trailboss.api.monitoring import DriftStatus

# No `<name>_created` series beside each counter and histogram: nothing reads
# them, and they would double the series every scrape stores.
disable_created_metrics()  # type: ignore[no-untyped-call]

BUILD_INFO = Gauge(
    "trailboss_build_info",
    "Always 1: the operator's version and what it runs on, as labels.",
    ["version", "python_version", "kopf_version"],
)
# Not `trailboss_trainingruns` and so on: prometheus_client names a Counter's family
# without `_total`, so those names belong to the outcome counters below.
OBJECTS = Gauge(
    "trailboss_objects",
    "Trailboss objects by kind, namespace, model and phase (status.phase; empty until set).",
    ["kind", "namespace", "model", "phase"],
)

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
_VERSION = ["namespace", "deployment", "model_version"]
_FEATURE = [*_VERSION, "feature"]
DRIFT_SCORE = Gauge(
    "trailboss_drift_score",
    "Drift score of a feature in the last check (its method's scale, see status.drift).",
    _FEATURE,
)
DRIFT_DETECTED = Gauge(
    "trailboss_drift_detected", "1 when the feature drifted in the last check.", _FEATURE
)
DRIFT_SHARE = Gauge(
    "trailboss_drift_share", "Share of checked features that drifted in the last check.", _VERSION
)
DATASET_DRIFT = Gauge(
    "trailboss_dataset_drift",
    "1 when the last check found dataset drift (drifted share >= spec.monitoring.driftShare).",
    _VERSION,
)
DRIFT_WINDOW_ROWS = Gauge(
    "trailboss_drift_window_rows", "Predictions in the last check's window.", _VERSION
)
DRIFT_LAST_CHECK = Gauge(
    "trailboss_drift_last_check_timestamp_seconds",
    "When the last drift check completed (Unix time).",
    _VERSION,
)
DRIFT_CHECKS = Counter(
    "trailboss_drift_checks_total",
    "Drift checks completed, by result (the DriftMonitoring condition's reason).",
    ["namespace", "deployment", "result"],
)
DRIFT_CHECK_SECONDS = Histogram(
    "trailboss_drift_check_duration_seconds",
    "Time from a drift check Job's creation until its result (or failure) was recorded, "
    "by outcome (Completed, Failed).",
    ["namespace", "deployment", "outcome"],
    buckets=(5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600),
)
RETRAINING_TRIGGERS = Counter(
    "trailboss_retraining_triggers_total",
    "Retraining runs started, by reason (Drift, Schedule, Manual).",
    ["namespace", "deployment", "reason"],
)
LAST_RETRAINING = Gauge(
    "trailboss_last_retraining_timestamp_seconds",
    "When the last retraining run was started (Unix time).",
    ["namespace", "deployment"],
)
RETRAINING_REASONS = ("Drift", "Schedule", "Manual")
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


_drift_series: dict[tuple[str, str], set[tuple[tuple[str, ...], bool]]] = {}
_drift_lock = threading.Lock()


def export_drift(namespace: str, deployment: str, drift: DriftStatus | None) -> None:
    """Replace a Deployment's drift series with those of its last check; None
    removes them (monitoring off, Deployment gone)."""
    with _drift_lock:
        old = _drift_series.pop((namespace, deployment), set())
        new: set[tuple[tuple[str, ...], bool]] = set()
        if drift is not None and drift.model_version and drift.checked_at is not None:
            version = (namespace, deployment, drift.model_version)
            if drift.drift_share is not None:
                DRIFT_SHARE.labels(*version).set(drift.drift_share)
            if drift.drifted is not None:
                DATASET_DRIFT.labels(*version).set(1 if drift.drifted else 0)
            DRIFT_WINDOW_ROWS.labels(*version).set(drift.window_rows or 0)
            DRIFT_LAST_CHECK.labels(*version).set(drift.checked_at.timestamp())
            new.add((version, False))
            for feature in drift.features:
                if feature.score is None:
                    continue  # not checked (missing, too few rows): no score to show
                labels: tuple[str, ...] = (*version, feature.name)
                DRIFT_SCORE.labels(*labels).set(feature.score)
                DRIFT_DETECTED.labels(*labels).set(1 if feature.drifted else 0)
                new.add((labels, True))
        for stale, per_feature in old - new:
            gauges = (DRIFT_SCORE, DRIFT_DETECTED) if per_feature else (
                DRIFT_SHARE, DATASET_DRIFT, DRIFT_WINDOW_ROWS, DRIFT_LAST_CHECK)  # fmt: skip
            for gauge in gauges:
                with contextlib.suppress(KeyError):
                    gauge.remove(*stale)
        if new:
            _drift_series[(namespace, deployment)] = new


_traffic_series: dict[tuple[str, str], set[tuple[str, str]]] = {}
_traffic_lock = threading.Lock()


def export_traffic(namespace: str, deployment: str, weights: dict[tuple[str, str], int]) -> None:
    """Replace a Deployment's traffic series with ``weights`` by (version, role):
    a series not in it goes (a retired version, a canary now promoted)."""
    with _traffic_lock:
        old = _traffic_series.pop((namespace, deployment), set())
        for version, role in old - set(weights):
            with contextlib.suppress(KeyError):
                TRAFFIC_WEIGHT.remove(namespace, deployment, version, role)
        for (version, role), weight in weights.items():
            TRAFFIC_WEIGHT.labels(namespace, deployment, version, role).set(weight)
        if weights:
            _traffic_series[(namespace, deployment)] = set(weights)


_ROLLOUT_SERIES: tuple[tuple[Gauge | Counter | Histogram, tuple[str, ...]], ...] = (
    (ANALYSIS_VALUE, ("query",)),
    (ANALYSIS_MEASUREMENTS, ("query", "phase")),
    (ROLLOUTS, ("result",)),
    (DRIFT_CHECKS, ("result",)),
    (DRIFT_CHECK_SECONDS, ("outcome",)),
)


def forget_deployment(namespace: str, deployment: str) -> None:
    """The Deployment is gone: its traffic, analysis, rollout and drift check series go too."""
    export_traffic(namespace, deployment, {})
    for collector, rest in _ROLLOUT_SERIES:
        for labels in _series_of(collector, rest, namespace, deployment):
            with contextlib.suppress(KeyError):
                collector.remove(namespace, deployment, *labels)


def _series_of(
    collector: Gauge | Counter | Histogram, rest: tuple[str, ...], namespace: str, deployment: str
) -> set[tuple[str, ...]]:
    """The values of labels ``rest`` of the series ``collector`` holds for one Deployment."""
    found = set()
    for family in collector.collect():
        for sample in family.samples:
            labels = sample.labels
            if (labels.get("namespace"), labels.get("deployment")) == (namespace, deployment):
                found.add(tuple(labels[name] for name in rest))
    return found


def first_seen_retraining(namespace: str, deployment: str) -> None:
    """Zeros from the first look at a Deployment that retrains, so `increase()`
    counts its first trigger."""
    for known in RETRAINING_REASONS:
        RETRAINING_TRIGGERS.labels(namespace, deployment, known)


def retraining_triggered(namespace: str, deployment: str, reason: str, at: dt.datetime) -> None:
    first_seen_retraining(namespace, deployment)
    RETRAINING_TRIGGERS.labels(namespace, deployment, reason).inc()
    LAST_RETRAINING.labels(namespace, deployment).set(at.timestamp())


Group = tuple[str, str, str]
"""(kind, namespace, model): the series of one group share every label but the phase."""


class PhaseCounts:
    """How many objects are in each phase, kept from one entry per object, so an
    object that changes phase moves from one count to the other and a deleted
    one leaves. The operator rebuilds it after a restart as it reconciles every
    object. A group exports every phase of its kind, 0 included, while it has
    objects, and nothing once the last one is gone."""

    def __init__(self, gauge: Gauge) -> None:
        self._gauge = gauge
        self._lock = threading.Lock()
        self._objects: dict[str, tuple[Group, str]] = {}
        self._counts: dict[Group, collections.Counter[str]] = {}
        self._phases: dict[str, frozenset[str]] = {}
        self._exported: dict[Group, set[str]] = {}

    def observe(self, uid: str, group: Group, phase: str, phases: Iterable[str]) -> None:
        """The object ``uid`` of ``group`` is in ``phase``; ``phases`` are its kind's."""
        with self._lock:
            self._phases.setdefault(group[0], frozenset(phases))
            before = self._objects.get(uid)
            if before == (group, phase):
                return
            self._objects[uid] = (group, phase)
            self._counts.setdefault(group, collections.Counter())[phase] += 1
            if before is not None:
                self._counts[before[0]][before[1]] -= 1
                self._export(before[0])
            self._export(group)

    def forget(self, uid: str) -> None:
        with self._lock:
            before = self._objects.pop(uid, None)
            if before is not None:
                self._counts[before[0]][before[1]] -= 1
                self._export(before[0])

    def _export(self, group: Group) -> None:
        counts = self._counts.pop(group, collections.Counter())
        exported = self._exported.pop(group, set())
        counted = {phase for phase, count in counts.items() if count > 0}
        wanted = set(self._phases.get(group[0], ())) | counted if counted else set()
        for phase in exported - wanted:
            with contextlib.suppress(KeyError):
                self._gauge.remove(*group, phase)
        for phase in wanted:
            self._gauge.labels(*group, phase).set(counts[phase])
        if counted:
            self._counts[group] = +counts  # unary plus drops the phases at 0
            self._exported[group] = wanted


object_phases = PhaseCounts(OBJECTS)


def _build_info() -> None:
    BUILD_INFO.labels(
        trailboss.__version__, platform.python_version(), importlib.metadata.version("kopf")
    ).set(1)


def _zero_series() -> None:
    """Export every known series from the start, so `rate()` and `increase()` see
    the first failure instead of a series that appears already at 1."""
    for kind in ("TrainingRun", "ModelVersion", "Deployment"):
        RECONCILE_ERRORS.labels(kind)
    for outcome in TRAINING_OUTCOMES:
        TRAINING_SECONDS.labels(outcome)


_build_info()
_zero_series()
