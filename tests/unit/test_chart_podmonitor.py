"""A prometheus-operator PodMonitor finds the model servers the operator creates,
so a Prometheus that ignores prometheus.io/* annotations scrapes them too."""

from __future__ import annotations

import pytest

from tests.unit.test_chart import Manifest, kinds, needs_helm, only, render
from trailboss.api.deployment import DeploymentSpec
from trailboss.builders import serving

MONITORING = "monitoring.coreos.com/v1"


def model_server_pod(namespace: str = "ml") -> Manifest:
    """A model server as the operator builds it: its pod labels and ports."""
    owner = serving.Owner(name="churn", namespace=namespace, uid="u-1")
    spec = DeploymentSpec.model_validate(
        {"model": "churn", "versionPolicy": {"latest": "Validated"}}
    )
    served = serving.ServedVersion(name="churn-3", model="churn", artifact_uri="s3://m/1")
    ctx = serving.ServingContext(image="serve:1", tracking_uri="http://mlflow:5000")
    template: Manifest = serving.build_server(owner, spec, served, 1, ctx)["spec"]["template"]
    return template


def selects(monitor: Manifest, pod: Manifest, namespace: str) -> bool:
    spec = monitor["spec"]
    wanted = spec["selector"]["matchLabels"].items()
    namespaces = spec["namespaceSelector"]
    in_namespace = namespaces.get("any") is True or namespace in namespaces["matchNames"]
    return in_namespace and wanted <= pod["metadata"]["labels"].items()


@needs_helm
def test_pod_monitor_scrapes_every_model_server_the_operator_creates() -> None:
    monitor = only(render("--set", "podMonitor.enabled=true"), "PodMonitor")
    pod = model_server_pod()
    assert selects(monitor, pod, "ml")
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    (server,) = pod["spec"]["containers"]
    # The same target as the pod's own prometheus.io annotations.
    port = {p["name"]: p["containerPort"] for p in server["ports"]}[endpoint["port"]]
    annotations = pod["metadata"]["annotations"]
    assert (str(port), endpoint["path"]) == (
        annotations["prometheus.io/port"],
        annotations["prometheus.io/path"],
    )
    assert endpoint["interval"] == "30s"


@needs_helm
def test_pod_monitor_watches_only_the_watched_namespaces() -> None:
    monitor = only(
        render("--set", "podMonitor.enabled=true", "--set", "watchNamespaces={a,b}"), "PodMonitor"
    )
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["a", "b"]}
    assert selects(monitor, model_server_pod("a"), "a")
    assert not selects(monitor, model_server_pod("c"), "c")


@needs_helm
def test_pod_monitor_appears_by_itself_where_prometheus_operator_runs() -> None:
    assert "PodMonitor" not in kinds(render())
    assert "PodMonitor" in kinds(render("--api-versions", MONITORING))
    assert "PodMonitor" in kinds(render("--api-versions", f"{MONITORING}/PodMonitor"))


@needs_helm
@pytest.mark.parametrize(
    ("values", "rendered"),
    [
        (["--set", "podMonitor.enabled=false", "--api-versions", MONITORING], False),
        (["--set", "podMonitor.enabled=true"], True),
    ],
    ids=["off-with-the-api", "on-without-the-api"],
)
def test_pod_monitor_can_be_forced_either_way(values: list[str], rendered: bool) -> None:
    assert ("PodMonitor" in kinds(render(*values))) is rendered


@needs_helm
def test_pod_monitor_labels_and_relabelings() -> None:
    monitor = only(
        render(
            "--set", "podMonitor.enabled=true",
            "--set", "podMonitor.labels.release=prometheus",
            "--set", "podMonitor.interval=15s",
            "--set", "podMonitor.scrapeTimeout=10s",
            "--set", "podMonitor.relabelings[0].targetLabel=cluster",
            "--set", "podMonitor.relabelings[0].replacement=prod-eu",
            "--set", "podMonitor.metricRelabelings[0].action=drop",
            "--set", "podMonitor.metricRelabelings[0].regex=python_gc_.*",
            "--set", "podMonitor.metricRelabelings[0].sourceLabels={__name__}",
        ),
        "PodMonitor",
    )  # fmt: skip
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert (endpoint["interval"], endpoint["scrapeTimeout"]) == ("15s", "10s")
    assert endpoint["relabelings"] == [{"targetLabel": "cluster", "replacement": "prod-eu"}]
    assert endpoint["metricRelabelings"] == [
        {"action": "drop", "regex": "python_gc_.*", "sourceLabels": ["__name__"]}
    ]
