"""The ``trailboss serve`` flags: each one also reads its ``TRAILBOSS_*`` environment variable.

Only argparse and pydantic here, so ``trailboss --help`` works where the
``serve`` extra is not installed.
"""

from __future__ import annotations

import argparse
import sys

from pydantic import ValidationError

from trailboss.serving.config import ServeSettings

FLAGS: dict[str, tuple[type, str]] = {
    "model_uri": (str, "artifact to serve: s3://…, a local path, runs:/… or models:/…"),
    "model_name": (str, "registered model name (metric label, v2 model name)"),
    "model_version": (str, "model version served (metric label, log partition)"),
    "host": (str, "address to listen on (default 0.0.0.0)"),
    "port": (int, "port to listen on (default 8080)"),
    "namespace": (str, "namespace of the Deployment, for the log partition"),
    "deployment": (str, "name of the Deployment, for the log partition (default: model name)"),
    "log_uri": (str, "s3://bucket/prefix for prediction logs (default: off)"),
    "log_sample_rate": (float, "share of requests logged, 0..1 (default 1)"),
    "log_batch_rows": (int, "rows per Parquet file at most (default 1000)"),
    "log_flush_seconds": (float, "longest wait before buffered rows are written (default 10)"),
    "log_buffer_rows": (int, "rows buffered at most; more are dropped and counted (default 20000)"),
    "s3_endpoint_url": (str, "S3 endpoint for MinIO and other non-AWS stores"),
    "max_request_bytes": (int, "largest request body; larger gets 413 (default 10 MiB)"),
    "tmp_dir": (str, "the only directory written to (default: $TMPDIR)"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    for name, (kind, help_text) in FLAGS.items():
        env = f"TRAILBOSS_{name.upper()}"
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind, help=f"{help_text} [{env}]")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def settings_from(args: argparse.Namespace) -> ServeSettings | None:
    """Flags over environment; on bad input, print what is wrong and how to fix it."""
    given = {name: getattr(args, name) for name in FLAGS if getattr(args, name) is not None}
    try:
        return ServeSettings(**given)
    except ValidationError as error:
        for problem in error.errors():
            name = str(problem["loc"][0]) if problem["loc"] else "settings"
            flag, env = f"--{name.replace('_', '-')}", f"TRAILBOSS_{name.upper()}"
            print(f"trailboss serve: {flag} ({env}): {problem['msg']}", file=sys.stderr)
        return None


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    if settings is None:
        return 2
    try:
        from trailboss.serving.server import serve
    except ImportError as error:
        print(
            f"trailboss serve: {error.name or error} is missing; the model server needs "
            "the serve extra: pip install 'trailboss[serve]'",
            file=sys.stderr,
        )
        return 2
    return serve(settings, verbose=args.verbose)
