"""What an error means for the object being reconciled: wait and retry, or
fail for good. One table, so every reconciler answers the same way.

Waiting is for what can fix itself or be fixed outside the object: outages,
server errors, rate limits, credentials and permissions (a rotated token must
not kill an immutable object). Failing is for what no retry can change: the
object asks for something the service refuses for a stated reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from trailboss.clients.protocols import (
    DataNotFound,
    StoreUnavailable,
    TrackingRejected,
    TrackingUnavailable,
)


class Verdict(StrEnum):
    WAIT = "wait"
    FAIL = "fail"


@dataclass(frozen=True)
class Outcome:
    """How a reconcile ended when it could not finish: the Ready reason and message."""

    verdict: Verdict
    reason: str
    message: str


class Waiting(Exception):
    """A step cannot finish yet; the status says why, and it is retried later.

    ``retry_after`` asks for the next try at a given time (seconds from now)
    instead of the exponential backoff."""

    def __init__(self, reason: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.retry_after = retry_after


class Failed(Exception):
    """The object cannot succeed as it is: it is marked failed, once, with the reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


# MLflow error codes that a retry can outlive.
_TRACKING_WAIT_CODES = {
    "PERMISSION_DENIED": "TrackingUnauthorized",
    "UNAUTHENTICATED": "TrackingUnauthorized",
    "RESOURCE_EXHAUSTED": "TrackingServerUnavailable",
    "REQUEST_LIMIT_EXCEEDED": "TrackingServerUnavailable",
    "TEMPORARILY_UNAVAILABLE": "TrackingServerUnavailable",
}
# S3 error codes that no retry can change.
_STORAGE_FAIL_CODES = {"InvalidBucketName", "InvalidURI", "KeyTooLongError", "InvalidArgument"}
# Kubernetes answers that mean the operator built a child the API server refuses.
_KUBE_FAIL_STATUSES = {400, 422}


def classify(error: Exception) -> Outcome | None:
    """The outcome an error from a client implies; None for an unexpected error
    (a bug), which the caller reports as such."""
    if isinstance(error, Waiting):
        return Outcome(Verdict.WAIT, error.reason, error.message)
    if isinstance(error, Failed):
        return Outcome(Verdict.FAIL, error.reason, error.message)
    if isinstance(error, TrackingUnavailable):
        return _wait("TrackingServerUnavailable", f"MLflow is unreachable: {error} (retrying)")
    if isinstance(error, TrackingRejected):
        return _tracking_rejected(error)
    if isinstance(error, DataNotFound):
        return _wait("DataNotFound", f"S3: {error} (retrying)")
    if isinstance(error, StoreUnavailable):
        if error.code in _STORAGE_FAIL_CODES:
            return Outcome(Verdict.FAIL, "InvalidStorageLocation", f"S3 refused: {error}")
        return _wait("DataStoreUnavailable", f"S3: {error} (retrying)")
    if isinstance(error, ApiException):
        return _kube(error)
    if isinstance(error, HTTPError | OSError | TimeoutError):
        return _wait("KubernetesUnavailable", f"API server: {error} (retrying)")
    return None


def _wait(reason: str, message: str) -> Outcome:
    return Outcome(Verdict.WAIT, reason, message)


def _tracking_rejected(error: TrackingRejected) -> Outcome:
    reason = _TRACKING_WAIT_CODES.get(error.code)
    if reason == "TrackingUnauthorized":
        return _wait(
            reason,
            f"MLflow refused the operator's credentials ({error.code}): {error}; "
            "fix the token or permissions (retrying)",
        )
    if reason:
        return _wait(reason, f"MLflow is busy ({error.code}): {error} (retrying)")
    code = f" ({error.code})" if error.code else ""
    return Outcome(Verdict.FAIL, "TrackingRejected", f"MLflow refused the request{code}: {error}")


def _kube(error: ApiException) -> Outcome:
    status = int(error.status or 0)
    if status in _KUBE_FAIL_STATUSES:
        return Outcome(
            Verdict.FAIL,
            "ChildRejected",
            f"the API server refused an object built from this spec: {error.reason} {_body(error)}",
        )
    if status in (401, 403):
        return _wait(
            "Forbidden",
            f"the operator is not allowed to do this ({status} {error.reason}): check its "
            "RBAC (retrying)",
        )
    return _wait("KubernetesUnavailable", f"API server: {status} {error.reason} (retrying)")


def _body(error: ApiException) -> str:
    return str(error.body or "")[:300]
