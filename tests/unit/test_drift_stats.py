"""Drift statistics against scipy (and reference formulas) on random and
adversarial data: ties, constant columns, heavy tails, tiny samples."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from scipy import stats as sps
from scipy.spatial import distance

from trailboss.drift import stats

Sampler = Callable[[np.random.Generator, int], np.ndarray]

SAMPLERS: dict[str, tuple[Sampler, Sampler]] = {
    "normal-shifted": (lambda g, n: g.normal(0, 1, n), lambda g, n: g.normal(0.3, 1.2, n)),
    "ties": (lambda g, n: g.integers(0, 4, n) * 1.0, lambda g, n: g.integers(0, 5, n) * 1.0),
    "cauchy": (lambda g, n: g.standard_cauchy(n), lambda g, n: g.standard_cauchy(n) + 0.1),
    "pareto": (lambda g, n: g.pareto(1.1, n), lambda g, n: g.pareto(0.9, n)),
    "constant-both": (lambda g, n: np.full(n, 5.0), lambda g, n: np.full(n, 5.0)),
    "constant-vs-spread": (lambda g, n: np.full(n, 5.0), lambda g, n: g.normal(5, 1, n)),
    "disjoint": (lambda g, n: g.uniform(0, 1, n), lambda g, n: g.uniform(2, 3, n)),
    "rounded": (
        lambda g, n: np.round(g.normal(0, 1, n), 1),
        lambda g, n: np.round(g.normal(0, 1, n), 2),
    ),
}
SIZES = [(1, 1), (1, 7), (2, 3), (13, 29), (400, 250), (3000, 12_000), (20_000, 15_000)]


def _pair(name: str, sizes: tuple[int, int], seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ref_sampler, cur_sampler = SAMPLERS[name]
    return np.sort(ref_sampler(rng, sizes[0])), np.sort(cur_sampler(rng, sizes[1]))


@pytest.mark.parametrize("sizes", SIZES)
@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_ks_statistic_and_p_value_equal_scipy(name: str, sizes: tuple[int, int]) -> None:
    ref, cur = _pair(name, sizes)
    expected = sps.ks_2samp(ref, cur)
    assert stats.ks_statistic(ref, cur) == pytest.approx(expected.statistic, abs=1e-12)
    got = stats.ks_test(ref, cur)
    assert got.statistic == pytest.approx(expected.statistic, abs=1e-9)
    assert got.p_value == pytest.approx(expected.pvalue, abs=1e-9, rel=1e-9)


@pytest.mark.parametrize("sizes", SIZES)
@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_wasserstein_equals_scipy(name: str, sizes: tuple[int, int]) -> None:
    ref, cur = _pair(name, sizes)
    expected = sps.wasserstein_distance(ref, cur)
    assert stats.wasserstein(ref, cur) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_ks_on_large_samples_uses_the_asymptotic_distribution_like_scipy() -> None:
    rng = np.random.default_rng(3)
    ref = np.sort(rng.normal(0, 1, 100_000))
    cur = np.sort(np.round(rng.normal(0.004, 1, 300_000), 3))  # ties across and within samples
    expected = sps.ks_2samp(ref, cur)
    got = stats.ks_test(ref, cur)
    assert got.statistic == pytest.approx(expected.statistic, abs=1e-12)
    assert got.p_value == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize(
    ("ref", "cur"),
    [
        ([10, 20, 30], [12, 18, 30]),
        ([100, 0, 5, 1], [80, 3, 0, 1]),  # a category seen only on one side
        ([5, 0], [0, 5]),
        ([1_000_000, 500_000, 250], [990_000, 510_000, 300]),
        ([7, 3], [70, 31]),
    ],
)
def test_chi_square_equals_scipy_chi2_contingency_without_correction(
    ref: list[int], cur: list[int]
) -> None:
    r, c = np.array(ref), np.array(cur)
    got = stats.chi_square(r, c)
    table = np.vstack((r, c))
    table = table[:, table.sum(axis=0) > 0]
    expected = sps.chi2_contingency(table, correction=False)
    assert got.statistic == pytest.approx(expected.statistic, rel=1e-9)
    assert got.p_value == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-15)


def test_chi_square_with_one_category_has_nothing_to_test() -> None:
    got = stats.chi_square(np.array([10, 0]), np.array([4, 0]))
    expected = sps.chi2_contingency(np.array([[10], [4]]), correction=False)
    assert (got.statistic, got.p_value) == (expected.statistic, expected.pvalue) == (0.0, 1.0)


def test_cramers_v_does_not_move_with_the_sample_sizes_or_their_ratio() -> None:
    small = stats.chi_square(np.array([500, 500]), np.array([450, 550]))
    large = stats.chi_square(np.array([500_000, 500_000]), np.array([450_000, 550_000]))
    assert large.p_value is not None
    assert small.p_value is not None
    assert large.p_value < 1e-100 < small.p_value
    ref = np.array([0.5, 0.5])
    for cur in (np.array([450, 550]), np.array([45, 55]), np.array([450_000, 550_000])):
        assert stats.cramers_v(ref, stats.shares(cur)) == pytest.approx(
            0.05 / (2 * math.sqrt(0.475 * 0.525)), rel=1e-3
        )


def test_cramers_v_of_equal_sizes_is_cramers_v_of_the_counts() -> None:
    """With both rows the same size, V of the shares is scipy's V of the table."""
    ref, cur = np.array([300, 500, 200]), np.array([250, 450, 300])
    expected = sps.contingency.association(np.vstack((ref, cur)), method="cramer")
    assert stats.cramers_v(stats.shares(ref), stats.shares(cur)) == pytest.approx(expected)
    disjoint = stats.cramers_v(np.array([1.0, 0.0]), np.array([0.0, 1.0]))
    assert disjoint == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("ref", "cur"), [([30, 70], [45, 55]), ([3, 9], [9, 2]), ([500, 1], [480, 30])]
)
def test_z_test_is_the_two_by_two_chi_square(ref: list[int], cur: list[int]) -> None:
    z = stats.z_test(np.array(ref), np.array(cur))
    chi = sps.chi2_contingency(np.array([ref, cur]), correction=False)
    assert z.statistic**2 == pytest.approx(chi.statistic, rel=1e-9)
    assert z.p_value == pytest.approx(chi.pvalue, rel=1e-9)


