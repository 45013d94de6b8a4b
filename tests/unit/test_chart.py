"""The Helm chart, rendered by a real helm, and the Argo CD health checks, run by a real Lua.

The chart tests need the helm binary that ``make stack-build`` puts in the
cache; they are skipped, saying so, when it is not there yet.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase
from yaml import CSafeLoader as SafeLoader

import trailboss
import trailboss.metrics  # registers the operator's metrics
from tests.unit.test_metrics import exported_series
from trailboss.api.conditions import set_ready
from trailboss.api.deployment import DeploymentStatus
from trailboss.api.modelversion import ModelVersionStatus
from trailboss.api.trainingrun import TrainingRunStatus
from trailboss.cli import _parser
from trailboss.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "trailboss"
ARGOCD = ROOT / "deploy" / "argocd"
CACHE = Path(os.environ.get("TRAILBOSS_CACHE") or Path.home() / ".cache" / "trailboss")
HELM = CACHE / "bin" / "helm"

# Skipped on a developer's machine before the first stack build; under CI they
# run, and fail, without helm.
needs_helm = pytest.mark.skipif(
    not HELM.is_file() and not os.environ.get("CI"),
    reason=f"no helm binary at {HELM}; `make stack-build` builds it",
)

Manifest = dict[str, Any]

HA_NAMESPACED = ["--set", "replicaCount=2", "--set", "watchNamespaces={a,b}"]
EVERYTHING = [
    *HA_NAMESPACED,
    "--set", "serviceMonitor.enabled=true",
    "--set", "prometheusRule.enabled=true",
    "--set", "networkPolicy.enabled=true",
    "--set", "grafanaDashboard.enabled=true",
]  # fmt: skip


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(HELM), *args], capture_output=True, text=True, timeout=120, check=False
    )


def render(*args: str) -> list[Manifest]:
    """The chart as `helm template` renders it with these arguments: each set of
    arguments is rendered once per test process (many tests read the same render),
    and every caller gets a copy of its own to change."""
    return copy.deepcopy(_rendered(args))


@functools.cache
def _rendered(args: tuple[str, ...]) -> list[Manifest]:
    result = helm("template", "trailboss", str(CHART), "--namespace", "trailboss", *args)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.load_all(result.stdout, Loader=SafeLoader) if doc]


def only(objects: list[Manifest], kind: str, name: str | None = None) -> Manifest:
    found = [o for o in objects if o["kind"] == kind and name in (None, o["metadata"]["name"])]
    assert len(found) == 1, f"expected one {kind} {name or ''}, got {len(found)}"
    return found[0]


def kinds(objects: list[Manifest]) -> set[str]:
    return {o["kind"] for o in objects}


def container(objects: list[Manifest]) -> Manifest:
    pod = only(objects, "Deployment")["spec"]["template"]["spec"]
    (operator,) = pod["containers"]
    result: Manifest = operator
    return result


def aggregated(role: Manifest) -> bool:
    """A role that extends the built-in user roles, bound to no ServiceAccount."""
    labels = role["metadata"].get("labels") or {}
    return any(k.startswith("rbac.authorization.k8s.io/aggregate-to-") for k in labels)


def grants(objects: list[Manifest]) -> dict[tuple[str, str, str], set[str]]:
    """(namespace or "*", apiGroup, resource) -> verbs, over the operator's own roles."""
    table: dict[tuple[str, str, str], set[str]] = {}
    for role in objects:
        if role["kind"] not in ("Role", "ClusterRole") or aggregated(role):
            continue
        where = role["metadata"].get("namespace", "*")
        for rule in role["rules"]:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    table.setdefault((where, group, resource), set()).update(rule["verbs"])
    return table


