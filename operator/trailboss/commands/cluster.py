"""What the commands read and write in the cluster, through the user's kubeconfig.

The commands act as the user (their kubeconfig, context and RBAC), never as the
operator, so `kubectl trailboss` can do exactly what `kubectl` can.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from trailboss.api.common import GROUP, VERSION
from trailboss.commands.kinds import Kind

Obj = dict[str, Any]


class NotFound(LookupError):
    """The object a command names does not exist."""


def add_connection_flags(parser: argparse.ArgumentParser) -> None:
    """kubectl's own flags, so `kubectl trailboss ... -n team-a` reads naturally."""
    parser.add_argument("-n", "--namespace", help="namespace (default: the context's)")
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG)")
    parser.add_argument("--context", help="kubeconfig context")


@dataclass
class Cluster:
    api: client.ApiClient
    namespace: str

    @classmethod
    def connect(cls, args: argparse.Namespace) -> Cluster:
        try:
            contexts, current = config.list_kube_config_contexts(config_file=args.kubeconfig)
        except config.ConfigException:  # in a pod: the service account
            config.load_incluster_config()
            return cls(client.ApiClient(), args.namespace or _pod_namespace())
        chosen = next((c for c in contexts if c["name"] == args.context), current)
        api = config.new_client_from_config(config_file=args.kubeconfig, context=args.context)
        default = chosen.get("context", {}).get("namespace") or "default"
        return cls(api, args.namespace or default)

    # Trailboss objects --------------------------------------------------------

    def get(self, kind: Kind, name: str) -> Obj:
        try:
            obj: Obj = self._custom.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, kind.plural, name
            )
        except ApiException as error:
            if error.status == 404:
                raise NotFound(
                    f"{kind.ref(name)} not found in namespace {self.namespace}"
                ) from None
            raise
        return obj

    def create(self, kind: Kind, body: Obj) -> Obj:
        obj: Obj = self._custom.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, kind.plural, body, field_manager="kubectl-trailboss"
        )
        return obj

    def patch_spec(self, kind: Kind, name: str, spec: Obj) -> Obj:
        obj: Obj = self._custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, kind.plural, name, {"spec": spec},
            field_manager="kubectl-trailboss",
        )  # fmt: skip
        return obj

    def list_custom(self, group: str, version: str, plural: str) -> list[Obj]:
        """Objects of any custom kind; none when the cluster does not serve it."""
        try:
            result = self._custom.list_namespaced_custom_object(
                group, version, self.namespace, plural
            )
        except ApiException as error:
            if error.status == 404:
                return []
            raise
        items: list[Obj] = result["items"]
        return items

    # Built-in objects ---------------------------------------------------------

    def jobs(self, selector: str) -> list[Obj]:
        batch = client.BatchV1Api(self.api)
        return self._dicts(batch.list_namespaced_job(self.namespace, label_selector=selector))

    def pods(self, selector: str) -> list[Obj]:
        core = client.CoreV1Api(self.api)
        return self._dicts(core.list_namespaced_pod(self.namespace, label_selector=selector))

    def services(self) -> list[Obj]:
        core = client.CoreV1Api(self.api)
        return self._dicts(core.list_namespaced_service(self.namespace))

    def app_deployments(self) -> list[Obj]:
        apps = client.AppsV1Api(self.api)
        return self._dicts(apps.list_namespaced_deployment(self.namespace))

    def pod_log(self, pod: str, container: str, *, follow: bool = False) -> Any:
        """The container's log: text, or a stream of byte chunks with ``follow``."""
        core = client.CoreV1Api(self.api)
        if follow:
            response: Any = core.read_namespaced_pod_log(
                pod, self.namespace, container=container, follow=True, _preload_content=False
            )
            return response.stream()
        return core.read_namespaced_pod_log(pod, self.namespace, container=container)

    @property
    def _custom(self) -> Any:
        return client.CustomObjectsApi(self.api)

    def _dicts(self, result: Any) -> list[Obj]:
        items: list[Obj] = self.api.sanitize_for_serialization(result).get("items", [])
        return items


def _pod_namespace() -> str:
    path = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return "default"


def owned_by(objects: list[Obj], uid: str) -> list[Obj]:
    """The objects whose owner references name ``uid``."""
    return [
        o
        for o in objects
        if any(ref.get("uid") == uid for ref in o["metadata"].get("ownerReferences") or [])
    ]
