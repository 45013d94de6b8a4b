"""MLflow tracking and registry, as the operator uses them.

Every method is idempotent with respect to the Kubernetes object it serves:
runs and registry versions carry the object's UID as a tag and are found again
by it, so a restart or a retried reconcile never creates a second one.
"""

from __future__ import annotations

import importlib
import os
import threading
from dataclasses import dataclass
from typing import Any

from trailboss.clients.protocols import (
    UID_TAG,
    RegistryVersion,
    RunInfo,
    TrackingRejected,
    TrackingUnavailable,
)
from trailboss.settings import CONNECTIONS

# The operator retries on its own schedule; the client's default of 7 retries
# with exponential backoff would hold a worker thread for minutes.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "15")
# MLflow keeps 10 connections per server by default: with more worker threads the
# others open a connection per call and throw it away.
os.environ.setdefault("MLFLOW_HTTP_POOL_MAXSIZE", str(CONNECTIONS))

FINAL_RUN_STATES = frozenset({"FINISHED", "FAILED", "KILLED"})

# MLflow's package and its submodules import each other in a cycle. Two threads
# importing parts of it at once can each find the other's half-initialised
# module, fail, and leave it broken for the life of the process; so every import
# of it goes through this one lock.
_IMPORTING_MLFLOW = threading.Lock()
# MLflow imports these itself, inside its first request; loading them under the
# lock too means racing first requests find them whole.
IMPORTED_BY_MLFLOW_AT_FIRST_REQUEST = (
    "mlflow.tracking.request_auth.registry",
    "mlflow.tracking.request_header.registry",
)


@dataclass(frozen=True)
class _Mlflow:
    client: Any
    error: type[Exception]
    param: Any


def _mlflow() -> _Mlflow:
    """The parts of MLflow the operator uses, imported at first use (about 100 MiB)."""
    with _IMPORTING_MLFLOW:
        from mlflow.entities import Param
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient

        for name in IMPORTED_BY_MLFLOW_AT_FIRST_REQUEST:
            importlib.import_module(name)

    return _Mlflow(client=MlflowClient, error=MlflowException, param=Param)


ALIAS_NOT_FOUND = frozenset({"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"})
"""MLflow's codes for a missing registered model (the first) and a missing alias
(the second, as MLflow's stores raise it)."""


