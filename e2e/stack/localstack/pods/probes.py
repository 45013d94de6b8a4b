"""httpGet and tcpSocket probes with the kubelet's timing and thresholds."""

from __future__ import annotations

import socket
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ProbeSpec:
    """One probe of a container, defaults as in the Pod API."""

    kind: str  # "httpGet" or "tcpSocket"
    port: int
    path: str = "/"
    scheme: str = "HTTP"
    host: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    initial_delay: float = 0.0
    period: float = 10.0
    timeout: float = 1.0
    success_threshold: int = 1
    failure_threshold: int = 3


def _port(value: int | str, container: dict[str, Any], where: str) -> int:
    if isinstance(value, int):
        return value
    if value.isdigit():
        return int(value)
    for port in container.get("ports") or []:
        if port.get("name") == value:
            return int(port["containerPort"])
    raise ValueError(f"{where}.port: no container port is named {value!r}")


def parse_probe(
    probe: dict[str, Any] | None, container: dict[str, Any], where: str
) -> ProbeSpec | None:
    """The probe of a container, or None; exec probes are not run here (ValueError)."""
    if not probe:
        return None
    kind = next((k for k in ("httpGet", "tcpSocket") if k in probe), None)
    if kind is None:
        raise ValueError(f"{where}: only httpGet and tcpSocket probes run on this stack")
    action = probe[kind]
    return ProbeSpec(
        kind=kind,
        port=_port(action["port"], container, f"{where}.{kind}"),
        path=action.get("path", "/"),
        scheme=action.get("scheme", "HTTP"),
        host=action.get("host", ""),
        headers=tuple((h["name"], h["value"]) for h in action.get("httpHeaders") or []),
        initial_delay=float(probe.get("initialDelaySeconds", 0)),
        period=float(probe.get("periodSeconds", 10)),
        timeout=float(probe.get("timeoutSeconds", 1)),
        success_threshold=int(probe.get("successThreshold", 1)),
        failure_threshold=int(probe.get("failureThreshold", 3)),
    )


@dataclass
class ProbeState:
    """A probe's result over time: it flips only after `threshold` results in a row."""

    spec: ProbeSpec
    result: bool  # readiness starts False, liveness True
    next_due: float
    successes: int = 0
    failures: int = 0
    last_error: str = field(default="")

    @classmethod
    def begin(cls, spec: ProbeSpec, started: float, initial: bool) -> ProbeState:
        return cls(spec, initial, started + spec.initial_delay)

    def due(self, now: float) -> bool:
        return now >= self.next_due

    def record(self, ok: bool, error: str, now: float) -> bool:
        """Count one result; True when the probe's result changed."""
        self.next_due = now + self.spec.period
        self.last_error = error
        if ok:
            self.successes, self.failures = self.successes + 1, 0
            flip = not self.result and self.successes >= self.spec.success_threshold
        else:
            self.successes, self.failures = 0, self.failures + 1
            flip = self.result and self.failures >= self.spec.failure_threshold
        if flip:
            self.result = not self.result
        return flip


def perform(spec: ProbeSpec, pod_ip: str) -> tuple[bool, str]:
    """Run the probe once against the pod's address: (success, why it failed)."""
    host = spec.host or pod_ip
    try:
        if spec.kind == "tcpSocket":
            with socket.create_connection((host, spec.port), timeout=spec.timeout):
                return True, ""
        scheme = spec.scheme.lower()
        url = f"{scheme}://{host}:{spec.port}{spec.path}"
        request = urllib.request.Request(url, headers=dict(spec.headers))
        # The kubelet does not verify a pod's certificate either.
        tls = ssl._create_unverified_context() if scheme == "https" else None
        with urllib.request.urlopen(request, timeout=spec.timeout, context=tls) as resp:
            ok = 200 <= resp.status < 400
            return ok, "" if ok else f"HTTP probe failed with statuscode: {resp.status}"
    except urllib.error.HTTPError as e:
        return 200 <= e.code < 400, f"HTTP probe failed with statuscode: {e.code}"
    except OSError as e:
        return False, f"probe of {host}:{spec.port} failed: {e}"
