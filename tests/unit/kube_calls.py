"""The Kubernetes requests the operator makes, as RBAC grants: (apiGroup, resource, verb).

Derived, not listed by hand, in three parts:

* **The operator's own calls.** Every request the operator makes goes through
  the client in ``trailboss.clients.kube`` (its methods are the ``KubeClient``
  protocol). Which kinds the calls name is not always in the source text: the
  manifest an ``apply`` or ``create`` sends is built elsewhere, and the status
  writer serves all three kinds. So the calls are recorded while the unit tests
  of the reconcilers run on the in-memory fakes: this module is also a pytest
  plugin (``-p tests.unit.kube_calls``) that notes each call made from the
  operator's code, with its place in the source. An ``ast`` pass lists every
  call of a client method in the operator's code, and each must have been
  reached by a test, so a call the tests never make cannot go without a grant.
  The reconcile driver's calls name the kind it drives (``self.kind.kind``):
  they count for every kind a driver drives, as a test may reach them with one
  kind only; a kind held in any other variable fails a test, since neither the
  source nor the recording could say which kinds it takes.
* **What each client method asks of the API server.** The real client is driven
  against a recording stand-in for the dynamic client (``requests_per_method``),
  so a method that changes how it writes (say, a replace instead of a patch)
  changes the verbs here too.
* **kopf's own requests**, from the handlers registered with kopf and kopf's
  source (``kopf/_core/reactor/observation.py``, ``engines/peering.py``):
  list and watch for every resource a handler serves; patch (finalizers,
  progress annotations) where a handler reacts to changes or runs a timer;
  list and watch of CustomResourceDefinitions to notice resources come and go;
  list and watch of Namespaces only when given namespaces (never cluster-wide);
  list, watch and patch of the peering object with several replicas. kopf
  posts no events here (``settings.posting.enabled = False``).

The kubectl plugin (``trailboss.commands``) runs with the user's credentials,
not the operator's, so it is not part of the operator's grants.
"""

from __future__ import annotations

import ast
import inspect
import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, NamedTuple

import pytest

from trailboss.clients.protocols import KubeClient

ROOT = Path(__file__).resolve().parents[2]
OPERATOR = ROOT / "operator" / "trailboss"
TESTS = ROOT / "tests"
NOT_THE_OPERATOR = (OPERATOR / "commands", OPERATOR / "cli.py", OPERATOR / "clients" / "kube.py")
RECORD_TO = "TRAILBOSS_KUBE_CALLS"
"""The directory where the plugin writes the calls it saw, a file per process
(each pytest-xdist worker records its share)."""

CLIENT_METHODS = sorted(
    name for name, _ in inspect.getmembers(KubeClient, inspect.isfunction) if name[0] != "_"
)


class Grant(NamedTuple):
    group: str
    resource: str
    verb: str

    def __str__(self) -> str:
        return f"{self.verb} {self.resource}" + (f".{self.group}" if self.group else "")


class Request(NamedTuple):
    """One request as RBAC sees it; ``api_version``/``kind`` None: the ones the call names."""

    api_version: str | None
    kind: str | None
    subresource: str
    verb: str


@dataclass(frozen=True)
class Call:
    """A client method called from the operator's code, and what it named."""

    method: str
    api_version: str | None
    kind: str | None
    path: str
    line: int


def group_of(api_version: str) -> str:
    return api_version.rpartition("/")[0]


def plural_of(kind: str) -> str:
    """The resource name of a kind, by the rule the API server's own kinds follow."""
    lower = kind.lower()
    if lower.endswith("y"):
        return lower[:-1] + "ies"
    return lower + ("es" if lower.endswith("s") else "s")


def in_operator(path: Path) -> bool:
    return path.is_relative_to(OPERATOR) and not any(
        path == other or path.is_relative_to(other) for other in NOT_THE_OPERATOR
    )


# --------------------------------------------------------------------------- call sites


