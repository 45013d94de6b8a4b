"""The I/O the reconcilers use, as interfaces, with the values and the errors
they speak in: the real clients implement them and raise these errors, and so
do the in-memory fakes of the unit tests, without casts. A reconciler imports
this module, never a concrete client (and so neither kubernetes, boto3, mlflow
nor requests)."""

from __future__ import annotations

import base64
import builtins
import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Protocol

from trailboss.api.trainingrun import DatasetPin

TIMEOUT_SECONDS = 10.0
"""How long one Prometheus query may take, unless its endpoint says otherwise."""

UID_TAG = "trailboss.dev/uid"
OBJECT_TAG = "trailboss.dev/object"
"""The MLflow tags by which a run or a registry version is found again: the
Kubernetes object's UID and its namespace/name."""


class Conflict(Exception):
    """The object changed since it was read (HTTP 409): read it again and retry."""


class Forbidden(Exception):
    """The API server refused a read (HTTP 403): the operator's role does not grant it."""


class DataNotFound(Exception):
    """Nothing exists at the URI."""


class ServerError(Exception):
    """A failure a server reported, with its own code for it (empty when it gave none)."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


class StoreUnavailable(ServerError):
    """S3 could not be reached, or refused the request; ``code`` is S3's error
    code (``AccessDenied``, ``InvalidBucketName``…) when it answered."""


@dataclass(frozen=True)
class Listing:
    uri: str
    objects: int
    size_bytes: int
    digest: str
    keys: tuple[str, ...]


class TrackingUnavailable(Exception):
    """The tracking server could not be reached or answered with a server error."""


class TrackingRejected(ServerError):
    """The tracking server refused the request (bad name, missing run, no access…).

    ``code`` is MLflow's error code, e.g. ``RESOURCE_DOES_NOT_EXIST``: whether
    to wait or to give up depends on it."""


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    experiment_id: str
    status: str
    artifact_uri: str
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class RegistryVersion:
    name: str
    version: str
    status: str
    source: str
    run_id: str | None
    tags: dict[str, str] = field(default_factory=dict)


class QueryFailed(Exception):
    """The query could not be answered: Prometheus unreachable, or the query refused."""


@dataclass(frozen=True)
class Credentials:
    """Who the operator is to one Prometheus: a bearer token, a user name and
    password (basic auth), or nobody. Their repr leaves the secrets out."""

    token: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    def authorization(self) -> str | None:
        """The Authorization header they make, if any."""
        if self.token is not None:
            return f"Bearer {self.token}"
        if self.username is not None and self.password is not None:
            return "Basic " + _basic(self.username, self.password)
        return None

    def redact(self, text: str) -> str:
        """``text`` without the secrets: a server may echo a request back in an error."""
        secrets = [self.token, self.password]
        if self.username is not None and self.password is not None:
            secrets.append(_basic(self.username, self.password))
        for secret in secrets:
            if secret:
                text = text.replace(secret, "***")
        return text


def _basic(username: str, password: str) -> str:
    # UTF-8, as RFC 7617 asks; requests' own basic auth would send Latin-1.
    return base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


@dataclass(frozen=True)
class Endpoint:
    """Where and how to ask one Prometheus."""

    url: str
    credentials: Credentials = Credentials()
    ca_bundle: str | None = field(default=None, repr=False)
    """PEM certificates that alone are trusted for an https URL; none: the system's."""
    ca_origin: str = "the CA bundle"
    """Where ``ca_bundle`` came from, for the errors about it."""
    timeout: float = TIMEOUT_SECONDS


class KubeClient(Protocol):
    def get(
        self, api_version: str, kind: str, namespace: str, name: str
    ) -> dict[str, Any] | None: ...

    def list(
        self, api_version: str, kind: str, namespace: str, labels: dict[str, str] | None = None
    ) -> list[dict[str, Any]]: ...

    def create(self, manifest: dict[str, Any]) -> dict[str, Any] | None: ...

    def events_for(self, namespace: str, kind: str, name: str) -> builtins.list[dict[str, Any]]: ...

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None: ...

    def patch(
        self, api_version: str, kind: str, namespace: str, name: str, patch: dict[str, Any]
    ) -> dict[str, Any] | None: ...

    def apply(self, manifest: dict[str, Any]) -> dict[str, Any]: ...

    def patch_status(
        self,
        api_version: str,
        kind: str,
        namespace: str,
        name: str,
        patch: dict[str, Any],
        resource_version: str | None,
    ) -> dict[str, Any] | None: ...

    def event(
        self, obj: dict[str, Any], reason: str, message: str, *, warning: bool = False
    ) -> None: ...


class TrackingClient(Protocol):
    uri: str

    def ensure_run(
        self,
        experiment: str,
        uid: str,
        run_name: str,
        tags: dict[str, str],
        params: dict[str, str],
    ) -> RunInfo: ...

    def get_run(self, run_id: str) -> RunInfo: ...

    def finish_run(self, run_id: str, status: str) -> None: ...

    def run_url(self, experiment_id: str, run_id: str) -> str: ...

    def artifact_uri_of_run(self, run_id: str) -> str: ...

    def ensure_registered_model(self, name: str) -> None: ...

    def find_version(self, name: str, uid: str) -> RegistryVersion | None: ...

    def create_version(
        self, name: str, source: str, run_id: str | None, tags: dict[str, str]
    ) -> RegistryVersion: ...

    def get_version(self, name: str, version: str) -> RegistryVersion | None: ...

    def tag_version(self, name: str, version: str, tags: dict[str, str]) -> None: ...

    def versions_tagged(self, name: str, key: str, value: str) -> list[str]: ...

    def set_alias(self, name: str, alias: str, version: str) -> None: ...

    def alias_version(self, name: str, alias: str) -> str | None: ...

    def delete_version(self, name: str, version: str) -> None: ...


class StorageClient(Protocol):
    def pin(self, uri: str, now: dt.datetime) -> DatasetPin: ...

    def list(self, uri: str) -> Listing: ...

    def read_json(self, uri: str) -> dict[str, Any] | None: ...


class MetricsQuery(Protocol):
    def query(self, endpoint: Endpoint, promql: str) -> float | None: ...
