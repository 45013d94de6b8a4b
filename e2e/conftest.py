"""End-to-end fixtures: a real API server, MLflow and S3, and the operator as a process.

By default the session brings up the local stack (``e2e/stack/stack.py up``) and
takes it down at the end, unless it was already running. With
``TRAILBOSS_E2E_KUBECONFIG`` the same tests run against that cluster instead (kind,
k3d, a real one); MLflow and S3 then come from ``MLFLOW_TRACKING_URI``,
``AWS_ENDPOINT_URL_S3`` and the ``AWS_*`` credentials in the environment.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from e2e.cluster import (
    ROOT,
    RUN_LOCALLY,
    Cluster,
    Operator,
    local_stack_env,
    scrape_operator,
    stack_command,
    unique,
    wait_for,
)

S3_SECRET = "trailboss-s3"
PASSTHROUGH = (
    "MLFLOW_TRACKING_URI",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL_S3",
    "MLFLOW_S3_ENDPOINT_URL",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "e2e" in item.nodeid.split("/")[0]:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def stack_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    external = os.environ.get("TRAILBOSS_E2E_KUBECONFIG")
    if external:
        env = {k: os.environ[k] for k in PASSTHROUGH if k in os.environ}
        env["KUBECONFIG"] = external
        env["TRAILBOSS_E2E_EXTERNAL"] = "1"
        yield env
        return
    was_up = stack_command("status").returncode == 0
    up = stack_command("up")
    if up.returncode != 0:
        pytest.fail(f"the local stack did not start:\n{up.stdout[-3000:]}\n{up.stderr[-3000:]}")
    # The tests run their own operator; a second one (left by `make demo`) would race it.
    stack_command("stop", "operator")
    yield local_stack_env()
    if not was_up and not os.environ.get("TRAILBOSS_E2E_KEEP_STACK"):
        stack_command("down")


@pytest.fixture(scope="session")
def cluster(stack_env: dict[str, str]) -> Cluster:
    bin_dir = stack_env.get("TRAILBOSS_STACK_BIN")
    kubectl = str(Path(bin_dir) / "kubectl") if bin_dir else (shutil.which("kubectl") or "kubectl")
    return Cluster(env=stack_env, kubectl_bin=kubectl)


@pytest.fixture(scope="session")
def crds(cluster: Cluster) -> list[str]:
    """The committed CRDs, installed as a user would."""
    cluster.install_crds()
    return sorted(p.name for p in (ROOT / "crds").glob("*.yaml"))


@pytest.fixture
def namespace(cluster: Cluster) -> Iterator[str]:
    """A fresh namespace holding the S3 credentials Secret training pods use."""
    name = unique("e2e")
    cluster.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    env = cluster.env
    if "AWS_ACCESS_KEY_ID" in env:
        cluster.core.create_namespaced_secret(
            name,
            client.V1Secret(
                metadata=client.V1ObjectMeta(name=S3_SECRET),
                string_data={
                    "AWS_ACCESS_KEY_ID": env["AWS_ACCESS_KEY_ID"],
                    "AWS_SECRET_ACCESS_KEY": env["AWS_SECRET_ACCESS_KEY"],
                },
            ),
        )
    wait_for(
        f"the default service account in {name}",
        lambda: cluster.core.list_namespaced_service_account(name).items,
        timeout=30,
    )
    yield name
    cluster.core.delete_namespace(name)


def operator_env(stack_env: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in stack_env.items() if k in (*PASSTHROUGH, "KUBECONFIG")}
    env["TRAILBOSS_S3_ENDPOINT_URL"] = stack_env.get("AWS_ENDPOINT_URL_S3", "")
    env["TRAILBOSS_S3_CREDENTIALS_SECRET"] = S3_SECRET
    if not stack_env.get("TRAILBOSS_E2E_EXTERNAL"):
        # On the local stack, training pods run for real through the pod runner.
        env["TRAILBOSS_TRAINING_POD_LABELS"] = json.dumps({RUN_LOCALLY: "true"})
        env["TRAILBOSS_SERVING_POD_LABELS"] = json.dumps({RUN_LOCALLY: "true"})
        env["TRAILBOSS_DRIFT_POD_LABELS"] = json.dumps({RUN_LOCALLY: "true"})
    return env


@pytest.fixture(scope="session")
def operator(
    stack_env: dict[str, str],
    cluster: Cluster,
    crds: list[str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Operator]:
    # The API server stamps whole seconds: a second of slack keeps this session's first.
    since = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(seconds=1)
    # Every namespace, not a pattern like `e2e-*`: kopf stops serving a namespace
    # matched by a pattern as soon as it is marked for deletion with no blocking
    # condition yet, and its objects' finalizers are then never released.
    op = Operator(operator_env(stack_env), tmp_path_factory.mktemp("operator"))
    op.start()
    if not stack_env.get("TRAILBOSS_E2E_EXTERNAL"):
        scrape_operator(op.metrics_port)  # the stack's Prometheus reads its metrics
    try:
        yield op
        # Let the operator release the finalizers of the test namespaces' objects, so
        # no clean-up is left for the next session.
        try:
            wait_for(
                "the test namespaces to be deleted",
                lambda: not _test_namespaces(cluster, since),
                timeout=300,  # serving pods drain before they stop
                interval=1,
            )
        except AssertionError as error:
            raise AssertionError(f"{error}; left: {_leftovers(cluster, since)}") from None
    finally:
        op.stop()  # even when clean-up failed: an operator left running would fight the next


def _test_namespaces(cluster: Cluster, since: dt.datetime) -> list[str]:
    """This session's test namespaces (a stack's data outlives a session, and
    with it whatever an interrupted session left)."""
    names = []
    for item in cluster.core.list_namespace().items:
        name, created = str(item.metadata.name), item.metadata.creation_timestamp
        if name.startswith("e2e-") and created is not None and created >= since:
            names.append(name)
    return names


def _leftovers(cluster: Cluster, since: dt.datetime) -> dict[str, list[str]]:
    """Per namespace still there, what it holds that could keep it."""
    left = {}
    for namespace in _test_namespaces(cluster, since):
        held = cluster.kubectl(
            "get", "-n", namespace, "pods,jobs,trainingruns.trailboss.dev,"
            "modelversions.trailboss.dev,deployments.trailboss.dev", "-o",
            "custom-columns=KIND:.kind,NAME:.metadata.name,FINALIZERS:.metadata.finalizers",
            "--no-headers", check=False,
        ).stdout  # fmt: skip
        left[namespace] = held.splitlines()
    return left


@pytest.fixture
def running_operator(operator: Operator) -> Operator:
    """The session's operator, restarted if a previous test killed it."""
    if operator.proc is None or operator.proc.poll() is not None:
        operator.start()
    return operator


@pytest.fixture
def mlflow_outage(cluster: Cluster) -> Iterator[Any]:
    """Stop and start the local stack's MLflow server."""
    if cluster.env.get("TRAILBOSS_E2E_EXTERNAL"):
        pytest.skip("stopping MLflow needs the local stack")

    class Outage:
        def stop(self) -> None:
            assert stack_command("stop", "mlflow").returncode == 0

        def start(self) -> None:
            result = stack_command("start", "mlflow")
            assert result.returncode == 0, result.stdout + result.stderr

    outage = Outage()
    yield outage
    outage.start()
