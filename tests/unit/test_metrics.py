"""What a Prometheus user scrapes from the operator: its build, and how many
objects are in each phase, right through phase changes, deletions and restarts."""

from __future__ import annotations

import copy
import importlib.metadata
import itertools
import platform
import subprocess
import sys
from functools import cache
from typing import Any

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, Gauge
from prometheus_client.parser import text_string_to_metric_families

import trailboss
from tests.unit.fakes import FakeKube, services
from trailboss import metrics
from trailboss.reconcilers import deployment, modelversion, trainingrun

_namespaces = (f"phases-{n}" for n in itertools.count())


@pytest.fixture
def namespace() -> str:
    """A namespace no other test counts objects in, so values are exact."""
    return next(_namespaces)


def _objects(namespace: str, kind: str = "TrainingRun", model: str = "churn") -> dict[str, float]:
    """The phase -> value series of one group, as scraped."""
    return {
        sample.labels["phase"]: sample.value
        for family in REGISTRY.collect()
        if family.name == "trailboss_objects"
        for sample in family.samples
        if (sample.labels["kind"], sample.labels["namespace"], sample.labels["model"])
        == (kind, namespace, model)
    }


def _run(namespace: str, name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "trailboss.dev/v1alpha1",
        "kind": "TrainingRun",
        "metadata": {"name": name, "namespace": namespace, "uid": f"{namespace}-{name}"},
        "spec": {"model": "churn", "image": "trainer:1", **spec},
    }


def _job_of(kube: FakeKube, body: dict[str, Any], **status: Any) -> None:
    name = kube.current(body)["status"]["jobName"]
    job = kube.objects[("Job", body["metadata"]["namespace"], name)]
    job["status"] = {"startTime": "2026-11-22T10:00:00Z", **status}


def test_build_info_names_the_versions() -> None:
    labels = {
        "version": trailboss.__version__,
        "python_version": platform.python_version(),
        "kopf_version": importlib.metadata.version("kopf"),
    }
    assert REGISTRY.get_sample_value("trailboss_build_info", labels) == 1.0


def test_runs_are_counted_in_their_phase_as_it_changes(namespace: str) -> None:
    svc, kube, _, _ = services()
    queued, training = _run(namespace, "a"), _run(namespace, "b")
    trainingrun.reconcile(kube.put(queued), svc)
    trainingrun.reconcile(kube.put(training), svc)
    assert _objects(namespace) == {"Pending": 2, "Running": 0, "Succeeded": 0, "Failed": 0}
    _job_of(kube, training, active=1, ready=1)
    trainingrun.reconcile(kube.current(training), svc)
    assert _objects(namespace) == {"Pending": 1, "Running": 1, "Succeeded": 0, "Failed": 0}
    _job_of(kube, training, succeeded=1, conditions=[{"type": "Complete", "status": "True"}])
    trainingrun.reconcile(kube.current(training), svc)
    assert _objects(namespace) == {"Pending": 1, "Running": 0, "Succeeded": 1, "Failed": 0}


def test_a_deleted_object_leaves_the_count_and_the_last_one_its_series(namespace: str) -> None:
    svc, kube, _, _ = services()
    first, second = _run(namespace, "a"), _run(namespace, "b")
    trainingrun.reconcile(kube.put(first), svc)
    trainingrun.reconcile(kube.put(second), svc)
    trainingrun.forget(first["metadata"]["uid"])  # what the delete handler does
    assert _objects(namespace)["Pending"] == 1
    trainingrun.forget(second["metadata"]["uid"])
    assert _objects(namespace) == {}


def _restart(monkeypatch: pytest.MonkeyPatch) -> CollectorRegistry:
    """A fresh process: nothing counted until the operator sees each object again."""
    registry = CollectorRegistry()
    gauge = Gauge(
        "trailboss_objects", "", ["kind", "namespace", "model", "phase"], registry=registry
    )
    monkeypatch.setattr(metrics, "object_phases", metrics.PhaseCounts(gauge))
    return registry


