"""Verdicts: one per feature, then the dataset's. Pure: profile columns and
window columns in, the DriftStatus a Deployment shows out."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import numpy as np

from trailboss.api.deployment import (
    DriftCorrection,
    DriftMethod,
    DriftStatus,
    FeatureDrift,
    FeatureStatus,
    MonitoringSpec,
)
from trailboss.drift import stats
from trailboss.drift.columns import (
    CategoricalReference,
    Current,
    NumericCurrent,
    Reference,
)
from trailboss.drift.methods import (
    DEFAULT_THRESHOLD,
    MIN_REFERENCE_ROWS,
    NUMERIC_ONLY,
    auto_method,
    distinct_in_both,
    measure,
)

OUTPUT_PREFIX = "output."
CHECKED = frozenset({FeatureStatus.OK, FeatureStatus.INVALID_VALUES})

INVALID_SHARE_THRESHOLD = 0.1
"""A feature also drifts when |phi| of its share of invalid rows (missing,
NaN, not a number, infinite) against the reference's exceeds this (and the
z-test of the two shares has p < pValueThreshold): from none to 2 % of rows."""


def requested(spec: MonitoringSpec, name: str) -> tuple[DriftMethod, float | None]:
    """The method and score threshold asked for a feature: its own, else the spec's."""
    own = next((f for f in spec.features if f.name == name), None)
    method = DriftMethod(own.method) if own and own.method else DriftMethod(spec.method)
    threshold = own.threshold if own and own.threshold is not None else spec.threshold
    return method, threshold


def not_in_reference(name: str) -> FeatureDrift:
    return FeatureDrift(
        name=name,
        status=FeatureStatus.NOT_IN_REFERENCE,
        message=f"{name} is in the prediction logs but not in the reference profile, so it "
        "is not checked; rebuild the profile from data that has it to monitor it",
    )


def missing_column(name: str, column: str) -> FeatureDrift:
    return FeatureDrift(
        name=name,
        status=FeatureStatus.MISSING_COLUMN,
        message=f"the prediction logs of this window have no column {column}; check that the "
        "model server receives this feature under this name",
    )


def insufficient(name: str, rows: int, why: str) -> FeatureDrift:
    return FeatureDrift(name=name, status=FeatureStatus.INSUFFICIENT_DATA, rows=rows, message=why)


def resolved(
    spec: MonitoringSpec, name: str, ref: Reference, cur: Current
) -> tuple[DriftMethod, float, str | None]:
    """The method that measures a feature, its score threshold, and a note when
    the method is not the one asked for."""
    method, threshold = requested(spec, name)
    categorical = isinstance(ref, CategoricalReference)
    note = None
    if method is DriftMethod.AUTO or (categorical and method in NUMERIC_ONLY):
        if method is not DriftMethod.AUTO:
            note = f"{method} needs a numeric feature; used auto's choice instead"
            threshold = None
        method = auto_method(categorical, distinct_in_both(ref, cur))
    return method, threshold or DEFAULT_THRESHOLD[method], note


def check_feature(spec: MonitoringSpec, name: str, ref: Reference, cur: Current) -> FeatureDrift:
    """Measure one feature; the verdict waits for the p-values' correction."""
    rows = cur.rows
    if ref.rows == 0:
        why = (
            "the reference has no valid values of this feature; "
            "rebuild the profile from data that has them"
        )
        return insufficient(name, rows, why)
    if rows < spec.min_samples:
        why = f"{rows} valid rows in the window, fewer than minSamples {spec.min_samples}"
        return insufficient(name, rows, why)
    method, threshold, note = resolved(spec, name, ref, cur)
    if ref.rows < MIN_REFERENCE_ROWS[method]:
        return FeatureDrift(
            name=name,
            status=FeatureStatus.INSUFFICIENT_REFERENCE,
            method=method,
            rows=rows,
            message=f"the reference has {ref.rows} valid rows of this feature, fewer than "
            f"the {MIN_REFERENCE_ROWS[method]} {method} needs; rebuild the profile from "
            "more data",
        )
    measured = measure(method, ref, cur)
    missing, infinite = _invalid(cur)
    invalid_drift = invalid_share_drifted(spec, ref, cur)
    notes = [n for n in (note, measured.note, _dropped(missing, infinite), invalid_drift) if n]
    return FeatureDrift(
        name=name,
        status=FeatureStatus.INVALID_VALUES if missing or infinite else FeatureStatus.OK,
        method=measured.method,
        score=measured.score,
        p_value=measured.p_value,
        threshold=threshold,
        p_value_threshold=spec.p_value_threshold,
        rows=rows,
        missing=missing,
        infinite=infinite,
        invalid_share_drifted=invalid_drift is not None,
        message="; ".join(notes) or None,
    )


