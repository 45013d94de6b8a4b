"""The local stack's pure decisions: which S3 server runs, and where; and the
certificates it makes (CA, API server, client identities), checked without starting it."""

from __future__ import annotations

import datetime as dt
import ssl
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID
from e2e.stack.localstack import certs
from e2e.stack.localstack.bootstrap import choose_s3_backend
from e2e.stack.localstack.pods import netns
from e2e.stack.localstack.pods.netns import allocate_ip, veth_name
from e2e.stack.localstack.pods.probes import ProbeState, parse_probe
from e2e.stack.localstack.pods.restarts import (
    backoff_seconds,
    exit_code,
    should_restart,
)
from e2e.stack.localstack.pods.runner import CLAIMED, Runner, serves
from e2e.stack.localstack.pods.status import ContainerReport, running_status
from e2e.stack.localstack.settings import SERVICE_IP, Paths, StackError


@pytest.mark.parametrize(
    ("requested", "has_minio", "has_moto", "in_ci", "expected"),
    [
        ("auto", True, True, False, "minio"),
        ("auto", False, True, False, "moto"),
        ("moto", True, True, False, "moto"),
        ("minio", True, False, False, "minio"),
        ("auto", True, True, True, "minio"),
        ("minio", True, True, True, "minio"),
    ],
)
def test_s3_backend_choice(
    requested: str, has_minio: bool, has_moto: bool, in_ci: bool, expected: str
) -> None:
    assert choose_s3_backend(requested, has_minio, has_moto, in_ci) == expected


@pytest.mark.parametrize(
    ("requested", "has_minio", "has_moto", "in_ci", "message"),
    [
        ("moto", True, True, True, "moto refused under CI=true"),
        ("auto", False, True, True, "minio required under CI=true"),
        ("minio", False, True, False, "minio requested"),
        ("moto", True, False, False, "moto is not installed"),
        ("auto", False, False, False, "no S3 server"),
        ("s3", True, True, False, "'s3' unknown (--s3 or TRAILBOSS_S3_BACKEND)"),
    ],
)
def test_s3_backend_refusals_name_the_fix(
    requested: str, has_minio: bool, has_moto: bool, in_ci: bool, message: str
) -> None:
    with pytest.raises(StackError, match=message.replace("(", r"\(").replace(")", r"\)")):
        choose_s3_backend(requested, has_minio, has_moto, in_ci)


# --------------------------------------------------------------------------- pod runner

CONTAINER = {"name": "app", "ports": [{"name": "http", "containerPort": 8080}]}


def test_probe_defaults_and_named_port() -> None:
    spec = parse_probe({"httpGet": {"path": "/ready", "port": "http"}}, CONTAINER, "readinessProbe")
    assert spec is not None
    assert (spec.port, spec.path, spec.period, spec.timeout) == (8080, "/ready", 10.0, 1.0)
    assert (spec.success_threshold, spec.failure_threshold) == (1, 3)


