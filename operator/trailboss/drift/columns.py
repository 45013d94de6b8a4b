"""One column of reference or current data, in the compact form the checks need."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trailboss.drift.stats import (
    Counts,
    Floats,
    bin_counts,
    distinct_counts,
    quantile_edges,
    robust_scale,
    safe_std,
)

PSI_BINS = 10
"""Numeric features are binned into the reference's deciles for PSI and
Jensen-Shannon: the textbook PSI binning its 0.1 / 0.25 rules of thumb were
calibrated on."""

DISCRETE_VALUES = 20
"""A numeric reference column with at most this many distinct values keeps
their exact counts, so a column with few values can be compared value by value."""


@dataclass(frozen=True)
class NumericReference:
    """A numeric reference column: a sorted sample for KS and Wasserstein,
    exact moments and decile counts of the whole column."""

    sample: Floats
    """Sorted, without NaN; the whole column when it fits the sample size."""
    rows: int
    """Valid (non-NaN) rows of the whole column."""
    std: float
    """Population standard deviation of the whole column (Wasserstein's norm)."""
    edges: Floats
    """Interior decile edges; bins are (-inf, e1), [e1, e2), ..., [ek, inf)."""
    bin_counts: Counts
    """Rows of the whole column in each bin."""
    values: Floats | None = None
    """Distinct values, when there are at most DISCRETE_VALUES."""
    value_counts: Counts | None = None
    """Rows per distinct value."""
    spread: float | None = None
    """Interquartile range / 1.349 of the whole column (Wasserstein's scale);
    None in profiles written before it was recorded (then taken from the sample)."""
    median: float = 0.0
    """Median of the whole column (sets the floor of the scale)."""
    invalid: int = 0
    """Rows without a valid value: missing, NaN, not a number or infinite."""


@dataclass(frozen=True)
class CategoricalReference:
    """A categorical reference column: rows per category."""

    categories: tuple[str, ...]
    counts: Counts
    rows: int
    invalid: int = 0
    """Rows without a value."""


Reference = NumericReference | CategoricalReference


@dataclass(frozen=True)
class NumericCurrent:
    """The current window's valid values of a numeric feature, sorted."""

    values: Floats
    invalid: int = 0
    """Rows dropped: missing, NaN or not a number."""
    infinite: int = 0
    """Rows dropped: +inf or -inf (an overflow upstream, counted apart)."""

    @property
    def rows(self) -> int:
        return int(self.values.size)


@dataclass(frozen=True)
class CategoricalCurrent:
    """The current window's rows per category."""

    categories: tuple[str, ...]
    counts: Counts
    invalid: int = 0
    """Rows dropped: missing values."""

    @property
    def rows(self) -> int:
        return int(self.counts.sum())


Current = NumericCurrent | CategoricalCurrent


def sorted_current(values: Floats) -> NumericCurrent:
    """The valid values of a window column, sorted in place (`values` is
    consumed). The sort puts -inf first and +inf then NaN last, so the valid
    values are the stretch between: found by three binary searches instead
    of a filtering pass and a copy of the column."""
    values.sort()
    first_finite = int(np.searchsorted(values, -np.inf, "right"))
    first_inf = int(np.searchsorted(values, np.inf, "left"))
    first_nan = int(np.searchsorted(values, np.nan, "left"))
    infinite = first_finite + (first_nan - first_inf)
    return NumericCurrent(values[first_finite:first_inf], values.size - first_nan, infinite)


def numeric_reference(values: Floats, sample_size: int, seed: int = 0) -> NumericReference:
    """Profile a numeric column (NaN and infinities dropped). Above `sample_size` rows the
    sample is a seeded uniform sample without replacement, so a profile is
    reproducible."""
    clean = np.sort(values[np.isfinite(values)])
    invalid = int(values.size - clean.size)
    if clean.size == 0:
        empty = np.zeros(0)
        return NumericReference(
            empty, 0, 0.0, empty, np.zeros(1, dtype=np.int64), spread=0.0, invalid=invalid
        )
    sample = clean
    if clean.size > sample_size:
        picked = np.random.default_rng(seed).choice(clean.size, sample_size, replace=False)
        sample = clean[np.sort(picked)]
    edges = quantile_edges(clean, PSI_BINS)
    distinct, counts = distinct_counts(clean)
    few = distinct.size <= DISCRETE_VALUES
    return NumericReference(
        sample=sample,
        rows=int(clean.size),
        std=safe_std(clean),
        edges=edges,
        bin_counts=bin_counts(clean, edges),
        values=distinct if few else None,
        value_counts=counts if few else None,
        spread=robust_scale(clean),
        median=float(clean[(clean.size - 1) // 2]),
        invalid=invalid,
    )


BOOLEAN_SPELLINGS = {"true": "true", "false": "false"}
"""Booleans as every source writes them: a CSV read by pandas has `True`, a
prediction log `true`; both are the category `true`."""


def category_spelling(label: str) -> str:
    """One spelling per category whatever the source: booleans in lower case."""
    return BOOLEAN_SPELLINGS.get(label.strip().lower(), label)


def categorical_reference(
    categories: list[str], counts: list[int], invalid: int = 0
) -> CategoricalReference:
    """Profile a categorical column from its category counts (nulls excluded),
    merging the spellings of one category."""
    merged: dict[str, int] = {}
    for category, count in zip(categories, counts, strict=True):
        label = category_spelling(category)
        merged[label] = merged.get(label, 0) + int(count)
    order = sorted(merged)
    return CategoricalReference(
        categories=tuple(order),
        counts=np.array([merged[c] for c in order], dtype=np.int64),
        rows=int(sum(counts)),
        invalid=invalid,
    )


def category_label(value: float) -> str:
    """A number as a category: integral values without the `.0`, so `1` in a
    CSV reference and `1.0` in a float64 prediction log are the same category."""
    if np.isfinite(value) and float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def as_categorical(ref: NumericReference) -> CategoricalReference:
    """A numeric reference treated as categorical (a feature-type override):
    exact counts when it has few values, else the sample's."""
    if ref.values is not None and ref.value_counts is not None:
        values, counts = ref.values, ref.value_counts
    else:
        values, counts = distinct_counts(ref.sample)
    labels = [category_label(v) for v in values]
    return categorical_reference(labels, [int(c) for c in counts], ref.invalid)


def numeric_current_as_categorical(cur: NumericCurrent) -> CategoricalCurrent:
    """Current numeric values as categories, labelled like the reference's."""
    values, counts = distinct_counts(cur.values)
    ref = categorical_reference([category_label(v) for v in values], [int(c) for c in counts])
    return CategoricalCurrent(ref.categories, ref.counts, cur.invalid + cur.infinite)


def aligned(ref: CategoricalReference, cur: CategoricalCurrent) -> tuple[Counts, Counts]:
    """Counts of both sides over the union of their categories, reference first."""
    union = list(ref.categories) + sorted(set(cur.categories) - set(ref.categories))
    index = {c: i for i, c in enumerate(union)}
    ref_counts = np.zeros(len(union), dtype=np.int64)
    ref_counts[: len(ref.categories)] = ref.counts
    cur_counts = np.zeros(len(union), dtype=np.int64)
    for category, count in zip(cur.categories, cur.counts, strict=True):
        cur_counts[index[category]] += int(count)
    return ref_counts, cur_counts
