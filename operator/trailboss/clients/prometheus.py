"""Prometheus's HTTP API, as rollout analysis uses it: one instant query, one number,
from a Prometheus that may ask for a bearer token or basic auth and serve https
with a certificate of a private CA."""

from __future__ import annotations

import hashlib
import json
import math
import os
import ssl
import tempfile
import threading
from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase

from trailboss.clients.protocols import Credentials, Endpoint, QueryFailed
from trailboss.settings import CONNECTIONS

LARGEST_ANSWER = 1 << 20
"""Bytes of an answer read at most: one number takes a few hundred, and a query
that returns more than this is not one number anyway."""
PROMETHEUS_HOSTS = 32
"""Prometheus servers whose connections are kept at once."""


class _Authorization(AuthBase):
    """Sets the credentials' header, if any. Always given, so that requests never
    reaches for a ~/.netrc entry of its own."""

    def __init__(self, credentials: Credentials) -> None:
        self.header = credentials.authorization()

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if self.header is not None:
            request.headers["Authorization"] = self.header
        return request


class Prometheus:
    """One HTTP session for every Prometheus, with a connection per reconciling
    thread to each. Connections verified against different CA bundles are pooled
    apart (urllib3 keys its pools by the bundle)."""

    def __init__(self) -> None:
        self._session = requests.Session()
        adapter = HTTPAdapter(pool_connections=PROMETHEUS_HOSTS, pool_maxsize=CONNECTIONS)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._ca_files = _CaFiles()

    def query(self, endpoint: Endpoint, promql: str) -> float | None:
        """The query's single value now; None when it returns no data. A result of
        several series is refused: a bound on "one of them" would mean nothing.
        No error names the token or password, even where Prometheus echoes them."""
        try:
            return single_value(self._ask(endpoint, promql))
        except QueryFailed as failed:
            raise QueryFailed(endpoint.credentials.redact(str(failed))) from None

    def _ask(self, endpoint: Endpoint, promql: str) -> Any:
        verify: bool | str = True
        if endpoint.ca_bundle is not None:
            verify = self._ca_files.path(endpoint.ca_bundle, endpoint.ca_origin)
        url = f"{endpoint.url.rstrip('/')}/api/v1/query"
        # Prometheus's own timeout stops the evaluation when the operator stops
        # waiting. In seconds: Prometheus reads "1.5" but not "1.5s".
        params = {"query": promql, "timeout": f"{endpoint.timeout:g}"}
        try:
            with self._session.get(
                url,
                params=params,
                auth=_Authorization(endpoint.credentials),
                timeout=endpoint.timeout,
                verify=verify,
                allow_redirects=False,
                stream=True,
            ) as answer:
                body = _read_at_most(answer, LARGEST_ANSWER)
        except requests.RequestException as error:
            raise QueryFailed(_unreachable(endpoint, error)) from None
        _check_status(endpoint, answer, body)
        try:
            return json.loads(body)
        except ValueError:
            raise QueryFailed(f"Prometheus's answer is not JSON: {body!r:.200}") from None


def _read_at_most(answer: requests.Response, limit: int) -> bytes:
    body = bytearray()
    for chunk in answer.iter_content(64 * 1024):
        body += chunk
        if len(body) > limit:
            raise QueryFailed(
                f"Prometheus's answer is larger than {limit} bytes; aggregate the query "
                "to one series (e.g. sum(...))"
            )
    return bytes(body)


def _unreachable(endpoint: Endpoint, error: requests.RequestException) -> str:
    where = f"Prometheus at {endpoint.url}"
    if isinstance(error, requests.Timeout):
        return (
            f"{where} did not answer within {endpoint.timeout:g}s (spec.rollout.analysis.timeout)"
        )
    cause = _cause(error)
    if isinstance(error, requests.exceptions.SSLError):
        trusted = endpoint.ca_origin if endpoint.ca_bundle is not None else "the system's CAs"
        return f"{where} failed TLS verification against {trusted}: {cause}"
    return f"{where} is unreachable: {cause}"


