"""`--version` prints the client's and the operator's versions (unknown, said why,
when the operator cannot be found); `completion bash|zsh` and the completions
the shell (or kubectl) asks for."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.cli_fakes import FakeCluster, cluster, kubeconfig, run
from trailboss import __version__
from trailboss.cli import build_parser, kubectl_complete, main
from trailboss.commands.completion import candidates
from trailboss.commands.version import operator_version

__all__ = ["cluster"]


def _operator(labels: dict[str, str], image: str) -> dict[str, object]:
    return {
        "metadata": {"name": "trailboss", "namespace": "trailboss", "labels": labels},
        "spec": {"template": {"spec": {"containers": [{"name": "operator", "image": image}]}}},
    }


def test_version_prints_client_and_operator(
    cluster: FakeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster.operators = [_operator({"app.kubernetes.io/version": "0.1.0"}, "x/trailboss:0.1.0")]
    for argv in (["--version"], ["version"]):
        assert run(capsys, *argv) == (
            0,
            f"client: trailboss {__version__}\noperator: 0.1.0 (trailboss/trailboss)\n",
            "",
        )
    assert run(capsys, "version", "--client")[1] == f"client: trailboss {__version__}\n"


def test_operator_version_from_the_image_tag_when_unlabelled() -> None:
    image = "ghcr.io/trailboss-dev/trailboss:0.2.0@sha256:" + "a" * 64
    assert operator_version([_operator({}, image)]) == "0.2.0 (trailboss/trailboss)"
    assert operator_version([]) == "unknown (no operator Deployment found)"


def test_version_without_a_cluster_is_unknown_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "version", "--kubeconfig", kubeconfig(tmp_path))
    assert code == 0
    assert err == ""
    assert out.splitlines() == [
        f"client: trailboss {__version__}",
        "operator: unknown (cannot reach the API server at https://127.0.0.1:1: "
        "Connection refused)",
    ]


@pytest.mark.parametrize(
    ("words", "offered"),
    [
        (["pro"], ["profile", "promote"]),
        (["get", "m"], ["mdeploy", "modelversion", "modelversions", "mver"]),
        (["get", "trun", "-o", ""], ["json", "name", "wide", "yaml"]),
        (["promote", "churn", "--f"], ["--full"]),
        (["completion", ""], ["bash", "zsh"]),
        (["list", "a"], ["all"]),
    ],
)
def test_completion_offers_what_may_come_next(words: list[str], offered: list[str]) -> None:
    assert candidates(build_parser(), words) == offered
    assert run_quietly(["__complete", *words]) == offered  # what the shell script asks


def run_quietly(argv: list[str]) -> list[str]:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(argv) == 0
    return out.getvalue().split()


def test_kubectl_asks_in_cobras_format(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "argv", ["kubectl_complete-trailboss", "get", "md"])
    kubectl_complete()
    assert capsys.readouterr().out == "mdeploy\n:4\n"


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_completion_scripts(shell: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, script, _ = run(capsys, "completion", shell)
    assert code == 0
    assert "__complete" in script
    assert "kubectl-trailboss" in script
    if shutil.which(shell):  # the shell parses it
        checked = subprocess.run([shell, "-n"], input=script, text=True, capture_output=True)
        assert checked.returncode == 0, checked.stderr
