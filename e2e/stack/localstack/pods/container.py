"""One pod's container as the runner keeps it: process, restarts, probes, readiness."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .environment import POD_UID_ENV
from .kube import Pod
from .probes import ProbeSpec, ProbeState, parse_probe
from .restarts import BACKOFF_RESET_AFTER, backoff_seconds, exit_code, should_restart
from .status import ContainerReport, now, tail, terminated

KILL_GRACE = 5.0


@dataclass
class Container:
    """The first container of a pod the runner owns; its state is the pod's status."""

    pod: Pod
    ip: str
    netns: str | None
    argv: list[str]
    env: dict[str, str]
    workdir: str
    log_path: Path
    pod_started: str = field(default_factory=now)
    popen: subprocess.Popen[bytes] | None = None
    started_at: str = ""
    started_mono: float = 0.0
    restarts: int = 0
    crashes_in_a_row: int = 0
    last_terminated: dict[str, Any] = field(default_factory=dict)
    final: dict[str, Any] = field(default_factory=dict)  # set when no restart follows
    restart_at: float = 0.0
    backoff: float = 0.0
    readiness: ProbeState | None = None
    liveness: ProbeState | None = None
    ready_since: str = ""
    stopping_since: float | None = None  # when the runner saw the pod deleted

    @property
    def spec(self) -> dict[str, Any]:
        return dict(self.pod["spec"]["containers"][0])

    def drained(self) -> bool:
        """Whether a deleted pod may stop now. Like a kubelet, the runner honours
        `lifecycle.preStop.sleep`: the process keeps answering while the endpoint's
        removal reaches kube-proxy, so no request is dropped."""
        sleep = ((self.spec.get("lifecycle") or {}).get("preStop") or {}).get("sleep") or {}
        seconds = float(sleep.get("seconds") or 0)
        if self.stopping_since is None:
            self.stopping_since = time.monotonic()
        return time.monotonic() - self.stopping_since >= seconds

    def probe_specs(self) -> tuple[ProbeSpec | None, ProbeSpec | None]:
        c = self.spec
        return (
            parse_probe(c.get("readinessProbe"), c, "readinessProbe"),
            parse_probe(c.get("livenessProbe"), c, "livenessProbe"),
        )

    def launch(self) -> None:
        """Start the process (in the pod's namespace, if it has one)."""
        argv = ["ip", "netns", "exec", self.netns, *self.argv] if self.netns else self.argv
        readiness, liveness = self.probe_specs()
        with self.log_path.open("ab") as out:
            self.popen = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.workdir,
                start_new_session=True,
            )
        if self.last_terminated:
            self.restarts += 1
        self.started_at, self.started_mono = now(), time.monotonic()
        # Not ready until the readiness probe passes; alive until liveness fails.
        self.readiness = (
            ProbeState.begin(readiness, self.started_mono, False) if readiness else None
        )
        self.liveness = ProbeState.begin(liveness, self.started_mono, True) if liveness else None
        self.ready_since = self.started_at

    @property
    def ready(self) -> bool:
        running = self.popen is not None and self.popen.poll() is None
        return running and (self.readiness is None or self.readiness.result)

    def exited(self) -> None:
        """The process ended: record it, then restart it or finish the pod."""
        assert self.popen is not None
        code = exit_code(self.popen.returncode)
        if time.monotonic() - self.started_mono > BACKOFF_RESET_AFTER:
            self.crashes_in_a_row = 0
        self.crashes_in_a_row += 1
        message = tail(self.log_path) if code != 0 else ""
        state = terminated(code, "Completed" if code == 0 else "Error", self.started_at, message)
        state["terminated"]["containerID"] = f"podrunner://{self.popen.pid}"
        self.popen, self.readiness, self.liveness = None, None, None
        self.ready_since = now()
        if should_restart(self.pod["spec"].get("restartPolicy", "Always"), code):
            self.last_terminated = state
            self.backoff = backoff_seconds(self.crashes_in_a_row)
            self.restart_at = time.monotonic() + self.backoff
        else:
            self.final = state

    def report(self) -> ContainerReport:
        """The container's status: running, back-off, or terminated for good."""
        name = self.spec["name"]
        pid = self.popen.pid if self.popen else 0
        if self.final:
            state = self.final
        elif self.popen is not None:
            state = {"running": {"startedAt": self.started_at}}
        else:
            message = f"back-off {self.backoff:.0f}s restarting failed container={name}"
            state = {"waiting": {"reason": "CrashLoopBackOff", "message": message}}
        return ContainerReport(
            state=state,
            ready=self.ready,
            started=self.popen is not None,
            restart_count=self.restarts,
            last_state=self.last_terminated,
            pid=pid,
        )

    def kill(self) -> None:
        """SIGTERM the process group, SIGKILL after a grace period."""
        if self.popen is None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, sig)
            try:
                self.popen.wait(KILL_GRACE)
                return
            except subprocess.TimeoutExpired:
                continue


def kill_orphan(pod: Pod) -> None:
    """Kill the process an earlier runner started for this pod, if it still runs."""
    statuses = pod.get("status", {}).get("containerStatuses") or [{}]
    found = re.fullmatch(r"podrunner://(\d+)", statuses[0].get("containerID", ""))
    if not found:
        return
    pid = int(found[1])
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return
    if f"{POD_UID_ENV}={pod['metadata']['uid']}".encode() in environ:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
