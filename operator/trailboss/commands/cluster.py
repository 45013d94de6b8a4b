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
from trailboss.commands.errors import KubeconfigProblem, NotFound
from trailboss.commands.kinds import Kind

Obj = dict[str, Any]
REQUEST_TIMEOUT = 30.0
# What `--version` reads the operator's version from: the chart's labels on it.
OPERATOR_SELECTOR = "app.kubernetes.io/part-of=trailboss,app.kubernetes.io/component=operator"

__all__ = ["Cluster", "NotFound", "Obj", "add_connection_flags", "owned_by"]


def add_connection_flags(parser: argparse.ArgumentParser) -> None:
    """kubectl's own flags, so `kubectl trailboss ... -n team-a` reads naturally."""
    parser.add_argument("-n", "--namespace", help="namespace (default: the context's)")
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG)")
    parser.add_argument("--context", help="kubeconfig context")
    parser.add_argument(
        "--request-timeout", type=float, default=REQUEST_TIMEOUT, metavar="SECONDS",
        help=f"give up on an API request after this long (default {REQUEST_TIMEOUT:.0f})",
    )  # fmt: skip


@dataclass
class Cluster:
    api: client.ApiClient
    namespace: str
    timeout: float = REQUEST_TIMEOUT

    @classmethod
    def connect(cls, args: argparse.Namespace) -> Cluster:
        kubeconfig, context = getattr(args, "kubeconfig", None), getattr(args, "context", None)
        namespace = getattr(args, "namespace", None)
        timeout = getattr(args, "request_timeout", None) or REQUEST_TIMEOUT
        try:
            contexts, current = config.list_kube_config_contexts(config_file=kubeconfig)
        except config.ConfigException as error:
            if kubeconfig or context:
                raise KubeconfigProblem(
                    f"cannot read {kubeconfig or 'the kubeconfig'}: {error}; "
                    "check --kubeconfig or KUBECONFIG"
                ) from None
            return cls._in_pod(namespace, timeout)
        names = [c["name"] for c in contexts]
        if context is not None and context not in names:
            raise KubeconfigProblem(
                f"context {context!r} is not in {kubeconfig or 'your kubeconfig'}: use one of "
                f"{', '.join(names) or 'none'} (`kubectl config get-contexts`)"
            )
        chosen = next((c for c in contexts if c["name"] == context), current) or {}
        api = config.new_client_from_config(config_file=kubeconfig, context=context)
        default = (chosen.get("context") or {}).get("namespace") or "default"
        return cls(api, namespace or default, timeout)

    @classmethod
    def _in_pod(cls, namespace: str | None, timeout: float) -> Cluster:
        """No kubeconfig: in a pod, act as its service account."""
        try:
            config.load_incluster_config()
        except config.ConfigException:
            raise KubeconfigProblem(
                "no kubeconfig found ($KUBECONFIG, ~/.kube/config) and not running in a "
                "pod: set KUBECONFIG or pass --kubeconfig"
            ) from None
        return cls(client.ApiClient(), namespace or _pod_namespace(), timeout)

    # Trailboss objects --------------------------------------------------------

    def get(self, kind: Kind, name: str) -> Obj:
        try:
            obj: Obj = self._custom.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, kind.plural, name,
                _request_timeout=self.timeout,
            )  # fmt: skip
        except ApiException as error:
            if error.status == 404:
                raise NotFound(
                    f"{kind.ref(name)} not found in namespace {self.namespace}: see what there "
                    f"is with `kubectl trailboss get {kind.short_names[0]} -n {self.namespace}`"
                ) from None
            raise
        return obj

    def create(self, kind: Kind, body: Obj) -> Obj:
        obj: Obj = self._custom.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, kind.plural, body,
            field_manager="kubectl-trailboss", _request_timeout=self.timeout,
        )  # fmt: skip
        return obj

    def patch_spec(self, kind: Kind, name: str, spec: Obj) -> Obj:
        obj: Obj = self._custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, kind.plural, name, {"spec": spec},
            field_manager="kubectl-trailboss", _request_timeout=self.timeout,
        )  # fmt: skip
        return obj

    def patch_annotations(self, kind: Kind, name: str, annotations: dict[str, str | None]) -> Obj:
        """Set (or, with None, remove) annotations, leaving the spec alone."""
        obj: Obj = self._custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, kind.plural, name,
            {"metadata": {"annotations": annotations}}, field_manager="kubectl-trailboss",
            _request_timeout=self.timeout,
        )  # fmt: skip
        return obj

    def objects(self, kind: Kind, *, all_namespaces: bool = False) -> list[Obj]:
        """Every object of a Trailboss kind here (or, with ``all_namespaces``, anywhere)."""
        if all_namespaces:
            result = self._custom.list_cluster_custom_object(
                GROUP, VERSION, kind.plural, _request_timeout=self.timeout
            )
        else:
            result = self._custom.list_namespaced_custom_object(
                GROUP, VERSION, self.namespace, kind.plural, _request_timeout=self.timeout
            )
        items: list[Obj] = result["items"]
        return items

    def list_custom(self, group: str, version: str, plural: str) -> list[Obj]:
        """Objects of any custom kind; none when the cluster does not serve it."""
        try:
            result = self._custom.list_namespaced_custom_object(
                group, version, self.namespace, plural, _request_timeout=self.timeout
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
        return self._dicts(batch.list_namespaced_job(
            self.namespace, label_selector=selector, _request_timeout=self.timeout
        ))  # fmt: skip

    def pods(self, selector: str) -> list[Obj]:
        core = client.CoreV1Api(self.api)
        return self._dicts(core.list_namespaced_pod(
            self.namespace, label_selector=selector, _request_timeout=self.timeout
        ))  # fmt: skip

    def services(self) -> list[Obj]:
        core = client.CoreV1Api(self.api)
        return self._dicts(
            core.list_namespaced_service(self.namespace, _request_timeout=self.timeout)
        )

    def app_deployments(self) -> list[Obj]:
        apps = client.AppsV1Api(self.api)
        return self._dicts(
            apps.list_namespaced_deployment(self.namespace, _request_timeout=self.timeout)
        )

    def operator_deployments(self) -> list[Obj]:
        """The Trailboss operator's Deployments, wherever the chart installed them."""
        apps = client.AppsV1Api(self.api)
        return self._dicts(apps.list_deployment_for_all_namespaces(
            label_selector=OPERATOR_SELECTOR, _request_timeout=self.timeout
        ))  # fmt: skip

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
