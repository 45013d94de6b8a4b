"""`trailboss promote|abort|pause|resume` on a Deployment: what they write and when
they refuse, with the cluster replaced by an in-memory one."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from tests.unit.cli_fakes import run
from trailboss.api.deployment import (
    ABORT_ANNOTATION,
    PAUSED_ANNOTATION,
    PROMOTE_ANNOTATION,
    PROMOTE_STEP_PREFIX,
)
from trailboss.commands import actions, errors, rollout
from trailboss.commands.cluster import Cluster
from trailboss.commands.kinds import Kind


class FakeCluster:
    """One Deployment; records the annotation patches."""

    def __init__(self, status: dict[str, Any]) -> None:
        self.obj: dict[str, Any] = {"metadata": {"name": "churn"}, "spec": {}, "status": status}
        self.patches: list[dict[str, str | None]] = []
        self.specs: list[dict[str, Any]] = []

    def get(self, kind: Kind, name: str) -> dict[str, Any]:
        assert (kind.kind, name) == ("Deployment", "churn")
        return self.obj

    def patch_annotations(
        self, kind: Kind, name: str, annotations: dict[str, str | None]
    ) -> dict[str, Any]:
        self.patches.append(annotations)
        return self.obj

    def patch_spec(self, kind: Kind, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        self.specs.append(spec)
        return self.obj


@pytest.fixture
def rolling(monkeypatch: pytest.MonkeyPatch) -> FakeCluster:
    cluster = FakeCluster({"stableVersion": "v1", "canaryVersion": "v2", "canaryWeight": 10})
    monkeypatch.setattr(Cluster, "connect", classmethod(lambda cls, args: cluster))
    return cluster


def _args(**kw: Any) -> argparse.Namespace:
    return argparse.Namespace(name="churn", kind="deployment", **kw)


def test_promote_and_abort_carry_a_new_value_each_time(
    rolling: FakeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    assert rollout.run_promote(_args(full=True)) == 0
    assert rollout.run_abort(_args()) == 0
    assert [list(p) for p in rolling.patches] == [[PROMOTE_ANNOTATION], [ABORT_ANNOTATION]]
    assert all(next(iter(p.values())) for p in rolling.patches)
    assert "full promotion of v2 requested" in capsys.readouterr().out


def test_promote_moves_one_step_and_full_moves_all(
    rolling: FakeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "promote", "churn")[0] == 0
    assert run(capsys, "promote", "churn", "--full")[0] == 0
    step, full = (p[PROMOTE_ANNOTATION] for p in rolling.patches)
    assert step is not None
    assert full is not None
    assert step.startswith(PROMOTE_STEP_PREFIX)  # the operator moves one step
    assert not full.startswith(PROMOTE_STEP_PREFIX)  # every remaining step
    assert step[len(PROMOTE_STEP_PREFIX) :] != full  # a new value each time


def test_promote_without_a_rollout_is_refused(
    rolling: FakeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    rolling.obj["status"] = {"stableVersion": "v1"}
    code, _, err = run(capsys, "promote", "churn")
    assert code == errors.REFUSED
    assert rolling.patches == []
    assert "has no rollout in progress (stable: v1)" in err


def test_pause_sets_and_resume_removes_the_annotation(rolling: FakeCluster) -> None:
    assert rollout.run_pause(_args()) == 0
    assert actions.run_resume(_args()) == 0
    assert rolling.patches == [{PAUSED_ANNOTATION: "true"}, {PAUSED_ANNOTATION: None}]


def _served(rolling: FakeCluster, spec: dict[str, Any], status: dict[str, Any]) -> None:
    rolling.obj["spec"], rolling.obj["status"] = spec, status


HISTORY = [{"version": v} for v in ("v1", "v2", "v3")]


def test_undo_pins_the_previous_stable_version(
    rolling: FakeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    _served(rolling, {"modelVersion": "v3"}, {"stableVersion": "v3", "promoted": HISTORY})
    code, out, _ = run(capsys, "undo", "churn")
    assert code == 0
    assert rolling.specs == [{"modelVersion": "v2"}]  # it changes the spec, as Argo's undo
    assert "spec.modelVersion set to v2 (was v3)" in out
    assert "put the same change in Git" in out


def test_undo_during_a_rollout_goes_back_to_stable(
    rolling: FakeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    _served(rolling, {"modelVersion": "v4"},
            {"stableVersion": "v3", "canaryVersion": "v4", "promoted": HISTORY})  # fmt: skip
    assert run(capsys, "undo", "churn")[0] == 0
    assert rolling.specs == [{"modelVersion": "v3"}]


def test_undo_to_a_named_version(rolling: FakeCluster, capsys: pytest.CaptureFixture[str]) -> None:
    _served(rolling, {"modelVersion": "v3"}, {"stableVersion": "v3", "promoted": HISTORY})
    assert run(capsys, "undo", "churn", "--to-version", "v1")[0] == 0
    assert rolling.specs == [{"modelVersion": "v1"}]


def test_undo_of_a_version_policy_needs_pin(
    rolling: FakeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = {"versionPolicy": {"latest": "Validated"}}
    _served(rolling, policy, {"stableVersion": "v3", "promoted": HISTORY})
    code, _, err = run(capsys, "undo", "churn")
    assert code == errors.REFUSED
    assert rolling.specs == []
    assert "kubectl trailboss undo churn --pin" in err
    assert '"versionPolicy": null, "modelVersion": "v2"' in err  # the kubectl patch to run
    assert len(err.splitlines()) == 1
    assert run(capsys, "undo", "churn", "--pin")[0] == 0
    assert rolling.specs == [{"modelVersion": "v2", "versionPolicy": None}]


def test_undo_with_nothing_served_before_is_refused(
    rolling: FakeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    _served(rolling, {"modelVersion": "v1"}, {"stableVersion": "v1", "promoted": HISTORY[:1]})
    code, _, err = run(capsys, "undo", "churn")
    assert code == errors.REFUSED
    assert "has served no other version to go back to (stable: v1)" in err
