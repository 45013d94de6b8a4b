"""Chart values platform teams expect (cert-manager, kube-prometheus-stack): each one
rendered by a real helm and validated by values.schema.json."""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml

import trailboss
from tests.unit.test_chart import (
    CHART,
    TRAILBOSS_CRDS,
    Manifest,
    container,
    helm,
    kinds,
    needs_helm,
    only,
    render,
)
from trailboss.cli import _parser


def pod_spec(objects: list[Manifest]) -> Manifest:
    spec: Manifest = only(objects, "Deployment")["spec"]["template"]["spec"]
    return spec


def selector(objects: list[Manifest]) -> dict[str, str]:
    labels: dict[str, str] = only(objects, "Deployment")["spec"]["selector"]["matchLabels"]
    return labels


def crds(objects: list[Manifest]) -> list[Manifest]:
    return [o for o in objects if o["kind"] == "CustomResourceDefinition"]


# --------------------------------------------------------------------------- CRDs


@needs_helm
def test_crds_are_templates_kept_on_uninstall_by_default() -> None:
    rendered = crds(render())
    assert {c["metadata"]["name"] for c in rendered} == TRAILBOSS_CRDS
    for crd in rendered:
        assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
        assert crd["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
        assert crd["spec"]["group"] == "trailboss.dev"


@needs_helm
def test_crds_can_be_deleted_with_the_release_or_left_out() -> None:
    for crd in crds(render("--set", "crds.keep=false")):
        assert "helm.sh/resource-policy" not in (crd["metadata"].get("annotations") or {})
    assert not crds(render("--set", "crds.enabled=false"))


@needs_helm
def test_rendered_crds_keep_the_generated_schema() -> None:
    for crd in crds(render()):
        generated = yaml.safe_load(
            (
                CHART / "files" / "crds" / f"trailboss.dev_{crd['spec']['names']['plural']}.yaml"
            ).read_text()
        )
        assert crd["spec"] == generated["spec"]


# --------------------------------------------------------------------------- user roles


@needs_helm
def test_aggregated_roles_extend_view_edit_and_admin() -> None:
    objects = render()
    view = only(objects, "ClusterRole", "trailboss-view")
    edit = only(objects, "ClusterRole", "trailboss-edit")
    assert {k: v for k, v in view["metadata"]["labels"].items() if "aggregate" in k} == {
        "rbac.authorization.k8s.io/aggregate-to-view": "true",
        "rbac.authorization.k8s.io/aggregate-to-edit": "true",
        "rbac.authorization.k8s.io/aggregate-to-admin": "true",
    }
    assert {k: v for k, v in edit["metadata"]["labels"].items() if "aggregate" in k} == {
        "rbac.authorization.k8s.io/aggregate-to-edit": "true",
        "rbac.authorization.k8s.io/aggregate-to-admin": "true",
    }
    kinds_ = ["trainingruns", "modelversions", "deployments"]
    assert view["rules"][0] == {
        "apiGroups": ["trailboss.dev"], "resources": kinds_, "verbs": ["get", "list", "watch"]
    }  # fmt: skip
    assert edit["rules"] == [{
        "apiGroups": ["trailboss.dev"], "resources": kinds_,
        "verbs": ["create", "update", "patch", "delete", "deletecollection"],
    }]  # fmt: skip
    # Nobody binds them: the built-in roles pick them up by label.
    bindings = [o for o in objects if o["kind"] == "ClusterRoleBinding"]
    assert {b["roleRef"]["name"] for b in bindings} == {"trailboss"}
    names = {o["metadata"]["name"] for o in render("--set", "rbac.aggregateToDefaultRoles=false")}
    assert not {"trailboss-view", "trailboss-edit"} & names


# --------------------------------------------------------------------------- operator pod


@needs_helm
def test_extra_args_env_volumes_and_log_format_reach_the_operator() -> None:
    objects = render(
        "--set", "logFormat=json",
        "--set", "extraArgs={--verbose}",
        "--set", "extraEnv[0].name=REQUESTS_CA_BUNDLE",
        "--set", "extraEnv[0].value=/etc/ssl/private-ca/ca.crt",
        "--set", "extraVolumes[0].name=private-ca",
        "--set", "extraVolumes[0].configMap.name=private-ca",
        "--set", "extraVolumeMounts[0].name=private-ca",
        "--set", "extraVolumeMounts[0].mountPath=/etc/ssl/private-ca",
    )  # fmt: skip
    operator = container(objects)
    assert operator["args"][-3:] == ["--log-format", "json", "--verbose"]
    args = _parser().parse_args(operator["args"])
    assert (args.log_format, args.verbose) == ("json", True)
    assert {"name": "REQUESTS_CA_BUNDLE", "value": "/etc/ssl/private-ca/ca.crt"} in operator["env"]
    assert {"name": "private-ca", "mountPath": "/etc/ssl/private-ca"} in operator["volumeMounts"]
    volumes = {v["name"]: v for v in pod_spec(objects)["volumes"]}
    assert volumes["private-ca"] == {"name": "private-ca", "configMap": {"name": "private-ca"}}
    assert "tmp" in volumes


@needs_helm
def test_image_pull_secrets_merge_global_and_chart_values_once_each() -> None:
    objects = render(
        "--set", "global.imagePullSecrets[0].name=corp",
        "--set", "imagePullSecrets[0].name=regcred",
        "--set", "imagePullSecrets[1].name=corp",
    )  # fmt: skip
    expected = [{"name": "corp"}, {"name": "regcred"}]
    assert pod_spec(objects)["imagePullSecrets"] == expected
    assert only(objects, "Pod")["spec"]["imagePullSecrets"] == expected
    assert "imagePullSecrets" not in pod_spec(render())


@needs_helm
def test_topology_spread_selects_the_operator_pods_unless_told_otherwise() -> None:
    objects = render(
        "--set", "topologySpreadConstraints[0].maxSkew=1",
        "--set", "topologySpreadConstraints[0].topologyKey=topology.kubernetes.io/zone",
        "--set", "topologySpreadConstraints[0].whenUnsatisfiable=ScheduleAnyway",
    )  # fmt: skip
    (constraint,) = pod_spec(objects)["topologySpreadConstraints"]
    assert constraint["labelSelector"] == {"matchLabels": selector(objects)}
    assert constraint["topologyKey"] == "topology.kubernetes.io/zone"
    own = render(
        "--set", "topologySpreadConstraints[0].maxSkew=2",
        "--set", "topologySpreadConstraints[0].topologyKey=kubernetes.io/hostname",
        "--set", "topologySpreadConstraints[0].whenUnsatisfiable=DoNotSchedule",
        "--set", "topologySpreadConstraints[0].labelSelector.matchLabels.app=x",
    )  # fmt: skip
    assert pod_spec(own)["topologySpreadConstraints"][0]["labelSelector"] == {
        "matchLabels": {"app": "x"}
    }


@needs_helm
@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], {"minAvailable": 1}),
        (["--set", "podDisruptionBudget.minAvailable=50%"], {"minAvailable": "50%"}),
        (["--set", "podDisruptionBudget.maxUnavailable=1"], {"maxUnavailable": 1}),
    ],
)
def test_pod_disruption_budget(values: list[str], expected: dict[str, Any]) -> None:
    objects = render(
        "--set", "replicaCount=2", "--set", "podDisruptionBudget.enabled=true", *values
    )
    pdb = only(objects, "PodDisruptionBudget")
    assert pdb["spec"] == {"selector": {"matchLabels": selector(objects)}, **expected}
    assert "PodDisruptionBudget" not in kinds(render())


