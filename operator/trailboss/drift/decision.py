"""The dataset's verdict from its features' measurements: the p-values corrected
for testing the features together, each feature's drifted or not, and the share
of drifted features. Pure Python on purpose: the operator takes this verdict
over the partial results of a check split across pods, and the operator's image
carries neither numpy nor scipy (the drift Job's image does)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from trailboss.api.monitoring import (
    DriftCorrection,
    DriftStatus,
    FeatureDrift,
    FeatureStatus,
    MonitoringSpec,
)

OUTPUT_PREFIX = "output."
CHECKED = frozenset({FeatureStatus.OK, FeatureStatus.INVALID_VALUES})


def adjusted(p_values: list[float], correction: DriftCorrection) -> list[float]:
    """p-values adjusted for testing them together (Bonferroni, Holm step-down,
    Benjamini-Hochberg step-up), each capped at 1. The ranks of equal p-values
    keep their order."""
    m = len(p_values)
    if m == 0 or correction == DriftCorrection.NONE:
        return [float(p) for p in p_values]
    if correction == DriftCorrection.BONFERRONI:
        return [min(p * m, 1.0) for p in p_values]
    order = sorted(range(m), key=lambda i: p_values[i])
    ranked = [p_values[i] for i in order]
    steps: list[float] = []
    if correction == DriftCorrection.HOLM:
        for rank, p in enumerate(ranked):  # step-down: never below the one before
            step = p * (m - rank)
            steps.append(step if not steps else max(steps[-1], step))
    else:
        for rank in range(m, 0, -1):  # step-up: never above the one after
            step = ranked[rank - 1] * m / rank
            steps.append(step if not steps else min(steps[-1], step))
        steps.reverse()
    out = [0.0] * m
    for i, step in zip(order, steps, strict=True):
        out[i] = min(step, 1.0)
    return out


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