def _cause(error: requests.RequestException) -> str:
    """The innermost reason, without urllib3's wrapping (pool, retries, the URL)."""
    reason: object = error.args[0] if error.args else error
    reason = getattr(reason, "reason", reason)
    return f"{reason}"[:300]


def _check_status(endpoint: Endpoint, answer: requests.Response, body: bytes) -> None:
    status = answer.status_code
    if status == 200:
        return
    if answer.is_redirect:
        raise QueryFailed(
            f"Prometheus at {endpoint.url} answered with a redirect ({status}) to "
            f"{answer.headers.get('Location')!s:.200}; set spec.rollout.analysis.prometheusUrl "
            "to where it points (credentials are never sent on)"
        )
    if status in (401, 403):
        raise QueryFailed(_denied(endpoint, status, answer.reason))
    raise QueryFailed(f"Prometheus refused the query ({status}): {_error(body, answer.reason)}")


def _denied(endpoint: Endpoint, status: int, reason: str) -> str:
    where = f"Prometheus at {endpoint.url}"
    if endpoint.credentials.authorization() is None:
        return (
            f"{where} requires authentication ({status} {reason}); name a Secret with a "
            "token, or a username and password, in spec.rollout.analysis.prometheusAuth"
        )
    return f"{where} refused the credentials ({status} {reason})"


def _error(body: bytes, reason: str) -> str:
    try:
        return str(json.loads(body).get("error", reason))[:300]
    except (ValueError, AttributeError):
        return reason


class _CaFiles:
    """CA bundles as files, which is how requests takes them: one per bundle, named
    by its digest, in a directory of this process (under /tmp, writable in the
    chart's read-only pod). A bundle is checked once, when its file is written."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._directory: Path | None = None

    def path(self, pem: str, origin: str) -> str:
        digest = hashlib.sha256(pem.encode()).hexdigest()
        with self._lock:
            try:
                if self._directory is None:
                    self._directory = Path(tempfile.mkdtemp(prefix="trailboss-ca-"))
                path = self._directory / f"{digest}.pem"
                if not path.exists():
                    _check_bundle(pem, origin)
                    written = path.with_suffix(".tmp")
                    written.write_text(pem)
                    os.replace(written, path)
            except OSError as error:
                raise QueryFailed(f"could not keep {origin} in a file: {error}") from None
        return str(path)


def _check_bundle(pem: str, origin: str) -> None:
    try:
        ssl.create_default_context(cadata=pem)
    except (ssl.SSLError, ValueError) as error:
        raise QueryFailed(f"{origin} is not a PEM CA bundle: {error}") from None


def single_value(body: Any) -> float | None:
    """The number in an instant-query answer (a vector of at most one series, or a
    scalar); None for no data. Any other answer (several series, a range vector, a
    string, an error, a malformed body) raises QueryFailed, which analysis records as
    an Error measurement: never another exception."""
    try:
        return _read(body)
    except (LookupError, TypeError, ValueError, AttributeError) as error:
        raise QueryFailed(
            f"Prometheus's answer could not be read ({error!r}): {body!r:.200}"
        ) from error


def _read(body: Any) -> float | None:
    if body.get("status") == "error":
        raise QueryFailed(f"Prometheus could not run the query: {body.get('error')!s:.300}")
    data: dict[str, Any] = body["data"]
    kind, result = data.get("resultType"), data["result"]
    if kind == "scalar":
        return _number(result[1])
    if kind != "vector":
        raise QueryFailed(
            f"the query returned a {kind}, not one number; write an instant query that "
            "returns one series (e.g. sum(rate(x[5m])), not x[5m])"
        )
    if not result:
        return None
    if len(result) > 1:
        raise QueryFailed(
            f"the query returned {len(result)} series; aggregate it to one (e.g. sum(...))"
        )
    return _number(result[0]["value"][1])


def _number(text: str) -> float | None:
    value = float(text)
    return None if math.isnan(value) else value