NAMESPACED_GRANTS = {
    ("trailboss.dev", "trainingruns"): {"get", "list", "watch", "patch", "create"},
    ("trailboss.dev", "modelversions"): {"get", "list", "watch", "patch", "create"},
    ("trailboss.dev", "deployments"): {"get", "list", "watch", "patch"},
    ("trailboss.dev", "trainingruns/status"): {"patch"},
    ("trailboss.dev", "modelversions/status"): {"patch"},
    ("trailboss.dev", "deployments/status"): {"patch"},
    ("batch", "jobs"): {"get", "list", "watch", "create", "patch"},
    ("", "services"): {"list", "create", "patch"},
    ("", "secrets"): {"get"},
    ("", "pods"): {"list"},
    ("", "events"): {"create", "patch", "list"},
    ("apps", "deployments"): {"list", "watch", "create", "patch", "delete"},
    ("gateway.networking.k8s.io", "httproutes"): {"get", "create", "patch", "delete"},
}  # fmt: skip
CRD_READ = {("apiextensions.k8s.io", "customresourcedefinitions"): {"list", "watch"}}
PEERING = {"list", "watch", "patch"}


# --------------------------------------------------------------------------- lint


PINNED_AND_MIRRORED = [
    "--set", "global.imageRegistry=registry.corp:5000",
    "--set", "image.digest=sha256:" + "0" * 64,
    "--set", "serverImage.digest=sha256:" + "1" * 64,
    "--set", "driftImage.tag=0.1.0-drift",
    "--set", "imagePullSecrets[0].name=regcred",
    "--set", "podMonitor.enabled=true",
    "--set", "podDisruptionBudget.enabled=true",
]  # fmt: skip


@needs_helm
@pytest.mark.parametrize(
    "values",
    [[], EVERYTHING, ["--set", "replicaCount=3"], PINNED_AND_MIRRORED],
    ids=["defaults", "everything", "ha", "pinned-and-mirrored"],
)  # fmt: skip
def test_helm_lint_strict_passes(values: list[str]) -> None:
    result = helm("lint", "--strict", "--with-subcharts", str(CHART), *values)
    assert result.returncode == 0, result.stdout + result.stderr


# --------------------------------------------------------------------------- defaults


