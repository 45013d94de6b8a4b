"""Runs pods labelled ``trailboss.dev/run-locally=true`` as local processes.

kwok fakes the status of the pods on its fake nodes but runs nothing. For the
pods that must really run, this runner takes the place of a kubelet:

* every half second it lists the labelled pods bound to fake nodes
  (level-based: a missed event is picked up by the next list);
* a new pod is claimed with an annotation first, so a restarted runner never
  runs it twice; then its first container's ``command`` + ``args`` run as a
  local process with the container's environment (see environment.py);
* a pod that serves (its container declares ports or probes) gets its own
  network namespace with an address of the pod range, wired to the stack's
  bridge: ``podIP:port`` answers as in a cluster (see netns.py). Other pods
  (training jobs) share the host's network, as with ``hostNetwork``: they
  reach MLflow and S3 on loopback;
* httpGet/tcpSocket readiness and liveness probes run with the kubelet's
  timing and thresholds; readiness decides the pod's Ready condition (and so
  the EndpointSlices), a failed liveness probe restarts the container;
* an exited container is restarted or the pod finished by its
  ``restartPolicy``, with restart count, last state and CrashLoopBackOff;
* a pod being deleted has its processes killed and namespace removed, and is
  then removed with a grace period of 0, as a kubelet does.

Limits: only the first container runs (the others mirror its state); no
volumes, no image (the command must exist on this machine), no exec probes.
"""

from __future__ import annotations

import logging
import time
import urllib.error
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from . import netns
from .container import Container, kill_orphan
from .environment import IMAGE_WORKDIR, command_line, container_env
from .kube import Kube, Pod
from .probes import ProbeState, perform
from .restarts import exit_code
from .status import ContainerReport, finished_status, running_status, terminated, waiting_status
from .status import now as timestamp

CLAIMED = "podrunner.trailboss.dev/claimed-at"
HOST_IP = "127.0.0.1"

log = logging.getLogger("podrunner")


def serves(pod: Pod) -> bool:
    """A pod with ports or probes gets its own network namespace (unless hostNetwork)."""
    c = pod["spec"]["containers"][0]
    declared = bool(c.get("ports") or c.get("readinessProbe") or c.get("livenessProbe"))
    return declared and not pod["spec"].get("hostNetwork")


def guarded(pod: Pod, action: Callable[..., Any], *args: Any) -> None:
    """One pod's API error must not hold up the others; the next pass retries it."""
    try:
        action(*args)
    except (OSError, ValueError) as e:  # urllib's errors are OSErrors
        m = pod["metadata"]
        log.warning(
            "%s/%s: %s failed, will retry: %s", m["namespace"], m["name"], action.__name__, e
        )


