"""The Helm chart as users get it, packaged and pushed to an OCI registry (the CNCF
distribution registry on loopback), installed from ``oci://`` on the stack's real API
server with RBAC enforced: what the operator's ServiceAccount may do, what users with
the built-in roles may do, the CRDs' life cycle, and `helm test`."""

from __future__ import annotations

import json
import os
import shutil
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from subprocess import CompletedProcess, Popen, run

import pytest
import yaml

from e2e.cluster import ROOT, RUN_LOCALLY, Cluster, Operator, free_port, unique, wait_for
from e2e.lifecycle import training_run

# The module-scoped set-up below is built once: one worker runs the whole file.
pytestmark = pytest.mark.xdist_group("chart")

CHART = ROOT / "charts" / "trailboss"
EXPECTED = ROOT / "e2e" / "expected"
HELM_HOME = "/tmp/trailboss-e2e-helm"  # no user's helm repositories or plugins
CRDS = ("trainingruns.trailboss.dev", "modelversions.trailboss.dev", "deployments.trailboss.dev")


def _stack_binary(cluster: Cluster, name: str) -> str:
    bin_dir = cluster.env.get("TRAILBOSS_STACK_BIN")
    return str(Path(bin_dir) / name) if bin_dir else (shutil.which(name) or name)


def _helm_homes() -> dict[str, str]:
    return {f"HELM_{d}_HOME": f"{HELM_HOME}/{d.lower()}" for d in ("CACHE", "CONFIG", "DATA")}


def helm(cluster: Cluster, *args: str, check: bool = True) -> CompletedProcess[str]:
    result = run(
        [_stack_binary(cluster, "helm"), "--kubeconfig", cluster.env["KUBECONFIG"], *args],
        capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, **_helm_homes()},
    )  # fmt: skip
    if check:
        assert result.returncode == 0, f"helm {' '.join(args)}:\n{result.stdout}{result.stderr}"
    return result


@dataclass
class Published:
    """The chart in an OCI registry: what `helm install` and `helm upgrade` take."""

    ref: str  # oci://host:port/charts/trailboss
    version: str

    @property
    def args(self) -> list[str]:
        return [self.ref, "--version", self.version, "--plain-http"]  # a loopback registry


@pytest.fixture(scope="module")
def published(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Published]:
    """The chart published as a release publishes it (`deploy/publish-chart.sh`:
    lint, package, push) to a registry of this module's own."""
    registry = _stack_binary(cluster, "registry")
    if not Path(registry).is_file():
        pytest.fail(f"no OCI registry at {registry}: `make stack-build` builds it")
    work = tmp_path_factory.mktemp("oci")
    address = f"127.0.0.1:{free_port()}"
    (work / "config.yml").write_text(json.dumps({  # YAML is a superset of JSON
        "version": 0.1,
        "log": {"level": "warn"},
        "storage": {"filesystem": {"rootdirectory": str(work / "data")}},
        "http": {"addr": address},
    }))  # fmt: skip
    with (work / "registry.log").open("wb") as log:
        server = Popen([registry, "serve", str(work / "config.yml")], stdout=log, stderr=log)
    try:
        wait_for(f"the OCI registry at {address}", lambda: _answers(address, server), 30)
        pushed = run(
            [str(ROOT / "deploy" / "publish-chart.sh"), f"oci://{address}/charts", "--plain-http"],
            capture_output=True, text=True, timeout=120, check=False,
            env={**os.environ, "HELM": _stack_binary(cluster, "helm"), **_helm_homes()},
        )  # fmt: skip
        assert pushed.returncode == 0, pushed.stdout + pushed.stderr
        version = yaml.safe_load((CHART / "Chart.yaml").read_text())["version"]
        ref = f"oci://{address}/charts/trailboss"
        assert pushed.stdout.strip() == f"{ref} --version {version}"
        yield Published(ref, version)
    finally:
        server.terminate()
        server.wait(timeout=30)