@needs_helm
def test_defaults_render_a_single_operator_watching_all_namespaces() -> None:
    objects = render()
    assert kinds(objects) == {
        "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Service", "Deployment",
        "CustomResourceDefinition", "Pod",  # the helm test pod
    }  # fmt: skip
    deployment = only(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    operator = container(objects)
    assert operator["image"] == f"ghcr.io/trailboss-dev/trailboss:{chart_version('appVersion')}"
    assert operator["args"] == [
        "run", "--all-namespaces", "--metrics-port", "9090", "--liveness-port", "8081",
        "--log-format", "text",
    ]  # fmt: skip
    assert {p["name"]: p["containerPort"] for p in operator["ports"]} == {
        "metrics": 9090,
        "liveness": 8081,
    }
    probe = operator["livenessProbe"]["httpGet"]
    assert (probe["path"], probe["port"]) == ("/healthz", "liveness")
    service = only(objects, "Service")
    assert service["spec"]["ports"][0]["port"] == 9090


@needs_helm
def test_operator_runs_unprivileged_on_a_read_only_root_filesystem() -> None:
    objects = render()
    pod = only(objects, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    ctx = container(objects)["securityContext"]
    assert ctx["readOnlyRootFilesystem"] is True
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["capabilities"] == {"drop": ["ALL"]}
    assert ctx["runAsNonRoot"] is True
    assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}
    mounts = {m["name"]: m["mountPath"] for m in container(objects)["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert mounts == {"tmp": "/tmp"}
    assert "emptyDir" in volumes["tmp"]


@needs_helm
def test_the_cli_accepts_the_rendered_arguments() -> None:
    for values in ([], HA_NAMESPACED, ["--set", "verbose=true", "--set", "metrics.port=9100"]):
        args = _parser().parse_args(container(render(*values))["args"])
        assert args.command == "run"


# --------------------------------------------------------------------------- RBAC


@needs_helm
@pytest.mark.parametrize("values", [[], EVERYTHING, ["--set", "replicaCount=2"]])
def test_rbac_reads_secrets_only_by_name_and_grants_no_wildcards(values: list[str]) -> None:
    """A Secret a Deployment names for Prometheus is read by name; listing or
    watching would hand the operator every Secret's contents at once."""
    for (_, group, resource), verbs in grants(render(*values)).items():
        if resource == "secrets":
            assert verbs == {"get"}
        assert "*" not in (group, resource, *verbs)


@needs_helm
@pytest.mark.parametrize("values", [[], ["--set", "watchNamespaces={a,b}"]])
def test_an_install_without_secret_reads_grants_no_secret_at_all(values: list[str]) -> None:
    table = grants(render(*values, "--set", "rbac.readSecrets=false"))
    assert not [grant for grant in table if grant[2] == "secrets"]
    assert any(grant[2] == "secrets" for grant in grants(render(*values)))


@needs_helm
def test_clusterwide_rbac_is_exactly_what_the_operator_uses() -> None:
    table = grants(render())
    expected = {
        ("*", group, resource): verbs
        for (group, resource), verbs in {
            **NAMESPACED_GRANTS,
            **CRD_READ,
        }.items()
    }
    assert table == expected
    assert "patch" in table[("*", "trailboss.dev", "trainingruns/status")]
    assert "create" not in table[("*", "trailboss.dev", "deployments")]


@needs_helm
def test_watched_namespaces_get_roles_and_only_reads_stay_clusterwide() -> None:
    objects = render("--set", "watchNamespaces={a,b}")
    table = grants(objects)
    expected = {("*", g, r): v for (g, r), v in CRD_READ.items()}
    # kopf lists and watches namespaces to notice the named ones come and go.
    expected[("*", "", "namespaces")] = {"list", "watch"}
    for namespace in ("a", "b"):
        expected |= {(namespace, g, r): v for (g, r), v in NAMESPACED_GRANTS.items()}
        binding = only(
            [o for o in objects if o["metadata"].get("namespace") == namespace], "RoleBinding"
        )
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "trailboss", "namespace": "trailboss"}
        ]
    assert table == expected
    assert container(objects)["args"][:5] == ["run", "--namespace", "a", "--namespace", "b"]
    assert "--all-namespaces" not in container(objects)["args"]


# --------------------------------------------------------------------------- peering


def crd_names(objects: list[Manifest]) -> set[str]:
    return {o["metadata"]["name"] for o in objects if o["kind"] == "CustomResourceDefinition"}


TRAILBOSS_CRDS = {"trainingruns.trailboss.dev", "modelversions.trailboss.dev",
                  "deployments.trailboss.dev"}  # fmt: skip
PEERING_CRDS = {"clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev"}


@needs_helm
def test_one_replica_has_no_peering_at_all() -> None:
    for objects in (render(), render("--set", "watchNamespaces={a}")):
        assert not [o for o in objects if "kopf" in json.dumps(o)]
        assert "--peering" not in container(objects)["args"]


@needs_helm
def test_crds_ship_with_every_install_so_scaling_up_is_an_upgrade() -> None:
    # The peering CRDs are in the kopf-peering subchart's crds/, which go in
    # before any template, so the peering object never waits for its CRD. The
    # Trailboss CRDs are templates, so they upgrade with the chart.
    assert crd_names(render("--include-crds")) == TRAILBOSS_CRDS | PEERING_CRDS
    assert crd_names(render("--include-crds", "--set", "peering.crds.install=false")) == (
        TRAILBOSS_CRDS
    )
    assert crd_names(render()) == TRAILBOSS_CRDS
    assert crd_names(render("--set", "crds.enabled=false")) == set()


@needs_helm
def test_two_replicas_peer_clusterwide() -> None:
    objects = render("--set", "replicaCount=2", "--include-crds")
    deployment = only(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    args = container(objects)["args"]
    assert args[args.index("--peering") + 1] == "trailboss"
    assert "--all-namespaces" in args
    peering = only(objects, "ClusterKopfPeering")
    assert (peering["apiVersion"], peering["metadata"]["name"]) == ("kopf.dev/v1", "trailboss")
    scopes = {
        o["spec"]["names"]["kind"]: o["spec"]["scope"]
        for o in objects
        if o["kind"] == "CustomResourceDefinition" and o["spec"]["group"] == "kopf.dev"
    }
    assert scopes == {"ClusterKopfPeering": "Cluster", "KopfPeering": "Namespaced"}
    assert grants(objects)[("*", "kopf.dev", "clusterkopfpeerings")] == PEERING
    # Replicas on one node would fall together.
    anti = deployment["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    assert anti["preferredDuringSchedulingIgnoredDuringExecution"]


@needs_helm
def test_two_replicas_watching_namespaces_peer_in_each_namespace() -> None:
    objects = render(*HA_NAMESPACED)
    assert container(objects)["args"] == [
        "run", "--namespace", "a", "--namespace", "b",
        "--metrics-port", "9090", "--liveness-port", "8081", "--peering", "trailboss",
        "--log-format", "text",
    ]  # fmt: skip
    peerings = [o for o in objects if o["kind"] == "KopfPeering"]
    assert sorted(p["metadata"]["namespace"] for p in peerings) == ["a", "b"]
    assert "ClusterKopfPeering" not in kinds(objects)
    table = grants(objects)
    assert table[("a", "kopf.dev", "kopfpeerings")] == PEERING
    assert table[("b", "kopf.dev", "kopfpeerings")] == PEERING
    assert not [key for key in table if key[0] == "*" and key[1] == "kopf.dev"]


# --------------------------------------------------------------------------- settings


@needs_helm
def test_values_reach_the_operator_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    objects = render(
        "--set", "mlflow.trackingUri=http://mlflow.ml:5000",
        "--set", "mlflow.uiUrl=https://mlflow.example.com",
        "--set", "mlflow.tokenSecret.name=mlflow-token",
        "--set", "s3.endpointUrl=http://minio.minio:9000",
        "--set", "s3.credentialsSecret=s3-creds",
        "--set-string", "trainingPodLabels.sidecar\\.istio\\.io/inject=false",
        "--set", "extraEnv[0].name=AWS_REGION", "--set", "extraEnv[0].value=eu-west-1",
    )  # fmt: skip
    operator = container(objects)
    env = {e["name"]: e for e in operator["env"]}
    assert env["MLFLOW_TRACKING_TOKEN"]["valueFrom"] == {
        "secretKeyRef": {"name": "mlflow-token", "key": "token"}
    }
    assert env["AWS_REGION"]["value"] == "eu-west-1"
    assert operator["envFrom"] == [{"secretRef": {"name": "s3-creds"}}]
    for name in list(os.environ):
        if name.startswith("TRAILBOSS_"):
            monkeypatch.delenv(name)
    for name, entry in env.items():
        if "value" in entry:
            monkeypatch.setenv(name, entry["value"])
    settings = Settings()
    assert settings.mlflow_tracking_uri == "http://mlflow.ml:5000"
    assert settings.mlflow_ui_url == "https://mlflow.example.com"
    assert settings.s3_endpoint_url == "http://minio.minio:9000"
    assert settings.s3_credentials_secret == "s3-creds"
    assert settings.training_pod_labels == {"sidecar.istio.io/inject": "false"}


@needs_helm
def test_defaults_set_the_tracking_server_and_images_and_nothing_optional() -> None:
    operator = container(render())
    assert [e["name"] for e in operator["env"]] == [
        "MLFLOW_TRACKING_URI",
        "TRAILBOSS_SERVER_IMAGE", "TRAILBOSS_SERVER_IMAGE_PULL_POLICY",
        "TRAILBOSS_DRIFT_IMAGE", "TRAILBOSS_DRIFT_IMAGE_PULL_POLICY",
    ]  # fmt: skip
    assert "envFrom" not in operator


# --------------------------------------------------------------------------- monitoring


SERIES_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}

# The drift and retraining series the chart's alerts and dashboard read, with
# the labels they assume (`namespace` is the Deployment's).
DEPLOYMENT_METRICS = {
    "trailboss_drift_score": ("namespace", "deployment", "model_version", "feature"),
    "trailboss_drift_detected": ("namespace", "deployment", "model_version", "feature"),
    "trailboss_drift_share": ("namespace", "deployment", "model_version"),
    "trailboss_dataset_drift": ("namespace", "deployment", "model_version"),
    "trailboss_drift_window_rows": ("namespace", "deployment", "model_version"),
    "trailboss_drift_last_check_timestamp_seconds": ("namespace", "deployment", "model_version"),
    "trailboss_retraining_triggers_total": ("namespace", "deployment", "reason"),
    "trailboss_last_retraining_timestamp_seconds": ("namespace", "deployment"),
}


def operator_label_names() -> dict[str, tuple[str, ...]]:
    """Series name -> label names, over the metrics the operator declares."""
    return {
        metric._name + suffix: tuple(metric._labelnames)
        for metric in vars(trailboss.metrics).values()
        if isinstance(metric, MetricWrapperBase)
        for suffix in SERIES_SUFFIXES.get(metric._type or "", ("",))
    }


def referenced_metrics(text: str) -> set[str]:
    return set(re.findall(r"\btrailboss_[a-z_]+\b", text))


def test_deployment_metrics_carry_the_labels_the_chart_reads() -> None:
    declared = operator_label_names()
    assert declared["trailboss_rollouts_total"] == ("namespace", "deployment", "result")
    assert set(DEPLOYMENT_METRICS) <= set(declared)
    for name, labels in DEPLOYMENT_METRICS.items():
        if name in declared:
            assert declared[name] == labels, name


@needs_helm
def test_optional_monitoring_objects_render_only_when_enabled() -> None:
    assert not kinds(render()) & {"ServiceMonitor", "PrometheusRule", "NetworkPolicy"}
    objects = render(*EVERYTHING)
    assert {"ServiceMonitor", "PrometheusRule", "NetworkPolicy", "ConfigMap"} <= kinds(objects)
    monitor = only(objects, "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= (
        only(objects, "Service")["metadata"]["labels"].items()
    )


@needs_helm
def test_alerts_query_metrics_the_operator_exports() -> None:
    rule = only(render("--set", "prometheusRule.enabled=true"), "PrometheusRule")
    alerts = {r["alert"]: r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]}
    assert set(alerts) == {
        "TrailbossReconcileErrors", "TrailbossTrainingFailures", "TrailbossOperatorDown",
        "TrailbossDatasetDrift", "TrailbossDriftCheckStale", "TrailbossRetrainingStorm",
        "TrailbossRolloutStuck", "TrailbossModelServerErrors",
    }  # fmt: skip
    assert "rate(trailboss_reconcile_errors_total" in alerts["TrailbossReconcileErrors"]
    assert 'outcome="failed"' in alerts["TrailbossTrainingFailures"]
    assert "[1h]" in alerts["TrailbossTrainingFailures"]
    assert 'up{job="trailboss-metrics", namespace="trailboss"}' in alerts["TrailbossOperatorDown"]
    assert "trailboss_dataset_drift{" in alerts["TrailbossDatasetDrift"]
    assert "trailboss_drift_last_check_timestamp_seconds{" in alerts["TrailbossDriftCheckStale"]
    assert "increase(trailboss_retraining_triggers_total{" in alerts["TrailbossRetrainingStorm"]
    assert 'role="canary"' in alerts["TrailbossRolloutStuck"]
    assert 'trailboss_model_requests_total{outcome="error"}' in alerts["TrailbossModelServerErrors"]
    exported = set().union(*exported_series().values())
    assert referenced_metrics(json.dumps(alerts)) <= exported


@needs_helm
def test_network_policy_allows_dns_api_server_mlflow_s3_prometheus_and_scrapes() -> None:
    policy = only(render("--set", "networkPolicy.enabled=true"), "NetworkPolicy")
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    egress_ports = [{p["port"] for p in rule["ports"]} for rule in policy["spec"]["egress"]]
    assert egress_ports == [{53}, {443, 6443}, {5000}, {443, 9000}, {9090}]
    assert policy["spec"]["ingress"] == [{"ports": [{"port": "metrics", "protocol": "TCP"}]}]


# --------------------------------------------------------------------------- schema


@needs_helm
@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        (["--set", "replicaCount=two"], "replicaCount"),
        (["--set", "image.pullPolicy=Sometimes"], "pullPolicy"),
        (["--set", "image.repository="], "repository"),
        (["--set", "replicas=2"], "replicas"),
        (["--set", "watchNamespaces={Team_A}"], "watchNamespaces"),
        (["--set", "trainingPodLabels.inject=false"], "trainingPodLabels"),
    ],
    ids=["replicaCount-string", "pullPolicy-enum", "empty-repository", "unknown-key",
         "bad-namespace", "non-string-label"],
)  # fmt: skip
def test_schema_rejects_bad_values_naming_the_value(values: list[str], complaint: str) -> None:
    result = helm("template", "trailboss", str(CHART), *values)
    assert result.returncode != 0
    assert "schema" in result.stderr
    assert complaint in result.stderr


