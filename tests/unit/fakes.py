"""In-memory stand-ins for the Kubernetes API, MLflow and S3, for reconciler unit
tests. They keep just enough state to tell whether work was done twice."""

from __future__ import annotations

import builtins
import copy
import datetime as dt
import itertools
import time
from collections.abc import Callable
from typing import Any

from trailboss.api.trainingrun import DatasetPin
from trailboss.builders.patch import apply_merge_patch
from trailboss.clients.prometheus import single_value
from trailboss.clients.protocols import (
    Conflict,
    Credentials,
    DataNotFound,
    Endpoint,
    Forbidden,
    Listing,
    QueryFailed,
    RegistryVersion,
    RunInfo,
    StoreUnavailable,
    TrackingRejected,
    TrackingUnavailable,
)
from trailboss.clients.storage import digest
from trailboss.reconcilers.common import Services
from trailboss.settings import Settings

NOW = dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.UTC)


class FakeKube:
    """Objects by (kind, namespace, name), with the API server's rules that the
    reconcilers rely on: resourceVersions, merge-patch status writes that
    conflict on a stale resourceVersion, create that refuses an existing name,
    and equality label selectors."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.statuses: list[dict[str, Any]] = []
        self.patches: list[dict[str, Any]] = []
        self.events: list[tuple[str, str]] = []
        self.warnings: list[tuple[str, str]] = []  # the events of type Warning
        self.cluster_events: list[dict[str, Any]] = []  # Events other components post
        self.creations = 0
        self.forbidden: set[str] = set()  # kinds the operator's role may not read
        self._versions = itertools.count(1)

    def put(self, body: dict[str, Any]) -> dict[str, Any]:
        """Store ``body`` as the API server would (a new resourceVersion); returns
        what a watch would deliver."""
        obj = copy.deepcopy(body)
        obj["metadata"]["resourceVersion"] = str(next(self._versions))
        meta = obj["metadata"]
        self.objects[(obj["kind"], meta["namespace"], meta["name"])] = obj
        return copy.deepcopy(obj)

    def current(self, body: dict[str, Any]) -> dict[str, Any]:
        """The stored version of ``body``'s object."""
        meta = body["metadata"]
        found = self.get("", body["kind"], meta["namespace"], meta["name"])
        assert found is not None, f"{meta['name']} is not stored"
        return found

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        if kind in self.forbidden:
            raise Forbidden(f"get {kind} {name} in namespace {namespace}: Forbidden")
        found = self.objects.get((kind, namespace, name))
        return copy.deepcopy(found) if found else None

    def list(
        self, api_version: str, kind: str, namespace: str, labels: dict[str, str] | None = None
    ) -> list[dict[str, Any]]:
        wanted = (labels or {}).items()
        return [
            copy.deepcopy(o)
            for (k, ns, _), o in self.objects.items()
            if k == kind
            and ns == namespace
            and wanted <= (o["metadata"].get("labels") or {}).items()
        ]

    def create(self, manifest: dict[str, Any]) -> dict[str, Any] | None:
        meta = manifest["metadata"]
        if (manifest["kind"], meta["namespace"], meta["name"]) in self.objects:
            return None
        self.creations += 1
        return self.put(manifest)

    def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply, roughly: creates, or merges the fields given."""
        meta = manifest["metadata"]
        key = (manifest["kind"], meta["namespace"], meta["name"])
        if key not in self.objects:
            self.creations += 1
            return self.put(manifest)
        obj = self.objects[key]
        for part in ("spec", "metadata"):
            obj[part] = apply_merge_patch(obj.get(part) or {}, manifest.get(part) or {})
        obj["metadata"]["resourceVersion"] = str(next(self._versions))
        return copy.deepcopy(obj)

    def events_for(self, namespace: str, kind: str, name: str) -> builtins.list[dict[str, Any]]:
        return [
            e
            for e in self.cluster_events
            if e["involvedObject"] == {"kind": kind, "name": name, "namespace": namespace}
        ]

    def patch(
        self, api_version: str, kind: str, namespace: str, name: str, patch: dict[str, Any]
    ) -> dict[str, Any] | None:
        obj = self.objects.get((kind, namespace, name))
        if obj is None:
            return None
        self.objects[(kind, namespace, name)] = apply_merge_patch(obj, patch)
        return copy.deepcopy(self.objects[(kind, namespace, name)])

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        self.objects.pop((kind, namespace, name), None)

    def patch_status(
        self,
        api_version: str,
        kind: str,
        namespace: str,
        name: str,
        patch: dict[str, Any],
        resource_version: str | None,
    ) -> dict[str, Any] | None:
        obj = self.objects.get((kind, namespace, name))
        if obj is None:
            return None
        if resource_version and obj["metadata"]["resourceVersion"] != resource_version:
            raise Conflict(f"{kind} {namespace}/{name} changed since it was read")
        obj["status"] = apply_merge_patch(obj.get("status") or {}, self._copy(patch))
        obj["metadata"]["resourceVersion"] = str(next(self._versions))
        self._status_written(patch, obj)
        return self._copy(obj)

    def _copy(self, obj: dict[str, Any]) -> dict[str, Any]:
        """What a reader gets: its own copy, as from the API server."""
        return copy.deepcopy(obj)

    def _status_written(self, patch: dict[str, Any], obj: dict[str, Any]) -> None:
        """Keep every status write, for the tests that look at the history."""
        self.patches.append(copy.deepcopy(patch))
        self.statuses.append(copy.deepcopy(obj["status"]))

    def event(
        self, obj: dict[str, Any], reason: str, message: str, *, warning: bool = False
    ) -> None:
        self.events.append((reason, message))
        if warning:
            self.warnings.append((reason, message))

    def jobs(self) -> builtins.list[dict[str, Any]]:
        return [o for (k, _, _), o in self.objects.items() if k == "Job"]


class FakeTracking:
    uri = "http://mlflow:5000"

    def __init__(self) -> None:
        self.runs: dict[str, dict[str, Any]] = {}
        self.down = False
        self._ids = itertools.count(1)
        self.versions: dict[str, list[RegistryVersion]] = {}
        self.aliases: dict[tuple[str, str], str] = {}

    def _check(self) -> None:
        if self.down:
            raise TrackingUnavailable("connection refused")

    def ensure_run(
        self, experiment: str, uid: str, run_name: str, tags: dict[str, str], params: dict[str, str]
    ) -> RunInfo:
        self._check()
        run = next((r for r in self.runs.values() if r["uid"] == uid), None)
        if run is None:
            run_id = f"run{next(self._ids)}"
            run = {"id": run_id, "uid": uid, "status": "RUNNING", "metrics": {}, "params": {}}
            self.runs[run_id] = run
        for key, value in params.items():
            if run["params"].get(key, value) != value:  # as MLflow: a logged param is final
                raise TrackingRejected(
                    f"Changing param values is not allowed. Param with key='{key}' was "
                    "already logged with a different value",
                    "INVALID_PARAMETER_VALUE",
                )
            run["params"][key] = value
        return self.get_run(run["id"])

    def get_run(self, run_id: str) -> RunInfo:
        self._check()
        run = self.runs[run_id]
        return RunInfo(
            run_id, "1", run["status"], f"s3://mlflow/1/{run_id}/artifacts", dict(run["metrics"])
        )

    def finish_run(self, run_id: str, status: str) -> None:
        self._check()
        if self.runs[run_id]["status"] == "RUNNING":
            self.runs[run_id]["status"] = status

    def run_url(self, experiment_id: str, run_id: str) -> str:
        return f"{self.uri}/#/experiments/{experiment_id}/runs/{run_id}"

    def artifact_uri_of_run(self, run_id: str) -> str:
        return self.get_run(run_id).artifact_uri

    def ensure_registered_model(self, name: str) -> None:
        self._check()
        self.versions.setdefault(name, [])

    def find_version(self, name: str, uid: str) -> RegistryVersion | None:
        self._check()
        found = [v for v in self.versions.get(name, []) if v.tags.get("trailboss.dev/uid") == uid]
        return found[0] if found else None

    def create_version(
        self, name: str, source: str, run_id: str | None, tags: dict[str, str]
    ) -> RegistryVersion:
        self._check()
        versions = self.versions[name]
        version = RegistryVersion(name, str(len(versions) + 1), "READY", source, run_id, dict(tags))
        versions.append(version)
        return version

    def get_version(self, name: str, version: str) -> RegistryVersion | None:
        self._check()
        return next((v for v in self.versions.get(name, []) if v.version == version), None)

    def tag_version(self, name: str, version: str, tags: dict[str, str]) -> None:
        self._check()
        found = self.get_version(name, version)
        if found is None:
            raise TrackingRejected(
                f"Model Version (name={name}, version={version}) not found",
                "RESOURCE_DOES_NOT_EXIST",
            )
        found.tags.update(tags)

    def versions_tagged(self, name: str, key: str, value: str) -> list[str]:
        self._check()
        return [v.version for v in self.versions.get(name, []) if v.tags.get(key) == value]

    def alias_version(self, name: str, alias: str) -> str | None:
        self._check()
        found = self.aliases.get((name, alias))
        time.sleep(0.001)  # a network round trip: room for another writer to move the alias
        return found

    def set_alias(self, name: str, alias: str, version: str) -> None:
        self._check()
        self.aliases[(name, alias)] = version

    def delete_version(self, name: str, version: str) -> None:
        self._check()
        self.versions[name] = [v for v in self.versions[name] if v.version != version]


class FakeStorage:
    def __init__(self) -> None:
        self.objects: dict[str, str] = {}
        self.documents: dict[str, dict[str, Any]] = {}
        """JSON objects the Jobs wrote (profiles' status, drift results)."""
        self.down = False

    def pin(self, uri: str, now: dt.datetime) -> DatasetPin:
        if uri not in self.objects:
            raise DataNotFound(f"{uri} does not exist")
        return DatasetPin(uri=uri, etag=self.objects[uri], objects=1, pinned_at=now)

    def list(self, uri: str) -> Listing:
        prefix = uri.rstrip("/") + "/"
        entries = [
            (k[len(prefix) :], 1, e) for k, e in self.objects.items() if k.startswith(prefix)
        ]
        if not entries:
            raise DataNotFound(f"no objects under {uri}")
        return Listing(
            uri,
            len(entries),
            len(entries),
            digest(entries),
            tuple(sorted(k for k, _, _ in entries)),
        )

    def read_json(self, uri: str) -> dict[str, Any] | None:
        if self.down:
            raise StoreUnavailable(f"{uri}: S3 is down")
        return self.documents.get(uri)


class FakePrometheus:
    """Answers queries from a table; a query it does not know returns no data."""

    def __init__(self) -> None:
        self.answers: dict[str, float | None] = {}
        self.bodies: dict[str, Any] = {}
        """Answers as Prometheus's HTTP API gives them (any shape), read as the real
        client reads them."""
        self.refused: dict[str, str] = {}
        """Queries Prometheus refuses (a bad query), with its error."""
        self.down = False
        self.asked: list[str] = []
        self.endpoints: list[Endpoint] = []
        """Where each query went, with what credentials and CA bundle."""
        self.requires: Credentials | None = None
        """Credentials Prometheus demands (a 401 for any others); none: open to all."""

    def query(self, endpoint: Endpoint, promql: str) -> float | None:
        self.asked.append(promql)
        self.endpoints.append(endpoint)
        if self.down:
            raise QueryFailed(f"Prometheus at {endpoint.url} is unreachable: connection refused")
        if self.requires is not None and endpoint.credentials != self.requires:
            raise QueryFailed(f"Prometheus at {endpoint.url} refused the credentials (401)")
        if promql in self.refused:
            raise QueryFailed(f"Prometheus refused the query (400): {self.refused[promql]}")
        if promql in self.bodies:
            return single_value(self.bodies[promql])
        return self.answers.get(promql)


def services() -> tuple[Services, FakeKube, FakeTracking, FakeStorage]:
    kube, tracking, storage = FakeKube(), FakeTracking(), FakeStorage()
    svc = Services(
        settings=Settings(mlflow_tracking_uri="http://mlflow:5000"),
        kube=kube,
        tracking=tracking,
        storage=storage,
        prometheus=FakePrometheus(),
        clock=lambda: NOW,
    )
    return svc, kube, tracking, storage


def instant_vector(*values: str) -> dict[str, Any]:
    """An instant-query answer of one series per value, as Prometheus's HTTP API shapes it."""
    series = [{"metric": {"series": str(i)}, "value": [0, v]} for i, v in enumerate(values)]
    return {"status": "success", "data": {"resultType": "vector", "result": series}}


def scalar(value: str) -> dict[str, Any]:
    return {"status": "success", "data": {"resultType": "scalar", "result": [0, value]}}


def range_matrix(*values: str) -> dict[str, Any]:
    """What a range selector without an aggregation returns: a matrix, not one number."""
    series = [{"metric": {}, "values": [[0, v], [15, v]]} for v in values]
    return {"status": "success", "data": {"resultType": "matrix", "result": series}}


class ShapedPrometheus(FakePrometheus):
    """Also answers queries the tables do not name, through ``respond`` (e.g. by the
    version in the query), with whole HTTP API bodies read by the real client's parser."""

    def __init__(self) -> None:
        super().__init__()
        self.respond: Callable[[str], dict[str, Any] | None] | None = None

    def query(self, endpoint: Endpoint, promql: str) -> float | None:
        known = promql in self.bodies or promql in self.refused or promql in self.answers
        body = None if self.down or known or self.respond is None else self.respond(promql)
        if body is None:
            return super().query(endpoint, promql)
        self.asked.append(promql)
        self.endpoints.append(endpoint)
        return single_value(body)
