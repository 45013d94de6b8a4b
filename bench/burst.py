"""Benchmark: how long from ``kubectl create trainingrun`` to the Job existing,
against the floor of the work a TrainingRun cannot avoid, measured in the same run.

Creates N TrainingRuns in a burst on the local stack (or TRAILBOSS_E2E_KUBECONFIG)
and measures, with a watch on Jobs, the latency from each create call to its Job
appearing. Measured in the same run, each phase in a namespace of its own that
is deleted before the next phase starts:

- **baseline**: the same N Jobs created directly (the Jobs alone);
- **floor**: what the operator must do for N TrainingRuns and nothing more,
  done by this process with the operator's own clients (``Tracking``, ``Kube``)
  at the operator's concurrency (``trailboss.settings.WORKERS`` threads, kopf's
  handler pool): this process creates the N TrainingRuns one after the other,
  as the burst does, and hands each to the pool as soon as it exists; a worker
  then does, in order, what the operator's first reconcile of a run cannot
  skip: find the MLflow run by the TrainingRun's UID tag and create it with the
  operator's tags (``Tracking.ensure_run``), create the Job the operator would
  build (``builders.training.build_job``), and write the status once through
  the status subresource. The MLflow and Kubernetes parts run *pipelined*, not
  one after the other and not independently: within a run they are sequential
  because the Job needs the MLflow run's id, and across runs they overlap as
  the operator's workers overlap them. Running the parts back to back would
  overstate the floor (no overlap), running them independently would
  understate it (as if a Job did not wait for its run);
- **parts** of the floor, for diagnosis (BENCH_FLOOR_PARTS=0 skips them): the
  MLflow calls alone (N find + create at the same concurrency) and the
  Kubernetes calls alone (the floor with a made-up run id);
- **trailboss**: the operator, started only now (so it never sees the objects
  of the phases before it) and warmed up with one TrainingRun (the first one
  pays for importing MLflow, reported as the cold start); the N TrainingRuns
  created in a burst; then stopped;
- **rounds**: floor and operator take turns, BENCH_ROUNDS (default 3) rounds
  of the operator between BENCH_ROUNDS + 1 floors. MLflow and the API server,
  on the same two cores, vary from minute to minute (the same floor has taken
  7 s and 26 s), so each round is compared with the mean of the floors just
  before and after it, and the verdict is on the median of the rounds. When the
  floors differ by more than 25 % the run is refused as noisy, and says so.

The TrainingRuns of the floor and of the operator's burst have pods that run
BENCH_TRAINING_SECONDS (default 45) on the local stack, longer than a burst,
as real training does: with pods that finished in a second, the operator
would be closing the first runs in MLflow during its burst, work the floor
does not do. After its burst, the operator's phase waits until every run has
succeeded and it is quiet again ("trailboss, after the Jobs").

Prints p50/p99/total per phase, the ratios of the operator to the raw Jobs
(as before), each round's total as a ratio to the floors around it and their
median (the target: at most 1.3x), the API writes per run of the floor and of
the operator's burst (the target: at most the floor's + 1), the CPU seconds
each process spent in each phase, the operator's RSS in the first round (idle
before the burst, peak, and BENCH_SETTLE_SECONDS after it), and one JSON line
with everything.

    make bench                                   # N=200
    BENCH_RUNS=50 make bench
    BENCH_OPERATOR_PYTHON=.venv-operator/bin/python make bench   # the image's dependencies
"""

from __future__ import annotations

import functools
import json
import os
import queue
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from e2e.cluster import Cluster, unique
from kubernetes import client, watch

from bench import kit
from trailboss.api.common import API_VERSION
from trailboss.api.conditions import set_ready
from trailboss.api.trainingrun import (
    MlflowRunStatus,
    TrainingPhase,
    TrainingReason,
    TrainingRunSpec,
    TrainingRunStatus,
)
from trailboss.builders import training
from trailboss.builders.labels import TRAININGRUN_LABEL
from trailboss.clients.kube import Kube, load_config
from trailboss.clients.tracking import Tracking
from trailboss.settings import WORKERS