@pytest.mark.parametrize(
    ("probe", "message"),
    [
        ({"exec": {"command": ["true"]}}, "only httpGet and tcpSocket probes"),
        ({"httpGet": {"port": "metrics"}}, "readinessProbe.httpGet.port: no container port"),
    ],
)
def test_probe_errors_name_the_field(probe: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_probe(probe, CONTAINER, "readinessProbe")


def test_readiness_flips_after_thresholds_only() -> None:
    spec = parse_probe(
        {
            "tcpSocket": {"port": 8080},
            "periodSeconds": 1,
            "failureThreshold": 2,
            "successThreshold": 2,
        },
        CONTAINER,
        "readinessProbe",
    )
    assert spec is not None
    state = ProbeState.begin(spec, started=100.0, initial=False)
    assert state.due(100.0)
    assert [state.record(ok, "", t) for t, ok in enumerate([True, True, False, False], 101)] == [
        False,
        True,
        False,
        True,
    ]
    assert state.result is False
    assert not state.due(104.5)
    assert state.due(105.0)


@pytest.mark.parametrize(
    ("policy", "code", "restart"),
    [
        ("Always", 0, True),
        ("Always", 1, True),
        ("OnFailure", 0, False),
        ("OnFailure", 2, True),
        ("Never", 1, False),
    ],
)
def test_restart_policy(policy: str, code: int, restart: bool) -> None:
    assert should_restart(policy, code) is restart


def test_crash_loop_backoff_doubles_to_five_minutes() -> None:
    assert [backoff_seconds(n) for n in (1, 2, 3, 4, 7, 20)] == [0, 10, 20, 40, 300, 300]
    assert (exit_code(-9), exit_code(-15), exit_code(3)) == (137, 143, 3)


def test_serving_pods_get_a_network_namespace() -> None:
    def pod(container: dict[str, Any], host: bool = False) -> dict[str, Any]:
        return {"spec": {"containers": [container], "hostNetwork": host}}

    assert serves(pod(CONTAINER))
    assert serves(pod({"name": "p", "readinessProbe": {"tcpSocket": {"port": 1}}}))
    assert not serves(pod({"name": "train"}))
    assert not serves(pod(CONTAINER, host=True))


def test_pod_addresses_come_from_the_runner_range() -> None:
    assert allocate_ip(set()) == "10.244.128.2"
    assert allocate_ip({"10.244.128.2", "10.244.128.3"}) == "10.244.128.4"
    assert allocate_ip(set(), after="10.244.128.2") == "10.244.128.3"  # no quick reuse
    assert allocate_ip({"10.244.128.2"}, after="10.244.255.254") == "10.244.128.3"  # wraps
    assert len(veth_name("1b4e28ba-2fa1-11d2-883f-0016d3cca427")) <= 15


def test_ready_condition_follows_the_container() -> None:
    pod = {"spec": {"containers": [{"name": "app"}]}}
    report = ContainerReport({"running": {"startedAt": "t0"}}, ready=False, restart_count=2)
    status = running_status(pod, "10.244.128.5", "t0", report, "t1")["status"]
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions["Ready"] == conditions["ContainersReady"] == "False"
    assert status["podIP"] == "10.244.128.5"
    assert status["containerStatuses"][0]["restartCount"] == 2


class RecordingKube:
    """The runner's API calls, recorded; the pods it lists are set by the test."""

    def __init__(self, pods: list[dict[str, Any]]) -> None:
        self.listed = pods
        self.calls: list[tuple[str, str, object]] = []

    def fake_nodes(self) -> set[str]:
        return {"kwok-node-0"}

    def pods(self) -> list[dict[str, Any]]:
        return self.listed

    def patch(self, pod: dict[str, Any], body: object, subresource: str = "") -> None:
        self.calls.append(("patch" + subresource, pod["metadata"]["name"], body))

    def delete_now(self, pod: dict[str, Any]) -> None:
        self.calls.append(("delete", pod["metadata"]["name"], None))


def training_pod(**meta: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "train-0", "namespace": "ns", "uid": "u-1", **meta},
        "spec": {
            "nodeName": "kwok-node-0",
            "restartPolicy": "Never",
            "containers": [{"name": "train", "command": ["sleep", "30"]}],
        },
        "status": {"phase": "Pending"},
    }


def phases_written(kube: RecordingKube) -> list[str]:
    return [
        body["status"]["phase"]  # type: ignore[index]
        for call, _, body in kube.calls
        if call == "patch/status"
    ]


