"""Build the Job (and, for distributed runs, the headless Service) of a TrainingRun.

Pure functions: the same TrainingRun and context always give the same manifests,
which is what makes re-applying them after a restart harmless.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from trailboss.api.common import ApiModel, EnvVar, ResourceRequirements
from trailboss.api.podtemplate import KUEUE_QUEUE_LABEL, PodMetadata, PodTemplate
from trailboss.api.trainingrun import INFRASTRUCTURE_FAILURE_EXIT_CODE, DatasetPin, TrainingRunSpec
from trailboss.api.volumes import SHM_PATH, SHM_VOLUME
from trailboss.builders import names
from trailboss.builders.labels import (
    COMPONENT_TRAINING,
    MODEL_LABEL,
    TRAININGRUN_LABEL,
    label_value,
    standard,
)
from trailboss.builders.names import child_name
from trailboss.builders.podsecurity import container_security_context, pod_security_context

CONTAINER = "trainer"
DDP_PORT = 29500
GPU_RESOURCE = "nvidia.com/gpu"
COMPLETION_INDEX = "metadata.annotations['batch.kubernetes.io/job-completion-index']"
# Leave room for the "-<index>" suffix Indexed Jobs give pod hostnames.
JOB_NAME_LIMIT = 52


@dataclass(frozen=True)
class Owner(names.Owner):
    """The TrainingRun as an owner of its children."""

    kind = "TrainingRun"


@dataclass(frozen=True)
class TrainingContext:
    """What the operator knows besides the spec when it builds the Job."""

    tracking_uri: str
    run_id: str
    experiment_id: str
    dataset: DatasetPin | None = None
    s3_endpoint_url: str | None = None
    credentials_secret: str | None = None
    pod_labels: dict[str, str] = field(default_factory=dict)


def job_name(owner: Owner) -> str:
    return child_name(owner.name, "train", owner.uid, limit=JOB_NAME_LIMIT)


def service_name(owner: Owner) -> str:
    return child_name(owner.name, "workers", owner.uid)


def labels(owner: Owner, spec: TrainingRunSpec) -> dict[str, str]:
    return {
        **standard("trailboss-trainer", COMPONENT_TRAINING, label_value(owner.name)),
        TRAININGRUN_LABEL: label_value(owner.name),
        MODEL_LABEL: label_value(spec.model),
    }


def queue_name(labels: Mapping[str, str]) -> str | None:
    """The Kueue queue a run or its Job waits in, if any."""
    return labels.get(KUEUE_QUEUE_LABEL) or None


def build_job(owner: Owner, spec: TrainingRunSpec, ctx: TrainingContext) -> dict[str, Any]:
    name = job_name(owner)
    meta_labels = labels(owner, spec)
    extra = (spec.pod_template or PodTemplate()).metadata or PodMetadata()
    pod_metadata: dict[str, Any] = {"labels": {**extra.labels, **ctx.pod_labels, **meta_labels}}
    if extra.annotations:
        pod_metadata["annotations"] = dict(extra.annotations)
    job_spec: dict[str, Any] = {
        "completions": spec.workers,
        "parallelism": spec.workers,
        "backoffLimit": spec.backoff_limit,
        "podFailurePolicy": pod_failure_policy(),
        # Kueue asks for its Jobs to be created suspended; it resumes them on admission.
        "suspend": spec.suspend or queue_name(extra.labels) is not None,
        "template": {"metadata": pod_metadata, "spec": _pod_spec(owner, spec, ctx)},
    }
    if spec.workers > 1:
        job_spec["completionMode"] = "Indexed"
    if spec.active_deadline_seconds is not None:
        job_spec["activeDeadlineSeconds"] = spec.active_deadline_seconds
    if spec.ttl_seconds_after_finished is not None:
        job_spec["ttlSecondsAfterFinished"] = spec.ttl_seconds_after_finished
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": owner.namespace,
            # The pods' labels on the Job too: Kueue reads its queue from the Job's.
            "labels": {**extra.labels, **meta_labels},
            "ownerReferences": [owner.reference()],
        },
        "spec": job_spec,
    }


def pod_failure_policy() -> dict[str, Any]:
    """Failures that are not the training code's do not use up `backoffLimit`: the
    trainer's infrastructure-failure exit code (storage or tracking unreachable for
    longer than it retries) and pods evicted or preempted. The Job replaces those
    pods; `activeDeadlineSeconds` bounds how long it keeps doing so."""
    return {
        "rules": [
            {
                "action": "Ignore",
                "onExitCodes": {
                    "containerName": CONTAINER,
                    "operator": "In",
                    "values": [INFRASTRUCTURE_FAILURE_EXIT_CODE],
                },
            },
            {
                "action": "Ignore",
                "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
            },
        ]
    }


def build_worker_service(owner: Owner, spec: TrainingRunSpec) -> dict[str, Any]:
    """Headless Service giving each worker a stable DNS name for rendezvous."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": service_name(owner),
            "namespace": owner.namespace,
            "labels": labels(owner, spec),
            "ownerReferences": [owner.reference()],
        },
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": {TRAININGRUN_LABEL: label_value(owner.name)},
            "ports": [{"name": "rendezvous", "port": DDP_PORT, "targetPort": DDP_PORT}],
        },
    }