RUNS = int(os.environ.get("BENCH_RUNS", "200"))
FLOOR_PARTS = os.environ.get("BENCH_FLOOR_PARTS", "1") != "0"
SETTLE_SECONDS = float(os.environ.get("BENCH_SETTLE_SECONDS", "30"))
TRAINING_SECONDS = float(os.environ.get("BENCH_TRAINING_SECONDS", "45"))
RUN_FOR = "stack.trailboss.dev/run-for"
TARGET = 1.3  # the operator's burst total, at most this times the floor
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
FLOOR_SPREAD = 0.25
"""Floors further apart than this (max / min - 1) make the run too noisy to judge."""


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
        "p50_s": statistics.median(latencies) if latencies else float("nan"),
        "p99_s": percentile(latencies, 0.99) if latencies else float("nan"),
        "total_s": max((seen[k] for k in created if k in seen), default=float("nan")) - start,
        "missing": float(missing),
    }
    print(
        f"{name:<28} p50 {result['p50_s'] * 1000:8.1f} ms   p99 {result['p99_s'] * 1000:8.1f} ms"
        f"   total {result['total_s']:6.2f} s   missing {missing}"
    )
    return result


def trainingrun(name: str, model: str) -> dict[str, Any]:
    """The TrainingRun every phase creates: the operator's burst and the floor alike.
    Its pods run TRAINING_SECONDS on the local stack (the stack's fake kubelet
    reads the annotation), longer than the burst, as real training does."""
    notes = {RUN_FOR: f"{TRAINING_SECONDS:g}s"}
    return {
        "apiVersion": API_VERSION,
        "kind": "TrainingRun",
        "metadata": {"name": name},
        "spec": {
            "model": model,
            "image": "trainer:1",
            "command": ["true"],
            "podTemplate": {"metadata": {"annotations": notes}},
        },
    }


# Phases --------------------------------------------------------------------------


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


class Floor:
    """The unavoidable work of N TrainingRuns, done with the operator's clients."""

    def __init__(self, env: dict[str, str], tracking: Tracking | None) -> None:
        self.tracking = tracking  # None: the Kubernetes part only, with a made-up run
        self.kube = Kube(load_config(env["KUBECONFIG"]))
        self.tracking_uri = env.get("MLFLOW_TRACKING_URI", "")
        self.s3_endpoint_url = env.get("AWS_ENDPOINT_URL_S3") or None
        # Discovery once, as the operator has done before its first burst.
        self.kube._resource("batch/v1", "Job")
        self.kube._resource(API_VERSION, "TrainingRun")

    def run(self, cluster: Cluster, namespace: str, title: str) -> dict[str, float]:
        jobs = JobWatch(cluster, namespace, TRAININGRUN_LABEL)
        created: dict[str, float] = {}
        done: list[float] = []
        work: queue.Queue[dict[str, Any] | None] = queue.Queue()
        errors: list[BaseException] = []

        def worker() -> None:
            while (obj := work.get()) is not None:
                try:
                    self._one(obj)
                    done.append(time.monotonic())
                except Exception as error:
                    errors.append(error)

        threads = [threading.Thread(target=worker, daemon=True) for _ in range(WORKERS)]
        for thread in threads:
            thread.start()
        for i in range(RUNS):
            name = f"run-{i}"
            created[name] = time.monotonic()
            work.put(cluster.create(namespace, trainingrun(name, namespace)))
        for _ in threads:
            work.put(None)
        for thread in threads:
            thread.join()
        jobs.wait(RUNS, 300)
        if errors:
            print(f"  {len(errors)} runs failed, first: {errors[0]!r}")
        handled = [
            o for o in cluster.list(namespace, "trainingruns") if o["metadata"].get("finalizers")
        ]
        if handled:
            print(
                f"  {len(handled)} runs carry a finalizer: an operator runs, the floor is unclean"
            )
        result = summarize(title, created, jobs.seen)
        result["done_s"] = max(done, default=float("nan")) - min(created.values())
        return result

    def _one(self, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        name, namespace, uid = meta["name"], meta["namespace"], meta["uid"]
        spec = TrainingRunSpec.model_validate(obj["spec"])
        if self.tracking is None:
            run_id, experiment_id = uuid.uuid4().hex, "0"
        else:
            info = self.tracking.ensure_run(
                experiment=spec.experiment or spec.model,
                uid=uid,
                run_name=name,
                tags={
                    "trailboss.dev/trainingrun": f"{namespace}/{name}",
                    "trailboss.dev/model": spec.model,
                    "trailboss.dev/image": spec.image,
                },
                params={},
            )
            run_id, experiment_id = info.run_id, info.experiment_id
        owner = training.Owner(name, namespace, uid)
        ctx = training.TrainingContext(
            tracking_uri=self.tracking_uri,
            run_id=run_id,
            experiment_id=experiment_id,
            s3_endpoint_url=self.s3_endpoint_url,
        )
        self.kube.create(training.build_job(owner, spec, ctx))
        status = TrainingRunStatus(
            phase=TrainingPhase.PENDING,
            observed_generation=meta.get("generation"),
            job_name=training.job_name(owner),
            mlflow=MlflowRunStatus(
                run_id=run_id,
                experiment_id=experiment_id,
                url=f"{self.tracking_uri}/#/experiments/{experiment_id}/runs/{run_id}",
            ),
        )
        status.conditions = set_ready(
            [],
            False,
            TrainingReason.JOB_CREATED,
            "waiting for pods to start",
            meta.get("generation"),
        )
        self.kube.patch_status(
            API_VERSION,
            "TrainingRun",
            namespace,
            name,
            status.to_json(),
            meta.get("resourceVersion"),
        )


def mlflow_only(tracking: Tracking, experiment: str) -> dict[str, float]:
    """N find + create of MLflow runs at the operator's concurrency, nothing else."""
    calls: list[float] = []

    def one(i: int) -> None:
        started = time.monotonic()
        tracking.ensure_run(
            experiment=experiment,
            uid=str(uuid.uuid4()),
            run_name=f"run-{i}",
            tags={
                "trailboss.dev/trainingrun": f"{experiment}/run-{i}",
                "trailboss.dev/model": experiment,
                "trailboss.dev/image": "trainer:1",
            },
            params={},
        )
        calls.append(time.monotonic() - started)

    started = time.monotonic()
    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(one, range(RUNS)))
    total = time.monotonic() - started
    result = {
        "p50_s": statistics.median(calls),
        "p99_s": percentile(calls, 0.99),
        "total_s": total,
        "missing": float(RUNS - len(calls)),
    }
    print(
        f"{'floor part: MLflow only':<28} p50 {result['p50_s'] * 1000:8.1f} ms"
        f"   p99 {result['p99_s'] * 1000:8.1f} ms   total {total:6.2f} s   (per find + create)"
    )
    return result


