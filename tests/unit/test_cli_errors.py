"""Every failure a user meets is ONE line on stderr naming the cause and what to
do, with its own documented exit code (never `status`'s 1 or 3, never a
traceback). No server runs: the kubeconfig names a port nothing listens on, or
the Kubernetes client is replaced by one that answers as the API server would."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kubernetes.client
import pytest
from kubernetes.client.exceptions import ApiException

from tests.unit.cli_fakes import FakeCluster, cluster, kubeconfig, obj, run
from trailboss.commands import errors

__all__ = ["cluster"]


def _one_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in err
    return lines[0]


def test_unreachable_api_server(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "get", "trun", "--kubeconfig", kubeconfig(tmp_path))
    line = _one_line(err)
    assert code == errors.UNREACHABLE == 7
    assert "cannot reach the API server at https://127.0.0.1:1: Connection refused" in line
    assert "kubectl cluster-info" in line
    assert out == ""


def test_unknown_context(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = kubeconfig(tmp_path)
    code, _, err = run(capsys, "status", "trun", "x", "--kubeconfig", config, "--context", "prod")
    line = _one_line(err)
    assert code == errors.KUBECONFIG == 8
    assert f"context 'prod' is not in {config}: use one of lab, staging" in line
    assert "kubectl config get-contexts" in line


def test_no_kubeconfig_outside_a_pod(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    code, _, err = run(capsys, "list")
    assert "set KUBECONFIG or pass --kubeconfig" in _one_line(err)
    assert code == errors.KUBECONFIG


def test_missing_object(cluster: FakeCluster, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "status", "mver", "nothing")
    line = _one_line(err)
    assert code == errors.NOT_FOUND == 4  # not 1, which `status` says for Degraded
    assert "modelversion.trailboss.dev/nothing not found in namespace ml" in line


class _Answering:
    """The Kubernetes client's CustomObjectsApi, answering every call with ``error``."""

    def __init__(self, error: ApiException) -> None:
        self.error = error

    def __call__(self, api: Any) -> _Answering:
        return self

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            raise self.error

        return call


def _answer(monkeypatch: pytest.MonkeyPatch, status: int, reason: str, message: str) -> None:
    error = ApiException(status=status, reason=reason)
    error.body = json.dumps({"kind": "Status", "message": message, "code": status})
    monkeypatch.setattr(kubernetes.client, "CustomObjectsApi", _Answering(error))


def test_forbidden(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    said = ('trainingruns.trailboss.dev "churn" is forbidden: User "bob" cannot get resource '
            '"trainingruns" in API group "trailboss.dev" in the namespace "ml"')  # fmt: skip
    _answer(monkeypatch, 403, "Forbidden", said)
    code, _, err = run(capsys, "get", "trun", "churn", "--kubeconfig", kubeconfig(tmp_path))
    line = _one_line(err)
    assert code == errors.FORBIDDEN == 6
    assert line == f"error: forbidden: {said}; ask your cluster admin for a Role that allows it " \
        "(see `kubectl auth can-i --list`)"  # fmt: skip


def test_expired_credentials(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _answer(monkeypatch, 401, "Unauthorized", "Unauthorized")
    code, _, err = run(capsys, "list", "--kubeconfig", kubeconfig(tmp_path))
    assert "log in again" in _one_line(err)
    assert code == errors.FORBIDDEN


def test_trailboss_not_installed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _answer(monkeypatch, 404, "Not Found", "the server could not find the requested resource")
    code, _, err = run(capsys, "get", "trun", "--kubeconfig", kubeconfig(tmp_path))
    assert "is Trailboss installed?" in _one_line(err)
    assert code == errors.NOT_FOUND


def test_unknown_kind_is_a_usage_error(
    cluster: FakeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "get", "deploy")
    assert "unknown kind 'deploy': use one of trainingrun (trun)" in _one_line(err)
    assert code == errors.USAGE


def test_nothing_to_act_on_is_refused(
    cluster: FakeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster.put(obj("Deployment", "churn", status={"stableVersion": "v1"}))
    code, _, err = run(capsys, "promote", "churn")
    assert "has no rollout in progress (stable: v1)" in _one_line(err)
    assert code == errors.REFUSED == 5
    assert cluster.writes == []


def test_codes_are_distinct_and_in_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    codes = [code for code, _ in errors.CODES]
    assert len(codes) == len(set(codes))
    status_codes = {errors.DEGRADED, errors.TIMEOUT}
    failures = {errors.NOT_FOUND, errors.FORBIDDEN, errors.UNREACHABLE, errors.KUBECONFIG}
    assert not status_codes & failures
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for number, meaning in errors.CODES:
        assert f"  {number:<4} {meaning}" in out
    assert "exit codes:" in run(capsys, "get", "--help")[1]
