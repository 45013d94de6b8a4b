"""Wait or fail: the one table every reconciler answers errors from."""

from __future__ import annotations

import pytest
from kubernetes.client.exceptions import ApiException

from trailboss.clients.protocols import (
    DataNotFound,
    StoreUnavailable,
    TrackingRejected,
    TrackingUnavailable,
)
from trailboss.reconcilers.outcomes import Failed, Verdict, Waiting, classify


def _api(status: int) -> ApiException:
    return ApiException(status=status, reason="Reason")


@pytest.mark.parametrize(
    ("error", "verdict", "reason"),
    [
        (TrackingUnavailable("connection refused"), Verdict.WAIT, "TrackingServerUnavailable"),
        (TrackingRejected("denied", "PERMISSION_DENIED"), Verdict.WAIT, "TrackingUnauthorized"),
        (TrackingRejected("bad token", "UNAUTHENTICATED"), Verdict.WAIT, "TrackingUnauthorized"),
        (
            TrackingRejected("slow down", "REQUEST_LIMIT_EXCEEDED"),
            Verdict.WAIT,
            "TrackingServerUnavailable",
        ),
        (TrackingRejected("bad name", "INVALID_PARAMETER_VALUE"), Verdict.FAIL, "TrackingRejected"),
        (TrackingRejected("no run", "RESOURCE_DOES_NOT_EXIST"), Verdict.FAIL, "TrackingRejected"),
        (StoreUnavailable("timeout"), Verdict.WAIT, "DataStoreUnavailable"),
        (StoreUnavailable("denied", "AccessDenied"), Verdict.WAIT, "DataStoreUnavailable"),
        (
            StoreUnavailable("bad bucket", "InvalidBucketName"),
            Verdict.FAIL,
            "InvalidStorageLocation",
        ),
        (DataNotFound("s3://b/k does not exist"), Verdict.WAIT, "DataNotFound"),
        (_api(500), Verdict.WAIT, "KubernetesUnavailable"),
        (_api(429), Verdict.WAIT, "KubernetesUnavailable"),
        (_api(403), Verdict.WAIT, "Forbidden"),
        (_api(422), Verdict.FAIL, "ChildRejected"),
        (ConnectionRefusedError("refused"), Verdict.WAIT, "KubernetesUnavailable"),
        (Waiting("DatasetNotFound", "upload it"), Verdict.WAIT, "DatasetNotFound"),
        (Failed("InvalidSpec", "spec.x"), Verdict.FAIL, "InvalidSpec"),
    ],
)
def test_error_maps_to_wait_or_fail(error: Exception, verdict: Verdict, reason: str) -> None:
    outcome = classify(error)
    assert outcome is not None
    assert (outcome.verdict, outcome.reason) == (verdict, reason)
    assert outcome.message


def test_credentials_problem_says_what_to_fix() -> None:
    outcome = classify(TrackingRejected("token expired", "UNAUTHENTICATED"))
    assert outcome is not None
    assert "fix the token" in outcome.message


def test_a_bug_is_not_mistaken_for_an_outage() -> None:
    assert classify(KeyError("phase")) is None