@dataclass(frozen=True)
class Site:
    """A call of a client method in the source, spanning lines ``line``..``end``;
    ``kind``: the source text of the kind it names, if it names one."""

    method: str
    path: str
    line: int
    end: int
    kind: str = ""

    def reaches(self, call: Call) -> bool:
        return (call.method, call.path) == (self.method, self.path) and (
            self.line <= call.line <= self.end
        )

    def __str__(self) -> str:
        return f"{self.path}:{self.line} kube.{self.method}(...)"


def _is_client(node: ast.expr) -> bool:
    """``kube``, ``svc.kube``, ``turn.svc.kube``: the operator's name for its client."""
    return (isinstance(node, ast.Name) and node.id == "kube") or (
        isinstance(node, ast.Attribute) and node.attr == "kube"
    )


def call_sites() -> list[Site]:
    sites = []
    for path in sorted(OPERATOR.rglob("*.py")):
        if not in_operator(path):
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in CLIENT_METHODS
                and _is_client(node.func.value)
            ):
                where = str(path.relative_to(ROOT))
                kind = _kind_argument(node)
                sites.append(Site(node.func.attr, where, node.lineno, node.end_lineno or 0, kind))
    return sites


def _kind_argument(call: ast.Call) -> str:
    """The source text of the kind a call names, for the methods that take one."""
    assert isinstance(call.func, ast.Attribute)
    parameters = list(inspect.signature(getattr(KubeClient, call.func.attr)).parameters)
    if "kind" not in parameters:
        return ""
    named = [k.value for k in call.keywords if k.arg == "kind"]
    at = parameters.index("kind") - 1  # after self
    found = named or call.args[at : at + 1]
    return ast.unparse(found[0]) if found else ""


DRIVER_KIND = "self.kind.kind"
"""A call of the reconcile driver, made for each kind a driver drives."""


def unreached(sites: Iterable[Site], calls: Iterable[Call]) -> list[Site]:
    calls = list(calls)
    return [s for s in sites if not any(s.reaches(c) for c in calls)]


def driven_kinds() -> set[str]:
    """The kinds the reconcile drivers drive: one module-level Driver per kind."""
    import importlib
    import pkgutil

    import trailboss.reconcilers
    from trailboss.reconcilers.driver import Driver

    kinds = set()
    for module in pkgutil.iter_modules(trailboss.reconcilers.__path__):
        loaded = importlib.import_module(f"trailboss.reconcilers.{module.name}")
        kinds |= {d.kind.kind for d in vars(loaded).values() if isinstance(d, Driver)}
    return kinds


def for_every_kind(calls: Iterable[Call], sites: list[Site], kinds: set[str]) -> list[Call]:
    """The calls, those of the driver once for each kind it drives: the tests may
    have reached a driver's call with one kind only."""
    widened = []
    for call in calls:
        if any(s.kind == DRIVER_KIND and s.reaches(call) for s in sites):
            widened += [Call(call.method, call.api_version, k, call.path, call.line) for k in kinds]
        else:
            widened.append(call)
    return widened


# --------------------------------------------------------------------------- the client's requests


class _Resource:
    """Stands in for one of the dynamic client's resources; notes each request."""

    def __init__(self, sent: list[Request], subresource: str = "") -> None:
        self._sent = sent
        self._subresource = subresource
        if not subresource:
            self.status = _Resource(sent, "status")

    def _note(self, *verbs: str) -> dict[str, Any]:
        self._sent.extend(Request(None, None, self._subresource, v) for v in verbs)
        return {"items": []}

    def get(self, name: str | None = None, **_: Any) -> dict[str, Any]:
        return self._note("get" if name else "list")

    def create(self, **_: Any) -> dict[str, Any]:
        return self._note("create")

    def patch(self, **_: Any) -> dict[str, Any]:
        return self._note("patch")

    def delete(self, **_: Any) -> dict[str, Any]:
        return self._note("delete")

    def server_side_apply(self, **_: Any) -> dict[str, Any]:
        # An apply that makes a missing object is also authorized as a create.
        return self._note("patch", "create")


