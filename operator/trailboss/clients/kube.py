"""The operator's Kubernetes I/O: server-side apply, reads, status patches, events.

kopf delivers events; this client does the reading and writing, with one
field manager so ``kubectl get --show-managed-fields`` tells who owns what.
"""

from __future__ import annotations

import builtins
import datetime as dt
import json
import logging
import os
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ForbiddenError, NotFoundError

from trailboss.clients.protocols import Conflict, Forbidden

FIELD_MANAGER = "trailboss"
log = logging.getLogger(__name__)


# At least one connection per reconciling thread (settings.CONNECTIONS), so no
# reconcile waits for a connection or pays for a new TLS handshake.
POOL_SIZE = 32


def _plain(_client: Any, data: dict[str, Any]) -> dict[str, Any]:
    """Keep a response as the JSON it was. The dynamic client's default wraps every
    nested field in a ResourceField (about 1 ms for a Job, 20 times the JSON
    parse), which every caller here turned straight back into dicts."""
    return data


def load_config(kubeconfig: str | None = None) -> client.ApiClient:
    """The pod's service account in a cluster; otherwise the kubeconfig: this file,
    or ``$KUBECONFIG``, or ``~/.kube/config``."""
    configuration = client.Configuration()
    if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config(client_configuration=configuration)
    else:
        # $KUBECONFIG is read here: the client library reads it only once, at import.
        config.load_kube_config(
            config_file=kubeconfig or os.environ.get("KUBECONFIG"),
            client_configuration=configuration,
        )
    configuration.connection_pool_maxsize = POOL_SIZE
    return client.ApiClient(configuration)


def is_conflict(error: Exception) -> bool:
    return isinstance(error, ApiException) and error.status == 409


SERIES_WINDOW = dt.timedelta(minutes=6)
"""How long after an Event its repeat (same object, type, reason and message) still
counts up that Event rather than starting a new one: the series window of the
Kubernetes events library (client-go's tools/events)."""

RECENT_EVENTS = 4096
"""How many recent Events the operator remembers to count repeats of, as client-go's
event correlator; the oldest is forgotten first, and its repeat starts a new Event."""


@dataclass
class _Posted:
    """An Event the operator created, and how often it has happened since."""

    name: str
    count: int
    last: dt.datetime


