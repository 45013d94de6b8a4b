"""Pods that exist but cannot start: which waiting reasons need a person."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from trailboss.policies import podstart
from trailboss.policies.training import JobObservation

NOW = dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.UTC)


def _pod(reason: str, message: str = "", init: bool = False) -> dict[str, Any]:
    statuses = [{"name": "c", "state": {"waiting": {"reason": reason, "message": message}}}]
    key = "initContainerStatuses" if init else "containerStatuses"
    return {"metadata": {"name": "run-0"}, "status": {key: statuses}}


@pytest.mark.parametrize(
    ("reason", "remedy"),
    [
        ("CreateContainerConfigError", "create the Secret or ConfigMap"),
        ("ImagePullBackOff", "check spec.image"),
        ("ErrImagePull", "check spec.image"),
        ("InvalidImageName", "fix spec.image"),
    ],
)
def test_a_reason_that_needs_a_person_is_named_with_its_fix(reason: str, remedy: str) -> None:
    found = podstart.not_starting([_pod(reason, "the kubelet's words")])
    assert found is not None
    assert found.reason == "PodsNotStarting"
    assert f"pod run-0 cannot start: {reason}: the kubelet's words" in found.message
    assert remedy in found.message


def test_init_containers_count_too() -> None:
    assert podstart.not_starting([_pod("ErrImagePull", init=True)]) is not None


@pytest.mark.parametrize("reason", ["ContainerCreating", "PodInitializing"])
def test_a_pod_that_is_starting_is_not_stuck(reason: str) -> None:
    assert podstart.not_starting([_pod(reason)]) is None
    assert podstart.not_starting([{"metadata": {"name": "p"}}]) is None


def test_pods_are_looked_at_only_when_none_is_ready_for_a_while() -> None:
    started = JobObservation(active=2, ready=0, start_time=NOW)
    assert not podstart.may_be_stuck(started, NOW + dt.timedelta(seconds=9))
    assert podstart.may_be_stuck(started, NOW + dt.timedelta(seconds=10))
    one_ready = JobObservation(active=2, ready=1, start_time=NOW)
    assert not podstart.may_be_stuck(one_ready, NOW + dt.timedelta(hours=1))
    assert not podstart.may_be_stuck(JobObservation(active=0), NOW)