class _Events(_Resource):
    """The Event resource: its requests name Events, not the kind of the call."""

    def _note(self, *verbs: str) -> dict[str, Any]:
        self._sent.extend(Request("v1", "Event", "", v) for v in verbs)
        return {}


class _Core:
    def __init__(self, sent: list[Request]) -> None:
        self._sent = sent

    def list_namespaced_event(self, namespace: str, **_: Any) -> Any:
        self._sent.append(Request("v1", "Event", "", "list"))
        return type("EventList", (), {"items": []})()


SAMPLE_ARGUMENTS: dict[str, Any] = {
    "api_version": "example.dev/v1",
    "kind": "Example",
    "namespace": "team",
    "name": "one",
    "labels": {"a": "b"},
    "patch": {"spec": {}},
    "resource_version": "1",
    "manifest": {
        "apiVersion": "example.dev/v1",
        "kind": "Example",
        "metadata": {"name": "one", "namespace": "team"},
    },
    "obj": {
        "apiVersion": "example.dev/v1",
        "kind": "Example",
        "metadata": {"name": "one", "namespace": "team", "uid": "u"},
    },
    "reason": "Seen",
    "message": "seen",
    "warning": False,
}


def _client_on_stand_ins(sent: list[Request]) -> Any:
    """The real client, with no connection: every request goes to the stand-ins."""
    from trailboss.clients.kube import EventRecorder, Kube

    def resource(api_version: str, kind: str) -> _Resource:
        return _Events(sent) if kind == "Event" else _Resource(sent)

    def event_resource() -> _Resource:
        return resource("v1", "Event")

    kube = Kube.__new__(Kube)
    kube.__dict__.update(
        api=type("Api", (), {"sanitize_for_serialization": staticmethod(lambda e: e)})(),
        core=_Core(sent),
        _resource=resource,
        _events=EventRecorder(event_resource),
    )
    return kube


def requests_per_method() -> dict[str, set[Request]]:
    """What each method of the real client sends, each method called twice (the
    second Event of a kind is a repeat, which counts up the first)."""
    found: dict[str, set[Request]] = {}
    for method in CLIENT_METHODS:
        sent: list[Request] = []
        kube = _client_on_stand_ins(sent)
        parameters = inspect.signature(getattr(KubeClient, method)).parameters
        arguments = {p: SAMPLE_ARGUMENTS[p] for p in parameters if p != "self"}
        for _ in range(2):
            getattr(kube, method)(**arguments)
        found[method] = set(sent)
    return found


# --------------------------------------------------------------------------- grants


def grants_for(calls: Iterable[Call], requests: dict[str, set[Request]]) -> set[Grant]:
    needed = set()
    for call in calls:
        for request in requests[call.method]:
            api_version = request.api_version or call.api_version
            kind = request.kind or call.kind
            assert api_version, f"{call} names no apiVersion"
            assert kind, f"{call} names no kind"
            resource = plural_of(kind) + (f"/{request.subresource}" if request.subresource else "")
            needed.add(Grant(group_of(api_version), resource, request.verb))
    return needed


def kopf_grants() -> set[Grant]:
    """What kopf asks for the resources the handlers serve (``any_name`` is the
    plural in every handler here)."""
    import kopf

    import trailboss.handlers  # registers the handlers with kopf

    assert trailboss.handlers.__all__
    registry = kopf.get_default_registry()
    needed = set()
    # kopf keeps its handlers by purpose; these are the attributes it reads itself.
    for purpose, verbs in (
        ("_watching", ("list", "watch")),
        ("_indexing", ("list", "watch")),
        ("_changing", ("list", "watch", "patch")),
        ("_spawning", ("list", "watch", "patch")),
    ):
        for handler in getattr(registry, purpose).get_all_handlers():
            selector = handler.selector
            needed |= {Grant(selector.group or "", selector.any_name, v) for v in verbs}
    return needed


