"""`kubectl trailboss get|list` as kubectl users expect them: `get KIND` lists,
`get KIND NAME` shows one; kind names, short names and `all`; `-A`; every output
format; `--no-headers`; `--watch`. The cluster is an in-memory fake."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from tests.unit.cli_fakes import FakeCluster, cluster, obj, run
from trailboss.commands import get

__all__ = ["cluster"]  # the fixture, used by name

RUN = obj("TrainingRun", "churn-nov", spec={"model": "churn"},
          status={"phase": "Succeeded", "jobName": "churn-nov-train-a1b2c",
                  "modelVersion": "churn-v7",
                  "conditions": [{"type": "Ready", "status": "True"}]})  # fmt: skip
RUN_B = obj("TrainingRun", "churn-dec", spec={"model": "churn"}, status={"phase": "Running"})
OTHER_NS = obj("TrainingRun", "fraud-1", "team-b", spec={"model": "fraud"})
VERSION = obj("ModelVersion", "churn-v7", spec={"model": "churn", "artifactUri": "s3://m/7"},
              status={"phase": "Validated", "registryVersion": "7"})  # fmt: skip
DEPLOY = obj("Deployment", "churn", spec={"model": "churn"},
             status={"stableVersion": "churn-v6", "canaryVersion": "churn-v7",
                     "canaryWeight": 10, "phase": "Progressing"})  # fmt: skip


@pytest.fixture
def filled(cluster: FakeCluster) -> FakeCluster:
    for o in (RUN, RUN_B, OTHER_NS, VERSION, DEPLOY):
        cluster.put(o)
    return cluster


def _table(out: str) -> list[list[str]]:
    return [line.split() for line in out.splitlines()]


@pytest.mark.parametrize("kind", ["trun", "trainingrun", "trainingruns", "TrainingRun",
                                  "trainingruns.trailboss.dev"])  # fmt: skip
def test_get_kind_lists_the_objects_of_that_kind(
    filled: FakeCluster, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    # `get trun` once looked up an object *named* trun.
    code, out, err = run(capsys, "get", kind)
    assert (code, err) == (0, "")
    table = _table(out)
    assert table[0] == ["NAME", "MODEL", "PHASE", "READY", "MODEL", "VERSION", "AGE"]
    assert [row[0] for row in table[1:]] == ["churn-dec", "churn-nov"]
    assert table[2][:5] == ["churn-nov", "churn", "Succeeded", "True", "churn-v7"]


def test_get_kind_name_shows_that_one_as_a_tree(
    filled: FakeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "get", "trun", "churn-nov")
    assert code == 0
    assert out.splitlines()[0].startswith("trainingrun.trailboss.dev/churn-nov  Succeeded")
    assert run(capsys, "get", "trun/churn-nov")[1] == out


def test_short_names_of_every_kind(filled: FakeCluster, capsys: pytest.CaptureFixture[str]) -> None:
    assert _table(run(capsys, "get", "mver")[1])[1][:4] == ["churn-v7", "churn", "7", "Validated"]
    row = _table(run(capsys, "get", "mdeploy")[1])[1]
    assert row[:6] == ["churn", "churn", "churn-v6", "churn-v7", "10", "Progressing"]


def test_all_lists_every_kind_with_qualified_names(
    filled: FakeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "get", "all")
    assert code == 0
    names = [row[0] for row in _table(out) if row and row[0] != "NAME"]
    assert names == [
        "trainingrun.trailboss.dev/churn-dec", "trainingrun.trailboss.dev/churn-nov",
        "modelversion.trailboss.dev/churn-v7", "deployment.trailboss.dev/churn",
    ]  # fmt: skip
    assert "" in out.splitlines()  # one table per kind
    assert run(capsys, "list")[1] == out  # list: every kind by default
    assert run(capsys, "get", "trun,mver", "-o", "name")[1].splitlines() == names[:3]


def test_all_namespaces_adds_the_namespace_column(
    filled: FakeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    table = _table(run(capsys, "get", "trun", "-A")[1])
    assert table[0][:2] == ["NAMESPACE", "NAME"]
    assert [row[:2] for row in table[1:]] == [
        ["ml", "churn-dec"], ["ml", "churn-nov"], ["team-b", "fraud-1"]
    ]  # fmt: skip
    assert [r[0] for r in _table(run(capsys, "get", "trun", "-n", "team-b")[1])[1:]] == ["fraud-1"]


def test_wide_adds_the_priority_columns(
    filled: FakeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    header = run(capsys, "get", "trun", "-o", "wide")[1].splitlines()[0]
    assert header.split() == ["NAME", "MODEL", "PHASE", "READY", "JOB", "MLFLOW", "RUN",
                              "MODEL", "VERSION", "AGE"]  # fmt: skip
    assert "churn-nov-train-a1b2c" in run(capsys, "get", "trun", "churn-nov", "-o", "wide")[1]


def test_no_headers(filled: FakeCluster, capsys: pytest.CaptureFixture[str]) -> None:
    lines = run(capsys, "get", "trun", "--no-headers")[1].splitlines()
    assert [line.split()[0] for line in lines] == ["churn-dec", "churn-nov"]


def test_name_json_and_yaml(filled: FakeCluster, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "get", "trun", "-o", "name")[1].splitlines() == [
        "trainingrun.trailboss.dev/churn-dec", "trainingrun.trailboss.dev/churn-nov"
    ]  # fmt: skip
    listed = json.loads(run(capsys, "get", "trun", "-o", "json")[1])
    assert (listed["kind"], len(listed["items"])) == ("List", 2)
    one = json.loads(run(capsys, "get", "trun", "churn-nov", "-o", "json")[1])
    assert one == RUN
    assert yaml.safe_load(run(capsys, "get", "mver", "churn-v7", "-o", "yaml")[1]) == VERSION


def test_nothing_found_says_where(cluster: FakeCluster, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "get", "mdeploy") == (0, "", "No resources found in ml namespace.\n")


def test_watch_prints_a_row_each_time_an_object_changes(
    filled: FakeCluster, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ticks: list[Any] = []

    def tick() -> None:  # time passes; the run finishes on the second look
        ticks.append(1)
        if len(ticks) == 2:
            done = obj("TrainingRun", "churn-dec", spec={"model": "churn"},
                       status={"phase": "Succeeded"}, version="2")  # fmt: skip
            filled.put(done)
        if len(ticks) == 4:
            raise KeyboardInterrupt

    monkeypatch.setattr(get, "between_looks", tick)
    code, out, _ = run(capsys, "get", "trun", "--watch")
    assert code == 130  # stopped with Ctrl-C, as kubectl get -w is
    lines = out.splitlines()
    assert [line.split()[:3] for line in lines] == [
        ["NAME", "MODEL", "PHASE"],
        ["churn-dec", "churn", "Running"],
        ["churn-nov", "churn", "Succeeded"],
        ["churn-dec", "churn", "Succeeded"],  # only what changed, once
    ]


def test_age_reads_as_kubectl_prints_it() -> None:
    import datetime as dt

    from trailboss.commands.listing import age

    start = "2026-11-20T10:00:00Z"
    at = dt.datetime(2026, 11, 20, 10, tzinfo=dt.UTC)
    for seconds, shown in ((5, "5s"), (190, "3m10s"), (3600, "60m"), (5 * 3600, "5h"),
                           (3 * 86400 + 3600, "3d1h"), (40 * 86400, "40d")):  # fmt: skip
        assert age(start, at + dt.timedelta(seconds=seconds)) == shown