def test_a_running_pod_deleted_is_reported_failed_before_it_goes(tmp_path: Path) -> None:
    """The Job controller frees a pod's tracking finalizer only once the pod is
    finished; a pod deleted while it runs must say so, or its namespace never goes."""
    pod = training_pod()
    kube = RecordingKube([pod])
    runner = Runner(kube, tmp_path, pod_network=False)  # type: ignore[arg-type]
    runner.sync()
    assert phases_written(kube) == ["Running"]
    pod["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    runner.sync()
    assert phases_written(kube) == ["Running", "Failed"]
    assert kube.calls[-1][0] == "delete"
    assert not runner.containers


def test_a_deleted_pod_left_running_by_an_earlier_runner_is_finished(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(netns, "delete", lambda uid: None)
    pod = training_pod(
        annotations={CLAIMED: "2026-01-01T00:00:00Z"}, deletionTimestamp="2026-01-01T00:01:00Z"
    )
    pod["status"] = {"phase": "Running", "startTime": "2026-01-01T00:00:00Z"}
    kube = RecordingKube([pod])
    Runner(kube, tmp_path, pod_network=False).sync()  # type: ignore[arg-type]
    assert phases_written(kube) == ["Failed"]
    assert [c[0] for c in kube.calls] == ["patch/status", "delete"]


# --------------------------------------------------------------------------- certificates


@pytest.fixture
def stack_certs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The stack's certificates, made in a state directory of the test's own."""
    monkeypatch.setattr(certs, "P", Paths(tmp_path))
    certs.ensure_certs()
    return tmp_path / "certs"


def _certificate(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _handshake(server: ssl.SSLContext, client: ssl.SSLContext, hostname: str) -> None:
    """A TLS handshake in memory: raises ssl.SSLError when either side refuses."""
    to_server, to_client = ssl.MemoryBIO(), ssl.MemoryBIO()
    server_end = server.wrap_bio(to_server, to_client, server_side=True)
    client_end = client.wrap_bio(to_client, to_server, server_hostname=hostname)
    for _ in range(10):
        done = 0
        for end in (client_end, server_end):
            try:
                end.do_handshake()
                done += 1
            except ssl.SSLWantReadError:
                pass
        if done == 2:
            return
    raise AssertionError("the handshake did not finish")


def test_the_ca_signs_the_api_servers_certificate_for_its_names(stack_certs: Path) -> None:
    ca = _certificate(stack_certs / "ca.crt")
    server = _certificate(stack_certs / "kube-apiserver.crt")
    server.verify_directly_issued_by(ca)
    assert ca.subject.rfc4514_string() == "CN=trailboss-local-ca"
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {str(ip) for ip in names.get_values_for_type(x509.IPAddress)} == {
        "127.0.0.1",
        SERVICE_IP,
    }
    assert set(names.get_values_for_type(x509.DNSName)) == {
        "localhost",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
    }
    usage = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]
    for certificate in (ca, server):
        valid = certificate.not_valid_after_utc - certificate.not_valid_before_utc
        assert dt.timedelta(days=3650) <= valid <= dt.timedelta(days=3650, minutes=10)


def test_every_client_identity_is_signed_by_the_ca(stack_certs: Path) -> None:
    ca = _certificate(stack_certs / "ca.crt")
    for name, subject in certs.CLIENTS.items():
        client = _certificate(stack_certs / f"{name}.crt")
        client.verify_directly_issued_by(ca)
        # OpenSSL's "/O=a/CN=b" is RFC 4514's "CN=b,O=a": the same name, written backwards.
        assert client.subject.rfc4514_string() == ",".join(reversed(subject.strip("/").split("/")))
        usage = client.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
        assert (stack_certs / f"{name}.key").stat().st_mode & 0o777 == 0o600


def test_a_client_reaches_the_api_server_over_tls_with_them(stack_certs: Path) -> None:
    """What kubectl with the admin kubeconfig does: trust the CA, present admin's
    certificate, and reach the API server at its in-cluster name."""
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(stack_certs / "kube-apiserver.crt", stack_certs / "kube-apiserver.key")
    server.load_verify_locations(stack_certs / "ca.crt")
    server.verify_mode = ssl.CERT_REQUIRED
    client = ssl.create_default_context(cafile=str(stack_certs / "ca.crt"))
    client.load_cert_chain(stack_certs / "admin.crt", stack_certs / "admin.key")
    for hostname in ("kubernetes.default.svc", "localhost", "127.0.0.1", SERVICE_IP):
        _handshake(server, client, hostname)
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(server, client, "example.com")


def test_the_service_account_key_pair_matches(stack_certs: Path) -> None:
    key = serialization.load_pem_private_key((stack_certs / "sa.key").read_bytes(), None)
    public = serialization.load_pem_public_key((stack_certs / "sa.pub").read_bytes())
    assert key.public_key().public_numbers() == public.public_numbers()  # type: ignore[union-attr]


def test_certificates_are_made_once_and_a_new_identity_is_added(stack_certs: Path) -> None:
    ca = (stack_certs / "ca.crt").read_bytes()
    (stack_certs / "kube-proxy.crt").unlink()
    certs.ensure_certs()
    assert (stack_certs / "ca.crt").read_bytes() == ca
    _certificate(stack_certs / "kube-proxy.crt").verify_directly_issued_by(
        x509.load_pem_x509_certificate(ca)
    )
