"""The API server filters the Jobs and apps/v1 Deployments the operator
watches down to those it made, and everything it makes passes that filter."""

from __future__ import annotations

import kopf
import pytest
from kopf import Resource

from tests.unit.factories import OWNER, context, training_spec
from trailboss.api.deployment import DeploymentSpec
from trailboss.builders import drift, serving, training
from trailboss.builders.labels import MANAGED_BY, MANAGED_BY_LABEL, OPERATOR_INSTANCE_LABEL
from trailboss.handlers.startup import configure

JOBS = Resource("batch", "v1", "jobs", kind="Job")
SERVERS = Resource("apps", "v1", "deployments", kind="Deployment")


def _selectors(resource: Resource) -> list[str]:
    settings = kopf.OperatorSettings()
    configure(settings, None)
    selectors: list[str] = settings.watching.label_selectors.collect(resource)
    return selectors


def test_jobs_are_filtered_to_the_operators_own() -> None:
    assert _selectors(JOBS) == [f"{MANAGED_BY_LABEL}={MANAGED_BY}"]


def test_apps_deployments_are_filtered_to_model_servers() -> None:
    assert _selectors(SERVERS) == [serving.DEPLOYMENT_LABEL]


OWN_KINDS = [
    Resource("trailboss.dev", "v1alpha1", "deployments", kind="Deployment"),
    Resource("trailboss.dev", "v1alpha1", "trainingruns", kind="TrainingRun"),
    Resource("trailboss.dev", "v1alpha1", "modelversions", kind="ModelVersion"),
]


@pytest.mark.parametrize("resource", OWN_KINDS)
def test_the_operators_own_kinds_are_filtered_only_by_operator_instance(
    resource: Resource,
) -> None:
    """The default operator gets every object without the instance label; one
    started as an instance, only those labelled with it."""
    assert _selectors(resource) == [f"!{OPERATOR_INSTANCE_LABEL}"]
    settings = kopf.OperatorSettings()
    configure(settings, None, "canary")
    assert settings.watching.label_selectors.collect(resource) == [
        f"{OPERATOR_INSTANCE_LABEL}=canary"
    ]


def test_pods_are_not_filtered() -> None:
    assert _selectors(Resource("", "v1", "pods", kind="Pod")) == []


def test_every_job_the_operator_makes_passes_the_filter() -> None:
    # The API refuses pod template labels under app.kubernetes.io/, so none can
    # take a Job out of the operator's sight; others are merged in beside it.
    spec = training_spec(podTemplate={"metadata": {"labels": {"team": "a"}}})
    ctx = drift.JobContext(image="trailboss:1")
    jobs = [
        training.build_job(OWNER, spec, context()),
        drift.profile_job(OWNER, ["profile"], ctx),
        drift.check_job(OWNER, 1, ["drift"], ctx),
    ]
    for job in jobs:
        assert job["metadata"]["labels"][MANAGED_BY_LABEL] == MANAGED_BY, job["metadata"]["name"]


def test_every_model_server_passes_the_filter() -> None:
    owner = serving.Owner(name="churn", namespace="ml", uid="u-1")
    spec = DeploymentSpec.model_validate(
        {"model": "churn", "versionPolicy": {"latest": "Validated"}}
    )
    served = serving.ServedVersion(name="churn-3", model="churn", artifact_uri="s3://m/1")
    ctx = serving.ServingContext(image="serve:1", tracking_uri="http://mlflow:5000")
    server = serving.build_server(owner, spec, served, 1, ctx)
    assert serving.DEPLOYMENT_LABEL in server["metadata"]["labels"]