@needs_helm
@pytest.mark.parametrize(
    "values",
    [
        [],
        ["--set", "podDisruptionBudget.minAvailable=1"],
        ["--set", "podDisruptionBudget.minAvailable=100%"],
        ["--set", "podDisruptionBudget.maxUnavailable=0"],
        ["--set", "replicaCount=2", "--set", "podDisruptionBudget.minAvailable=2"],
        ["--set", "replicaCount=2", "--set", "podDisruptionBudget.minAvailable=60%"],
        ["--set", "replicaCount=0"],
    ],
    ids=["one-replica", "min-1-of-1", "min-100%", "max-0", "min-2-of-2", "min-60%-of-2",
         "no-replica"],
)  # fmt: skip
def test_no_pod_disruption_budget_that_would_block_every_drain(values: list[str]) -> None:
    # Argo CD and Flux users want a clean render, not a failed sync: the chart
    # renders no budget, and its notes say why.
    objects = render("--set", "podDisruptionBudget.enabled=true", *values)
    assert "PodDisruptionBudget" not in kinds(objects)
    notes = helm("install", "trailboss", str(CHART), "--dry-run=client",
                 "--set", "podDisruptionBudget.enabled=true", *values)  # fmt: skip
    assert notes.returncode == 0, notes.stderr
    assert "No PodDisruptionBudget was created" in notes.stdout


