"""Model server benchmark: ``trailboss serve`` (prediction logging on) against MLflow's bare
scoring app and ``mlflow models serve``, in one run.

Same model (a scikit-learn pipeline), same 10-row ``dataframe_split`` batches, same
bounded client (a fixed number of requests from a few keep-alive connections on
loopback, each round stopping at a time limit); the servers take turns in interleaved
rounds, one loaded at a time, so that a busy machine weighs on each alike. Each round
loads a server from 4 connections (its throughput, and latencies that are mostly waiting
in line), then sends it requests one at a time (latencies with no waiting: what a
request's own handling costs). Prints throughput, p50/p99 latency of both, resident
memory of each, and the ratios the design is held to: trailboss's throughput at least
90 % of the bare scoring app's, its added p50 at most 1 ms (one at a time; the figure
under load is printed too).

Run with ``make bench-serve``. Prediction logs go to a moto S3 server on loopback.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

LOOPBACK = "127.0.0.1"
BUCKET = "bench-logs"
S3_ENV = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
          "AWS_DEFAULT_REGION": "us-east-1"}  # fmt: skip


@dataclass
class Result:
    name: str
    requests: int
    failures: int
    seconds: float
    latencies: list[float]
    rss_mb: float
    processes: int
    alone: list[float] = field(default_factory=list)
    """Latencies of requests sent one at a time: no request waits for another."""

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds

    def percentile(self, q: float) -> float:
        return _percentile(self.latencies, q)

    def alone_percentile(self, q: float) -> float:
        return _percentile(self.alone, q)


def _percentile(latencies: list[float], q: float) -> float:
    ordered = sorted(latencies)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def save_model(path: Path) -> list[list[object]]:
    """The benchmark model and one 10-row batch for it."""
    import mlflow.sklearn
    import numpy as np
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"tenure": rng.normal(size=500), "spend": rng.normal(size=500),
                          "plan": rng.choice(["basic", "pro", "team"], 500)})  # fmt: skip
    labels = (frame.tenure + frame.spend > 0).astype(int)
    encode = ColumnTransformer([("plan", OneHotEncoder(), ["plan"])], remainder="passthrough")
    model = make_pipeline(encode, LogisticRegression()).fit(frame, labels)
    mlflow.sklearn.save_model(model, str(path), input_example=frame.head(3),
                              pip_requirements=["scikit-learn"])  # fmt: skip
    return [list(row) for row in frame.head(10).itertuples(index=False)]


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, **env}, start_new_session=True)  # fmt: skip


def wait_ready(
    port: int, process: subprocess.Popen[bytes], log: Path, timeout: float = 180
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited:\n{log.read_text()}")
        try:
            conn = http.client.HTTPConnection(LOOPBACK, port, timeout=2)
            conn.request("GET", "/ping")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"server on {port} not ready in {timeout} s:\n{log.read_text()}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the server's process group (workers too), SIGKILL if it lingers."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def tree_rss(pid: int) -> tuple[float, int]:
    """Resident memory (MB) of a process and all its descendants, and how many there are."""
    pids, total = [pid], 0
    for current in pids:
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total += next(int(line.split()[1]) for line in status.splitlines()
                          if line.startswith("VmRSS:"))  # fmt: skip
            for task in Path(f"/proc/{current}/task").iterdir():
                pids += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, StopIteration):
            continue
    return total / 1024, len(pids)


def load(
    port: int, body: bytes, requests: int, clients: int, time_limit: float
) -> tuple[list[float], int, float]:
    """``requests`` POSTs from ``clients`` keep-alive connections, stopping at ``time_limit``."""
    latencies: list[float] = []
    failures = 0
    lock = threading.Lock()
    remaining = [requests]
    deadline = time.monotonic() + time_limit
    headers = {"Content-Type": "application/json"}

    def client() -> None:
        nonlocal failures
        conn = http.client.HTTPConnection(LOOPBACK, port, timeout=30)
        while time.monotonic() < deadline:
            with lock:
                if remaining[0] <= 0:
                    return
                remaining[0] -= 1
            started = time.perf_counter()
            conn.request("POST", "/invocations", body, headers)
            reply = conn.getresponse()
            reply.read()
            took = time.perf_counter() - started
            with lock:
                latencies.append(took)
                failures += reply.status != 200

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, failures, time.perf_counter() - started


@dataclass
class Contender:
    name: str
    args: list[str]
    env: dict[str, str]


def contenders(model: Path, s3_url: str) -> list[Contender]:
    port = "{port}"
    return [
        Contender("trailboss serve (logging on)", [
            sys.executable, "-m", "trailboss.cli", "serve", "--host", LOOPBACK, "--port", port,
            "--model-uri", str(model), "--model-name", "churn", "--model-version", "1",
            "--log-uri", f"s3://{BUCKET}/predictions", "--s3-endpoint-url", s3_url,
            "--log-sample-rate", "1"], S3_ENV),
        Contender("trailboss serve (logging off)", [
            sys.executable, "-m", "trailboss.cli", "serve", "--host", LOOPBACK, "--port", port,
            "--model-uri", str(model), "--model-name", "churn", "--model-version", "1"], {}),
        Contender("MLflow scoring app (bare)", [
            sys.executable, "-m", "uvicorn", "--host", LOOPBACK, "--port", port, "--workers", "1",
            "--no-access-log", "mlflow.pyfunc.scoring_server.app:app"],
            {"__pyfunc_model_path__": str(model)}),
        Contender("mlflow models serve", [
            str(Path(sys.executable).parent / "mlflow"), "models", "serve", "-m", str(model),
            "--env-manager", "local", "-h", LOOPBACK, "-p", port],
            # It runs `uvicorn` from PATH, as it would in its own image.
            {"PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}),
    ]  # fmt: skip


def logged_rows(port: int) -> str:
    """The prediction log's counters, from the server's own /metrics."""
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=5)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    figures = []
    for label, name in (('result="written"', "written"), ('result="dropped"', "dropped"),
                        ("trailboss_model_log_buffered_rows", "buffered")):  # fmt: skip
        line = next(x for x in text.splitlines() if label in x and x.startswith("trailboss_"))
        figures.append(f"{name} {float(line.rsplit(' ', 1)[1]):.0f} rows")
    return ", ".join(figures)


@dataclass
class Running:
    contender: Contender
    port: int
    process: subprocess.Popen[bytes]
    result: Result


def launch(contender: Contender, workdir: Path) -> Running:
    port = free_port()
    args = [a.replace("{port}", str(port)) for a in contender.args]
    process = start(args, contender.env, workdir / f"{port}.log")
    return Running(contender, port, process, Result(contender.name, 0, 0, 0.0, [], 0.0, 0))


def measure(contenders: list[Contender], body: bytes, options: argparse.Namespace,
            workdir: Path) -> list[Result]:  # fmt: skip
    """All servers up at once, then the load in interleaved rounds, so that other work on the
    machine weighs on every server alike."""
    servers = [launch(c, workdir) for c in contenders]
    try:
        for s in servers:
            wait_ready(s.port, s.process, workdir / f"{s.port}.log")
            load(s.port, body, options.warmup, options.clients, options.time_limit)
        for round_ in range(options.rounds):
            print(f"  round {round_ + 1}/{options.rounds}", flush=True)
            for s in servers:
                latencies, failures, seconds = load(s.port, body, options.requests //
                                                    options.rounds, options.clients,
                                                    options.time_limit)  # fmt: skip
                s.result.latencies += latencies
                s.result.requests += len(latencies)
                s.result.failures += failures
                s.result.seconds += seconds
                alone, failures, _ = load(s.port, body, options.alone_requests //
                                          options.rounds, 1, options.time_limit)  # fmt: skip
                s.result.alone += alone
                s.result.failures += failures
        for s in servers:
            s.result.rss_mb, s.result.processes = tree_rss(s.process.pid)
        print(f"  trailboss prediction log: {logged_rows(servers[0].port)}", flush=True)
    finally:
        for s in servers:
            stop(s.process)
    return [s.result for s in servers]


def start_s3(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    import boto3

    port = free_port()
    process = start([sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(port)], {},
                    workdir / "moto.log")  # fmt: skip
    url = f"http://{LOOPBACK}:{port}"
    s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                      aws_access_key_id="bench", aws_secret_access_key="bench")  # fmt: skip
    for _ in range(100):
        try:
            s3.create_bucket(Bucket=BUCKET)
            return process, url
        except Exception:  # not listening yet
            time.sleep(0.2)
    raise SystemExit(f"moto did not start:\n{(workdir / 'moto.log').read_text()}")


def report(results: list[Result]) -> None:
    print(f"\n{'':<30} {'--- loaded (4 connections) ---':>26}  {'-- one at a time --':>17}")
    print(f"{'server':<30} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}  {'p50 ms':>8} {'p99 ms':>8} "
          f"{'RSS MB':>7} {'procs':>6} {'done':>6} {'failed':>7}")  # fmt: skip
    for r in results:
        print(f"{r.name:<30} {r.throughput:>8.1f} {r.percentile(0.5):>8.2f} "
              f"{r.percentile(0.99):>8.2f}  {r.alone_percentile(0.5):>8.2f} "
              f"{r.alone_percentile(0.99):>8.2f} {r.rss_mb:>7.0f} {r.processes:>6} "
              f"{r.requests + len(r.alone):>6} {r.failures:>7}")  # fmt: skip
    ours, unlogged, bare, anchor = results
    ratio = ours.throughput / bare.throughput
    added = ours.alone_percentile(0.5) - bare.alone_percentile(0.5)
    loaded = ours.percentile(0.5) - bare.percentile(0.5)
    print(
        f"\nthroughput trailboss / bare scoring app:   {ratio:.2f}  (target >= 0.90: "
        f"{'met' if ratio >= 0.9 else 'MISSED'})"
    )
    print(
        f"added p50 trailboss - bare scoring app:    {added:+.2f} ms  (one request at a time; "
        f"target <= 1 ms: {'met' if added <= 1.0 else 'MISSED'})"
    )
    print(f"  the same under load (4 connections):     {loaded:+.2f} ms  (mostly queueing)")
    print(f"throughput trailboss, no logging / bare:   {unlogged.throughput / bare.throughput:.2f}")
    print(f"throughput trailboss / mlflow models serve: {ours.throughput / anchor.throughput:.2f}")
    print(f"RSS trailboss / mlflow models serve:        {ours.rss_mb / anchor.rss_mb:.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="measured requests per server")
    parser.add_argument("--warmup", type=int, default=100, help="unmeasured requests first")
    parser.add_argument("--clients", type=int, default=4, help="concurrent connections")
    parser.add_argument("--alone-requests", type=int, default=500,
                        help="measured requests per server sent one at a time")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds of load")
    parser.add_argument("--time-limit", type=float, default=60, help="seconds per round at most")
    options = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    try:
        print("saving the model and starting S3 (moto) on loopback ...", flush=True)
        rows = save_model(workdir / "model")
        body = json.dumps({"dataframe_split": {"columns": ["tenure", "spend", "plan"],
                                               "data": rows}}).encode()  # fmt: skip
        s3, s3_url = start_s3(workdir)
        print(f"{options.requests} requests of 10 rows per server, {options.clients} "
              f"connections, {options.rounds} interleaved rounds ...", flush=True)  # fmt: skip
        try:
            results = measure(contenders(workdir / "model", s3_url), body, options, workdir)
        finally:
            stop(s3)
        report(results)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
