#!/usr/bin/env python3
"""A real Kubernetes control plane, MLflow and S3 on loopback, for e2e tests and the demo.

    python e2e/stack/stack.py up|down|status|env|stop|start|start-operator

``up`` starts etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
kwok (fake nodes and pod lifecycles), the pod runner (runs pods labelled
``trailboss.dev/run-locally=true`` as local processes), an MLflow tracking
server and an S3 server (MinIO when it was built, otherwise moto), Prometheus
and, with the pod network (root), kube-proxy and Traefik as the Gateway API
implementation, then waits until each one is healthy. ``down`` stops them by
PID and removes the pod network. The binaries come from ``e2e/stack/build.sh``
(``make stack-build``); everything the stack writes goes
to the state directory (``$TRAILBOSS_STACK_DIR``, default
``~/.cache/trailboss/stack``). See README.md next to this file;
the code is in the ``localstack`` package next to it.

Run it with the project's interpreter (``.venv/bin/python``): MLflow, moto and
the pod runner are started with the same interpreter.
"""

import sys

# Run as a script, Python puts this folder on sys.path, so the package next to it imports
# as `localstack` (the tests import the same code as `e2e.stack.localstack`).
from localstack.cli import main

if __name__ == "__main__":
    sys.exit(main())
