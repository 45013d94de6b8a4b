"""User commands on Trailboss objects, for `trailboss ...` and `kubectl trailboss ...`.

Installed as `kubectl-trailboss` too, so kubectl finds it as a plugin on the PATH.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from kubernetes.client.exceptions import ApiException

from trailboss.commands.cluster import NotFound, add_connection_flags

Handler = Callable[[argparse.Namespace], int]
EXIT_ERROR = 2


def register(sub: Any) -> None:
    """Add the user commands to the `trailboss` parser's subcommands."""
    from trailboss.commands import actions, check, inspect, podlogs, rollout

    get = _command(sub, "get", inspect.run_get, "show an object and its children as a tree")
    _kind_and_name(get)
    get.add_argument("-w", "--watch", action="store_true", help="keep showing it as it changes")
    get.add_argument("--timeout", type=float, help="with -w: stop after this many seconds")

    status = _command(sub, "status", inspect.run_status,
                      "show health; exit 1 when Failed or Degraded")  # fmt: skip
    _kind_and_name(status)
    status.add_argument("-w", "--wait", action="store_true",
                        help="wait until Healthy or Degraded (exit 3 on timeout)")  # fmt: skip
    status.add_argument("--timeout", type=float, default=600, help="with --wait (default 600 s)")

    logs = _command(sub, "logs", podlogs.run_logs, "print a TrainingRun's training output")
    logs.add_argument("name", help="TrainingRun name")
    logs.add_argument("-f", "--follow", action="store_true", help="stream while it runs")

    rerun = _command(sub, "rerun", actions.run_rerun, "start a new TrainingRun from one's spec")
    rerun.add_argument("name", help="TrainingRun to run again")
    rerun.add_argument(
        "--name", dest="new_name", help="name of the new one (default: <name>-rerun-<n>)"
    )

    for verb, func in (("suspend", actions.run_suspend), ("resume", actions.run_resume)):
        cmd = _command(sub, verb, func, f"{verb} a TrainingRun (spec.suspend) or a Deployment")
        _kind_and_name(cmd)

    for verb, func, text in (
        ("promote", rollout.run_promote, "skip a Deployment's remaining rollout steps"),
        ("abort", rollout.run_abort, "abort a Deployment's rollout: traffic back to stable"),
        ("pause", rollout.run_pause, "hold a Deployment's rollout (`resume deployment NAME`)"),
        ("retrain", rollout.run_retrain, "train a new version now from spec.retraining.template"),
    ):
        cmd = _command(sub, verb, func, text)
        cmd.add_argument("name", help="Deployment (trailboss.dev) name")

    check_metrics = sub.add_parser(
        "check-metrics", help="exit 0 when the operator answers on /metrics (used by helm test)"
    )
    check_metrics.add_argument(
        "url", help="e.g. http://trailboss-metrics.trailboss.svc:9090/metrics"
    )
    check_metrics.add_argument("--timeout", type=float, default=10)
    check_metrics.set_defaults(func=check.run_check_metrics)


def _command(sub: Any, name: str, func: Handler, help_text: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(name, help=help_text)
    add_connection_flags(parser)
    parser.set_defaults(func=_reporting_errors(func))
    return parser


def _kind_and_name(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "kind", help="trainingrun|trun, modelversion|mver, deployment|mdeploy; or KIND/NAME"
    )
    parser.add_argument("name", nargs="?", help="object name")


def _reporting_errors(func: Handler) -> Handler:
    """Errors a user can act on as one line on stderr, not a traceback."""

    def wrapped(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except (NotFound, ValueError) as error:
            print(f"error: {error}", file=sys.stderr)
        except ApiException as error:
            print(f"error: the API server said {error.status} {error.reason}", file=sys.stderr)
        return EXIT_ERROR

    return wrapped
