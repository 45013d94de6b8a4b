"""The local stack is a real Kubernetes: CRDs install, the API server enforces
their schema and CEL rules, Jobs and Deployments progress, MLflow and S3 answer."""

from __future__ import annotations

import copy
import json
import urllib.request
from typing import Any

import boto3
import pytest
import yaml
from kubernetes import client

from e2e.cluster import ROOT, RUN_LOCALLY, Cluster, wait_for
from trailboss.api.deployment import Deployment
from trailboss.api.modelversion import ModelVersion
from trailboss.api.trainingrun import TrainingRun

EXAMPLES = ROOT / "examples"


def _example(name: str, namespace: str) -> dict[str, Any]:
    manifest: dict[str, Any] = yaml.safe_load((EXAMPLES / name).read_text())
    manifest["metadata"]["namespace"] = namespace
    return manifest


def test_crds_install_with_names_columns_and_docs(cluster: Cluster, crds: list[str]) -> None:
    resources = cluster.kubectl("api-resources", "--api-group=trailboss.dev", "-o", "wide").stdout
    # NAME SHORTNAMES APIVERSION NAMESPACED KIND VERBS CATEGORIES, one kind a line.
    published = {
        cols[4]: (cols[0], tuple(cols[1].split(",")), cols[-1])
        for cols in (line.split() for line in resources.splitlines()[1:])
    }
    for model in (TrainingRun, ModelVersion, Deployment):
        info = model.info
        assert published[info.kind] == (info.plural, info.short_names, "trailboss")
    # The API server publishes a new CRD's OpenAPI a moment after it is Established.
    explained = wait_for(
        "kubectl explain to know TrainingRun",
        lambda: cluster.kubectl("explain", "trainingrun.spec.dataset", check=False).stdout,
        60,
    )
    assert "Training data in S3, pinned at start." in explained
    assert "`s3://bucket/prefix/` (trailing" in explained
    explained = cluster.kubectl("explain", "modelversion.spec.deletionPolicy").stdout
    assert "Retain keeps the registry version" in explained
    assert cluster.kubectl("get", "trailboss", "-A").returncode == 0


def test_every_example_is_accepted_by_the_api_server(
    cluster: Cluster, crds: list[str], namespace: str
) -> None:
    for path in sorted(EXAMPLES.glob("*.yaml")):
        manifest = _example(path.name, namespace)
        result = cluster.kubectl(
            "apply", "--dry-run=server", "-f", "-", stdin=json.dumps(manifest), check=False
        )
        assert result.returncode == 0, f"{path.name}: {result.stderr}"


def _mutated(name: str, namespace: str, path: str, value: Any) -> dict[str, Any]:
    manifest = copy.deepcopy(_example(name, namespace))
    *parents, leaf = path.split(".")
    node: Any = manifest
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if value is None:
        del node[leaf]
    elif isinstance(node, list):
        node[int(leaf)] = value
    else:
        node[leaf] = value
    return manifest


BAD = [
    (
        "trainingrun-churn.yaml",
        "spec.workers",
        0,
        "spec.workers: Invalid value: 0: spec.workers in body should be greater than or equal to 1",
    ),
    (
        "deployment-pinned.yaml",
        "spec.versionPolicy",
        {"latest": "Validated"},
        "set exactly one of spec.modelVersion (a pinned version) or spec.versionPolicy",
    ),
    (
        "deployment-pinned.yaml",
        "spec.rollout.steps.1",
        {"weight": 5},
        "spec.rollout.steps: Invalid value: weights must strictly increase",
    ),
    (
        "deployment-pinned.yaml",
        "spec.rollout.steps.2",
        {"weight": 101},
        "spec.rollout.steps[2].weight: Invalid value: 101",
    ),
    (
        "modelversion-import.yaml",
        "spec.artifactUri",
        "gs://elsewhere/model",
        'spec.artifactUri: Invalid value: "gs://elsewhere/model"',
    ),
]


@pytest.mark.parametrize(("example", "path", "value", "message"), BAD, ids=[b[1] for b in BAD])
def test_api_server_rejects_bad_manifests_naming_the_field(
    cluster: Cluster,
    crds: list[str],
    namespace: str,
    example: str,
    path: str,
    value: Any,
    message: str,
) -> None:
    manifest = _mutated(example, namespace, path, value)
    result = cluster.kubectl(
        "apply", "--dry-run=server", "-f", "-", stdin=json.dumps(manifest), check=False
    )
    assert result.returncode != 0
    assert message in result.stderr


