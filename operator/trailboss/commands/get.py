"""`get` and `list`, as `kubectl get` reads them: `get KIND` lists, `get KIND NAME`
shows one (as a live tree of it and its children, like `kubectl argo rollouts
get`, unless an output format is asked for); `all` means every Trailboss kind."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from trailboss.commands import errors, listing, tree
from trailboss.commands.cluster import Cluster, Obj
from trailboss.commands.errors import NotFound
from trailboss.commands.inspect import build_tree
from trailboss.commands.kinds import Kind, resolve_many, split_ref

POLL_SECONDS = 1.0
Found = list[tuple[Kind, Obj]]


@dataclass(frozen=True)
class View:
    """What the user asked to see."""

    kinds: list[Kind]
    name: str | None
    output: str | None
    all_namespaces: bool = False
    headers: bool = True

    @classmethod
    def of(cls, args: argparse.Namespace) -> View:
        name = getattr(args, "name", None)
        if name is not None or "/" in args.kind:
            kind, name = split_ref(args.kind, name)
            kinds = [kind]
        else:
            kinds = resolve_many(args.kind)
        return cls(kinds, name, args.output, args.all_namespaces, not args.no_headers)

    @property
    def tree(self) -> bool:
        return self.name is not None and self.output is None


def add_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-o", "--output", choices=listing.FORMATS,
        help="wide: more columns; name: KIND/NAME; json or yaml: the objects",
    )  # fmt: skip
    parser.add_argument("--no-headers", action="store_true", help="tables without the header")
    parser.add_argument(
        "-A", "--all-namespaces", action="store_true", help="list across every namespace"
    )
    parser.add_argument("-w", "--watch", action="store_true", help="keep showing changes")
    parser.add_argument("--timeout", type=float, help="with -w: stop after this many seconds")


def run_get(args: argparse.Namespace) -> int:
    view = View.of(args)
    cluster = Cluster.connect(args)
    if view.tree:
        assert view.name is not None
        snapshot = _tree_fn(cluster, view.kinds[0], view.name)
        if not args.watch:
            print("\n".join(snapshot()))
            return errors.OK
        return _watch_tree(snapshot, args.timeout)
    found = fetch(cluster, view)
    shown = render(view, found, datetime.now(UTC))
    if not shown and not view.name:
        where = "any namespace" if view.all_namespaces else f"{cluster.namespace} namespace"
        print(f"No resources found in {where}.", file=sys.stderr)
    if shown:
        print("\n".join(shown), flush=True)
    if args.watch:
        return watch(lambda: fetch(cluster, view), view, found, args.timeout)
    return errors.OK


def run_list(args: argparse.Namespace) -> int:
    args.name = None
    return run_get(args)


def fetch(cluster: Cluster, view: View) -> Found:
    if view.name is not None:
        return [(view.kinds[0], cluster.get(view.kinds[0], view.name))]
    found: Found = []
    for kind in view.kinds:
        objects = cluster.objects(kind, all_namespaces=view.all_namespaces)
        found += [(kind, o) for o in sorted(objects, key=_place)]
    return found


def _place(obj: Obj) -> tuple[str, str]:
    meta = obj["metadata"]
    return meta.get("namespace") or "", meta["name"]


def render(view: View, found: Found, now: datetime, *, headers: bool | None = None) -> list[str]:
    """The lines for these objects in the asked format."""
    if view.output in ("json", "yaml"):
        if not found:
            return []
        objects = [obj for _, obj in found]
        return [listing.document(objects, view.output, single=view.name is not None)]
    if view.output == "name":
        return [line for kind, obj in found for line in listing.names(kind, [obj])]
    return _tables(view, found, now, view.headers if headers is None else headers)


def _tables(view: View, found: Found, now: datetime, headers: bool) -> list[str]:
    """One table per kind; with several kinds, names are qualified, as `kubectl get all`."""
    lines: list[str] = []
    for kind in view.kinds:
        objects = [obj for k, obj in found if k == kind]
        if not objects:
            continue
        table = listing.rows(
            kind, objects, now, wide=view.output == "wide",
            namespaces=view.all_namespaces, qualified=len(view.kinds) > 1,
        )  # fmt: skip
        if lines and headers:
            lines.append("")
        lines += listing.align(table, headers=headers)
    return lines


def watch(
    fetch_now: Callable[[], Found],
    view: View,
    shown: Found,
    timeout: float | None,
) -> int:
    """Print each object again whenever it changes (a new resourceVersion), as
    `kubectl get -w` does, until time runs out or the one object watched goes."""
    deadline = None if timeout is None else time.monotonic() + timeout
    versions = {_uid(obj): _version(obj) for _, obj in shown}
    while deadline is None or time.monotonic() < deadline:
        between_looks()
        found = fetch_now()
        changed = [(k, o) for k, o in found if versions.get(_uid(o)) != _version(o)]
        versions.update({_uid(o): _version(o) for _, o in changed})
        if changed:
            print("\n".join(render(view, changed, datetime.now(UTC), headers=False)), flush=True)
    return errors.OK


def between_looks() -> None:
    """Watching polls: what it costs is one list a second, and it works through
    any proxy between the user and the API server."""
    time.sleep(POLL_SECONDS)


def _uid(obj: Obj) -> str:
    meta = obj["metadata"]
    return str(meta.get("uid") or f"{meta.get('namespace')}/{meta['name']}")


def _version(obj: Obj) -> str:
    return str(obj["metadata"].get("resourceVersion") or "")


def _tree_fn(cluster: Cluster, kind: Kind, name: str) -> Callable[[], list[str]]:
    def snapshot() -> list[str]:
        return tree.render(build_tree(cluster, kind, cluster.get(kind, name)))

    return snapshot


def _watch_tree(snapshot: Callable[[], list[str]], timeout: float | None) -> int:
    """Print the tree again whenever it changes, until the object goes or time runs out."""
    deadline = None if timeout is None else time.monotonic() + timeout
    shown: Sequence[str] = []
    while deadline is None or time.monotonic() < deadline:
        try:
            lines = snapshot()
        except NotFound as gone:
            print(f"error: {gone}", file=sys.stderr)
            return errors.NOT_FOUND
        if lines != shown:
            print(f"--- {datetime.now(UTC):%H:%M:%S}", *lines, sep="\n", flush=True)
            shown = lines
        between_looks()
    return errors.OK
