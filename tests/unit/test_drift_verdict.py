"""Per-feature verdicts and statuses, and the dataset verdict, on real
profiles and prediction-log files on local disk."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.unit.driftlogs import log_table, write_local
from trailboss.api.monitoring import (
    DriftCorrection,
    DriftMethod,
    FeatureDrift,
    FeatureStatus,
    MonitoringSpec,
)
from trailboss.drift import build, decision, job, window
from trailboss.drift import profile as profiles
from trailboss.drift.methods import auto_method

NOW = dt.datetime(2026, 5, 4, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("categorical", "distinct", "method"),
    [
        (False, 50, DriftMethod.WASSERSTEIN),
        (False, 6, DriftMethod.WASSERSTEIN),
        (False, 5, DriftMethod.JENSEN_SHANNON),
        (False, 2, DriftMethod.JENSEN_SHANNON),
        (True, 3, DriftMethod.JENSEN_SHANNON),
        (True, 2, DriftMethod.JENSEN_SHANNON),
    ],
)
def test_auto_picks_by_type_and_distinct_values_only(
    categorical: bool, distinct: int, method: DriftMethod
) -> None:
    assert auto_method(categorical, distinct) == method


def _profile(tmp_path: Path, columns: dict[str, Any], **options: Any) -> profiles.Profile:
    directory = tmp_path / "profile"
    directory.mkdir()
    source = tmp_path / "reference.csv"
    names = list(columns)
    rows = zip(*(columns[n] for n in names), strict=True)
    source.write_text(",".join(names) + "\n" + "\n".join(",".join(map(str, r)) for r in rows))
    build.build("s3://datasets/reference.csv", source, directory, build.ProfileOptions(**options))
    return profiles.read(directory)


def _window(tmp_path: Path, *tables: Any) -> window.Window:
    files = [write_local(t, tmp_path, f"part-{i}.parquet") for i, t in enumerate(tables)]
    start = NOW - dt.timedelta(hours=1)
    return window.Window(files=[window.open_log(f, start, NOW) for f in files])


def _check(spec: MonitoringSpec, prof: profiles.Profile, win: window.Window) -> dict[str, Any]:
    features = job.check_window(spec, prof, win)
    status = decision.summarize(
        spec, features, model_version="v1", window_rows=win.rows, checked_at=NOW
    )
    return {f.name: f for f in status.features} | {"": status}


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(5)


def test_bad_inputs_each_get_a_clear_status(tmp_path: Path, rng: np.random.Generator) -> None:
    n = 3000
    prof = _profile(
        tmp_path,
        {
            "age": rng.normal(40, 10, n).round(3),
            "income": rng.normal(50, 5, n).round(3),
            "region": rng.choice(["north", "south"], n),
            "flag": [1.0] * n,  # zero variance
            "score": rng.normal(0, 1, n).round(3),
        },
    )
    start = NOW - dt.timedelta(minutes=30)
    ages = rng.normal(40, 10, n)
    ages[:100] = np.nan
    incomes = [str(v) for v in rng.normal(50, 5, n).round(3)]
    incomes[:7] = ["n/a"] * 7  # not a number in a numeric column
    first = log_table(
        start,
        {
            "age": ages,
            "income": incomes,
            "region": rng.choice(["north", "south"], n),
            "flag": np.full(n, 2.0),
            "extra": rng.normal(0, 1, n),
        },
        errors=200,
    )
    # `score` is only in the second file, with 100 rows.
    m = 100
    second = log_table(
        start,
        {
            "age": rng.normal(40, 10, m),
            "income": rng.normal(50, 5, m),
            "region": rng.choice(["north", "south"], m),
            "flag": np.full(m, 2.0),
            "score": rng.normal(0, 1, m),
        },
    )
    spec = MonitoringSpec(features=[{"name": "flag", "method": "wasserstein"}])
    result = _check(spec, prof, _window(tmp_path, first, second))

    assert result["age"].status == FeatureStatus.INVALID_VALUES
    assert result["age"].rows == n - 200 - 100 + 100
    assert "100 rows dropped" in (result["age"].message or "")
    assert result["income"].status == FeatureStatus.INVALID_VALUES
    assert "7 rows dropped" in (result["income"].message or "")
    assert result["income"].drifted is False
    # A constant reference is measured against the scale floor: 1.0 -> 2.0 drifts.
    assert result["flag"].status == FeatureStatus.OK
    assert "scale floor" in (result["flag"].message or "")
    assert result["flag"].drifted is True
    assert result["extra"].status == FeatureStatus.NOT_IN_REFERENCE
    assert result["score"].status == FeatureStatus.INSUFFICIENT_DATA
    assert result["score"].rows == 100
    assert result["score"].drifted is False
    assert result["region"].status == FeatureStatus.OK
    assert result[""].checked_features == 4  # age, income, region, flag


def test_missing_column_and_empty_window(tmp_path: Path, rng: np.random.Generator) -> None:
    prof = _profile(tmp_path, {"age": rng.normal(0, 1, 2000), "tenure": rng.normal(0, 1, 2000)})
    start = NOW - dt.timedelta(minutes=5)
    result = _check(
        MonitoringSpec(), prof, _window(tmp_path, log_table(start, {"age": rng.normal(0, 1, 900)}))
    )
    assert result["tenure"].status == FeatureStatus.MISSING_COLUMN
    assert "input.tenure" in (result["tenure"].message or "")
    stale = log_table(NOW - dt.timedelta(hours=2), {"age": rng.normal(0, 1, 900)})
    empty = _check(MonitoringSpec(), prof, _window(tmp_path, stale))
    assert empty[""].window_rows == 0
    assert empty["age"].status == FeatureStatus.INSUFFICIENT_DATA
    assert empty[""].drifted is None


def test_reference_without_valid_values_is_insufficient_data(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    prof = _profile(tmp_path, {"age": ["nan"] * 1000, "tenure": rng.normal(0, 1, 1000)})
    win = _window(
        tmp_path,
        log_table(
            NOW - dt.timedelta(minutes=1),
            {"age": rng.normal(0, 1, 900), "tenure": rng.normal(0, 1, 900)},
        ),
    )
    age = _check(MonitoringSpec(), prof, win)["age"]
    assert age.status == FeatureStatus.INSUFFICIENT_DATA
    assert "reference has no valid values" in (age.message or "")


def test_a_feature_drifts_when_its_shift_is_both_large_and_not_noise(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    """A 0.05 sd shift is significant with 20k rows a side but far below the KS
    threshold; a 1 sd shift on 300 rows is both; an unshifted window of 40 rows
    can score above 0.1 by chance, and its p-value says so."""
    n = 20_000
    prof = _profile(tmp_path, {"x": rng.normal(0, 1, n).round(6)})
    spec = MonitoringSpec(method=DriftMethod.KS)
    start = NOW - dt.timedelta(minutes=5)
    large = _check(spec, prof, _window(tmp_path, log_table(start, {"x": rng.normal(0.05, 1, n)})))[
        "x"
    ]
    assert large.p_value < 0.05
    assert (large.decided_by, large.threshold, large.drifted) == ("score", 0.1, False)
    small = _check(
        spec.model_copy(update={"min_samples": 100}),
        prof,
        _window(tmp_path, log_table(start, {"x": rng.normal(1.0, 1, 300)})),
    )["x"]
    assert (small.decided_by, small.threshold, small.drifted) == ("score", 0.1, True)
    assert small.p_value < small.p_value_threshold == 0.05
    noise = _check(
        spec.model_copy(update={"min_samples": 10}),
        prof,
        _window(tmp_path, log_table(start, {"x": np.random.default_rng(0).normal(0, 1, 40)})),
    )["x"]
    assert noise.score > 0.1
    assert noise.p_value >= 0.05
    assert (noise.decided_by, noise.drifted) == ("pValue", False)


def test_numeric_method_on_a_categorical_feature_falls_back_to_auto(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    prof = _profile(tmp_path, {"plan": rng.choice(["a", "b", "c"], 3000)})
    win = _window(
        tmp_path,
        log_table(NOW - dt.timedelta(minutes=1), {"plan": rng.choice(["a", "b", "c"], 2000)}),
    )
    plan = _check(MonitoringSpec(method=DriftMethod.KS), prof, win)["plan"]
    assert plan.method == DriftMethod.JENSEN_SHANNON
    assert "ks needs a numeric feature" in (plan.message or "")


def test_integer_coded_category_can_be_checked_as_categorical(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    prof = _profile(tmp_path, {"store": rng.integers(1, 40, 5000)})
    codes = rng.integers(1, 40, 3000).astype(float)
    codes[:1500] = 7.0  # the logs carry float64: 7.0 must meet the reference's "7"
    win = _window(tmp_path, log_table(NOW - dt.timedelta(minutes=1), {"store": codes}))
    spec = MonitoringSpec(feature_types={"store": "categorical"})
    store = _check(spec, prof, win)["store"]
    assert store.method == DriftMethod.JENSEN_SHANNON
    assert store.drifted is True
    same = _check(
        spec,
        prof,
        _window(
            tmp_path, log_table(NOW - dt.timedelta(minutes=1), {"store": rng.integers(1, 40, 3000)})
        ),
    )
    assert same["store"].drifted is False


def test_corrections_of_p_values() -> None:
    p = [0.01, 0.04, 0.03, 0.005]
    assert decision.adjusted(p, DriftCorrection.NONE) == p
    assert decision.adjusted(p, DriftCorrection.BONFERRONI) == pytest.approx(
        [0.04, 0.16, 0.12, 0.02]
    )
    assert decision.adjusted(p, DriftCorrection.HOLM) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert decision.adjusted(p, DriftCorrection.BENJAMINI_HOCHBERG) == pytest.approx(
        [0.02, 0.04, 0.04, 0.02]
    )


def _tested(name: str, p: float) -> FeatureDrift:
    return FeatureDrift(
        name=name, method=DriftMethod.KS, score=0.2, p_value=p, threshold=0.05, decided_by="pValue"
    )


def test_correction_changes_verdicts_and_dataset_share() -> None:
    features = [_tested("a", 0.01), _tested("b", 0.04), _tested("c", 0.03), _tested("d", 0.005)]
    plain = decision.summarize(
        MonitoringSpec(), features, model_version="v", window_rows=1, checked_at=NOW
    )
    assert plain.drifted_features == 4
    holm = decision.summarize(
        MonitoringSpec(correction=DriftCorrection.HOLM),
        features,
        model_version="v",
        window_rows=1,
        checked_at=NOW,
    )
    assert [f.drifted for f in holm.features] == [True, False, False, True]
    assert holm.drift_share == 0.5
    assert holm.drifted is True  # 0.5 >= the default drift share
    strict = decision.summarize(
        MonitoringSpec(correction=DriftCorrection.HOLM, drift_share=0.75),
        features,
        model_version="v",
        window_rows=1,
        checked_at=NOW,
    )
    assert strict.drifted is False


def test_predictions_are_reported_but_not_counted_in_the_dataset_share() -> None:
    features = [
        FeatureDrift(
            name="x", method=DriftMethod.PSI, score=0.01, threshold=0.1, decided_by="score"
        ),
        FeatureDrift(
            name="output.prediction",
            method=DriftMethod.PSI,
            score=0.5,
            threshold=0.1,
            decided_by="score",
        ),
    ]
    status = decision.summarize(
        MonitoringSpec(), features, model_version="v", window_rows=9, checked_at=NOW
    )
    assert status.prediction_drifted is True
    assert (status.checked_features, status.drifted_features, status.drifted) == (1, 0, False)


def test_numeric_override_of_a_categorical_profile_is_explained(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    prof = _profile(tmp_path, {"plan": rng.choice(["a", "b"], 3000)})
    win = _window(
        tmp_path, log_table(NOW - dt.timedelta(minutes=1), {"plan": rng.choice(["a", "b"], 2000)})
    )
    plan = _check(MonitoringSpec(feature_types={"plan": "numeric"}), prof, win)["plan"]
    assert plan.status == FeatureStatus.OK
    assert "rebuild the profile with --feature-type" in (plan.message or "")
