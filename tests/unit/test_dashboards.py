"""The chart's Grafana dashboards show every metric the project exports, name
only series that exist, and are valid PromQL (checked by a real promtool)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.test_alerts import needs_promtool, promtool
from tests.unit.test_chart import CHART, needs_helm, only, render
from tests.unit.test_metrics import exported_series

DASHBOARDS = sorted((CHART / "dashboards").glob("*.json"))

# Exported, and on purpose on no panel. Each says why.
LEFT_OFF = {
    # prometheus_client's garbage collector counters: the memory panels show what
    # matters to a pod's limit, and these have no threshold anyone acts on.
    "python_gc_objects_collected_total": "collector internals; memory panels cover it",
    "python_gc_objects_uncollectable_total": "collector internals; memory panels cover it",
    "python_gc_collections_total": "collector internals; memory panels cover it",
    # The operator's table shows its Python version from trailboss_build_info.
    "python_info": "trailboss_build_info carries the Python version",
    # Address space reserved, not used: resident memory is what limits enforce.
    "process_virtual_memory_bytes": "resident memory is what a memory limit enforces",
}
# Series Prometheus writes itself, not the project.
PROMETHEUS_OWN = {"up"}

# What Grafana puts in place of its variables, for promtool's sake.
GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__range": "6h",
    "$__interval": "1m",
    "${datasource}": "prometheus",
}
TEMPLATE_VARIABLE = re.compile(r"\$(\{(\w+)\}|(\w+))")
# PromQL words that are not series: operators and the clauses that take label lists.
KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}
LABEL_LISTS = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")


def dashboard(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for panel in board["panels"]:
        found += [panel, *panel.get("panels", [])]  # a collapsed row holds its panels
    return found


def panel_exprs() -> dict[str, str]:
    """'<dashboard>: <panel>' (numbered per target) -> PromQL."""
    exprs = {}
    for path in DASHBOARDS:
        for panel in panels(dashboard(path)):
            for target in panel.get("targets", []):
                exprs[f"{path.name}: {panel['title']} {target['refId']}"] = target["expr"]
    return exprs


def variable_selectors() -> dict[str, str]:
    """The series selector of every `label_values(<selector>, label)` variable."""
    selectors = {}
    for path in DASHBOARDS:
        for variable in dashboard(path)["templating"]["list"]:
            if variable["type"] == "query":
                found = re.fullmatch(r"label_values\((.*),\s*\w+\)", variable["definition"])
                assert found, f"{path.name}: ${variable['name']} is not label_values()"
                selectors[f"{path.name}: ${variable['name']}"] = found[1]
    return selectors


def defined_variables() -> set[str]:
    """`$name` and `${name}` of every variable the dashboards define."""
    names = {v["name"] for p in DASHBOARDS for v in dashboard(p)["templating"]["list"]}
    return {f"${name}" for name in names} | {f"${{{name}}}" for name in names}


def as_promql(expr: str) -> str:
    """``expr`` as Prometheus sees it once Grafana has put in its variables; a
    variable no dashboard defines is left in and fails the check."""
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    defined = defined_variables()
    return TEMPLATE_VARIABLE.sub(lambda m: ".*" if m[0] in defined else m[0], expr)


def series_named(expr: str) -> set[str]:
    """The series an expression reads: names outside strings, label matchers,
    ranges and label lists that no `(` follows (a function or an aggregation),
    and the names a `__name__=~"a|b"` matcher lists."""
    named = set()
    for pattern in re.findall(r'__name__=~?"([^"]*)"', expr):
        named |= set(pattern.split("|"))
    bare = re.sub(r'"[^"]*"', "", expr)
    bare = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", bare)
    bare = LABEL_LISTS.sub(" ", bare)
    words = re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()", bare)
    return named | {word for word in words if word.lower() not in KEYWORDS}


def test_every_exported_metric_is_on_a_panel_or_left_off_with_a_reason() -> None:
    shown = set().union(*map(series_named, panel_exprs().values()))
    missing = {
        family
        for family, series in exported_series().items()
        if not series & (shown | set(LEFT_OFF))
    }
    assert missing == set(), "on no panel and not in LEFT_OFF"
    exported = set().union(*exported_series().values())
    assert set(LEFT_OFF) <= exported, "LEFT_OFF names a series nobody exports"
    assert not set(LEFT_OFF) & shown, "LEFT_OFF names a series a panel shows"


def test_panels_and_variables_name_only_series_that_exist() -> None:
    exported = set().union(*exported_series().values()) | PROMETHEUS_OWN
    for where, expr in {**panel_exprs(), **variable_selectors()}.items():
        named = series_named(expr)
        assert named, f"{where}: reads no series"
        assert named <= exported, f"{where}: no such series {sorted(named - exported)}"


def test_series_named_finds_series_but_not_functions_labels_or_durations() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (kind, le) (rate(a_bucket{kind="x", y=~"a|b"}[5m])))'
        " / on (job) group_left (version) b and c offset 1h or vector(0) * time()"
        ' + count({__name__=~"d|e", namespace=~"$namespace"})'
    )
    assert series_named(expr) == {"a_bucket", "b", "c", "d", "e"}


@needs_promtool
def test_every_panel_and_variable_query_is_valid_promql(tmp_path: Path) -> None:
    """promtool has no expression checker; a rules file made of the expressions is one."""
    queries = {**panel_exprs(), **variable_selectors()}
    rules = []
    for n, (where, expr) in enumerate(queries.items()):
        promql = as_promql(expr)
        assert "$" not in promql.replace('"$1"', ""), f"{where}: unknown variable in {promql}"
        rules.append({"record": f"dashboard:query_{n}", "expr": promql})
    path = tmp_path / "dashboards.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = promtool("check", "rules", str(path), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(rules)} rules found" in result.stdout


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_each_dashboard_picks_its_data_source_and_links_the_others(path: Path) -> None:
    board = dashboard(path)
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    for variable in variables.values():
        if variable["type"] == "query":
            assert variable["datasource"]["uid"] == "${datasource}"
            assert variable["includeAll"]
            assert variable["allValue"] == ".*"
    for panel in panels(board):
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
            assert panel.get("description"), f"{panel['title']}: no description"
    assert {"type": "dashboards", "tags": ["trailboss"]}.items() <= board["links"][0].items()


def test_dashboards_have_unique_ids() -> None:
    uids = [dashboard(path)["uid"] for path in DASHBOARDS]
    assert len(set(uids)) == len(uids) == len(DASHBOARDS)
    for path in DASHBOARDS:
        ids = [panel["id"] for panel in panels(dashboard(path))]
        assert len(set(ids)) == len(ids), path.name


@needs_helm
def test_the_chart_ships_every_dashboard() -> None:
    config = only(render("--set", "grafanaDashboard.enabled=true"), "ConfigMap")
    assert config["metadata"]["labels"]["grafana_dashboard"] == "1"
    shipped = {name: json.loads(text) for name, text in config["data"].items()}
    assert shipped == {path.name: dashboard(path) for path in DASHBOARDS}