def _invalid(cur: Current) -> tuple[int, int]:
    """Rows dropped from the window: missing or not a number, and infinite."""
    if isinstance(cur, NumericCurrent):
        return cur.invalid, cur.infinite
    return cur.invalid, 0


def _dropped(missing: int, infinite: int) -> str | None:
    parts = []
    if missing:
        parts.append(f"{missing} rows dropped: missing, NaN or not a number")
    if infinite:
        parts.append(f"{infinite} rows dropped: infinite")
    return "; ".join(parts) or None


def invalid_share_drifted(spec: MonitoringSpec, ref: Reference, cur: Current) -> str | None:
    """Why the share of invalid rows drifted, or None: |phi| of the two shares
    above INVALID_SHARE_THRESHOLD and their z-test's p below pValueThreshold."""
    missing, infinite = _invalid(cur)
    ref_counts = np.array([ref.invalid, ref.rows], dtype=np.int64)
    cur_counts = np.array([missing + infinite, cur.rows], dtype=np.int64)
    if ref_counts.sum() == 0 or cur_counts.sum() == 0:
        return None
    ref_share, cur_share = stats.shares(ref_counts), stats.shares(cur_counts)
    phi = stats.cramers_v(ref_share, cur_share)
    p_value = stats.z_test(ref_counts, cur_counts).p_value
    if phi <= INVALID_SHARE_THRESHOLD or p_value is None or p_value >= spec.p_value_threshold:
        return None
    return (
        f"the share of invalid rows moved from {ref_share[0]:.1%} in the reference to "
        f"{cur_share[0]:.1%} (|phi| {phi:.3f} > {INVALID_SHARE_THRESHOLD})"
    )


def adjusted(p_values: list[float], correction: DriftCorrection) -> list[float]:
    """p-values adjusted for testing them together (Bonferroni, Holm step-down,
    Benjamini-Hochberg step-up), each capped at 1."""
    p = np.asarray(p_values, dtype=np.float64)
    m = p.size
    if m == 0 or correction == DriftCorrection.NONE:
        return [float(v) for v in p]
    if correction == DriftCorrection.BONFERRONI:
        return [float(v) for v in np.minimum(p * m, 1.0)]
    order = np.argsort(p, kind="stable")
    ranked = p[order]
    if correction == DriftCorrection.HOLM:
        steps = np.maximum.accumulate(ranked * (m - np.arange(m)))
    else:
        steps = np.minimum.accumulate((ranked * m / np.arange(1, m + 1))[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(steps, 1.0)
    return [float(v) for v in out]


def decide(spec: MonitoringSpec, features: list[FeatureDrift]) -> list[FeatureDrift]:
    """Verdicts: a feature drifts when its score exceeds its threshold and its
    (corrected) p-value is below pValueThreshold, or when its share of invalid
    rows drifted. The score says the shift matters, the p-value that it is not
    sampling noise; one rule at every sample size."""
    tested = [i for i, f in enumerate(features) if f.status in CHECKED and f.p_value is not None]
    corrected = adjusted([features[i].p_value or 0.0 for i in tested], spec.correction)
    p_of = dict(zip(tested, corrected, strict=True))
    out = []
    for i, feature in enumerate(features):
        if feature.status not in CHECKED or feature.threshold is None:
            out.append(feature)
            continue
        large = (feature.score or 0) > feature.threshold
        significant = i not in p_of or p_of[i] < spec.p_value_threshold
        update: dict[str, object] = {
            "drifted": (large and significant) or bool(feature.invalid_share_drifted),
            "decided_by": "pValue" if large and not significant else "score",
        }
        if i in p_of:
            update |= {"p_value": p_of[i], "p_value_threshold": spec.p_value_threshold}
        out.append(feature.model_copy(update=update))
    return out


def summarize(
    spec: MonitoringSpec,
    features: Iterable[FeatureDrift],
    *,
    model_version: str,
    window_rows: int,
    checked_at: dt.datetime,
) -> DriftStatus:
    """The dataset verdict over the input features; predictions reported apart."""
    decided = decide(spec, list(features))
    inputs = [f for f in decided if f.status in CHECKED and not f.name.startswith(OUTPUT_PREFIX)]
    outputs = [f for f in decided if f.status in CHECKED and f.name.startswith(OUTPUT_PREFIX)]
    drifted = sum(f.drifted for f in inputs)
    share = drifted / len(inputs) if inputs else None
    scores = [f.score for f in decided if f.score is not None]
    return DriftStatus(
        score=max(scores) if scores else None,
        drifted=None if share is None else share >= spec.drift_share,
        drift_share=share,
        drifted_features=drifted,
        checked_features=len(inputs),
        prediction_drifted=any(f.drifted for f in outputs) if outputs else None,
        model_version=model_version,
        window_rows=window_rows,
        features=decided,
        checked_at=checked_at,
    )
