"""The few API calls the pod runner makes, over HTTPS with the kubeconfig's client cert."""

from __future__ import annotations

import base64
import contextlib
import json
import ssl
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml

RUN_LOCALLY = "trailboss.dev/run-locally"
FAKE_NODE_ANNOTATION = "kwok.x-k8s.io/node"
Pod = dict[str, Any]


class Kube:
    """The few API calls the runner makes, over HTTPS with the kubeconfig's client cert."""

    def __init__(self, kubeconfig: Path) -> None:
        config = yaml.safe_load(kubeconfig.read_text())
        ctx_name = config["current-context"]
        ctx = next(c["context"] for c in config["contexts"] if c["name"] == ctx_name)
        cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == ctx["cluster"])
        user = next(u["user"] for u in config["users"] if u["name"] == ctx["user"])
        self.server = cluster["server"].rstrip("/")
        self._tmp = tempfile.TemporaryDirectory(prefix="podrunner-")
        self.tls = ssl.create_default_context(cafile=self._file(cluster, "certificate-authority"))
        self.tls.load_cert_chain(
            self._file(user, "client-certificate"), self._file(user, "client-key")
        )

    def _file(self, section: dict[str, str], key: str) -> str:
        if key in section:
            return section[key]
        path = Path(self._tmp.name) / key
        path.write_bytes(base64.b64decode(section[f"{key}-data"]))
        path.chmod(0o600)
        return str(path)

    def call(
        self,
        method: str,
        path: str,
        body: object | None = None,
        content_type: str = "application/json",
    ) -> Any:
        req = urllib.request.Request(
            self.server + path,
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Content-Type": content_type, "Accept": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10, context=self.tls) as resp:
            return json.loads(resp.read() or b"null")

    def pods(self) -> list[Pod]:
        selector = urllib.parse.quote(f"{RUN_LOCALLY}=true")
        return list(self.call("GET", f"/api/v1/pods?labelSelector={selector}")["items"])

    def fake_nodes(self) -> set[str]:
        nodes = self.call("GET", "/api/v1/nodes")["items"]
        return {
            n["metadata"]["name"]
            for n in nodes
            if FAKE_NODE_ANNOTATION in (n["metadata"].get("annotations") or {})
        }

    def patch(self, pod: Pod, body: object, subresource: str = "") -> None:
        m = pod["metadata"]
        path = f"/api/v1/namespaces/{m['namespace']}/pods/{m['name']}{subresource}"
        self.call("PATCH", path, body, "application/strategic-merge-patch+json")

    def delete_now(self, pod: Pod) -> None:
        m = pod["metadata"]
        with contextlib.suppress(urllib.error.HTTPError):  # already gone
            self.call(
                "DELETE",
                f"/api/v1/namespaces/{m['namespace']}/pods/{m['name']}",
                {"gracePeriodSeconds": 0, "preconditions": {"uid": m["uid"]}},
            )

    def key_ref(self, kind: str, namespace: str, ref: dict[str, Any]) -> str | None:
        """A key of a Secret or ConfigMap; None when it is missing and `optional`."""
        values = self.all_keys(kind, namespace, ref)
        if ref["key"] not in values and not ref.get("optional"):
            raise ValueError(f"{kind} {namespace}/{ref['name']} has no key {ref['key']}")
        return values.get(ref["key"])

    def all_keys(self, kind: str, namespace: str, ref: dict[str, Any]) -> dict[str, str]:
        """Every key of a Secret or ConfigMap, decoded; empty when it is missing and `optional`."""
        try:
            obj = self.call("GET", f"/api/v1/namespaces/{namespace}/{kind}/{ref['name']}")
        except urllib.error.HTTPError as e:
            if e.code != 404:
                raise
            if ref.get("optional"):
                return {}
            raise ValueError(f'{kind[:-1]} "{ref["name"]}" not found') from None
        return _decoded(kind, obj)


def _decoded(kind: str, obj: dict[str, Any]) -> dict[str, str]:
    data = obj.get("data") or {}
    if kind == "secrets":
        return {k: base64.b64decode(v).decode() for k, v in data.items()}
    return dict(data)
