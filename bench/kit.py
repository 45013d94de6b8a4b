"""What the operator benchmarks share: the stack, process figures from /proc,
the API server's request counts, clean namespaces between phases."""

from __future__ import annotations

import collections
import json
import math
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from e2e.cluster import (
    Cluster,
    Operator,
    local_stack_env,
    stack_command,
    stack_dir,
    unique,
    wait_for,
)
from kubernetes import client

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
STACK_PROCESSES = ("kube-apiserver", "etcd", "kube-controller-manager", "mlflow")


def start_stack() -> tuple[dict[str, str], str] | None:
    """The cluster's environment and kubectl: the local stack, started if needed
    and with its own operator stopped, or TRAILBOSS_E2E_KUBECONFIG. None (after
    printing why) when the stack does not start."""
    external = os.environ.get("TRAILBOSS_E2E_KUBECONFIG")
    if external:
        env = {k: v for k, v in os.environ.items() if k.startswith(("AWS_", "MLFLOW_"))}
        env["KUBECONFIG"] = external
        return env, "kubectl"
    up = stack_command("up")
    if up.returncode != 0:
        print(up.stdout, up.stderr, file=sys.stderr)
        return None
    stack_command("stop", "operator")  # the benchmark runs its own
    env = local_stack_env()
    return env, str(Path(env["TRAILBOSS_STACK_BIN"]) / "kubectl")


def operator_process(env: dict[str, str]) -> Operator:
    """``trailboss run -A`` as the benchmarks start it: with the stack's MLflow and
    S3, and the interpreter named by BENCH_OPERATOR_PYTHON (e.g. a venv holding
    only the runtime dependencies, as the image does) or this one."""
    return Operator(
        {**env, "TRAILBOSS_S3_ENDPOINT_URL": env.get("AWS_ENDPOINT_URL_S3", "")},
        Path(tempfile.mkdtemp(prefix="trailboss-bench-")),
        python=os.environ.get("BENCH_OPERATOR_PYTHON") or None,
    )


# Processes -------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2 :].split()  # fields from the state on


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of one process (all its threads) so far."""
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (e.g. a server's workers)."""
    children: dict[int, list[int]] = collections.defaultdict(list)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None:
                children[int(fields[1])].append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def status_mib(pid: int, field: str) -> float:
    """A size from /proc/PID/status (VmRSS now, VmHWM peak) in MiB."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return float("nan")
    for line in lines:
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def stack_pid(name: str) -> int | None:
    """The PID of a local stack component, from its pid file."""
    try:
        data = json.loads((stack_dir() / "run" / f"{name}.pid").read_text())
    except (OSError, ValueError):
        return None
    return int(data["pid"])


class CpuMeter:
    """CPU seconds of named processes (with their children) over a phase."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = dict(pids)

    @classmethod
    def for_stack(cls) -> CpuMeter:
        """This process and the local stack's servers (none outside the local stack)."""
        pids = {"bench": os.getpid()}
        if not os.environ.get("TRAILBOSS_E2E_KUBECONFIG"):
            for name in STACK_PROCESSES:
                pid = stack_pid(name)
                if pid is not None:
                    pids[name] = pid
        return cls(pids)

    def sample(self) -> dict[str, float]:
        return {
            name: sum(cpu_seconds(p) for p in descendants(pid)) for name, pid in self.pids.items()
        }


class Phases:
    """Per named phase: each process's CPU seconds and the API server's requests
    on the given resources, both counted from the start to the end of the phase."""

    def __init__(self, cluster: Cluster, meter: CpuMeter, resources: Iterable[str]) -> None:
        self.cluster = cluster
        self.meter = meter
        self.resources = tuple(resources)
        self.cpu: dict[str, dict[str, float]] = {}
        self.requests: dict[str, dict[str, int]] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        requests, cpu = api_requests(self.cluster), self.meter.sample()
        yield
        after = self.meter.sample()
        self.cpu[name] = {n: after[n] - cpu.get(n, 0.0) for n in after}
        self.requests[name] = request_delta(requests, api_requests(self.cluster), self.resources)


def print_cpu(phases: dict[str, dict[str, float]]) -> None:
    names = sorted({n for cpu in phases.values() for n in cpu}, key=_cpu_order)
    print(f"{'CPU seconds':<28}" + "".join(f"{n[:15]:>16}" for n in names))
    for phase, cpu in phases.items():
        print(f"{phase:<28}" + "".join(_cpu_cell(cpu.get(n)) for n in names))


def print_requests(phases: dict[str, dict[str, int]], per: float, unit: str) -> None:
    """API requests of some phases side by side, divided by ``per`` (e.g. per run)."""
    rows = sorted({r for counts in phases.values() for r in counts})
    if not rows:
        print("API requests: the API server's /metrics is not readable with these credentials")
        return
    print(f"{'API requests ' + unit:<34}" + "".join(f"{p[:17]:>18}" for p in phases))
    for row in rows:
        print(f"{row:<34}" + "".join(f"{c.get(row, 0) / per:18.2f}" for c in phases.values()))


