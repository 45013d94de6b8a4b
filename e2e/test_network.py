"""The data plane as a user's cluster has it: pods that answer on their pod IP, Services
balanced by kube-proxy, HTTPRoutes split by weight at the Gateway, Prometheus scraping
the pods it finds through the API server.

Every test discovers addresses the way it would on any cluster (the Service's
ClusterIP, the Gateway's status address); on the local stack the pods run through
the pod runner in their own network namespaces, with real probes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from e2e.cluster import Cluster, stack_command, unique, wait_for
from e2e.stack.localstack.settings import BIN_DIR
from e2e.traffic import (
    Tally,
    check_local,
    deployment,
    http_route,
    promql,
    send,
    service,
)

# The module-scoped set-up below is built once: one worker runs the whole file.
pytestmark = pytest.mark.xdist_group("network")

CANARY_SHARE, ROUTE_SHARE, TOLERANCE = 0.10, 0.20, 0.03


@pytest.fixture(scope="module")
def data_plane(stack_env: dict[str, str]) -> dict[str, str]:
    """Where Prometheus and the Gateway are; fails under CI when the stack has no pod network."""
    external = bool(stack_env.get("TRAILBOSS_E2E_EXTERNAL"))
    env = os.environ if external else stack_env
    missing = (
        "TRAILBOSS_PROMETHEUS_URL and TRAILBOSS_GATEWAY (namespace/name) for this cluster"
        if external
        else "a pod network (root, `ip`, nftables: make stack-build; TRAILBOSS_STACK_NETWORK)"
    )
    ready = (
        bool(env.get("TRAILBOSS_PROMETHEUS_URL") and env.get("TRAILBOSS_GATEWAY"))
        if external
        else stack_env.get("TRAILBOSS_STACK_NETWORK") == "on"
    )
    if not ready:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"the data-plane tests need {missing}")
        pytest.skip(f"the data-plane tests need {missing}")
    return {
        "prometheus": env["TRAILBOSS_PROMETHEUS_URL"],
        "gateway": env["TRAILBOSS_GATEWAY"],
        "local": "" if external else "yes",
    }


@pytest.fixture(scope="module")
def ns(cluster: Cluster, data_plane: dict[str, str]) -> Iterator[str]:
    name = unique("net")
    cluster.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    cluster.core.delete_namespace(name)


def apply(cluster: Cluster, namespace: str, *objects: dict[str, Any]) -> None:
    for obj in objects:
        cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(obj))


def service_url(cluster: Cluster, namespace: str, name: str, local: bool) -> str:
    svc: Any = cluster.core.read_namespaced_service(name, namespace)
    ip = svc.spec.cluster_ip
    url = f"http://{ip}:80/"
    if local:
        check_local(url)
    return url


def ready_endpoints(cluster: Cluster, namespace: str, svc: str) -> set[str]:
    """Addresses the EndpointSlices of a Service list as ready."""
    discovery = client.DiscoveryV1Api(cluster.api)
    slices = discovery.list_namespaced_endpoint_slice(
        namespace, label_selector=f"kubernetes.io/service-name={svc}"
    ).items
    return {
        address
        for s in slices
        for e in s.endpoints or []
        if e.conditions and e.conditions.ready
        for address in e.addresses
    }


def pods(cluster: Cluster, namespace: str, selector: str) -> list[Any]:
    return list(cluster.core.list_namespaced_pod(namespace, label_selector=selector).items)


def is_ready(pod: Any) -> bool:
    conditions = pod.status.conditions or []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)


def wait_serving(url: str, expected: set[str], tally: Tally | None = None) -> None:
    """kube-proxy and Traefik follow the EndpointSlices within a moment: wait until one
    batch of requests is answered by exactly the expected pods."""

    def exactly_expected() -> bool:
        batch = send(url, 30)
        if tally is not None:  # what the pods themselves counted
            tally.update({pod: n for pod, n in batch.items() if pod in expected})
        return set(batch) == expected

    wait_for(f"{url} answered by {sorted(expected)}", exactly_expected, timeout=60)


def test_readiness_gates_availability_and_service_spreads_traffic(
    cluster: Cluster, ns: str, data_plane: dict[str, str]
) -> None:
    labels = {"app": "web"}
    apply(cluster, ns, deployment("web", 3, labels, ready_after=3), service("web", labels))
    seen_running_unready = False

    def available() -> bool:
        nonlocal seen_running_unready
        dep: Any = cluster.apps.read_namespaced_deployment("web", ns)
        listed = pods(cluster, ns, "app=web")  # read after: Ready pods only grow meanwhile
        running = [p for p in listed if p.status.phase == "Running"]
        seen_running_unready |= any(not is_ready(p) for p in running)
        available = dep.status.available_replicas or 0
        assert available <= sum(is_ready(p) for p in listed), "Available counts unready pods"
        return available == 3

    wait_for("Deployment web Available with 3 replicas", available, timeout=90, interval=0.2)
    assert seen_running_unready, "pods were Ready before their readiness probe could pass"
    names = {p.metadata.name for p in pods(cluster, ns, "app=web")}
    ips = {p.status.pod_ip for p in pods(cluster, ns, "app=web")}
    wait_for("3 ready endpoints", lambda: ready_endpoints(cluster, ns, "web") == ips, timeout=30)
    url = service_url(cluster, ns, "web", bool(data_plane["local"]))
    wait_serving(url, names)

    answered = send(url, 300)
    assert sum(answered.values()) == 300
    assert set(answered) == names, f"answers by pod: {dict(answered)}"

    cluster.apps.patch_namespaced_deployment_scale("web", ns, {"spec": {"replicas": 1}})
    wait_for("one pod left", lambda: len(pods(cluster, ns, "app=web")) == 1, timeout=60)
    last = pods(cluster, ns, "app=web")[0]
    wait_for(
        "one ready endpoint",
        lambda: ready_endpoints(cluster, ns, "web") == {last.status.pod_ip},
        timeout=30,
    )
    wait_serving(url, {last.metadata.name})
    assert send(url, 100) == {last.metadata.name: 100}


def test_killed_process_makes_pod_not_ready_until_restarted(
    cluster: Cluster, ns: str, data_plane: dict[str, str]
) -> None:
    if not data_plane["local"]:
        pytest.skip("killing a container's process from outside needs the local stack")
    labels = {"app": "solo"}
    apply(cluster, ns, deployment("solo", 1, labels, ready_after=3), service("solo", labels))
    pod: Any = wait_for(
        "the solo pod Ready",
        lambda: next((p for p in pods(cluster, ns, "app=solo") if is_ready(p)), None),
        timeout=60,
    )
    ip = pod.status.pod_ip
    wait_for("its endpoint", lambda: ready_endpoints(cluster, ns, "solo") == {ip}, timeout=30)
    pid = int(pod.status.container_statuses[0].container_id.removeprefix("podrunner://"))

    os.kill(pid, signal.SIGKILL)

    wait_for(
        "the pod NotReady and gone from the EndpointSlice",
        lambda: (
            not is_ready(cluster.core.read_namespaced_pod(pod.metadata.name, ns))
            and ip not in ready_endpoints(cluster, ns, "solo")
        ),
        timeout=20,
        interval=0.2,
    )
    restarted: Any = wait_for(
        "the container restarted and Ready again",
        lambda: (
            (p := cluster.core.read_namespaced_pod(pod.metadata.name, ns)) and is_ready(p) and p
        ),
        timeout=60,
    )
    status = restarted.status.container_statuses[0]
    assert status.restart_count == 1
    assert status.last_state.terminated.exit_code == 137  # SIGKILL, as a runtime reports it
    assert restarted.status.pod_ip == ip  # the pod keeps its network across restarts


@pytest.fixture(scope="module")
def shop(cluster: Cluster, ns: str, data_plane: dict[str, str]) -> dict[str, Any]:
    """9 stable pods and 1 canary pod behind one Service (and one Service each)."""
    stable, canary = {"app": "shop", "track": "stable"}, {"app": "shop", "track": "canary"}
    apply(
        cluster,
        ns,
        deployment("shop-stable", 9, stable),
        deployment("shop-canary", 1, canary),
        service("shop", {"app": "shop"}),
        service("shop-stable", stable),
        service("shop-canary", canary),
    )
    wait_for(
        "10 shop pods ready behind the shop Service",
        lambda: len(ready_endpoints(cluster, ns, "shop")) == 10,
        timeout=120,
    )
    names = {p.metadata.name for p in pods(cluster, ns, "app=shop")}
    local = bool(data_plane["local"])
    url = service_url(cluster, ns, "shop", local)
    tally: Tally = Tally()
    wait_serving(url, names, tally)
    return {"url": url, "names": names, "tally": tally, "local": local}


def canary_share(answered: Tally) -> float:
    canary = sum(n for pod, n in answered.items() if pod.startswith("shop-canary-"))
    return canary / sum(answered.values())


def test_replica_ratio_sends_a_tenth_to_the_canary(shop: dict[str, Any]) -> None:
    answered = send(shop["url"], 2000)
    assert set(answered) <= shop["names"], f"failed requests: {dict(answered)}"
    shop["tally"].update(answered)
    assert abs(canary_share(answered) - CANARY_SHARE) <= TOLERANCE, dict(answered)


def gateway_url(cluster: Cluster, gateway: str, local: bool) -> str:
    namespace, name = gateway.split("/")
    gw: Any = cluster.custom.get_namespaced_custom_object(
        "gateway.networking.k8s.io", "v1", namespace, "gateways", name
    )
    url = f"http://{gw['status']['addresses'][0]['value']}:{gw['spec']['listeners'][0]['port']}/"
    if local:
        check_local(url)
    return url


def test_httproute_weights_split_traffic_at_the_gateway(
    cluster: Cluster, ns: str, shop: dict[str, Any], data_plane: dict[str, str]
) -> None:
    route = http_route("shop", data_plane["gateway"], {"shop-stable": 80, "shop-canary": 20})
    apply(cluster, ns, route)

    def accepted() -> bool:
        obj: Any = cluster.custom.get_namespaced_custom_object(
            "gateway.networking.k8s.io", "v1", ns, "httproutes", "shop"
        )
        parents = obj.get("status", {}).get("parents", [])
        return any(
            c["type"] == "Accepted" and c["status"] == "True"
            for p in parents
            for c in p["conditions"]
        )

    wait_for("the HTTPRoute accepted by the Gateway", accepted, timeout=60)
    url = gateway_url(cluster, data_plane["gateway"], shop["local"])
    wait_serving(url, shop["names"], shop["tally"])

    answered = send(url, 2000)
    assert set(answered) <= shop["names"], f"failed requests: {dict(answered)}"
    shop["tally"].update(answered)
    assert abs(canary_share(answered) - ROUTE_SHARE) <= TOLERANCE, dict(answered)


def test_prometheus_scrapes_the_pods_it_finds_through_the_api_server(
    cluster: Cluster, ns: str, shop: dict[str, Any], data_plane: dict[str, str]
) -> None:
    prometheus = data_plane["prometheus"]
    answered = send(shop["url"], 200)
    assert set(answered) <= shop["names"], f"failed requests: {dict(answered)}"
    shop["tally"].update(answered)
    listed = {p.metadata.name for p in pods(cluster, ns, "app=shop")}

    def all_up() -> dict[str, str] | None:
        up = promql(prometheus, f'up{{namespace="{ns}",app="shop"}}')
        found = {r["metric"]["pod"]: r["value"][1] for r in up}
        return found if set(found) == listed and set(found.values()) == {"1"} else None

    wait_for(f"up == 1 for {sorted(listed)}", all_up, timeout=60)

    sent = sum(shop["tally"].values())
    total = f'sum(app_requests_total{{namespace="{ns}",app="shop"}})'
    wait_for(
        f"Prometheus to count all {sent} requests",
        lambda: [float(r["value"][1]) for r in promql(prometheus, total)] == [sent],
        timeout=60,
    )
    share = f'sum(app_requests_total{{namespace="{ns}",app="shop",track="canary"}}) / {total}'
    measured = float(promql(prometheus, share)[0]["value"][1])
    assert measured == pytest.approx(canary_share(shop["tally"]), abs=1e-9)


def test_cluster_ranges_are_routed_to_the_stack_bridge(data_plane: dict[str, str]) -> None:
    if not data_plane["local"]:
        pytest.skip("routes of the local stack's pod network")
    for address in ("10.244.3.7", "10.244.200.9", "10.96.0.1", "10.96.250.250"):
        route = json.loads(
            subprocess.run(
                ["ip", "-j", "route", "get", address], capture_output=True, text=True, check=True
            ).stdout
        )[0]
        assert route["dev"] == "tb-br0", route
        assert "gateway" not in route, route


def stack_leftovers(state_dir: str) -> list[str]:
    """Anything of a local stack on this machine: pod namespaces, veths, the bridge,
    kube-proxy's nftables tables, routes of the cluster ranges, processes of the stack
    (by a command line naming its state directory, or a binary from its build cache,
    which also finds those whose command line does not, like Traefik)."""
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    routes = subprocess.run(["ip", "route"], capture_output=True, text=True).stdout
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    found = [f"netns {line}" for line in netns.splitlines() if line.startswith("tbpod-")]
    found += [
        f"link {line.split(':')[1].strip()}"
        for line in links.splitlines()
        if line.split(":")[1].strip().startswith(("tbv", "tb-br0"))
    ]
    found += [
        f"route {line}" for line in routes.splitlines() if line.startswith(("10.244.", "10.96."))
    ]
    found += [f"nft {line}" for line in tables.splitlines() if "kube-proxy" in line]
    for proc in os.listdir("/proc"):
        if proc.isdigit():
            try:
                with open(f"/proc/{proc}/cmdline", "rb") as f:
                    cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            exe, cwd = _link(f"/proc/{proc}/exe"), _link(f"/proc/{proc}/cwd")
            # A stack component names the state directory or runs in it (Traefik); the
            # same binaries run elsewhere (helm by the unit tests, a test's own MinIO)
            # are not the stack's.
            in_state = cwd == state_dir or cwd.startswith(f"{state_dir}/")
            ours = state_dir in cmdline or (exe.startswith(f"{BIN_DIR}/") and in_state)
            if ours and "pytest" not in cmdline:
                found.append(f"process {proc}: {cmdline[:120]}")
    return found


def _link(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return ""


@pytest.mark.disruptive
def test_down_leaves_nothing_of_the_stack_behind(
    stack_env: dict[str, str], data_plane: dict[str, str]
) -> None:
    """Last in this file: takes the session's stack down, looks, and brings it back up."""
    if not data_plane["local"]:
        pytest.skip("the local stack's own teardown")
    assert stack_leftovers(stack_env["TRAILBOSS_STACK_DIR"]), "the stack should be up now"
    down = stack_command("down")
    assert down.returncode == 0, down.stdout + down.stderr
    try:
        assert stack_leftovers(stack_env["TRAILBOSS_STACK_DIR"]) == []
    finally:
        up = stack_command("up")
        assert up.returncode == 0, up.stdout + up.stderr
