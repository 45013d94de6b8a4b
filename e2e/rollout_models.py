"""The ModelVersions the rollout tests serve, as a fixture the test modules load
with `pytest_plugins`: good v1 and v2, and a bad v3 that fails 60 % of its
requests. All three are Validated: their offline metrics are fine."""

from __future__ import annotations

import pytest

from e2e.cluster import Cluster
from e2e.serving import model_version, publish_model

ERROR_SHARES = {"v1": 0.0, "v2": 0.0, "v3": 0.6}
"""The share of requests each version's model server fails."""


@pytest.fixture
def models(cluster: Cluster, namespace: str) -> dict[str, str]:
    """The model's name and the Prometheus that analyses its rollouts."""
    prometheus = cluster.env.get("TRAILBOSS_PROMETHEUS_URL")
    if not prometheus:
        pytest.fail("the stack exports no TRAILBOSS_PROMETHEUS_URL: no Prometheus to analyse")
    model = f"serve-{namespace}"
    for name, error_share in ERROR_SHARES.items():
        uri = f"s3://mlflow/e2e/{namespace}/{name}/model"
        publish_model(cluster.env, uri, error_share)
        cluster.create(namespace, model_version(name, model, uri))
    for name in ERROR_SHARES:
        cluster.wait_phase(namespace, "modelversions", name, {"Validated"}, 180)
    return {"model": model, "prometheus": prometheus}
