"""The chart grants the operator exactly what its code asks of the API server:
no grant without a call, no call without a grant, cluster-wide and with a list
of namespaces (how the calls are found: ``tests/unit/kube_calls.py``). And when
the API server refuses an Event, the log says whether RBAC refused it or the
namespace was going away."""

from __future__ import annotations

import functools
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic.exceptions import ForbiddenError

from tests.unit.kube_calls import (
    CRDS,
    DRIVER_KIND,
    NAMESPACES,
    RECORD_TO,
    ROOT,
    Call,
    Grant,
    call_sites,
    driven_kinds,
    for_every_kind,
    grants_for,
    kopf_grants,
    modules_on_the_fakes,
    peering,
    read_calls,
    requests_per_method,
    unreached,
)
from trailboss.clients.kube import EventRecorder

from .fakes import NOW

CHART = ROOT / "charts" / "trailboss"
HELM = Path(os.environ.get("TRAILBOSS_CACHE") or Path.home() / ".cache" / "trailboss") / "bin/helm"
EXPECTED = ROOT / "e2e" / "expected"
needs_helm = pytest.mark.skipif(
    not HELM.is_file() and not os.environ.get("CI"),
    reason=f"no helm binary at {HELM}; `make stack-build` builds it",
)

Manifest = dict[str, Any]
Grants = dict[str, set[Grant]]  # namespace, or "*" for cluster-wide -> grants


# --------------------------------------------------------------------------- what the code asks


RECORDED_BY = "TRAILBOSS_KUBE_CALLS_FROM"
"""A directory where an earlier run of the unit tests recorded the calls (`make unit`
records them as it runs the suite, then runs this module)."""


