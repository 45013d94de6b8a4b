"""The chart's alerts, evaluated by a real promtool on synthetic series.

`make promtool` puts promtool (from Debian's prometheus package) in the cache;
`make test` does it first. The tests skip, saying so, when it is not there.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.unit.test_chart import CACHE, ROOT, Manifest, needs_helm, only, render

PROMTOOL = CACHE / "bin" / "promtool"
# Every *.test.yaml under rules/ runs against the same rendered rules.yaml.
RULE_TESTS = sorted((Path(__file__).parent / "rules").glob("*.test.yaml"))
ALERT_LABELS = ["--set", "prometheusRule.enabled=true",
                "--set", "prometheusRule.alertLabels.team=ml-platform"]  # fmt: skip

needs_promtool = pytest.mark.skipif(
    not PROMTOOL.is_file(), reason=f"no promtool at {PROMTOOL}; `make promtool` installs it"
)


def rendered_rules(tmp_path: Path) -> Path:
    rule = only(render(*ALERT_LABELS), "PrometheusRule")
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    return path


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PROMTOOL), *args], capture_output=True, text=True, cwd=cwd, timeout=120, check=False
    )


@needs_helm
@needs_promtool
def test_rendered_rules_are_valid(tmp_path: Path) -> None:
    result = promtool("check", "rules", str(rendered_rules(tmp_path)), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "8 rules found" in result.stdout


@needs_helm
@needs_promtool
def test_every_alert_fires_with_its_labels_and_runbook(tmp_path: Path) -> None:
    rendered_rules(tmp_path)
    for tests in RULE_TESTS:
        shutil.copy(tests, tmp_path / tests.name)
    result = promtool("test", "rules", *(tests.name for tests in RULE_TESTS), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (result.stdout + result.stderr).count("SUCCESS") == len(RULE_TESTS)


@needs_helm
def test_rule_tests_cover_every_alert() -> None:
    rule = only(render(*ALERT_LABELS), "PrometheusRule")
    alerts = {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]}
    tests = [test for path in RULE_TESTS for test in yaml.safe_load(path.read_text())["tests"]]
    firing = {
        case["alertname"]
        for test in tests
        for case in test["alert_rule_test"]
        if case["exp_alerts"]
    }
    assert firing == alerts


@needs_helm
def test_every_alert_links_a_runbook_section_that_exists() -> None:
    rule = only(render(*ALERT_LABELS), "PrometheusRule")
    runbooks = (ROOT / "docs" / "runbooks.md").read_text()
    anchors = {line[3:].strip().lower() for line in runbooks.splitlines() if line.startswith("## ")}
    for alert in (r for g in rule["spec"]["groups"] for r in g["rules"]):
        url = alert["annotations"]["runbook_url"]
        assert url.startswith(
            "https://github.com/trailboss-dev/trailboss/blob/main/docs/runbooks.md#"
        )
        assert url.rpartition("#")[2] in anchors, f"{alert['alert']}: no section for {url}"


def alerts(*values: str) -> dict[str, Manifest]:
    rule = only(render("--set", "prometheusRule.enabled=true", *values), "PrometheusRule")
    return {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}


@needs_helm
@pytest.mark.parametrize(
    ("key", "alert"),
    [
        ("datasetDrift", "TrailbossDatasetDrift"),
        ("driftCheckStale", "TrailbossDriftCheckStale"),
        ("retrainingStorm", "TrailbossRetrainingStorm"),
        ("rolloutStuck", "TrailbossRolloutStuck"),
        ("modelServerErrors", "TrailbossModelServerErrors"),
    ],
)
def test_each_drift_alert_can_be_turned_off_alone(key: str, alert: str) -> None:
    rest = set(alerts())
    assert set(alerts("--set", f"prometheusRule.{key}.enabled=false")) == rest - {alert}


@needs_helm
def test_drift_alert_thresholds_reach_the_rules() -> None:
    rules = alerts(
        "--set", "prometheusRule.datasetDrift.for=1h",
        "--set", "prometheusRule.driftCheckStale.after=1d2h30m15s",
        "--set", "prometheusRule.retrainingStorm.maxTriggers=5",
        "--set", "prometheusRule.retrainingStorm.window=7d",
    )  # fmt: skip
    assert rules["TrailbossDatasetDrift"]["for"] == "1h"
    assert "for 1h:" in rules["TrailbossDatasetDrift"]["annotations"]["description"]
    # 1d2h30m15s in seconds: the timestamp comparison needs a number.
    assert rules["TrailbossDriftCheckStale"]["expr"].endswith("> 95415")
    assert "more than 1d2h30m15s" in rules["TrailbossDriftCheckStale"]["annotations"]["description"]
    storm = rules["TrailbossRetrainingStorm"]
    assert "[7d]" in storm["expr"]
    assert storm["expr"].endswith("> 5")
    assert "in the last 7d, more than 5:" in storm["annotations"]["description"]


@needs_helm
def test_drift_alerts_select_the_release_and_name_the_deployments_namespace() -> None:
    """The operator's `namespace` label on these series is the Deployment's; the
    ServiceMonitor does not honor it, so Prometheus stores it as
    exported_namespace and `namespace` stays the release's."""
    objects = render("--set", "serviceMonitor.enabled=true", "--set", "prometheusRule.enabled=true")
    (endpoint,) = only(objects, "ServiceMonitor")["spec"]["endpoints"]
    assert not endpoint.get("honorLabels")
    rule = only(objects, "PrometheusRule")
    for alert in (r for g in rule["spec"]["groups"] for r in g["rules"]):
        if "drift" in alert["expr"] or "retraining" in alert["expr"]:
            assert 'namespace="trailboss"}' in alert["expr"], alert["alert"]
            assert "by (namespace, exported_namespace, deployment" in alert["expr"]
            assert "$labels.exported_namespace" in alert["annotations"]["description"]


@needs_helm
def test_rollout_and_server_alert_thresholds_reach_the_rules() -> None:
    rules = alerts(
        "--set", "prometheusRule.rolloutStuck.after=3h",
        "--set-json", "prometheusRule.modelServerErrors.ratio=0.2",
        "--set", "prometheusRule.modelServerErrors.for=10m",
    )  # fmt: skip
    assert rules["TrailbossRolloutStuck"]["for"] == "3h"
    assert rules["TrailbossModelServerErrors"]["for"] == "10m"
    assert "0.2" in rules["TrailbossModelServerErrors"]["expr"]
