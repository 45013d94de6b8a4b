"""Benchmark: how long from ``kubectl create trainingrun`` to the Job existing?

Creates N TrainingRuns in a burst on the local stack (or TRAILBOSS_E2E_KUBECONFIG)
and measures, with a watch on Jobs, the latency from each create call to its Job
appearing. The baseline, measured in the same run, creates the same N Jobs
directly with the Kubernetes client. Prints p50/p99/total for both, the ratios,
and the operator's peak RSS.

    make bench            # N=200
    BENCH_RUNS=50 make bench
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kubernetes import client, watch

from e2e.cluster import (
    Cluster,
    Operator,
    local_stack_env,
    stack_command,
    unique,
    wait_for,
)

RUNS = int(os.environ.get("BENCH_RUNS", "200"))


class JobWatch:
    """Records when each Job is first seen, by a label's value."""

    def __init__(self, cluster: Cluster, namespace: str, label: str) -> None:
        self.seen: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(cluster, namespace, label), daemon=True
        )
        self._ready = threading.Event()
        self._thread.start()
        self._ready.wait(10)

    def _run(self, cluster: Cluster, namespace: str, label: str) -> None:
        w = watch.Watch()
        self._ready.set()
        for event in w.stream(
            cluster.batch.list_namespaced_job, namespace, label_selector=label, timeout_seconds=900
        ):
            key = event["object"].metadata.labels[label]
            self.seen.setdefault(key, time.monotonic())
            if self._stop.is_set():
                w.stop()

    def wait(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(self.seen) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        self._stop.set()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summarize(name: str, created: dict[str, float], seen: dict[str, float]) -> dict[str, float]:
    latencies = [seen[k] - created[k] for k in created if k in seen]
    missing = len(created) - len(latencies)
    start = min(created.values())
    result = {
        "p50_s": statistics.median(latencies),
        "p99_s": percentile(latencies, 0.99),
        "total_s": max(seen[k] for k in created if k in seen) - start,
        "missing": float(missing),
    }
    print(
        f"{name:<28} p50 {result['p50_s'] * 1000:8.1f} ms   p99 {result['p99_s'] * 1000:8.1f} ms"
        f"   total {result['total_s']:6.2f} s   missing {missing}"
    )
    return result


def baseline(cluster: Cluster, namespace: str) -> dict[str, float]:
    label = "bench/baseline"
    jobs = JobWatch(cluster, namespace, label)
    created: dict[str, float] = {}
    for i in range(RUNS):
        key = f"b{i}"
        body = client.V1Job(
            metadata=client.V1ObjectMeta(name=f"baseline-{i}", labels={label: key}),
            spec=client.V1JobSpec(
                backoff_limit=0,
                template=client.V1PodTemplateSpec(
                    spec=client.V1PodSpec(
                        restart_policy="Never",
                        containers=[client.V1Container(name="c", image="trainer:1")],
                    )
                ),
            ),
        )
        created[key] = time.monotonic()
        cluster.batch.create_namespaced_job(namespace, body)
    jobs.wait(RUNS, 300)
    return summarize("baseline: Jobs directly", created, jobs.seen)


def operator_burst(cluster: Cluster, namespace: str) -> dict[str, float]:
    label = "trailboss.dev/trainingrun"
    jobs = JobWatch(cluster, namespace, label)
    created: dict[str, float] = {}
    for i in range(RUNS):
        name = f"run-{i}"
        manifest = {
            "apiVersion": "trailboss.dev/v1alpha1",
            "kind": "TrainingRun",
            "metadata": {"name": name},
            "spec": {"model": namespace, "image": "trainer:1", "command": ["true"]},
        }
        created[name] = time.monotonic()
        cluster.create(namespace, manifest)
    jobs.wait(RUNS, 900)
    return summarize("trailboss: TrainingRuns", created, jobs.seen)


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    external = os.environ.get("TRAILBOSS_E2E_KUBECONFIG")
    if external:
        env = {k: v for k, v in os.environ.items() if k.startswith(("AWS_", "MLFLOW_"))}
        env["KUBECONFIG"] = external
        kubectl = "kubectl"
    else:
        up = stack_command("up")
        if up.returncode != 0:
            print(up.stdout, up.stderr, file=sys.stderr)
            return 1
        stack_command("stop", "operator")  # the benchmark runs its own
        env = local_stack_env()
        kubectl = str(Path(env["TRAILBOSS_STACK_BIN"]) / "kubectl")
    cluster = Cluster(env=env, kubectl_bin=kubectl)
    cluster.install_crds()
    namespace = unique("bench")
    cluster.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    operator = Operator(
        {**env, "TRAILBOSS_S3_ENDPOINT_URL": env.get("AWS_ENDPOINT_URL_S3", "")},
        Path(tempfile.mkdtemp(prefix="trailboss-bench-")),
    )
    operator.start()
    try:
        print(f"{RUNS} creations in a burst, latency from create call to Job seen by a watch\n")
        base = baseline(cluster, namespace)
        ours = operator_burst(cluster, namespace)
        assert operator.proc is not None
        rss = peak_rss_mib(operator.proc.pid)
    finally:
        # Delete while the operator still runs, so it releases its finalizers and
        # the next benchmark does not start with this one's clean-up as a backlog.
        cluster.core.delete_namespace(namespace)
        wait_for(
            f"namespace {namespace} to be deleted",
            lambda: namespace not in {n.metadata.name for n in cluster.core.list_namespace().items},
            timeout=300,
            interval=1,
        )
        operator.stop()
    print()
    print(f"ratio p50   {ours['p50_s'] / base['p50_s']:8.1f}x")
    print(f"ratio p99   {ours['p99_s'] / base['p99_s']:8.1f}x")
    print(f"ratio total {ours['total_s'] / base['total_s']:8.1f}x")
    print(f"operator peak RSS {rss:.0f} MiB")
    print(json.dumps({"runs": RUNS, "baseline": base, "trailboss": ours, "peak_rss_mib": rss}))
    return 0 if ours["missing"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