@needs_helm
def test_a_pod_disruption_budget_that_lets_one_pod_go_is_rendered() -> None:
    for values in (
        ["--set", "replicaCount=3", "--set", "podDisruptionBudget.minAvailable=2"],
        ["--set", "replicaCount=2", "--set", "podDisruptionBudget.minAvailable=50%"],
        ["--set", "podDisruptionBudget.maxUnavailable=1"],
        ["--set", "podDisruptionBudget.maxUnavailable=1%"],
    ):
        objects = render("--set", "podDisruptionBudget.enabled=true", *values)
        assert "PodDisruptionBudget" in kinds(objects), values


# --------------------------------------------------------------------------- labels


@needs_helm
def test_common_labels_on_every_object_but_never_in_selectors() -> None:
    objects = render(
        "--set", "commonLabels.team=ml-platform",
        "--set", "serviceMonitor.enabled=true", "--set", "prometheusRule.enabled=true",
        "--set", "networkPolicy.enabled=true", "--set", "grafanaDashboard.enabled=true",
        "--set", "podDisruptionBudget.enabled=true", "--set", "replicaCount=2",
    )  # fmt: skip
    for obj in objects:
        assert obj["metadata"]["labels"]["team"] == "ml-platform", obj["metadata"]["name"]
    assert "team" not in selector(objects)
    assert only(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]["team"] == (
        "ml-platform"
    )


# --------------------------------------------------------------------------- monitoring


@needs_helm
def test_service_monitor_relabelings() -> None:
    monitor = only(
        render(
            "--set", "serviceMonitor.enabled=true",
            "--set", "serviceMonitor.relabelings[0].targetLabel=cluster",
            "--set", "serviceMonitor.relabelings[0].replacement=prod-eu",
            "--set", "serviceMonitor.metricRelabelings[0].action=drop",
            "--set", "serviceMonitor.metricRelabelings[0].regex=python_gc_.*",
            "--set", "serviceMonitor.metricRelabelings[0].sourceLabels={__name__}",
        ),
        "ServiceMonitor",
    )  # fmt: skip
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["relabelings"] == [{"targetLabel": "cluster", "replacement": "prod-eu"}]
    assert endpoint["metricRelabelings"] == [
        {"action": "drop", "regex": "python_gc_.*", "sourceLabels": ["__name__"]}
    ]


# --------------------------------------------------------------------------- helm test