def operator_burst(cluster: Cluster, namespace: str) -> dict[str, float]:
    label = TRAININGRUN_LABEL
    jobs = JobWatch(cluster, namespace, label)
    created: dict[str, float] = {}
    for i in range(RUNS):
        name = f"run-{i}"
        created[name] = time.monotonic()
        cluster.create(namespace, trainingrun(name, namespace))
    jobs.wait(RUNS, 900)
    return summarize("trailboss: TrainingRuns", created, jobs.seen)


def wait_finished(cluster: Cluster, namespace: str, timeout: float) -> None:
    """Until every run of the burst has Succeeded (its pods ran TRAINING_SECONDS)."""

    def finished() -> bool | None:
        runs = cluster.list(namespace, "trainingruns")
        done = sum((o.get("status") or {}).get("phase") == "Succeeded" for o in runs)
        return True if done == RUNS else None

    try:
        kit.Sampler(finished, interval=2.0).until("every run to succeed", timeout)
    except AssertionError as error:  # reported, and the figures still printed
        print(f"  {error}")


def cold_start(cluster: Cluster) -> float:
    """One TrainingRun on a fresh operator: create call to Job, in seconds. The
    operator's first run pays for importing MLflow and its first connections."""
    namespace = kit.create_namespace(cluster, "bench-warm")
    try:
        created = time.monotonic()
        cluster.create(namespace, trainingrun("warm", namespace))
        seen = kit.Sampler(
            lambda: time.monotonic() if cluster.jobs(namespace) else None, interval=0.02
        ).until("the warm-up run's Job", 120)
        return seen - created
    finally:
        kit.delete_namespace(cluster, namespace)


def in_namespace(
    cluster: Cluster, prefix: str, phase: Callable[[str], dict[str, float]]
) -> dict[str, float]:
    """Run one phase in a fresh namespace, then delete it and wait until it is gone."""
    namespace = kit.create_namespace(cluster, prefix)
    try:
        return phase(namespace)
    finally:
        kit.delete_namespace(cluster, namespace)


# Main ----------------------------------------------------------------------------


RESOURCES = ("trainingruns", "trainingruns/status", "jobs", "events")
"""What the operator reads and writes for a TrainingRun, counted per phase."""


