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

from tests.unit.test_chart import CACHE, ROOT, needs_helm, only, render

PROMTOOL = CACHE / "bin" / "promtool"
RULE_TESTS = Path(__file__).parent / "rules" / "alerts.test.yaml"
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
    assert "3 rules found" in result.stdout


@needs_helm
@needs_promtool
def test_every_alert_fires_with_its_labels_and_runbook(tmp_path: Path) -> None:
    rendered_rules(tmp_path)
    shutil.copy(RULE_TESTS, tmp_path / RULE_TESTS.name)
    result = promtool("test", "rules", RULE_TESTS.name, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


@needs_helm
def test_rule_tests_cover_every_alert() -> None:
    rule = only(render(*ALERT_LABELS), "PrometheusRule")
    alerts = {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]}
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
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
