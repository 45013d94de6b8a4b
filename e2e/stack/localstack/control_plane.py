"""How etcd, the API server, controller-manager, scheduler and kwok are started."""

from __future__ import annotations

from .settings import BIN_DIR, FAKE_NODE_ANNOTATION, FAKE_POD_RANGE, HERE, SERVICE_CIDR, P
from .state import State

# Every controller a Job, CronJob, Deployment, StatefulSet or Service needs,
# plus namespace and garbage collection; none that need kubelets or a cloud.
CONTROLLERS = (
    "serviceaccount-controller",
    "serviceaccount-token-controller",
    "root-ca-certificate-publisher-controller",
    "clusterrole-aggregation-controller",
    "namespace-controller",
    "garbage-collector-controller",
    "job-controller",
    "cronjob-controller",
    "ttl-after-finished-controller",
    "deployment-controller",
    "replicaset-controller",
    "statefulset-controller",
    "daemonset-controller",
    "disruption-controller",
    "endpoints-controller",
    "endpointslice-controller",
    "endpointslice-mirroring-controller",
    "pod-garbage-collector-controller",
    "resourcequota-controller",
    "service-cidr-controller",
)


def flags(pairs: dict[str, str]) -> list[str]:
    """``{"name": "v"}`` -> ``["--name", "v"]``, in order."""
    return [arg for name, value in pairs.items() for arg in (f"--{name}", value)]


def etcd(st: State) -> list[str]:
    client, peer = st.url("etcd"), st.url("etcd-peer")
    return [
        str(BIN_DIR / "etcd"),
        *flags(
            {
                "name": "trailboss",
                "data-dir": str(P.data / "etcd"),
                "listen-client-urls": client,
                "advertise-client-urls": client,
                "listen-peer-urls": peer,
                "initial-advertise-peer-urls": peer,
                "initial-cluster": f"trailboss={peer}",
                "initial-cluster-state": "new",
                "quota-backend-bytes": str(2 * 1024**3),
                "log-level": "warn",
            }
        ),
        # Throw-away test data: durability is not worth the fsyncs.
        "--unsafe-no-fsync",
    ]


def _apiserver_identity() -> dict[str, str]:
    c = P.certs
    return {
        "tls-cert-file": str(c / "kube-apiserver.crt"),
        "tls-private-key-file": str(c / "kube-apiserver.key"),
        "client-ca-file": str(c / "ca.crt"),
        "service-account-issuer": "https://kubernetes.default.svc.cluster.local",
        "service-account-key-file": str(c / "sa.pub"),
        "service-account-signing-key-file": str(c / "sa.key"),
        # The front-proxy settings that controller-manager and scheduler read for
        # their delegated authentication (and that aggregated API servers need).
        "requestheader-client-ca-file": str(c / "ca.crt"),
        "requestheader-allowed-names": "front-proxy-client",
        "requestheader-username-headers": "X-Remote-User",
        "requestheader-group-headers": "X-Remote-Group",
        "requestheader-extra-headers-prefix": "X-Remote-Extra-",
        "proxy-client-cert-file": str(c / "front-proxy-client.crt"),
        "proxy-client-key-file": str(c / "front-proxy-client.key"),
    }


def apiserver(st: State) -> list[str]:
    return [
        str(BIN_DIR / "kube-apiserver"),
        *flags(
            {
                "etcd-servers": st.url("etcd"),
                "bind-address": "127.0.0.1",
                "advertise-address": "127.0.0.1",
                "secure-port": str(st.ports["kube-apiserver"]),
                **_apiserver_identity(),
                "authorization-mode": "Node,RBAC",
                # No node-lifecycle controller runs (there are no kubelets to watch),
                # so nothing would lift the not-ready taint this plugin puts on nodes.
                "disable-admission-plugins": "TaintNodesByCondition",
                # Pod logs and exec go to a node's kubelet. The fake nodes have none; by
                # their InternalIP (127.0.0.1) such a request is refused on loopback,
                # whereas by hostname the API server would ask the machine's DNS.
                "kubelet-preferred-address-types": "InternalIP",
                "service-cluster-ip-range": SERVICE_CIDR,
                # The "kubernetes" Service cannot point at a loopback address;
                # nothing in this stack reaches the API server through it anyway.
                "endpoint-reconciler-type": "none",
                "cert-dir": str(P.data / "kube-apiserver"),
            }
        ),
        "--allow-privileged=true",
        "--profiling=false",
    ]


def serving_flags(name: str, st: State) -> list[str]:
    kubeconfig = str(P.kubeconfig_for(name))
    return [
        *flags(
            {
                "kubeconfig": kubeconfig,
                "authentication-kubeconfig": kubeconfig,
                "authorization-kubeconfig": kubeconfig,
                "bind-address": "127.0.0.1",
                "secure-port": str(st.ports[name]),
                "cert-dir": str(P.data / name),
            }
        ),
        "--leader-elect=false",
    ]


def controller_manager(st: State) -> list[str]:
    c = P.certs
    return [
        str(BIN_DIR / "kube-controller-manager"),
        *serving_flags("kube-controller-manager", st),
        *flags(
            {
                "controllers": ",".join(CONTROLLERS),
                "service-account-private-key-file": str(c / "sa.key"),
                "root-ca-file": str(c / "ca.crt"),
                "cluster-name": "trailboss",
            }
        ),
        # Each controller acts as its own service account, as kubeadm sets it up.
        "--use-service-account-credentials=true",
    ]


def scheduler(st: State) -> list[str]:
    return [str(BIN_DIR / "kube-scheduler"), *serving_flags("kube-scheduler", st)]


def kwok(_st: State) -> list[str]:
    stages = [str(p) for p in sorted((HERE / "kwok").glob("*.yaml"))]
    return [
        str(BIN_DIR / "kwok"),
        "--kubeconfig",
        str(P.kubeconfig_for("kwok")),
        *(a for s in stages for a in ("--config", s)),
        "--manage-all-nodes=false",
        *flags(
            {
                "manage-nodes-with-annotation-selector": "=".join(FAKE_NODE_ANNOTATION),
                "node-ip": "127.0.0.1",
                "cidr": FAKE_POD_RANGE,
                "node-lease-duration-seconds": "40",
            }
        ),
    ]