def main() -> int:
    stack = kit.start_stack()
    if stack is None:
        return 1
    env, kubectl = stack
    cluster = Cluster(env=env, kubectl_bin=kubectl)
    cluster.install_crds()
    others = kit.cluster_objects(cluster)
    tracking = Tracking(env["MLFLOW_TRACKING_URI"])
    tracking.experiment_id("Default")  # imports MLflow before any phase is timed
    measure = kit.Phases(cluster, kit.CpuMeter.for_stack(), RESOURCES)
    results: dict[str, dict[str, float]] = {}

    print(
        f"{RUNS} creations in a burst, latency from create call to Job seen by a watch;"
        f" {WORKERS} workers, as the operator's; {ROUNDS} rounds of the operator between"
        f" {ROUNDS + 1} of the floor. Already in the cluster: {others}\n"
    )
    with measure("baseline"):
        results["baseline"] = in_namespace(cluster, "bench-jobs", lambda ns: baseline(cluster, ns))
    floor = Floor(env, tracking)
    if FLOOR_PARTS:
        with measure("floor part: MLflow"):
            results["floor_mlflow"] = mlflow_only(tracking, unique("bench-mlflow"))
        kube_only = Floor(env, None)
        with measure("floor part: Kubernetes"):
            results["floor_kubernetes"] = in_namespace(
                cluster,
                "bench-kube",
                lambda ns: kube_only.run(cluster, ns, "floor part: Kubernetes only"),
            )
    # Floor and operator take turns, so each round of the operator is compared with
    # the floors measured just before and just after it.
    rss: dict[str, float] = {}
    for i in range(ROUNDS + 1):
        title = f"floor {i}"
        with measure(title):
            results[f"floor_{i}"] = in_namespace(
                cluster, "bench-floor", functools.partial(floor.run, cluster, title=title)
            )
        if i < ROUNDS:
            results.update(operator_round(cluster, env, measure, i + 1, rss))

    report(results, measure, rss)
    return 0 if all(r.get("missing", 0) == 0 for r in results.values()) else 1


def operator_round(
    cluster: Cluster,
    env: dict[str, str],
    measure: kit.Phases,
    number: int,
    rss: dict[str, float],
) -> dict[str, dict[str, float]]:
    """One round of the operator: started now (so it never sees the objects of the
    phases before it), warmed up with one run, then the burst, then until every run
    has succeeded and it is quiet again. The first round's RSS is kept."""
    results: dict[str, dict[str, float]] = {}
    operator = kit.operator_process(env)
    print(f"\noperator, round {number}: {operator.python}, logs in {operator.log_dir}")
    operator.start()
    try:
        assert operator.proc is not None
        pid = operator.proc.pid
        measure.meter.pids["operator"] = pid
        kit.wait_quiet(operator)
        started_mib = kit.status_mib(pid, "VmRSS")
        results[f"cold_start_{number}"] = {"first_run_s": cold_start(cluster)}
        kit.wait_quiet(operator)
        idle_mib = kit.status_mib(pid, "VmRSS")
        namespace = kit.create_namespace(cluster, "bench")
        try:
            with measure(f"trailboss {number}"):
                results[f"trailboss_{number}"] = operator_burst(cluster, namespace)
            # What follows the Jobs (pods start, phases change) is not part of the burst.
            with measure(f"trailboss {number}, after the Jobs"):
                wait_finished(cluster, namespace, TRAINING_SECONDS + 300)
                if kit.wait_quiet(operator, timeout=300) is None:
                    print("  the operator was still reconciling 300 s after the burst")
            if not rss:
                rss.update(started_mib=started_mib, idle_mib=idle_mib)
                rss["peak_mib"] = kit.status_mib(pid, "VmHWM")
                time.sleep(SETTLE_SECONDS)
                rss["after_burst_mib"] = kit.status_mib(pid, "VmRSS")
        finally:
            # Delete while the operator still runs, so that the next phase does not
            # start with this one's clean-up as a backlog.
            kit.delete_namespace(cluster, namespace)
    finally:
        operator.stop()
    return results


def ratios(results: dict[str, dict[str, float]]) -> tuple[list[float], list[float]]:
    """Each round's burst total over the mean of the floors just before and after
    it; and every floor's total."""
    floors = [results[f"floor_{i}"]["total_s"] for i in range(ROUNDS + 1)]
    ours = [results[f"trailboss_{i + 1}"]["total_s"] for i in range(ROUNDS)]
    return [t / statistics.mean(floors[i : i + 2]) for i, t in enumerate(ours)], floors


