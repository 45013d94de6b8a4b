"""Scale benchmark: the operator's memory, idle CPU and startup backlog with
thousands of finished TrainingRuns.

On the local stack (or TRAILBOSS_E2E_KUBECONFIG), in one namespace, for each
count K of BENCH_SCALE_COUNTS (cumulative, default ``0,1000,5000``):

1. **create** the TrainingRuns missing to reach K, finished: a pool of
   BENCH_SCALE_THREADS threads creates each one and writes its status through
   the status subresource as the operator leaves a run that succeeded (phase
   Succeeded, Ready, the MLflow run recorded: condition Tracked), so that the
   operator has nothing left to do for it (``TrainingRunKind.settled``, checked
   here before anything is created). With BENCH_SCALE_JOBS=1 each also gets
   its Job, built as the operator builds it but suspended, so no pod runs;
2. **first start** of the operator on them: it reconciles each once (kopf
   writes nothing to a TrainingRun: no finalizer, no annotation). Reported:
   until every object was seen, until its reconciles stopped, its API requests
   per new object, how many runs kopf wrote to anyway, and the size of a run.
   Then the operator stops;
3. **restart** (the startup backlog of an upgrade, a crash or a failover with
   K settled objects): the time until every object was seen
   settled, the operator's ``trailboss_objects{phase="Succeeded"}`` reaching K,
   and until its reconcile count stops moving for BENCH_SCALE_QUIET seconds;
   its RSS then, its peak, the slowest answer of /healthz (the liveness probe)
   meanwhile, and, after BENCH_SCALE_IDLE_WAIT seconds (kopf's
   per-object workers exit, a burst's memory goes back to the OS), RSS and CPU
   over BENCH_SCALE_IDLE_SECONDS (/proc/PID/stat utime+stime, all threads).

Prints one table, the RSS growth per object between counts, the targets
(idle RSS <= 150 MiB, <= 250 MiB with 5,000 finished objects, backlog of 5,000
settled in <= 60 s, idle CPU <= 2 % of a core), and one JSON line. At the end
the namespace is deleted while the operator runs (it releases its
finalizers): that time is reported too.

    make bench-scale
    BENCH_SCALE_COUNTS=0,1000,5000,10000 make bench-scale
    BENCH_OPERATOR_PYTHON=.venv-operator/bin/python make bench-scale   # the image's dependencies
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from e2e.cluster import Cluster, Operator

from bench import kit
from trailboss.api.common import API_VERSION
from trailboss.api.conditions import set_condition, set_ready
from trailboss.api.trainingrun import (
    MlflowRunStatus,
    TrainingPhase,
    TrainingReason,
    TrainingRun,
    TrainingRunSpec,
    TrainingRunStatus,
)
from trailboss.builders import training
from trailboss.clients.kube import Kube, load_config
from trailboss.reconcilers.trainingrun import TrainingRunKind
from trailboss.reconcilers.trainingrun_tracking import TRACKED

COUNTS = [int(c) for c in os.environ.get("BENCH_SCALE_COUNTS", "0,1000,5000").split(",")]
THREADS = int(os.environ.get("BENCH_SCALE_THREADS", "16"))
WITH_JOBS = os.environ.get("BENCH_SCALE_JOBS", "0") == "1"
IDLE_WAIT = float(os.environ.get("BENCH_SCALE_IDLE_WAIT", "25"))
IDLE_SECONDS = float(os.environ.get("BENCH_SCALE_IDLE_SECONDS", "30"))
QUIET = float(os.environ.get("BENCH_SCALE_QUIET", "5"))
TIMEOUT = float(os.environ.get("BENCH_SCALE_TIMEOUT", "900"))
MODEL = "scale"
FINALIZER = "trailboss.dev/finalizer"  # kopf's, as the operator configures it
DIFF_BASE = "trailboss.dev/last-handled-configuration"
RESOURCES = ("trainingruns", "trainingruns/status", "jobs", "events")

# The targets this benchmark checks against.
IDLE_RSS_MIB, LOADED_RSS_MIB, LOADED_COUNT = 150.0, 250.0, 5000
BACKLOG_SECONDS, IDLE_CPU_PERCENT = 60.0, 2.0


# Finished objects ------------------------------------------------------------------


def manifest(namespace: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "TrainingRun",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "model": MODEL,
            "image": "trainer:1",
            "command": ["python", "train.py"],
            "hyperparameters": {"learning_rate": "0.1", "epochs": "10"},
        },
    }


def finished_status(owner: training.Owner, generation: int, tracking_uri: str) -> dict[str, Any]:
    """The status the operator leaves on a run that succeeded and was recorded."""
    completed = dt.datetime.now(dt.UTC).replace(microsecond=0)
    run_id = uuid.uuid4().hex
    status = TrainingRunStatus(
        phase=TrainingPhase.SUCCEEDED,
        observed_generation=generation,
        job_name=training.job_name(owner),
        attempts=1,
        start_time=completed - dt.timedelta(minutes=12),
        completion_time=completed,
        mlflow=MlflowRunStatus(
            run_id=run_id,
            experiment_id="1",
            url=f"{tracking_uri}/#/experiments/1/runs/{run_id}",
        ),
        metrics={"accuracy": 0.912, "log_loss": 0.231},
    )
    conditions = set_ready([], True, TrainingReason.SUCCEEDED, "training finished", generation)
    message = f"MLflow run {run_id} recorded"
    status.conditions = set_condition(conditions, TRACKED, True, "RunClosed", message, generation)
    return status.to_json()


def check_settled(namespace: str, tracking_uri: str) -> None:
    """The objects this benchmark makes are ones the operator has nothing to do for."""
    body = manifest(namespace, "check")
    owner = training.Owner("check", namespace, str(uuid.uuid4()))
    body["status"] = finished_status(owner, 1, tracking_uri)
    run = TrainingRun.model_validate(body)
    if not TrainingRunKind().settled(run):
        raise SystemExit("the benchmark's finished status is not settled for the operator")


class Maker:
    """Creates finished TrainingRuns (and, optionally, their suspended Jobs) fast."""

    def __init__(self, env: dict[str, str], namespace: str) -> None:
        self.kube = Kube(load_config(env["KUBECONFIG"]))  # a pool of 32 connections
        self.namespace = namespace
        self.tracking_uri = env.get("MLFLOW_TRACKING_URI", "http://mlflow:5000")
        self.made = 0

    def make(self, count: int) -> float:
        """Bring the namespace to ``count`` runs; the seconds it took."""
        names = [f"run-{i:06d}" for i in range(self.made, count)]
        started = time.monotonic()
        with ThreadPoolExecutor(THREADS) as pool:
            list(pool.map(self._one, names))
        self.made = max(self.made, count)
        return time.monotonic() - started

    def _one(self, name: str) -> None:
        created = self.kube.create(manifest(self.namespace, name))
        if created is None:
            return  # made by an earlier, interrupted round
        meta = created["metadata"]
        owner = training.Owner(name, self.namespace, meta["uid"])
        generation = int(meta.get("generation") or 1)
        status = finished_status(owner, generation, self.tracking_uri)
        self.kube.patch_status(API_VERSION, "TrainingRun", self.namespace, name, status, None)
        if WITH_JOBS:
            spec = TrainingRunSpec.model_validate(created["spec"])
            ctx = training.TrainingContext(
                tracking_uri=self.tracking_uri,
                run_id=status["mlflow"]["runId"],
                experiment_id="1",
            )
            job = training.build_job(owner, spec, ctx)
            job["spec"]["suspend"] = True  # a Job, but no pods
            self.kube.create(job)


# One operator start ------------------------------------------------------------------


@dataclass
class Start:
    """What one operator start on K objects measured."""

    objects: int
    seen_s: float = float("nan")
    quiet_s: float = float("nan")
    metrics_s: float = float("nan")
    requests: dict[str, int] = field(default_factory=dict)
    rss_settled_mib: float = float("nan")
    rss_peak_mib: float = float("nan")
    rss_idle_mib: float = float("nan")
    rss_after_idle_mib: float = float("nan")
    idle_cpu_percent: float = float("nan")
    threads: int = 0
    healthz_max_s: float = 0.0
    """The slowest answer of /healthz (kopf's liveness endpoint) during the backlog."""
    healthz_errors: dict[str, int] = field(default_factory=dict)
    """Why /healthz did not answer, counted by kind of error."""
    written_by_kopf: int = 0
    object_bytes: float = float("nan")
    """Average size of a run as the API server returns it, after kopf's annotations."""


def succeeded(operator: Operator, namespace: str) -> float:
    """How many of the namespace's runs the operator has seen Succeeded."""
    value = kit.metric(
        operator.metrics(),
        "trailboss_objects",
        kind="TrainingRun",
        namespace=namespace,
        model=MODEL,
        phase="Succeeded",
    )
    return value or 0.0


def start_operator(
    operator: Operator, cluster: Cluster, namespace: str, count: int, *, idle: bool
) -> Start:
    """Start the operator and follow its startup backlog until it is quiet; with
    ``idle``, then measure it idle. The operator keeps running."""
    result = Start(objects=count)
    requests = kit.api_requests(cluster)
    t0 = time.monotonic()
    operator.start()  # returns once /metrics answers
    result.metrics_s = time.monotonic() - t0
    assert operator.proc is not None
    pid = operator.proc.pid
    deadline = t0 + TIMEOUT
    listening = False
    while succeeded(operator, namespace) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"the operator saw {succeeded(operator, namespace):.0f}/{count}")
        seconds, error = healthz_seconds(operator)
        if not error:
            listening = True
        if listening:  # kopf opens the endpoint a moment after /metrics: not a failure
            result.healthz_max_s = max(result.healthz_max_s, seconds)
            if error:
                result.healthz_errors[error] = result.healthz_errors.get(error, 0) + 1
        time.sleep(0.5)  # each scrape costs the operator a little
    result.seen_s = time.monotonic() - t0
    # kopf's own patches (finalizer, annotation) come within moments of each reconcile.
    moved = kit.wait_quiet(operator, quiet=QUIET, timeout=TIMEOUT, interval=0.5)
    if moved is None:
        raise AssertionError(f"the operator kept reconciling for {TIMEOUT:.0f}s")
    result.quiet_s = moved - t0
    result.requests = kit.request_delta(requests, kit.api_requests(cluster), RESOURCES)
    result.rss_settled_mib = kit.status_mib(pid, "VmRSS")
    result.rss_peak_mib = kit.status_mib(pid, "VmHWM")
    if idle:
        time.sleep(IDLE_WAIT)
        result.rss_idle_mib = kit.status_mib(pid, "VmRSS")
        cpu = kit.cpu_seconds(pid)
        time.sleep(IDLE_SECONDS)
        result.idle_cpu_percent = (kit.cpu_seconds(pid) - cpu) / IDLE_SECONDS * 100
        result.rss_after_idle_mib = kit.status_mib(pid, "VmRSS")
        result.threads = len(list(Path(f"/proc/{pid}/task").iterdir()))
    return result


