"""Benchmark: does a canary rollout keep to its planned pauses, and how soon after
its analysis fails does a bad version lose its traffic?

One run on the local stack, with the benchmark's own operator and namespace (both
gone at the end). A Deployment of 4 replicas under the replica-ratio router
serves v1; a bounded client sends about 10 requests/s through the Service's
ClusterIP and stops by itself; a thread reads the Deployment's status every 0.2 s.

1. A good rollout v1 -> v2, steps 25 %/30 s and 50 %/30 s (then 100 %, no
   pause), gated by a Prometheus error-rate query every 10 s. For each step:
   how long its pods took to be ready (the pause begins then), and the pause
   as held, from the first status showing the pods ready (pauseStartedAt set)
   to the first showing the next step or the promotion, against the planned
   pause (ratio, overshoot in seconds and in analysis intervals), and the same
   from the operator's own pauseStartedAt/promotedAt. Requests sent and failed from
   the change to 5 s (the scale-down delay) after the promotion are reported,
   not asserted.
2. A bad v3 that fails 60 % of its requests, failureLimit 1: from the
   measurement that aborted it (its measuredAt in status.analysis; when the
   phase turned Degraded if none is recorded) to traffic back on stable, seen
   by status (the canary gone) and by the client (its last answer from v3, a
   prediction or an injected fault), in seconds and in analysis intervals.

The operator stamps whole seconds (truncated), so measuredAt may be up to 1 s
before the measurement and figures counted from it up to 1 s long.

    make bench                                  # after python -m bench.burst
    .venv/bin/python -m bench.rollout
"""

from __future__ import annotations

import collections
import datetime as dt
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

from e2e.cluster import Cluster, Operator, local_stack_env, stack_command, unique, wait_for
from e2e.loop import error_rate
from e2e.serving import Answer, Load, model_version, publish_model
from e2e.session import S3_SECRET, operator_env
from e2e.traffic import check_local
from kubernetes import client

DEPLOYMENT = "churn"
REPLICAS = 4
STEPS = ((25, 30), (50, 30))
"""Canary steps: (weight %, pause seconds); the operator adds 100 % without a pause."""
INTERVAL = 10
"""Seconds between analysis measurements."""
SCALE_DOWN_DELAY = 5
POLL = 0.2
RATE = 10.0
CLIENT_SECONDS = 600.0
"""The client stops by itself after this many seconds (and RATE times as many requests)."""
TAIL = 3 * INTERVAL
"""Seconds the client keeps sending after the abort, to see v3's last answer."""
FAULT = "deliberate fault"
"""In the body of each error v3 injects: a failed answer that came from v3."""
WALL = time.time() - time.monotonic()
"""Adds to a monotonic time to give the wall clock the operator stamps status with."""


@dataclass
class Sample:
    at: float
    status: dict[str, Any]


