"""`check-metrics`: what `helm test` runs to see the operator is up."""

from __future__ import annotations

import argparse
import sys
import urllib.error
import urllib.request

EXIT_OK, EXIT_DOWN = 0, 1


def operator_series(text: str) -> list[str]:
    """The operator's own series in a Prometheus exposition."""
    return [line for line in text.splitlines() if line.startswith("trailboss_")]


def run_check_metrics(args: argparse.Namespace) -> int:
    try:
        with urllib.request.urlopen(args.url, timeout=args.timeout) as response:
            text = response.read().decode(errors="replace")
    except (urllib.error.URLError, OSError) as error:
        print(f"FAIL: the operator does not answer at {args.url}: {error}", file=sys.stderr)
        return EXIT_DOWN
    series = operator_series(text)
    if not series:
        print(f"FAIL: {args.url} answers but exports no trailboss_ metrics", file=sys.stderr)
        return EXIT_DOWN
    print(f"OK: {args.url} exports {len(series)} trailboss_ series")
    return EXIT_OK
