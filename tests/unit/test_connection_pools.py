"""Every client keeps at least one connection per thread that reconciles, so a
burst never waits for a connection nor opens and drops one per call."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from trailboss import s3
from trailboss.clients import kube
from trailboss.clients.storage import Storage
from trailboss.settings import CONNECTIONS

OPERATOR = Path(__file__).resolve().parents[2] / "operator"


def test_mlflow_pool_holds_a_connection_per_thread() -> None:
    script = (
        "import trailboss.clients.tracking\n"
        "from mlflow.environment_variables import MLFLOW_HTTP_POOL_MAXSIZE\n"
        "print(MLFLOW_HTTP_POOL_MAXSIZE.get())\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_HTTP_POOL_MAXSIZE"}
    env["PYTHONPATH"] = str(OPERATOR)
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.split()[-1]) == CONNECTIONS


def test_s3_pool_holds_a_connection_per_thread() -> None:
    storage = Storage("http://127.0.0.1:1")
    assert storage._s3.meta.config.max_pool_connections == CONNECTIONS


def test_s3_clients_elsewhere_keep_botocores_default() -> None:
    made = s3.client("http://127.0.0.1:1", attempts=1, connect_timeout=1, read_timeout=1)
    assert made.meta.config.max_pool_connections == 10


def test_kubernetes_pool_holds_a_connection_per_thread() -> None:
    assert kube.POOL_SIZE >= CONNECTIONS