class Tracking:
    """A thin wrapper over ``MlflowClient`` that maps its errors to two kinds."""

    def __init__(self, tracking_uri: str, ui_url: str | None = None) -> None:
        self.uri = tracking_uri
        self.ui_url = (ui_url or tracking_uri).rstrip("/")
        self._experiments: dict[str, str] = {}
        self._made: Any = None
        self._making = threading.Lock()

    @property
    def _client(self) -> Any:
        """The ``MlflowClient``, made at the first call rather than at startup:
        importing MLflow costs about 100 MiB, and an operator whose objects are
        all settled never calls the tracking server."""
        if self._made is None:
            with self._making:
                if self._made is None:
                    make = _mlflow().client
                    self._made = make(tracking_uri=self.uri, registry_uri=self.uri)
        return self._made

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        client = self._client
        try:
            return getattr(client, method)(*args, **kwargs)
        except _mlflow().error as error:
            if _is_client_error(error):
                code = str(getattr(error, "error_code", ""))
                raise TrackingRejected(str(getattr(error, "message", error))[:500], code) from error
            raise TrackingUnavailable(_short(error)) from error
        except ImportError:
            raise  # a broken installation, not an unreachable server
        except Exception as error:  # connection refused, timeouts, DNS
            raise TrackingUnavailable(_short(error)) from error

    # Runs -----------------------------------------------------------------

    def experiment_id(self, name: str) -> str:
        # Experiment ids never change, so one look-up per name serves every run.
        if name in self._experiments:
            return self._experiments[name]
        self._experiments[name] = self._experiment_id(name)
        return self._experiments[name]

    def _experiment_id(self, name: str) -> str:
        experiment = self._call("get_experiment_by_name", name)
        if experiment is not None:
            return str(experiment.experiment_id)
        try:
            return str(self._call("create_experiment", name))
        except TrackingRejected:  # created concurrently
            experiment = self._call("get_experiment_by_name", name)
            if experiment is None:
                raise
            return str(experiment.experiment_id)

    def find_run(self, experiment_id: str, uid: str) -> RunInfo | None:
        runs = self._call(
            "search_runs",
            experiment_ids=[experiment_id],
            filter_string=f"tags.`{UID_TAG}` = '{uid}'",
            max_results=1,
        )
        return _run_info(runs[0]) if runs else None

    def ensure_run(
        self,
        experiment: str,
        uid: str,
        run_name: str,
        tags: dict[str, str],
        params: dict[str, str],
    ) -> RunInfo:
        """The run tagged with ``uid``, created on first call only."""
        experiment_id = self.experiment_id(experiment)
        run = self.find_run(experiment_id, uid)
        if run is None:
            try:
                created = self._call(
                    "create_run", experiment_id, run_name=run_name, tags={**tags, UID_TAG: uid}
                )
            except TrackingRejected:
                self._experiments.pop(experiment, None)  # deleted since it was cached
                raise
            run = _run_info(created)
        if params:
            param = _mlflow().param
            # Same key and value again is accepted, so this is safe to repeat.
            self._call("log_batch", run.run_id, params=[param(k, v) for k, v in params.items()])
        return run

    def get_run(self, run_id: str) -> RunInfo:
        return _run_info(self._call("get_run", run_id))

    def finish_run(self, run_id: str, status: str) -> None:
        """Close the run unless the training code already did."""
        if self.get_run(run_id).status not in FINAL_RUN_STATES:
            self._call("set_terminated", run_id, status=status)

    def run_url(self, experiment_id: str, run_id: str) -> str:
        return f"{self.ui_url}/#/experiments/{experiment_id}/runs/{run_id}"

    # Registry ---------------------------------------------------------------

    def ensure_registered_model(self, name: str) -> None:
        try:
            self._call("create_registered_model", name, tags={"trailboss.dev/managed": "true"})
        except TrackingRejected as error:
            if "already exists" not in str(error).lower():
                raise

    def find_version(self, name: str, uid: str) -> RegistryVersion | None:
        found = self._call(
            "search_model_versions", f"name = '{_quote(name)}' and tag.`{UID_TAG}` = '{uid}'"
        )
        return _version(found[0]) if found else None

    def create_version(
        self, name: str, source: str, run_id: str | None, tags: dict[str, str]
    ) -> RegistryVersion:
        # The reconciler polls for READY itself rather than holding a worker thread.
        created = self._call(
            "create_model_version", name, source, run_id=run_id, tags=tags, await_creation_for=0
        )
        return _version(created)

    def get_version(self, name: str, version: str) -> RegistryVersion | None:
        try:
            return _version(self._call("get_model_version", name, version))
        except TrackingRejected:
            return None

    def tag_version(self, name: str, version: str, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self._call("set_model_version_tag", name, version, key, value)

    def versions_tagged(self, name: str, key: str, value: str) -> list[str]:
        """Every version of ``name`` whose tag ``key`` is ``value``."""
        found = self._call(
            "search_model_versions",
            f"name = '{_quote(name)}' and tag.`{key}` = '{_quote(value)}'",
        )
        return [str(v.version) for v in found]

    def set_alias(self, name: str, alias: str, version: str) -> None:
        self._call("set_registered_model_alias", name, alias, version)

    def alias_version(self, name: str, alias: str) -> str | None:
        """The version an alias points at, or None when the alias (or the model) does
        not exist. Any other refusal (no access, a rate limit) raises: it says nothing
        about where the alias points, so it must not read as "unset"."""
        try:
            return str(self._call("get_model_version_by_alias", name, alias).version)
        except TrackingRejected as error:
            if error.code in ALIAS_NOT_FOUND:
                return None
            raise

    def delete_version(self, name: str, version: str) -> None:
        try:
            self._call("delete_model_version", name, version)
        except TrackingRejected as error:
            if "not found" not in str(error).lower() and "does not exist" not in str(error):
                raise

    def artifact_uri_of_run(self, run_id: str) -> str:
        return self.get_run(run_id).artifact_uri


def _run_info(run: Any) -> RunInfo:
    return RunInfo(
        run_id=run.info.run_id,
        experiment_id=str(run.info.experiment_id),
        status=run.info.status,
        artifact_uri=run.info.artifact_uri,
        metrics={k: float(v) for k, v in (run.data.metrics or {}).items()},
    )


def _version(mv: Any) -> RegistryVersion:
    return RegistryVersion(
        name=mv.name,
        version=str(mv.version),
        status=str(mv.status),
        source=mv.source,
        run_id=mv.run_id or None,
        tags=dict(mv.tags or {}),
    )


def _quote(value: str) -> str:
    return value.replace("'", "\\'")


_CLIENT_ERRORS = {
    "INVALID_PARAMETER_VALUE",
    "RESOURCE_ALREADY_EXISTS",
    "RESOURCE_DOES_NOT_EXIST",
    "INVALID_STATE",
    "BAD_REQUEST",
    "NOT_FOUND",
    "PERMISSION_DENIED",
    "UNAUTHENTICATED",
    "RESOURCE_EXHAUSTED",
    "REQUEST_LIMIT_EXCEEDED",
}


def _is_client_error(error: Any) -> bool:
    return str(getattr(error, "error_code", "")) in _CLIENT_ERRORS


def _short(error: Exception) -> str:
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    return text[:300]