def _stamp(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class _NotWritten(Exception):
    """The API server refused to write an Event: ``verb`` is what was asked."""

    def __init__(self, verb: str, error: ApiException) -> None:
        super().__init__(verb, error)
        self.verb = verb
        self.error = error


def _namespace_terminating(error: ApiException) -> bool:
    """A 403 from the namespace lifecycle check: the namespace is being deleted and
    takes no new objects, Events included. Nothing is wrong with the grants."""
    try:
        causes = (json.loads(error.body or "{}").get("details") or {}).get("causes") or []
        return any(cause.get("type") == "NamespaceTerminating" for cause in causes)
    except (AttributeError, TypeError, ValueError):  # not the API server's Status
        return False


def _log_unrecorded(failure: _NotWritten, reason: str, meta: dict[str, Any]) -> None:
    error, namespace = failure.error, meta["namespace"]
    if error.status == 403 and _namespace_terminating(error):
        # Normal while a namespace is deleted with the operator's objects in it.
        log.debug(
            "event %s on %s not recorded: namespace %s is being deleted",
            reason, meta["name"], namespace,
        )  # fmt: skip
    elif error.status == 403:
        log.warning(
            "could not record event %s on %s: RBAC forbids %s events in namespace %s; "
            "the operator's role needs that grant",
            reason, meta["name"], failure.verb, namespace,
        )  # fmt: skip
    else:
        log.warning("could not record event %s on %s: %s", reason, meta["name"], error.reason)


class EventRecorder:
    """Posts core/v1 Events the way kubectl and client-go do: the first occurrence
    creates an Event; a repeat within SERIES_WINDOW of the last one patches that
    Event's ``count`` and ``lastTimestamp``, so `kubectl describe` shows
    "(x12 over 40m)" instead of twelve rows, and the namespace is not flooded.

    ``events``: the Event resource (create, merge patch), found at first use.
    An event is never worth failing a reconcile: API errors are logged, not raised;
    a refusal by RBAC as a warning naming the grant, one because the namespace is
    being deleted at debug level."""

    def __init__(
        self,
        events: Callable[[], Any],
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._events = events
        self._clock = clock
        self._recent: OrderedDict[tuple[str, ...], _Posted] = OrderedDict()
        self._lock = threading.Lock()  # reconciles post from several threads

    def record(
        self, obj: dict[str, Any], reason: str, message: str, *, warning: bool = False
    ) -> None:
        meta = obj["metadata"]
        kind = "Warning" if warning else "Normal"
        message = message[:1024]
        key = (
            meta["namespace"],
            obj["kind"],
            meta["name"],
            meta.get("uid", ""),
            kind,
            reason,
            message,
        )
        now = self._clock()
        try:
            with self._lock:
                posted = self._recent.get(key)
                if (
                    posted is not None
                    and now - posted.last <= SERIES_WINDOW
                    and self._count_up(meta["namespace"], posted, now)
                ):
                    self._recent.move_to_end(key)
                    return
                self._recent[key] = self._create(obj, kind, reason, message, now)
                self._recent.move_to_end(key)
                while len(self._recent) > RECENT_EVENTS:
                    self._recent.popitem(last=False)
        except _NotWritten as failure:
            _log_unrecorded(failure, reason, meta)

    def _count_up(self, namespace: str, posted: _Posted, now: dt.datetime) -> bool:
        """Patch the Event's count; False when it is gone (Events expire after an hour)."""
        try:
            self._events().patch(
                body={"count": posted.count + 1, "lastTimestamp": _stamp(now)},
                name=posted.name,
                namespace=namespace,
                content_type="application/merge-patch+json",
                serializer=_plain,
            )
        except NotFoundError:
            return False
        except ApiException as error:
            raise _NotWritten("patch", error) from error
        posted.count += 1
        posted.last = now
        return True

    def _create(
        self, obj: dict[str, Any], kind: str, reason: str, message: str, now: dt.datetime
    ) -> _Posted:
        meta = obj["metadata"]
        name = f"{meta['name']}.{secrets.token_hex(8)}"
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": obj["apiVersion"],
                "kind": obj["kind"],
                "name": meta["name"],
                "namespace": meta["namespace"],
                **{k: meta[k] for k in ("uid", "resourceVersion") if meta.get(k)},
            },
            "reason": reason,
            "message": message,
            "type": kind,
            "source": {"component": FIELD_MANAGER},
            "reportingComponent": FIELD_MANAGER,
            "reportingInstance": FIELD_MANAGER,
            "firstTimestamp": _stamp(now),
            "lastTimestamp": _stamp(now),
            "count": 1,
        }
        try:
            self._events().create(body=body, namespace=meta["namespace"], serializer=_plain)
        except ApiException as error:
            raise _NotWritten("create", error) from error
        return _Posted(name=name, count=1, last=now)


