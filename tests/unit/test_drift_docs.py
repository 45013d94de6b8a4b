"""The drift page (docs/drift.md) states the numbers the code uses: per method its
minimum reference size and default threshold, the smoothing, the scale and its
floor, the binning, and the rules for few values and invalid rows."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from trailboss.api.monitoring import DriftMethod, MonitoringSpec
from trailboss.drift import columns, methods, stats, verdict

DRIFT_PAGE = Path(__file__).resolve().parents[2] / "docs" / "drift.md"


def _section() -> str:
    """The page up to its first subsection (drift checks in the cluster)."""
    text = DRIFT_PAGE.read_text()
    start = text.index("# Drift monitoring")
    return text[start : text.index("\n## ", start + 1)]


def _method_rows() -> dict[str, dict[str, str]]:
    """The method table, as {method: {column header: cell}}."""
    lines = [line for line in _section().splitlines() if line.startswith("| ")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows = {}
    for line in lines[2:]:
        cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip().strip("|"))]
        if cells[0].startswith("`") and len(cells) == len(header):
            rows[cells[0].strip("`")] = dict(zip(header, cells, strict=True))
    return rows


def _number(text: str) -> float:
    return float(text.replace(",", ""))


@pytest.mark.parametrize("method", [m for m in DriftMethod if m is not DriftMethod.AUTO])
def test_the_method_table_states_each_methods_minimum_reference_and_threshold(
    method: DriftMethod,
) -> None:
    row = _method_rows()[method.value]
    assert _number(row["minimum reference rows"]) == methods.MIN_REFERENCE_ROWS[method]
    assert _number(row["default threshold"]) == methods.DEFAULT_THRESHOLD[method]


def test_the_section_states_the_smoothing_scale_binning_and_defaults() -> None:
    text = " ".join(_section().split())
    spec = MonitoringSpec()
    stated = {
        "counts as a share of 0.0001": stats.EMPTY_BIN_SHARE == 0.0001,
        "interquartile range divided by 1.349": round(stats.IQR_PER_SD, 3) == 1.349,
        "never below 1e-6 \u00d7 max(1, |median|)": methods.SCALE_FLOOR == 1e-6,
        "ten equal-frequency bins": columns.PSI_BINS == 10,
        "at most 20 distinct values is compared value by value": columns.DISCRETE_VALUES == 20,
        "numeric ones with at most 5 values": methods.FEW_VALUES == 5,
        "exceeds 0.1 (from none to 2 % of rows": verdict.INVALID_SHARE_THRESHOLD == 0.1,
        "`pValueThreshold` (default 0.05)": spec.p_value_threshold == 0.05,
        "`minSamples` valid rows in the window (default 1,000)": spec.min_samples == 1000,
        "exact up to 10,000 rows": stats.EXACT_KS_MAX_ROWS == 10_000,
    }
    for sentence, holds in stated.items():
        assert sentence in text, sentence
        assert holds, sentence


def test_the_worked_numbers_in_the_section_hold() -> None:
    """A new value taking 5 % of the rows scores PSI about 0.31; a 0.5 sd shift
    scores chi-square's V 0.238 on the exact decile probabilities; none to 2 %
    invalid rows is |phi| 0.1."""
    text = " ".join(_section().split())
    assert "a new value taking 5 % of the rows scores about 0.31" in text
    ref = np.array([0.4, 0.3, 0.2, 0.1, 0.0])
    cur = np.concatenate((ref[:4] * 0.95, [0.05]))
    assert stats.psi(ref, cur) == pytest.approx(0.31, abs=0.005)
    assert "(0.238 for a 0.5 sd shift, whatever the sizes)" in text
    from scipy import stats as sps

    edges = np.concatenate(([-np.inf], sps.norm.ppf(np.arange(1, 10) / 10), [np.inf]))
    shifted = np.diff(sps.norm.cdf(edges - 0.5))
    assert stats.cramers_v(np.full(10, 0.1), shifted) == pytest.approx(0.238, abs=0.0005)
    phi = stats.cramers_v(np.array([0.0, 1.0]), np.array([0.02, 0.98]))
    assert phi == pytest.approx(verdict.INVALID_SHARE_THRESHOLD, abs=0.002)