def _answers(address: str, server: Popen[bytes]) -> bool:
    assert server.poll() is None, "the OCI registry exited; see its registry.log"
    try:
        with urllib.request.urlopen(f"http://{address}/v2/", timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


@dataclass
class Release:
    name: str
    namespace: str
    cluster: Cluster
    chart: Published
    team: str = ""  # the one namespace it watches, if any

    @property
    def service_account(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.name}"

    def helm(self, *args: str, check: bool = True) -> CompletedProcess[str]:
        return helm(self.cluster, "-n", self.namespace, *args, check=check)


def install(cluster: Cluster, chart: Published, name: str, *values: str) -> Release:
    release = Release(name, unique("e2e-chart"), cluster, chart)
    tracking = cluster.env.get("MLFLOW_TRACKING_URI", "http://mlflow:5000")
    try:
        release.helm(
            "install", name, *chart.args, "--create-namespace", "--wait", "--timeout", "3m",
            "--set", f"mlflow.trackingUri={tracking}", *values,
        )  # fmt: skip
    except AssertionError:
        cluster.kubectl("delete", "namespace", release.namespace, "--ignore-not-found",
                        "--wait=false")  # fmt: skip
        raise
    return release


def uninstall(release: Release) -> None:
    release.helm("uninstall", release.name, "--wait", "--timeout", "3m")
    release.cluster.core.delete_namespace(release.namespace)


@pytest.fixture(scope="module")
def clusterwide(cluster: Cluster, crds: list[str], published: Published) -> Iterator[Release]:
    """The default install. The CRDs exist already (applied with kubectl), so the
    release takes them over, as when a user moves their CRDs under the chart."""
    release = install(cluster, published, "trailboss-all", "--take-ownership")
    yield release
    uninstall(release)


@pytest.fixture(scope="module")
def namespaced(cluster: Cluster, clusterwide: Release) -> Iterator[Release]:
    """A release watching one namespace; the CRDs stay with the first release."""
    team = unique("e2e-team")
    cluster.kubectl("create", "namespace", team)
    release = install(
        cluster, clusterwide.chart, "trailboss-team",
        "--set", f"watchNamespaces={{{team}}}", "--set", "crds.enabled=false",
    )  # fmt: skip
    release.team = team
    yield release
    uninstall(release)
    cluster.core.delete_namespace(team)


def identity(who: str) -> list[str]:
    """kubectl's impersonation flags for a user, or for a ServiceAccount with the
    groups its token would carry."""
    if not who.startswith("system:serviceaccount:"):
        return ["--as", who]
    namespace = who.split(":")[2]
    groups = [
        "system:serviceaccounts",
        f"system:serviceaccounts:{namespace}",
        "system:authenticated",
    ]
    return ["--as", who, *(flag for group in groups for flag in ("--as-group", group))]


def resource_rules(table: str) -> list[str]:
    """The resource rows of a `kubectl auth can-i --list` table, normalised and sorted.
    Non-resource URL rows (indented) come from the cluster's default roles."""
    return sorted(
        " ".join(line.split())
        for line in table.splitlines()
        if line.strip() and not line.startswith((" ", "#", "Resources "))
    )


def can_i_list(cluster: Cluster, who: str, namespace: str) -> list[str]:
    out = cluster.kubectl("auth", "can-i", "--list", *identity(who), "-n", namespace).stdout
    return resource_rules(out)


def expected(name: str) -> list[str]:
    return resource_rules((EXPECTED / name).read_text())


def can_i(cluster: Cluster, who: str, verb: str, resource: str, namespace: str) -> bool:
    result = cluster.kubectl("auth", "can-i", verb, resource, *identity(who), "-n", namespace,
                             check=False)  # fmt: skip
    return result.stdout.strip() == "yes"


# --------------------------------------------------------------------------- operator RBAC


def test_clusterwide_operator_may_do_exactly_the_expected(
    cluster: Cluster, clusterwide: Release
) -> None:
    for namespace in ("default", "kube-system"):
        assert can_i_list(cluster, clusterwide.service_account, namespace) == expected(
            "can-i-operator-clusterwide.txt"
        )
    sa = clusterwide.service_account
    # A Secret a Deployment names for its Prometheus analysis is read by name;
    # no Secret is ever listed, watched or written.
    assert can_i(cluster, sa, "get", "secrets", "default")
    assert not can_i(cluster, sa, "list", "secrets", "kube-system")
    assert not can_i(cluster, sa, "watch", "secrets", "default")
    assert not can_i(cluster, sa, "create", "secrets", "default")
    assert not can_i(cluster, sa, "create", "pods", "default")
    assert not can_i(cluster, sa, "create", "deployments.trailboss.dev", "default")


def test_clusterwide_operator_writes_nothing_in_protected_namespaces(
    cluster: Cluster, clusterwide: Release
) -> None:
    """RBAC allows it (above); the chart's admission policy refuses it."""

    def create_job(namespace: str) -> CompletedProcess[str]:
        return cluster.kubectl(
            "create", "job", "probe", "--image=busybox", "-n", namespace, "--dry-run=server",
            "-o", "name", *identity(clusterwide.service_account), check=False,
        )  # fmt: skip

    # The API server loads a new admission policy and its binding asynchronously
    # (an informer, then type-checking), as it does the release's RBAC: right after
    # an install a write can still pass, or be refused by RBAC not yet in force;
    # within seconds the policy must be what refuses it.
    protected = "the Trailboss operator writes nothing in a protected namespace"
    policy = f"{clusterwide.name}-protected-namespaces"
    assert cluster.kubectl("get", "validatingadmissionpolicybinding", policy, "-o", "name",
                           check=False).returncode == 0, f"{policy} was not installed"  # fmt: skip
    answers: list[str] = []

    def refused_by_the_policy() -> bool:
        answers.append(create_job("kube-system").stderr.strip() or "(allowed)")
        return protected in answers[-1]

    try:
        wait_for("the admission policy to take effect", refused_by_the_policy, 120)
    except AssertionError as timed_out:
        status = cluster.kubectl("get", "validatingadmissionpolicy", policy,
                                 "-o", "jsonpath={.status}", check=False)  # fmt: skip
        raise AssertionError(
            f"{timed_out}; the API server answered {sorted(set(answers))}; "
            f"policy status {status.stdout or status.stderr}"
        ) from None
    for namespace in ("kube-system", "kube-public", "kube-node-lease"):
        refused = create_job(namespace)
        assert refused.returncode != 0, namespace
        assert protected in refused.stderr
    allowed = create_job("default")
    assert allowed.returncode == 0, allowed.stderr
    assert allowed.stdout.strip() == "job.batch/probe"


def test_namespaced_operator_touches_nothing_outside_its_namespaces(
    cluster: Cluster, namespaced: Release
) -> None:
    team = namespaced.team
    sa = namespaced.service_account
    assert can_i_list(cluster, sa, team) == expected("can-i-operator-namespaced.txt")
    assert can_i_list(cluster, sa, "kube-system") == expected("can-i-operator-elsewhere.txt")
    for verb, resource in (("delete", "deployments.apps"), ("create", "jobs.batch"),
                           ("patch", "services"), ("create", "events")):  # fmt: skip
        assert can_i(cluster, sa, verb, resource, team)
        assert not can_i(cluster, sa, verb, resource, "kube-system")
        assert not can_i(cluster, sa, verb, resource, "default")


# --------------------------------------------------------------------------- user roles


def bind(cluster: Cluster, namespace: str, user: str, role: str) -> None:
    cluster.kubectl("-n", namespace, "create", "rolebinding", f"{user}-{role}",
                    f"--clusterrole={role}", f"--user={user}")  # fmt: skip


def test_edit_users_create_and_delete_training_runs_view_users_read_them(
    cluster: Cluster, clusterwide: Release, namespace: str
) -> None:
    bind(cluster, namespace, "alice", "edit")
    bind(cluster, namespace, "bob", "view")
    # The controller-manager aggregates the chart's roles into edit and view.
    wait_for("edit to include TrainingRuns",
             lambda: can_i(cluster, "alice", "create", "trainingruns.trailboss.dev", namespace),
             timeout=60)  # fmt: skip
    manifest = json.dumps(training_run("by-alice", command=["python", "-c", "print(1)"]))
    created = cluster.kubectl("-n", namespace, "create", "-f", "-", "--as", "alice",
                              stdin=manifest, check=False)  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip() == "trainingrun.trailboss.dev/by-alice created"
    for verb in ("get", "list", "watch"):
        assert can_i(cluster, "bob", verb, "trainingruns.trailboss.dev", namespace)
    read = cluster.kubectl("-n", namespace, "get", "trun", "by-alice", "--as", "bob",
                           "-o", "name")  # fmt: skip
    assert read.stdout.strip() == "trainingrun.trailboss.dev/by-alice"
    listed = cluster.kubectl("-n", namespace, "get", "trailboss", "--as", "bob", "-o", "name")
    assert "trainingrun.trailboss.dev/by-alice" in listed.stdout
    refused = cluster.kubectl("-n", namespace, "delete", "trun", "by-alice", "--as", "bob",
                              check=False)  # fmt: skip
    assert refused.returncode != 0
    assert "forbidden" in refused.stderr
    deleted = cluster.kubectl("-n", namespace, "delete", "trun", "by-alice", "--as", "alice",
                              "--wait=false")  # fmt: skip
    assert deleted.returncode == 0
    # Not bound in this namespace: nothing.
    assert not can_i(cluster, "alice", "create", "trainingruns.trailboss.dev", "default")
    assert not can_i(cluster, "bob", "get", "modelversions.trailboss.dev", "default")
    # Status is the operator's to write, not the users'.
    status = cluster.kubectl(
        "auth", "can-i", "patch", "trainingruns.trailboss.dev", "--subresource=status",
        "--as", "alice", "-n", namespace, check=False,
    )  # fmt: skip
    assert status.stdout.strip() == "no"


# --------------------------------------------------------------------------- CRDs and helm test


def test_the_release_owns_the_crds_and_keeps_them(cluster: Cluster, clusterwide: Release) -> None:
    for crd in CRDS:
        meta = json.loads(cluster.kubectl("get", "crd", crd, "-o", "json").stdout)["metadata"]
        assert meta["annotations"]["meta.helm.sh/release-name"] == "trailboss-all"
        assert meta["annotations"]["helm.sh/resource-policy"] == "keep"


def test_helm_test_checks_the_live_operator(
    cluster: Cluster, clusterwide: Release, running_operator: Operator
) -> None:
    if cluster.env.get("TRAILBOSS_E2E_EXTERNAL"):
        pytest.skip("the test pod reaches the operator through the local stack's pod runner")
    # On the stack the chart's operator pods are kwok's; the live operator is the
    # test session's process, which the test pod (run by the pod runner) reaches
    # on loopback.
    url = f"http://127.0.0.1:{running_operator.metrics_port}/metrics"
    values = [
        "--reuse-values",
        "--set-json",
        json.dumps({"test": {"podLabels": {RUN_LOCALLY: "true"}}}),
    ]
    clusterwide.helm(
        "upgrade", "trailboss-all", *clusterwide.chart.args, *values,
        "--set", f"test.metricsUrl={url}",
    )  # fmt: skip
    passed = clusterwide.helm("test", "trailboss-all", "--timeout", "2m", check=False)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "Phase:          Succeeded" in passed.stdout
    closed = "http://127.0.0.1:9/metrics"
    clusterwide.helm(
        "upgrade", "trailboss-all", *clusterwide.chart.args, *values,
        "--set", f"test.metricsUrl={closed}",
    )  # fmt: skip
    failed = clusterwide.helm("test", "trailboss-all", "--timeout", "2m", check=False)
    assert failed.returncode != 0
    assert "failed" in (failed.stdout + failed.stderr).lower()
