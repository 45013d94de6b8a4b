"""Build the TrainingRun a Deployment's retraining starts: the template's spec
with its lineage in labels and annotations. Pure."""

from __future__ import annotations

from typing import Any

from trailboss.api.common import API_VERSION
from trailboss.builders.labels import label_value, owner_reference, standard
from trailboss.builders.names import training_run_name

RETRAINED_BY_LABEL = "trailboss.dev/retrained-by"
"""On a TrainingRun: the Deployment (trailboss.dev) that started it."""
REASON_LABEL = "trailboss.dev/retraining-reason"


def run_name(deployment: str, uid: str, number: int) -> str:
    """Retraining number ``number`` (1, 2, ...) of one Deployment; short enough
    for a TrainingRun name."""
    return training_run_name(deployment, f"retrain-{number}", uid)


def training_run(
    *,
    deployment: str,
    namespace: str,
    uid: str,
    number: int,
    template: dict[str, Any],
    reason: str,
    trigger: str,
    drift_score: float | None,
    replaces: str | None,
    version_labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The TrainingRun for one firing: the template's spec with its lineage.
    ``version_labels`` (the Deployment's versionPolicy.matchLabels) go on the
    ModelVersion it registers, over the template's own, so the policy picks it."""
    annotations = {"trailboss.dev/trigger": trigger}
    if replaces:
        annotations["trailboss.dev/replaces"] = replaces
    if drift_score is not None:
        annotations["trailboss.dev/drift-score"] = f"{drift_score:.4g}"
    reference = owner_reference(API_VERSION, "Deployment", deployment, uid)
    reference["blockOwnerDeletion"] = False  # deleting the Deployment waits for no run
    return {
        "apiVersion": API_VERSION,
        "kind": "TrainingRun",
        "metadata": {
            "name": run_name(deployment, uid, number),
            "namespace": namespace,
            "labels": {
                **standard("trailboss", "retraining", deployment),
                RETRAINED_BY_LABEL: label_value(deployment),
                REASON_LABEL: reason,
            },
            "annotations": annotations,
            "ownerReferences": [reference],
        },
        "spec": _labelled(template, version_labels or {}),
    }


def _labelled(template: dict[str, Any], labels: dict[str, str]) -> dict[str, Any]:
    registration = template.get("register")
    if not labels or registration is None:
        return template  # nothing registered, nothing to label
    merged = {**(registration.get("labels") or {}), **labels}
    return {**template, "register": {**registration, "labels": merged}}
