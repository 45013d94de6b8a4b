"""The Argo CD resource actions on the three kinds, run by a real Lua 5.1 as Argo CD runs
them: the object as the global ``obj``, the script's return value as the result. What an
action writes is then handed to the operator's reconciler, so the tests see what a user
would: the rollout moving a step, promoted, aborted, paused, resumed, a run started."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.fakes import NOW, services
from tests.unit.test_deployment_reconciler import NS, World, _mv
from tests.unit.test_modelversion_reconciler import BODY as MV_BODY
from tests.unit.test_modelversion_reconciler import _upload
from tests.unit.test_retraining import Loop
from trailboss.api.deployment import PROMOTE_ANNOTATION, PROMOTE_STEP_PREFIX
from trailboss.api.trainingrun import TrainingRun
from trailboss.commands.actions import RERUN_OF
from trailboss.reconcilers import modelversion, modelversion_deletion

ARGOCD = Path(__file__).resolve().parents[2] / "deploy" / "argocd"
ACTIONS = ARGOCD / "actions" / "trailboss.dev_TrainingRun"
DEPLOYMENT_ACTIONS = ARGOCD / "actions" / "trailboss.dev_Deployment"
MODEL_VERSION_ACTIONS = ARGOCD / "actions" / "trailboss.dev_ModelVersion"
REGISTERED = {
    "TrainingRun": ("suspend", "resume", "rerun"),
    "Deployment": ("promote", "promote-full", "abort", "pause", "resume", "retrain"),
    "ModelVersion": ("release-finalizer",),
}
STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def run_lua(script: str, obj: dict[str, Any], at: dt.datetime | None = None) -> Any:
    """The script's result; with ``at``, os.date reads that time instead of the clock."""
    from lupa import lua51

    lua = lua51.LuaRuntime(unpack_returned_tuples=True)
    if at is not None:
        lua.execute(
            "local real = os.date\n"
            f"package.loaded.os = {{date = function(f) return real(f, {int(at.timestamp())}) end}}"
        )
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


def test_a_rerun_is_not_taken_for_part_of_the_argocd_application() -> None:
    old = training_run("Failed")
    old["metadata"]["labels"]["app.kubernetes.io/instance"] = "churn"  # Argo CD's tracking
    old["metadata"]["annotations"] = {"argocd.argoproj.io/tracking-id": "churn:trailboss.dev/..."}
    (created,) = run_lua((ACTIONS / "rerun" / "action.lua").read_text(), old)
    meta = created["resource"]["metadata"]
    assert meta["labels"] == {"team": "a", RERUN_OF: "churn"}
    assert "annotations" not in meta


def test_a_rerun_of_the_longest_name_is_a_training_run_name() -> None:
    old = training_run()
    old["metadata"]["name"] = "a" * 38 + "-b"
    (created,) = run_lua((ACTIONS / "rerun" / "action.lua").read_text(), old)
    name = created["resource"]["metadata"]["name"]
    assert re.fullmatch(r"a{19}-rerun-\d{14}", name)
    TrainingRun.model_validate(created["resource"])  # its name rule included


@pytest.mark.parametrize("kind", sorted(REGISTERED))
def test_argocd_cm_patch_registers_the_actions_verbatim(kind: str) -> None:
    patch = yaml.safe_load((ARGOCD / "argocd-cm-patch.yaml").read_text())
    registered = yaml.safe_load(
        patch["data"][f"resource.customizations.actions.trailboss.dev_{kind}"]
    )
    folder = ARGOCD / "actions" / f"trailboss.dev_{kind}"
    assert registered["discovery.lua"] == (folder / "discovery.lua").read_text()
    assert {d["name"]: d["action.lua"] for d in registered["definitions"]} == {
        name: (folder / name / "action.lua").read_text() for name in REGISTERED[kind]
    }
    offered = run_lua((folder / "discovery.lua").read_text(), {"metadata": {"name": "x"}})
    assert set(offered) == set(REGISTERED[kind])  # every action offered is defined


# ------------------------------------------------------------------ Deployment


T0 = dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.UTC)
STEPS = [{"weight": 10, "pause": "1h"}, {"weight": 50, "pause": "1h"}]


def deployment_action(world: World, action: str, at: dt.datetime = T0) -> dict[str, Any]:
    """Run ``action`` on the Deployment as stored; store what it returns, as Argo CD
    does, and return it."""
    stored = world.kube.objects[("Deployment", NS, "churn")]
    script = (DEPLOYMENT_ACTIONS / action / "action.lua").read_text()
    after: dict[str, Any] = run_lua(script, stored, at)
    assert after["spec"] == stored["spec"], "an action never writes the spec"
    stored["metadata"] = after["metadata"]
    return after


def offered(obj: dict[str, Any], folder: Path = DEPLOYMENT_ACTIONS) -> set[str]:
    actions = run_lua((folder / "discovery.lua").read_text(), obj)
    return {name for name, action in actions.items() if not action["disabled"]}


def rolling() -> World:
    """v2 is the canary at its first step (10 %), holding for an hour."""
    world = World(modelVersion="v1", rollout={"steps": STEPS})
    world.add(_mv("v1", 1), _mv("v2", 2))
    world.settle()
    world.edit(modelVersion="v2")
    status = world.settle()
    assert (status["canaryVersion"], status["canaryWeight"]) == ("v2", 10)
    return world


def current(world: World) -> dict[str, Any]:
    return world.kube.objects[("Deployment", NS, "churn")]


def test_a_deployment_serving_one_version_is_offered_pause_only() -> None:
    world = World(modelVersion="v1", rollout={"steps": STEPS})
    world.add(_mv("v1", 1))
    world.settle()
    assert offered(current(world)) == {"pause"}


