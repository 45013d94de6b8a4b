"""The main job: bring up the local stack, install the CRDs, start the operator,
train the example model for real, and watch it register and pass its gate.

    make demo

It ends with a summary and leaves everything running; ``make stack-down`` stops it.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from e2e.cluster import ROOT, Cluster, free_port, local_stack_env, ready, stack_command
from e2e.lifecycle import seed_dataset

NAMESPACE = "default"
EXAMPLE = ROOT / "examples" / "trainingrun-churn.yaml"
SECRET = "trailboss-s3"
START = time.monotonic()


def say(message: str) -> None:
    print(f"[{time.monotonic() - START:6.1f}s] {message}", flush=True)


def main() -> int:
    say("starting the local stack (control plane, MLflow, S3, pod runner)")
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
    _s3_secret(cluster, env)
    _start_operator(env, stack_dir)

    manifest = yaml.safe_load(EXAMPLE.read_text())
    name = manifest["metadata"]["name"]
    say(f"uploading the example dataset to {manifest['spec']['dataset']['uri']}")
    seed_dataset(env, manifest["spec"]["dataset"]["uri"])
    cluster.kubectl(
        "-n", NAMESPACE, "delete", "trun,mver", name, "--ignore-not-found", "--wait=true"
    )  # fmt: skip
    say(f"kubectl apply -f {EXAMPLE.relative_to(ROOT)}")
    print(cluster.kubectl("apply", "-f", str(EXAMPLE)).stdout, end="")

    training = _follow(cluster, "trainingruns", name, {"Succeeded", "Failed"}, 600)
    if training.get("phase") != "Succeeded":
        say(f"training did not succeed: {json.dumps(training, indent=2)}")
        return 1
    model = _follow(cluster, "modelversions", name, {"Validated", "Rejected", "Failed"}, 300)
    _summary(cluster, env, training, model)
    return 0 if model.get("phase") == "Validated" else 1


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
    say(
        f"operator running (log: {stack_dir / 'logs' / 'operator.log'}, "
        f"metrics: http://127.0.0.1:{operator_env['TRAILBOSS_METRICS_PORT']}/metrics)"
    )


def _follow(
    cluster: Cluster, plural: str, name: str, final: set[str], timeout: float
) -> dict[str, Any]:
    """Print each change of phase and Ready condition until a final phase."""
    deadline = time.monotonic() + timeout
    seen = None
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = cluster.status(NAMESPACE, plural, name)
        condition = ready(status)
        phase, reason = status.get("phase", "-"), condition.get("reason", "-")
        line = f"{plural[:-1]}/{name}: {phase} ({reason}: {condition.get('message', '')})"
        if line != seen and status:
            say(line)
            seen = line
        if status.get("phase") in final:
            return status
        time.sleep(1)
    say(f"gave up waiting for {plural}/{name} after {timeout:.0f}s")
    return status


def _summary(
    cluster: Cluster, env: dict[str, str], training: dict[str, Any], model: dict[str, Any]
) -> None:
    print()
    print(cluster.kubectl("-n", NAMESPACE, "get", "trailboss", "-o", "wide").stdout)
    print(f"MLflow UI:        {env['MLFLOW_TRACKING_URI']}  (run: {training['mlflow']['url']})")
    print(f"Registered model: {model.get('modelUri')}")
    print(f"Artifact in S3:   {model.get('artifact', {}).get('uri')}")
    print(f"Metrics:          {json.dumps(training.get('metrics', {}), sort_keys=True)}")
    print(f"Gate:             {model.get('validation', {}).get('message')}")
    print(
        f"Dataset pinned:   {training['dataset']['uri']} (ETag {training['dataset'].get('etag')})"
    )
    print(f"\nkubectl:          export KUBECONFIG={env['KUBECONFIG']}")
    print("Stop everything:  make stack-down")
    say("done")


if __name__ == "__main__":
    raise SystemExit(main())
