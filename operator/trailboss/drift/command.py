"""`trailboss profile` and `trailboss drift`: the commands the drift Jobs run.

Imports of numpy, pyarrow and boto3 wait until a command runs, so the rest of
the CLI starts fast.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import sys
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError


def add_commands(sub: Any) -> None:
    """Register both subcommands on the CLI's subparsers."""
    profile = sub.add_parser("profile", help="build a reference profile for drift checks")
    profile.add_argument("--reference", required=True, help="s3:// CSV or Parquet reference data")
    profile.add_argument("--output", required=True, help="s3:// prefix to write the profile to")
    profile.add_argument(
        "--prediction",
        action="append",
        default=[],
        metavar="NAME=COLUMN",
        help="reference column for prediction output NAME (e.g. prediction=label)",
    )
    profile.add_argument("--exclude", action="append", default=[], help="column to leave out")
    profile.add_argument(
        "--feature-type",
        action="append",
        default=[],
        metavar="COLUMN=TYPE",
        help="numeric or categorical, overriding the inferred type",
    )
    profile.add_argument("--sample-rows", type=int, help="numeric sample size (default 100000)")
    profile.add_argument("--s3-endpoint-url", help="S3 endpoint (default: environment)")
    profile.set_defaults(func=_needs_the_engine(_profile))

    drift = sub.add_parser("drift", help="check prediction logs for drift against a profile")
    drift.add_argument("--profile", required=True, help="s3:// prefix of the reference profile")
    drift.add_argument("--logs", required=True, help="s3:// prefix of the prediction logs")
    drift.add_argument("--deployment", required=True, help="NAMESPACE.NAME as in the log path")
    drift.add_argument("--model-version", required=True, help="ModelVersion the logs are of")
    drift.add_argument(
        "--monitoring", default="{}", help="spec.monitoring of the Deployment, as JSON"
    )
    drift.add_argument("--output", help="s3:// key to write the result JSON to")
    drift.add_argument("--now", help="end of the window, ISO 8601 (default: now)")
    drift.add_argument(
        "--shard",
        metavar="INDEX/COUNT",
        help="measure only this pod's group of features and write them before their verdicts",
    )
    drift.add_argument("--s3-endpoint-url", help="S3 endpoint (default: environment)")
    drift.set_defaults(func=_needs_the_engine(_drift))


ENGINE = ("numpy", "scipy", "pyarrow")


def _needs_the_engine(command: Callable[[argparse.Namespace], int]) -> Callable[..., int]:
    """The command, or a clear refusal where the drift engine's libraries are not
    installed (the operator's image: the Jobs run the trailboss-drift image)."""

    def run(args: argparse.Namespace) -> int:
        missing = [name for name in ENGINE if importlib.util.find_spec(name) is None]
        if missing:
            print(
                f"trailboss {args.command}: this installation lacks {', '.join(missing)}: run it "
                "from the trailboss-drift image, or install trailboss[drift]",
                file=sys.stderr,
            )
            return 2
        return command(args)

    return run


def _pairs(items: list[str], flag: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise SystemExit(f"trailboss: {flag} {item!r}: write it as KEY=VALUE")
        out[key] = value
    return out


def _profile(args: argparse.Namespace) -> int:
    from trailboss.api.monitoring import FeatureType
    from trailboss.drift import build, job, store
    from trailboss.drift.profile import DEFAULT_SAMPLE_ROWS

    try:
        types = {k: FeatureType(v) for k, v in _pairs(args.feature_type, "--feature-type").items()}
    except ValueError as error:
        print(f"trailboss: --feature-type: {error}; use numeric or categorical", file=sys.stderr)
        return 2
    options = build.ProfileOptions(
        outputs={col: name for name, col in _pairs(args.prediction, "--prediction").items()},
        exclude=frozenset(args.exclude),
        types=types,
        sample_rows=args.sample_rows or DEFAULT_SAMPLE_ROWS,
    )
    try:
        status = job.make_profile(
            store.ObjectStore(args.s3_endpoint_url), args.reference, args.output, options
        )
    except (
        store.ObjectNotFound,
        store.ObjectChanged,
        store.StoreError,
        ValueError,
        OSError,
    ) as error:
        print(f"trailboss profile: {error}", file=sys.stderr)
        return 1
    print(json.dumps(status.to_json(), indent=2))
    return 0


def _drift(args: argparse.Namespace) -> int:
    from trailboss.api.common import explain
    from trailboss.api.monitoring import MonitoringSpec
    from trailboss.drift import job, store
    from trailboss.drift.shard import Shard

    try:
        spec = MonitoringSpec.model_validate(json.loads(args.monitoring))
    except json.JSONDecodeError as error:
        print(f"trailboss drift: --monitoring is not JSON: {error}", file=sys.stderr)
        return 2
    except ValidationError as error:
        print(f"trailboss drift: {explain(error, 'spec.monitoring')}", file=sys.stderr)
        return 2
    now = dt.datetime.fromisoformat(args.now) if args.now else dt.datetime.now(dt.UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=dt.UTC)
    try:
        shard = Shard.parse(args.shard) if args.shard else None
    except ValueError as error:
        print(f"trailboss drift: --shard: {error}", file=sys.stderr)
        return 2
    target = job.CheckTarget(args.profile, args.logs, args.deployment, args.model_version)
    objects = store.ObjectStore(args.s3_endpoint_url)
    try:
        result = job.run_check(objects, target, spec, now, shard)
        text = json.dumps(result, indent=2)
        if args.output:
            objects.write(args.output, text.encode(), "application/json")
    except (store.ObjectNotFound, store.StoreError, ValueError) as error:
        print(f"trailboss drift: {error}", file=sys.stderr)
        return 1
    print(text)
    return 0