def test_a_deployment_rolling_out_is_offered_promote_abort_and_pause() -> None:
    assert offered(current(rolling())) == {"promote", "promote-full", "abort", "pause"}


def test_a_paused_deployment_is_offered_resume_instead_of_pause() -> None:
    world = rolling()
    deployment_action(world, "pause")
    assert offered(current(world)) == {"promote", "promote-full", "abort", "resume"}


def test_a_deployment_with_a_retraining_template_is_offered_retrain() -> None:
    loop = Loop()
    loop.reconcile()
    assert offered(loop.kube.objects[("Deployment", NS, "churn")]) == {"pause", "retrain"}


def test_promote_moves_the_rollout_one_step() -> None:
    world = rolling()
    after = deployment_action(world, "promote")
    value = after["metadata"]["annotations"][PROMOTE_ANNOTATION]
    assert value == f"{PROMOTE_STEP_PREFIX}2026-11-22T10:00:00Z"
    status = world.settle()
    assert (status["stableVersion"], status["canaryVersion"], status["canaryWeight"]) == (
        "v1",
        "v2",
        50,
    )
    deployment_action(world, "promote", T0 + dt.timedelta(minutes=1))  # a new request
    status = world.settle()
    assert (status["stableVersion"], status.get("canaryVersion")) == ("v2", None)


def test_promote_full_skips_every_remaining_step() -> None:
    world = rolling()
    after = deployment_action(world, "promote-full")
    assert STAMP.fullmatch(after["metadata"]["annotations"]["trailboss.dev/promote"])
    status = world.settle()
    assert (status["stableVersion"], status.get("canaryVersion")) == ("v2", None)
    assert status["phase"] == "Healthy"
    assert world.settle(60)["stableVersion"] == "v2"


def test_abort_returns_traffic_to_stable() -> None:
    world = rolling()
    after = deployment_action(world, "abort")
    assert STAMP.fullmatch(after["metadata"]["annotations"]["trailboss.dev/abort"])
    status = world.settle()
    assert (status["phase"], status["abortedVersion"], status["stableVersion"]) == (
        "Degraded",
        "v2",
        "v1",
    )
    assert status.get("canaryVersion") is None


def test_pause_holds_the_step_and_resume_lets_it_go_on() -> None:
    world = rolling()
    deployment_action(world, "pause")
    status = world.settle(2 * 3600)  # past the step's pause: held all the same
    assert (status["phase"], status["canaryWeight"]) == ("Paused", 10)
    after = deployment_action(world, "resume")
    assert "trailboss.dev/paused" not in (after["metadata"].get("annotations") or {})
    status = world.settle()  # the step's hour is over: on to the next
    assert (status["phase"], status["canaryWeight"]) == ("Progressing", 50)


def test_resume_keeps_the_other_annotations() -> None:
    world = rolling()
    current(world)["metadata"]["annotations"] = {"team": "a", "trailboss.dev/paused": "true"}
    after = deployment_action(world, "resume")
    assert after["metadata"]["annotations"] == {"team": "a"}


def test_retrain_starts_a_training_run_once_per_request() -> None:
    loop = Loop()
    loop.reconcile()
    stored = loop.kube.objects[("Deployment", NS, "churn")]
    script = (DEPLOYMENT_ACTIONS / "retrain" / "action.lua").read_text()
    stored["metadata"] = run_lua(script, stored, T0)["metadata"]
    loop.reconcile()
    assert len(loop.runs()) == 1
    loop.reconcile(60)
    assert len(loop.runs()) == 1  # the same request is not acted on twice


# ---------------------------------------------------------------- ModelVersion


def model_version(deleting: bool, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "churn-v2", "namespace": NS}
    if deleting:
        meta["deletionTimestamp"] = "2026-11-22T10:00:00Z"
    if annotations is not None:
        meta["annotations"] = annotations
    return {"apiVersion": "trailboss.dev/v1alpha1", "kind": "ModelVersion", "metadata": meta,
            "spec": {"model": "churn", "artifactUri": "s3://m/churn"}}  # fmt: skip


@pytest.mark.parametrize(
    ("deleting", "annotations", "expected"),
    [
        (False, None, set()),
        (True, None, {"release-finalizer"}),
        (True, {"team": "a"}, {"release-finalizer"}),
        (True, {"trailboss.dev/release-finalizer": "true"}, set()),
    ],
)
def test_release_finalizer_is_offered_while_a_deletion_waits(
    deleting: bool, annotations: dict[str, str] | None, expected: set[str]
) -> None:
    assert offered(model_version(deleting, annotations), MODEL_VERSION_ACTIONS) == expected


def test_release_finalizer_lets_a_held_deletion_go() -> None:
    svc, kube, tracking, storage = services()
    _upload(storage)
    modelversion.reconcile(kube.put(MV_BODY), svc)
    held = kube.current(MV_BODY)
    held["metadata"]["deletionTimestamp"] = NOW.isoformat()
    held["metadata"]["annotations"] = {"team": "a"}
    tracking.down = True
    assert offered(held, MODEL_VERSION_ACTIONS) == {"release-finalizer"}
    with pytest.raises(modelversion_deletion.FinalizerBlocked):
        modelversion_deletion.finalize(held, svc)
    script = (MODEL_VERSION_ACTIONS / "release-finalizer" / "action.lua").read_text()
    released = run_lua(script, held)
    assert released["metadata"]["annotations"] == {
        "team": "a",
        "trailboss.dev/release-finalizer": "true",
    }
    assert released["spec"] == held["spec"]
    assert "released" in modelversion_deletion.finalize(released, svc)
    assert offered(released, MODEL_VERSION_ACTIONS) == set()
