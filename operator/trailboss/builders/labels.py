"""Standard labels on everything the operator creates."""

from __future__ import annotations

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "trailboss"
TRAININGRUN_LABEL = "trailboss.dev/trainingrun"
MODEL_LABEL = "trailboss.dev/model"
SOURCE_RUN_LABEL = "trailboss.dev/source-trainingrun"
SOURCE_RUN_UID_LABEL = "trailboss.dev/source-trainingrun-uid"
"""The UID of the TrainingRun that registered a ModelVersion: names are reused, UIDs never."""
COMPONENT_TRAINING = "training"


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
