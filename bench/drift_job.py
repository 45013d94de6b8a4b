"""The drift Job in `make bench-drift`: `trailboss profile` and `trailboss
drift` as subprocesses against an S3 server on loopback, with their peak memory."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

NOW = dt.datetime(2026, 5, 4, 12, 0, tzinfo=dt.UTC)
CACHE = Path(os.environ.get("TRAILBOSS_CACHE") or Path.home() / ".cache" / "trailboss")
KEY, SECRET = "bench-access", "bench-secret-key"  # MinIO wants 8 characters or more


PEAK_REPORTING_CLI = """
import sys
from trailboss.cli import main
code = main(sys.argv[1:])
peak = [line for line in open("/proc/self/status") if line.startswith("VmHWM")]
print(peak[0].split()[1], file=sys.stderr)
sys.exit(code)
"""
"""The CLI, then its own peak RSS (kB) on stderr. VmHWM belongs to the exec'd
process alone; getrusage's ru_maxrss would include the pages it had at fork."""


def _run_measured(argv: list[str], env: dict[str, str]) -> tuple[float, int, str]:
    """Run a trailboss command; wall seconds, its peak RSS (MiB) and stdout."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", PEAK_REPORTING_CLI, *argv],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"trailboss {argv[0]} failed: {done.stderr[-2000:]}")
    peak_kb = int(done.stderr.strip().splitlines()[-1])
    return time.perf_counter() - started, peak_kb // 1024, done.stdout


def _drift_argv(profile_uri: str) -> list[str]:
    return [
        "drift",
        f"--profile={profile_uri}",
        "--logs=s3://bench/logs",
        "--deployment=bench.model",
        "--model-version=v1",
        f"--now={NOW.isoformat()}",
    ]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def sharded(env: dict[str, str], profile_uri: str, whole: dict[str, Any]) -> list[dict[str, Any]]:
    """The check split over 1, 2 and 4 pods of an Indexed Job, the pods running
    at once as Kubernetes would start them, each its own process: wall time, CPU
    seconds of all pods, each pod's peak RSS, and whether the merged result is
    the unsharded one."""
    from trailboss.api.monitoring import MonitoringSpec
    from trailboss.drift.shard import merge

    runs = []
    for count in (1, 2, 4):
        cpu_before, started = _children_cpu(), time.perf_counter()
        pods = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    PEAK_REPORTING_CLI,
                    *_drift_argv(profile_uri),
                    f"--shard={index}/{count}",
                ],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for index in range(count)
        ]
        outputs = [pod.communicate() for pod in pods]
        wall = time.perf_counter() - started
        if any(pod.returncode for pod in pods):
            raise RuntimeError(f"a sharded drift pod failed: {outputs}")
        parts = [json.loads(out) for out, _ in outputs]
        peaks = [int(err.strip().splitlines()[-1]) // 1024 for _, err in outputs]
        merged = merge(MonitoringSpec(), parts)
        runs.append(
            {
                "shards": count,
                "wall_s": wall,
                "cpu_s": _children_cpu() - cpu_before,
                "peak_mib": peaks,
                "same": merged == whole,
            }
        )
    return runs


def _upload_logs(client: Any, data: dict[str, Any], parts: int) -> None:
    rows = data["cur"].shape[1]
    size = rows // parts
    start_us = int((NOW - dt.timedelta(minutes=30)).timestamp() * 1e6)
    for p in range(parts):
        part = slice(p * size, (p + 1) * size)
        columns: dict[str, Any] = {
            "request_id": pa.array([f"r{j}" for j in range(part.start, part.stop)]),
            "timestamp": pa.array(np.full(size, start_us + p), pa.timestamp("us", tz="UTC")),
            "model": pa.array(["bench"] * size),
            "version": pa.array(["v1"] * size),
            "outcome": pa.array(["ok"] * size),
        }
        for i, name in enumerate(data["numeric"]):
            columns[f"input.{name}"] = data["cur"][i][part]
        for name in data["categorical"]:
            columns[f"input.{name}"] = data["cur_cat"][name][part]
        sink = pa.BufferOutputStream()
        pq.write_table(pa.table(columns), sink)
        key = (
            "logs/deployment=bench.model/version=v1/"
            f"date={NOW:%Y-%m-%d}/hour={NOW.hour - 1:02d}/part-{p}-0000000{p}.parquet"
        )
        client.put_object(Bucket="bench", Key=key, Body=sink.getvalue().to_pybytes())


def job(data: dict[str, Any], parts: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """`trailboss profile` and `trailboss drift` as the Job runs them, against
    an S3 server on loopback; peak memory with few and with all features; then
    the check of all features split over 1, 2 and 4 pods."""
    with s3_server() as endpoint:
        return _job(data, parts, endpoint)


@contextlib.contextmanager
def s3_server() -> Iterator[str]:
    """MinIO as the stack runs it when `make stack-build` has built it, else moto
    (one Python process: with several pods reading at once it is the bottleneck,
    and the sharded wall times say more about it than about the check)."""
    minio = CACHE / "bin" / "minio"
    if not minio.is_file():
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        moto.start()
        host, port = moto.get_host_and_port()
        print(f"S3 for the drift Job: moto (no MinIO at {minio})")
        try:
            yield f"http://{host}:{port}"
        finally:
            moto.stop()
        return
    with tempfile.TemporaryDirectory(prefix="bench-minio-") as data, socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        env = dict(os.environ, MINIO_ROOT_USER=KEY, MINIO_ROOT_PASSWORD=SECRET, MINIO_BROWSER="off")
        server = subprocess.Popen(
            [str(minio), "server", data, "--address", f"127.0.0.1:{port}", "--quiet"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            _wait_live(f"http://127.0.0.1:{port}/minio/health/live", server)
            print("S3 for the drift Job: MinIO")
            yield f"http://127.0.0.1:{port}"
        finally:
            server.terminate()
            server.wait(30)


def _wait_live(url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"MinIO exited with code {server.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"MinIO did not answer {url} in 60 s")


def _job(
    data: dict[str, Any], parts: int, endpoint: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    import boto3

    env = dict(
        os.environ,
        AWS_ACCESS_KEY_ID=KEY,
        AWS_SECRET_ACCESS_KEY=SECRET,
        AWS_DEFAULT_REGION="us-east-1",
        TRAILBOSS_S3_ENDPOINT_URL=endpoint,
    )
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=KEY,
        aws_secret_access_key=SECRET,
    )
    client.create_bucket(Bucket="bench")
    reference = {n: data["ref"][n] for n in data["numeric"]} | data["ref_cat"]
    sink = pa.BufferOutputStream()
    pq.write_table(pa.table(reference), sink)
    client.put_object(Bucket="bench", Key="reference.parquet", Body=sink.getvalue().to_pybytes())
    _upload_logs(client, data, parts)
    everything = data["numeric"] + data["categorical"]
    runs = []
    for checked in (everything[:5], everything):
        excluded = [f"--exclude={n}" for n in everything if n not in checked]
        profile_uri = f"s3://bench/profile-{len(checked)}"
        seconds_p, rss_p, _ = _run_measured(
            [
                "profile",
                "--reference=s3://bench/reference.parquet",
                f"--output={profile_uri}",
                *excluded,
            ],
            env,
        )
        seconds, rss, out = _run_measured(_drift_argv(profile_uri), env)
        whole = json.loads(out)
        drift = whole["drift"]
        runs.append(
            {
                "features": len(checked),
                "profile_s": seconds_p,
                "profile_mib": rss_p,
                "drift_s": seconds,
                "drift_mib": rss,
                "window_rows": drift["windowRows"],
                "drifted": drift["driftedFeatures"],
            }
        )
    shards = sharded(env, profile_uri, whole)
    return runs, shards
