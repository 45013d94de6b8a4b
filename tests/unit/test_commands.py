"""The kubectl plugin's pure parts: kind names, the tree, health, rerun, log lines."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from trailboss.commands import kinds, tree
from trailboss.commands.actions import RERUN_OF, rerun_manifest, rerun_name
from trailboss.commands.check import operator_series
from trailboss.commands.inspect import health
from trailboss.logs import JsonFormatter, configure

TRAININGRUN, MODELVERSION, DEPLOYMENT = (kinds.resolve(k) for k in ("trun", "mver", "mdeploy"))


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("trun", "TrainingRun"), ("trainingrun", "TrainingRun"), ("TrainingRuns", "TrainingRun"),
        ("trainingruns.trailboss.dev", "TrainingRun"),
        ("mver", "ModelVersion"), ("modelversion", "ModelVersion"),
        ("mdeploy", "Deployment"), ("deployment", "Deployment"),
        ("deployments.trailboss.dev", "Deployment"), ("deployment.trailboss.dev", "Deployment"),
    ],
)  # fmt: skip
def test_kind_names(name: str, kind: str) -> None:
    assert kinds.resolve(name).kind == kind


def test_names_other_projects_claim_are_not_ours() -> None:
    # tr: Tekton's TaskRun; mv: KubeDL's ModelVersion; deploy: apps/v1.
    for taken in ("tr", "mv", "deploy"):
        with pytest.raises(ValueError, match=r"unknown kind .* use one of trainingrun \(trun\)"):
            kinds.resolve(taken)


def test_refs_print_unambiguous_forms() -> None:
    assert DEPLOYMENT.ref("churn") == "deployment.trailboss.dev/churn"
    assert DEPLOYMENT.qualified == "deployments.trailboss.dev"
    assert kinds.split_ref("mdeploy/churn", None) == (DEPLOYMENT, "churn")
    assert kinds.split_ref("mver", "churn-7") == (MODELVERSION, "churn-7")
    assert kinds.split_ref("churn", None) == (TRAININGRUN, "churn")


def obj(phase: str | None, generation: int = 1, observed: int | None = 1, **extra: Any) -> Any:
    status: dict[str, Any] = {"phase": phase, **extra}
    if observed is not None:
        status["observedGeneration"] = observed
    return {"metadata": {"name": "churn", "uid": "u1", "generation": generation}, "status": status}


@pytest.mark.parametrize(
    ("kind", "phase", "verdict"),
    [
        (TRAININGRUN, "Succeeded", "Healthy"), (TRAININGRUN, "Failed", "Degraded"),
        (TRAININGRUN, "Running", "Progressing"), (MODELVERSION, "Validated", "Healthy"),
        (MODELVERSION, "Rejected", "Degraded"), (MODELVERSION, "Failed", "Degraded"),
        (DEPLOYMENT, "Healthy", "Healthy"), (DEPLOYMENT, "Paused", "Suspended"),
        (DEPLOYMENT, "Degraded", "Degraded"), (DEPLOYMENT, None, "Progressing"),
    ],
)  # fmt: skip
def test_health_matches_the_argocd_checks(kind: kinds.Kind, phase: str, verdict: str) -> None:
    assert health(kind, obj(phase)) == verdict


def test_health_waits_for_the_operator_to_observe_the_spec() -> None:
    assert health(TRAININGRUN, obj("Failed", generation=2, observed=1)) == "Progressing"
    assert health(TRAININGRUN, obj("Failed", observed=None)) == "Progressing"


def test_tree_of_a_training_run() -> None:
    run = obj("Succeeded", conditions=[
        {"type": "Ready", "status": "True", "reason": "Registered", "message": "as churn"}
    ])  # fmt: skip
    job = {
        "metadata": {"name": "churn-train-1", "uid": "j1"},
        "spec": {"completions": 2},
        "status": {"succeeded": 2, "conditions": [{"type": "Complete", "status": "True"}]},
    }
    pods = [
        {"metadata": {"name": f"churn-train-1-{i}", "creationTimestamp": f"2026-01-0{i}",
                      "ownerReferences": [{"uid": "j1"}]},
         "status": {"phase": "Succeeded", "containerStatuses": [
             {"state": {"terminated": {"exitCode": 0}}}]}}
        for i in (2, 1)
    ] + [{"metadata": {"name": "someone-else", "ownerReferences": [{"uid": "x"}]}}]  # fmt: skip
    root = tree.resource_node(TRAININGRUN, run)
    root.children = [
        tree.job_node(job, pods),
        tree.Node("modelversion.trailboss.dev/churn", "Validated"),
    ]
    assert tree.render(root) == [
        "trainingrun.trailboss.dev/churn  Succeeded  Ready=True  Registered: as churn",
        "├── job.batch/churn-train-1  Complete  2/2 succeeded",
        "│   ├── pod/churn-train-1-1  Succeeded  exit code 0",
        "│   └── pod/churn-train-1-2  Succeeded  exit code 0",
        "└── modelversion.trailboss.dev/churn  Validated",
    ]


def test_tree_before_the_operator_wrote_status() -> None:
    bare = {"metadata": {"name": "churn"}}
    assert tree.render(tree.resource_node(DEPLOYMENT, bare)) == [
        "deployment.trailboss.dev/churn  Unknown"
    ]


def test_rerun_copies_the_spec_running_and_labelled() -> None:
    old = {
        "apiVersion": "trailboss.dev/v1alpha1", "kind": "TrainingRun",
        "metadata": {
            "name": "churn", "uid": "u1", "resourceVersion": "7", "generation": 1,
            "labels": {"team": "a"},
            "annotations": {"note": "keep", "trailboss.dev/last-handled-configuration": "{}",
                            "kubectl.kubernetes.io/last-applied-configuration": "{}"},
        },
        "spec": {"model": "churn", "image": "trainer:1", "suspend": True},
        "status": {"phase": "Failed"},
    }  # fmt: skip
    new = rerun_manifest(old, "churn-rerun-1")
    assert new == {
        "apiVersion": "trailboss.dev/v1alpha1", "kind": "TrainingRun",
        "metadata": {"name": "churn-rerun-1", "labels": {"team": "a", RERUN_OF: "churn"},
                     "annotations": {"note": "keep"}},
        "spec": {"model": "churn", "image": "trainer:1"},
    }  # fmt: skip


def test_rerun_names_count_up_and_fit_a_training_run_name() -> None:
    assert rerun_name("churn", set()) == "churn-rerun-1"
    assert rerun_name("churn", {"churn-rerun-1"}) == "churn-rerun-2"
    assert rerun_name("churn-rerun-1", {"churn-rerun-1"}) == "churn-rerun-2"
    long = rerun_name("x" * 40, set())  # the longest TrainingRun name (tests/unit/test_names.py)
    assert len(long) == 40
    assert long.endswith("x-rerun-1")


def test_only_the_operators_series_count_for_helm_test() -> None:
    exposition = "# HELP python_info x\npython_info 1\ntrailboss_reconcile_total{} 3\n"
    assert operator_series(exposition) == ["trailboss_reconcile_total{} 3"]
    assert operator_series("python_info 1\n") == []


def test_json_log_lines_carry_the_object() -> None:
    record = logging.LogRecord("kopf.objects", logging.WARNING, "f", 1, "retry %s", ("x",), None)
    record.k8s_ref = {"kind": "TrainingRun", "namespace": "ml", "name": "churn", "uid": "u"}
    line = json.loads(JsonFormatter().format(record))
    assert line["level"] == "warning"
    assert line["message"] == "retry x"
    assert line["object"] == {"kind": "TrainingRun", "namespace": "ml", "name": "churn"}
    assert line["time"].endswith("+00:00")


def test_log_format_is_checked() -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        configure("json", verbose=True)
        assert isinstance(root.handlers[0].formatter, JsonFormatter)
        assert root.level == logging.DEBUG
        with pytest.raises(ValueError, match="--log-format must be one of text, json"):
            configure("xml")
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def test_a_bare_kind_is_never_taken_for_an_object_name() -> None:
    # `status trun` once looked up a TrainingRun named "trun".
    with pytest.raises(ValueError, match="name the TrainingRun: trun NAME"):
        kinds.split_ref("trun", None)
    assert kinds.resolve_many("all") == list(kinds.ALL)
    assert kinds.resolve_many("mver,trun") == [MODELVERSION, TRAININGRUN]
