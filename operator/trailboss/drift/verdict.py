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
from trailboss.drift.columns import CategoricalReference, Current, Reference
from trailboss.drift.methods import (
    DEFAULT_THRESHOLD,
    NUMERIC_ONLY,
    ConstantReferenceError,
    auto_method,
    decides_by_p_value,
    distinct_in_both,
    measure,
)

OUTPUT_PREFIX = "output."
CHECKED = frozenset({FeatureStatus.OK, FeatureStatus.INVALID_VALUES})


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


def check_feature(spec: MonitoringSpec, name: str, ref: Reference, cur: Current) -> FeatureDrift:
    """Measure one feature; the verdict of p-value tests waits for the correction."""
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
    method, threshold = requested(spec, name)
    categorical = isinstance(ref, CategoricalReference)
    note = None
    if method is DriftMethod.AUTO or (categorical and method in NUMERIC_ONLY):
        if method is not DriftMethod.AUTO:
            note = f"{method} needs a numeric feature; used auto's choice instead"
            threshold = None
        method = auto_method(categorical, ref.rows, distinct_in_both(ref, cur))
    try:
        measured = measure(method, ref, cur)
    except ConstantReferenceError:
        return FeatureDrift(
            name=name,
            status=FeatureStatus.CONSTANT_REFERENCE,
            method=method,
            rows=rows,
            message="the reference has zero variance, so the normed Wasserstein distance is "
            "undefined; use method psi or jensen-shannon for this feature",
        )
    by_p = decides_by_p_value(method, measured.reference_rows, measured.current_rows)
    if cur.invalid:
        dropped = f"{cur.invalid} rows dropped: missing, NaN or not a number"
        note = f"{note}; {dropped}" if note else dropped
    return FeatureDrift(
        name=name,
        status=FeatureStatus.INVALID_VALUES if cur.invalid else FeatureStatus.OK,
        method=measured.method,
        score=measured.score,
        p_value=measured.p_value,
        threshold=spec.p_value_threshold if by_p else threshold or DEFAULT_THRESHOLD[method],
        decided_by="pValue" if by_p else "score",
        rows=rows,
        message=note,
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
    """Verdicts: score > threshold, or (corrected) p-value < pValueThreshold."""
    tested = [i for i, f in enumerate(features) if f.decided_by == "pValue"]
    corrected = adjusted([features[i].p_value or 0.0 for i in tested], spec.correction)
    p_of = dict(zip(tested, corrected, strict=True))
    out = []
    for i, feature in enumerate(features):
        if feature.status not in CHECKED or feature.threshold is None:
            out.append(feature)
        elif i in p_of:
            out.append(
                feature.model_copy(
                    update={"p_value": p_of[i], "drifted": p_of[i] < feature.threshold}
                )
            )
        else:
            out.append(
                feature.model_copy(update={"drifted": (feature.score or 0) > feature.threshold})
            )
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
