"""The Prometheus client against a real HTTP server on loopback that asks for a
bearer token or basic auth, serves https with a private CA, redirects, echoes
what it was sent, or takes its time."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import ipaddress
import json
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from trailboss.clients.prometheus import LARGEST_ANSWER, Prometheus
from trailboss.clients.protocols import Credentials, Endpoint, QueryFailed

ONE_NUMBER = {"status": "success", "data": {"resultType": "scalar", "result": [0, "0.25"]}}
TOKEN = "tok-3f9a1c"
USER, PASSWORD = "analysis", "pa:ss-w0rd"


@dataclass
class Reply:
    status: int = 200
    body: bytes = json.dumps(ONE_NUMBER).encode()
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Server:
    """What the server demands and answers, and what it was sent."""

    url: str = ""
    wants: str | None = None
    """The Authorization header it accepts; none: it accepts anyone."""
    reply: Reply = field(default_factory=Reply)
    seen: list[dict[str, str]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    state: Server

    def do_GET(self) -> None:
        state = self.state
        state.seen.append(dict(self.headers))
        state.paths.append(self.path)
        if state.wants is not None and self.headers.get("Authorization") != state.wants:
            self._send(Reply(401, b"Unauthorized\n", {"WWW-Authenticate": 'Basic realm="x"'}))
            return
        time.sleep(state.reply.delay)
        self._send(state.reply)

    def _send(self, reply: Reply) -> None:
        body = reply.body.replace(b"$AUTH", self.headers.get("Authorization", "").encode())
        self.send_response(reply.status)
        for key, value in reply.headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        # The client may stop reading first (a timeout, or an answer too large).
        with contextlib.suppress(BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def _serve(state: Server, tls: ssl.SSLContext | None = None) -> Iterator[Server]:
    handler = type("Handler", (_Handler,), {"state": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    scheme = "https" if tls is not None else "http"
    state.url = f"{scheme}://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def prometheus() -> Iterator[Server]:
    yield from _serve(Server())


@pytest.fixture
def other() -> Iterator[Server]:
    yield from _serve(Server())


# --------------------------------------------------------------------------- a private CA


@dataclass
class Pki:
    ca_pem: str
    server: ssl.SSLContext


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(
    subject: str, key: ec.EllipticCurvePrivateKey, issuer: tuple[str, ec.EllipticCurvePrivateKey]
) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer[0]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
    )


def private_ca(tmp_path: Path, name: str = "test CA") -> Pki:
    """A CA and a serving certificate it signed for 127.0.0.1."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        _certificate(name, ca_key, (name, ca_key))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
    leaf = (
        _certificate("prometheus", key, (name, ca_key))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    (tmp_path / "tls.crt").write_bytes(leaf.public_bytes(pem) + ca.public_bytes(pem))
    (tmp_path / "tls.key").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(tmp_path / "tls.crt", tmp_path / "tls.key")
    return Pki(ca.public_bytes(pem).decode(), server)


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return private_ca(tmp_path)


@pytest.fixture
def https(pki: Pki) -> Iterator[Server]:
    yield from _serve(Server(), pki.server)


def ask(endpoint: Endpoint) -> float | None:
    return Prometheus().query(endpoint, "sum(rate(errors[1m]))")


def failure(endpoint: Endpoint) -> str:
    with pytest.raises(QueryFailed) as failed:
        ask(endpoint)
    return str(failed.value)


# --------------------------------------------------------------------------- credentials


def test_a_bearer_token_is_sent_as_its_authorization_header(prometheus: Server) -> None:
    prometheus.wants = f"Bearer {TOKEN}"
    assert ask(Endpoint(prometheus.url, Credentials(token=TOKEN))) == 0.25


def test_basic_auth_sends_the_user_name_and_password(prometheus: Server) -> None:
    prometheus.wants = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert ask(Endpoint(prometheus.url, Credentials(username=USER, password=PASSWORD))) == 0.25


def test_without_credentials_the_401_says_where_to_name_them(prometheus: Server) -> None:
    prometheus.wants = f"Bearer {TOKEN}"
    message = failure(Endpoint(prometheus.url))
    assert message == (
        f"Prometheus at {prometheus.url} requires authentication (401 Unauthorized); name a "
        "Secret with a token, or a username and password, in "
        "spec.rollout.analysis.prometheusAuth"
    )
    assert "Authorization" not in prometheus.seen[-1]


def test_refused_credentials_are_named_but_never_shown(prometheus: Server) -> None:
    prometheus.wants = f"Bearer {TOKEN}"
    wrong = Credentials(username=USER, password=PASSWORD)
    message = failure(Endpoint(prometheus.url, wrong))
    assert message == f"Prometheus at {prometheus.url} refused the credentials (401 Unauthorized)"
    assert PASSWORD not in repr(wrong)
    assert PASSWORD not in repr(Endpoint("u", wrong))


@pytest.mark.parametrize(
    "credentials",
    [Credentials(token=TOKEN), Credentials(username=USER, password=PASSWORD)],
    ids=["token", "basic"],
)
def test_an_error_that_echoes_the_request_never_carries_the_secret(
    prometheus: Server, credentials: Credentials
) -> None:
    prometheus.reply = Reply(400, b'{"status": "error", "error": "bad header $AUTH"}')
    message = failure(Endpoint(prometheus.url, credentials))
    assert message.startswith("Prometheus refused the query (400): bad header ")
    assert "***" in message
    for secret in (TOKEN, PASSWORD, base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()):
        assert secret not in message


def test_a_redirect_is_not_followed_so_credentials_stay_with_the_url_given(
    prometheus: Server, other: Server
) -> None:
    prometheus.reply = Reply(302, b"", {"Location": f"{other.url}/api/v1/query"})
    message = failure(Endpoint(prometheus.url, Credentials(token=TOKEN)))
    assert message.startswith(
        f"Prometheus at {prometheus.url} answered with a redirect (302) to {other.url}"
    )
    assert other.seen == []


def test_the_query_and_prometheus_own_timeout_are_sent(prometheus: Server) -> None:
    ask(Endpoint(prometheus.url + "/", timeout=3.5))
    (path,) = prometheus.paths
    assert path == "/api/v1/query?query=sum%28rate%28errors%5B1m%5D%29%29&timeout=3.5"


# --------------------------------------------------------------------------- https


def test_https_is_verified_with_the_ca_bundle_given(https: Server, pki: Pki) -> None:
    endpoint = Endpoint(https.url, Credentials(token=TOKEN), pki.ca_pem, "ca.crt of Secret p")
    assert ask(endpoint) == 0.25
    assert https.seen[-1]["Authorization"] == f"Bearer {TOKEN}"


def test_https_signed_by_an_unknown_ca_is_refused_before_any_credential_is_sent(
    https: Server, tmp_path: Path
) -> None:
    message = failure(Endpoint(https.url, Credentials(token=TOKEN)))
    assert message.startswith(
        f"Prometheus at {https.url} failed TLS verification against the system's CAs: "
    )
    assert "CERTIFICATE_VERIFY_FAILED" in message
    (tmp_path / "other").mkdir()
    another = private_ca(tmp_path / "other", "another CA")
    endpoint = Endpoint(https.url, Credentials(token=TOKEN), another.ca_pem, "ca.crt of Secret p")
    assert "failed TLS verification against ca.crt of Secret p" in failure(endpoint)
    assert https.seen == []


def test_a_ca_bundle_that_is_not_pem_is_named(prometheus: Server) -> None:
    endpoint = Endpoint(prometheus.url, ca_bundle="not a certificate", ca_origin="ca.crt of X")
    assert failure(endpoint).startswith("ca.crt of X is not a PEM CA bundle")


# --------------------------------------------------------------------------- limits


def test_a_slow_prometheus_is_an_error_naming_the_timeout(prometheus: Server) -> None:
    prometheus.reply = Reply(delay=2.0)
    started = time.monotonic()
    message = failure(Endpoint(prometheus.url, timeout=0.5))
    assert time.monotonic() - started < 1.9
    assert message == (
        f"Prometheus at {prometheus.url} did not answer within 0.5s (spec.rollout.analysis.timeout)"
    )


def test_an_answer_too_large_to_be_one_number_is_refused(prometheus: Server) -> None:
    prometheus.reply = Reply(body=b" " * (LARGEST_ANSWER + 1))
    assert "larger than 1048576 bytes" in failure(Endpoint(prometheus.url))


def test_an_unreachable_prometheus_is_named(prometheus: Server) -> None:
    closed = Endpoint("http://127.0.0.1:1")
    assert failure(closed).startswith("Prometheus at http://127.0.0.1:1 is unreachable: ")