def _cpu_order(name: str) -> tuple[int, str]:
    order = ("operator", "bench", *STACK_PROCESSES)
    return (order.index(name) if name in order else len(order), name)


# The API server ----------------------------------------------------------------

_REQUEST = re.compile(r"^apiserver_request_total\{(?P<labels>[^}]*)\} (?P<value>\S+)$")
_LABEL = re.compile(r'(\w+)="([^"]*)"')


def api_requests(cluster: Cluster) -> collections.Counter[tuple[str, str]] | None:
    """Requests the API server has answered, by (verb, resource[/subresource]),
    from its own /metrics; None when the credentials may not read it."""
    api = cluster.api
    request = api.param_serialize("GET", "/metrics", auth_settings=["BearerToken"])
    try:
        answer = api.call_api(*request)
    except Exception:  # best effort: the figures are extra, never a reason to stop
        return None
    if answer.status != 200:
        return None
    text = answer.read().decode()
    counts: collections.Counter[tuple[str, str]] = collections.Counter()
    for line in text.splitlines():
        found = _REQUEST.match(line)
        if not found:
            continue
        labels = dict(_LABEL.findall(found["labels"]))
        resource = labels.get("resource", "")
        if labels.get("subresource"):
            resource += "/" + labels["subresource"]
        counts[labels.get("verb", ""), resource] += int(float(found["value"]))
    return counts


def request_delta(
    before: collections.Counter[tuple[str, str]] | None,
    after: collections.Counter[tuple[str, str]] | None,
    resources: Iterable[str],
) -> dict[str, int]:
    """Requests on these resources between two readings, as "VERB resource";
    watches are left out (one per client, whatever it does)."""
    if before is None or after is None:
        return {}
    wanted = set(resources)
    delta = {
        f"{verb} {resource}": after[verb, resource] - before[verb, resource]
        for verb, resource in after
        if resource in wanted and verb != "WATCH"
    }
    return {k: v for k, v in sorted(delta.items()) if v}


# Namespaces and the operator -------------------------------------------------------


def create_namespace(cluster: Cluster, prefix: str) -> str:
    name = unique(prefix)
    cluster.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    return name


def delete_namespace(cluster: Cluster, name: str, timeout: float = 600) -> float:
    """Delete a namespace and wait until it is gone; the seconds it took. Objects
    with the operator's finalizer go only while an operator runs."""
    started = time.monotonic()
    cluster.core.delete_namespace(name)
    wait_for(
        f"namespace {name} to be deleted",
        lambda: name not in {n.metadata.name for n in cluster.core.list_namespace().items},
        timeout=timeout,
        interval=1,
    )
    return time.monotonic() - started


def metric(text: str, name: str, **labels: str) -> float | None:
    """One sample of a Prometheus text page, whatever order its labels are in;
    None when the series is not exported."""
    for line in text.splitlines():
        series, _, value = line.rpartition(" ")
        head, _, rest = series.partition("{")
        if head == name and dict(_LABEL.findall(rest)) == labels:
            return float(value)
    return None


def reconcile_total(operator: Operator) -> float:
    """Every reconcile the operator has counted, whatever its kind and result."""
    total = 0.0
    for line in operator.metrics().splitlines():
        if line.startswith("trailboss_reconcile_total{"):
            total += float(line.rpartition(" ")[2])
    return total


def wait_quiet(
    operator: Operator, quiet: float = 3.0, timeout: float = 600, interval: float = 0.5
) -> float | None:
    """Wait until the operator's reconcile count holds still for ``quiet`` seconds;
    when it last moved (time.monotonic()), or None when it never held still."""
    deadline = time.monotonic() + timeout
    last, moved = reconcile_total(operator), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(interval)
        now = reconcile_total(operator)
        if now != last:
            last, moved = now, time.monotonic()
        elif time.monotonic() - moved >= quiet:
            return moved
    return None


def cluster_objects(cluster: Cluster) -> dict[str, int]:
    """How many objects the operator would find at startup, cluster-wide."""
    found = {}
    for plural in ("trainingruns", "modelversions", "deployments"):
        listed = cluster.custom.list_cluster_custom_object("trailboss.dev", "v1alpha1", plural)
        found[plural] = len(listed["items"])  # type: ignore[index]
    found["jobs"] = len(cluster.batch.list_job_for_all_namespaces().items)
    return found


@dataclass
class Sampler:
    """Polls ``probe`` until it returns a value; a benchmark's observation point."""

    probe: Callable[[], float | None]
    interval: float = 0.25

    def until(self, what: str, timeout: float) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.probe()
            if value is not None:
                return value
            time.sleep(self.interval)
        raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def _cpu_cell(seconds: float | None) -> str:
    """A process that did not run in a phase (the operator before it starts) shows '-'."""
    missing = seconds is None or math.isnan(seconds)
    return f"{'-':>16}" if missing else f"{seconds:16.2f}"
