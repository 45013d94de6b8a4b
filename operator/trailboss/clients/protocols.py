"""The I/O the reconcilers use, as interfaces: the real clients implement them,
and so do the in-memory fakes of the unit tests, without casts."""

from __future__ import annotations

import builtins
import datetime as dt
from typing import Any, Protocol

from trailboss.api.trainingrun import DatasetPin
from trailboss.clients.prometheus import Endpoint
from trailboss.clients.storage import Listing
from trailboss.clients.tracking import RegistryVersion, RunInfo


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