def test_specs_are_immutable_where_the_api_says_so(
    cluster: Cluster, crds: list[str], namespace: str
) -> None:
    # No operator runs in this test: only the API server's rules are exercised.
    cluster.create(namespace, _example("trainingrun-churn.yaml", namespace))
    cluster.create(namespace, _example("modelversion-import.yaml", namespace))
    patch = cluster.kubectl(
        "-n",
        namespace,
        "patch",
        "trun",
        "churn-2026-11",
        "--type=merge",
        "-p",
        '{"spec":{"image":"other:2"}}',
        check=False,
    )
    assert patch.returncode != 0
    assert "spec is immutable except spec.suspend" in patch.stderr
    suspend = cluster.kubectl(
        "-n",
        namespace,
        "patch",
        "trun",
        "churn-2026-11",
        "--type=merge",
        "-p",
        '{"spec":{"suspend":true}}',
        check=False,
    )
    assert suspend.returncode == 0, suspend.stderr
    patch = cluster.kubectl(
        "-n",
        namespace,
        "patch",
        "mver",
        "churn-imported-v1",
        "--type=merge",
        "-p",
        '{"spec":{"metrics":{"accuracy":0.99}}}',
        check=False,
    )
    assert patch.returncode != 0
    assert "a ModelVersion's spec is immutable" in patch.stderr


def _job(name: str, namespace: str, command: list[str], labels: dict[str, str]) -> client.V1Job:
    return client.V1Job(
        metadata=client.V1ObjectMeta(name=name, namespace=namespace),
        spec=client.V1JobSpec(
            backoff_limit=0,
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(
                    restart_policy="Never",
                    containers=[
                        client.V1Container(name="main", image="busybox:1.36", command=command)
                    ],
                ),
            ),
        ),
    )


def _job_condition(cluster: Cluster, namespace: str, name: str) -> str | None:
    job = cluster.batch.read_namespaced_job_status(name, namespace)
    for condition in job.status.conditions or []:
        if condition.status == "True" and condition.type in ("Complete", "Failed"):
            return str(condition.type)
    return None


def test_job_completes_on_a_fake_node(cluster: Cluster, namespace: str) -> None:
    cluster.batch.create_namespaced_job(namespace, _job("hello", namespace, ["true"], {}))
    assert (
        wait_for("Job hello to finish", lambda: _job_condition(cluster, namespace, "hello"), 90)
        == "Complete"
    )


def test_job_with_the_runner_label_really_runs(cluster: Cluster, namespace: str) -> None:
    if cluster.env.get("TRAILBOSS_E2E_EXTERNAL"):
        pytest.skip("the pod runner belongs to the local stack; a real cluster runs pods itself")
    command = ["python", "-c", "import sys; print('trained for real'); sys.exit(3)"]
    cluster.batch.create_namespaced_job(
        namespace, _job("real", namespace, command, {RUN_LOCALLY: "true"})
    )
    assert (
        wait_for("Job real to finish", lambda: _job_condition(cluster, namespace, "real"), 90)
        == "Failed"
    )
    job = cluster.batch.read_namespaced_job_status("real", namespace)
    assert job.status.failed == 1
    pods = cluster.core.list_namespaced_pod(namespace, label_selector="job-name=real").items
    statuses = pods[0].status.container_statuses or []
    terminated = statuses[0].state.terminated
    assert terminated.exit_code == 3
    assert "trained for real" in (terminated.message or "")


def test_deployment_becomes_available(cluster: Cluster, namespace: str) -> None:
    labels = {"app": "web"}
    cluster.apps.create_namespaced_deployment(
        namespace,
        client.V1Deployment(
            metadata=client.V1ObjectMeta(name="web"),
            spec=client.V1DeploymentSpec(
                replicas=2,
                selector=client.V1LabelSelector(match_labels=labels),
                template=client.V1PodTemplateSpec(
                    metadata=client.V1ObjectMeta(labels=labels),
                    spec=client.V1PodSpec(
                        containers=[client.V1Container(name="web", image="nginx:1.27")]
                    ),
                ),
            ),
        ),
    )
    wait_for(
        "Deployment web to have 2 available replicas",
        lambda: (
            cluster.apps.read_namespaced_deployment_status(
                "web", namespace
            ).status.available_replicas
            == 2
        ),
        90,
    )


def test_mlflow_and_s3_answer(stack_env: dict[str, str]) -> None:
    if "MLFLOW_TRACKING_URI" not in stack_env:
        pytest.skip("set MLFLOW_TRACKING_URI and AWS_* to run against an external cluster")
    url = stack_env["MLFLOW_TRACKING_URI"] + "/api/2.0/mlflow/experiments/search?max_results=1"
    with urllib.request.urlopen(url, timeout=10) as response:
        assert "experiments" in json.loads(response.read())
    s3 = boto3.client(
        "s3",
        endpoint_url=stack_env.get("AWS_ENDPOINT_URL_S3"),
        aws_access_key_id=stack_env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=stack_env["AWS_SECRET_ACCESS_KEY"],
        region_name=stack_env.get("AWS_DEFAULT_REGION", "us-east-1"),
    )
    buckets = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert {"mlflow", "datasets"} <= buckets
