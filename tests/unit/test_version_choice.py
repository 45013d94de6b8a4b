"""Which version a Deployment serves, and how many pods a retiring version
keeps: the pure decisions, table by table."""

from __future__ import annotations

from typing import Any

import pytest

from trailboss.api.deployment import DeploymentSpec
from trailboss.policies import rollout as policy


def _spec(**fields: Any) -> DeploymentSpec:
    return DeploymentSpec.model_validate({"model": "churn", **fields})


def _candidate(name: str, version: int, phase: str, **fields: Any) -> policy.Candidate:
    return policy.Candidate(
        name=name,
        model="churn",
        phase=phase,
        ready=phase == "Validated",
        registry_version=version,
        labels={},
        **fields,
    )


@pytest.mark.parametrize(
    ("phase", "wanted", "reached"),
    [
        ("Registered", "Registered", True),
        ("Validated", "Registered", True),
        ("Validated", "Validated", True),
        ("Registered", "Validated", False),
        ("Rejected", "Registered", False),
        ("Failed", "Registered", False),
        ("Pending", "Registered", False),
        (None, "Registered", False),
    ],
)
def test_a_phase_filter_means_at_least_that_far(
    phase: str | None, wanted: str, reached: bool
) -> None:
    assert policy.reached(phase, wanted) is reached


def test_latest_registered_picks_the_newest_version_that_got_at_least_that_far() -> None:
    versions = [_candidate("v1", 1, "Validated"), _candidate("v2", 2, "Registered")]
    assert policy.choose(_spec(versionPolicy={"latest": "Registered"}), versions).version == "v1"
    unvalidated = _spec(versionPolicy={"latest": "Registered"}, serveUnvalidated=True)
    assert policy.choose(unvalidated, versions).version == "v2"
    passed = [versions[0], _candidate("v2", 2, "Validated")]
    assert policy.choose(unvalidated, passed).version == "v2"


def test_a_version_being_deleted_is_never_chosen() -> None:
    going = _candidate("v2", 2, "Validated", deleting=True)
    versions = [_candidate("v1", 1, "Validated"), going]
    assert policy.choose(_spec(versionPolicy={"latest": "Validated"}), versions).version == "v1"
    pinned = policy.choose(_spec(modelVersion="v2"), versions)
    assert (pinned.version, pinned.reason) == (None, "VersionNotReady")
    assert "being deleted" in pinned.message


@pytest.mark.parametrize(
    ("last", "versions", "expected", "reason"),
    [
        ("v2", [_candidate("v2", 2, "Validated")], "v2", "RegistryUnavailable"),
        (None, [_candidate("v2", 2, "Validated")], None, "RegistryUnavailable"),
        ("v2", [], None, "VersionNotFound"),
        ("v2", [_candidate("v2", 2, "Rejected")], None, "VersionNotReady"),
    ],
)
def test_an_unreadable_registry_keeps_the_last_target_while_it_is_servable(
    last: str | None, versions: list[policy.Candidate], expected: str | None, reason: str
) -> None:
    choice = policy.kept(_spec(versionPolicy={"alias": "champion"}), last, versions)
    assert (choice.version, choice.reason) == (expected, reason)
    assert "registry cannot be read" in choice.message


@pytest.mark.parametrize(
    ("short", "retiring", "kept"),
    [
        (0, [("v2", 5, 5)], {"v2": 0}),
        (5, [("v2", 5, 5)], {"v2": 5}),
        (3, [("v2", 5, 5)], {"v2": 3}),
        (5, [("v3", 2, 2), ("v2", 5, 5)], {"v3": 2, "v2": 3}),
        (5, [("v3", 4, 1), ("v2", 5, 5)], {"v3": 4, "v2": 4}),
        (9, [("v2", 5, 5)], {"v2": 5}),
    ],
)
def test_retiring_versions_keep_the_pods_the_serving_ones_lack(
    short: int, retiring: list[tuple[str, int, int]], kept: dict[str, int]
) -> None:
    assert policy.retiring_pods(short, retiring) == kept
