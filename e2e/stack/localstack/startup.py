"""Bringing the stack up and down: prepare the state, start the components in
order with health checks, and stop everything again."""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from collections.abc import Callable

from . import gateway, network
from .bootstrap import (
    create_buckets,
    create_fake_nodes,
    grant_prometheus,
    in_ci,
    preflight,
    s3_backend_for,
)
from .certs import ensure_certs, write_kubeconfig
from .components import COMPONENTS, ORDER, PORT_NAMES
from .dataplane import remove_kube_proxy_rules, write_target
from .procs import Running, log_tail, pick_ports, read_pid, spawn, stop
from .settings import OPERATOR, P, StackError
from .state import State

Procs = dict[str, subprocess.Popen[bytes]]


def running_components() -> dict[str, Running]:
    found = {}
    for name in ORDER:
        r = read_pid(name)
        if r is not None and r.alive():
            found[name] = r
    return found


def wait_healthy(names: list[str], st: State, procs: Procs, since: float) -> None:
    pending = {n: time.monotonic() + COMPONENTS[n].timeout for n in names}
    while pending:
        for name, deadline in list(pending.items()):
            proc = procs.get(name)
            if proc is not None and proc.poll() is not None:
                raise StackError(
                    f"{name} exited with code {proc.returncode}; "
                    f"last lines of {P.log(name)}:\n{log_tail(name)}"
                )
            if COMPONENTS[name].healthy(st):
                del pending[name]
                print(f"  {name:<24} ready at {time.monotonic() - since:4.1f}s")
            elif time.monotonic() > deadline:
                raise StackError(
                    f"{name} not healthy after {COMPONENTS[name].timeout:.0f}s; "
                    f"last lines of {P.log(name)}:\n{log_tail(name)}"
                )
        time.sleep(0.2)


def wait_for(what: str, check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise StackError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.5)


def prepare(requested_s3: str) -> State:
    """State, directories, credentials, ports, certificates and kubeconfigs for `up`."""
    st = State.load()
    st.s3_backend = s3_backend_for(requested_s3)
    # CI runs the data plane for sure; on a workstation it is on when it can be.
    mode = os.environ.get("TRAILBOSS_STACK_NETWORK") or ("on" if in_ci() else "auto")
    st.pod_network = network.wanted(mode)
    if mode == "auto" and st.pod_network and network.owner() not in (None, str(P.root)):
        print(f"note: the pod network belongs to the stack in {network.owner()}; running without")
        st.pod_network = False
    preflight(st.pod_network)
    for d in (P.run, P.logs, P.mlflow_db().parent, P.data / "etcd", P.root / "podlogs"):
        d.mkdir(parents=True, exist_ok=True)
    if not st.access_key:
        # Fixed for the life of the state directory; handed out by `env`, never in code.
        st.access_key = "trailboss-" + secrets.token_hex(4)
        st.secret_key = secrets.token_urlsafe(24)
    st.ports = pick_ports(PORT_NAMES, st.ports)
    st.save()
    ensure_certs()
    server = st.url("kube-apiserver", "https")
    write_kubeconfig(P.kubeconfig, "admin", server)
    for user in (
        "kube-controller-manager",
        "kube-scheduler",
        "kwok",
        "kube-proxy",
        "trailboss-gateway",
    ):
        write_kubeconfig(P.kubeconfig_for(user), user, server)
    return st


def start_components(st: State, started: float) -> None:
    procs: Procs = {}

    def start(*names: str) -> None:
        for name in names:
            c = COMPONENTS[name]
            procs[name] = spawn(name, c.argv(st), c.env(st))

    def wait(*names: str) -> None:
        wait_healthy(list(names), st, procs, started)

    if st.pod_network:
        network.setup()  # before any pod can get an address, and S3 and MLflow listen on it
    # The Python servers are the slowest to come up: start them first.
    start("s3", "mlflow", "etcd")
    wait("etcd")
    start("kube-apiserver")
    wait("kube-apiserver")
    if st.pod_network:
        start("kube-proxy")
    start("kube-controller-manager", "kube-scheduler", "kwok")
    create_fake_nodes(st)
    grant_prometheus(st)
    if st.pod_network:
        gateway.install_crds()
        gateway.create_gateway(st)
        start("gateway")
        write_target("gateway", st.ports["gateway-admin"])
        write_target("kube-proxy", st.ports["kube-proxy-metrics"])
    wait("kube-controller-manager", "kube-scheduler", "kwok", "s3")
    create_buckets(st)
    start("podrunner", "prometheus")
    wait("mlflow", "prometheus", *(["kube-proxy", "gateway"] if st.pod_network else []))
    if st.pod_network:
        wait_for("the Gateway to be programmed", lambda: gateway.gateway_programmed(st))
    if procs["podrunner"].poll() is not None:
        raise StackError(f"podrunner exited; last lines of its log:\n{log_tail('podrunner')}")


def stop_all(quiet: bool = False) -> list[str]:
    """Every process, then the pod network: namespaces, bridge, routes, kube-proxy's rules."""
    stopped = []
    for name in (OPERATOR, *reversed(ORDER)):
        t0 = time.monotonic()
        if stop(name):
            stopped.append(name)
            if not quiet:
                print(f"  stopped {name} ({time.monotonic() - t0:.1f}s)")
    if network.recorded_owner() == str(P.root):
        network.teardown()
        remove_kube_proxy_rules()
        if not quiet:
            print("  removed the pod network")
    return stopped
