"""Where the stack lives and the names every module shares."""

from __future__ import annotations

import os
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]  # e2e/stack
REPO = HERE.parents[1]
CACHE_DIR = Path(os.environ.get("TRAILBOSS_CACHE", Path.home() / ".cache" / "trailboss"))
BIN_DIR = CACHE_DIR / "bin"
STATE_DIR = Path(os.environ.get("TRAILBOSS_STACK_DIR", CACHE_DIR / "stack"))

SERVICE_CIDR = "10.96.0.0/16"
SERVICE_IP = "10.96.0.1"  # the first address of SERVICE_CIDR: the "kubernetes" Service
# The pod network (see network.py): kwok's fake pods get addresses from the
# lower half of POD_CIDR, the pod runner's pods from the upper half, behind one
# bridge in the root namespace that owns the whole range.
POD_CIDR = "10.244.0.0/16"
FAKE_POD_RANGE = "10.244.0.1/17"  # kwok's --cidr: first address and size
RUNNER_POD_RANGE = "10.244.128.0/17"
BRIDGE = "tb-br0"
BRIDGE_IP = "10.244.128.1"
POD_NETNS_PREFIX = "tbpod-"
FAKE_NODES = ("kwok-node-0", "kwok-node-1")
FAKE_NODE_ANNOTATION = ("kwok.x-k8s.io/node", "fake")
BUCKETS = ("mlflow", "datasets")
REGION = "us-east-1"
OPERATOR = "operator"


class StackError(Exception):
    """Something the user has to fix; printed without a traceback."""


class Paths:
    """Where the stack keeps pids, logs, certificates, data and client configs."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.run = root / "run"  # <component>.pid
        self.logs = root / "logs"  # <component>.log
        self.certs = root / "certs"
        self.data = root / "data"  # etcd, MLflow's SQLite, MinIO, serving certs
        self.kubeconfig = root / "kubeconfig"  # cluster admin
        self.env = root / "env"  # export K=V lines, printed by `env`
        self.state = root / "state.json"  # ports, S3 backend and credentials

    def pidfile(self, name: str) -> Path:
        return self.run / f"{name}.pid"

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def mlflow_db(self) -> Path:
        """MLflow's SQLite store, one per MLflow release: a release refuses a database
        another one migrated (either way), and two checkouts with different venvs may
        share this stack directory."""
        from importlib.metadata import version

        return self.data / "mlflow" / version("mlflow") / "mlflow.db"

    def kubeconfig_for(self, user: str) -> Path:
        return self.root / "kubeconfigs" / f"{user}.kubeconfig"


P = Paths(STATE_DIR)
