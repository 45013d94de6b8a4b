"""Verdicts: one per feature, then the dataset's. Pure: profile columns and
window columns in, the DriftStatus a Deployment shows out."""

from __future__ import annotations

import numpy as np

from trailboss.api.monitoring import DriftMethod, FeatureDrift, FeatureStatus, MonitoringSpec
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
