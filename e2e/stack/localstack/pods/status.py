"""Pod status as a kubelet reports it, built from what the runner knows of a pod."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .kube import Pod

MESSAGE_LINES, MESSAGE_BYTES = 80, 4096  # the kubelet's limits for a log-tail message


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class ContainerReport:
    """What the status says about the (first) container; the others mirror it."""

    state: dict[str, Any]
    ready: bool = False
    started: bool = False
    restart_count: int = 0
    last_state: dict[str, Any] = field(default_factory=dict)
    pid: int = 0


STATES = ("waiting", "running", "terminated")


def _whole(state: dict[str, Any]) -> dict[str, Any]:
    """A container state with the other two kinds null: status writes are strategic
    merge patches, which would otherwise keep `running` next to a new `waiting`."""
    return {kind: state.get(kind) for kind in STATES} if state else {}


def container_statuses(pod: Pod, report: ContainerReport) -> list[dict[str, Any]]:
    ident = {"containerID": f"podrunner://{report.pid}"} if report.pid else {}
    return [
        {
            "name": c["name"],
            "image": c.get("image", ""),
            "imageID": "",
            **ident,
            "ready": report.ready,
            "started": report.started,
            "restartCount": report.restart_count,
            "state": _whole(report.state),
            "lastState": _whole(report.last_state),
        }
        for c in pod["spec"]["containers"]
    ]


def waiting_status(pod: Pod, reason: str, message: str) -> dict[str, Any]:
    report = ContainerReport({"waiting": {"reason": reason, "message": message}})
    return {"status": {"containerStatuses": container_statuses(pod, report)}}


def _addresses(pod_ip: str) -> dict[str, Any]:
    return {
        "hostIP": "127.0.0.1",
        "hostIPs": [{"ip": "127.0.0.1"}],
        "podIP": pod_ip,
        "podIPs": [{"ip": pod_ip}],
    }


def running_status(
    pod: Pod, pod_ip: str, started: str, report: ContainerReport, ready_since: str
) -> dict[str, Any]:
    """Phase Running; Ready follows the readiness probe (or the process, without one)."""
    ready = "True" if report.ready else "False"
    conditions = [
        {"type": t, "status": "True", "lastTransitionTime": started}
        for t in ("PodReadyToStartContainers", "Initialized")
    ] + [
        {"type": t, "status": ready, "lastTransitionTime": ready_since}
        for t in ("ContainersReady", "Ready")
    ]
    return {
        "status": {
            "phase": "Running",
            "startTime": started,
            **_addresses(pod_ip),
            "conditions": conditions,
            "containerStatuses": container_statuses(pod, report),
        }
    }


def terminated(code: int, reason: str, started: str, message: str = "") -> dict[str, Any]:
    state: dict[str, Any] = {
        "exitCode": code,
        "reason": reason,
        "startedAt": started,
        "finishedAt": now(),
    }
    if message:
        state["message"] = message
    return {"terminated": state}


def finished_status(pod: Pod, pod_ip: str, report: ContainerReport) -> dict[str, Any]:
    """Phase Succeeded or Failed by the last exit code; no restart follows."""
    code = report.state["terminated"]["exitCode"]
    finished = report.state["terminated"]["finishedAt"]
    phase_reason = "PodCompleted" if code == 0 else "PodFailed"
    return {
        "status": {
            "phase": "Succeeded" if code == 0 else "Failed",
            **_addresses(pod_ip),
            "conditions": [
                {
                    "type": t,
                    "status": "False",
                    "reason": phase_reason,
                    "lastTransitionTime": finished,
                }
                for t in ("ContainersReady", "Ready")
            ],
            "containerStatuses": container_statuses(pod, report),
        }
    }


def tail(path: Path) -> str:
    """The end of a container's output, for the termination message."""
    try:
        data = path.read_bytes()[-MESSAGE_BYTES:]
    except OSError:
        return ""
    lines = data.decode(errors="replace").splitlines()[-MESSAGE_LINES:]
    return "\n".join(lines)[-MESSAGE_BYTES:]
