"""The stack and the one operator a run of the e2e tests shares.

One process owns them: the pytest process itself, or with workers (``-n``) the process
that hands tests to the workers. It brings the stack up (unless it was up already),
installs the CRDs, starts the operator, and at the end waits for the tests' namespaces to
go before it stops what it started. Workers get the stack's environment and a handle on
the operator from it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from e2e.cluster import (
    RUN_LOCALLY,
    Cluster,
    Operator,
    SharedComponents,
    local_stack_env,
    scrape_operator,
    stack_command,
    wait_for,
)

S3_SECRET = "trailboss-s3"
PASSTHROUGH = (
    "MLFLOW_TRACKING_URI",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL_S3",
    "MLFLOW_S3_ENDPOINT_URL",
)


class StackDidNotStart(RuntimeError):
    pass


def operator_env(stack_env: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in stack_env.items() if k in (*PASSTHROUGH, "KUBECONFIG")}
    env["TRAILBOSS_S3_ENDPOINT_URL"] = stack_env.get("AWS_ENDPOINT_URL_S3", "")
    env["TRAILBOSS_S3_CREDENTIALS_SECRET"] = S3_SECRET
    if not stack_env.get("TRAILBOSS_E2E_EXTERNAL"):
        # On the local stack, training pods run for real through the pod runner.
        env["TRAILBOSS_TRAINING_POD_LABELS"] = json.dumps({RUN_LOCALLY: "true"})
        env["TRAILBOSS_SERVING_POD_LABELS"] = json.dumps({RUN_LOCALLY: "true"})
        env["TRAILBOSS_DRIFT_POD_LABELS"] = json.dumps({RUN_LOCALLY: "true"})
    return env


def cluster_for(env: dict[str, str]) -> Cluster:
    """The cluster the run's environment names, with the stack's kubectl when it has one."""
    bin_dir = env.get("TRAILBOSS_STACK_BIN")
    kubectl = str(Path(bin_dir) / "kubectl") if bin_dir else (shutil.which("kubectl") or "kubectl")
    return Cluster(env=env, kubectl_bin=kubectl)


@dataclass
class SharedStack:
    """Started on first use, stopped once at the end of the run."""

    log_dir: Path
    env: dict[str, str] | None = None
    operator: Operator | None = None
    _was_up: bool = True
    _since: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    def stack_env(self) -> dict[str, str]:
        if self.env is None:
            with SharedComponents.restoring():
                self.env = self._bring_up()
        return self.env

    def shared_operator(self) -> Operator:
        if self.operator is None:
            env = self.stack_env()
            cluster_for(env).install_crds()
            # The API server stamps whole seconds: a second of slack keeps this run's first.
            self._since = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(seconds=1)
            # Every namespace, not a pattern like `e2e-*`: kopf stops serving a namespace
            # matched by a pattern as soon as it is marked for deletion with no blocking
            # condition yet, and its objects' finalizers are then never released.
            op = Operator(operator_env(env), self.log_dir)
            with SharedComponents.restoring():
                op.start()
            if not env.get("TRAILBOSS_E2E_EXTERNAL"):
                scrape_operator(op.metrics_port)  # the stack's Prometheus reads its metrics
            self.operator = op
        return self.operator

    def for_workers(self) -> dict[str, Any]:
        return {"env": self.stack_env(), "operator": self.shared_operator().shared()}

    def _bring_up(self) -> dict[str, str]:
        external = os.environ.get("TRAILBOSS_E2E_KUBECONFIG")
        if external:
            env = {k: os.environ[k] for k in PASSTHROUGH if k in os.environ}
            env["KUBECONFIG"] = external
            env["TRAILBOSS_E2E_EXTERNAL"] = "1"
            return env
        self._was_up = stack_command("status").returncode == 0
        up = stack_command("up")
        if up.returncode != 0:
            raise StackDidNotStart(
                f"the local stack did not start:\n{up.stdout[-3000:]}\n{up.stderr[-3000:]}"
            )
        # The tests run their own operator; a second one (left by `make demo`) would race it.
        stack_command("stop", "operator")
        return local_stack_env()

    def stop(self) -> None:
        with SharedComponents.restoring():
            try:
                if self.operator is not None and self.env is not None:
                    if not self.operator.alive:
                        # A disruptive test left it stopped: the namespaces' finalizers
                        # are its to release.
                        self.operator.start()
                    self._wait_for_test_namespaces(cluster_for(self.env))
            finally:
                if self.operator is not None:
                    # Even when clean-up failed: an operator left running would fight the next.
                    self.operator.stop()
                keep = self._was_up or os.environ.get("TRAILBOSS_E2E_KEEP_STACK")
                if self.env is not None and not keep:
                    stack_command("down")

    def _wait_for_test_namespaces(self, cluster: Cluster) -> None:
        # Let the operator release the finalizers of the test namespaces' objects, so no
        # clean-up is left for the next run.
        try:
            wait_for(
                "the test namespaces to be deleted",
                lambda: not namespaces_of_the_run(cluster, self._since),
                timeout=300,  # serving pods drain before they stop
                interval=1,
            )
        except AssertionError as error:
            raise AssertionError(f"{error}; left: {leftovers(cluster, self._since)}") from None


def namespaces_of_the_run(cluster: Cluster, since: dt.datetime) -> list[str]:
    """This run's test namespaces (a stack's data outlives a run, and with it whatever an
    interrupted run left)."""
    names = []
    for item in cluster.core.list_namespace().items:
        name, created = str(item.metadata.name), item.metadata.creation_timestamp
        if name.startswith("e2e-") and created is not None and created >= since:
            names.append(name)
    return names


def leftovers(cluster: Cluster, since: dt.datetime) -> dict[str, list[str]]:
    """Per namespace still there, what it holds that could keep it."""
    left = {}
    for namespace in namespaces_of_the_run(cluster, since):
        held = cluster.kubectl(
            "get", "-n", namespace, "pods,jobs,trainingruns.trailboss.dev,"
            "modelversions.trailboss.dev,deployments.trailboss.dev", "-o",
            "custom-columns=KIND:.kind,NAME:.metadata.name,FINALIZERS:.metadata.finalizers",
            "--no-headers", check=False,
        ).stdout  # fmt: skip
        left[namespace] = held.splitlines()
    return left