@pytest.fixture(scope="module")
def calls(tmp_path_factory: pytest.TempPathFactory) -> list[Call]:
    """The client calls the operator's code makes while the unit tests that run
    it on the fakes run: as recorded by the run before this one, or else by a
    run of those tests here (in a separate pytest, so the recording stays there)."""
    if recorded := os.environ.get(RECORDED_BY):
        found = list(read_calls(Path(recorded)))
        assert found, f"{RECORDED_BY}={recorded}: no calls recorded there"
        return found
    record = tmp_path_factory.mktemp("kube-calls")
    on_the_fakes = [str(path) for path in modules_on_the_fakes(skip=Path(__file__))]
    run = subprocess.run(
        [sys.executable, "-m", "pytest", *on_the_fakes, "-q", "-o", "addopts=",
         "-p", "no:cacheprovider", "-p", "tests.unit.kube_calls"],
        cwd=ROOT, env={**os.environ, RECORD_TO: str(record)},
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert any(record.glob("*.json")), run.stdout[-3000:] + run.stderr[-3000:]
    return list(read_calls(record))


@pytest.fixture(scope="module")
def needed(calls: list[Call]) -> set[Grant]:
    """What one watched namespace needs: the operator's calls and kopf's for its handlers."""
    every_call = for_every_kind(calls, call_sites(), driven_kinds())
    return grants_for(every_call, requests_per_method()) | kopf_grants()


def test_the_unit_tests_reach_every_call_of_the_client(calls: list[Call]) -> None:
    """Otherwise a call could need a grant that nothing here derives."""
    never = unreached(call_sites(), calls)
    assert not never, "no unit test reaches:\n  " + "\n  ".join(map(str, never))


def test_every_call_names_its_kind_in_the_source_or_is_the_drivers() -> None:
    """A kind held in a variable could be any kind: the recording could not tell."""
    unclear = [
        str(s)
        for s in call_sites()
        if s.kind and s.kind != DRIVER_KIND and not s.kind.startswith(("'", '"'))
    ]
    assert not unclear, "the kind is neither written out nor the driver's:\n  " + "\n  ".join(
        unclear
    )


def test_the_client_methods_ask_for_what_they_do() -> None:
    verbs = {m: sorted(r.verb for r in requests) for m, requests in requests_per_method().items()}
    assert verbs == {
        "apply": ["create", "patch"],  # server-side apply creates what is missing
        "create": ["create"],
        "delete": ["delete"],
        "event": ["create", "patch"],  # a repeat counts up the first Event
        "events_for": ["list"],
        "get": ["get"],
        "list": ["list"],
        "patch": ["patch"],
        "patch_status": ["patch"],
    }


# --------------------------------------------------------------------------- what the chart grants


@functools.cache
def render(*values: str) -> list[Manifest]:
    result = subprocess.run(
        [str(HELM), "template", "trailboss", str(CHART), "--namespace", "trailboss", *values],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def operator_roles(objects: list[Manifest]) -> list[Manifest]:
    """The Roles and ClusterRoles bound to the operator (not those that extend the
    built-in user roles)."""
    return [
        o
        for o in objects
        if o["kind"] in ("Role", "ClusterRole")
        and not any(
            k.startswith("rbac.authorization.k8s.io/aggregate-to-")
            for k in o["metadata"].get("labels") or {}
        )
    ]


def granted(objects: list[Manifest]) -> Grants:
    table: Grants = {}
    for role in operator_roles(objects):
        where = table.setdefault(role["metadata"].get("namespace", "*"), set())
        for rule in role["rules"]:
            where |= {
                Grant(group, resource, verb)
                for group in rule["apiGroups"]
                for resource in rule["resources"]
                for verb in rule["verbs"]
            }
    return table


def differences(wanted: Grants, table: Grants) -> list[str]:
    found = []
    for where in sorted(wanted.keys() | table.keys()):
        scope = "cluster-wide" if where == "*" else f"in namespace {where}"
        have, need = table.get(where, set()), wanted.get(where, set())
        found += [f"granted {scope} but never called: {g}" for g in sorted(have - need, key=str)]
        found += [f"called {scope} but not granted: {g}" for g in sorted(need - have, key=str)]
    return found


INSTALLS = {
    "cluster-wide": [],
    "cluster-wide, two replicas": ["--set", "replicaCount=2"],
    "namespaced": ["--set", "watchNamespaces={a,b}"],
    "namespaced, two replicas": ["--set", "watchNamespaces={a,b}", "--set", "replicaCount=2"],
}


def wanted(install: str, needed: set[Grant]) -> Grants:
    replicas = "two replicas" in install
    if install.startswith("cluster-wide"):
        return {"*": needed | CRDS | (peering("clusterkopfpeerings") if replicas else set())}
    namespaced = needed | (peering("kopfpeerings") if replicas else set())
    return {"*": CRDS | NAMESPACES, "a": namespaced, "b": namespaced}


@needs_helm
@pytest.mark.parametrize("install", INSTALLS)
def test_the_chart_grants_exactly_what_the_code_calls(install: str, needed: set[Grant]) -> None:
    wrong = differences(wanted(install, needed), granted(render(*INSTALLS[install])))
    assert not wrong, "\n".join(wrong)


@needs_helm
def test_with_namespaces_the_writes_are_roles_in_them() -> None:
    objects = render("--set", "watchNamespaces={a,b}")
    (cluster_role,) = operator_roles([o for o in objects if o["kind"] == "ClusterRole"])
    verbs = {v for rule in cluster_role["rules"] for v in rule["verbs"]}
    assert verbs == {"list", "watch"}
    roles = [o for o in objects if o["kind"] == "Role"]
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["a", "b"]
    bindings = [o for o in objects if o["kind"] == "RoleBinding"]
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["a", "b"]


# --------------------------------------------------------------------------- kubectl auth can-i

# What every authenticated user may do, from the cluster's default roles.
EVERYONE = [
    ("authentication.k8s.io", "selfsubjectreviews", ["create"]),
    ("authorization.k8s.io", "selfsubjectaccessreviews", ["create"]),
    ("authorization.k8s.io", "selfsubjectrulesreviews", ["create"]),
]


def can_i_list(roles: list[Manifest]) -> list[str]:
    """The rows `kubectl auth can-i --list` prints for these roles, normalised as
    e2e/test_chart.py compares them: kubectl breaks every rule into one row per
    resource, with the verbs in the rule's order."""
    rows: dict[tuple[str, str], list[str]] = {(g, r): v for g, r, v in EVERYONE}
    for role in roles:
        for rule in role["rules"]:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    verbs = rows.setdefault((group, resource), [])
                    verbs += [v for v in rule["verbs"] if v not in verbs]
    return sorted(f"{as_kubectl_names(g, r)} [] [] [{' '.join(v)}]" for (g, r), v in rows.items())


def as_kubectl_names(group: str, resource: str) -> str:
    """``deployments.trailboss.dev/status``: the group between resource and subresource."""
    name, _, subresource = resource.partition("/")
    return name + (f".{group}" if group else "") + (f"/{subresource}" if subresource else "")


def expected_rows(name: str) -> list[str]:
    """The rows of an expected table, as e2e/test_chart.py's resource_rules reads them."""
    return sorted(
        " ".join(line.split())
        for line in (EXPECTED / name).read_text().splitlines()
        if line.strip() and not line.startswith((" ", "#", "Resources "))
    )


@needs_helm
def test_the_expected_can_i_tables_of_the_end_to_end_tests_follow_the_chart() -> None:
    clusterwide = operator_roles(render())
    namespaced = operator_roles(render("--set", "watchNamespaces={team}"))
    everywhere = [r for r in namespaced if r["kind"] == "ClusterRole"]
    assert expected_rows("can-i-operator-clusterwide.txt") == can_i_list(clusterwide)
    assert expected_rows("can-i-operator-namespaced.txt") == can_i_list(namespaced)
    assert expected_rows("can-i-operator-elsewhere.txt") == can_i_list(everywhere)


# --------------------------------------------------------------------------- refused events


def refusal(message: str, *causes: str) -> ForbiddenError:
    """A 403 as the API server sends it, through the dynamic client."""
    status = {
        "kind": "Status",
        "status": "Failure",
        "reason": "Forbidden",
        "code": 403,
        "message": message,
        "details": {"kind": "events", "causes": [{"type": c, "message": message} for c in causes]},
    }
    error = ApiException(status=403, reason="Forbidden")
    error.body = json.dumps(status)
    return ForbiddenError(error)  # type: ignore[no-untyped-call]


TERMINATING = refusal(
    'events "churn.1" is forbidden: unable to create new content in namespace ml because it is '
    "being terminated",
    "NamespaceTerminating",
)
RBAC = 'events is forbidden: User "system:serviceaccount:trailboss:trailboss" cannot {} resource '
RBAC += '"events" in API group "" in the namespace "ml"'


class RefusingEvents:
    """The Event resource, refusing creates or patches with a given 403."""

    def __init__(self) -> None:
        self.refuse_create: ForbiddenError | None = None
        self.refuse_patch: ForbiddenError | None = None

    def create(self, **_: Any) -> dict[str, Any]:
        if self.refuse_create:
            raise self.refuse_create
        return {}

    def patch(self, **_: Any) -> dict[str, Any]:
        if self.refuse_patch:
            raise self.refuse_patch
        return {}


RUN = {
    "apiVersion": "trailboss.dev/v1alpha1",
    "kind": "TrainingRun",
    "metadata": {"name": "churn", "namespace": "ml", "uid": "u1"},
}


def recorded(events: RefusingEvents) -> EventRecorder:
    return EventRecorder(lambda: events, clock=lambda: NOW)


def logged(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == level]


def test_an_event_in_a_namespace_being_deleted_is_dropped_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    events = RefusingEvents()
    events.refuse_create = TERMINATING
    with caplog.at_level(logging.DEBUG, logger="trailboss.clients.kube"):
        recorded(events).record(RUN, "JobCreated", "created Job churn-train-1")
    assert logged(caplog, logging.WARNING) == []
    assert logged(caplog, logging.DEBUG) == [
        "event JobCreated on churn not recorded: namespace ml is being deleted"
    ]


def test_an_event_rbac_refuses_is_a_warning_naming_the_missing_grant(
    caplog: pytest.LogCaptureFixture,
) -> None:
    events = RefusingEvents()
    events.refuse_create = refusal(RBAC.format("create"))
    with caplog.at_level(logging.DEBUG, logger="trailboss.clients.kube"):
        recorded(events).record(RUN, "JobCreated", "created Job churn-train-1")
    assert logged(caplog, logging.WARNING) == [
        "could not record event JobCreated on churn: RBAC forbids create events in namespace "
        "ml; the operator's role needs that grant"
    ]


def test_a_repeat_rbac_refuses_names_the_patch_it_needs(caplog: pytest.LogCaptureFixture) -> None:
    events = RefusingEvents()
    recorder = recorded(events)
    recorder.record(RUN, "Waiting", "dataset missing")
    events.refuse_patch = refusal(RBAC.format("patch"))
    with caplog.at_level(logging.DEBUG, logger="trailboss.clients.kube"):
        recorder.record(RUN, "Waiting", "dataset missing")
    assert logged(caplog, logging.WARNING) == [
        "could not record event Waiting on churn: RBAC forbids patch events in namespace ml; "
        "the operator's role needs that grant"
    ]


def test_a_read_rbac_refuses_is_forbidden_for_the_caller_to_name() -> None:
    """A refused get reaches the reconcilers as Forbidden (not the client library's
    error), so one that can say which grant is missing does."""
    from trailboss.clients.kube import Kube
    from trailboss.clients.protocols import Forbidden

    class Refusing:
        def get(self, **_: Any) -> dict[str, Any]:
            raise refusal('secrets "prom-auth" is forbidden: User cannot get resource "secrets"')

    kube = Kube.__new__(Kube)
    kube.__dict__["_resource"] = lambda api_version, kind: Refusing()
    with pytest.raises(Forbidden, match="get Secret prom-auth in namespace ml"):
        kube.get("v1", "Secret", "ml", "prom-auth")