class Kube:
    """A small, dict-in dict-out facade over the dynamic client."""

    def __init__(self, api: client.ApiClient | None = None) -> None:
        self.api = api or load_config()
        self.dynamic = DynamicClient(self.api)
        self.core = client.CoreV1Api(self.api)
        self._resources: dict[tuple[str, str], Any] = {}
        self._events = EventRecorder(lambda: self._resource("v1", "Event"))

    def _resource(self, api_version: str, kind: str) -> Any:
        """The discovered resource, searched for once per kind: a search walks the
        discovery cache and may rewrite its file. A kind not served yet (a CRD not
        installed) raises and is searched for again next time."""
        key = (api_version, kind)
        if key not in self._resources:
            self._resources[key] = self.dynamic.resources.get(api_version=api_version, kind=kind)
        return self._resources[key]

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self._resource(api_version, kind).get(  # type: ignore[no-any-return]
                name=name, namespace=namespace, serializer=_plain
            )
        except NotFoundError:
            return None
        except ForbiddenError as error:
            raise Forbidden(
                f"get {kind} {name} in namespace {namespace}: {error.reason}"
            ) from error

    def list(
        self, api_version: str, kind: str, namespace: str, labels: dict[str, str] | None = None
    ) -> list[dict[str, Any]]:
        selector = ",".join(f"{k}={v}" for k, v in (labels or {}).items()) or None
        result = self._resource(api_version, kind).get(
            namespace=namespace, label_selector=selector, serializer=_plain
        )
        return list(result.get("items") or [])

    def events_for(self, namespace: str, kind: str, name: str) -> builtins.list[dict[str, Any]]:
        """The core/v1 Events about one object (what `kubectl describe` shows)."""
        found = self.core.list_namespaced_event(
            namespace, field_selector=f"involvedObject.kind={kind},involvedObject.name={name}"
        )
        return [self.api.sanitize_for_serialization(e) for e in found.items]

    def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply with the operator's field manager."""
        meta = manifest["metadata"]
        resource = self._resource(manifest["apiVersion"], manifest["kind"])
        return resource.server_side_apply(  # type: ignore[no-any-return]
            body=manifest,
            name=meta["name"],
            namespace=meta.get("namespace"),
            field_manager=FIELD_MANAGER,
            force_conflicts=True,
            serializer=_plain,
        )

    def patch(
        self, api_version: str, kind: str, namespace: str, name: str, patch: dict[str, Any]
    ) -> dict[str, Any] | None:
        """Merge-patch an object; None when it is gone."""
        try:
            return self._resource(api_version, kind).patch(  # type: ignore[no-any-return]
                body=patch,
                name=name,
                namespace=namespace,
                content_type="application/merge-patch+json",
                field_manager=FIELD_MANAGER,
                serializer=_plain,
            )
        except NotFoundError:
            return None

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        """Delete in the background (dependents by garbage collection); gone is fine."""
        try:
            self._resource(api_version, kind).delete(
                name=name, namespace=namespace, propagation_policy="Background", serializer=_plain
            )
        except NotFoundError:
            return

    def create(self, manifest: dict[str, Any]) -> dict[str, Any] | None:
        """Create, or None when an object of that name already exists."""
        resource = self._resource(manifest["apiVersion"], manifest["kind"])
        try:
            return resource.create(  # type: ignore[no-any-return]
                body=manifest,
                namespace=manifest["metadata"].get("namespace"),
                field_manager=FIELD_MANAGER,
                serializer=_plain,
            )
        except ApiException as error:
            if is_conflict(error):
                return None
            raise

    def patch_status(
        self,
        api_version: str,
        kind: str,
        namespace: str,
        name: str,
        patch: dict[str, Any],
        resource_version: str | None,
    ) -> dict[str, Any] | None:
        """Merge-patch the status (``None`` values remove fields). With a
        ``resource_version`` the write only lands on the object as it was read:
        otherwise ``Conflict``. Returns the object after the write, or None when
        it is gone."""
        body: dict[str, Any] = {"status": patch}
        if resource_version:
            body["metadata"] = {"resourceVersion": resource_version}
        resource = self._resource(api_version, kind)
        try:
            written: dict[str, Any] = resource.status.patch(
                body=body,
                name=name,
                namespace=namespace,
                content_type="application/merge-patch+json",
                field_manager=FIELD_MANAGER,
                serializer=_plain,
            )
        except NotFoundError:
            log.info("%s %s/%s is gone; status not written", kind, namespace, name)
            return None
        except ApiException as error:
            if is_conflict(error):
                raise Conflict(f"{kind} {namespace}/{name} changed since it was read") from error
            raise
        return written

    def event(
        self, obj: dict[str, Any], reason: str, message: str, *, warning: bool = False
    ) -> None:
        """Record a Kubernetes Event on ``obj``, shown by ``kubectl describe``; a
        repeat of a recent one counts up that Event instead (see ``EventRecorder``)."""
        self._events.record(obj, reason, message, warning=warning)