def test_after_a_restart_settled_and_invalid_objects_are_counted_again(
    namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    svc, kube, _, _ = services()
    done = _run(namespace, "done")
    done["status"] = {"phase": "Succeeded"}  # nothing left to do: no status write
    broken = _run(namespace, "broken", workers=0)
    trainingrun.reconcile(kube.put(broken), svc)  # marked Failed before the restart
    writes = len(kube.statuses)
    registry = _restart(monkeypatch)
    for body in (kube.put(done), kube.current(broken)):  # what the resume handlers do
        trainingrun.reconcile(body, svc)
    assert len(kube.statuses) == writes
    for phase, value in {"Succeeded": 1.0, "Failed": 1.0, "Pending": 0.0}.items():
        labels = {"kind": "TrainingRun", "namespace": namespace, "model": "churn", "phase": phase}
        assert registry.get_sample_value("trailboss_objects", labels) == value


def test_model_versions_are_counted_by_model(namespace: str) -> None:
    svc, kube, _, storage = services()
    storage.objects["s3://mlflow/fraud/model/MLmodel"] = "e1"
    body = {
        "apiVersion": "trailboss.dev/v1alpha1",
        "kind": "ModelVersion",
        "metadata": {"name": "fraud-v1", "namespace": namespace, "uid": f"{namespace}-mv"},
        "spec": {"model": "fraud", "artifactUri": "s3://mlflow/fraud/model"},
    }
    modelversion.reconcile(kube.put(copy.deepcopy(body)), svc)
    assert _objects(namespace, "ModelVersion", "fraud") == {
        "Pending": 0, "Registered": 0, "Validated": 1, "Rejected": 0, "Failed": 0,
    }  # fmt: skip
    modelversion.forget(f"{namespace}-mv")


def test_reconciles_are_counted_by_how_they_ended(namespace: str) -> None:
    svc, kube, tracking, _ = services()

    def count(result: str) -> float:
        labels = {"kind": "TrainingRun", "result": result}
        return REGISTRY.get_sample_value("trailboss_reconcile_total", labels) or 0.0

    before = {result: count(result) for result in ("ok", "wait", "failed")}
    tracking.down = True
    trainingrun.reconcile(kube.put(_run(namespace, "waits")), svc)
    trainingrun.reconcile(kube.put(_run(namespace, "refused", workers=0)), svc)
    tracking.down = False
    trainingrun.reconcile(kube.put(_run(namespace, "starts")), svc)
    assert {result: count(result) - before[result] for result in before} == {
        "ok": 1, "wait": 1, "failed": 1,
    }  # fmt: skip


def test_a_deployment_waiting_for_its_first_version_is_counted_without_a_phase(
    namespace: str,
) -> None:
    svc, kube, _, _ = services()
    body = {
        "apiVersion": "trailboss.dev/v1alpha1",
        "kind": "Deployment",
        "metadata": {"name": "churn", "namespace": namespace, "uid": f"{namespace}-dep"},
        "spec": {"model": "churn", "modelVersion": "churn-v1"},
    }
    deployment.reconcile(kube.put(body), svc)
    assert "phase" not in kube.current(body)["status"]
    assert _objects(namespace, "Deployment") == {
        "": 1, "Progressing": 0, "Healthy": 0, "Paused": 0, "Degraded": 0,
    }  # fmt: skip
    deployment.forget(f"{namespace}-dep")
    assert _objects(namespace, "Deployment") == {}


# What each process serves on /metrics, scraped in a fresh interpreter so that
# nothing a test registers, and no process-wide switch another module flips,
# changes the answer. The operator process imports every handler; a model server
# imports only the server.
EXPOSITION = {
    "operator": (
        "import trailboss.handlers\n"
        "from prometheus_client import REGISTRY, generate_latest\n"
        "print(generate_latest(REGISTRY).decode())\n"
    ),
    "model server": (
        "import trailboss.serving.server\n"
        "from prometheus_client import generate_latest\n"
        "from trailboss.serving.metrics import ServerMetrics\n"
        "print(generate_latest(ServerMetrics('churn', 'churn-v1').registry).decode())\n"
    ),
}
SERIES_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}


@cache
def scraped(process: str) -> str:
    """The exposition text a fresh ``process`` serves on /metrics."""
    result = subprocess.run(
        [sys.executable, "-c", EXPOSITION[process]],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return result.stdout


def exported_series() -> dict[str, set[str]]:
    """Metric family -> the series names Prometheus stores for it, over every
    process the project runs."""
    return {
        family.name: {family.name + suffix for suffix in SERIES_SUFFIXES.get(family.type, ("",))}
        for process in EXPOSITION
        for family in text_string_to_metric_families(scraped(process))
    }


@pytest.mark.parametrize("process", list(EXPOSITION))
def test_no_created_series_is_exported(process: str) -> None:
    """prometheus_client adds a `_created` series to every counter and histogram
    by default; nothing reads them and they double what Prometheus stores."""
    text = scraped(process)
    assert "trailboss_" in text
    assert [line for line in text.splitlines() if "_created" in line] == []
