"""Several operators in one cluster: each handles only the objects labelled with its
``trailboss.dev/operator-instance`` (the default one: those without the label), and
what it creates for them carries the same label."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from tests.unit.fakes import services
from tests.unit.test_chart import CHART, container, helm, needs_helm, render
from tests.unit.test_trainingrun_reconciler import BODY, _finish_job
from trailboss.builders import retraining
from trailboss.builders.labels import OPERATOR_INSTANCE_LABEL, handled_by, same_operator
from trailboss.reconcilers import trainingrun
from trailboss.reconcilers.driver import Result
from trailboss.settings import Settings


def _labelled(instance: str | None) -> dict[str, Any]:
    body: dict[str, Any] = copy.deepcopy(BODY)
    body["metadata"]["uid"] = f"uid-instance-{instance}"
    if instance is not None:
        body["metadata"]["labels"] = {OPERATOR_INSTANCE_LABEL: instance}
    return body


def _operator(instance: str | None) -> Any:
    svc, kube, tracking, storage = services()
    svc.settings = Settings(mlflow_tracking_uri="http://mlflow:5000", operator_instance=instance)
    storage.objects["s3://datasets/churn.csv"] = "etag-1"
    return svc, kube, tracking


@pytest.mark.parametrize(("run", "operator"), [("canary", None), (None, "canary"), ("a", "b")])
def test_an_operator_leaves_another_operators_run_alone(
    run: str | None, operator: str | None
) -> None:
    svc, kube, tracking = _operator(operator)
    ended = trainingrun.reconcile(kube.put(_labelled(run)), svc)
    assert ended.result == Result.SKIPPED
    assert kube.jobs() == []
    assert kube.statuses == []
    assert tracking.runs == {}


def test_the_labelled_operator_trains_and_registers_a_version_it_handles_too() -> None:
    svc, kube, tracking = _operator("canary")
    body = kube.put(_labelled("canary"))
    trainingrun.reconcile(body, svc)
    assert len(kube.jobs()) == 1
    tracking.runs["run1"]["metrics"] = {"accuracy": 0.91}
    _finish_job(kube)
    trainingrun.reconcile(kube.current(body), svc)
    assert kube.statuses[-1]["phase"] == "Succeeded"
    version = kube.get("", "ModelVersion", "ml", "churn")
    assert version is not None
    assert version["metadata"]["labels"][OPERATOR_INSTANCE_LABEL] == "canary"
    assert handled_by(version["metadata"], "canary")
    assert not handled_by(version["metadata"], None)


def test_a_retraining_run_goes_to_the_deployments_operator() -> None:
    def run(parent: dict[str, Any]) -> dict[str, Any]:
        made = retraining.training_run(
            deployment="churn", namespace="ml", uid="u", number=1,
            template={"model": "churn", "image": "trainer:1"}, reason="Drift",
            trigger="check-3", drift_score=None, replaces="v1",
        )  # fmt: skip
        return same_operator(made, parent)

    labelled = run({"labels": {OPERATOR_INSTANCE_LABEL: "canary"}})
    assert labelled["metadata"]["labels"][OPERATOR_INSTANCE_LABEL] == "canary"
    assert OPERATOR_INSTANCE_LABEL not in run({"labels": {}})["metadata"]["labels"]


@pytest.mark.parametrize("value", ["-canary", "a b", "x" * 64])
def test_an_instance_that_is_no_label_value_is_refused(value: str) -> None:
    with pytest.raises(ValidationError, match="operator_instance"):
        Settings(operator_instance=value)


@needs_helm
def test_the_chart_starts_the_operator_as_the_instance_it_names() -> None:
    named = {
        e["name"]: e.get("value")
        for e in container(render("--set", "operatorInstance=canary"))["env"]
    }
    assert named["TRAILBOSS_OPERATOR_INSTANCE"] == "canary"
    assert (
        Settings(operator_instance=named["TRAILBOSS_OPERATOR_INSTANCE"]).operator_instance
        == "canary"
    )
    default = {e["name"] for e in container(render())["env"]}
    assert "TRAILBOSS_OPERATOR_INSTANCE" not in default


@needs_helm
def test_the_chart_refuses_an_instance_that_is_no_label_value() -> None:
    result = helm("template", "t", str(CHART), "--set", "operatorInstance=-canary")
    assert result.returncode != 0
    assert "operatorInstance" in result.stderr
