"""The middle tier: the operator's kopf handlers in this process (kopf's
KopfRunner) and its status writer, against the real API server.

These check what the unit tests' fakes can only imitate: kopf's startup
settings and finalizer on real objects, and the API server's own answer to a
status merge patch with nulls and a stale resourceVersion.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kopf.testing import KopfRunner

from e2e.cluster import Cluster, own_labels, ready, wait_for
from e2e.lifecycle import training_run
from e2e.session import operator_env
from trailboss.api.common import API_VERSION
from trailboss.clients.kube import Kube, load_config
from trailboss.clients.protocols import Conflict

FINALIZER = "trailboss.dev/finalizer"
DIFF_BASE = "trailboss.dev/last-handled-configuration"


def _in_process(cluster: Cluster, namespace: str, monkeypatch: pytest.MonkeyPatch) -> KopfRunner:
    """The handlers under kopf's test runner, as the operator instance named after
    this test's namespace: only the objects labelled `own_labels(namespace)` are its,
    and the run's operator never sees them (one operator per object)."""
    for key, value in operator_env(cluster.env).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("TRAILBOSS_METRICS_PORT", "0")
    monkeypatch.setenv("TRAILBOSS_OPERATOR_INSTANCE", namespace)
    import trailboss.handlers as handlers
    from trailboss.settings import Settings

    handlers.install(Settings())
    args = ["run", "--standalone", "--namespace", namespace, "-m", "trailboss.handlers"]
    return KopfRunner(args, timeout=60)


def _own(body: dict[str, Any], namespace: str) -> dict[str, Any]:
    body["metadata"]["labels"] = own_labels(namespace)
    return body


def _delete_all(cluster: Cluster, namespace: str, plural: str) -> None:
    """Delete the test's objects while its handlers still run: they hold finalizers
    that no other operator would release."""
    for obj in cluster.list(namespace, plural):
        cluster.delete(namespace, plural, obj["metadata"]["name"])
    wait_for(f"the {plural} to go", lambda: not cluster.list(namespace, plural), 60)


@pytest.fixture
def handlers_in_process(
    cluster: Cluster, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[KopfRunner]:
    with _in_process(cluster, namespace, monkeypatch) as runner:
        yield runner
        _delete_all(cluster, namespace, "trainingruns")
        _delete_all(cluster, namespace, "deployments")
    assert runner.exception is None, runner.output


def test_startup_settings_and_finalizer_on_a_real_object(
    cluster: Cluster, namespace: str, handlers_in_process: KopfRunner
) -> None:
    missing = f"s3://datasets/{namespace}/nowhere.csv"
    cluster.create(namespace, _own(training_run("waits", dataset=missing), namespace))

    def settled_in() -> dict[str, Any] | None:
        obj = cluster.get(namespace, "trainingruns", "waits") or {}
        status = obj.get("status") or {}
        return obj if ready(status).get("reason") == "DatasetNotFound" else None

    obj = wait_for("the run to wait for its dataset", settled_in, 120)
    assert FINALIZER in obj["metadata"]["finalizers"]
    # kopf keeps its bookkeeping in annotations, never in the strict status.
    assert DIFF_BASE in obj["metadata"]["annotations"]
    assert set(obj["status"]) <= {"phase", "conditions", "observedGeneration"}
    assert "spec.dataset.uri" in ready(obj["status"])["message"]

    cluster.delete(namespace, "trainingruns", "waits")
    wait_for(
        "the finalizer to let the run go",
        lambda: cluster.get(namespace, "trainingruns", "waits") is None,
        60,
    )


def test_status_writes_remove_fields_and_refuse_stale_versions(
    cluster: Cluster, namespace: str
) -> None:
    kube = Kube(load_config(cluster.env["KUBECONFIG"]))
    # An operator instance that does not run: no operator writes the object
    # between the writes compared here.
    cluster.create(namespace, _own(training_run("status-writes"), namespace))
    name = "status-writes"
    # Each write is given the version read just before it, so only the stale write
    # below can conflict.
    version = (cluster.get(namespace, "trainingruns", name) or {})["metadata"]["resourceVersion"]
    written = kube.patch_status(
        API_VERSION,
        "TrainingRun",
        namespace,
        name,
        {"phase": "Failed", "failure": {"reason": "Evicted", "exitCode": 137}},
        version,
    )
    assert written is not None
    assert written["status"]["failure"] == {"reason": "Evicted", "exitCode": 137}
    with pytest.raises(Conflict):  # computed from the object before that write
        kube.patch_status(
            API_VERSION, "TrainingRun", namespace, name, {"phase": "Running"}, version
        )
    fresh = (cluster.get(namespace, "trainingruns", name) or {})["metadata"]["resourceVersion"]
    kube.patch_status(
        API_VERSION, "TrainingRun", namespace, name, {"failure": {"exitCode": None}}, fresh
    )
    assert cluster.status(namespace, "trainingruns", name)["failure"] == {"reason": "Evicted"}
    now = (cluster.get(namespace, "trainingruns", name) or {})["metadata"]["resourceVersion"]
    kube.patch_status(API_VERSION, "TrainingRun", namespace, name, {"failure": None}, now)
    assert "failure" not in cluster.status(namespace, "trainingruns", name)


def test_a_startup_backlog_larger_than_kopfs_workers_is_all_handled(
    cluster: Cluster, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # kopf handles a bounded number of objects at once; the others wait their
    # turn. Here 2 at a time, for 4 Deployments and 4 TrainingRuns that exist
    # before the operator starts, as after an upgrade or a failover.
    monkeypatch.setattr("trailboss.handlers.startup.KOPF_WORKERS", 2)
    missing = f"s3://datasets/{namespace}/nowhere.csv"
    for i in range(4):
        cluster.create(namespace, _own(training_run(f"backlog-{i}", dataset=missing), namespace))
        cluster.create(namespace, _own(_unservable_deployment(f"backlog-{i}"), namespace))
    with _in_process(cluster, namespace, monkeypatch) as runner:
        for i in range(4):
            cluster.wait_reason(namespace, "trainingruns", f"backlog-{i}", "DatasetNotFound", 120)
            cluster.wait_reason(namespace, "deployments", f"backlog-{i}", "VersionNotFound", 60)
        _delete_all(cluster, namespace, "trainingruns")
        _delete_all(cluster, namespace, "deployments")
    assert runner.exception is None, runner.output


def _unservable_deployment(name: str) -> dict[str, Any]:
    """A Deployment of a ModelVersion that does not exist: it waits, saying so."""
    return {
        "apiVersion": API_VERSION,
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {"model": "churn", "modelVersion": "nowhere"},
    }
