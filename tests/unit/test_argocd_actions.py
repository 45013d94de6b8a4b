"""The Argo CD resource actions on TrainingRuns, run by a real Lua 5.1 as Argo CD runs them:
the object as the global ``obj``, the script's return value as the result."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from tests.unit.test_chart import ARGOCD
from trailboss.api.trainingrun import TrainingRun
from trailboss.commands.actions import RERUN_OF

ACTIONS = ARGOCD / "actions" / "trailboss.dev_TrainingRun"


def run_lua(script: str, obj: dict[str, Any]) -> Any:
    from lupa import lua51

    lua = lua51.LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = lua.table_from(obj, recursive=True)
    return to_python(lua.execute(script))


def to_python(value: Any) -> Any:
    """Lua tables as dicts, or lists when their keys are 1..n."""
    if not hasattr(value, "items"):
        return value
    items = {k: to_python(v) for k, v in value.items()}
    if items and list(items) == list(range(1, len(items) + 1)):
        return list(items.values())
    return items


def training_run(phase: str | None = None, suspend: bool | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "trailboss.dev/v1alpha1",
        "kind": "TrainingRun",
        "metadata": {"name": "churn", "namespace": "ml", "uid": "u1", "resourceVersion": "9",
                     "labels": {"team": "a"}},
        "spec": {"model": "churn", "image": "trainer:1", "hyperparameters": {"depth": "6"},
                 "command": ["python", "train.py"]},
    }  # fmt: skip
    if suspend is not None:
        body["spec"]["suspend"] = suspend
    if phase:
        body["status"] = {"phase": phase}
    return body


def enabled(obj: dict[str, Any]) -> set[str]:
    actions = run_lua((ACTIONS / "discovery.lua").read_text(), obj)
    return {name for name, action in actions.items() if not action["disabled"]}


@pytest.mark.parametrize(
    ("phase", "suspend", "expected"),
    [
        (None, None, {"suspend", "rerun"}),
        ("Running", False, {"suspend", "rerun"}),
        ("Pending", True, {"resume", "rerun"}),
        ("Succeeded", None, {"rerun"}),
        ("Failed", True, {"rerun"}),
    ],
)
def test_discovery_offers_what_the_run_allows(
    phase: str | None, suspend: bool | None, expected: set[str]
) -> None:
    assert enabled(training_run(phase, suspend)) == expected


def test_a_run_in_a_kueue_queue_is_not_offered_suspend() -> None:
    run = training_run("Pending")
    run["spec"]["podTemplate"] = {"metadata": {"labels": {"kueue.x-k8s.io/queue-name": "a"}}}
    assert enabled(run) == {"rerun"}


@pytest.mark.parametrize(("action", "value"), [("suspend", True), ("resume", False)])
def test_suspend_and_resume_change_only_spec_suspend(action: str, value: bool) -> None:
    before = training_run("Running", not value)
    after = run_lua((ACTIONS / action / "action.lua").read_text(), before)
    assert after["spec"].pop("suspend") is value
    before["spec"].pop("suspend")
    assert after == before


def test_rerun_creates_a_valid_training_run_with_the_same_spec() -> None:
    old = training_run("Failed", suspend=True)
    (created,) = run_lua((ACTIONS / "rerun" / "action.lua").read_text(), old)
    assert created["operation"] == "create"
    run = created["resource"]
    assert re.fullmatch(r"churn-rerun-\d{14}", run["metadata"]["name"])
    assert run["metadata"]["namespace"] == "ml"
    assert run["metadata"]["labels"] == {"team": "a", RERUN_OF: "churn"}
    assert "uid" not in run["metadata"]
    assert "status" not in run
    expected = {k: v for k, v in old["spec"].items() if k != "suspend"}
    # Lua has no arrays: a list comes back as a 1..n table, which to_python restores.
    assert run["spec"] == expected
    TrainingRun.model_validate(run)  # the API accepts it


def test_rerun_names_fit_a_dns_label() -> None:
    old = training_run()
    old["metadata"]["name"] = "a" * 62 + "-b"
    (created,) = run_lua((ACTIONS / "rerun" / "action.lua").read_text(), old)
    name = created["resource"]["metadata"]["name"]
    assert len(name) <= 63
    assert re.fullmatch(r"a+-rerun-\d{14}", name)


def test_argocd_cm_patch_registers_the_actions_verbatim() -> None:
    patch = yaml.safe_load((ARGOCD / "argocd-cm-patch.yaml").read_text())
    registered = yaml.safe_load(
        patch["data"]["resource.customizations.actions.trailboss.dev_TrainingRun"]
    )
    assert registered["discovery.lua"] == (ACTIONS / "discovery.lua").read_text()
    assert {d["name"]: d["action.lua"] for d in registered["definitions"]} == {
        name: (ACTIONS / name / "action.lua").read_text() for name in ("suspend", "resume", "rerun")
    }
