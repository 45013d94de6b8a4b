"""The MLflow and S3 clients are made at their first call, once, not at startup:
an operator whose objects are all settled never pays for them."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import types
from pathlib import Path
from typing import Any

import pytest

from trailboss import s3
from trailboss.clients import tracking as tracking_module
from trailboss.clients.storage import Storage
from trailboss.clients.tracking import Tracking

OPERATOR = Path(__file__).resolve().parents[2] / "operator"


def test_making_the_clients_imports_no_mlflow_and_builds_no_s3_client() -> None:
    script = (
        "import sys\n"
        "from trailboss.clients.storage import Storage\n"
        "from trailboss.clients.tracking import Tracking\n"
        "tracking, storage = Tracking('http://127.0.0.1:1'), Storage('http://127.0.0.1:1')\n"
        "assert tracking.uri == 'http://127.0.0.1:1'\n"
        "assert 'mlflow' not in sys.modules, 'mlflow imported'\n"
        "assert storage._made is None, 'S3 client built'\n"
    )
    env = {**os.environ, "PYTHONPATH": str(OPERATOR)}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr


class _Counting:
    """A client factory that is slow, so racing callers overlap, and counts calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> object:
        self.calls += 1
        time.sleep(0.05)
        return object()


def _race(read: Any, callers: int = 8) -> list[object]:
    seen: list[object] = []
    threads = [threading.Thread(target=lambda: seen.append(read())) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return seen


def test_s3_client_is_made_once_at_first_use(monkeypatch: pytest.MonkeyPatch) -> None:
    factory = _Counting()
    monkeypatch.setattr(s3, "client", factory)
    storage = Storage("http://127.0.0.1:1")
    assert factory.calls == 0
    seen = _race(lambda: storage._s3)
    assert factory.calls == 1
    assert all(client is seen[0] for client in seen)


def test_mlflow_client_is_made_once_at_first_use(monkeypatch: pytest.MonkeyPatch) -> None:
    factory = _Counting()
    fake_mlflow = types.ModuleType("mlflow")
    parts: dict[str, dict[str, object]] = {
        "tracking": {"MlflowClient": factory},
        "exceptions": {"MlflowException": RuntimeError},
        "entities": {"Param": tuple},
    }
    monkeypatch.setitem(sys.modules, "mlflow", fake_mlflow)
    monkeypatch.setattr(tracking_module, "IMPORTED_BY_MLFLOW_AT_FIRST_REQUEST", ())
    for name, attributes in parts.items():
        module = types.ModuleType(f"mlflow.{name}")
        for attribute, value in attributes.items():
            setattr(module, attribute, value)
        setattr(fake_mlflow, name, module)
        monkeypatch.setitem(sys.modules, f"mlflow.{name}", module)
    tracking = Tracking("http://127.0.0.1:1")
    assert factory.calls == 0
    seen = _race(lambda: tracking._client)
    assert factory.calls == 1
    assert all(client is seen[0] for client in seen)


# Runs in a fresh interpreter, so MLflow is not imported yet: a meta-path finder
# notes every MLflow module imported while the operator's import lock is free.
_RACING_FIRST_CALLS = """
import importlib.abc, sys, threading
from trailboss.clients import tracking as module

unguarded = []

class Watch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "mlflow" and not module._IMPORTING_MLFLOW.locked():
            unguarded.append(name)
        return None

sys.meta_path.insert(0, Watch())
tracking = module.Tracking("http://127.0.0.1:9")
outcomes = []
start = threading.Barrier(16)

def first_call(i):
    start.wait()
    try:
        if i % 2:
            tracking.finish_run("0" * 32, "FINISHED")
        else:
            tracking.ensure_run("exp", "uid", "run", tags={}, params={"a": "1"})
    except module.TrackingUnavailable:
        outcomes.append("unavailable")
    except Exception as error:
        outcomes.append(type(error).__name__ + ": " + str(error))

threads = [threading.Thread(target=first_call, args=(i,)) for i in range(16)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
assert not unguarded, unguarded
assert outcomes == ["unavailable"] * 16, outcomes
"""


def test_racing_first_calls_import_mlflow_under_one_lock() -> None:
    """MLflow's modules import each other in a cycle; importing it from two
    threads at once left it half-initialised, and every later call failed with
    an ImportError for the life of the process."""
    env = {**os.environ, "PYTHONPATH": str(OPERATOR), "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}
    done = subprocess.run(
        [sys.executable, "-c", _RACING_FIRST_CALLS],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.parametrize("command", ["serve", "profile", "drift"])
def test_the_commands_pods_run_load_no_kubernetes_client(command: str) -> None:
    """Every model server and drift Job starts with one of these: the user commands'
    Kubernetes client is not theirs to load."""
    script = f"import sys\nfrom trailboss import cli\ncli.main([{command!r}, '--help'])\n"
    check = "\nimport sys; assert 'kubernetes' not in sys.modules, 'kubernetes imported'\n"
    env = {**os.environ, "PYTHONPATH": str(OPERATOR)}
    done = subprocess.run(
        [sys.executable, "-c", f"try:\n    exec({script!r})\nexcept SystemExit:\n    pass{check}"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"usage: trailboss {command}" in done.stdout
