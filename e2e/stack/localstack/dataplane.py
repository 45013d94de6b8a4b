"""kube-proxy and Prometheus: what makes a Service's ClusterIP and a pod's metrics real.

Both run only with the pod network (network.py). kube-proxy is the real one, in
nftables mode, built from the same Kubernetes module as the API server;
Prometheus finds the pods to scrape through the API server
(``kubernetes_sd_configs``), as it would in a cluster.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
from typing import Any

from .settings import BIN_DIR, BRIDGE_IP, FAKE_NODES, POD_CIDR, P
from .state import State
from .web import http_ok

PROMETHEUS_USER = "trailboss-prometheus"
SCRAPE_INTERVAL = "5s"


def kube_proxy(st: State) -> list[str]:
    return [
        str(BIN_DIR / "kube-proxy"),
        "--kubeconfig",
        str(P.kubeconfig_for("kube-proxy")),
        "--proxy-mode=nftables",
        f"--cluster-cidr={POD_CIDR}",
        # It plays the proxy of the first fake node: Services span every node anyway.
        f"--hostname-override={FAKE_NODES[0]}",
        "--bind-address=127.0.0.1",
        f"--healthz-bind-address=127.0.0.1:{st.ports['kube-proxy']}",
        f"--metrics-bind-address=127.0.0.1:{st.ports['kube-proxy-metrics']}",
        # NodePorts only on the bridge's address, never on the machine's interfaces.
        f"--nodeport-addresses={BRIDGE_IP}/32",
        # Leave the machine's conntrack settings (sysctls) alone.
        "--conntrack-max-per-core=0",
        "--conntrack-tcp-timeout-established=0",
        "--conntrack-tcp-timeout-close-wait=0",
    ]


def kube_proxy_healthy(st: State) -> bool:
    return http_ok(f"{st.url('kube-proxy')}/healthz")


def remove_kube_proxy_rules() -> None:
    """kube-proxy leaves its nftables tables behind when it stops; `down` removes them."""
    for family in ("ip", "ip6"):
        with contextlib.suppress(OSError):
            subprocess.run(
                ["nft", "delete", "table", family, "kube-proxy"], capture_output=True, check=False
            )


def _pod_relabeling() -> list[dict[str, Any]]:
    """Scrape running pods annotated ``prometheus.io/scrape: "true"`` at their pod IP."""
    a = "__meta_kubernetes_pod_annotation_prometheus_io_"
    return [
        {"source_labels": [f"{a}scrape"], "regex": "true", "action": "keep"},
        {"source_labels": ["__meta_kubernetes_pod_phase"], "regex": "Running", "action": "keep"},
        {"source_labels": [f"{a}path"], "regex": "(.+)", "target_label": "__metrics_path__"},
        {
            "source_labels": ["__meta_kubernetes_pod_ip", f"{a}port"],
            "regex": "(.+);(\\d+)",
            "replacement": "$1:$2",
            "target_label": "__address__",
        },
        {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
        {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
        {"regex": "__meta_kubernetes_pod_label_(.+)", "action": "labelmap"},
    ]


def prometheus_config(st: State) -> dict[str, Any]:
    c = P.certs
    tls = {
        "ca_file": str(c / "ca.crt"),
        "cert_file": str(c / f"{PROMETHEUS_USER}.crt"),
        "key_file": str(c / f"{PROMETHEUS_USER}.key"),
    }
    sd = {"role": "pod", "api_server": st.url("kube-apiserver", "https"), "tls_config": tls}
    return {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL},
        "scrape_configs": [
            {
                "job_name": "kubernetes-pods",
                "kubernetes_sd_configs": [sd],
                "relabel_configs": _pod_relabeling(),
            },
            {
                # The operator, Traefik and kube-proxy: one JSON file per target
                # group (write_target), e.g. by `stack.py start-operator`.
                "job_name": "trailboss-stack",
                "file_sd_configs": [{"files": [str(P.root / "prometheus" / "targets" / "*.json")]}],
            },
        ],
    }


def prometheus(st: State) -> list[str]:
    config = P.root / "prometheus" / "prometheus.yml"
    (P.root / "prometheus" / "targets").mkdir(parents=True, exist_ok=True)
    config.write_text(json.dumps(prometheus_config(st), indent=2) + "\n")  # JSON is YAML
    return [
        str(BIN_DIR / "prometheus"),
        f"--config.file={config}",
        f"--storage.tsdb.path={P.data / 'prometheus'}",
        "--storage.tsdb.retention.time=2d",
        f"--web.listen-address=127.0.0.1:{st.ports['prometheus']}",
        "--web.enable-lifecycle",
    ]


def prometheus_healthy(st: State) -> bool:
    return http_ok(f"{st.url('prometheus')}/-/ready")


def write_target(name: str, port: int) -> None:
    """A process outside the cluster for Prometheus to scrape on loopback (file_sd)."""
    targets = P.root / "prometheus" / "targets"
    targets.mkdir(parents=True, exist_ok=True)
    group = [{"targets": [f"127.0.0.1:{port}"], "labels": {"component": name}}]
    (targets / f"{name}.json").write_text(json.dumps(group) + "\n")
