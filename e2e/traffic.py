"""Traffic helpers for the data-plane tests: the counter app's manifests, bounded request
loops to a Service or a Gateway, and PromQL queries.

Requests go only to addresses the cluster hands out for the test's own objects
(a ClusterIP, the Gateway's address); on the local stack these are checked to
be the stack's Service range or loopback before anything is sent.
"""

from __future__ import annotations

import collections
import ipaddress
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from e2e.cluster import RUN_LOCALLY

APP = (Path(__file__).parent / "apps" / "counter.py").read_text()
APP_PORT = 8080
IMAGE = "python:3.12-slim"  # what runs the app on a real cluster; the pod runner ignores it
LOCAL_ADDRESSES = (ipaddress.ip_network("10.96.0.0/16"), ipaddress.ip_network("127.0.0.0/8"))
MAX_REQUESTS = 5000
Tally = collections.Counter[str]


def pod_template(labels: dict[str, str], ready_after: float) -> dict[str, Any]:
    """Pods of the counter app: readiness on /ready, liveness on /healthz, scraped."""
    probe = {"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 1}
    return {
        "metadata": {
            "labels": {**labels, RUN_LOCALLY: "true"},
            "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": str(APP_PORT)},
        },
        "spec": {
            "terminationGracePeriodSeconds": 5,
            "containers": [
                {
                    "name": "app",
                    "image": IMAGE,
                    "command": ["python", "-c", APP, str(APP_PORT)],
                    "env": [
                        {"name": "READY_AFTER", "value": str(ready_after)},
                        {
                            "name": "POD_IP",
                            "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}},
                        },
                    ],
                    "ports": [{"name": "http", "containerPort": APP_PORT}],
                    "readinessProbe": {**probe, "failureThreshold": 1},
                    "livenessProbe": {
                        "httpGet": {"path": "/healthz", "port": "http"},
                        "periodSeconds": 2,
                        "failureThreshold": 3,
                    },
                }
            ],
        },
    }


def deployment(
    name: str, replicas: int, labels: dict[str, str], ready_after: float = 0
) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": pod_template(labels, ready_after),
        },
    }


def service(name: str, selector: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {
            "selector": selector,
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
        },
    }


def http_route(name: str, gateway: str, backends: dict[str, int]) -> dict[str, Any]:
    """An HTTPRoute on `gateway` (namespace/name) splitting by weight over Services."""
    gw_namespace, gw_name = gateway.split("/")
    refs = [{"name": svc, "port": 80, "weight": weight} for svc, weight in backends.items()]
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name},
        "spec": {
            "parentRefs": [{"name": gw_name, "namespace": gw_namespace}],
            "rules": [{"backendRefs": refs}],
        },
    }


def check_local(url: str) -> None:
    """On the local stack, traffic may only go to its Service range or loopback."""
    host = urllib.parse.urlsplit(url).hostname or ""
    address = ipaddress.ip_address(host)
    assert any(address in net for net in LOCAL_ADDRESSES), f"{url} is not a stack address"


def get(url: str, timeout: float = 2.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, ""


def send(url: str, count: int, deadline_s: float = 120.0) -> Tally:
    """`count` GETs (bounded in number and time); which pod answered each, by name.
    A failed request is counted under its status code."""
    assert count <= MAX_REQUESTS
    answered: Tally = collections.Counter()
    deadline = time.monotonic() + deadline_s
    for _ in range(count):
        assert time.monotonic() < deadline, f"{count} requests to {url} took over {deadline_s}s"
        try:
            status, body = get(url)
        except OSError as e:
            answered[f"error: {e}"] += 1
            continue
        answered[body.split()[0] if status == 200 and body else f"HTTP {status}"] += 1
    return answered


def promql(prometheus: str, query: str) -> list[dict[str, Any]]:
    url = f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    with urllib.request.urlopen(url, timeout=5) as resp:
        body = json.load(resp)
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result