CRDS = {Grant("apiextensions.k8s.io", "customresourcedefinitions", v) for v in ("list", "watch")}
NAMESPACES = {Grant("", "namespaces", v) for v in ("list", "watch")}


def peering(resource: str) -> set[Grant]:
    return {Grant("kopf.dev", resource, v) for v in ("list", "watch", "patch")}


# --------------------------------------------------------------------------- the recording plugin


def _call_site(frame: FrameType | None) -> tuple[str, int] | None:
    """Where the operator's code called the client: the first frame outside the
    tests (a fake may wrap another), if it is in the operator."""
    while frame is not None and Path(frame.f_code.co_filename).is_relative_to(TESTS):
        frame = frame.f_back
    if frame is None or not in_operator(Path(frame.f_code.co_filename)):
        return None
    return str(Path(frame.f_code.co_filename).relative_to(ROOT)), frame.f_lineno


def _recording(method: Callable[..., Any], name: str, calls: list[Call]) -> Callable[..., Any]:
    signature = inspect.signature(method)

    def recorded(self: Any, *args: Any, **kwargs: Any) -> Any:
        site = _call_site(sys._getframe(1))
        if site is not None:
            named = signature.bind(self, *args, **kwargs).arguments
            manifest = named.get("manifest") or {}
            api_version = manifest.get("apiVersion", named.get("api_version"))
            kind = manifest.get("kind", named.get("kind"))
            calls.append(Call(name, api_version, kind, path=site[0], line=site[1]))
        return method(self, *args, **kwargs)

    return recorded


_CALLS: list[Call] = []
_RECORDED: set[Path] = set()
"""The test modules whose calls count: those that run the operator on the fakes
(a whole-suite run records only their calls, as a run of them alone does)."""


def pytest_configure(config: Any) -> None:
    from tests.unit.fakes import FakeKube

    _RECORDED.update(modules_on_the_fakes(skip=TESTS / "unit" / "test_rbac_derived.py"))
    calls: list[Call] = []
    for name in CLIENT_METHODS:
        setattr(FakeKube, name, _recording(getattr(FakeKube, name), name, calls))
    config.stash[_SEEN] = calls


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: Any, nextitem: Any) -> Iterator[None]:
    calls = item.config.stash[_SEEN]
    before = len(calls)
    yield
    if Path(item.path) in _RECORDED:
        _CALLS.extend(calls[before:])
    del calls[before:]


def pytest_unconfigure(config: Any) -> None:
    directory = Path(os.environ[RECORD_TO])
    directory.mkdir(parents=True, exist_ok=True)
    process = os.environ.get("PYTEST_XDIST_WORKER", "main")
    (directory / f"{process}.json").write_text(json.dumps([c.__dict__ for c in _CALLS]))


_SEEN = pytest.StashKey[list[Call]]()


_USES = re.compile(r"^from (?:\.|tests\.unit\.)(fakes|test_\w+) import", re.MULTILINE)


def modules_on_the_fakes(skip: Path) -> list[Path]:
    """The unit test modules that run the operator's code on the fakes, directly or
    through another module's harness (``World``, ``Loop``)."""
    here = TESTS / "unit"
    uses = {p.stem: set(_USES.findall(p.read_text())) for p in here.glob("test_*.py")}
    found = {"fakes"}
    while grown := {m for m, used in uses.items() if used & found} - found:
        found |= grown
    return sorted(here / f"{m}.py" for m in found - {"fakes", skip.stem})


def read_calls(directory: Path) -> Iterator[Call]:
    """The calls recorded in ``directory``, by every process of the run."""
    for path in sorted(directory.glob("*.json")):
        for item in json.loads(path.read_text()):
            yield Call(**item)
