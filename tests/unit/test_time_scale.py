"""`trailboss.dev/time-scale`: shorter spec durations for tests, honoured only by an
operator started for them outside a cluster."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest

from tests.unit.fakes import NOW, services
from tests.unit.test_trainingrun_reconciler import BODY
from trailboss.api.durations import (
    TIME_SCALE_ANNOTATION,
    parse_time_scale,
    spec_seconds,
    time_scale,
)
from trailboss.cli import main
from trailboss.reconcilers import trainingrun
from trailboss.settings import SettingRefused, Settings, refuse_test_settings


def test_spec_durations_pass_faster_only_within_a_scaled_reconcile() -> None:
    assert spec_seconds("10m") == 600
    with time_scale(0.25):
        assert spec_seconds("10m") == 150
        assert spec_seconds("1h30m") == 1350
    assert spec_seconds("10m") == 600


@pytest.mark.parametrize("text", ["0", "-0.5", "1.5", "fast", "nan", ""])
def test_a_scale_outside_zero_to_one_is_refused_with_the_fix(text: str) -> None:
    with pytest.raises(ValueError, match=r"not a number in \(0, 1\]; write 0.25"):
        parse_time_scale(text)


def _run_missing_its_data_for(minutes: float, scale: str | None, honoured: bool) -> str:
    """The phase of a run whose dataset has been missing for ``minutes`` of its
    ten-minute waitTimeout."""
    body: dict[str, Any] = copy.deepcopy(BODY)
    body["metadata"]["uid"] = f"uid-scale-{minutes}-{scale}-{honoured}"
    body["metadata"]["creationTimestamp"] = (NOW - dt.timedelta(minutes=minutes)).isoformat()
    if scale is not None:
        body["metadata"]["annotations"] = {TIME_SCALE_ANNOTATION: scale}
    svc, kube, _, _ = services()
    svc.settings = Settings(
        mlflow_tracking_uri="http://mlflow:5000", time_scale_annotations=honoured
    )
    trainingrun.reconcile(kube.put(body), svc)
    return str(kube.statuses[-1]["phase"])


def test_an_annotated_run_times_out_in_a_quarter_of_its_wait_where_the_operator_honours_it() -> (
    None
):
    assert _run_missing_its_data_for(2, "0.25", honoured=True) == "Pending"
    assert _run_missing_its_data_for(2.5, "0.25", honoured=True) == "Failed"


def test_the_annotation_changes_nothing_where_the_operator_does_not_honour_it() -> None:
    assert _run_missing_its_data_for(9, "0.25", honoured=False) == "Pending"
    assert _run_missing_its_data_for(9, None, honoured=True) == "Pending"
    assert _run_missing_its_data_for(9, "fast", honoured=True) == "Pending"  # left as written


def test_the_setting_is_refused_in_a_pod_and_allowed_outside() -> None:
    testing = Settings(time_scale_annotations=True)
    in_a_pod = {"KUBERNETES_SERVICE_HOST": "10.96.0.1"}
    with pytest.raises(SettingRefused, match="TRAILBOSS_TIME_SCALE_ANNOTATIONS is for tests"):
        refuse_test_settings(testing, in_a_pod)
    refuse_test_settings(testing, {})
    refuse_test_settings(Settings(), in_a_pod)


def test_the_operator_will_not_start_in_a_pod_with_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TRAILBOSS_TIME_SCALE_ANNOTATIONS", "true")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    assert main(["run", "--metrics-port", "0", "--liveness-port", "0"]) == 2
    assert "unset it" in capsys.readouterr().err
