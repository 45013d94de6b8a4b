"""TrainingRuns on the real stack: a real trainer, a real MLflow server, real S3."""

from __future__ import annotations

import time

import pytest
from kubernetes import client

from e2e.cluster import Cluster, Operator, OwnMlflow, own_labels, ready, wait_for
from e2e.lifecycle import (
    mlflow,
    runs_tagged,
    s3,
    seed_dataset,
    split,
    training_run,
    versions_tagged,
)
from e2e.session import S3_SECRET

pytestmark = pytest.mark.usefixtures("running_operator")
QUICK = ["python", "-c", "import time; time.sleep(2); print('done')"]


def test_trainer_succeeds_tracks_in_mlflow_and_registers_a_model(
    cluster: Cluster, namespace: str, running_operator: Operator
) -> None:
    env = cluster.env
    dataset = f"s3://datasets/{namespace}/churn.csv"
    seed_dataset(env, dataset)
    run = training_run(
        "churn",
        dataset=dataset,
        hyperparameters={"n_estimators": "20", "max_depth": "4"},
        register={"validation": {"minimums": {"accuracy": 0.8}}},
    )
    cluster.create(namespace, run)
    status = cluster.wait_phase(namespace, "trainingruns", "churn", {"Succeeded", "Failed"}, 300)
    assert status["phase"] == "Succeeded", status
    assert ready(status)["status"] == "True"
    assert 0.8 < status["metrics"]["accuracy"] <= 1.0
    assert status["dataset"]["uri"] == dataset
    assert status["dataset"]["etag"]
    assert status["attempts"] == 1
    assert status["startTime"]
    assert status["completionTime"]
    run_id = status["mlflow"]["runId"]
    assert status["mlflow"]["url"].endswith(f"/runs/{run_id}")

    runs = runs_tagged(env, cluster.uid(namespace, "trainingruns", "churn"))
    assert [r.info.run_id for r in runs] == [run_id]
    tracked = runs[0]
    assert tracked.info.status == "FINISHED"
    assert tracked.data.params["n_estimators"] == "20"
    assert tracked.data.params["trailboss.dataset_version"] == status["dataset"]["etag"]
    assert tracked.data.metrics["accuracy"] == status["metrics"]["accuracy"]
    bucket, key = split(tracked.info.artifact_uri + "/model/MLmodel")
    assert s3(env).head_object(Bucket=bucket, Key=key)["ContentLength"] > 0

    assert status["modelVersion"] == "churn"
    mv = cluster.wait_phase(
        namespace, "modelversions", "churn", {"Validated", "Rejected", "Failed"}
    )
    assert mv["phase"] == "Validated", mv
    assert mv["modelUri"] == f"models:/churn/{mv['registryVersion']}"
    mv_uid = cluster.uid(namespace, "modelversions", "churn")
    versions = versions_tagged(env, "churn", mv_uid)
    assert len(versions) == 1
    assert versions[0].run_id == run_id
    assert versions[0].source == mv["artifact"]["uri"]
    assert versions[0].tags["trailboss.dev/validation"] == "passed"
    got = cluster.kubectl("-n", namespace, "get", "mver", "churn").stdout
    assert "Validated" in got
    assert mv["registryVersion"] in got
    waited = cluster.kubectl(
        "-n", namespace, "wait", "--for=condition=Ready", "mver/churn", "--timeout=10s"
    )
    assert waited.returncode == 0
    # Counted once, in this namespace's own series; the failure series is there at 0.
    mine = {"namespace": namespace, "model": "churn"}
    assert running_operator.metric("trailboss_trainingruns_total", **mine, outcome="succeeded") == 1
    assert running_operator.metric("trailboss_trainingruns_total", **mine, outcome="failed") == 0
    assert running_operator.metric("trailboss_modelversions_total", **mine, phase="Validated") == 1
    assert running_operator.healthz()


def test_failing_trainer_reports_exit_code_and_message(cluster: Cluster, namespace: str) -> None:
    cluster.create(namespace, training_run("broken", env={"TRAILBOSS_FAIL": "simulated"}))
    status = cluster.wait_phase(namespace, "trainingruns", "broken", {"Succeeded", "Failed"}, 300)
    assert status["phase"] == "Failed"
    assert status["failure"]["exitCode"] == 3
    assert "simulated" in status["failure"]["message"]
    assert ready(status)["reason"] == "Failed"
    assert "exit code 3" in ready(status)["message"]

    # The Event is posted once status is written: a reader may see the phase first.
    def warned() -> bool:
        events = cluster.events(namespace, "broken")
        return any(e.reason == "Failed" and e.type == "Warning" for e in events)

    wait_for("a Warning event Failed on the run", warned, 30)
    assert "modelVersion" not in status
    runs = runs_tagged(cluster.env, cluster.uid(namespace, "trainingruns", "broken"))
    assert [r.info.status for r in runs] == ["FAILED"]