def healthz_seconds(operator: Operator) -> tuple[float, str]:
    """How long /healthz takes to answer (the kubelet's probe gives up after 5 s),
    and why it did not, if it did not."""
    started = time.monotonic()
    try:
        operator.healthz()
    except OSError as error:
        return float("inf"), f"{type(error).__name__}: {str(error)[:80]}"
    return time.monotonic() - started, ""


def adoption(cluster: Cluster, namespace: str) -> tuple[int, float]:
    """How many runs carry kopf's finalizer or its last-handled-configuration
    annotation (none should), and the average size of a run in bytes (as JSON)."""
    listed = cluster.custom.list_namespaced_custom_object(
        "trailboss.dev", "v1alpha1", namespace, "trainingruns"
    )
    items = listed["items"]  # type: ignore[index]
    missing = 0
    for item in items:
        meta = item["metadata"]
        if FINALIZER in meta.get("finalizers", []) or DIFF_BASE in (meta.get("annotations") or {}):
            missing += 1
    size = sum(len(json.dumps(item)) for item in items) / max(1, len(items))
    return missing, size


# Main ----------------------------------------------------------------------------


@dataclass
class Round:
    count: int
    create_s: float
    first: Start | None
    restart: Start


def main() -> int:
    stack = kit.start_stack()
    if stack is None:
        return 1
    env, kubectl = stack
    cluster = Cluster(env=env, kubectl_bin=kubectl)
    cluster.install_crds()
    others = kit.cluster_objects(cluster)
    namespace = kit.create_namespace(cluster, "scale")
    check_settled(namespace, env.get("MLFLOW_TRACKING_URI", ""))
    maker = Maker(env, namespace)
    operator = kit.operator_process(env)
    print(
        f"finished TrainingRuns {COUNTS} in namespace {namespace}"
        f"{' with their (suspended) Jobs' if WITH_JOBS else ''}\n"
        f"operator: {operator.python}, logs in {operator.log_dir}\n"
        f"already in the cluster, also in the operator's backlog: {others}\n"
    )
    rounds: list[Round] = []
    deleted_s = float("nan")
    try:
        for count in sorted(set(COUNTS)):
            create_s = maker.make(count)
            new = count - (rounds[-1].count if rounds else 0)
            print(f"{count:>6} runs: created {new} in {create_s:6.1f} s", flush=True)
            first = None
            if new:
                first = start_operator(operator, cluster, namespace, count, idle=False)
                first.written_by_kopf, first.object_bytes = adoption(cluster, namespace)
                operator.stop()
                print(f"        first start: all seen {first.seen_s:6.1f} s, "
                      f"quiet {first.quiet_s:6.1f} s", flush=True)  # fmt: skip
            restart = start_operator(operator, cluster, namespace, count, idle=True)
            print(f"        restart: all seen {restart.seen_s:6.1f} s, idle RSS "
                  f"{restart.rss_idle_mib:.0f} MiB", flush=True)  # fmt: skip
            rounds.append(Round(count, create_s, first, restart))
            if count != max(COUNTS):
                operator.stop()
        started = time.monotonic()
        try:
            # Deleted while the operator runs: it releases each run's finalizer.
            kit.delete_namespace(cluster, namespace, timeout=TIMEOUT)
            deleted_s = time.monotonic() - started
        except AssertionError as error:
            print(f"{error}: removing the finalizers by hand")
            operator.stop()
            strip_finalizers(cluster, namespace)
    finally:
        operator.stop()
    report(rounds, deleted_s, others)
    return 0


