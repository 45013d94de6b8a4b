"""User commands on Trailboss objects, for `trailboss ...` and `kubectl trailboss ...`.

Installed as `kubectl-trailboss` too, so kubectl finds it as a plugin on the PATH.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from trailboss.commands import errors
from trailboss.commands.cluster import add_connection_flags

Handler = Callable[[argparse.Namespace], int]
KIND_HELP = "trainingrun|trun, modelversion|mver, deployment|mdeploy"
DEPLOYMENT_VERBS = ("promote", "abort", "pause", "retrain", "undo")


def register(sub: Any) -> None:
    """Add the user commands to the `trailboss` parser's subcommands."""
    from trailboss.commands import actions, check, completion, get, inspect, podlogs, rollout

    listed = _command(sub, "get", get.run_get, "list objects of a kind, or show one as a tree")
    listed.add_argument("kind", help=f"{KIND_HELP}, all, a comma list, or KIND/NAME")
    listed.add_argument("name", nargs="?", help="one object; without it, list them")
    get.add_flags(listed)
    listed = _command(sub, "list", get.run_list, "list objects (of every kind by default)")
    listed.add_argument("kind", nargs="?", default="all", help=f"{KIND_HELP} or all (default)")
    get.add_flags(listed)

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

    _rollout_commands(sub, rollout)
    completion.register(sub)

    check_metrics = sub.add_parser(
        "check-metrics", help="exit 0 when the operator answers on /metrics (used by helm test)"
    )
    check_metrics.add_argument(
        "url", help="e.g. http://trailboss-metrics.trailboss.svc:9090/metrics"
    )
    check_metrics.add_argument("--timeout", type=float, default=10)
    check_metrics.set_defaults(func=check.run_check_metrics)


def _rollout_commands(sub: Any, rollout: Any) -> None:
    promote = _command(sub, "promote", rollout.run_promote,
                       "move a Deployment's rollout one step (--full: every step)")  # fmt: skip
    promote.add_argument("--full", action="store_true", help="skip every remaining step")
    for verb, func, text in (
        ("abort", rollout.run_abort, "abort a Deployment's rollout: traffic back to stable"),
        ("pause", rollout.run_pause, "hold a Deployment's rollout (`resume deployment NAME`)"),
        ("retrain", rollout.run_retrain, "train a new version now from spec.retraining.template"),
    ):
        _command(sub, verb, func, text)
    undo = _command(
        sub, "undo", rollout.run_undo,
        "serve the previous stable version again: sets spec.modelVersion (changes the spec, "
        "as `kubectl argo rollouts undo` does: put the same change in Git)",
    )  # fmt: skip
    undo.add_argument("--to-version", help="this ModelVersion (default: the previous stable)")
    undo.add_argument(
        "--pin", action="store_true", help="replace spec.versionPolicy by the pinned version"
    )


def _command(sub: Any, name: str, func: Handler, help_text: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(
        name, help=help_text, description=help_text, epilog=errors.epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    if name in DEPLOYMENT_VERBS:
        parser.add_argument("name", help="Deployment (trailboss.dev) name")
    add_connection_flags(parser)
    parser.set_defaults(func=reporting_errors(func))
    return parser


def _kind_and_name(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", help=f"{KIND_HELP}; or KIND/NAME")
    parser.add_argument("name", nargs="?", help="object name")


def reporting_errors(func: Handler) -> Handler:
    """Failures as one line on stderr, naming the cause and what to do, and an exit
    code of their own (see `errors.CODES`), never a traceback."""

    def wrapped(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except KeyboardInterrupt:
            return errors.INTERRUPTED
        except Exception as error:  # explain() re-raises what it cannot name: a bug
            line, code = errors.explain(error)
        print(f"error: {line}", file=sys.stderr)
        return code

    return wrapped
