"""Drift verdicts a statistician would sign: size-free effect sizes, every
category tested, robust scales, one rule at every sample size, minimum
reference sizes, exact deciles, counted infinities, one spelling per category,
and a window that ends at the check's time."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.unit.driftdata import LocalStore
from tests.unit.driftlogs import log_table, write_local
from trailboss.api.monitoring import DriftMethod, FeatureDrift, FeatureStatus, MonitoringSpec
from trailboss.drift import build, decision, job, stats, verdict
from trailboss.drift.columns import (
    CategoricalCurrent,
    NumericCurrent,
    categorical_reference,
    numeric_reference,
)

NOW = dt.datetime(2026, 5, 4, 12, 0, tzinfo=dt.UTC)


def _numeric(method: str, ref: np.ndarray, cur: np.ndarray, **spec: Any) -> FeatureDrift:
    """The verdict a user sees for one numeric feature."""
    monitoring = MonitoringSpec(method=method, **spec)
    feature = verdict.check_feature(
        monitoring, "x", numeric_reference(ref, 100_000), NumericCurrent(np.sort(cur))
    )
    status = decision.summarize(
        monitoring, [feature], model_version="v1", window_rows=cur.size, checked_at=NOW
    )
    return status.features[0]


def _categorical(
    method: str, ref: dict[str, int], cur: dict[str, int], **spec: Any
) -> FeatureDrift:
    monitoring = MonitoringSpec(method=method, **spec)
    reference = categorical_reference(list(ref), list(ref.values()))
    current = categorical_reference(list(cur), list(cur.values()))
    feature = verdict.check_feature(
        monitoring, "c", reference, CategoricalCurrent(current.categories, current.counts)
    )
    status = decision.summarize(
        monitoring, [feature], model_version="v1", window_rows=1, checked_at=NOW
    )
    return status.features[0]


# Effect sizes free of the sample sizes


@pytest.mark.parametrize(
    ("reference_rows", "current_rows"), [(50_000, 30_000), (100_000, 1_000_000), (100_000, 2_000)]
)
def test_chi_square_scores_a_half_sd_shift_alike_whatever_the_two_sizes(
    reference_rows: int, current_rows: int
) -> None:
    rng = np.random.default_rng(1)
    feature = _numeric(
        "chi-square", rng.normal(0, 1, reference_rows), rng.normal(0.5, 1, current_rows)
    )
    # Cramer's V of the two distributions, as if both sides had the same size:
    # 0.238 for the exact decile probabilities of a 0.5 sd shift.
    assert feature.score == pytest.approx(0.238, abs=0.025)
    assert feature.drifted is True


# The z-test looks at every category, or is not used


def test_z_test_sees_a_new_category_taking_a_fifth_of_the_rows() -> None:
    ref = {"a": 5000, "b": 3000, "c": 2000}
    cur = {"a": 4000, "b": 2400, "c": 1600, "new": 2000}
    feature = _categorical("z-test", ref, cur)
    assert feature.drifted is True
    assert feature.method == DriftMethod.CHI_SQUARE
    assert "z-test compares two categories" in (feature.message or "")


def test_z_test_on_a_zero_inflated_feature_sees_the_zeros_go() -> None:
    rng = np.random.default_rng(2)
    ref = np.where(rng.random(20_000) < 0.5, 0.0, rng.exponential(1.0, 20_000))
    cur = rng.exponential(1.0, 20_000)  # no zeros any more
    feature = _numeric("z-test", ref, cur)
    assert feature.drifted is True


def test_z_test_on_two_categories_is_kept_and_scored_by_size_free_phi() -> None:
    small = _categorical("z-test", {"yes": 700, "no": 300}, {"yes": 500, "no": 500})
    large = _categorical("z-test", {"yes": 700, "no": 300}, {"yes": 50_000, "no": 50_000})
    assert small.method == large.method == DriftMethod.Z_TEST
    assert small.score == pytest.approx(large.score, rel=1e-12)
    assert small.drifted is large.drifted is True


# Wasserstein on a robust, floored scale


def test_wasserstein_sees_a_heavy_tailed_feature_shifted_by_one_scale_unit() -> None:
    rng = np.random.default_rng(3)
    feature = _numeric(
        "wasserstein", rng.standard_cauchy(20_000), rng.standard_cauchy(20_000) + 1.0
    )
    assert feature.drifted is True


def test_a_constant_reference_is_checked_and_drifts_against_a_spread_window() -> None:
    rng = np.random.default_rng(4)
    feature = _numeric("wasserstein", np.full(5000, 0.3), rng.normal(5, 2, 5000))
    assert feature.status == FeatureStatus.OK
    assert feature.drifted is True


def test_rounding_noise_on_a_constant_reference_is_not_drift() -> None:
    rng = np.random.default_rng(5)
    feature = _numeric("wasserstein", np.full(50_000, 0.3), 0.3 + rng.normal(0, 1e-9, 5000))
    assert feature.drifted is False
    assert (feature.score or 0) < 0.1


def test_values_near_1e200_neither_overflow_nor_hide_a_shift() -> None:
    rng = np.random.default_rng(6)
    ref = rng.normal(1.0, 0.1, 5000) * 1e200
    cur = rng.normal(1.2, 0.1, 5000) * 1e200
    feature = _numeric("wasserstein", ref, cur)
    assert feature.score is not None
    assert math.isfinite(feature.score)
    assert feature.drifted is True


# One rule at every sample size


def test_ks_decides_the_same_just_below_and_just_above_1000_effective_rows() -> None:
    rng = np.random.default_rng(7)
    cur = rng.normal(0.2, 1, 2000)  # D about 0.08: significant, but below 0.1
    ref = rng.normal(0, 1, 2004)
    below = _numeric("ks", ref[:1998], cur, min_samples=100)  # n_eff 999.5
    above = _numeric("ks", ref, cur, min_samples=100)  # n_eff 1000.5
    assert below.drifted is above.drifted


@pytest.mark.parametrize("categorical", [False, True])
def test_auto_picks_one_method_whatever_the_reference_size(categorical: bool) -> None:
    rng = np.random.default_rng(8)
    methods = set()
    for rows in (999, 1001):
        if categorical:
            picked = rng.choice(["a", "b", "c"], rows)
            ref = {k: int((picked == k).sum()) for k in "abc"}
            methods.add(_categorical("auto", ref, {"a": 700, "b": 700, "c": 600}).method)
        else:
            methods.add(_numeric("auto", rng.normal(0, 1, rows), rng.normal(0, 1, 2000)).method)
    assert len(methods) == 1


def test_auto_does_not_use_ks_p_values_on_an_integer_feature() -> None:
    rng = np.random.default_rng(9)
    feature = _numeric("auto", rng.integers(0, 30, 800) * 1.0, rng.integers(0, 30, 2000) * 1.0)
    assert feature.method != DriftMethod.KS


# Small references


@pytest.mark.parametrize(
    "method", ["psi", "jensen-shannon", "wasserstein", "ks", "chi-square", "auto"]
)
def test_a_reference_of_15_rows_is_insufficient_not_drift(method: str) -> None:
    rng = np.random.default_rng(10)
    feature = _numeric(method, rng.normal(0, 1, 15), rng.normal(0, 1, 2000))
    assert feature.status == FeatureStatus.INSUFFICIENT_REFERENCE
    assert feature.drifted is False
    assert "15 valid rows" in (feature.message or "")


# Deciles at exact positions


@pytest.mark.parametrize("rows", range(2, 400))
def test_decile_edges_are_the_exact_order_statistics(rows: int) -> None:
    values = np.arange(rows, dtype=np.float64)
    # np.quantile(method="higher") at k/10: the value at ceil(k (n - 1) / 10).
    expected = np.unique([values[-(-k * (rows - 1) // 10)] for k in range(1, 10)])
    assert list(stats.quantile_edges(values, 10)) == list(expected)


# Missing and infinite values


def _profile(tmp_path: Path, columns: dict[str, Any]) -> Any:
    directory = tmp_path / "profile"
    directory.mkdir(exist_ok=True)
    source = tmp_path / "reference.csv"
    names = list(columns)
    rows = zip(*(columns[n] for n in names), strict=True)
    source.write_text(",".join(names) + "\n" + "\n".join(",".join(map(str, r)) for r in rows))
    build.build("s3://datasets/reference.csv", source, directory, build.ProfileOptions())
    from trailboss.drift import profile as profiles

    return profiles.read(directory)


def _run(tmp_path: Path, reference: dict[str, Any], *tables: Any) -> dict[str, Any]:
    """A whole drift check, profile and logs on local disk, ending at NOW."""
    prof = _profile(tmp_path, reference)
    assert prof.directory is not None
    objects = {
        f"s3://models/p/{name}": prof.directory / name
        for name in ("profile.json", "sample.parquet")
    }
    logs = tmp_path / "logs"
    logs.mkdir()
    for i, table in enumerate(tables):
        hour = f"s3://logs/deployment=ns.d/version=v1/date={NOW:%Y-%m-%d}/hour={NOW:%H}"
        objects[f"{hour}/part-{i}.parquet"] = write_local(table, logs, f"part-{i}.parquet")
    target = job.CheckTarget("s3://models/p", "s3://logs", "ns.d", "v1")
    spec = MonitoringSpec(window="1h", min_samples=100)
    return job.run_check(LocalStore(objects), target, spec, NOW)  # type: ignore[arg-type]


def test_infinities_are_counted_apart_from_missing_values_and_are_drift(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    values = rng.normal(0, 1, 3000)
    values[:900] = np.inf
    values[900:960] = np.nan
    result = _run(
        tmp_path,
        {"x": rng.normal(0, 1, 3000).round(4)},
        log_table(NOW - dt.timedelta(minutes=10), {"x": values}),
    )
    (x,) = result["drift"]["features"]
    assert (x["missing"], x["infinite"]) == (60, 900)
    assert "900 rows dropped: infinite" in x["message"]
    assert x["drifted"] is True  # the finite values are unchanged; 30 % overflow is not


def test_booleans_spelt_differently_by_the_reference_and_the_logs_are_the_same(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(12)
    flags = rng.random(3000) < 0.3
    result = _run(
        tmp_path,
        {"member": ["True" if f else "False" for f in flags]},
        log_table(
            NOW - dt.timedelta(minutes=10),
            {"member": ["true" if f else "false" for f in rng.random(2000) < 0.3]},
        ),
    )
    (member,) = result["drift"]["features"]
    assert member["drifted"] is False
    assert member["score"] < 0.05


def test_rows_stamped_after_the_check_are_not_in_its_window(tmp_path: Path) -> None:
    rng = np.random.default_rng(13)
    before = log_table(NOW - dt.timedelta(minutes=30), {"x": rng.normal(0, 1, 1500)})
    after = log_table(NOW + dt.timedelta(seconds=1), {"x": rng.normal(3, 1, 1500)})
    result = _run(tmp_path, {"x": rng.normal(0, 1, 3000).round(4)}, before, after)
    assert result["drift"]["windowRows"] == 1500
    assert result["drift"]["features"][0]["drifted"] is False
