"""The commands of ``stack.py``: up, down, status, env, stop, start, start-operator."""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator

from .components import COMPONENTS, ORDER, expected
from .dataplane import write_target
from .procs import Running, log_tail, port_free, read_pid, spawn, stop
from .settings import OPERATOR, REPO, P, StackError
from .startup import prepare, running_components, start_components, stop_all, wait_healthy
from .state import State, write_env_file


def cmd_up(args: argparse.Namespace) -> int:
    started = time.monotonic()
    running = running_components()
    if running:
        if set(running) == set(expected(State.load())):
            print(f"stack already up ({P.root}); `stack.py env` prints its environment")
            return 0
        print(f"stack partly up ({', '.join(running)}); restarting it")
        stop_all(quiet=True)
    st = prepare(args.s3 or os.environ.get("TRAILBOSS_S3_BACKEND", "auto"))
    net = "on" if st.pod_network else "off"
    print(f"starting the stack in {P.root} (S3: {st.s3_backend}, pod network: {net})")
    try:
        start_components(st, started)
    except (StackError, KeyboardInterrupt):
        print(
            f"stack failed to start; stopping what was started (logs kept in {P.logs})",
            file=sys.stderr,
        )
        stop_all(quiet=True)
        raise
    write_env_file(st)
    print(
        f"kubeconfig: {P.kubeconfig}\nmlflow:     {st.url('mlflow')}\n"
        f"s3:         {st.url('s3')} ({st.s3_backend})\n"
        f"prometheus: {st.url('prometheus')}\n"
        f'env:        {P.env}  (source it, or eval "$(stack.py env)")'
    )
    print(f"stack up in {time.monotonic() - started:.1f}s")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    started = time.monotonic()
    stopped = stop_all()
    st = State.load()
    busy = [f"{n}:{p}" for n, p in st.ports.items() if not port_free(p)]
    P.env.unlink(missing_ok=True)
    if args.purge and P.root.exists():
        shutil.rmtree(P.root)
        print(f"  removed {P.root}")
    if not stopped:
        print("stack was not running")
    else:
        print(f"stack down in {time.monotonic() - started:.1f}s")
    if busy:
        print(f"warning: ports still in use: {', '.join(busy)}", file=sys.stderr)
        return 1
    return 0


def _component_health(name: str, st: State) -> tuple[str, Running | None]:
    r = read_pid(name)
    alive = r is not None and r.alive()
    try:
        healthy = alive and bool(st.ports) and COMPONENTS[name].healthy(st)
    except (OSError, ValueError):
        healthy = False
    state = "healthy" if healthy else ("running, unhealthy" if alive else "stopped")
    return state, r if alive else None


def cmd_status(_args: argparse.Namespace) -> int:
    st = State.load()
    all_ok = True
    print(f"state: {P.root}")
    print(f"s3 backend: {st.s3_backend or '-'}")
    print(f"pod network: {'on' if st.pod_network else 'off'}")
    for name in expected(st):
        state, r = _component_health(name, st)
        all_ok &= state == "healthy"
        port = st.ports.get(COMPONENTS[name].port or "")
        label = f"{name} ({st.s3_backend})" if name == "s3" else name
        print(
            f"  {label:<24} {state:<20} pid={r.pid if r else '-':<8} "
            f"port={port or '-':<6} log={P.log(name)}"
        )
    return 0 if all_ok else 1


def cmd_env(_args: argparse.Namespace) -> int:
    if not P.env.exists() or not running_components():
        print("stack is not up: run `python e2e/stack/stack.py up`", file=sys.stderr)
        return 1
    sys.stdout.write(P.env.read_text())
    return 0


@contextlib.contextmanager
def exclusive() -> Iterator[None]:
    """One `up` or `down` at a time per state directory (parallel test workers)."""
    P.root.parent.mkdir(parents=True, exist_ok=True)
    with open(P.root.parent / f".{P.root.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def cmd_stop(args: argparse.Namespace) -> int:
    """Stop one component (tests use it to simulate an outage)."""
    stopped = stop(args.name)
    print(f"{args.name}: {'stopped' if stopped else 'was not running'}")
    return 0


def cmd_start(args: argparse.Namespace) -> int:
    """Start one component of a running stack again and wait until it is healthy."""
    started = time.monotonic()
    running = read_pid(args.name)
    if running is not None and running.alive():
        print(f"{args.name}: already running")
        return 0
    st = State.load()
    component = COMPONENTS[args.name]
    procs = {args.name: spawn(args.name, component.argv(st), component.env(st))}
    wait_healthy([args.name], st, procs, started)
    return 0


def cmd_start_operator(args: argparse.Namespace) -> int:
    """Run a command (the operator) as part of the stack, so `down` stops it too.
    It inherits this process's environment; its log is logs/operator.log."""
    argv = [a for a in args.argv if a != "--"]
    if not argv:
        raise StackError("start-operator needs a command after --")
    stop(OPERATOR)
    if "--metrics-port" in argv[:-1]:
        write_target(OPERATOR, int(argv[argv.index("--metrics-port") + 1]))
    proc = spawn(OPERATOR, argv, cwd=REPO)
    time.sleep(3)
    if proc.poll() is not None:
        raise StackError(f"the operator exited with {proc.returncode}:\n{log_tail(OPERATOR)}")
    print(f"operator running (pid {proc.pid}, log {P.log(OPERATOR)})")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="The local stack: control plane, MLflow, S3.")
    sub = p.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the stack (no-op when it is up)")
    up.add_argument(
        "--s3",
        choices=("auto", "minio", "moto"),
        help="S3 server (default: $TRAILBOSS_S3_BACKEND or auto: MinIO if built)",
    )
    down = sub.add_parser("down", help="stop the stack")
    down.add_argument(
        "--purge",
        action="store_true",
        help="also delete the state directory (cluster, MLflow and S3 data)",
    )
    sub.add_parser("status", help="show each component")
    sub.add_parser("env", help="print `export K=V` lines for the stack")
    for verb, helptext in (("stop", "stop one component"), ("start", "start one component")):
        one = sub.add_parser(verb, help=helptext)
        one.add_argument("name", choices=(*ORDER, OPERATOR) if verb == "stop" else ORDER)
    operator = sub.add_parser("start-operator", help="run COMMAND as the stack's operator")
    operator.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- COMMAND")
    return p


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "up": cmd_up,
    "down": cmd_down,
    "status": cmd_status,
    "env": cmd_env,
    "stop": cmd_stop,
    "start": cmd_start,
    "start-operator": cmd_start_operator,
}


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.command in ("up", "down"):
            with exclusive():
                return COMMANDS[args.command](args)
        return COMMANDS[args.command](args)
    except StackError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
