"""The main job: the whole model lifecycle on the local stack, with real traffic.

    make demo

It brings up the stack (control plane, pod network, MLflow, S3, Prometheus),
installs the CRDs and starts the operator, then runs the loop in e2e/loop.py:
train v1 -> validate -> serve -> a client's load -> candidate v2 rolled out by
canary -> the client's inputs shift -> drift -> retraining -> the retrained
version validated -> canary -> promoted. It prints a live timeline, a summary
and the path of a picture of it all (traffic by version, drift per check). It
leaves everything running; ``make stack-down`` stops it.
"""

from __future__ import annotations

import collections
import json
import sys
import time
from pathlib import Path

from e2e.cluster import (
    Cluster,
    free_port,
    local_stack_env,
    scrape_operator,
    stack_command,
    wait_for,
)
from e2e.loop import Loop, LoopFailed, Setting

from demo.picture import draw

NAMESPACE = "trailboss-demo"
SECRET = "trailboss-s3"
START = time.monotonic()


def say(message: str) -> None:
    print(f"[{time.monotonic() - START:6.1f}s] {message}", flush=True)


def main() -> int:
    say("starting the local stack (control plane, pod network, MLflow, S3, Prometheus)")
    up = stack_command("up")
    print(up.stdout, end="")
    if up.returncode != 0:
        print(up.stderr, file=sys.stderr)
        return 1
    env = local_stack_env()
    stack_dir = Path(env["TRAILBOSS_STACK_DIR"])
    cluster = Cluster(env=env, kubectl_bin=str(Path(env["TRAILBOSS_STACK_BIN"]) / "kubectl"))

    say("installing the CRDs from crds/")
    cluster.install_crds()
    _start_operator(env, stack_dir)
    _fresh_namespace(cluster)
    _s3_secret(cluster, env)
    setting = Setting(
        namespace=NAMESPACE,
        model="churn",
        dataset="s3://datasets/churn/train.csv",
        predictions="s3://predictions/churn/",
        prometheus=env["TRAILBOSS_PROMETHEUS_URL"],
    )
    loop = Loop(cluster, setting, say)
    failed = None
    try:
        loop.run()
    except LoopFailed as error:
        failed = error
    picture = draw(loop.timeline, loop.load.answers if loop.load else [],
                   stack_dir / "demo" / "trailboss-demo.png",
                   "Trailboss demo: train, serve, canary, drift, retrain, canary")  # fmt: skip
    _summary(cluster, env, loop, picture)
    if failed is not None:
        say(f"the loop stopped: {failed}")
        return 1
    say("done")
    return 0


def _fresh_namespace(cluster: Cluster) -> None:
    """The demo's own namespace, emptied of a previous run's objects."""
    if cluster.kubectl("get", "namespace", NAMESPACE, check=False).returncode == 0:
        say(f"deleting namespace {NAMESPACE} left by a previous run")
        cluster.kubectl("delete", "namespace", NAMESPACE, "--wait=false")
        wait_for(f"namespace {NAMESPACE} to go", lambda: cluster.kubectl(
            "get", "namespace", NAMESPACE, check=False).returncode != 0, 300)  # fmt: skip
    cluster.kubectl("create", "namespace", NAMESPACE)
    wait_for(f"the default service account in {NAMESPACE}",
             lambda: cluster.core.list_namespaced_service_account(NAMESPACE).items, 30)  # fmt: skip


def _s3_secret(cluster: Cluster, env: dict[str, str]) -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": SECRET, "namespace": NAMESPACE},
        "stringData": {k: env[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")},
    }
    cluster.kubectl("apply", "-f", "-", stdin=json.dumps(secret))


def _start_operator(env: dict[str, str], stack_dir: Path) -> None:
    """Start ``trailboss run`` as a stack component, so ``make stack-down`` stops it."""
    operator_env = {
        **env,
        "TRAILBOSS_S3_ENDPOINT_URL": env["AWS_ENDPOINT_URL_S3"],
        "TRAILBOSS_S3_CREDENTIALS_SECRET": SECRET,
        # Training, model server and drift pods run for real through the pod runner.
        "TRAILBOSS_TRAINING_POD_LABELS": json.dumps({"trailboss.dev/run-locally": "true"}),
        "TRAILBOSS_SERVING_POD_LABELS": json.dumps({"trailboss.dev/run-locally": "true"}),
        "TRAILBOSS_DRIFT_POD_LABELS": json.dumps({"trailboss.dev/run-locally": "true"}),
        "TRAILBOSS_METRICS_PORT": str(free_port()),
        "TRAILBOSS_LIVENESS_PORT": str(free_port()),
    }
    result = stack_command(
        "start-operator",
        "--",
        sys.executable,
        "-m",
        "trailboss.cli",
        "run",
        "--all-namespaces",
        env=operator_env,
    )
    print(result.stdout, end="")
    if result.returncode != 0:
        raise SystemExit(f"the operator did not start:\n{result.stderr}")
    scrape_operator(int(operator_env["TRAILBOSS_METRICS_PORT"]))  # into the stack's Prometheus
    say(
        f"operator running (log: {stack_dir / 'logs' / 'operator.log'}, "
        f"metrics: http://127.0.0.1:{operator_env['TRAILBOSS_METRICS_PORT']}/metrics)"
    )


def _summary(cluster: Cluster, env: dict[str, str], loop: Loop, picture: Path) -> None:
    outcome, timeline, ns = loop.outcome, loop.timeline, NAMESPACE
    print()
    print(cluster.kubectl("-n", ns, "get", "trailboss", "-o", "wide", check=False).stdout)
    status = cluster.status(ns, "deployments", loop.setting.deployment)
    answers = loop.load.answers if loop.load else []
    failed = sum(not a.ok for a in answers)
    print(
        f"Versions:         {outcome.first} -> {outcome.candidate} (canary) -> "
        f"{outcome.retrained or '?'} (retrained on drift by {outcome.retraining_run or '?'})"
    )
    print("Promoted:         " + ", ".join(
        p["version"] for p in status.get("promoted") or []))  # fmt: skip
    drifted = [c for c in timeline.checks if c.drifted]
    print(
        f"Drift checks:     {len(timeline.checks)}, {len(drifted)} found dataset drift"
        + (f" (largest score {max(c.score or 0 for c in drifted):.2f})" if drifted else "")
    )
    print(f"Client:           {len(answers)} requests, {failed} failed")
    for reason, count in collections.Counter(a.error for a in answers if not a.ok).items():
        print(f"                  {count} x {reason}")
    print(f"Served at:        {status.get('url')}")
    print(f"MLflow UI:        {env['MLFLOW_TRACKING_URI']}/#/models/{loop.setting.model}")
    print(
        f"Prometheus:       {env['TRAILBOSS_PROMETHEUS_URL']}/graph?g0.expr="
        "trailboss_deployment_traffic_weight_percent&g1.expr=trailboss_drift_share"
    )
    print(f"Picture:          {picture}")
    print(f"\nkubectl:          export KUBECONFIG={env['KUBECONFIG']}")
    print(
        f"                  kubectl -n {ns} describe deployments.trailboss.dev "
        f"{loop.setting.deployment}"
    )
    print("Stop everything:  make stack-down")


if __name__ == "__main__":
    raise SystemExit(main())