def writes(counts: dict[str, int]) -> int:
    """Requests that change something: every POST, PATCH, PUT and DELETE."""
    verbs = ("POST", "PATCH", "PUT", "DELETE")
    return sum(n for row, n in counts.items() if row.split()[0] in verbs)


def report(
    results: dict[str, dict[str, float]], measure: kit.Phases, rss: dict[str, float]
) -> None:
    base, ours = results["baseline"], results["trailboss_1"]
    print()
    print(f"first run on a fresh operator {results['cold_start_1']['first_run_s']:6.2f} s")
    print(
        f"floor: every status written  {results['floor_0']['done_s']:6.2f} s after the first create"
    )
    if "floor_mlflow" in results:
        parts = results["floor_mlflow"]["total_s"] + results["floor_kubernetes"]["total_s"]
        overlap = results["floor_0"]["total_s"] / parts
        print(f"floor / (MLflow part + Kubernetes part) {overlap:5.2f}"
              "   (1: no overlap; lower: the parts overlap)")  # fmt: skip
    print()
    print(
        f"ratio p50   {ours['p50_s'] / base['p50_s']:8.1f}x   (trailboss round 1 / Jobs directly)"
    )
    print(f"ratio p99   {ours['p99_s'] / base['p99_s']:8.1f}x")
    print(f"ratio total {ours['total_s'] / base['total_s']:8.1f}x")
    by_round, floors = ratios(results)
    print("floors (s)  " + "  ".join(f"{f:6.2f}" for f in floors))
    print("rounds (s)  " + "  ".join(
        f"{results[f'trailboss_{i + 1}']['total_s']:6.2f}" for i in range(ROUNDS)))  # fmt: skip
    print("ratio to the floors around it  " + "  ".join(f"{r:5.2f}x" for r in by_round))
    spread = max(floors) / min(floors) - 1
    median = statistics.median(by_round)
    print(f"median ratio to the floor {median:5.2f}x, from {min(by_round):.2f}x to "
          f"{max(by_round):.2f}x over {ROUNDS} rounds")  # fmt: skip
    if spread > FLOOR_SPREAD:
        print(f"NOISY: the floors differ by {spread:.0%} (more than {FLOOR_SPREAD:.0%}): this"
              " run says nothing about the target; run it again on a quieter machine")  # fmt: skip
    else:
        verdict = "meets" if median <= TARGET else "misses"
        print(f"floors within {spread:.0%}: the median {verdict} the target of {TARGET}x")
    print()
    kit.print_cpu(measure.cpu)
    for i in range(ROUNDS):
        burst = measure.cpu.get(f"trailboss {i + 1}", {}).get("operator", float("nan"))
        print(f"operator CPU per TrainingRun, burst of round {i + 1}: {burst / RUNS * 1000:.1f} ms")
    print()
    shown = ("floor 0", "floor 1", "trailboss 1", "trailboss 1, after the Jobs")
    kit.print_requests({p: measure.requests.get(p, {}) for p in shown}, RUNS, "per run")
    print("  (every client's requests: the Job controller, scheduler and kwok add theirs in each)")
    floor_writes = statistics.mean(
        writes(measure.requests.get(f"floor {i}", {})) for i in range(ROUNDS + 1)
    )
    our_writes = statistics.mean(
        writes(measure.requests.get(f"trailboss {i + 1}", {})) for i in range(ROUNDS)
    )
    print(f"writes per run in the burst: floor {floor_writes / RUNS:.2f}, trailboss "
          f"{our_writes / RUNS:.2f} (the target: at most the floor's + 1)")  # fmt: skip
    print()
    print(
        f"operator RSS (round 1): started {rss['started_mib']:.0f} MiB, idle after one run "
        f"{rss['idle_mib']:.0f} MiB, peak {rss['peak_mib']:.0f} MiB, "
        f"{SETTLE_SECONDS:.0f} s after the burst {rss['after_burst_mib']:.0f} MiB"
    )
    print(json.dumps({"runs": RUNS, "workers": WORKERS, "rounds": ROUNDS, **results,
                      "ratios": by_round, "median_ratio": median, "floor_spread": spread,
                      "cpu_s": measure.cpu, "api_requests": measure.requests, "rss": rss,
                      "peak_rss_mib": rss["peak_mib"]}))  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
