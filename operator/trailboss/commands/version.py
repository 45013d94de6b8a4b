"""`version` and `--version`: this client's version and the operator's in the
cluster, as `kubectl version` prints client and server. The operator's comes
from its Deployment (the chart's `app.kubernetes.io/version` label, else the
image tag); whatever stops us finding it prints as "unknown (why)", never as a
failure: the client's version is still worth showing."""

from __future__ import annotations

import argparse
from typing import Any

from trailboss import __version__
from trailboss.commands import errors
from trailboss.commands.cluster import Cluster, Obj, add_connection_flags

VERSION_LABEL = "app.kubernetes.io/version"
QUICK_TIMEOUT = 5.0


def register(sub: Any) -> None:
    version = sub.add_parser("version", help="print the client's and the operator's versions")
    version.add_argument("--client", action="store_true", help="only this client's version")
    add_connection_flags(version)
    version.set_defaults(func=run_version, request_timeout=QUICK_TIMEOUT)


class VersionAction(argparse.Action):
    """`--version`, with the default kubeconfig and context."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print the client's and the "
                         "operator's versions and exit")  # fmt: skip

    def __call__(self, parser: argparse.ArgumentParser, *_: Any, **__: Any) -> None:
        args = argparse.Namespace(client=False, request_timeout=QUICK_TIMEOUT)
        parser.exit(run_version(args))


def run_version(args: argparse.Namespace) -> int:
    print(f"client: trailboss {__version__}")
    if not args.client:
        print(f"operator: {_operator_version(args)}")
    return errors.OK


def _operator_version(args: argparse.Namespace) -> str:
    try:
        deployments = Cluster.connect(args).operator_deployments()
    except Exception as error:  # any failure means "unknown", and says why
        try:
            line, _ = errors.explain(error)
        except Exception:
            line = type(error).__name__
        return f"unknown ({line.split('; ')[0]})"
    return operator_version(deployments)


def operator_version(deployments: list[Obj]) -> str:
    """`1.4.0 (trailboss/trailboss)`; several (one per namespace shard) are all named."""
    found = sorted({f"{_version_of(d)} ({_where(d)})" for d in deployments})
    return ", ".join(found) if found else "unknown (no operator Deployment found)"


def _version_of(deployment: Obj) -> str:
    labels = deployment["metadata"].get("labels") or {}
    if labels.get(VERSION_LABEL):
        return str(labels[VERSION_LABEL])
    pod = ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}
    containers = pod.get("containers") or []
    image = next((c.get("image", "") for c in containers if c.get("name") == "operator"), "")
    image = image or (containers[0].get("image", "") if containers else "")
    return _tag(image) or "unknown"


def _tag(image: str) -> str:
    """`ghcr.io/x/trailboss:1.4.0@sha256:...` → `1.4.0`; no tag → ``""``."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.rsplit(":", 1)[1] if ":" in last else ""


def _where(deployment: Obj) -> str:
    meta = deployment["metadata"]
    return f"{meta.get('namespace')}/{meta['name']}"
