"""The ``trailboss`` command (also ``kubectl trailboss``): run the operator, print
the CRDs, profile reference data and check drift, and the user commands on
Trailboss objects (get, list, status, promote, undo, ...)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

POD_COMMANDS = frozenset({"serve", "profile", "drift"})
"""The commands the pods the operator creates run. Each pod start pays for what the
parser imports, so these skip the user commands (and the Kubernetes client they load)."""


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(pod_command=words[0] if words and words[0] in POD_COMMANDS else None)
    args = parser.parse_args(words)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    result: int = args.func(args)
    return result


def build_parser(pod_command: str | None = None) -> argparse.ArgumentParser:
    """Every command; with ``pod_command``, only the commands pods run (POD_COMMANDS),
    so that a pod's start imports none of the others."""
    if pod_command is not None:
        parser = argparse.ArgumentParser(prog=_program())
        _pod_commands(parser.add_subparsers(dest="command", metavar="COMMAND"))
        return parser

    from trailboss.commands import errors
    from trailboss.commands.version import VersionAction

    parser = argparse.ArgumentParser(
        prog=_program(),
        description="Kubernetes operator for the machine-learning model lifecycle.",
        epilog=errors.epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action=VersionAction)
    parser.set_defaults(root=parser)  # what `__complete` walks
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="start the operator")
    scope = run.add_mutually_exclusive_group()
    scope.add_argument(
        "-n",
        "--namespace",
        action="append",
        dest="namespaces",
        metavar="NS",
        help="watch this namespace or pattern, e.g. team-* "
        "(repeatable; default: TRAILBOSS_NAMESPACES or all)",
    )
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="watch every namespace")
    run.add_argument("--metrics-port", type=int, help="Prometheus /metrics port (0: off)")
    run.add_argument("--liveness-port", type=int, help="/healthz port (0: off)")
    run.add_argument("--peering", help="kopf peering name for HA; default standalone")
    run.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    run.add_argument(
        "--log-format", choices=("text", "json"), default="text", help="json: one object a line"
    )
    run.set_defaults(func=_run)

    crds = sub.add_parser("crds", help="print the CustomResourceDefinitions, or write them")
    crds.add_argument("-o", "--output-dir", type=Path, help="write one file per CRD here")
    crds.add_argument(
        "--check", action="store_true", help="exit 1 if the files in --output-dir are stale"
    )
    crds.add_argument("--docs", type=Path, help="also write (or --check) the API reference here")
    crds.set_defaults(func=_crds)

    _pod_commands(sub)

    from trailboss.commands import register, version

    version.register(sub)
    register(sub)  # get, list, status, logs, rerun, promote, undo, completion, ...
    return parser


def _run(args: argparse.Namespace) -> int:
    from trailboss import logs
    from trailboss.runtime import run_operator
    from trailboss.settings import SettingRefused, Settings

    overrides: dict[str, object] = {}
    if args.all_namespaces:
        overrides["namespaces"] = []
    elif args.namespaces:
        overrides["namespaces"] = args.namespaces
    for name in ("metrics_port", "liveness_port", "peering"):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    settings = Settings(**overrides)  # type: ignore[arg-type]
    logs.configure(args.log_format, verbose=args.verbose)
    try:
        run_operator(settings, verbose=args.verbose)
    except SettingRefused as refused:
        print(f"trailboss run: {refused}", file=sys.stderr)
        return 2
    return 0


def _pod_commands(sub: Any) -> None:
    serve = sub.add_parser("serve", help="serve one model version (needs trailboss[serve])")
    _serve_flags(serve)
    serve.set_defaults(func=_serve)

    from trailboss.drift.command import add_commands as add_drift_commands

    add_drift_commands(sub)


def kubectl_complete() -> None:
    """`kubectl_complete-trailboss`, which kubectl (1.26+) runs to complete
    `kubectl trailboss <TAB>`."""
    from trailboss.commands.completion import for_kubectl

    for_kubectl(build_parser(), sys.argv[1:])


_parser = build_parser  # the name the chart's and the drift commands' tests know


def _crds(args: argparse.Namespace) -> int:
    from trailboss import apidocs, crdgen

    if args.docs:
        if args.check and apidocs.stale(args.docs):
            print(f"stale: {args.docs} (run `make crds`)", file=sys.stderr)
            return 1
        if not args.check:
            apidocs.write(args.docs)
            print(f"wrote {args.docs}")
    if args.check:
        if not args.output_dir:
            print("trailboss crds --check needs --output-dir", file=sys.stderr)
            return 2
        stale = crdgen.stale(args.output_dir)
        for name in stale:
            print(f"stale: {name} (run `make crds`)", file=sys.stderr)
        return 1 if stale else 0
    if args.output_dir:
        for written in crdgen.write(args.output_dir):
            print(f"wrote {written}")
        return 0
    sys.stdout.write("---\n".join(crdgen.render(crd) for crd in crdgen.all_crds()))
    return 0


def _serve_flags(parser: argparse.ArgumentParser) -> None:
    from trailboss.serving.options import add_arguments

    add_arguments(parser)


def _serve(args: argparse.Namespace) -> int:
    from trailboss.serving.options import run

    return run(args)


def _program() -> str:
    """`kubectl trailboss` when kubectl runs us as its plugin, as kubectl's help reads."""
    called = Path(sys.argv[0]).name
    return "kubectl trailboss" if called.startswith("kubectl-") else "trailboss"


if __name__ == "__main__":
    raise SystemExit(main())