@needs_helm
def test_helm_test_pod_checks_the_metrics_service_without_posing_as_the_operator() -> None:
    objects = render()
    pod = only(objects, "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    (check,) = pod["spec"]["containers"]
    assert check["image"] == container(objects)["image"]
    assert check["command"] == [
        "trailboss", "check-metrics", "http://trailboss-metrics.trailboss.svc:9090/metrics"
    ]  # fmt: skip
    args = _parser().parse_args(check["command"][1:])
    assert args.command == "check-metrics"
    service_selector = only(objects, "Service")["spec"]["selector"]
    assert not service_selector.items() <= pod["metadata"]["labels"].items()
    assert check["securityContext"]["readOnlyRootFilesystem"] is True
    custom = only(render("--set", "test.metricsUrl=http://127.0.0.1:9/metrics"), "Pod")
    assert custom["spec"]["containers"][0]["command"][-1] == "http://127.0.0.1:9/metrics"


# --------------------------------------------------------------------------- schema


@needs_helm
@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        (["--set", "logFormat=xml"], "logFormat"),
        (["--set", "crds.enabled=maybe"], "crds"),
        (["--set", "crds.upgrade=true"], "upgrade"),
        (["--set", "extraArgs[0]=1"], "extraArgs"),
        (["--set", "extraVolumeMounts[0].name=ca"], "mountPath"),
        (["--set", "podDisruptionBudget.minAvailable=many"], "minAvailable"),
        (["--set", "podDisruptionBudget.minAvailable=1",
          "--set", "podDisruptionBudget.maxUnavailable=1"], "podDisruptionBudget"),
        (["--set", "topologySpreadConstraints[0].maxSkew=1"], "topologyKey"),
        (["--set", "serviceMonitor.relabelings=drop"], "relabelings"),
        (["--set", "global.imagePullSecrets[0].nam=x"], "imagePullSecrets"),
        (["--set", "commonLabels.replicas=2"], "commonLabels"),
        (["--set", "prometheusRule.datasetDrift.for=soon"], "datasetDrift/for"),
        (["--set", "prometheusRule.driftCheckStale.after=90"], "after"),
        (["--set", "prometheusRule.driftCheckStale.after=500ms"], "after"),
        (["--set", "prometheusRule.retrainingStorm.maxTriggers=-1"], "maxTriggers"),
        (["--set", "prometheusRule.retrainingStorm.window=1 day"], "window"),
        (["--set", "prometheusRule.retrainingStorm.treshold=3"], "treshold"),
        (["--set", "resources.requests.cpu=lots"], "resources/requests/cpu"),
        (["--set", "resources.limits.memory=1 GB"], "resources/limits/memory"),
        (["--set", "resources.requests.memory=-1Gi"], "resources/requests/memory"),
        (["--set", "resources.request.cpu=1"], "request"),
        (["--set", "securityContext.runAsUser=root"], "securityContext/runAsUser"),
        (["--set", "podSecurityContext.runAsGroup=-1"], "podSecurityContext/runAsGroup"),
        (["--set", "podSecurityContext.fsGroup=wheel"], "podSecurityContext/fsGroup"),
        (["--set", "tmpSizeLimit=lots"], "tmpSizeLimit"),
        (["--set", "image.digest=latest"], "image/digest"),
        (["--set", "serverImage.pullPolicy=Sometimes"], "serverImage/pullPolicy"),
        (["--set", "driftImage.repository="], "driftImage/repository"),
        (["--set", "driftImage.tags=1"], "tags"),
        (["--set", "global.imageRegistry=https://mirror.corp"], "imageRegistry"),
        (["--set", "podMonitor.enabled=yes"], "podMonitor/enabled"),
        (["--set", "podMonitor.interval=30"], "podMonitor/interval"),
    ],
    ids=["log-format", "crds-enabled", "crds-unknown", "extra-args", "mount-path",
         "pdb-value", "pdb-both", "spread-key", "relabelings", "global-pull", "label-type",
         "drift-for", "stale-unitless", "stale-ms", "storm-negative", "storm-window",
         "storm-unknown", "cpu-quantity", "memory-quantity", "negative-quantity",
         "resources-unknown", "user-name", "negative-group", "group-name", "tmp-size",
         "digest", "server-pull-policy", "drift-repository", "image-unknown",
         "registry-url", "podmonitor-enabled", "podmonitor-interval"],
)  # fmt: skip
def test_schema_rejects_bad_values_naming_the_value(values: list[str], complaint: str) -> None:
    result = helm("template", "trailboss", str(CHART), *values)
    assert result.returncode != 0, f"accepted {values}"
    assert complaint in result.stderr, result.stderr