@needs_helm
def test_schema_message_for_a_string_replica_count() -> None:
    result = helm("lint", "--strict", str(CHART), "--set", "replicaCount=two")
    assert result.returncode != 0
    assert "replicaCount" in result.stdout + result.stderr
    assert "integer" in result.stdout + result.stderr


# --------------------------------------------------------------------------- chart files


def chart_version(key: str) -> str:
    value: str = yaml.safe_load((CHART / "Chart.yaml").read_text())[key]
    return value


def test_chart_metadata() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert (chart["apiVersion"], chart["name"]) == ("v2", "trailboss")
    # One version for the package, the image and the chart: `make chart-package`
    # stamps the chart with it, and the committed Chart.yaml agrees.
    assert chart["version"] == chart["appVersion"] == trailboss.__version__
    assert chart["kubeVersion"] == ">=1.29.0-0"


def test_chart_ships_the_generated_crds() -> None:
    shipped = sorted(p.name for p in (CHART / "files" / "crds").glob("*.yaml"))
    assert shipped == sorted(p.name for p in (ROOT / "crds").glob("*.yaml"))


# --------------------------------------------------------------------------- Argo CD


def test_argocd_application_uses_server_side_apply() -> None:
    app = yaml.safe_load((ARGOCD / "application.yaml").read_text())
    assert app["kind"] == "Application"
    assert app["spec"]["source"]["path"] == "charts/trailboss"
    assert "ServerSideApply=true" in app["spec"]["syncPolicy"]["syncOptions"]


