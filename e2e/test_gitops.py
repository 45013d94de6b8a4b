"""examples/gitops on the real API server, applied as Argo CD applies it (server-side,
dry run), and every name Trailboss generates accepted by the CRDs' own rules."""

from __future__ import annotations

import json
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.unit.test_names import (
    ARGOCD_MARK,
    DEPLOYMENTS,
    TRAINING_RUNS,
    argocd_rerun,
    valid_names,
)

from e2e.cluster import ROOT, Cluster
from trailboss.builders import names, retraining

GITOPS = ROOT / "examples" / "gitops"


def _dry_run(cluster: Cluster, namespace: str, manifest: dict[str, Any]) -> str:
    """The API server's answer to a server-side apply, dry run: "" when accepted."""
    result = cluster.kubectl(
        "-n", namespace, "apply", "--server-side", "--dry-run=server",
        "--field-manager=argocd-controller", "-f", "-",
        stdin=json.dumps(manifest), check=False,
    )  # fmt: skip
    return "" if result.returncode == 0 else result.stderr


def test_the_gitops_example_applies_on_the_stack(
    cluster: Cluster, crds: list[str], namespace: str
) -> None:
    app = yaml.safe_load((GITOPS / "application.yaml").read_text())
    folder = ROOT / app["spec"]["source"]["path"]
    result = cluster.kubectl(
        "-n", namespace, "apply", "--server-side", "--dry-run=server",
        "--field-manager=argocd-controller", "-f", str(folder), check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    applied = result.stdout
    assert "trainingrun.trailboss.dev/churn-initial serverside-applied (server dry run)" in applied
    assert "deployment.trailboss.dev/churn serverside-applied (server dry run)" in applied


def _run(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "trailboss.dev/v1alpha1",
        "kind": "TrainingRun",
        "metadata": {"name": name},
        "spec": {"model": "churn", "image": "trainer:1"},
    }


SERVER = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@SERVER
@given(valid_names(TRAINING_RUNS), st.integers(1, 10**6))
def test_every_rerun_name_is_accepted_by_the_api_server(
    cluster: Cluster, crds: list[str], namespace: str, run: str, count: int
) -> None:
    for name in (names.rerun_name(run, count), argocd_rerun(run), argocd_rerun(run, None)):
        assert _dry_run(cluster, namespace, _run(name)) == "", name
    assert argocd_rerun(run) == names.rerun_name(run, ARGOCD_MARK)


@SERVER
@given(valid_names(DEPLOYMENTS), st.uuids().map(str), st.integers(1, 10**7))
def test_every_retraining_run_name_is_accepted_by_the_api_server(
    cluster: Cluster, crds: list[str], namespace: str, deployment: str, uid: str, number: int
) -> None:
    name = retraining.run_name(deployment, uid, number)
    assert _dry_run(cluster, namespace, _run(name)) == "", name
