"""The trainer contract on real parts: the example trainer gives up on an
unreachable server with exit code 75, and the Job the operator builds replaces
such a pod without counting it against `backoffLimit` (the real Job controller,
with the pod runner running the pods)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from e2e.cluster import RUN_LOCALLY, Cluster, wait_for
from e2e.lifecycle import TRAINER
from trailboss.api.trainingrun import INFRASTRUCTURE_FAILURE_EXIT_CODE, TrainingRunSpec
from trailboss.builders.training import Owner, TrainingContext, build_job

# Each worker exits with the infrastructure-failure code on its first run, then
# succeeds: the marker files are shared because the pod runner runs pods here.
FLAKY = (
    "import os, pathlib, sys; marker = pathlib.Path(sys.argv[1] + os.environ.get('RANK', '0')); "
    "sys.exit(0) if marker.exists() else (marker.touch(), sys.exit(int(sys.argv[2])))"
)


@contextmanager
def refused_port() -> Iterator[int]:
    """A loopback port that refuses connections: bound, never listening, and
    held for the test so that no other process can take it meanwhile."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


def test_unreachable_tracking_server_ends_the_trainer_with_exit_code_75() -> None:
    with refused_port() as port:
        env = {
            **os.environ,
            "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{port}",
            "MLFLOW_RUN_ID": "0d5b465e3d424b6fb794200aaed972a9",
            "TRAILBOSS_RETRY_SECONDS": "3",
        }
        done = subprocess.run(
            [sys.executable, TRAINER], env=env, capture_output=True, text=True, timeout=300
        )
    assert done.returncode == INFRASTRUCTURE_FAILURE_EXIT_CODE, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("infrastructure failure: MLflow (attach to the run): unreachable for 3s")
    assert "Connection refused" in last


def test_unreachable_s3_ends_the_trainer_with_exit_code_75() -> None:
    code = (
        "import train; "
        "retry = train.Retry.from_env({'TRAILBOSS_RETRY_SECONDS': '2'}); "
        "train.read_s3_csv('s3://datasets/churn.csv', None, None, retry)"
    )
    with refused_port() as port:
        env = {
            **os.environ,
            "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{port}",
            "AWS_ACCESS_KEY_ID": "x",
            "AWS_SECRET_ACCESS_KEY": "y",
            "AWS_DEFAULT_REGION": "us-east-1",
            "PYTHONPATH": str(Path(TRAINER).parent),
        }
        done = subprocess.run(
            [sys.executable, "-c", code],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert done.returncode != 0
    assert "InfrastructureError: S3 (s3://datasets/churn.csv): unreachable for 2s" in done.stderr


def test_a_failure_of_the_training_code_does_use_up_the_backoff_limit(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    name = _flaky_job(cluster, namespace, tmp_path, workers=1, exit_code=1)
    outcome = wait_for(f"Job {name} to finish", _finished(cluster, namespace, name), timeout=180)
    assert outcome["kinds"].get("Failed") == "True", outcome
    assert outcome["failed"] == 1


@pytest.mark.parametrize("workers", [1, 2])
def test_infrastructure_failures_do_not_use_up_the_backoff_limit(
    cluster: Cluster, namespace: str, tmp_path: Path, workers: int
) -> None:
    exit_code = INFRASTRUCTURE_FAILURE_EXIT_CODE
    name = _flaky_job(cluster, namespace, tmp_path, workers, exit_code)
    outcome = wait_for(f"Job {name} to finish", _finished(cluster, namespace, name), timeout=180)
    assert outcome["kinds"].get("Complete") == "True", outcome
    assert outcome["succeeded"] == workers
    # Each worker's first pod exited 75 and was replaced; with backoffLimit 0 the
    # Job would have failed had that counted (an ignored failure is not counted
    # in status.failed either).
    assert not outcome["failed"]
    pods = cluster.core.list_namespaced_pod(namespace, label_selector=f"job-name={name}").items
    exits = sorted((p.status.phase, _exit_code(p)) for p in pods)
    assert exits == [("Failed", 75)] * workers + [("Succeeded", 0)] * workers


def _flaky_job(
    cluster: Cluster, namespace: str, tmp_path: Path, workers: int, exit_code: int
) -> str:
    """The Job the operator builds for a run whose workers each exit with
    ``exit_code`` once, then succeed; created directly, without a TrainingRun."""
    if cluster.env.get("TRAILBOSS_E2E_EXTERNAL"):
        pytest.skip("needs the pod runner, which runs pods on this machine")
    marker = tmp_path / "failed-once"
    spec = TrainingRunSpec.model_validate(
        {
            "model": "churn",
            "image": "trainer:1",
            "command": ["python", "-c", FLAKY, str(marker), str(exit_code)],
            "backoffLimit": 0,
            "workers": workers,
        }
    )
    owner = Owner(name=f"flaky-{workers}-{exit_code}", namespace=namespace, uid=str(uuid.uuid4()))
    job = build_job(
        owner,
        spec,
        TrainingContext(
            tracking_uri="http://127.0.0.1:1",
            run_id="r",
            experiment_id="1",
            pod_labels={RUN_LOCALLY: "true"},
        ),
    )
    del job["metadata"]["ownerReferences"]  # no TrainingRun here: the Job stands alone
    cluster.batch.create_namespaced_job(namespace, job)  # type: ignore[arg-type]
    name = job["metadata"]["name"]

    return str(name)


def _exit_code(pod: Any) -> int | None:
    statuses = pod.status.container_statuses or []
    terminated = statuses[0].state.terminated if statuses else None
    return terminated.exit_code if terminated else None


def _finished(cluster: Cluster, namespace: str, name: str) -> Any:
    def probe() -> dict[str, Any] | None:
        try:
            status = cluster.batch.read_namespaced_job_status(name, namespace).status
        except ApiException:
            return None
        kinds = {c.type: c.status for c in status.conditions or []}
        if kinds.get("Complete") == "True" or kinds.get("Failed") == "True":
            return {"kinds": kinds, "failed": status.failed, "succeeded": status.succeeded}
        return None

    return probe