def strip_finalizers(cluster: Cluster, namespace: str) -> None:
    listed = cluster.custom.list_namespaced_custom_object(
        "trailboss.dev", "v1alpha1", namespace, "trainingruns"
    )
    names = [item["metadata"]["name"] for item in listed["items"]]  # type: ignore[index]
    patch = {"metadata": {"finalizers": None}}

    def strip(name: str) -> None:
        cluster.custom.patch_namespaced_custom_object(
            "trailboss.dev", "v1alpha1", namespace, "trainingruns", name, patch
        )

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(strip, names))
    kit.delete_namespace(cluster, namespace)


def report(rounds: list[Round], deleted_s: float, others: dict[str, int]) -> None:
    print()
    print(
        f"{'objects':>8} {'create s':>9} {'obj/s':>6} | {'1st: seen s':>11} {'quiet s':>8} |"
        f" {'restart: up s':>13} {'seen s':>7} {'quiet s':>8} | {'RSS settled':>11} {'peak':>6}"
        f" {'idle':>6} {'after':>6} MiB | {'idle CPU %':>10} {'threads':>7}"
    )
    previous = 0
    for r in rounds:
        new = r.count - previous
        previous = r.count
        rate = new / r.create_s if r.create_s > 0 and new else float("nan")
        first, s = r.first, r.restart
        print(
            f"{r.count:>8} {r.create_s:>9.1f} {rate:>6.0f} |"
            f" {first.seen_s if first else float('nan'):>11.1f}"
            f" {first.quiet_s if first else float('nan'):>8.1f} |"
            f" {s.metrics_s:>13.1f} {s.seen_s:>7.1f} {s.quiet_s:>8.1f} |"
            f" {s.rss_settled_mib:>11.0f} {s.rss_peak_mib:>6.0f} {s.rss_idle_mib:>6.0f}"
            f" {s.rss_after_idle_mib:>6.0f}     | {s.idle_cpu_percent:>10.2f} {s.threads:>7}"
        )
    print("seconds from starting the operator. up: its /metrics answers; seen: every run")
    print("counted Succeeded by it;", end=" ")
    print(f"quiet: its reconcile count then held still {QUIET:.0f} s; RSS idle: {IDLE_WAIT:.0f} s")
    print(f"after quiet; after: {IDLE_SECONDS:.0f} s later, the CPU measured over those seconds")
    print()
    for earlier, later in itertools.pairwise(rounds):
        grown = later.restart.rss_idle_mib - earlier.restart.rss_idle_mib
        per = grown * 1024 / (later.count - earlier.count)
        print(f"RSS growth {earlier.count:>6} -> {later.count:>6} objects: {grown:7.1f} MiB,"
              f" {per:6.1f} KiB per object (idle, after restart)")  # fmt: skip
    print()
    previous = 0
    for r in rounds:
        shown = (("first start, per new run", r.first, r.count - previous),
                 ("restart, per run", r.restart, r.count))  # fmt: skip
        previous = r.count
        for label, start, objects in shown:
            if start is None or not start.requests or not objects:
                continue
            rates = {k: round(v / objects, 2) for k, v in start.requests.items()}
            print(f"API requests {label:<24} {r.count:>6} runs: {rates}")
        if r.first is not None and r.first.written_by_kopf:
            print(f"  {r.first.written_by_kopf} runs carry kopf's finalizer or annotation after it")
        if r.first is not None:
            size = r.first.object_bytes / 1024
            print(f"  one run as the API server returns it after the first start: {size:.1f} KiB")
    for r in rounds:
        slowest = max(r.restart.healthz_max_s, r.first.healthz_max_s if r.first else 0.0)
        print(f"slowest /healthz answer during the backlog, {r.count:>6} runs: {slowest:.2f} s")
        for start in (r.first, r.restart):
            for why, times in (start.healthz_errors if start else {}).items():
                print(f"    /healthz failed {times}x: {why}")
    print()
    if deleted_s == deleted_s:
        print(f"namespace with {rounds[-1].count} runs deleted through the operator in "
              f"{deleted_s:.1f} s")  # fmt: skip
    targets(rounds)
    print(json.dumps({
        "with_jobs": WITH_JOBS, "already_in_cluster": others, "deleted_s": deleted_s,
        "rounds": [{"objects": r.count, "create_s": r.create_s,
                    "first_start": asdict(r.first) if r.first else None,
                    "restart": asdict(r.restart)} for r in rounds],
    }))  # fmt: skip


