"""ModelVersions on the real stack: artifact checks in S3, the MLflow registry, the gate."""

from __future__ import annotations

import io
from typing import Any

import pytest

from e2e.cluster import Cluster, Operator, OwnMlflow, own_labels, ready, wait_for
from e2e.lifecycle import mlflow, s3, split, versions_tagged

pytestmark = pytest.mark.usefixtures("running_operator")

MLMODEL = """artifact_path: model
flavors:
  python_function:
    loader_module: mlflow.sklearn
    model_path: model.pkl
    python_version: 3.11.7
"""


def _upload_model_dir(env: dict[str, str], uri: str) -> None:
    bucket, key = split(uri)
    client = s3(env)
    client.upload_fileobj(io.BytesIO(b"pickled-model-bytes"), bucket, f"{key}/model.pkl")
    client.upload_fileobj(io.BytesIO(MLMODEL.encode()), bucket, f"{key}/MLmodel")


def _model_version(
    name: str, model: str, artifact: str, metrics: dict[str, float], **spec: Any
) -> dict[str, Any]:
    return {
        "apiVersion": "trailboss.dev/v1alpha1",
        "kind": "ModelVersion",
        "metadata": {"name": name},
        "spec": {"model": model, "artifactUri": artifact, "metrics": metrics, **spec},
    }


@pytest.fixture
def artifact(cluster: Cluster, namespace: str) -> str:
    uri = f"s3://mlflow/imports/{namespace}/model"
    _upload_model_dir(cluster.env, uri)
    return uri


def test_hand_made_version_is_verified_registered_and_validated(
    cluster: Cluster, namespace: str, artifact: str
) -> None:
    model = f"imported-{namespace}"
    cluster.create(
        namespace,
        _model_version(
            "v1", model, artifact, {"accuracy": 0.93}, validation={"minimums": {"accuracy": 0.9}}
        ),
    )
    status = cluster.wait_phase(
        namespace, "modelversions", "v1", {"Validated", "Rejected", "Failed"}
    )
    assert status["phase"] == "Validated", status
    assert status["artifact"]["uri"] == artifact
    assert status["artifact"]["objects"] == 2
    assert status["artifact"]["digest"].startswith("sha256:")
    assert status["validation"]["message"] == "accuracy=0.93 >= 0.9"
    versions = versions_tagged(cluster.env, model, cluster.uid(namespace, "modelversions", "v1"))
    assert len(versions) == 1
    assert versions[0].source == artifact
    assert (
        mlflow(cluster.env).get_model_version_by_alias(model, "validated").version
        == versions[0].version
    )


def test_failing_gate_rejects_naming_the_metric(
    cluster: Cluster, namespace: str, artifact: str
) -> None:
    model = f"gated-{namespace}"
    cluster.create(
        namespace,
        _model_version(
            "weak",
            model,
            artifact,
            {"accuracy": 0.71},
            validation={"minimums": {"accuracy": 0.9}, "maximums": {"log_loss": 0.3}},
        ),
    )
    status = cluster.wait_phase(
        namespace, "modelversions", "weak", {"Validated", "Rejected", "Failed"}
    )
    assert status["phase"] == "Rejected"
    assert ready(status)["status"] == "False"
    assert ready(status)["reason"] == "ValidationFailed"
    message = status["validation"]["message"]
    assert "accuracy=0.71 below minimum 0.9" in message
    assert "log_loss missing (needs maximum 0.3)" in message
    got = cluster.kubectl("-n", namespace, "get", "mver", "weak").stdout
    assert "Rejected" in got


def test_artifact_that_appears_late_converges(cluster: Cluster, namespace: str) -> None:
    uri = f"s3://mlflow/imports/{namespace}/late-model"
    model = f"late-{namespace}"
    cluster.create(namespace, _model_version("late", model, uri, {"accuracy": 0.95}))
    cluster.wait_reason(namespace, "modelversions", "late", "ArtifactNotFound", 60)
    _upload_model_dir(cluster.env, uri)
    status = cluster.wait_phase(
        namespace, "modelversions", "late", {"Validated", "Rejected", "Failed"}, 300
    )
    assert status["phase"] == "Validated"
    assert (
        len(versions_tagged(cluster.env, model, cluster.uid(namespace, "modelversions", "late")))
        == 1
    )


