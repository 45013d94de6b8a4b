"""`trailboss promote|abort|pause|resume` on a Deployment: what they write and when
they refuse, with the cluster replaced by an in-memory one."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from trailboss.api.deployment import ABORT_ANNOTATION, PAUSED_ANNOTATION, PROMOTE_ANNOTATION
from trailboss.commands import actions, rollout
from trailboss.commands.cluster import Cluster
from trailboss.commands.kinds import Kind


class FakeCluster:
    """One Deployment; records the annotation patches."""

    def __init__(self, status: dict[str, Any]) -> None:
        self.obj: dict[str, Any] = {"metadata": {"name": "churn"}, "spec": {}, "status": status}
        self.patches: list[dict[str, str | None]] = []

    def get(self, kind: Kind, name: str) -> dict[str, Any]:
        assert (kind.kind, name) == ("Deployment", "churn")
        return self.obj

    def patch_annotations(
        self, kind: Kind, name: str, annotations: dict[str, str | None]
    ) -> dict[str, Any]:
        self.patches.append(annotations)
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
    assert rollout.run_promote(_args()) == 0
    assert rollout.run_abort(_args()) == 0
    assert [list(p) for p in rolling.patches] == [[PROMOTE_ANNOTATION], [ABORT_ANNOTATION]]
    assert all(next(iter(p.values())) for p in rolling.patches)
    assert "promotion of v2 requested" in capsys.readouterr().out


def test_promote_without_a_rollout_is_refused(
    rolling: FakeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    rolling.obj["status"] = {"stableVersion": "v1"}
    assert rollout.run_promote(_args()) == 1
    assert rolling.patches == []
    assert "has no rollout in progress (stable: v1)" in capsys.readouterr().err


def test_pause_sets_and_resume_removes_the_annotation(rolling: FakeCluster) -> None:
    assert rollout.run_pause(_args()) == 0
    assert actions.run_resume(_args()) == 0
    assert rolling.patches == [{PAUSED_ANNOTATION: "true"}, {PAUSED_ANNOTATION: None}]
