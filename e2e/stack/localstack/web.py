"""HTTP to the components: health checks and the API server (admin identity)."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request

from .settings import P
from .state import State


def admin_tls() -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(P.certs / "ca.crt"))
    ctx.load_cert_chain(str(P.certs / "admin.crt"), str(P.certs / "admin.key"))
    return ctx


def insecure_tls() -> ssl.SSLContext:
    # Controller-manager and scheduler serve /healthz with a self-signed cert.
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def http(
    method: str,
    url: str,
    body: object | None = None,
    tls: ssl.SSLContext | None = None,
    timeout: float = 3.0,
    content_type: str = "application/json",
) -> tuple[int, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": content_type}
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=tls) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def http_ok(url: str, tls: ssl.SSLContext | None = None, expect: bytes | None = None) -> bool:
    try:
        status, body = http("GET", url, tls=tls, timeout=2.0)
    except (OSError, ValueError):
        return False
    return status == 200 and (expect is None or expect in body)


def api(
    st: State,
    method: str,
    path: str,
    body: object | None = None,
    content_type: str = "application/json",
) -> tuple[int, object]:
    """One call to the stack's API server as cluster admin; the body parsed as JSON."""
    url = st.url("kube-apiserver", "https") + path
    status, raw = http(method, url, body, tls=admin_tls(), content_type=content_type)
    try:
        return status, json.loads(raw or b"null")
    except ValueError:
        return status, raw.decode(errors="replace")