@needs_helm
def test_schema_accepts_kubernetes_quantities_and_numeric_ids() -> None:
    objects = render(
        "--set", "resources.requests.cpu=0.5",
        "--set", "resources.requests.memory=300M",
        "--set", "resources.limits.cpu=2",
        "--set", "resources.limits.memory=1.5Gi",
        "--set-string", "resources.limits.ephemeral-storage=1e9",
        "--set", "securityContext.runAsUser=1000",
        "--set", "podSecurityContext.runAsGroup=0",
        "--set", "podSecurityContext.supplementalGroups={1000,2000}",
        "--set", "tmpSizeLimit=64Mi",
        "--set", "podMonitor.enabled=false",
    )  # fmt: skip
    operator = container(objects)
    assert operator["resources"]["limits"] == {
        "cpu": 2, "memory": "1.5Gi", "ephemeral-storage": "1e9"
    }  # fmt: skip
    assert operator["securityContext"]["runAsUser"] == 1000
    assert pod_spec(objects)["securityContext"]["supplementalGroups"] == [1000, 2000]
    volumes = {v["name"]: v for v in pod_spec(objects)["volumes"]}
    assert volumes["tmp"]["emptyDir"] == {"sizeLimit": "64Mi"}
    # OpenShift assigns the IDs itself: null removes them.
    openshift = render(
        "--set", "podSecurityContext.runAsUser=null", "--set", "securityContext.runAsUser=null",
        "--set", "tmpSizeLimit=",
    )  # fmt: skip
    assert "runAsUser" not in pod_spec(openshift)["securityContext"]
    assert "runAsUser" not in container(openshift)["securityContext"]


# --------------------------------------------------------------------------- packaging


@needs_helm
def test_packaged_chart_carries_the_operator_version_and_everything_it_renders(
    tmp_path: Path,
) -> None:
    # What `make chart-package` runs, with the version from trailboss.__version__.
    version = trailboss.__version__
    packaged = helm("package", str(CHART), "--version", version, "--app-version", version,
                    "-d", str(tmp_path))  # fmt: skip
    assert packaged.returncode == 0, packaged.stderr
    archive = tmp_path / f"trailboss-{version}.tgz"
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
        chart = yaml.safe_load(tar.extractfile("trailboss/Chart.yaml").read())  # type: ignore[union-attr]
    assert (chart["version"], chart["appVersion"]) == (version, version)
    assert {"trailboss/values.schema.json", "trailboss/templates/tests/test-metrics.yaml",
            "trailboss/charts/kopf-peering/crds/kopf.dev_peerings.yaml"} <= names  # fmt: skip
    rendered = helm("template", "trailboss", str(archive), "--namespace", "trailboss")
    assert rendered.returncode == 0, rendered.stderr
    assert rendered.stdout.count("kind: CustomResourceDefinition") == len(TRAILBOSS_CRDS)
    assert f"image: ghcr.io/trailboss-dev/trailboss:{version}" in rendered.stdout


# --------------------------------------------------------------------------- protected namespaces

VAP = "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy"


@needs_helm
def test_operator_watching_everything_may_not_write_in_protected_namespaces() -> None:
    objects = render("--api-versions", VAP)
    policy = only(objects, "ValidatingAdmissionPolicy")
    binding = only(objects, "ValidatingAdmissionPolicyBinding")
    assert binding["spec"] == {"policyName": policy["metadata"]["name"],
                               "validationActions": ["Deny"]}  # fmt: skip
    (condition,) = policy["spec"]["matchConditions"]
    assert condition["expression"] == (
        'request.userInfo.username == "system:serviceaccount:trailboss:trailboss"'
    )
    match = policy["spec"]["matchConstraints"]
    assert match["namespaceSelector"]["matchExpressions"][0]["values"] == [
        "kube-system", "kube-public", "kube-node-lease"
    ]  # fmt: skip
    (rule,) = match["resourceRules"]
    assert (rule["operations"], rule["scope"]) == (["CREATE", "UPDATE", "DELETE"], "Namespaced")
    assert [v["expression"] for v in policy["spec"]["validations"]] == ["false"]


@needs_helm
@pytest.mark.parametrize(
    "values",
    [
        [],  # a cluster without the API (before 1.30)
        ["--api-versions", VAP, "--set", "watchNamespaces={a}"],  # its Roles are only in a
        ["--api-versions", VAP, "--set", "rbac.protectedNamespaces=null"],
    ],
    ids=["no-api", "namespaced", "turned-off"],
)
def test_no_protection_policy_where_none_is_needed_or_possible(values: list[str]) -> None:
    assert "ValidatingAdmissionPolicy" not in kinds(render(*values))
