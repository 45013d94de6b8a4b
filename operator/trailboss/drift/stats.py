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
    at = np.searchsorted(cur, ref, "left")
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


def _merged_gaps(ref: Floats, cur: Floats, at: npt.NDArray[np.intp]) -> Floats:
    """Differences of neighbours in the merge of two sorted samples, the
    reference's values at positions `at`; the merge is freed on return."""
    from_cur = np.ones(ref.size + cur.size, dtype=np.bool_)
    from_cur[at] = False
    merged = np.empty(from_cur.size)
    merged[at] = ref
    merged[from_cur] = cur
    return np.subtract(merged[1:], merged[:-1])
