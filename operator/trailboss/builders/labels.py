"""Standard labels on everything the operator creates."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "trailboss"
TRAININGRUN_LABEL = "trailboss.dev/trainingrun"
MODEL_LABEL = "trailboss.dev/model"
SOURCE_RUN_LABEL = "trailboss.dev/source-trainingrun"
SOURCE_RUN_UID_LABEL = "trailboss.dev/source-trainingrun-uid"
"""The UID of the TrainingRun that registered a ModelVersion: names are reused, UIDs never."""
COMPONENT_TRAINING = "training"
OPERATOR_INSTANCE_LABEL = "trailboss.dev/operator-instance"
"""Which operator handles an object: the one started with that
``TRAILBOSS_OPERATOR_INSTANCE``. Objects without it belong to the operator started
without one. Several operators can so share a cluster, say a new release tried
on a few Deployments before it replaces the old."""


def standard(name: str, component: str, instance: str) -> dict[str, str]:
    """``app.kubernetes.io/*`` labels, as kubectl, Argo CD and dashboards expect."""
    return {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/instance": instance,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": "trailboss",
        MANAGED_BY_LABEL: MANAGED_BY,
    }


def label_value(value: str) -> str:
    """A label value is at most 63 characters and starts and ends alphanumeric."""
    return value[:63].strip("-_.")


def owner_reference(api_version: str, kind: str, name: str, uid: str) -> dict[str, object]:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def handled_by(metadata: Mapping[str, Any], instance: str | None) -> bool:
    """Whether the operator started as ``instance`` (None: the default one) handles
    an object with this metadata."""
    labels = metadata.get("labels") or {}
    return labels.get(OPERATOR_INSTANCE_LABEL) == instance


def same_operator(child: dict[str, Any], parent: Mapping[str, Any]) -> dict[str, Any]:
    """``child`` (a TrainingRun, a ModelVersion) made by the operator that handles
    ``parent``, so the same operator goes on with it."""
    instance = (parent.get("labels") or {}).get(OPERATOR_INSTANCE_LABEL)
    if instance is not None:
        child["metadata"].setdefault("labels", {})[OPERATOR_INSTANCE_LABEL] = instance
    return child
