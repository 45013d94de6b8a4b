"""The operator's Kubernetes I/O: server-side apply, reads, status patches, events.

kopf delivers events; this client does the reading and writing, with one
field manager so ``kubectl get --show-managed-fields`` tells who owns what.
"""

from __future__ import annotations

import builtins
import datetime as dt
import logging
import os
import secrets
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import NotFoundError

FIELD_MANAGER = "trailboss"
log = logging.getLogger(__name__)


# At least one connection per reconciling thread (settings.CONNECTIONS), so no
# reconcile waits for a connection or pays for a new TLS handshake.
POOL_SIZE = 32


class Conflict(Exception):
    """The object changed since it was read (HTTP 409): read it again and retry."""


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


class Kube:
    """A small, dict-in dict-out facade over the dynamic client."""

    def __init__(self, api: client.ApiClient | None = None) -> None:
        self.api = api or load_config()
        self.dynamic = DynamicClient(self.api)
        self.core = client.CoreV1Api(self.api)

    def _resource(self, api_version: str, kind: str) -> Any:
        return self.dynamic.resources.get(api_version=api_version, kind=kind)

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            obj = self._resource(api_version, kind).get(name=name, namespace=namespace)
        except NotFoundError:
            return None
        return dict(obj.to_dict())

    def list(
        self, api_version: str, kind: str, namespace: str, labels: dict[str, str] | None = None
    ) -> list[dict[str, Any]]:
        selector = ",".join(f"{k}={v}" for k, v in (labels or {}).items()) or None
        result = self._resource(api_version, kind).get(namespace=namespace, label_selector=selector)
        return [dict(item) for item in result.to_dict().get("items", [])]

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
        obj = resource.server_side_apply(
            body=manifest,
            name=meta["name"],
            namespace=meta.get("namespace"),
            field_manager=FIELD_MANAGER,
            force_conflicts=True,
        )
        return dict(obj.to_dict())

    def patch(
        self, api_version: str, kind: str, namespace: str, name: str, patch: dict[str, Any]
    ) -> dict[str, Any] | None:
        """Merge-patch an object; None when it is gone."""
        try:
            obj = self._resource(api_version, kind).patch(
                body=patch,
                name=name,
                namespace=namespace,
                content_type="application/merge-patch+json",
                field_manager=FIELD_MANAGER,
            )
        except NotFoundError:
            return None
        return dict(obj.to_dict())

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        """Delete in the background (dependents by garbage collection); gone is fine."""
        try:
            self._resource(api_version, kind).delete(
                name=name, namespace=namespace, propagation_policy="Background"
            )
        except NotFoundError:
            return

    def create(self, manifest: dict[str, Any]) -> dict[str, Any] | None:
        """Create, or None when an object of that name already exists."""
        resource = self._resource(manifest["apiVersion"], manifest["kind"])
        try:
            obj = resource.create(
                body=manifest,
                namespace=manifest["metadata"].get("namespace"),
                field_manager=FIELD_MANAGER,
            )
        except ApiException as error:
            if is_conflict(error):
                return None
            raise
        return dict(obj.to_dict())

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
            obj = resource.status.patch(
                body=body,
                name=name,
                namespace=namespace,
                content_type="application/merge-patch+json",
                field_manager=FIELD_MANAGER,
            )
        except NotFoundError:
            log.info("%s %s/%s is gone; status not written", kind, namespace, name)
            return None
        except ApiException as error:
            if is_conflict(error):
                raise Conflict(f"{kind} {namespace}/{name} changed since it was read") from error
            raise
        return dict(obj.to_dict())

    def event(
        self, obj: dict[str, Any], reason: str, message: str, *, warning: bool = False
    ) -> None:
        """Record a Kubernetes Event on ``obj``, shown by ``kubectl describe``."""
        meta = obj["metadata"]
        now = dt.datetime.now(dt.UTC)
        body = client.CoreV1Event(
            metadata=client.V1ObjectMeta(
                name=f"{meta['name']}.{secrets.token_hex(8)}", namespace=meta["namespace"]
            ),
            involved_object=client.V1ObjectReference(
                api_version=obj["apiVersion"],
                kind=obj["kind"],
                name=meta["name"],
                namespace=meta["namespace"],
                uid=meta.get("uid"),
                resource_version=meta.get("resourceVersion"),
            ),
            reason=reason,
            message=message[:1024],
            type="Warning" if warning else "Normal",
            source=client.V1EventSource(component=FIELD_MANAGER),
            reporting_component=FIELD_MANAGER,
            reporting_instance=FIELD_MANAGER,
            first_timestamp=now,
            last_timestamp=now,
            count=1,
        )
        try:
            self.core.create_namespaced_event(meta["namespace"], body)
        except ApiException as error:  # an event is never worth failing a reconcile
            log.warning("could not record event %s on %s: %s", reason, meta["name"], error.reason)
