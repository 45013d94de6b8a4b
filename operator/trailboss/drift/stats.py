"""Two-sample drift statistics. Pure: arrays in, numbers out.

Numeric statistics take both samples already sorted, because the drift job
sorts each current column exactly once and every statistic then needs only
binary searches and one linear merge. Each one equals its scipy counterpart
(``ks_2samp``, ``wasserstein_distance``, ``chi2_contingency(correction=False)``)
to floating-point rounding; the unit tests hold them to 1e-9.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import special

Floats = npt.NDArray[np.float64]
Counts = npt.NDArray[np.int64]

EXACT_KS_MAX_ROWS = 10_000
"""Up to this many rows in the larger sample scipy computes the exact KS
distribution (its ``method="auto"``); above it, Smirnov's asymptotic one."""

EMPTY_BIN_SHARE = 1e-4
"""PSI is infinite when a bin is empty on one side; an empty bin counts as this
share instead (the convention Evidently and most PSI write-ups use), on either
side, without renormalising the other bins."""

IQR_PER_SD = 1.3489795003921634
"""Interquartile range of the standard normal distribution."""


@dataclass(frozen=True)
class TestResult:
    """A statistic and, for hypothesis tests, its p-value."""

    statistic: float
    p_value: float | None = None


def _run_bounds(values: Floats) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """For sorted values: index of the first and one past the last element of
    each run of equal values."""
    change = np.flatnonzero(values[1:] != values[:-1]) + 1
    starts = np.concatenate(([0], change))
    ends = np.concatenate((change, [values.size]))
    return starts, ends


def ks_statistic(ref: Floats, cur: Floats) -> float:
    """Two-sided KS distance sup|F_ref - F_cur| of two sorted samples.

    F_ref - F_cur rises only at reference values and falls only at current
    ones, so its maximum sits at a reference value and its minimum just before
    one: evaluating both ECDFs there (as counts over n, as scipy does) gives
    scipy's statistic bit for bit, in O(n_ref log n_cur) after the sort.
    """
    n1, n2 = ref.size, cur.size
    starts, ends = _run_bounds(ref)
    distinct = ref[starts]
    at = ends / n1 - np.searchsorted(cur, distinct, "right") / n2
    before = starts / n1 - np.searchsorted(cur, distinct, "left") / n2
    lowest = min(float(at.min()), float(before.min()))
    return max(float(np.clip(-lowest, 0.0, 1.0)), float(at.max()))


def ks_test(ref: Floats, cur: Floats) -> TestResult:
    """KS statistic and two-sided p-value, as ``scipy.stats.ks_2samp``."""
    # scipy.stats costs the Job ~75 MB of imports; only KS needs it.
    from scipy import stats as sps

    n1, n2 = ref.size, cur.size
    if max(n1, n2) <= EXACT_KS_MAX_ROWS:
        # Small samples: scipy's exact distribution is the reference itself, and cheap.
        exact = sps.ks_2samp(ref, cur)
        return TestResult(float(exact.statistic), float(exact.pvalue))
    d = ks_statistic(ref, cur)
    m, n = sorted((float(n1), float(n2)), reverse=True)
    p = float(sps.kstwo.sf(d, np.round(m * n / (m + n))))
    return TestResult(d, min(max(p, 0.0), 1.0))


def wasserstein(ref: Floats, cur: Floats) -> float:
    """Wasserstein-1 distance of two sorted samples, as ``scipy.stats.wasserstein_distance``."""
    return wasserstein_and_ks(ref, cur)[0]


def wasserstein_and_ks(ref: Floats, cur: Floats) -> tuple[float, float]:
    """Wasserstein-1 distance and KS D of two sorted samples, from one merge.

    W1 is the integral of |F_ref - F_cur| over the merged sample. The merge is
    built by placing each reference value after the current values below it
    (one search of the smaller sample), and at every merged position the
    reference ECDF's count is a running sum. Where equal values sit next to
    each other the gap is zero, so their term vanishes as in scipy's sum; the
    largest |F_ref - F_cur| over the gaps that are not zero is KS D.
    """
    n1, n2 = ref.size, cur.size
    n = n1 + n2
    at = _positions(cur, ref)
    at += np.arange(n1)
    gap = _merged_gaps(ref, cur, at)
    # F_ref - F_cur after merged position i, for i < n - 1: with r reference
    # values up to i, r / n1 - (i + 1 - r) / n2. r is a step function that
    # rises at each reference position, so it is a repeat, not a running sum.
    steps = np.diff(np.concatenate(([0], at, [n - 1])))
    apart = np.repeat(np.arange(n1 + 1, dtype=np.float64) * (1.0 / n1 + 1.0 / n2), steps)
    _minus_current_share(apart, 1.0 / n2)
    w1 = float(np.dot(apart, gap))
    if np.count_nonzero(gap) < gap.size:
        # Between equal values the ECDFs are not yet both up; |F_ref - F_cur|
        # is never negative, so a zero there leaves the maximum alone.
        np.copyto(apart, 0.0, where=gap == 0)
    return w1, float(apart.max()) if apart.size else 0.0


