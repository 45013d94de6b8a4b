"""Which method measures a feature, its default threshold, and the score it
gives. Pure: reference and current columns in, a measurement out."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trailboss.api.deployment import DriftMethod
from trailboss.drift import stats
from trailboss.drift.columns import (
    DISCRETE_VALUES,
    CategoricalCurrent,
    CategoricalReference,
    NumericCurrent,
    NumericReference,
    Reference,
    aligned,
)
from trailboss.drift.stats import Counts

SMALL_REFERENCE_ROWS = 1000
"""Evidently's preset uses p-value tests up to this many reference rows, distances above."""

FEW_VALUES = 5
"""Evidently's preset treats a column with at most this many values as discrete."""

P_VALUE_MAX_EFFECTIVE_ROWS = 1000
"""Tests decide by p-value only up to this effective sample size
n_ref*n_cur/(n_ref+n_cur); above it a negligible shift is already significant."""

DEFAULT_THRESHOLD = {
    DriftMethod.PSI: 0.1,
    DriftMethod.JENSEN_SHANNON: 0.1,
    DriftMethod.WASSERSTEIN: 0.1,
    DriftMethod.KS: 0.1,
    DriftMethod.CHI_SQUARE: 0.1,
    DriftMethod.Z_TEST: 0.1,
}
"""Score thresholds: Evidently's for PSI, Jensen-Shannon and Wasserstein; 0.1 of
KS D and of Cramer's V (|phi| for the z-test) is a small effect by Cohen's scale."""

TESTS = frozenset({DriftMethod.KS, DriftMethod.CHI_SQUARE, DriftMethod.Z_TEST})
NUMERIC_ONLY = frozenset({DriftMethod.KS, DriftMethod.WASSERSTEIN})


class ConstantReferenceError(ValueError):
    """The normed Wasserstein distance is undefined for a reference with zero variance."""


@dataclass(frozen=True)
class Measurement:
    method: DriftMethod
    score: float
    p_value: float | None
    reference_rows: int
    current_rows: int


def distinct_in_both(ref: Reference, cur: NumericCurrent | CategoricalCurrent) -> int:
    """Distinct values of reference and current together (Evidently's nunique)."""
    if isinstance(ref, CategoricalReference) and isinstance(cur, CategoricalCurrent):
        return len(set(ref.categories) | set(cur.categories))
    assert isinstance(ref, NumericReference)
    assert isinstance(cur, NumericCurrent)
    if ref.values is None:  # more than DISCRETE_VALUES distinct in the reference alone
        return DISCRETE_VALUES + 1
    seen = np.union1d(ref.values, stats.distinct_counts(cur.values)[0])
    return int(seen.size)


def auto_method(categorical: bool, reference_rows: int, distinct: int) -> DriftMethod:
    """Evidently's default per-column test, by column type, reference size and
    number of distinct values."""
    if reference_rows <= SMALL_REFERENCE_ROWS:
        if categorical or distinct <= FEW_VALUES:
            return DriftMethod.CHI_SQUARE if distinct > 2 else DriftMethod.Z_TEST
        return DriftMethod.KS
    if categorical or distinct <= FEW_VALUES:
        return DriftMethod.JENSEN_SHANNON
    return DriftMethod.WASSERSTEIN


def decides_by_p_value(method: DriftMethod, reference_rows: int, current_rows: int) -> bool:
    if method not in TESTS:
        return False
    effective = reference_rows * current_rows / (reference_rows + current_rows)
    return effective <= P_VALUE_MAX_EFFECTIVE_ROWS


def measure(
    method: DriftMethod, ref: Reference, cur: NumericCurrent | CategoricalCurrent
) -> Measurement:
    """Score (and p-value) of one resolved method; categorical features reach
    only the methods that work on counts."""
    if isinstance(ref, NumericReference) and isinstance(cur, NumericCurrent):
        if method is DriftMethod.KS:
            result = stats.ks_test(ref.sample, cur.values)
            return Measurement(
                method, result.statistic, result.p_value, ref.sample.size, cur.values.size
            )
        if method is DriftMethod.WASSERSTEIN:
            if ref.std == 0:
                raise ConstantReferenceError(method)
            score = stats.wasserstein(ref.sample, cur.values) / ref.std
            return Measurement(method, score, None, ref.sample.size, cur.values.size)
    ref_counts, cur_counts = _counts(ref, cur)
    return _measure_counts(method, ref_counts, cur_counts)


def _counts(ref: Reference, cur: NumericCurrent | CategoricalCurrent) -> tuple[Counts, Counts]:
    """Both sides as counts: categories, distinct values when there are few, else deciles."""
    if isinstance(ref, CategoricalReference) and isinstance(cur, CategoricalCurrent):
        return aligned(ref, cur)
    assert isinstance(ref, NumericReference)
    assert isinstance(cur, NumericCurrent)
    if ref.values is not None and ref.value_counts is not None:
        cur_values, cur_counts = stats.distinct_counts(cur.values)
        union = np.union1d(ref.values, cur_values)
        if union.size <= FEW_VALUES:
            return _on(union, ref.values, ref.value_counts), _on(union, cur_values, cur_counts)
    return ref.bin_counts, stats.bin_counts(cur.values, ref.edges)


def _on(union: stats.Floats, values: stats.Floats, counts: Counts) -> Counts:
    spread = np.zeros(union.size, dtype=np.int64)
    spread[np.searchsorted(union, values)] = counts
    return spread


def _measure_counts(method: DriftMethod, ref: Counts, cur: Counts) -> Measurement:
    n_ref, n_cur = int(ref.sum()), int(cur.sum())
    if method is DriftMethod.PSI:
        score = stats.psi(stats.shares(ref), stats.shares(cur))
        return Measurement(method, score, None, n_ref, n_cur)
    if method is DriftMethod.JENSEN_SHANNON:
        score = stats.jensen_shannon(stats.shares(ref), stats.shares(cur))
        return Measurement(method, score, None, n_ref, n_cur)
    if method is DriftMethod.Z_TEST:
        z = stats.z_test(ref, cur)
        phi = abs(z.statistic) / np.sqrt(n_ref + n_cur)
        return Measurement(method, float(phi), z.p_value, n_ref, n_cur)
    chi = stats.chi_square(ref, cur)
    return Measurement(
        DriftMethod.CHI_SQUARE,
        stats.cramers_v(chi.statistic, n_ref + n_cur),
        chi.p_value,
        n_ref,
        n_cur,
    )
