"""Process supervision: start a component in its own session, stop it by PID, pick ports."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from .settings import P


def proc_start_ticks(pid: int) -> int | None:
    """Start time of a process in clock ticks since boot, or None if it is gone.

    Stored next to each PID so that `down` never signals a process that merely
    reused the number after ours exited.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":  # exited, waiting to be reaped
        return None
    return int(fields[19])


@dataclass
class Running:
    name: str
    pid: int
    ticks: int

    def alive(self) -> bool:
        return proc_start_ticks(self.pid) == self.ticks


def read_pid(name: str) -> Running | None:
    try:
        data = json.loads(P.pidfile(name).read_text())
    except (OSError, ValueError):
        return None
    return Running(name, int(data["pid"]), int(data["ticks"]))


def spawn(
    name: str, argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start a component in its own session (so its children die with it)."""
    P.logs.mkdir(parents=True, exist_ok=True)
    P.run.mkdir(parents=True, exist_ok=True)
    log = P.log(name).open("ab")
    log.write(f"\n=== {time.strftime('%Y-%m-%dT%H:%M:%S')} {' '.join(argv)}\n".encode())
    log.flush()
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
        cwd=cwd or P.root,
        start_new_session=True,
    )
    log.close()
    ticks = proc_start_ticks(proc.pid) or 0
    P.pidfile(name).write_text(json.dumps({"pid": proc.pid, "ticks": ticks, "argv": argv}))
    return proc


def stop(name: str, grace: float = 10.0) -> bool:
    """SIGTERM the component's process group, SIGKILL it after `grace` seconds."""
    running = read_pid(name)
    P.pidfile(name).unlink(missing_ok=True)
    if running is None or not running.alive():
        return False
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(running.pid, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(running.pid, os.WNOHANG)  # reap it when we are its parent
            if not running.alive() and not group_alive(running.pid):
                return True
            time.sleep(0.1)
    return True


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # Zombies still count for killpg; look for a live member.
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            text = stat.read_text()
            fields = text[text.rindex(")") + 2 :].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                return True
    return False


def log_tail(name: str, lines: int = 25) -> str:
    try:
        text = P.log(name).read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def pick_ports(names: list[str], previous: dict[str, int]) -> dict[str, int]:
    """Reuse last run's ports when they are still free (stable URLs), else new ones."""
    ports: dict[str, int] = {}
    for name in names:
        old = previous.get(name)
        if old and old not in ports.values() and port_free(old):
            ports[name] = old
            continue
        while True:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port: int = s.getsockname()[1]
            if port not in ports.values():
                ports[name] = port
                break
    return ports
