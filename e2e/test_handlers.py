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

from e2e.cluster import Cluster, Operator, ready, wait_for
from e2e.lifecycle import training_run
from e2e.session import operator_env
from trailboss.api.common import API_VERSION
from trailboss.clients.kube import Conflict, Kube, load_config

# The session's operator stops while kopf runs the handlers in this process.
pytestmark = pytest.mark.disruptive

FINALIZER = "trailboss.dev/finalizer"
DIFF_BASE = "trailboss.dev/last-handled-configuration"


def _in_process(
    cluster: Cluster, namespace: str, operator: Operator, monkeypatch: pytest.MonkeyPatch
) -> KopfRunner:
    """The handlers under kopf's test runner, watching only this test's namespace.
    The session's operator process is stopped meanwhile: one operator per object."""
    operator.stop()
    for key, value in operator_env(cluster.env).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("TRAILBOSS_METRICS_PORT", "0")
    import trailboss.handlers as handlers
    from trailboss.settings import Settings

    handlers.install(Settings())
    args = ["run", "--standalone", "--namespace", namespace, "-m", "trailboss.handlers"]
    return KopfRunner(args, timeout=60)


@pytest.fixture
def handlers_in_process(
    cluster: Cluster, namespace: str, operator: Operator, monkeypatch: pytest.MonkeyPatch
) -> Iterator[KopfRunner]:
    with _in_process(cluster, namespace, operator, monkeypatch) as runner:
        yield runner
    assert runner.exception is None, runner.output


def test_startup_settings_and_finalizer_on_a_real_object(
    cluster: Cluster, namespace: str, handlers_in_process: KopfRunner
) -> None:
    missing = f"s3://datasets/{namespace}/nowhere.csv"
    cluster.create(namespace, training_run("waits", dataset=missing))

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
    cluster: Cluster, namespace: str, operator: Operator
) -> None:
    operator.stop()  # no operator writes the object between the writes compared here
    kube = Kube(load_config(cluster.env["KUBECONFIG"]))
    cluster.create(namespace, training_run("status-writes"))
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
    cluster: Cluster, namespace: str, operator: Operator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # kopf handles a bounded number of objects at once; the others wait their
    # turn. Here 2 at a time, for 4 Deployments and 4 TrainingRuns that exist
    # before the operator starts, as after an upgrade or a failover.
    monkeypatch.setattr("trailboss.handlers.startup.KOPF_WORKERS", 2)
    operator.stop()
    missing = f"s3://datasets/{namespace}/nowhere.csv"
    for i in range(4):
        cluster.create(namespace, training_run(f"backlog-{i}", dataset=missing))
        cluster.create(namespace, _unservable_deployment(f"backlog-{i}"))
    with _in_process(cluster, namespace, operator, monkeypatch) as runner:
        for i in range(4):
            cluster.wait_reason(namespace, "trainingruns", f"backlog-{i}", "DatasetNotFound", 120)
            cluster.wait_reason(namespace, "deployments", f"backlog-{i}", "VersionNotFound", 60)
    assert runner.exception is None, runner.output


def _unservable_deployment(name: str) -> dict[str, Any]:
    """A Deployment of a ModelVersion that does not exist: it waits, saying so."""
    return {
        "apiVersion": API_VERSION,
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {"model": "churn", "modelVersion": "nowhere"},
    }