def test_argocd_cm_patch_registers_the_health_scripts_verbatim() -> None:
    patch = yaml.safe_load((ARGOCD / "argocd-cm-patch.yaml").read_text())
    registered = {
        key.removeprefix("resource.customizations.health."): script
        for key, script in patch["data"].items()
        if key.startswith("resource.customizations.health.")
    }
    on_disk = {p.parent.name: p.read_text() for p in (ARGOCD / "health").glob("*/health.lua")}
    assert set(on_disk) == {
        "trailboss.dev_TrainingRun", "trailboss.dev_ModelVersion", "trailboss.dev_Deployment"
    }  # fmt: skip
    assert registered == on_disk


HealthCheck = Callable[[Manifest], dict[str, str]]


@pytest.fixture(scope="module")
def health() -> Callable[[str], HealthCheck]:
    """Runs deploy/argocd/health/trailboss.dev_<Kind>/health.lua the way Argo CD
    does: Lua 5.1 (gopher-lua's dialect), the object as the global ``obj``."""
    try:
        from lupa import lua51
    except ImportError:  # pragma: no cover
        pytest.fail("the Lua health checks need `lupa` (in the dev extras)")

    def check_for(kind: str) -> HealthCheck:
        script = (ARGOCD / "health" / f"trailboss.dev_{kind}" / "health.lua").read_text()

        def check(obj: Manifest) -> dict[str, str]:
            lua = lua51.LuaRuntime(unpack_returned_tuples=True)
            lua.globals().obj = lua.table_from(obj, recursive=True)
            result = lua.execute(script)
            return dict(result.items())

        return check

    return check_for


