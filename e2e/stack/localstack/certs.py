"""The stack's CA, the API server's serving certificate, client identities, kubeconfigs."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

from .settings import SERVICE_IP, P, StackError

# Client identities: file name -> subject. The names are the ones Kubernetes'
# bootstrap RBAC policy grants rights to.
CLIENTS = {
    "admin": "/O=system:masters/CN=trailboss-admin",
    "kube-controller-manager": "/CN=system:kube-controller-manager",
    "kube-scheduler": "/CN=system:kube-scheduler",
    # kwok writes status of nodes and pods and manages node leases: cluster admin.
    "kwok": "/O=system:masters/CN=kwok-controller",
    # How the API server proves itself to aggregated API servers.
    "front-proxy-client": "/CN=front-proxy-client",
    # Bound to the system:node-proxier role by the bootstrap policy.
    "kube-proxy": "/CN=system:kube-proxy",
    # Lists pods to scrape; bound to the `view` role by bootstrap.py.
    "trailboss-prometheus": "/CN=trailboss-prometheus",
    # Traefik reads routes, Services and EndpointSlices and writes Gateway status.
    "trailboss-gateway": "/O=system:masters/CN=trailboss-gateway",
}

API_SERVER_NAMES = (
    "IP:127.0.0.1",
    f"IP:{SERVICE_IP}",
    "DNS:localhost",
    "DNS:kubernetes",
    "DNS:kubernetes.default",
    "DNS:kubernetes.default.svc",
    "DNS:kubernetes.default.svc.cluster.local",
)


def openssl(*args: str) -> None:
    result = subprocess.run(["openssl", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise StackError(f"openssl {' '.join(args)} failed:\n{result.stderr}")


def issue(name: str, subject: str, ext: str) -> None:
    """A key and a certificate signed by the stack's CA."""
    d = P.certs
    key, csr, crt, extfile = (d / f"{name}.{suffix}" for suffix in ("key", "csr", "crt", "ext"))
    openssl(
        *("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key)),
        *("-subj", subject, "-out", str(csr)),
    )
    extfile.write_text(
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n" + ext
    )
    ca = ("-CA", str(d / "ca.crt"), "-CAkey", str(d / "ca.key"), "-CAcreateserial")
    openssl(
        *("x509", "-req", "-in", str(csr), *ca, "-days", "3650", "-sha256"),
        *("-extfile", str(extfile), "-out", str(crt)),
    )
    csr.unlink()


def ensure_certs() -> None:
    """CA, API server serving cert and the service-account key once; every client cert."""
    d = P.certs
    d.mkdir(parents=True, exist_ok=True)
    if not (d / "complete").exists():
        _authority()
        (d / "complete").write_text("")
    # Also for a state directory from before an identity was added.
    for name, subject in CLIENTS.items():
        if not (d / f"{name}.crt").exists():
            issue(name, subject, "extendedKeyUsage=clientAuth\n")
    for key in d.glob("*.key"):
        key.chmod(0o600)


def _authority() -> None:
    d = P.certs
    openssl(
        *("req", "-x509", "-new", "-newkey", "rsa:2048", "-nodes", "-days", "3650"),
        *("-subj", "/CN=trailboss-local-ca", "-keyout", str(d / "ca.key")),
        *("-out", str(d / "ca.crt"), "-addext", "basicConstraints=critical,CA:TRUE"),
        *("-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature"),
    )
    issue(
        "kube-apiserver",
        "/CN=kube-apiserver",
        f"extendedKeyUsage=serverAuth\nsubjectAltName={','.join(API_SERVER_NAMES)}\n",
    )
    openssl("genrsa", "-out", str(d / "sa.key"), "2048")
    openssl("rsa", "-in", str(d / "sa.key"), "-pubout", "-out", str(d / "sa.pub"))


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def write_kubeconfig(path: Path, user: str, server: str) -> None:
    """A self-contained kubeconfig (certificates inlined) for one client identity."""
    d = P.certs
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "trailboss",
                "cluster": {"server": server, "certificate-authority-data": _b64(d / "ca.crt")},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": _b64(d / f"{user}.crt"),
                    "client-key-data": _b64(d / f"{user}.key"),
                },
            }
        ],
        "contexts": [{"name": "trailboss", "context": {"cluster": "trailboss", "user": user}}],
        "current-context": "trailboss",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    # JSON is YAML; no dependency needed to write it.
    path.write_text(json.dumps(config, indent=2) + "\n")
    path.chmod(0o600)
