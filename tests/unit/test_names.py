"""Every generated name is one the API server accepts, for any valid parent name.

Reruns are named by Python (the kubectl plugin) and by Lua (the Argo CD action):
both run the cases in names_cases.json. Every other name is the operator's, and
a property test over generated parent names checks each one against the rule the
API server applies: the CRD's own rule on metadata.name for TrainingRuns, and a
DNS label (or, for Services, an RFC 1035 label) for the children.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.test_argocd_actions import ACTIONS, to_python, training_run
from trailboss.builders import drift, names, retraining, serving, training
from trailboss.commands.actions import rerun_name as plugin_rerun_name

ROOT = Path(__file__).resolve().parents[2]
CASES = json.loads((Path(__file__).with_name("names_cases.json")).read_text())["reruns"]
RERUN_ACTION = (ACTIONS / "rerun" / "action.lua").read_text()
ARGOCD_MARK = "20261207003700"  # what os.date("!%Y%m%d%H%M%S") gives
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
RFC1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
MAX_LABEL = 63


@dataclass(frozen=True)
class NameRule:
    """A CRD's rule on metadata.name, as the API server checks it."""

    max_length: int
    pattern: str

    def accepts(self, name: str) -> bool:
        return len(name) <= self.max_length and re.search(self.pattern, name) is not None


def crd_name_rule(plural: str) -> NameRule:
    """Read from the generated CRD, not from the Python that generated it."""
    crd = yaml.safe_load((ROOT / "crds" / f"trailboss.dev_{plural}.yaml").read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    (rule,) = [
        v["rule"] for v in schema["x-kubernetes-validations"] if "self.metadata.name" in v["rule"]
    ]
    size = re.search(r"size\(self\.metadata\.name\) <= (\d+)", rule)
    pattern = re.search(r'self\.metadata\.name\.matches\(r"(.+)"\)', rule)
    assert size, rule
    assert pattern, rule
    return NameRule(int(size.group(1)), pattern.group(1))


TRAINING_RUNS = crd_name_rule("trainingruns")
MODEL_VERSIONS = crd_name_rule("modelversions")
DEPLOYMENTS = crd_name_rule("deployments")


def argocd_rerun(run: str, mark: str | None = ARGOCD_MARK) -> str:
    """The name the Argo CD rerun action gives, run by Lua 5.1 as Argo CD runs it,
    with its clock at ``mark`` (None: the real clock)."""
    from lupa import lua51

    lua = lua51.LuaRuntime(unpack_returned_tuples=True)
    if mark is not None:
        lua.execute(f'package.loaded.os = {{date = function() return "{mark}" end}}')
    body = training_run()
    body["metadata"]["name"] = run
    lua.globals().obj = lua.table_from(body, recursive=True)
    (created,) = to_python(lua.execute(RERUN_ACTION))
    name: str = created["resource"]["metadata"]["name"]
    return name


# ------------------------------------------------------------------ the shared cases


def test_the_cases_are_names_the_crd_accepts() -> None:
    for case in CASES:
        assert TRAINING_RUNS.accepts(case["run"]), case
        assert TRAINING_RUNS.accepts(case["rerun"]), case


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["why"])
def test_python_names_reruns_as_the_cases_say(case: dict[str, str]) -> None:
    assert names.rerun_name(case["run"], case["mark"]) == case["rerun"]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["why"])
def test_the_argocd_action_names_reruns_as_the_cases_say(case: dict[str, str]) -> None:
    assert argocd_rerun(case["run"], case["mark"]) == case["rerun"]


def test_the_argocd_action_marks_a_rerun_with_the_utc_time() -> None:
    assert re.fullmatch(r"churn-rerun-\d{14}", argocd_rerun("churn", mark=None))


def test_the_argocd_action_cuts_to_the_crd_limit() -> None:
    longest = "a" * TRAINING_RUNS.max_length
    name = argocd_rerun(longest, mark=None)
    assert len(name) == TRAINING_RUNS.max_length
    assert TRAINING_RUNS.accepts(name)