def test_z_test_of_one_value_on_both_sides_is_no_evidence() -> None:
    assert stats.z_test(np.array([10, 0]), np.array([20, 0])).p_value == 1.0


def test_psi_textbook_worked_example() -> None:
    # Four equal reference bins; the current window moves mass to the top.
    ref = np.array([0.25, 0.25, 0.25, 0.25])
    cur = np.array([0.1, 0.2, 0.3, 0.4])
    by_hand = sum((c - r) * math.log(c / r) for r, c in zip(ref, cur, strict=True))
    assert stats.psi(ref, cur) == pytest.approx(by_hand, rel=1e-12)
    assert stats.psi(ref, cur) == pytest.approx(0.2282, abs=5e-5)
    assert stats.psi(ref, ref) == 0.0


def test_psi_counts_an_empty_bin_as_a_small_share_instead_of_infinity() -> None:
    ref, cur = np.array([0.5, 0.5, 0.0]), np.array([0.4, 0.4, 0.2])
    eps = stats.EMPTY_BIN_SHARE
    expected = 2 * (-0.1 * math.log(0.4 / 0.5)) + (0.2 - eps) * math.log(0.2 / eps)
    assert stats.psi(ref, cur) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    ("shift", "band"), [(0.0, (0.0, 0.01)), (0.5, (0.1, 0.25)), (1.0, (0.25, 2))]
)
def test_psi_of_normal_mean_shifts_on_reference_deciles(
    shift: float, band: tuple[float, float]
) -> None:
    """0.5 sd is a moderate shift (0.1-0.25), 1 sd a major one (> 0.25), and
    the sampled PSI matches the PSI of the exact bin probabilities."""
    rng = np.random.default_rng(11)
    ref = np.sort(rng.normal(0, 1, 200_000))
    cur = np.sort(rng.normal(shift, 1, 200_000))
    edges = stats.quantile_edges(ref, 10)
    got = stats.psi(
        stats.shares(stats.bin_counts(ref, edges)), stats.shares(stats.bin_counts(cur, edges))
    )
    cdf = sps.norm.cdf(
        np.concatenate(([-np.inf], sps.norm.ppf(np.arange(1, 10) / 10), [np.inf])) - shift
    )
    exact = float(np.sum((np.diff(cdf) - 0.1) * np.log(np.diff(cdf) / 0.1)))
    assert band[0] <= got < band[1]
    assert got == pytest.approx(exact, rel=0.05, abs=0.002)


def _js_by_hand(p: np.ndarray, q: np.ndarray) -> float:
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2

    def kl(a: np.ndarray, b: np.ndarray) -> float:
        return float(sum(x * math.log(x / y) for x, y in zip(a, b, strict=True) if x > 0))

    return math.sqrt((kl(p, m) + kl(q, m)) / 2)


@pytest.mark.parametrize(
    ("p", "q"),
    [([0.25] * 4, [0.1, 0.2, 0.3, 0.4]), ([1, 0, 0], [0, 0, 1]), ([0.5, 0.5], [0.5, 0.5])],
)
def test_jensen_shannon_matches_the_definition_and_scipy(p: list[float], q: list[float]) -> None:
    a, b = np.array(p), np.array(q)
    got = stats.jensen_shannon(a, b)
    assert got == pytest.approx(_js_by_hand(a, b), abs=1e-12)
    assert got == pytest.approx(distance.jensenshannon(a, b), abs=1e-12)


def test_disjoint_distributions_reach_the_jensen_shannon_maximum() -> None:
    assert stats.jensen_shannon(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == pytest.approx(
        math.sqrt(math.log(2))
    )


def test_reference_deciles_collapse_on_ties_and_count_every_row() -> None:
    values = np.sort(np.array([0.0] * 60 + [1.0] * 30 + [2.0] * 10))
    edges = stats.quantile_edges(values, 10)
    assert list(edges) == [0.0, 1.0, 2.0]
    assert list(stats.bin_counts(values, edges)) == [0, 60, 30, 10]
