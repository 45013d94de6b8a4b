"""The stack's CA, the API server's serving certificate, client identities, kubeconfigs.

Keys and certificates are made with the `cryptography` package (already a
dependency of the operator's clients), so the stack needs no `openssl` binary."""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .settings import SERVICE_IP, P

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

VALIDITY = dt.timedelta(days=3650)
"""How long the CA and every certificate it signs are valid: ten years, so a
stack's state directory never expires under it."""

_ATTRIBUTES = {"O": NameOID.ORGANIZATION_NAME, "CN": NameOID.COMMON_NAME}


def subject_name(subject: str) -> x509.Name:
    """An OpenSSL-style subject (``/O=system:masters/CN=admin``) as an X.509 name, in order."""
    parts = [part.partition("=") for part in subject.strip("/").split("/")]
    return x509.Name([x509.NameAttribute(_ATTRIBUTES[key], value) for key, _, value in parts])


def alternative_names(names: tuple[str, ...]) -> x509.SubjectAlternativeName:
    """``IP:…`` and ``DNS:…`` entries as a subjectAltName extension."""
    general: list[x509.GeneralName] = []
    for name in names:
        kind, _, value = name.partition(":")
        if kind == "IP":
            general.append(x509.IPAddress(ipaddress.ip_address(value)))
        else:
            general.append(x509.DNSName(value))
    return x509.SubjectAlternativeName(general)


def _new_key(path: Path) -> rsa.RSAPrivateKey:
    """A 2048-bit RSA key, written unencrypted as PKCS#8 PEM (what `openssl req -nodes` wrote)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
    return key


def _builder(
    subject: x509.Name, issuer: x509.Name, key: rsa.RSAPrivateKey
) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))  # clocks a little apart
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )


def _usage(*, signs: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=not signs,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=signs,
        crl_sign=signs,
        encipher_only=False,
        decipher_only=False,
    )


def _write_certificate(path: Path, certificate: x509.Certificate) -> None:
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))


def issue(
    name: str,
    subject: str,
    usage: x509.ObjectIdentifier,
    names: tuple[str, ...] = (),
) -> None:
    """A key and a certificate signed by the stack's CA, for ``usage`` (client or
    server authentication), with ``names`` as subject alternative names."""
    d = P.certs
    ca_key = serialization.load_pem_private_key((d / "ca.key").read_bytes(), password=None)
    ca = x509.load_pem_x509_certificate((d / "ca.crt").read_bytes())
    assert isinstance(ca_key, rsa.RSAPrivateKey)
    key = _new_key(d / f"{name}.key")
    builder = (
        _builder(subject_name(subject), ca.subject, key)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(signs=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if names:
        builder = builder.add_extension(alternative_names(names), critical=False)
    _write_certificate(d / f"{name}.crt", builder.sign(ca_key, hashes.SHA256()))


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
            issue(name, subject, ExtendedKeyUsageOID.CLIENT_AUTH)
    for key in d.glob("*.key"):
        key.chmod(0o600)


def _authority() -> None:
    d = P.certs
    key = _new_key(d / "ca.key")
    name = subject_name("/CN=trailboss-local-ca")
    ca = (
        _builder(name, name, key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_usage(signs=True), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    _write_certificate(d / "ca.crt", ca)
    issue("kube-apiserver", "/CN=kube-apiserver", ExtendedKeyUsageOID.SERVER_AUTH, API_SERVER_NAMES)
    # The key the API server signs service-account tokens with, and its public half.
    service_accounts = _new_key(d / "sa.key")
    (d / "sa.pub").write_bytes(
        service_accounts.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


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
