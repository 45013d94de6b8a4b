"""Build the Jobs that profile a ModelVersion's reference data and check a
Deployment's predictions for drift.

Both run `trailboss profile` / `trailboss drift` from the trailboss-drift image on
the cluster's nodes, never in the operator, so a large window cannot stall
reconciles or grow the operator's memory. Pure functions: the same inputs give
the same manifest, and the names are deterministic, so a restart re-creates
nothing that already exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from trailboss.api.monitoring import MAX_DRIFT_PODS
from trailboss.builders import names
from trailboss.builders.labels import label_value, standard
from trailboss.builders.names import child_name
from trailboss.builders.podsecurity import container_security_context, pod_security_context
from trailboss.builders.training import COMPLETION_INDEX

PROFILE_LABEL = "trailboss.dev/profile-of"
"""On a profile Job: the ModelVersion it profiles."""
DRIFT_CHECK_LABEL = "trailboss.dev/drift-check-of"
"""On a drift check Job: the Deployment (trailboss.dev) it checks."""
CONTAINER = "drift"
# Finished Jobs stay an hour for `kubectl logs`; the operator has read them by then.
TTL_AFTER_FINISHED = 3600
# A check reads at most one window; far longer than that means it is stuck.
DEADLINE_SECONDS = 1800
SHARD_INDEX_ENV = "JOB_COMPLETION_INDEX"
"""The pod's index in a check's Indexed Job. Kubernetes adds this variable
itself; declared here too, so the command's $(JOB_COMPLETION_INDEX) does not
depend on that."""


@dataclass(frozen=True)
class JobContext:
    """What the operator's settings add to every drift and profile Job."""

    image: str
    s3_endpoint_url: str | None = None
    credentials_secret: str | None = None
    pod_labels: dict[str, str] = field(default_factory=dict)
    image_pull_policy: str | None = None
    """None: Kubernetes' default for the image's tag."""
    image_pull_secrets: tuple[str, ...] = ()
    """Names of Secrets in the Job's namespace, for an image in a private registry."""


@dataclass(frozen=True)
class ModelVersionOwner(names.Owner):
    """A ModelVersion as the owner of its profile Job."""

    kind = "ModelVersion"


def profile_job_name(owner: names.Owner, attempt: int = 1) -> str:
    """The Job of one attempt (1, 2, ...) at a ModelVersion's reference profile."""
    return child_name(owner.name, "profile" if attempt <= 1 else f"profile-{attempt}", owner.uid)


# Pods of an Indexed Job are given the hostname "<job>-<index>", a DNS label too.
CHECK_NAME_LIMIT = names.MAX_NAME - len(f"-{MAX_DRIFT_PODS - 1}")


def check_job_name(owner: names.Owner, number: int) -> str:
    """The Job of check number ``number`` (1, 2, ...) of one Deployment, whatever
    number of pods runs it."""
    return child_name(owner.name, f"drift-{number}", owner.uid, limit=CHECK_NAME_LIMIT)


def profile_job(
    owner: names.Owner, args: list[str], ctx: JobContext, attempt: int = 1
) -> dict[str, Any]:
    labels = {**standard("trailboss", "drift-profile", owner.name),
              PROFILE_LABEL: label_value(owner.name)}  # fmt: skip
    return _job(profile_job_name(owner, attempt), owner, labels, args, ctx)


def check_job(
    owner: names.Owner, number: int, args: list[str], ctx: JobContext, pods: int = 1
) -> dict[str, Any]:
    """Check number ``number``; over ``pods`` > 1, one Indexed Job whose pods each
    run the check for their shard. The name depends on the number alone, so a
    change of parallelism during a check never starts a second Job for it."""
    labels = {**standard("trailboss", "drift-check", owner.name),
              DRIFT_CHECK_LABEL: label_value(owner.name)}  # fmt: skip
    job = _job(check_job_name(owner, number), owner, labels, args, ctx)
    if pods > 1:
        spec = job["spec"]
        # backoffLimit 0 stays: one failed pod fails the check, never half a result.
        spec.update(completionMode="Indexed", completions=pods, parallelism=pods)
        index = {
            "name": SHARD_INDEX_ENV,
            "valueFrom": {"fieldRef": {"fieldPath": COMPLETION_INDEX}},
        }
        spec["template"]["spec"]["containers"][0]["env"].append(index)
    return job


def _job(
    name: str, owner: names.Owner, labels: dict[str, str], args: list[str], ctx: JobContext
) -> dict[str, Any]:
    container = {
        "name": CONTAINER,
        "image": ctx.image,
        "command": ["trailboss", *args],
        "env": _env(ctx),
        # Memory is bounded by one column at a time, not by the window's size.
        "resources": {
            "requests": {"cpu": "250m", "memory": "256Mi"},
            "limits": {"memory": "1Gi"},
        },
        "securityContext": container_security_context(None),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    if ctx.image_pull_policy:
        container["imagePullPolicy"] = ctx.image_pull_policy
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": owner.namespace,
            "labels": labels,
            "ownerReferences": [owner.reference()],
        },
        "spec": {
            # A failed check is reported and the next one runs at the next
            # interval; retrying in place would only repeat the same error.
            "backoffLimit": 0,
            "activeDeadlineSeconds": DEADLINE_SECONDS,
            "ttlSecondsAfterFinished": TTL_AFTER_FINISHED,
            "template": {
                "metadata": {"labels": {**labels, **ctx.pod_labels}},
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "securityContext": pod_security_context(None),
                    "containers": [container],
                    "volumes": [{"name": "tmp", "emptyDir": {}}],
                    **_image_pull_secrets(ctx),
                },
            },
        },
    }


def _image_pull_secrets(ctx: JobContext) -> dict[str, Any]:
    if not ctx.image_pull_secrets:
        return {}
    return {"imagePullSecrets": [{"name": name} for name in ctx.image_pull_secrets]}


def _env(ctx: JobContext) -> list[dict[str, Any]]:
    home = [{"name": "HOME", "value": "/tmp"}, {"name": "TMPDIR", "value": "/tmp"}]
    return [*home, *names.s3_env(ctx.s3_endpoint_url, ctx.credentials_secret)]
