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
    fake_tracking = types.ModuleType("mlflow.tracking")
    fake_tracking.MlflowClient = factory  # type: ignore[attr-defined]
    fake_mlflow = types.ModuleType("mlflow")
    fake_mlflow.tracking = fake_tracking  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "mlflow", fake_mlflow)
    monkeypatch.setitem(sys.modules, "mlflow.tracking", fake_tracking)
    tracking = Tracking("http://127.0.0.1:1")
    assert factory.calls == 0
    seen = _race(lambda: tracking._client)
    assert factory.calls == 1
    assert all(client is seen[0] for client in seen)