def obj(kind: str, status: Any = None, generation: int = 2, **spec: Any) -> Manifest:
    body: Manifest = {
        "apiVersion": "trailboss.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": "churn", "namespace": "ml", "generation": generation},
        "spec": spec,
    }
    if status is not None:
        body["status"] = status.to_json()
    return body


STATUS = {
    "TrainingRun": TrainingRunStatus,
    "ModelVersion": ModelVersionStatus,
    "Deployment": DeploymentStatus,
}


def status(kind: str, phase: str, *, observed: int | None = 2, message: str = "") -> Any:
    conditions = set_ready([], phase in ("Succeeded", "Validated", "Healthy"), phase, message, 2)
    return STATUS[kind](phase=phase, observed_generation=observed, conditions=conditions)


@pytest.mark.parametrize(
    ("kind", "phase", "expected"),
    [
        ("TrainingRun", "Succeeded", "Healthy"),
        ("TrainingRun", "Failed", "Degraded"),
        ("TrainingRun", "Running", "Progressing"),
        ("TrainingRun", "Pending", "Progressing"),
        ("ModelVersion", "Validated", "Healthy"),
        ("ModelVersion", "Rejected", "Degraded"),
        ("ModelVersion", "Failed", "Degraded"),
        ("ModelVersion", "Registered", "Progressing"),
        ("ModelVersion", "Pending", "Progressing"),
        ("Deployment", "Healthy", "Healthy"),
        ("Deployment", "Degraded", "Degraded"),
        ("Deployment", "Paused", "Suspended"),
        ("Deployment", "Progressing", "Progressing"),
    ],
)
def test_health_follows_the_phase(
    health: Callable[[str], HealthCheck], kind: str, phase: str, expected: str
) -> None:
    result = health(kind)(obj(kind, status(kind, phase, message=f"churn is {phase.lower()}")))
    assert result == {"status": expected, "message": f"churn is {phase.lower()}"}


