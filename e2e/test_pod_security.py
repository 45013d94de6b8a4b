"""Training in a namespace that enforces Pod Security `restricted`: the pods are
admitted and run to Succeeded, single and distributed. A run that opts out with
runAsRoot has its pods refused, and the refusal is recognised from the Job's
real events."""

from __future__ import annotations

from typing import Any

import pytest

from e2e.cluster import Cluster, Operator, ready, wait_for
from e2e.lifecycle import training_run
from trailboss.api.trainingrun import TrainingReason
from trailboss.policies.training import observe_job, pods_rejected

pytestmark = pytest.mark.usefixtures("running_operator")
RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
}
DISTRIBUTED_CHECK = (
    "import os; print('rank', os.environ['RANK'], 'of', os.environ['WORLD_SIZE'], "
    "'via', os.environ['MASTER_ADDR'])"
)


@pytest.fixture
def restricted(cluster: Cluster, namespace: str) -> str:
    cluster.core.patch_namespace(namespace, {"metadata": {"labels": RESTRICTED}})
    return namespace


def _pods(cluster: Cluster, namespace: str, job: str) -> list[Any]:
    return list(cluster.core.list_namespaced_pod(namespace, label_selector=f"job-name={job}").items)


def test_the_example_trainer_runs_to_succeeded_under_restricted(
    cluster: Cluster, restricted: str, running_operator: Operator
) -> None:
    cluster.create(restricted, training_run("strict", hyperparameters={"n_estimators": "10"}))
    status = cluster.wait_phase(restricted, "trainingruns", "strict", {"Succeeded", "Failed"}, 300)
    assert status["phase"] == "Succeeded", status
    assert 0.8 < status["metrics"]["accuracy"] <= 1.0
    pod = _pods(cluster, restricted, status["jobName"])[0]
    assert pod.spec.security_context.run_as_non_root is True
    assert pod.spec.security_context.seccomp_profile.type == "RuntimeDefault"
    container = pod.spec.containers[0].security_context
    assert container.allow_privilege_escalation is False
    assert container.capabilities.drop == ["ALL"]


def test_a_distributed_run_succeeds_under_restricted(cluster: Cluster, restricted: str) -> None:
    run = training_run("strict-ddp", command=["python", "-c", DISTRIBUTED_CHECK])
    run["spec"]["workers"] = 2
    cluster.create(restricted, run)
    status = cluster.wait_phase(
        restricted, "trainingruns", "strict-ddp", {"Succeeded", "Failed"}, 300
    )
    assert status["phase"] == "Succeeded", status
    job = cluster.batch.read_namespaced_job(status["jobName"], restricted)
    assert job.status.succeeded == 2
    assert len(_pods(cluster, restricted, status["jobName"])) == 2


def test_a_run_as_root_opt_out_is_refused_and_recognised(cluster: Cluster, restricted: str) -> None:
    run = training_run("as-root", command=["python", "-c", "print('never runs')"])
    run["spec"]["securityContext"] = {"runAsRoot": True}
    cluster.create(restricted, run)
    job_name = wait_for(
        "the run's Job",
        lambda: cluster.status(restricted, "trainingruns", "as-root").get("jobName"),
        timeout=120,
    )

    def refused() -> Any:
        job = cluster.batch.read_namespaced_job(job_name, restricted)
        events = [e.to_dict() for e in cluster.events(restricted, job_name)]
        return pods_rejected(observe_job(cluster.api.sanitize_for_serialization(job)), events)

    verdict = wait_for("a FailedCreate event from Pod Security", refused, timeout=60)
    assert verdict.reason == TrainingReason.PODS_REJECTED
    assert 'violates PodSecurity "restricted:latest"' in verdict.message
    assert "runAsNonRoot" in verdict.message
    assert _pods(cluster, restricted, job_name) == []
    # And the TrainingRun says so, instead of "waiting for pods to start".
    condition = wait_for(
        "Ready=False reason PodsRejected",
        lambda: (
            (c := ready(cluster.status(restricted, "trainingruns", "as-root"))).get("reason")
            == TrainingReason.PODS_REJECTED
            and c
        ),
        timeout=120,
    )
    assert condition["status"] == "False"
    assert "violates PodSecurity" in condition["message"]
