"""The stack's pod network in the root namespace: one bridge that owns the pod and
Service ranges, so that no packet for a cluster address can leave this machine.

The bridge holds the first address of the pod runner's range with the whole pod
range as its subnet, and the Service range is routed to it too: a packet for a
serving pod reaches that pod's veth; a packet for a faked pod (kwok's addresses)
or an unused ClusterIP is sent onto the bridge, finds no one and is dropped
here. kube-proxy rewrites packets for a Service's ClusterIP to a ready pod
before they reach the bridge. Forwarding stays as it is (off by default), so
pods reach nothing beyond this machine either.

Names are machine-wide (one bridge, one routing table): one stack at a time
owns the pod network; ``owner`` records which.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from pathlib import Path

from .pods import netns
from .settings import BRIDGE, BRIDGE_IP, POD_CIDR, SERVICE_CIDR, P, StackError

OWNER_FILE = Path("/run/trailboss/pod-network.json")
PREFIX_LEN = POD_CIDR.split("/")[1]


def ip(*args: str, check: bool = True) -> str:
    result = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and result.returncode != 0:
        raise StackError(f"ip {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def wanted(mode: str) -> bool:
    """Whether this stack runs a pod network: `on`, `off`, or `auto` (on if possible)."""
    if mode not in ("auto", "on", "off"):
        raise StackError(f"TRAILBOSS_STACK_NETWORK={mode!r}: use auto, on or off")
    if mode == "off":
        return False
    problem = missing_prerequisite()
    if problem and mode == "on":
        raise StackError(f"the pod network needs {problem} (or TRAILBOSS_STACK_NETWORK=off)")
    return problem is None


def missing_prerequisite() -> str | None:
    if os.geteuid() != 0:
        return "root (network namespaces, a bridge and routes)"
    if shutil.which("ip") is None:
        return "the `ip` command (apt-get install iproute2)"
    return None


def recorded_owner() -> str | None:
    """The state directory of the stack that set the pod network up last."""
    try:
        return str(json.loads(OWNER_FILE.read_text())["stack"])
    except (OSError, ValueError, KeyError):
        return None


def owner() -> str | None:
    """The stack that owns the pod network, if it is still up."""
    root = recorded_owner()
    return root if root and (Path(root) / "run" / "kube-apiserver.pid").exists() else None


def claim() -> None:
    """Make this stack the owner, refusing when another running stack is."""
    current = owner()
    if current and current != str(P.root):
        raise StackError(
            f"the pod network is in use by the stack in {current}: take that one "
            "down first, or start this one with TRAILBOSS_STACK_NETWORK=off"
        )
    OWNER_FILE.parent.mkdir(parents=True, exist_ok=True)
    OWNER_FILE.write_text(json.dumps({"stack": str(P.root)}) + "\n")


def setup() -> None:
    """The bridge and routes; run before any pod can start."""
    claim()
    if BRIDGE not in ip("-o", "link", "show", check=False):
        ip("link", "add", BRIDGE, "type", "bridge")
    ip("addr", "replace", f"{BRIDGE_IP}/{PREFIX_LEN}", "dev", BRIDGE)
    ip("link", "set", BRIDGE, "up")
    ip("route", "replace", SERVICE_CIDR, "dev", BRIDGE, "src", BRIDGE_IP)
    for cidr in (POD_CIDR, SERVICE_CIDR):
        device = route_device(cidr.split("/")[0])
        if device != BRIDGE:
            raise StackError(f"{cidr} is routed to {device}, not to {BRIDGE}; see `ip route`")


def route_device(address: str) -> str:
    """The device the kernel would send a packet for `address` to (``ip route get``)."""
    routes = json.loads(ip("-j", "route", "get", address) or "[]")
    return str(routes[0].get("dev", "")) if routes else ""


def teardown() -> None:
    """Remove every pod namespace, the bridge and its routes (when this stack owns them)."""
    if recorded_owner() not in (None, str(P.root)):
        return
    for ns in netns.leftover_namespaces():
        netns.delete(ns.removeprefix(netns.netns_name("")))
    with contextlib.suppress(StackError):  # already gone
        ip("link", "del", BRIDGE)
    with contextlib.suppress(OSError):
        OWNER_FILE.unlink()
