"""The middle tier: the operator's kopf handlers in this process (kopf's
KopfRunner) and its status writer, against the real API server.

These check what the unit tests' fakes can only imitate: kopf's startup
settings on real objects (what kopf writes to them, and what it does not), and
the API server's own answer to a status merge patch with nulls and a stale
resourceVersion.
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


def test_kopf_writes_nothing_to_a_training_run_and_a_deletion_is_not_held(
    cluster: Cluster, namespace: str, handlers_in_process: KopfRunner
) -> None:
    missing = f"s3://datasets/{namespace}/nowhere.csv"
    cluster.create(namespace, _own(training_run("waits", dataset=missing), namespace))
    # As an earlier version of the operator left its runs: with kopf's finalizer.
    legacy = _own(training_run("legacy", dataset=missing), namespace)
    legacy["metadata"]["finalizers"] = [FINALIZER]
    cluster.create(namespace, legacy)

    def settled_in(name: str) -> dict[str, Any] | None:
        obj = cluster.get(namespace, "trainingruns", name) or {}
        status = obj.get("status") or {}
        return obj if ready(status).get("reason") == "DatasetNotFound" else None

    obj = wait_for("the run to wait for its dataset", lambda: settled_in("waits"), 120)
    # The run's only writes are the operator's status: no finalizer, no annotation of kopf's.
    assert FINALIZER not in (obj["metadata"].get("finalizers") or [])
    assert DIFF_BASE not in (obj["metadata"].get("annotations") or {})
    assert set(obj["status"]) <= {"phase", "conditions", "observedGeneration"}
    assert "spec.dataset.uri" in ready(obj["status"])["message"]

    def legacy_finalizers() -> list[str]:
        meta = (cluster.get(namespace, "trainingruns", "legacy") or {}).get("metadata") or {}
        return list(meta.get("finalizers") or [])

    wait_for("kopf to take off the finalizer", lambda: FINALIZER not in legacy_finalizers(), 60)

    for name in ("waits", "legacy"):
        cluster.delete(namespace, "trainingruns", name)
    wait_for(
        "the runs to go",
        lambda: not cluster.list(namespace, "trainingruns"),
        30,
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
