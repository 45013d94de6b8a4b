"""End-to-end fixtures: a real API server, MLflow and S3, and the operator as a process.

By default the run brings up the local stack (``e2e/stack/stack.py up``) and takes it
down at the end, unless it was already running (see ``e2e/session.py``). Tests run side
by side on one stack and one operator (``pytest e2e -n 4 -m "not disruptive"``); the
ones marked ``disruptive`` stop what the others share and run alone, after them. With
``TRAILBOSS_E2E_KUBECONFIG`` the same tests run against that cluster instead (kind,
k3d, a real one); MLflow and S3 then come from ``MLFLOW_TRACKING_URI``,
``AWS_ENDPOINT_URL_S3`` and the ``AWS_*`` credentials in the environment.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from e2e.cluster import (
    ROOT,
    Cluster,
    Operator,
    OwnMlflow,
    OwnS3,
    SharedComponents,
    scrape_operator,
    stop_scraping,
    unique,
    wait_for,
)
from e2e.session import S3_SECRET, SharedStack, cluster_for, operator_env

SHARED = pytest.StashKey[SharedStack]()
WORKER_INPUT = "trailboss_e2e"


def pytest_configure(config: pytest.Config) -> None:
    if not _is_worker(config):
        log_dir = Path(config.rootpath) / "build" / "e2e-operator"
        log_dir.mkdir(parents=True, exist_ok=True)
        config.stash[SHARED] = SharedStack(log_dir)


def pytest_configure_node(node: Any) -> None:
    """With workers (pytest-xdist), the controlling process starts the stack and the one
    operator before the first worker runs a test, and hands both to every worker."""
    node.workerinput[WORKER_INPUT] = node.config.stash[SHARED].for_workers()


def pytest_unconfigure(config: pytest.Config) -> None:
    if SHARED in config.stash:
        config.stash[SHARED].stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "e2e" in item.nodeid.split("/")[0]:
            item.add_marker(pytest.mark.e2e)
    # Side by side, the run ends when its last test does: a long scenario started late
    # is the run's tail, so the longest start first (a stable sort: the rest keep their
    # order, and `make e2e` tells xdist to keep this one).
    items.sort(key=_expected_seconds, reverse=True)


def _expected_seconds(item: pytest.Item) -> float:
    marker = item.get_closest_marker("long")
    return float(marker.args[0]) if marker is not None else 0.0


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _from_controller(config: pytest.Config) -> dict[str, Any]:
    shared: dict[str, Any] = config.workerinput[WORKER_INPUT]  # type: ignore[attr-defined]
    return shared


@pytest.fixture(autouse=True)
def _shared_components(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test stops what others share only when it says so, and then never beside them."""
    disruptive = request.node.get_closest_marker("disruptive") is not None
    if disruptive and _is_worker(request.config):
        pytest.fail(
            "a disruptive test cannot run beside others: run them without workers "
            "(`pytest e2e -m disruptive`; `make e2e` does)"
        )
    SharedComponents.enforced, SharedComponents.allowed = True, disruptive
    yield
    SharedComponents.enforced, SharedComponents.allowed = False, False


@pytest.fixture(scope="session")
def stack_env(request: pytest.FixtureRequest) -> dict[str, str]:
    if _is_worker(request.config):
        env: dict[str, str] = _from_controller(request.config)["env"]
        return env
    try:
        return request.config.stash[SHARED].stack_env()
    except RuntimeError as error:
        pytest.fail(str(error))


@pytest.fixture(scope="session")
def cluster(stack_env: dict[str, str]) -> Cluster:
    return cluster_for(stack_env)


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


@pytest.fixture(scope="session")
def operator(request: pytest.FixtureRequest, crds: list[str]) -> Operator:
    """The run's one operator, watching every namespace."""
    if _is_worker(request.config):
        return Operator.attach(_from_controller(request.config)["operator"])
    return request.config.stash[SHARED].shared_operator()


