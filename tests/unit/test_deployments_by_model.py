"""Which Deployments a new ModelVersion reaches: kept from the Deployments' events."""

from __future__ import annotations

from typing import Any

from trailboss.handlers.deployment import DeploymentsByModel


def _deployment(name: str, uid: str, model: str, namespace: str = "ml") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": namespace, "uid": uid},
        "spec": {"model": model},
    }


def test_a_model_reaches_its_deployments_in_its_namespace_only() -> None:
    found = DeploymentsByModel()
    found.seen(_deployment("churn", "u1", "churn"), gone=False)
    found.seen(_deployment("churn-eu", "u2", "churn"), gone=False)
    found.seen(_deployment("churn", "u3", "churn", namespace="other"), gone=False)
    found.seen(_deployment("fraud", "u4", "fraud"), gone=False)
    assert sorted(found.serving("ml", "churn")) == [("churn", "u1"), ("churn-eu", "u2")]
    assert found.serving("ml", "nothing") == []


def test_a_deployment_that_changes_model_or_goes_is_no_longer_reached() -> None:
    found = DeploymentsByModel()
    found.seen(_deployment("churn", "u1", "churn"), gone=False)
    found.seen(_deployment("churn", "u1", "churn-v2"), gone=False)
    assert found.serving("ml", "churn") == []
    assert found.serving("ml", "churn-v2") == [("churn", "u1")]
    found.seen(_deployment("churn", "u1", "churn-v2"), gone=True)
    assert found.serving("ml", "churn-v2") == []