BLOCK = 1 << 16
"""Elements worked on at once where a whole-column temporary is not needed:
a block stays in the CPU cache, a million-row temporary goes to memory and back."""


def _minus_current_share(apart: Floats, share_per_row: float) -> None:
    """|apart[i] - (i + 1) * share_per_row| in place, a cache-sized block at a time."""
    for start in range(0, apart.size, BLOCK):
        block = apart[start : start + BLOCK]
        share = np.arange(start + 1, start + 1 + block.size, dtype=np.float64)
        share *= share_per_row
        block -= share
        np.abs(block, out=block)


SEARCH_KEYS = 1024
"""Reference values placed with one search of the current values at a time."""


def _positions(cur: Floats, ref: Floats) -> npt.NDArray[np.intp]:
    """`np.searchsorted(cur, ref, "left")` of sorted `ref`. Every chunk of the
    reference is searched for only in the stretch of `cur` between its
    neighbours' places, small enough to stay in the CPU cache, where a search
    of the whole column misses it at every step."""
    ends = np.searchsorted(cur, ref[SEARCH_KEYS - 1 :: SEARCH_KEYS], "left")
    found = np.empty(ref.size, dtype=np.intp)
    low = 0
    for chunk, start in enumerate(range(0, ref.size, SEARCH_KEYS)):
        high = int(ends[chunk]) + 1 if chunk < ends.size else cur.size
        places = found[start : start + SEARCH_KEYS]
        places[:] = np.searchsorted(cur[low:high], ref[start : start + SEARCH_KEYS], "left")
        places += low
        low = int(ends[chunk]) if chunk < ends.size else low
    return found


def _merged_gaps(ref: Floats, cur: Floats, at: npt.NDArray[np.intp]) -> Floats:
    """Differences of neighbours in the merge of two sorted samples, the
    reference's values at positions `at`; the merge is freed on return."""
    from_cur = np.ones(ref.size + cur.size, dtype=np.bool_)
    from_cur[at] = False
    merged = np.empty(from_cur.size)
    merged[at] = ref
    merged[from_cur] = cur
    return np.subtract(merged[1:], merged[:-1])


def ks_p_value_asymptotic(d: float, n1: int, n2: int) -> float:
    """Kolmogorov's limiting p-value of a two-sample KS D: P(K > D sqrt(n_eff))."""
    effective = n1 * n2 / (n1 + n2)
    return float(special.kolmogorov(d * math.sqrt(effective)))


def chi_square(ref_counts: Counts, cur_counts: Counts) -> TestResult:
    """2xk chi-square test of homogeneity, as ``chi2_contingency(correction=False)``.

    Categories seen on neither side are dropped (scipy refuses zero expected
    counts); with one category left there is nothing to test (p = 1).
    """
    table = np.vstack((ref_counts, cur_counts)).astype(np.float64)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return TestResult(0.0, 1.0)
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    statistic = float(((table - expected) ** 2 / expected).sum())
    return TestResult(statistic, float(special.chdtrc(table.shape[1] - 1, statistic)))


def cramers_v(ref_share: Floats, cur_share: Floats) -> float:
    """Cramer's V of the 2xk table of two distributions given equal weight:
    sqrt(sum (p - q)^2 / (4 m)) with m = (p + q) / 2, in [0, 1].

    V of the table of counts would be sqrt(chi2 / n), which moves with the
    two sample sizes' ratio (a 100k reference against a 2k window shrinks it
    by a factor of three); scaling both rows to the same size leaves a
    distance between the two distributions alone. For two categories it is
    |phi|, and for small shifts 1 / sqrt(2) of Cohen's w.
    """
    p = ref_share / np.sum(ref_share)
    q = cur_share / np.sum(cur_share)
    m = (p + q) / 2.0
    seen = m > 0
    return float(np.sqrt(np.sum((p[seen] - q[seen]) ** 2 / m[seen]) / 4.0))


