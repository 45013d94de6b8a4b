"""Why training pods that exist do not start. Pure.

A Job counts a pod as active from its creation, so a pod whose kubelet cannot
start it (a missing Secret, an image that cannot be pulled) looks like a worker
running. The kubelet says why only in the pod's container statuses.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from trailboss.api.trainingrun import TrainingPhase, TrainingReason
from trailboss.policies.training import MESSAGE_LIMIT, JobObservation, Progress

# Waiting reasons that do not end by themselves: someone has to change something.
# ContainerCreating and PodInitializing are not here; they are a pod starting.
_REMEDIES = {
    "CreateContainerConfigError": (
        "create the Secret or ConfigMap it names, or fix the reference "
        "(spec.s3CredentialsSecret, spec.env, spec.podTemplate.volumes)"
    ),
    "CreateContainerError": "see the message; the container runtime cannot create it",
    "ErrImagePull": "check spec.image and spec.podTemplate.imagePullSecrets",
    "ImagePullBackOff": "check spec.image and spec.podTemplate.imagePullSecrets",
    "InvalidImageName": "fix spec.image",
}

# A pod gets a few seconds to report before its Job's pods are looked at.
LOOK_AFTER = dt.timedelta(seconds=10)


def may_be_stuck(job: JobObservation, now: dt.datetime) -> bool:
    """Whether the Job has pods none of which is ready, for long enough to ask why.
    A burst of healthy runs never gets here: their pods are ready within seconds."""
    if not job.active or job.ready:
        return False
    since = job.start_time or job.created
    return since is None or now - since >= LOOK_AFTER


def not_starting(pods: list[dict[str, Any]]) -> Progress | None:
    """`PodsNotStarting`, with the kubelet's words and what to change, when a pod's
    container waits for a reason that needs a person; None otherwise."""
    for pod in pods:
        status = pod.get("status") or {}
        containers = [
            *(status.get("initContainerStatuses") or []),
            *(status.get("containerStatuses") or []),
        ]
        for container in containers:
            waiting = (container.get("state") or {}).get("waiting") or {}
            reason = waiting.get("reason")
            if reason in _REMEDIES:
                name = (pod.get("metadata") or {}).get("name", "?")
                message = str(waiting.get("message") or reason)
                return Progress(
                    TrainingPhase.PENDING,
                    TrainingReason.PODS_NOT_STARTING,
                    f"pod {name} cannot start: {reason}: {message[:MESSAGE_LIMIT]}; "
                    f"{_REMEDIES[reason]}",
                )
    return None