def test_kubectl_waits_for_a_run_to_complete_as_for_a_job(cluster: Cluster, namespace: str) -> None:
    cluster.create(namespace, training_run("waited", command=QUICK))
    waited = cluster.kubectl(
        "-n", namespace, "wait", "--for=condition=Complete", "trun/waited", "--timeout=300s",
        check=False,
    )  # fmt: skip
    assert waited.returncode == 0, waited.stderr
    assert "condition met" in waited.stdout
    status = cluster.get(namespace, "trainingruns", "waited")
    assert status is not None
    assert status["status"]["phase"] == "Succeeded"
    types = {c["type"]: c["status"] for c in status["status"]["conditions"]}
    assert (types["Complete"], types["Ready"]) == ("True", "True")
    assert "Failed" not in types
    never = cluster.kubectl(
        "-n", namespace, "wait", "--for=condition=Failed", "trun/waited", "--timeout=2s",
        check=False,
    )  # fmt: skip
    assert never.returncode != 0  # a run that succeeded never fails


def test_kubectl_waits_for_a_run_to_fail_as_for_a_job(cluster: Cluster, namespace: str) -> None:
    run = training_run("doomed", command=["python", "-c", "import sys; sys.exit(3)"])
    run["spec"]["backoffLimit"] = 0
    cluster.create(namespace, run)
    waited = cluster.kubectl(
        "-n", namespace, "wait", "--for=condition=Failed", "trun/doomed", "--timeout=300s",
        check=False,
    )  # fmt: skip
    assert waited.returncode == 0, waited.stderr
    status = cluster.get(namespace, "trainingruns", "doomed")
    assert status is not None
    conditions = {c["type"]: c for c in status["status"]["conditions"]}
    assert status["status"]["phase"] == "Failed"
    assert conditions["Failed"]["status"] == "True"
    assert conditions["Failed"]["reason"] == conditions["Ready"]["reason"]
    assert "Complete" not in conditions
    never = cluster.kubectl(
        "-n", namespace, "wait", "--for=condition=Complete", "trun/doomed", "--timeout=2s",
        check=False,
    )  # fmt: skip
    assert never.returncode != 0


def test_missing_dataset_waits_without_a_job_then_converges(
    cluster: Cluster, namespace: str
) -> None:
    dataset = f"s3://datasets/{namespace}/late.csv"
    cluster.create(namespace, training_run("late", dataset=dataset, command=QUICK))
    cluster.wait_reason(namespace, "trainingruns", "late", "DatasetNotFound", 60)
    message = ready(cluster.status(namespace, "trainingruns", "late"))["message"]
    assert "spec.dataset.uri" in message
    assert "late.csv" in message
    assert cluster.jobs(namespace) == []
    seed_dataset(cluster.env, dataset)
    status = cluster.wait_phase(namespace, "trainingruns", "late", {"Succeeded", "Failed"}, 300)
    assert status["phase"] == "Succeeded"


def test_a_missing_secret_is_named_then_the_run_starts_once_it_exists(
    cluster: Cluster, namespace: str
) -> None:
    run = training_run("locked", command=QUICK)
    run["spec"]["s3CredentialsSecret"] = "keys-not-yet"
    cluster.create(namespace, run)
    cluster.wait_reason(namespace, "trainingruns", "locked", "PodsNotStarting", 90)
    status = cluster.status(namespace, "trainingruns", "locked")
    assert status["phase"] == "Pending"
    message = ready(status)["message"]
    assert "CreateContainerConfigError" in message, message
    assert "keys-not-yet" in message, message
    assert "spec.s3CredentialsSecret" in message
    shared = cluster.core.read_namespaced_secret(S3_SECRET, namespace)
    cluster.core.create_namespaced_secret(
        namespace, client.V1Secret(metadata=client.V1ObjectMeta(name="keys-not-yet"),
                                   data=shared.data),
    )  # fmt: skip
    status = cluster.wait_phase(namespace, "trainingruns", "locked", {"Succeeded", "Failed"}, 300)
    assert status["phase"] == "Succeeded", status


def test_deleting_a_running_run_deletes_its_job_and_kills_its_mlflow_run(
    cluster: Cluster, namespace: str
) -> None:
    cluster.create(
        namespace, training_run("long", command=["python", "-c", "import time; time.sleep(120)"])
    )
    cluster.wait_phase(namespace, "trainingruns", "long", {"Running"}, 120)
    uid = cluster.uid(namespace, "trainingruns", "long")
    cluster.delete(namespace, "trainingruns", "long")
    wait_for("the Job to be garbage collected", lambda: cluster.jobs(namespace) == [], 120)
    wait_for(
        "the MLflow run to be KILLED",
        lambda: [r.info.status for r in runs_tagged(cluster.env, uid)] == ["KILLED"],
        60,
    )


