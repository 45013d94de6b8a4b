"""Which method measures a feature, its default threshold, and the score it
gives. Pure: reference and current columns in, a measurement out."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trailboss.api.monitoring import DriftMethod
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

FEW_VALUES = 5
"""`auto` treats a numeric column with at most this many values (in reference
and window together) as discrete, as Evidently's preset does."""

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

MIN_REFERENCE_ROWS = {
    DriftMethod.PSI: 100,
    DriftMethod.JENSEN_SHANNON: 100,
    DriftMethod.CHI_SQUARE: 100,
    DriftMethod.Z_TEST: 100,
    DriftMethod.WASSERSTEIN: 100,
    DriftMethod.KS: 50,
}
"""Fewer valid reference rows make a feature `InsufficientReference`. Binned
methods need 10 rows per decile bin on average (and the chi-square
approximation its 5 expected rows per cell); Wasserstein needs quartiles that
are not two neighbouring values; KS's p-value is exact at any size, and at 50
rows its D still moves by less than 0.2 between two samples."""

SCALE_FLOOR = 1e-6
"""Wasserstein's scale is at least this times max(1, |reference median|): a
constant reference (or one whose spread is rounding) is measured against
this floor, so a real spread drifts and rounding noise does not."""

NUMERIC_ONLY = frozenset({DriftMethod.KS, DriftMethod.WASSERSTEIN})


@dataclass(frozen=True)
class Measurement:
    method: DriftMethod
    score: float
    p_value: float
    reference_rows: int
    current_rows: int
    note: str | None = None
    """Why the method or scale is not the one asked for."""


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


def auto_method(categorical: bool, distinct: int) -> DriftMethod:
    """The method `auto` uses, by column type and number of distinct values,
    the same at every reference size: Jensen-Shannon on categories and on
    numeric features with few values, Wasserstein on the others."""
    if categorical or distinct <= FEW_VALUES:
        return DriftMethod.JENSEN_SHANNON
    return DriftMethod.WASSERSTEIN


def measure(
    method: DriftMethod, ref: Reference, cur: NumericCurrent | CategoricalCurrent
) -> Measurement:
    """Score and p-value of one resolved method; categorical features reach
    only the methods that work on counts."""
    if isinstance(ref, NumericReference) and isinstance(cur, NumericCurrent):
        if method is DriftMethod.KS:
            result = stats.ks_test(ref.sample, cur.values)
            assert result.p_value is not None
            return Measurement(
                method, result.statistic, result.p_value, ref.sample.size, cur.values.size
            )
        if method is DriftMethod.WASSERSTEIN:
            return _wasserstein(ref, cur)
    ref_counts, cur_counts = _counts(ref, cur)
    return _measure_counts(method, ref_counts, cur_counts)


def wasserstein_scale(ref: NumericReference) -> tuple[float, str | None]:
    """What W1 is divided by, and a note when it is not the robust scale: the
    interquartile range / 1.349; the standard deviation when more than half
    the rows share one value (the IQR is then 0); at least the floor."""
    spread = ref.spread if ref.spread is not None else stats.robust_scale(ref.sample)
    floor = SCALE_FLOOR * max(1.0, abs(ref.median))
    if spread > floor:
        return spread, None
    if ref.std > floor:
        return ref.std, "the reference's interquartile range is 0, so W1 is divided by its std"
    return floor, (
        f"the reference is constant, so W1 is divided by the scale floor {floor:.3g} "
        f"({SCALE_FLOOR:g} x max(1, |median|))"
    )


def _wasserstein(ref: NumericReference, cur: NumericCurrent) -> Measurement:
    """W1 over the reference's scale; the p-value is KS's (Kolmogorov's limit)
    on the same samples, which tests the same hypothesis: one distribution."""
    w1, d = stats.wasserstein_and_ks(ref.sample, cur.values)
    scale, note = wasserstein_scale(ref)
    n1, n2 = ref.sample.size, cur.values.size
    p = stats.ks_p_value_asymptotic(d, n1, n2)
    return Measurement(DriftMethod.WASSERSTEIN, w1 / scale, p, n1, n2, note)


def _counts(ref: Reference, cur: NumericCurrent | CategoricalCurrent) -> tuple[Counts, Counts]:
    """Both sides as counts: categories; for a numeric feature whose reference has
    at most DISCRETE_VALUES values, every value seen on either side (as
    Evidently does); else the reference deciles."""
    if isinstance(ref, CategoricalReference) and isinstance(cur, CategoricalCurrent):
        return aligned(ref, cur)
    assert isinstance(ref, NumericReference)
    assert isinstance(cur, NumericCurrent)
    if ref.values is not None and ref.value_counts is not None:
        cur_values, cur_counts = stats.distinct_counts(cur.values)
        union = np.union1d(ref.values, cur_values)
        return _on(union, ref.values, ref.value_counts), _on(union, cur_values, cur_counts)
    return ref.bin_counts, stats.bin_counts(cur.values, ref.edges)


def _on(union: stats.Floats, values: stats.Floats, counts: Counts) -> Counts:
    spread = np.zeros(union.size, dtype=np.int64)
    spread[np.searchsorted(union, values)] = counts
    return spread


def _measure_counts(method: DriftMethod, ref: Counts, cur: Counts) -> Measurement:
    """Scores on counts; the p-value is the chi-square test of homogeneity on
    the same counts (for two categories, the z-test's)."""
    n_ref, n_cur = int(ref.sum()), int(cur.sum())
    note = None
    seen = int(np.count_nonzero(ref + cur))
    if method is DriftMethod.Z_TEST and seen > 2:
        method = DriftMethod.CHI_SQUARE
        note = (
            f"z-test compares two categories and this feature has {seen}, "
            "so chi-square tested them all"
        )
    chi = stats.chi_square(ref, cur)
    assert chi.p_value is not None
    ref_share, cur_share = stats.shares(ref), stats.shares(cur)
    if method is DriftMethod.PSI:
        score = stats.psi(ref_share, cur_share)
    elif method is DriftMethod.JENSEN_SHANNON:
        score = stats.jensen_shannon(ref_share, cur_share)
    else:
        method = DriftMethod.Z_TEST if method is DriftMethod.Z_TEST else DriftMethod.CHI_SQUARE
        score = stats.cramers_v(ref_share, cur_share)
    return Measurement(method, score, chi.p_value, n_ref, n_cur, note)