@dataclass
class StatusPoller:
    """Reads the Deployment's status every POLL seconds from a thread."""

    cluster: Cluster
    namespace: str
    samples: list[Sample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> StatusPoller:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.wait(POLL):
            before = time.monotonic()
            try:
                status = self.cluster.status(self.namespace, "deployments", DEPLOYMENT)
            except Exception:  # an API hiccup is a gap in the samples, not the end of them
                continue
            self.samples.append(Sample((before + time.monotonic()) / 2, status))

    def since(self, start: float) -> list[Sample]:
        return [s for s in list(self.samples) if s.at >= start]

    def largest_gap(self) -> float:
        return max((b.at - a.at for a, b in pairwise(list(self.samples))), default=0.0)


# ------------------------------------------------------------------------ the setup


def new_namespace(cluster: Cluster) -> str:
    """A fresh namespace with the S3 credentials the model servers read."""
    name = unique("bench-rollout")
    cluster.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    keys = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    secret = client.V1Secret(
        metadata=client.V1ObjectMeta(name=S3_SECRET),
        string_data={k: cluster.env[k] for k in keys},
    )
    cluster.core.create_namespaced_secret(name, secret)
    wait_for(
        f"the default service account in {name}",
        lambda: cluster.core.list_namespaced_service_account(name).items,
        timeout=30,
    )
    return name


def publish(cluster: Cluster, namespace: str, model: str) -> None:
    """Good v1 and v2, and v3 failing 60 % of its requests; all Validated."""
    for name, error_share in (("v1", 0.0), ("v2", 0.0), ("v3", 0.6)):
        uri = f"s3://mlflow/bench/{namespace}/{name}/model"
        publish_model(cluster.env, uri, error_share)
        cluster.create(namespace, model_version(name, model, uri))
    for name in ("v1", "v2", "v3"):
        cluster.wait_phase(namespace, "modelversions", name, {"Validated"}, 180)


def deployment(model: str, prometheus: str) -> dict[str, Any]:
    analysis = {
        "prometheusUrl": prometheus,
        "interval": f"{INTERVAL}s",
        "failureLimit": 1,
        "queries": [{"name": "error-rate", "query": error_rate(model), "max": 0.05}],
    }
    rollout = {
        "steps": [{"weight": w, "pause": f"{p}s"} for w, p in STEPS],
        "scaleDownDelay": f"{SCALE_DOWN_DELAY}s",
        "analysis": analysis,
    }
    return {
        "apiVersion": "trailboss.dev/v1alpha1",
        "kind": "Deployment",
        "metadata": {"name": DEPLOYMENT},
        "spec": {"model": model, "modelVersion": "v1", "replicas": REPLICAS, "rollout": rollout},
    }


def infer_url(cluster: Cluster, namespace: str, model: str) -> str:
    service = cluster.core.read_namespaced_service(DEPLOYMENT, namespace)
    url = f"http://{service.spec.cluster_ip}:8080/v2/models/{model}/infer"
    check_local(url)  # the stack's Service range: the requests stay on this machine
    return url


def set_version(cluster: Cluster, namespace: str, version: str) -> float:
    """Pin another version, as a Git commit would, and wait until the operator saw it.
    Returns when the change was made."""
    patch = f'{{"spec":{{"modelVersion":"{version}"}}}}'
    changed = time.monotonic()  # before: the operator may answer before kubectl exits
    target = ("-n", namespace, "patch", "deployments.trailboss.dev", DEPLOYMENT)
    cluster.kubectl(*target, "--type=merge", "-p", patch)
    wait_for(
        f"the operator to target {version}",
        lambda: (
            cluster.status(namespace, "deployments", DEPLOYMENT).get("targetVersion") == version
        ),
        60,
    )
    return changed


def wait_end(cluster: Cluster, namespace: str, version: str) -> dict[str, Any]:
    """The status once the rollout of ``version`` is over: promoted or aborted."""

    def ended() -> dict[str, Any] | None:
        status = cluster.status(namespace, "deployments", DEPLOYMENT)
        over = version in (status.get("stableVersion"), status.get("abortedVersion"))
        return status if over and not status.get("canaryVersion") else None

    try:
        return wait_for(f"the rollout of {version} to end", ended, 300)
    except AssertionError as error:
        status = cluster.status(namespace, "deployments", DEPLOYMENT)
        raise AssertionError(f"{error}; status: {status}") from None


# ------------------------------------------------------------------ the good rollout


@dataclass
class Step:
    index: int
    weight: int
    planned: float
    seen: float
    """When a poll first showed this step."""
    ready: float
    """When a poll first showed the step's pods ready (pauseStartedAt set)."""
    ended: float
    """When a poll first showed the next step or the promotion."""
    stamped: float | None
    """The same duration from the operator's own stamps (whole seconds)."""
    marks: str
    """The first letter of the phase of each of the step's measurements."""

    @property
    def starting(self) -> float:
        """Seconds the step's pods took to be ready; the pause counts from then."""
        return self.ready - self.seen

    @property
    def actual(self) -> float:
        """The pause as held: from the pods ready to the next step."""
        return self.ended - self.ready

    @property
    def overshoot(self) -> float:
        return self.actual - self.planned


def firsts(samples: list[Sample], version: str) -> list[Sample]:
    """The first poll of each step of ``version``'s canary, then the first after its promotion."""
    found: list[Sample] = []
    last: object = None
    for sample in samples:
        status = sample.status
        if status.get("canaryVersion") == version:
            key: object = status.get("currentStep")
        elif status.get("stableVersion") == version and found:
            found.append(sample)
            break
        else:
            continue
        if key != last:
            found.append(sample)
            last = key
    return found


def stamp(status: dict[str, Any], version: str, field: str) -> float | None:
    """When the operator says this state began: ``field`` of the canary's step
    (its start, or its pause's start), or the promotion."""
    if status.get("canaryVersion") == version:
        text = status.get(field)
    else:
        promoted = [p for p in status.get("promoted") or [] if p["version"] == version]
        text = promoted[-1]["promotedAt"] if promoted else None
    return dt.datetime.fromisoformat(text).timestamp() if text else None


def pods_ready(samples: list[Sample], a: Sample, b: Sample) -> Sample:
    """The first poll of step ``a`` (before ``b``) with its pause begun; ``b`` if none."""
    step = a.status["currentStep"]
    during = [s for s in samples if a.at <= s.at < b.at and s.status.get("currentStep") == step]
    return next((s for s in during if s.status.get("pauseStartedAt")), b)


def steps(samples: list[Sample], final: dict[str, Any], version: str) -> list[Step]:
    analysis = [m for m in final.get("analysis") or [] if m.get("version") == version]
    found: list[Step] = []
    for a, b in pairwise(firsts(samples, version)):
        index, weight = a.status["currentStep"], a.status["canaryWeight"]
        ready = pods_ready(samples, a, b)
        start = stamp(ready.status, version, "pauseStartedAt")
        end = stamp(b.status, version, "stepStartedAt")
        marks = "".join(m["phase"][0] for m in analysis if m.get("step") == index)
        planned = STEPS[index][1] if index < len(STEPS) else 0
        stamped = end - start if start is not None and end is not None else None
        found.append(Step(index, weight, planned, a.at, ready.at, b.at, stamped, marks))
    return found


def print_steps(found: list[Step], answers: list[Answer], largest_gap: float) -> None:
    print(
        f"Good rollout v1 -> v2: {REPLICAS} replicas, replica-ratio router, analysis every "
        f"{INTERVAL} s; status polled every {POLL:g} s (largest gap {largest_gap:.2f} s)\n"
    )
    print(
        "step  weight  pods s  planned s  actual s  status s  actual/planned  overshoot s"
        "  overshoot/interval  measurements"
    )
    for s in found:
        ratio = f"{s.actual / s.planned:13.2f}x" if s.planned else f"{'-':>14}"
        stamped = f"{s.stamped:8.0f}" if s.stamped is not None else f"{'-':>8}"
        print(
            f"{s.index + 1:<4}  {s.weight:5d}%  {s.starting:6.1f}  {s.planned:9.1f}"
            f"  {s.actual:8.1f}  {stamped}"
            f"  {ratio}  {s.overshoot:+11.1f}  {s.overshoot / INTERVAL:18.2f}  {s.marks}"
        )
    print("pods s: from the step's weight set to its pods ready, when its pause begins")
    print("actual s: the pause as held, from the pods ready to the next step or the promotion")
    print(
        "status s: the same from the operator's pauseStartedAt to the next stepStartedAt or "
        "promotedAt (whole seconds)"
    )
    print("measurements: S(uccessful), F(ailed), I(nconclusive), E(rror), oldest first")
    if found:
        total = found[-1].ended - found[0].seen
        print(f"whole rollout {total:.1f} s for {sum(p for _, p in STEPS)} s of pauses")
    print_requests(f"from the change to v2 to {SCALE_DOWN_DELAY} s after its promotion", answers)


# -------------------------------------------------------------------- the bad version


@dataclass
class Abort:
    measured: float | None
    """measuredAt of the measurement that aborted the rollout (whole seconds)."""
    value: float | None
    degraded: float | None
    """When a poll first showed the phase Degraded with v3 aborted."""
    gone: float | None
    """When a poll first showed no v3 canary, after one had shown it."""
    last_answer: float | None
    """The client's last answer from v3: a prediction, or one of its injected faults."""
    watched: float
    """The client's last answer of all: v3 answering until about then is a lower bound."""

    @property
    def reference(self) -> float | None:
        return self.measured if self.measured is not None else self.degraded


def first_at(samples: list[Sample], holds: Callable[[dict[str, Any]], bool]) -> float | None:
    return next((s.at for s in samples if holds(s.status)), None)


def abort(samples: list[Sample], final: dict[str, Any], answers: list[Answer]) -> Abort:
    version, degraded = "v3", ("Degraded", "v3")
    failed = [
        m
        for m in final.get("analysis") or []
        if m.get("version") == version and m.get("phase") == "Failed"
    ]
    aborting = failed[-1] if failed else {}
    measured_at = aborting.get("measuredAt")
    measured = dt.datetime.fromisoformat(measured_at).timestamp() - WALL if measured_at else None
    canary = first_at(samples, lambda st: st.get("canaryVersion") == version)
    after = [s for s in samples if canary is not None and s.at > canary]
    from_v3 = [a.at for a in answers if a.version == version or FAULT in (a.error or "")]
    return Abort(
        measured,
        aborting.get("value"),
        first_at(samples, lambda st: (st.get("phase"), st.get("abortedVersion")) == degraded),
        first_at(
            after, lambda st: st.get("canaryVersion") != version and not st.get("canaryWeight")
        ),
        max(from_v3, default=None),
        max((a.at for a in answers), default=0.0),
    )


def print_abort(found: Abort, answers: list[Answer]) -> None:
    print(
        "\nBad version v3 (60 % errors), failureLimit 1: from the aborting measurement "
        "to traffic back on stable\n"
    )
    reference = found.reference
    if reference is None:
        print("v3 was not aborted: no failed measurement, no Degraded phase")
        return
    measured = found.measured is not None
    what = "measuredAt of the aborting measurement" if measured else "phase Degraded seen"
    value = f" (error-rate {found.value:.3f})" if found.value is not None else ""
    print(f"counted from: {what}{value}")
    print(f"{'':<48} {'after s':>8}  {'intervals':>9}")
    for name, at in (
        ("phase Degraded seen in status", found.degraded),
        ("canary gone from status (canaryWeight unset)", found.gone),
        ("last answer from v3 (client)", found.last_answer),
    ):
        after = (
            f"{at - reference:+8.1f}  {(at - reference) / INTERVAL:9.2f}"
            if at is not None
            else "   never"
        )
        print(f"{name:<48} {after}")
    if found.last_answer is not None and found.last_answer > found.watched - 1:
        print(f"v3 still answered when the client stopped, {TAIL} s after the abort: a lower bound")
    faults = sum(FAULT in (a.error or "") for a in answers)
    print_requests("from the change to v3 on", answers, f", {faults} of them v3's injected faults")


def print_requests(when: str, answers: list[Answer], note: str = "") -> None:
    failed = [a for a in answers if not a.ok]
    print(f"client {when}: {len(answers)} requests, {len(failed)} failed{note}")
    for reason, count in collections.Counter(a.error for a in failed).most_common(5):
        print(f"    {count} x {reason}")


def print_ratios(found: list[Step], aborted: Abort) -> None:
    print(f"\nratios (analysis interval {INTERVAL} s)")
    for s in found:
        planned = f"actual/planned {s.actual / s.planned:5.2f}x" if s.planned else ""
        label = f"step {s.index + 1} ({s.weight}%)"
        print(f"{label:<26}{planned:<23}overshoot {s.overshoot / INTERVAL:5.2f} intervals")
    reference = aborted.reference
    for name, at in (("status", aborted.gone), ("client", aborted.last_answer)):
        if reference is not None and at is not None:
            label = f"abort to stable ({name})"
            print(f"{label:<49}{(at - reference) / INTERVAL:15.2f} intervals")


# ------------------------------------------------------------------------- the run


def run(cluster: Cluster, namespace: str) -> int:
    prometheus = cluster.env.get("TRAILBOSS_PROMETHEUS_URL")
    if not prometheus:
        print("the stack exports no TRAILBOSS_PROMETHEUS_URL: no Prometheus to analyse")
        return 1
    model = namespace
    publish(cluster, namespace, model)
    cluster.create(namespace, deployment(model, prometheus))
    cluster.wait_phase(namespace, "deployments", DEPLOYMENT, {"Healthy"}, 240)
    url = infer_url(cluster, namespace, model)
    limit = int(RATE * CLIENT_SECONDS)
    with (
        Load(url, per_second=RATE, limit=limit, deadline=CLIENT_SECONDS) as load,
        StatusPoller(cluster, namespace) as poller,
    ):
        wait_for("an answer from v1", lambda: any(a.version == "v1" for a in load.since(0)), 60)
        good_start = set_version(cluster, namespace, "v2")
        good_final = wait_end(cluster, namespace, "v2")
        found = steps(poller.since(good_start), good_final, "v2")
        good_end = (found[-1].ended if found else time.monotonic()) + SCALE_DOWN_DELAY
        time.sleep(max(0.0, good_end - time.monotonic()))
        bad_start = set_version(cluster, namespace, "v3")
        bad_final = wait_end(cluster, namespace, "v3")
        time.sleep(TAIL)
    aborted = abort(poller.since(bad_start), bad_final, load.since(bad_start))
    print_steps(found, load.since(good_start, good_end), poller.largest_gap())
    print_abort(aborted, load.since(bad_start))
    print_ratios(found, aborted)
    promoted = good_final.get("stableVersion") == "v2"
    return 0 if promoted and bad_final.get("abortedVersion") == "v3" else 1


def main() -> int:
    if os.environ.get("TRAILBOSS_E2E_KUBECONFIG"):
        print("rollout timing: skipped, it sends requests to ClusterIPs of the local stack only")
        return 0
    up = stack_command("up")
    if up.returncode != 0:
        print(up.stdout, up.stderr, file=sys.stderr)
        return 1
    stack_command("stop", "operator")  # the benchmark runs its own
    env = local_stack_env()
    cluster = Cluster(env=env, kubectl_bin=str(Path(env["TRAILBOSS_STACK_BIN"]) / "kubectl"))
    cluster.install_crds()
    namespace = new_namespace(cluster)
    logs = Path(tempfile.mkdtemp(prefix="trailboss-bench-rollout-"))
    operator = Operator(operator_env(env), logs)
    try:
        operator.start()
        return run(cluster, namespace)
    finally:
        # Deleted while the operator still runs, so it releases its finalizers.
        cluster.core.delete_namespace(namespace)
        wait_for(
            f"namespace {namespace} to be deleted",
            lambda: namespace not in {n.metadata.name for n in cluster.core.list_namespace().items},
            timeout=300,
            interval=1,
        )
        operator.stop()
        print(f"\noperator log: {logs}")


if __name__ == "__main__":
    raise SystemExit(main())