def _pod_spec(owner: Owner, spec: TrainingRunSpec, ctx: TrainingContext) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": spec.image,
        "env": training_env(owner, spec, ctx),
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": container_security_context(spec.security_context),
    }
    if spec.command:
        container["command"] = list(spec.command)
    if spec.args:
        container["args"] = list(spec.args)
    resources = _resources(spec.resources, spec.gpus)
    if resources:
        container["resources"] = resources
    # The pod failure policy needs restartPolicy Never: a failed container must
    # fail its pod for the Job to see the exit code.
    pod: dict[str, Any] = {
        "restartPolicy": "Never",
        "securityContext": pod_security_context(spec.security_context),
        "containers": [container],
    }
    if spec.workers > 1:
        pod["subdomain"] = service_name(owner)
    if spec.node_selector:
        pod["nodeSelector"] = dict(spec.node_selector)
    if spec.tolerations:
        pod["tolerations"] = [t.to_json() for t in spec.tolerations]
    if spec.service_account_name:
        pod["serviceAccountName"] = spec.service_account_name
    template = spec.pod_template or PodTemplate()
    _add_volumes(pod, container, template)
    pod.update(_scheduling(template))
    return pod


def _add_volumes(pod: dict[str, Any], container: dict[str, Any], template: PodTemplate) -> None:
    volumes = [_manifest(v) for v in template.volumes]
    mounts = [_manifest(m) for m in template.volume_mounts]
    if template.shm_size is not None:
        # A container's own /dev/shm is 64Mi: too small for DataLoader workers.
        shm = {"medium": "Memory", "sizeLimit": template.shm_size}
        volumes.append({"name": SHM_VOLUME, "emptyDir": shm})
        mounts.append({"name": SHM_VOLUME, "mountPath": SHM_PATH})
    if volumes:
        pod["volumes"] = volumes
    if mounts:
        container["volumeMounts"] = mounts


def _scheduling(template: PodTemplate) -> dict[str, Any]:
    """Who pulls the image, where and when the pods run."""
    fields: dict[str, Any] = {}
    if template.image_pull_secrets:
        fields["imagePullSecrets"] = [_manifest(s) for s in template.image_pull_secrets]
    if template.affinity is not None:
        fields["affinity"] = _manifest(template.affinity)
    if template.priority_class_name:
        fields["priorityClassName"] = template.priority_class_name
    if template.scheduler_name:
        fields["schedulerName"] = template.scheduler_name
    return fields


def _manifest(part: ApiModel) -> dict[str, Any]:
    """A core/v1 part as the API server takes it: no empty lists or maps left over."""
    return part.model_dump(by_alias=True, exclude_none=True, exclude_defaults=True, mode="json")


def _resources(resources: ResourceRequirements | None, gpus: int) -> dict[str, Any]:
    out: dict[str, Any] = resources.to_json() if resources else {}
    out = {k: v for k, v in out.items() if v}
    if gpus:
        out.setdefault("limits", {})[GPU_RESOURCE] = gpus
    return out


def training_env(owner: Owner, spec: TrainingRunSpec, ctx: TrainingContext) -> list[dict[str, Any]]:
    """Everything the training code needs to report its results, then the user's env
    (the user's values win: Kubernetes keeps the last duplicate)."""
    env: list[dict[str, Any]] = [
        _plain("MLFLOW_TRACKING_URI", ctx.tracking_uri),
        _plain("MLFLOW_RUN_ID", ctx.run_id),
        _plain("MLFLOW_EXPERIMENT_ID", ctx.experiment_id),
        _plain("TRAILBOSS_MODEL", spec.model),
        _plain("TRAILBOSS_TRAININGRUN", owner.name),
        _plain("TRAILBOSS_HYPERPARAMETERS", json.dumps(spec.hyperparameters, sort_keys=True)),
    ]
    env += [_plain(hp_variable(k), v) for k, v in sorted(spec.hyperparameters.items())]
    if spec.registration:
        env.append(_plain("TRAILBOSS_ARTIFACT_PATH", spec.registration.artifact_path))
    if ctx.dataset:
        env.append(_plain("TRAILBOSS_DATASET_URI", ctx.dataset.uri))
        version = ctx.dataset.version_id or ctx.dataset.etag or ctx.dataset.digest
        if version:
            env.append(_plain("TRAILBOSS_DATASET_VERSION", version))
        if ctx.dataset.version_id:
            # On a versioned bucket the exact pinned object can be read back.
            env.append(_plain("TRAILBOSS_DATASET_VERSION_ID", ctx.dataset.version_id))
    if ctx.s3_endpoint_url:
        env.append(_plain("MLFLOW_S3_ENDPOINT_URL", ctx.s3_endpoint_url))
        env.append(_plain("AWS_ENDPOINT_URL_S3", ctx.s3_endpoint_url))
    secret = spec.s3_credentials_secret or ctx.credentials_secret
    if secret:
        env += [_from_secret(key, secret) for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")]
    if spec.workers > 1:
        env += _rendezvous_env(owner, spec)
    return env + [_user_env(e) for e in spec.env]


def hp_variable(name: str) -> str:
    """``learning-rate`` becomes ``HP_LEARNING_RATE``."""
    return "HP_" + re.sub(r"[^A-Za-z0-9]", "_", name).upper()


def _rendezvous_env(owner: Owner, spec: TrainingRunSpec) -> list[dict[str, Any]]:
    leader = f"{job_name(owner)}-0.{service_name(owner)}"
    return [
        _plain("MASTER_ADDR", leader),
        _plain("MASTER_PORT", str(DDP_PORT)),
        _plain("WORLD_SIZE", str(spec.workers)),
        {"name": "RANK", "valueFrom": {"fieldRef": {"fieldPath": COMPLETION_INDEX}}},
    ]


def _plain(name: str, value: str) -> dict[str, Any]:
    return {"name": name, "value": value}


def _from_secret(key: str, secret: str) -> dict[str, Any]:
    return {"name": key, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def _user_env(var: EnvVar) -> dict[str, Any]:
    return var.to_json()
