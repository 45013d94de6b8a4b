"""A minute without MLflow, then a minute without S3, while runs train, with the
operator running: no training work is lost and nothing is done twice.

Six runs of the example trainer, in three waves, each with ``backoffLimit: 0``
so that one counted pod failure would fail its run:

* wave 1 is training when MLflow goes away;
* wave 2 is created while MLflow is away (the operator holds it), and starts
  training as S3 goes away;
* wave 3 is created while S3 is away (the operator holds it).

In each wave one run retries for the trainer's default budget (five minutes,
longer than the outage) and one for 20 s: its pods give up with the contract's
exit code 75 and are replaced by the Job without counting against the limit.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from e2e.cluster import Cluster, Operator, OwnMlflow, OwnS3, own_labels, ready, wait_for
from e2e.lifecycle import TRAINER, runs_tagged, seed_dataset, training_run, versions_tagged

OUTAGE_SECONDS = 60
BUDGETS = {"patient": "300", "brief": "20"}  # TRAILBOSS_RETRY_SECONDS of the trainer
# The pod is Running a few seconds before the trainer's first call, so the outage
# below begins before that call for certain.
COMMAND = ["sh", "-c", f"sleep 5 && exec python {TRAINER}"]


class Outages:
    """Stops and starts the test's own MLflow and S3 (the others run on the stack's)."""

    def __init__(self, servers: dict[str, OwnMlflow | OwnS3]) -> None:
        self.servers = servers

    def stop(self, component: str) -> float:
        self.servers[component].stop()
        return time.monotonic()

    def start(self, component: str) -> None:
        self.servers[component].start()


@pytest.fixture
def outages(own_mlflow: OwnMlflow, own_s3: OwnS3) -> Outages:
    return Outages({"mlflow": own_mlflow, "s3": own_s3})


def _wave(cluster: Cluster, namespace: str, wave: int, dataset: str) -> list[str]:
    names = []
    for kind, budget in BUDGETS.items():
        run = training_run(
            f"{kind}-{wave}",
            command=COMMAND,
            dataset=dataset,
            env={"TRAILBOSS_RETRY_SECONDS": budget},
            register={"validation": {"minimums": {"accuracy": 0.8}}},
        )
        run["spec"]["backoffLimit"] = 0
        run["metadata"]["labels"] = own_labels(namespace)
        cluster.create(namespace, run)
        names.append(run["metadata"]["name"])
    return names


def _wait_reason(cluster: Cluster, namespace: str, names: list[str], reason: str) -> None:
    def held() -> bool:
        return all(
            ready(cluster.status(namespace, "trainingruns", n)).get("reason") == reason
            for n in names
        )

    wait_for(f"{names} held with {reason}", held, 90)


def _wait_training(cluster: Cluster, namespace: str, names: list[str]) -> None:
    def training() -> bool:
        return all(
            cluster.status(namespace, "trainingruns", n).get("phase") == "Running" for n in names
        )

    wait_for(f"{names} to be training", training, 120)


def _until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.monotonic()))


def _exit_codes(cluster: Cluster, namespace: str) -> list[int]:
    codes = []
    for pod in cluster.core.list_namespaced_pod(namespace).items:
        for status in pod.status.container_statuses or []:
            if status.state.terminated is not None:
                codes.append(status.state.terminated.exit_code)
    return codes


def _operator_log(operator: Operator) -> Path:
    return Path(operator.log_dir) / f"operator-{operator.starts}.log"


def _log_since(operator: Operator, offset: int) -> str:
    with _operator_log(operator).open("rb") as log:
        log.seek(offset)
        return log.read().decode(errors="replace")


@pytest.mark.long(350)
def test_a_minute_without_mlflow_then_without_s3_loses_and_repeats_nothing(
    cluster: Cluster,
    namespace: str,
    own_mlflow: OwnMlflow,
    own_operator: Operator,
    outages: Outages,
) -> None:
    env = own_mlflow.env  # the test's own MLflow and S3, which it stops; the others run on
    dataset = f"s3://datasets/{namespace}/churn.csv"
    seed_dataset(env, dataset)
    log_offset = _operator_log(own_operator).stat().st_size

    first = _wave(cluster, namespace, 1, dataset)
    _wait_training(cluster, namespace, first)
    mlflow_down = outages.stop("mlflow")
    second = _wave(cluster, namespace, 2, dataset)
    _wait_reason(cluster, namespace, second, "TrackingServerUnavailable")
    assert len(cluster.jobs(namespace)) == len(first)  # the held runs have no Job yet
    _until(mlflow_down + OUTAGE_SECONDS)
    outages.start("mlflow")

    _wait_training(cluster, namespace, second)
    s3_down = outages.stop("s3")
    third = _wave(cluster, namespace, 3, dataset)
    _wait_reason(cluster, namespace, third, "DataStoreUnavailable")
    _until(s3_down + OUTAGE_SECONDS)
    outages.start("s3")

    runs = first + second + third
    for name in runs:
        status = cluster.wait_phase(namespace, "trainingruns", name, {"Succeeded", "Failed"}, 420)
        assert status["phase"] == "Succeeded", (name, status)
    # The outages did reach training: some pods gave up with the contract's exit
    # code (75) and were replaced, none counted against `backoffLimit: 0`.
    assert 75 in _exit_codes(cluster, namespace)
    _assert_nothing_twice(cluster, env, namespace, runs)
    tracebacks = _log_since(own_operator, log_offset).count("Traceback")
    assert tracebacks == 0, own_operator.log_tail(120)


def _assert_nothing_twice(
    cluster: Cluster, env: dict[str, str], namespace: str, runs: list[str]
) -> None:
    """One Job, one MLflow run and one registry version per TrainingRun."""
    labels = [j.metadata.labels or {} for j in cluster.jobs(namespace)]
    training_jobs = [owner for job in labels if (owner := job.get("trailboss.dev/trainingrun"))]
    assert sorted(training_jobs) == sorted(runs)  # the others profile the new versions
    for name in runs:
        uid = cluster.uid(namespace, "trainingruns", name)
        assert len(runs_tagged(env, uid)) == 1, name
        version: dict[str, Any] = cluster.wait_phase(
            namespace, "modelversions", name, {"Validated", "Rejected", "Failed"}, 180
        )
        assert version["phase"] == "Validated", (name, version)
        mv_uid = cluster.uid(namespace, "modelversions", name)
        assert len(versions_tagged(env, "churn", mv_uid)) == 1, name
