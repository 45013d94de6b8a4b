"""A Job whose pods admission refuses says so: `PodsRejected` with the API
server's message and what to change, not "waiting for pods to start"."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from trailboss.api.trainingrun import TrainingPhase
from trailboss.policies.training import JobObservation, pods_rejected

POD_SECURITY = (
    'Error creating: pods "churn-train-2d04d-x7k2p" is forbidden: violates PodSecurity '
    '"restricted:latest": runAsNonRoot != true (pod or container "trainer" must set '
    "securityContext.runAsNonRoot=true)"
)
QUOTA = (
    'Error creating: pods "churn-train-2d04d-abcde" is forbidden: exceeded quota: gpus, '
    "requested: requests.nvidia.com/gpu=1, used: requests.nvidia.com/gpu=4, limited: "
    "requests.nvidia.com/gpu=4"
)
WEBHOOK = (
    'Error creating: admission webhook "validate.kyverno.svc" denied the request: '
    "images must come from registry.acme.io"
)


def event(message: str, at: str = "2026-11-23T10:00:00Z", reason: str = "FailedCreate") -> Any:
    return {"type": "Warning", "reason": reason, "message": message, "lastTimestamp": at}


@pytest.mark.parametrize(
    ("message", "says", "remedy"),
    [
        (
            POD_SECURITY,
            'violates PodSecurity "restricted:latest"',
            "spec.securityContext.runAsRoot",
        ),
        (QUOTA, "exceeded quota: gpus", "ResourceQuota"),
        (WEBHOOK, "registry.acme.io", "admission policy or webhook"),
    ],
)
def test_refused_pods_are_named_with_the_admission_message(
    message: str, says: str, remedy: str
) -> None:
    verdict = pods_rejected(JobObservation(), [event(message)])
    assert verdict is not None
    assert verdict.phase == TrainingPhase.PENDING
    assert verdict.reason == "PodsRejected"
    assert says in verdict.message
    assert remedy in verdict.message
    assert not verdict.message.startswith("Error creating")


def test_the_latest_refusal_is_reported() -> None:
    events = [event(QUOTA, "2026-11-23T10:00:00Z"), event(POD_SECURITY, "2026-11-23T10:05:00Z")]
    verdict = pods_rejected(JobObservation(), events)
    assert verdict is not None
    assert "PodSecurity" in verdict.message


def test_events_from_the_python_client_and_events_api_are_read() -> None:
    client_style = {
        "reason": "FailedCreate",
        "message": QUOTA,
        "last_timestamp": dt.datetime(2026, 11, 23, tzinfo=dt.UTC),
    }
    events_api = {
        "reason": "FailedCreate",
        "note": POD_SECURITY,
        "eventTime": "2026-11-23T11:00:00Z",
    }
    verdict = pods_rejected(JobObservation(), [client_style, events_api])
    assert verdict is not None
    assert "PodSecurity" in verdict.message


@pytest.mark.parametrize(
    ("job", "events"),
    [
        (JobObservation(), []),
        (
            JobObservation(),
            [event("Created pod: churn-train-2d04d-x7k2p", reason="SuccessfulCreate")],
        ),
        (JobObservation(), [event("Error creating: etcdserver: request timed out")]),
        (JobObservation(active=1), [event(POD_SECURITY)]),
        (JobObservation(complete=True), [event(POD_SECURITY)]),
        (JobObservation(failed_reason="BackoffLimitExceeded"), [event(POD_SECURITY)]),
        (JobObservation(suspended=True), [event(POD_SECURITY)]),
    ],
    ids=["no events", "pods created", "transient error", "running", "done", "failed", "suspended"],
)
def test_no_verdict_while_pods_exist_or_nothing_was_refused(
    job: JobObservation, events: list[Any]
) -> None:
    assert pods_rejected(job, events) is None
