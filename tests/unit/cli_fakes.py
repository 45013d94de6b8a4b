"""An in-memory cluster for the `kubectl trailboss` tests, and a way to run the
command as a user does (argv in; exit code, stdout and stderr out)."""

from __future__ import annotations

import argparse
import copy
from pathlib import Path
from typing import Any

import pytest

from trailboss.cli import main
from trailboss.commands.cluster import Cluster, NotFound, Obj
from trailboss.commands.kinds import Kind

DEAD_SERVER = "https://127.0.0.1:1"  # nothing listens on port 1: connection refused


def obj(
    kind: str,
    name: str,
    namespace: str = "ml",
    *,
    spec: Obj | None = None,
    status: Obj | None = None,
    version: str = "1",
) -> Obj:
    return {
        "apiVersion": "trailboss.dev/v1alpha1",
        "kind": kind,
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": f"uid-{namespace}-{name}",
            "generation": 1,
            "resourceVersion": version,
            "creationTimestamp": "2026-11-20T10:00:00Z",
        },
        "spec": spec or {},
        "status": status or {},
    }


class FakeCluster:
    """What `Cluster` reads and writes, held in memory; records every write."""

    def __init__(self, *objects: Obj, namespace: str = "ml") -> None:
        self.namespace = namespace
        self.stored: dict[tuple[str, str, str], Obj] = {}
        self.operators: list[Obj] = []
        self.writes: list[tuple[str, str, Obj]] = []
        for o in objects:
            self.put(o)

    def put(self, o: Obj) -> None:
        meta = o["metadata"]
        self.stored[(o["kind"], meta["namespace"], meta["name"])] = o

    def connected(self, args: argparse.Namespace) -> FakeCluster:
        self.namespace = getattr(args, "namespace", None) or "ml"
        return self

    def get(self, kind: Kind, name: str) -> Obj:
        found = self.stored.get((kind.kind, self.namespace, name))
        if found is None:
            raise NotFound(f"{kind.ref(name)} not found in namespace {self.namespace}")
        return copy.deepcopy(found)

    def objects(self, kind: Kind, *, all_namespaces: bool = False) -> list[Obj]:
        return [
            copy.deepcopy(o)
            for (k, ns, _), o in self.stored.items()
            if k == kind.kind and (all_namespaces or ns == self.namespace)
        ]

    def list_custom(self, group: str, version: str, plural: str) -> list[Obj]:
        return []

    def create(self, kind: Kind, body: Obj) -> Obj:
        self.writes.append(("create", body["metadata"]["name"], body))
        return body

    def patch_spec(self, kind: Kind, name: str, spec: Obj) -> Obj:
        self.writes.append(("spec", name, spec))
        return self.get(kind, name)

    def patch_annotations(self, kind: Kind, name: str, annotations: dict[str, Any]) -> Obj:
        self.writes.append(("annotations", name, annotations))
        return self.get(kind, name)

    def jobs(self, selector: str) -> list[Obj]:
        return []

    def pods(self, selector: str) -> list[Obj]:
        return []

    def services(self) -> list[Obj]:
        return []

    def app_deployments(self) -> list[Obj]:
        return []

    def operator_deployments(self) -> list[Obj]:
        return self.operators


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> FakeCluster:
    fake = FakeCluster()
    monkeypatch.setattr(Cluster, "connect", classmethod(lambda cls, args: fake.connected(args)))
    return fake


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """`kubectl trailboss ARGV...`: the exit code and what it printed."""
    try:
        code = main(list(argv))
    except SystemExit as exit_:  # argparse's own usage errors and --version
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def kubeconfig(tmp_path: Path, server: str = DEAD_SERVER) -> str:
    path = tmp_path / "kubeconfig"
    path.write_text(
        "apiVersion: v1\nkind: Config\n"
        f"clusters:\n- name: lab\n  cluster: {{server: '{server}'}}\n"
        "contexts:\n- name: lab\n  context: {cluster: lab, user: me, namespace: ml}\n"
        "- name: staging\n  context: {cluster: lab, user: me}\n"
        "current-context: lab\n"
        "users:\n- name: me\n  user: {token: t0ken}\n"
    )
    return str(path)
