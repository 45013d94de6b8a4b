"""A pod's own network namespace: a veth pair to the stack's bridge and the pod's IP."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import signal
import subprocess

from ..settings import BRIDGE, BRIDGE_IP, POD_CIDR, POD_NETNS_PREFIX, RUNNER_POD_RANGE, SERVICE_CIDR

PREFIX_LEN = ipaddress.ip_network(POD_CIDR).prefixlen


def netns_name(uid: str) -> str:
    return POD_NETNS_PREFIX + uid


def veth_name(uid: str) -> str:
    """The host end of the pod's veth pair (interface names have at most 15 bytes)."""
    return "tbv" + uid.replace("-", "")[:11]


def allocate_ip(used: set[str], after: str = "") -> str:
    """The next free address of the pod runner's range after the last one handed out,
    wrapping around (as host-local IPAM does: a fresh pod rarely gets an address that
    a deleted pod had a moment ago). The bridge has the first address."""
    hosts = [str(h) for h in ipaddress.ip_network(RUNNER_POD_RANGE).hosts() if str(h) != BRIDGE_IP]
    start = hosts.index(after) + 1 if after in hosts else 0
    for address in hosts[start:] + hosts[:start]:
        if address not in used:
            return address
    raise ValueError(f"no free pod address left in {RUNNER_POD_RANGE}")


def ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise OSError(f"ip {' '.join(args)}: {result.stderr.strip()}")


def create(uid: str, address: str) -> str:
    """The pod's namespace, wired to the bridge; only the pod and Service ranges are routed.

    No default route: a pod can reach other pods, the root namespace's bridge
    address and Service IPs, and nothing beyond this machine.
    """
    ns, veth = netns_name(uid), veth_name(uid)
    delete(uid)  # a leftover of an earlier runner
    ip("netns", "add", ns)
    ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
    ip("link", "set", veth, "master", BRIDGE, "up")
    ip("-n", ns, "addr", "add", f"{address}/{PREFIX_LEN}", "dev", "eth0")
    ip("-n", ns, "link", "set", "lo", "up")
    ip("-n", ns, "link", "set", "eth0", "up")
    ip("-n", ns, "route", "add", SERVICE_CIDR, "via", BRIDGE_IP)
    # The root namespace may remember another MAC for this address (an earlier pod):
    # forget it, or probes time out until the stale entry expires.
    ip("neigh", "flush", "to", address, "dev", BRIDGE)
    return ns


def pids_in(ns: str) -> list[int]:
    result = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True)
    return [int(p) for p in result.stdout.split()] if result.returncode == 0 else []


def delete(uid: str) -> None:
    """Kill what still runs in the pod's namespace, then remove it and its veth."""
    ns = netns_name(uid)
    kill_all_in(ns)
    with contextlib.suppress(OSError):  # removing one end removes the pair at once
        ip("link", "del", veth_name(uid))
    delete_netns(ns)


def kill_all_in(ns: str) -> None:
    for pid in pids_in(ns):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def delete_netns(ns: str) -> None:
    kill_all_in(ns)
    with contextlib.suppress(OSError):
        ip("netns", "del", ns)


def leftover_namespaces() -> list[str]:
    """Pod namespaces on this machine (``ip netns list``), e.g. of a runner that died."""
    result = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    names = [line.split()[0] for line in result.stdout.splitlines() if line.strip()]
    return [n for n in names if n.startswith(POD_NETNS_PREFIX)]