def test_the_plugin_counts_reruns_up_within_the_crd_limit() -> None:
    longest = "a" * TRAINING_RUNS.max_length
    first = plugin_rerun_name(longest, set())
    assert first == names.rerun_name(longest, 1)
    assert TRAINING_RUNS.accepts(first)
    second = plugin_rerun_name(longest, {first})
    assert second == names.rerun_name(longest, 2)
    assert plugin_rerun_name(second, {first, second}) == names.rerun_name(longest, 3)


# ------------------------------------------------------ any valid parent, every name


def valid_names(rule: NameRule) -> st.SearchStrategy[str]:
    """Names the CRD accepts, long ones and dash-heavy ones included."""
    letters, middle = "abcdefghijklmnopqrstuvwxyz", "abcdefghijklmnopqrstuvwxyz0123456789-"

    def build(length: int) -> st.SearchStrategy[str]:
        if length == 1:
            return st.sampled_from(letters)
        return st.tuples(
            st.sampled_from(letters),
            st.text(middle, min_size=length - 2, max_size=length - 2),
            st.sampled_from(letters + "0123456789"),
        ).map("".join)

    lengths = st.integers(1, rule.max_length) | st.just(rule.max_length)
    return lengths.flatmap(build).filter(rule.accepts)


UIDS = st.uuids().map(str)
NUMBERS = st.integers(1, 10**7)  # retrainings, drift checks, profile attempts
PROPERTIES = settings(max_examples=300, deadline=None)


def dns_label(name: str) -> bool:
    return len(name) <= MAX_LABEL and DNS_LABEL.fullmatch(name) is not None


def service_name(name: str) -> bool:
    return len(name) <= MAX_LABEL and RFC1035_LABEL.fullmatch(name) is not None


@PROPERTIES
@given(valid_names(TRAINING_RUNS), st.integers(1, 10**6))
def test_every_rerun_of_any_training_run_is_a_training_run_name(run: str, count: int) -> None:
    assert TRAINING_RUNS.accepts(names.rerun_name(run, count))
    assert TRAINING_RUNS.accepts(names.rerun_name(run, ARGOCD_MARK))
    assert TRAINING_RUNS.accepts(plugin_rerun_name(run, set()))


@settings(max_examples=100, deadline=None)
@given(valid_names(TRAINING_RUNS))
def test_the_argocd_rerun_of_any_training_run_is_python_s(run: str) -> None:
    assert argocd_rerun(run) == names.rerun_name(run, ARGOCD_MARK)


@PROPERTIES
@given(valid_names(DEPLOYMENTS), UIDS, NUMBERS)
def test_every_retraining_of_any_deployment_is_a_training_run_name(
    deployment: str, uid: str, number: int
) -> None:
    assert TRAINING_RUNS.accepts(retraining.run_name(deployment, uid, number))


@PROPERTIES
@given(valid_names(TRAINING_RUNS), UIDS, st.integers(0, 1023))
def test_the_job_and_service_of_any_training_run_are_valid(run: str, uid: str, index: int) -> None:
    owner = training.Owner(run, "ml", uid)
    job = training.job_name(owner)
    assert dns_label(job)
    assert dns_label(f"{job}-{index}")  # a distributed worker's hostname
    assert service_name(training.service_name(owner))


@PROPERTIES
@given(valid_names(DEPLOYMENTS), UIDS, valid_names(MODEL_VERSIONS), NUMBERS)
def test_the_servers_services_and_drift_jobs_of_any_deployment_are_valid(
    deployment: str, uid: str, version: str, number: int
) -> None:
    owner = serving.Owner(deployment, "ml", uid)
    assert dns_label(serving.server_name(owner, version))
    assert all(service_name(name) for name in serving.service_names(owner))
    assert dns_label(drift.check_job_name(owner, number))


@PROPERTIES
@given(valid_names(MODEL_VERSIONS), UIDS, NUMBERS)
def test_the_profile_jobs_of_any_model_version_are_valid(
    version: str, uid: str, attempt: int
) -> None:
    owner = drift.ModelVersionOwner(version, "ml", uid)
    assert dns_label(drift.profile_job_name(owner, attempt))