def targets(rounds: list[Round]) -> None:
    def verdict(ok: bool) -> str:
        return "meets" if ok else "MISSES"

    by_count = {r.count: r.restart for r in rounds}
    if 0 in by_count:
        rss = by_count[0].rss_idle_mib
        print(f"idle RSS, no objects       {rss:7.0f} MiB  {verdict(rss <= IDLE_RSS_MIB)}"
              f" <= {IDLE_RSS_MIB:.0f} MiB")  # fmt: skip
    if LOADED_COUNT in by_count:
        start = by_count[LOADED_COUNT]
        rss, seen = start.rss_idle_mib, start.seen_s
        print(f"idle RSS, {LOADED_COUNT} finished  {rss:7.0f} MiB  "
              f"{verdict(rss <= LOADED_RSS_MIB)} <= {LOADED_RSS_MIB:.0f} MiB")  # fmt: skip
        print(f"backlog of {LOADED_COUNT} settled {seen:7.1f} s    "
              f"{verdict(seen <= BACKLOG_SECONDS)} <= {BACKLOG_SECONDS:.0f} s")  # fmt: skip
    for count, start in by_count.items():
        cpu, ok = start.idle_cpu_percent, start.idle_cpu_percent <= IDLE_CPU_PERCENT
        print(f"idle CPU, {count:>5} objects  {cpu:7.2f} %    "
              f"{verdict(ok)} <= {IDLE_CPU_PERCENT:.0f} % of a core")  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