FINAL = {"TrainingRun": "Succeeded", "ModelVersion": "Validated", "Deployment": "Healthy"}


@pytest.mark.parametrize("kind", sorted(FINAL))
def test_health_is_progressing_until_the_operator_observes_the_spec(
    health: Callable[[str], HealthCheck], kind: str
) -> None:
    check = health(kind)
    done = FINAL[kind]
    assert check(obj(kind))["status"] == "Progressing"  # no status yet
    assert check(obj(kind, status(kind, done, observed=None)))["status"] == "Progressing"
    stale = check(obj(kind, status(kind, done, observed=1), generation=2))
    assert stale["status"] == "Progressing"
    assert "observe" in stale["message"]
    assert check(obj(kind, status(kind, done, observed=2), generation=2))["status"] == "Healthy"


@pytest.mark.parametrize("kind", sorted(FINAL))
def test_health_message_falls_back_to_the_phase(
    health: Callable[[str], HealthCheck], kind: str
) -> None:
    bare = STATUS[kind](phase=FINAL[kind], observed_generation=2)
    assert health(kind)(obj(kind, bare)) == {
        "status": "Healthy",
        "message": f"{kind} is {FINAL[kind]}",
    }


def test_suspended_training_run_is_suspended_until_it_finishes(
    health: Callable[[str], HealthCheck],
) -> None:
    check = health("TrainingRun")
    suspended = obj("TrainingRun", status("TrainingRun", "Pending"), suspend=True)
    assert check(suspended) == {"status": "Suspended", "message": "TrainingRun is Pending"}
    finished = obj("TrainingRun", status("TrainingRun", "Failed"), suspend=True)
    assert check(finished)["status"] == "Degraded"