def z_test(ref_counts: Counts, cur_counts: Counts) -> TestResult:
    """Two-proportion z-test of a feature with two categories, on the share of
    the first (Evidently's test for binary columns). Its square is the 2x2
    chi-square; with more categories it would see only one of them."""
    n1, n2 = int(ref_counts.sum()), int(cur_counts.sum())
    p1, p2 = float(ref_counts[0]) / n1, float(cur_counts[0]) / n2
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    spread = pooled * (1 - pooled) * (1 / n1 + 1 / n2)
    if spread == 0:
        return TestResult(0.0, 1.0)
    z = (p1 - p2) / math.sqrt(spread)
    return TestResult(z, float(2 * special.ndtr(-abs(z))))


def shares(counts: Counts) -> Floats:
    """Counts as shares of their total."""
    total = counts.sum()
    return counts / total if total else np.zeros(counts.size)


def psi(ref_share: Floats, cur_share: Floats) -> float:
    """Population stability index: sum (cur - ref) * ln(cur / ref) over bins."""
    r = np.where(ref_share == 0, EMPTY_BIN_SHARE, ref_share)
    c = np.where(cur_share == 0, EMPTY_BIN_SHARE, cur_share)
    return float(np.sum((c - r) * np.log(c / r)))


def jensen_shannon(ref_share: Floats, cur_share: Floats) -> float:
    """Jensen-Shannon distance (natural log, so in [0, sqrt(ln 2)]), computed as
    ``scipy.spatial.distance.jensenshannon`` does, without importing scipy.spatial."""
    p = ref_share / np.sum(ref_share)
    q = cur_share / np.sum(cur_share)
    m = (p + q) / 2.0
    divergence = np.sum(special.rel_entr(p, m)) + np.sum(special.rel_entr(q, m))
    return float(np.sqrt(divergence / 2.0))


def bin_counts(sorted_values: Floats, edges: Floats) -> Counts:
    """Counts in the bins (-inf, e1), [e1, e2), ..., [ek, inf) of sorted values."""
    cuts = np.searchsorted(sorted_values, edges, "left")
    return np.diff(np.concatenate(([0], cuts, [sorted_values.size]))).astype(np.int64)


def quantile_edges(sorted_values: Floats, bins: int) -> Floats:
    """Interior edges of `bins` equal-frequency bins of the reference. Edges are
    reference values (order statistics, never interpolated between two values),
    and ties collapse them, so a column with few values gets a bin per value.

    The k-th edge is the value at position ceil(k (n - 1) / bins), as
    ``np.quantile(method="higher")`` defines it, computed in integers: the
    float k / bins (0.30000000000000004 for k = 3) would move an edge by one
    value whenever k (n - 1) / bins is a whole number.
    """
    n = sorted_values.size
    positions = [-(-k * (n - 1) // bins) for k in range(1, bins)]
    return np.unique(sorted_values[positions])


def robust_scale(sorted_values: Floats) -> float:
    """The interquartile range divided by 1.349, so that it is the standard
    deviation of a normal sample and stays finite on heavy tails, where the
    standard deviation of a Cauchy or Pareto sample grows without bound."""
    if sorted_values.size == 0:
        return 0.0
    low, high = np.quantile(sorted_values, [0.25, 0.75])
    return float(high - low) / IQR_PER_SD


def safe_std(values: Floats) -> float:
    """Population standard deviation that does not overflow for values near the
    float64 limit (the squares of 1e200 are infinite): computed on the values
    divided by their largest magnitude."""
    if values.size == 0:
        return 0.0
    largest = float(np.max(np.abs(values)))
    if largest == 0 or not math.isfinite(largest):
        return 0.0
    return float(np.std(values / largest)) * largest


def distinct_counts(sorted_values: Floats) -> tuple[Floats, Counts]:
    """Distinct values of a sorted array and how often each occurs."""
    if sorted_values.size == 0:
        return sorted_values, np.zeros(0, dtype=np.int64)
    starts, ends = _run_bounds(sorted_values)
    return sorted_values[starts], (ends - starts).astype(np.int64)