def test_sigkill_during_runs_duplicates_neither_jobs_nor_mlflow_runs(
    cluster: Cluster, namespace: str, own_operator: Operator
) -> None:
    """kill -9 of the operator while it creates Jobs: its own, so the others run on."""
    names = [f"restart-{i}" for i in range(6)]
    for name in names:
        run = training_run(name, command=QUICK)
        run["metadata"]["labels"] = own_labels(namespace)
        cluster.create(namespace, run)
    wait_for("some Jobs to exist", lambda: len(cluster.jobs(namespace)) >= 2, 60, interval=0.1)
    own_operator.kill()
    time.sleep(1)
    own_operator.start()
    for name in names:
        status = cluster.wait_phase(namespace, "trainingruns", name, {"Succeeded", "Failed"}, 300)
        assert status["phase"] == "Succeeded", (name, status)
    jobs = [j.metadata.labels["trailboss.dev/trainingrun"] for j in cluster.jobs(namespace)]
    assert sorted(jobs) == sorted(names)
    for name in names:
        uid = cluster.uid(namespace, "trainingruns", name)
        assert len(runs_tagged(cluster.env, uid)) == 1, name


def test_fifty_runs_created_at_once_all_converge(cluster: Cluster, namespace: str) -> None:
    names = [f"burst-{i:02d}" for i in range(50)]
    for name in names:
        cluster.create(
            namespace, training_run(name, model="burst", command=["python", "-c", "pass"])
        )

    def phases() -> dict[str, int]:
        counts: dict[str, int] = {}
        for obj in cluster.list(namespace, "trainingruns"):
            phase = (obj.get("status") or {}).get("phase", "None")
            counts[phase] = counts.get(phase, 0) + 1
        return counts

    wait_for("all 50 TrainingRuns to succeed", lambda: phases().get("Succeeded") == 50, 600, 2)
    assert len(cluster.jobs(namespace)) == 50
    experiment = mlflow(cluster.env).get_experiment_by_name("burst")
    runs = mlflow(cluster.env).search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.`trailboss.dev/trainingrun` LIKE '{namespace}/%'",
        max_results=200,
    )
    assert len(runs) == 50


def test_tracking_outage_holds_the_run_until_mlflow_is_back(
    cluster: Cluster, namespace: str, own_mlflow: OwnMlflow, own_operator: Operator
) -> None:
    """MLflow down (the test's own, so the others run on) before a run starts."""
    own_mlflow.stop()
    run = training_run("patient", command=QUICK)
    run["metadata"]["labels"] = own_labels(namespace)
    cluster.create(namespace, run)
    cluster.wait_reason(namespace, "trainingruns", "patient", "TrackingServerUnavailable", 90)
    assert "MLflow at" in ready(cluster.status(namespace, "trainingruns", "patient"))["message"]
    assert cluster.jobs(namespace) == []
    own_mlflow.start()
    status = cluster.wait_phase(namespace, "trainingruns", "patient", {"Succeeded", "Failed"}, 300)
    assert status["phase"] == "Succeeded"
    uid = cluster.uid(namespace, "trainingruns", "patient")
    assert len(runs_tagged(own_mlflow.env, uid)) == 1


def test_distributed_run_gets_an_indexed_job_service_and_rendezvous_env(
    cluster: Cluster, namespace: str
) -> None:
    check = (
        "import os, sys; rank = int(os.environ['RANK']); "
        "assert os.environ['WORLD_SIZE'] == '2', os.environ['WORLD_SIZE']; "
        "assert os.environ['MASTER_ADDR'].split('.')[0].endswith('-0'), os.environ['MASTER_ADDR']; "
        "print('rank', rank, 'of', os.environ['WORLD_SIZE'], 'via', os.environ['MASTER_ADDR'])"
    )
    run = training_run("ddp", command=["python", "-c", check])
    run["spec"]["workers"] = 2
    cluster.create(namespace, run)
    status = cluster.wait_phase(namespace, "trainingruns", "ddp", {"Succeeded", "Failed"}, 300)
    assert status["phase"] == "Succeeded", status
    job = cluster.batch.read_namespaced_job(status["jobName"], namespace)
    assert job.spec.completion_mode == "Indexed"
    assert job.status.succeeded == 2
    services = cluster.core.list_namespaced_service(namespace).items
    assert [s.spec.cluster_ip for s in services] == ["None"]
    assert job.spec.template.spec.subdomain == services[0].metadata.name
