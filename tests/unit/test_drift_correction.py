"""The p-value corrections in pure Python (the operator merges a split check's
results without numpy) give numpy's vectorised results to the bit, ties included."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from trailboss.api.monitoring import DriftCorrection
from trailboss.drift.decision import adjusted


def numpy_adjusted(p_values: list[float], correction: DriftCorrection) -> list[float]:
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


P_VALUE = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(
    p_values=st.lists(st.one_of(P_VALUE, st.sampled_from([0.0, 0.01, 0.05, 1.0])), max_size=40),
    correction=st.sampled_from(list(DriftCorrection)),
)
def test_the_corrections_are_numpys_to_the_bit(
    p_values: list[float], correction: DriftCorrection
) -> None:
    assert adjusted(p_values, correction) == numpy_adjusted(p_values, correction)


def test_holm_and_benjamini_hochberg_on_a_worked_example() -> None:
    p = [0.01, 0.04, 0.03, 0.005]
    assert adjusted(p, DriftCorrection.HOLM) == [0.03, 0.06, 0.06, 0.02]
    assert adjusted(p, DriftCorrection.BENJAMINI_HOCHBERG) == [0.02, 0.04, 0.04, 0.02]