@pytest.fixture
def running_operator(operator: Operator) -> Operator:
    """The run's operator, restarted if a previous (disruptive) test killed it."""
    if not operator.alive:
        if operator.proc is None:
            pytest.fail("the run's operator is not running: see its log in build/e2e-operator")
        with SharedComponents.restoring():
            operator.start()
    return operator


@pytest.fixture
def own_operator(
    request: pytest.FixtureRequest, cluster: Cluster, namespace: str
) -> Iterator[Operator]:
    """An operator of this test's own, beside the run's: it handles only objects
    labelled ``trailboss.dev/operator-instance: <namespace>`` (see `own_labels`), so
    the test may kill and restart it while the others run. Like the run's, it
    watches every namespace: one watched by name stops being served once it is
    being deleted, and its objects' finalizers would stay."""
    log_dir = Path(request.config.rootpath) / "build" / "e2e-operator" / namespace
    log_dir.mkdir(parents=True, exist_ok=True)
    tracking = _own_mlflow_if_asked(request)
    storage = _own_s3_if_asked(request)
    env = operator_env(tracking.env if tracking else storage.env if storage else cluster.env)
    op = Operator(env, log_dir, instance=namespace)
    op.start()
    local = not cluster.env.get("TRAILBOSS_E2E_EXTERNAL")
    if local:
        scrape_operator(op.metrics_port, name=f"operator-{namespace}")
    yield op
    try:
        if not op.alive:
            op.start()
        if storage is not None:
            storage.start()  # the test may have left it stopped
        if tracking is not None:
            tracking.start()  # a registry deletion waits for it
        _delete_trailboss_objects(cluster, namespace)  # while their operator runs
    finally:
        op.stop()
        if local:
            stop_scraping(f"operator-{namespace}")


def _delete_trailboss_objects(cluster: Cluster, namespace: str) -> None:
    kinds = ("deployments", "trainingruns", "modelversions")
    for plural in kinds:
        for obj in cluster.list(namespace, plural):
            cluster.delete(namespace, plural, obj["metadata"]["name"])
    wait_for(
        f"the Trailboss objects in {namespace} to go",
        lambda: not any(cluster.list(namespace, plural) for plural in kinds),
        120,
    )


def _own_mlflow_if_asked(request: pytest.FixtureRequest) -> OwnMlflow | None:
    if "own_mlflow" not in request.fixturenames:
        return None
    tracking: OwnMlflow = request.getfixturevalue("own_mlflow")
    return tracking


@pytest.fixture
def own_mlflow(
    request: pytest.FixtureRequest, cluster: Cluster, namespace: str, tmp_path: Path
) -> Iterator[OwnMlflow]:
    """An MLflow server of this test's own, with its own registry and the stack's
    S3 (the test's `own_s3` when it asks for one) for artifacts, for the test's
    `own_operator` (which then uses it): the test may stop and start it while the
    others run on the stack's."""
    if cluster.env.get("TRAILBOSS_E2E_EXTERNAL"):
        pytest.skip("an MLflow server of the test's own needs the local stack")
    storage = _own_s3_if_asked(request)
    tracking = OwnMlflow(storage.env if storage else cluster.env, tmp_path / "mlflow")
    tracking.start()
    yield tracking
    tracking.stop()


@pytest.fixture
def own_s3(cluster: Cluster, tmp_path: Path) -> Iterator[OwnS3]:
    """An S3 server of this test's own, with the stack's credentials and buckets,
    for the test's `own_mlflow` (artifacts) and `own_operator` (datasets, model
    checks, training pods): the test may stop and start it while the others run
    on the stack's."""
    if cluster.env.get("TRAILBOSS_E2E_EXTERNAL"):
        pytest.skip("an S3 server of the test's own needs the local stack")
    storage = OwnS3(cluster.env, tmp_path / "s3")
    storage.start()
    yield storage
    storage.stop()


def _own_s3_if_asked(request: pytest.FixtureRequest) -> OwnS3 | None:
    if "own_s3" not in request.fixturenames:
        return None
    storage: OwnS3 = request.getfixturevalue("own_s3")
    return storage
