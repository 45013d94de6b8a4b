#!/usr/bin/env python3
"""The local stack's pod runner: a kubelet's part for pods labelled
``trailboss.dev/run-locally=true`` (see localstack/pods/runner.py).

    python podrunner.py --kubeconfig KUBECONFIG --state-dir DIR [--pod-network]
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
import urllib.error
from pathlib import Path

# Run as a script, Python puts this folder on sys.path, so the package next to it imports
# as `localstack` (the tests import the same code as `e2e.stack.localstack`).
from localstack.pods import netns
from localstack.pods.kube import RUN_LOCALLY, Kube
from localstack.pods.runner import Runner

log = logging.getLogger("podrunner")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between passes")
    parser.add_argument(
        "--pod-network",
        action="store_true",
        help="give serving pods their own network namespace on the stack's bridge",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if args.pod_network:
        for ns in netns.leftover_namespaces():  # of a runner that did not stop cleanly
            log.info("removing leftover namespace %s", ns)
            netns.delete(ns.removeprefix(netns.netns_name("")))
    runner = Runner(Kube(args.kubeconfig), args.state_dir, args.pod_network)

    def shutdown(signum: int, _frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, shutdown)
    log.info("watching pods labelled %s=true on fake nodes", RUN_LOCALLY)
    try:
        while True:
            try:
                runner.sync()
            except (OSError, urllib.error.URLError, ValueError) as e:
                log.warning("pass failed, retrying: %s", e)
            time.sleep(args.interval)
    finally:
        runner.stop_all()


if __name__ == "__main__":
    sys.exit(main())