class Runner:
    def __init__(self, kube: Kube, state_dir: Path, pod_network: bool) -> None:
        self.kube = kube
        self.pod_network = pod_network
        self.logs = state_dir / "podlogs"
        self.work = state_dir / "podwork"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.containers: dict[str, Container] = {}  # by pod UID
        self.reported: dict[str, dict[str, Any]] = {}  # the last status written, by pod UID
        self.waiting: dict[str, str] = {}  # pod UID -> why it cannot start yet
        self.last_ip = ""  # the last pod address handed out
        self.probes = ThreadPoolExecutor(max_workers=8, thread_name_prefix="probe")

    def sync(self) -> None:
        """One level-based pass over every labelled pod on a fake node."""
        fake = self.kube.fake_nodes()
        pods = {
            p["metadata"]["uid"]: p for p in self.kube.pods() if p["spec"].get("nodeName") in fake
        }
        self.waiting = {uid: why for uid, why in self.waiting.items() if uid in pods}
        for uid, c in list(self.containers.items()):
            pod = pods.get(uid)
            if pod is None or pod["metadata"].get("deletionTimestamp"):
                if pod is None or c.drained():
                    guarded(c.pod, self.remove, c)
            else:
                self.tend(c)
        for uid, pod in pods.items():
            if uid not in self.containers:
                self.adopt_or_start(pod)
        self.run_probes()
        for c in list(self.containers.values()):
            guarded(c.pod, self.write_status, c)

    def adopt_or_start(self, pod: Pod) -> None:
        meta, phase = pod["metadata"], pod.get("status", {}).get("phase")
        if meta.get("deletionTimestamp"):
            if CLAIMED in (meta.get("annotations") or {}) and phase not in ("Succeeded", "Failed"):
                guarded(pod, self.finish_deleted, pod)
            guarded(pod, self.kube.delete_now, pod)
        elif CLAIMED not in (meta.get("annotations") or {}):
            guarded(pod, self.start, pod)
        elif phase not in ("Succeeded", "Failed"):
            guarded(pod, self.orphaned, pod)

    def tend(self, c: Container) -> None:
        if c.final:
            return
        if c.popen is not None and c.popen.poll() is not None:
            m = c.pod["metadata"]
            log.info("%s/%s: exited with %s", m["namespace"], m["name"], c.popen.returncode)
            c.exited()
            if c.final and c.netns:
                netns.delete(m["uid"])
        if c.popen is None and not c.final and time.monotonic() >= c.restart_at:
            c.launch()
            log.info(
                "%s/%s: restarted (%d)",
                c.pod["metadata"]["namespace"],
                c.pod["metadata"]["name"],
                c.restarts,
            )

    def start(self, pod: Pod) -> None:
        m = pod["metadata"]
        container = pod["spec"]["containers"][0]
        address = HOST_IP
        if self.gets_netns(pod):
            address = self.last_ip = netns.allocate_ip(self.addresses_in_use(), self.last_ip)
        try:
            pod_env = container_env(self.kube, pod, container, address)
        except (OSError, ValueError) as e:
            self.wait_for_config(pod, str(e))
            return
        self.waiting.pop(m["uid"], None)
        # Claim first: if we die between claim and start, the pod is failed, not rerun.
        self.kube.patch(pod, {"metadata": {"annotations": {CLAIMED: timestamp()}}})
        log_path = self.logs / f"{m['namespace']}_{m['name']}.log"
        try:
            c = self.prepare(pod, container, pod_env, address, log_path)
            c.launch()
        except (OSError, ValueError) as e:
            self.start_failed(pod, address, log_path, str(e))
            return
        assert c.popen is not None
        log.info(
            "%s/%s: started pid %d at %s: %s",
            m["namespace"],
            m["name"],
            c.popen.pid,
            address,
            " ".join(c.argv)[:160],
        )
        self.containers[m["uid"]] = c

    def gets_netns(self, pod: Pod) -> bool:
        return self.pod_network and serves(pod)

    def addresses_in_use(self) -> set[str]:
        return {c.ip for c in self.containers.values()}

    def prepare(
        self,
        pod: Pod,
        container: dict[str, Any],
        pod_env: dict[str, str],
        address: str,
        log_path: Path,
    ) -> Container:
        m = pod["metadata"]
        argv, env = command_line(pod, container, pod_env)
        scratch = self.work / f"{m['namespace']}_{m['name']}"
        scratch.mkdir(parents=True, exist_ok=True)
        env.setdefault("TMPDIR", str(scratch))
        workdir = container.get("workingDir") or str(IMAGE_WORKDIR)
        c = Container(pod, address, None, argv, env, workdir, log_path)
        c.probe_specs()  # an unsupported probe fails the start, with its reason
        if self.gets_netns(pod):
            c.netns = netns.create(m["uid"], address)
        return c

    def wait_for_config(self, pod: Pod, why: str) -> None:
        """Like a kubelet: wait (CreateContainerConfigError) until the Secret or ConfigMap
        appears, retrying on every pass."""
        m = pod["metadata"]
        if self.waiting.get(m["uid"]) != why:
            log.warning("%s/%s: waiting for its environment: %s", m["namespace"], m["name"], why)
            self.kube.patch(pod, waiting_status(pod, "CreateContainerConfigError", why), "/status")
        self.waiting[m["uid"]] = why

    def start_failed(self, pod: Pod, address: str, log_path: Path, why: str) -> None:
        m = pod["metadata"]
        log.warning("%s/%s: cannot start: %s", m["namespace"], m["name"], why)
        if self.gets_netns(pod):
            netns.delete(m["uid"])
        log_path.write_text(f"pod runner: cannot start: {why}\n")
        report = ContainerReport(terminated(128, "StartError", timestamp(), why))
        self.kube.patch(pod, finished_status(pod, address, report), "/status")

    def run_probes(self) -> None:
        """Every due probe of every running container, concurrently, then their effects."""
        moment = time.monotonic()
        due: list[tuple[Container, ProbeState, str]] = []
        for c in self.containers.values():
            if c.popen is None:
                continue
            for kind, probe in (("readiness", c.readiness), ("liveness", c.liveness)):
                if probe is not None and probe.due(moment):
                    due.append((c, probe, kind))
        results = list(self.probes.map(lambda d: perform(d[1].spec, d[0].ip), due))
        for (c, probe, kind), (ok, error) in zip(due, results, strict=True):
            if probe.record(ok, error, time.monotonic()):
                self.probe_changed(c, kind, probe)

    def probe_changed(self, c: Container, kind: str, probe: ProbeState) -> None:
        m = c.pod["metadata"]
        log.info(
            "%s/%s: %s probe now %s %s",
            m["namespace"],
            m["name"],
            kind,
            probe.result,
            probe.last_error,
        )
        if kind == "readiness":
            c.ready_since = timestamp()
        elif not probe.result:  # liveness failed: the kubelet kills and restarts
            c.kill()

    def write_status(self, c: Container) -> None:
        """Patch the pod's status when it differs from what was last written."""
        report = c.report()
        if c.final:
            status = finished_status(c.pod, c.ip, report)
        else:
            status = running_status(
                c.pod, c.ip, c.pod_started, report, c.ready_since or c.pod_started
            )
        uid = c.pod["metadata"]["uid"]
        if self.reported.get(uid) != status:
            patch_unless_gone(self.kube, c.pod, status)
            self.reported[uid] = status

    def remove(self, c: Container) -> None:
        """Stop a deleted pod's process and report the pod finished before the final
        delete, as a kubelet does: the Job controller releases its tracking finalizer
        only from a finished pod, and a namespace waits for that finalizer."""
        m = c.pod["metadata"]
        log.info("%s/%s: pod deleted, stopping it", m["namespace"], m["name"])
        c.kill()
        if not c.final:
            ended = c.popen is not None and c.popen.poll() is not None
            code = exit_code(c.popen.returncode) if ended and c.popen else 137
            reason, started = "Error" if code else "Completed", c.started_at or timestamp()
            state = terminated(code, reason, started, "the pod was deleted")
            status = finished_status(c.pod, c.ip, ContainerReport(state))
            patch_unless_gone(self.kube, c.pod, status)
        if c.netns:
            netns.delete(m["uid"])
        self.kube.delete_now(c.pod)
        del self.containers[m["uid"]]
        self.reported.pop(m["uid"], None)

    def orphaned(self, pod: Pod) -> None:
        """A pod an earlier runner claimed and did not finish: its exit code is lost."""
        m = pod["metadata"]
        log.warning(
            "%s/%s: claimed by an earlier runner and not finished; marking it failed",
            m["namespace"],
            m["name"],
        )
        kill_orphan(pod)
        netns.delete(m["uid"])
        started = pod.get("status", {}).get("startTime") or timestamp()
        why = "the pod runner restarted while this pod ran"
        report = ContainerReport(terminated(137, "PodRunnerRestarted", started, why))
        address = pod.get("status", {}).get("podIP") or HOST_IP
        self.kube.patch(pod, finished_status(pod, address, report), "/status")

    def finish_deleted(self, pod: Pod) -> None:
        """A deleted pod this runner no longer tracks but that still looks running (a
        status write lost to an error or a restart): report it finished, so the Job
        controller releases its tracking finalizer and the pod can go."""
        kill_orphan(pod)
        netns.delete(pod["metadata"]["uid"])
        started = pod.get("status", {}).get("startTime") or timestamp()
        report = ContainerReport(terminated(137, "Error", started, "the pod was deleted"))
        address = pod.get("status", {}).get("podIP") or HOST_IP
        patch_unless_gone(self.kube, pod, finished_status(pod, address, report))

    def stop_all(self) -> None:
        for c in self.containers.values():
            c.kill()
            if c.netns:
                netns.delete(c.pod["metadata"]["uid"])
        self.probes.shutdown(wait=False)


def patch_unless_gone(kube: Kube, pod: Pod, status: dict[str, Any]) -> None:
    """A pod deleted between the list and the status write is not an error."""
    try:
        kube.patch(pod, status, "/status")
    except urllib.error.HTTPError as e:
        if e.code != 404:
            raise