def test_registry_outage_during_registration_converges_without_duplicates(
    cluster: Cluster,
    namespace: str,
    artifact: str,
    own_mlflow: OwnMlflow,
    own_operator: Operator,
) -> None:
    """The registry down (the test's own, so the others run on) as a version is made."""
    model = f"outage-{namespace}"
    own_mlflow.stop()
    version = _model_version("v1", model, artifact, {"accuracy": 0.9})
    version["metadata"]["labels"] = own_labels(namespace)
    cluster.create(namespace, version)
    cluster.wait_reason(namespace, "modelversions", "v1", "RegistryUnavailable", 90)
    # It keeps retrying through the outage and stays Pending, naming the cause.
    waits = (
        own_operator.metric("trailboss_reconcile_total", kind="ModelVersion", result="wait") or 0.0
    )
    wait_for(
        "two more retries during the outage",
        lambda: (
            (
                own_operator.metric("trailboss_reconcile_total", kind="ModelVersion", result="wait")
                or 0.0
            )
            >= waits + 2
        ),
        60,
    )
    during = cluster.status(namespace, "modelversions", "v1")
    assert (during["phase"], ready(during)["reason"]) == ("Pending", "RegistryUnavailable")
    own_mlflow.start()
    status = cluster.wait_phase(
        namespace, "modelversions", "v1", {"Validated", "Rejected", "Failed"}, 300
    )
    assert status["phase"] == "Validated"
    uid = cluster.uid(namespace, "modelversions", "v1")
    assert len(versions_tagged(own_mlflow.env, model, uid)) == 1


def test_deletion_policies(cluster: Cluster, namespace: str, artifact: str) -> None:
    model = f"deletion-{namespace}"
    cluster.create(namespace, _model_version("kept", model, artifact, {}, deletionPolicy="Retain"))
    cluster.create(namespace, _model_version("gone", model, artifact, {}, deletionPolicy="Delete"))
    final = {"Validated", "Rejected", "Failed"}
    kept = cluster.wait_phase(namespace, "modelversions", "kept", final)
    gone = cluster.wait_phase(namespace, "modelversions", "gone", final)
    assert (kept["phase"], gone["phase"]) == ("Validated", "Validated"), (kept, gone)
    # Two versions validated at once: the alias ends on the newer one.
    newest = max(int(kept["registryVersion"]), int(gone["registryVersion"]))
    assert mlflow(cluster.env).get_model_version_by_alias(model, "validated").version == str(newest)
    cluster.delete(namespace, "modelversions", "kept")
    cluster.delete(namespace, "modelversions", "gone")
    wait_for(
        "both ModelVersions to be deleted",
        lambda: cluster.list(namespace, "modelversions") == [],
        60,
    )
    client = mlflow(cluster.env)
    retained = client.get_model_version(model, kept["registryVersion"])
    assert "trailboss.dev/deleted-in-kubernetes" in retained.tags
    remaining = {v.version for v in client.search_model_versions(f"name = '{model}'")}
    assert remaining == {kept["registryVersion"]}
    assert gone["registryVersion"] not in remaining


def test_release_annotation_lets_deletion_through_while_the_registry_is_down(
    cluster: Cluster, namespace: str, artifact: str, own_mlflow: OwnMlflow, own_operator: Operator
) -> None:
    """The registry down (the test's own, so the others run on) as a version is deleted."""
    model = f"release-{namespace}"
    version = _model_version("stuck", model, artifact, {}, deletionPolicy="Delete")
    version["metadata"]["labels"] = own_labels(namespace)
    cluster.create(namespace, version)
    assert (
        cluster.wait_phase(namespace, "modelversions", "stuck", {"Validated", "Failed"})["phase"]
        == "Validated"
    )
    own_mlflow.stop()
    cluster.delete(namespace, "modelversions", "stuck")
    wait_for(
        "the finalizer to report the registry outage",
        lambda: (
            "trailboss.dev/release-finalizer"
            in ready(cluster.status(namespace, "modelversions", "stuck")).get("message", "")
        ),
        90,
    )
    assert cluster.get(namespace, "modelversions", "stuck") is not None
    cluster.kubectl(
        "-n", namespace, "annotate", "mver", "stuck", "trailboss.dev/release-finalizer=true"
    )
    wait_for(
        "the ModelVersion to be deleted",
        lambda: cluster.get(namespace, "modelversions", "stuck") is None,
        60,
    )
