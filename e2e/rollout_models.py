"""The ModelVersions the rollout tests serve, as a fixture the test modules load
with `pytest_plugins`: good v1 and v2, and a bad v3 that fails 60 % of its
requests. All three are Validated: their offline metrics are fine."""

from __future__ import annotations

import pytest

from e2e.cluster import Cluster, own_labels
from e2e.serving import model_version, publish_model

ERROR_SHARES = {"v1": 0.0, "v2": 0.0, "v3": 0.6}
"""The share of requests each version's model server fails."""


@pytest.fixture
def models(request: pytest.FixtureRequest, cluster: Cluster, namespace: str) -> dict[str, str]:
    """The model's name and the Prometheus that analyses its rollouts. A test
    with an `own_operator` gets ModelVersions that operator handles, registered
    in its `own_mlflow` when it has one."""
    prometheus = cluster.env.get("TRAILBOSS_PROMETHEUS_URL")
    if not prometheus:
        pytest.fail("the stack exports no TRAILBOSS_PROMETHEUS_URL: no Prometheus to analyse")
    env, labels = cluster.env, {}
    if "own_mlflow" in request.fixturenames:
        env = request.getfixturevalue("own_mlflow").env
    if "own_operator" in request.fixturenames:
        request.getfixturevalue("own_operator")
        labels = own_labels(namespace)
    model = f"serve-{namespace}"
    for name, error_share in ERROR_SHARES.items():
        uri = f"s3://mlflow/e2e/{namespace}/{name}/model"
        publish_model(env, uri, error_share)
        version = model_version(name, model, uri)
        version["metadata"]["labels"] = labels
        cluster.create(namespace, version)
    for name in ERROR_SHARES:
        cluster.wait_phase(namespace, "modelversions", name, {"Validated"}, 180)
    return {"model": model, "prometheus": prometheus}
