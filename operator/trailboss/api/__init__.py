"""The Trailboss API, group `trailboss.dev`, version `v1alpha1`.

These pydantic models are the single source of truth: the CRDs in `crds/`
and the Helm chart are generated from them (`trailboss crds`).
"""

from trailboss.api.common import API_VERSION, GROUP, VERSION, Condition, ConditionStatus
from trailboss.api.deployment import Deployment, DeploymentSpec, DeploymentStatus
from trailboss.api.modelversion import ModelVersion, ModelVersionSpec, ModelVersionStatus
from trailboss.api.trainingrun import TrainingRun, TrainingRunSpec, TrainingRunStatus

KINDS = (TrainingRun, ModelVersion, Deployment)

__all__ = [
    "API_VERSION",
    "GROUP",
    "KINDS",
    "VERSION",
    "Condition",
    "ConditionStatus",
    "Deployment",
    "DeploymentSpec",
    "DeploymentStatus",
    "ModelVersion",
    "ModelVersionSpec",
    "ModelVersionStatus",
    "TrainingRun",
    "TrainingRunSpec",
    "TrainingRunStatus",
]
