"""Where and how one analysis pass asks Prometheus: the Secret the Deployment names
(read afresh at every pass, so that a rotated Secret takes effect), or, for the
platform's Prometheus only, the operator's own token and CA files. What is missing
is named in an error the analysis records as its measurement."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from trailboss.api.durations import duration_seconds
from trailboss.api.rollout import AnalysisSpec
from trailboss.clients.protocols import Credentials, Endpoint, Forbidden
from trailboss.policies.prometheus_access import under_platform
from trailboss.reconcilers.common import Services
from trailboss.settings import Settings

SECRET_KEYS = ("token", "username", "password", "ca.crt")
_NOT_IN_A_HEADER = re.compile(r"[\x00-\x1f\x7f]")
SECRET_REF = "spec.rollout.analysis.prometheusAuth.secretRef"


class NoAccess(Exception):
    """Prometheus cannot be asked as the spec and settings say; the message says why."""


def endpoint(svc: Services, namespace: str, analysis: AnalysisSpec) -> Endpoint:
    ours = _is_the_platforms(svc.settings, analysis.prometheus_url)
    auth = analysis.prometheus_auth
    if auth is None:
        credentials = _platform_credentials(svc.settings) if ours else Credentials()
        ca = _platform_ca(svc.settings) if ours else None
    else:
        name = auth.secret_ref.name
        secret = _secret_data(svc, namespace, name)
        credentials = _credentials(secret, name)
        ca = _secret_ca(secret, name) or (_platform_ca(svc.settings) if ours else None)
    pem, origin = ca or (None, "the CA bundle")
    # The timeout bounds a wait on the network, not a time of the rollout: a
    # test's time scale does not shorten it.
    timeout = duration_seconds(analysis.timeout)
    return Endpoint(analysis.prometheus_url, credentials, pem, origin, timeout)


def _is_the_platforms(settings: Settings, url: str) -> bool:
    platform = settings.prometheus_url
    return platform is not None and under_platform(url, platform)


def _secret_data(svc: Services, namespace: str, name: str) -> dict[str, str]:
    """The keys of the Secret that analysis reads, as text."""
    try:
        secret = svc.kube.get("v1", "Secret", namespace, name)
    except Forbidden:
        raise NoAccess(
            f"the operator may not read Secret {name} ({SECRET_REF}) in namespace "
            f"{namespace}: it was installed without Secret reads (chart value "
            "rbac.readSecrets: false). Set rbac.readSecrets: true, or grant it get on that "
            f"Secret with a Role in {namespace}"
        ) from None
    if secret is None:
        raise NoAccess(f"Secret {name} ({SECRET_REF}) does not exist in namespace {namespace}")
    data: dict[str, Any] = secret.get("data") or {}
    return {key: _text(data[key], name, key) for key in SECRET_KEYS if key in data}


def _text(encoded: str, name: str, key: str) -> str:
    try:
        return base64.b64decode(encoded, validate=True).decode()
    except (binascii.Error, ValueError):
        raise NoAccess(f"Secret {name}: key {key} is not UTF-8 text") from None


def _credentials(secret: dict[str, str], name: str) -> Credentials:
    token = secret.get("token", "").strip()
    # A file made with `echo` ends in a newline, which is never part of a password.
    username = secret.get("username", "").rstrip("\r\n")
    password = secret.get("password", "").rstrip("\r\n")
    if token and (username or password):
        raise NoAccess(f"Secret {name} has both token and username/password; keep one")
    if token:
        if _NOT_IN_A_HEADER.search(token):
            raise NoAccess(f"Secret {name}: token holds a line break or control character")
        return Credentials(token=token)
    if username and password:
        if ":" in username:
            raise NoAccess(f"Secret {name}: a basic auth username cannot hold ':'")
        return Credentials(username=username, password=password)
    if username or password:
        has, lacks = ("username", "password") if username else ("password", "username")
        raise NoAccess(f"Secret {name} has {has} but no {lacks}")
    raise NoAccess(f"Secret {name} has no key token or username/password")


def _platform_credentials(settings: Settings) -> Credentials:
    path = settings.prometheus_token_file
    if path is None:
        return Credentials()
    token = _read(path, "TRAILBOSS_PROMETHEUS_TOKEN_FILE").strip()
    if not token or _NOT_IN_A_HEADER.search(token):
        raise NoAccess(
            f"the operator's Prometheus token file {path} (TRAILBOSS_PROMETHEUS_TOKEN_FILE) "
            "is empty or holds a line break inside the token"
        )
    return Credentials(token=token)


def _secret_ca(secret: dict[str, str], name: str) -> tuple[str, str] | None:
    """The CA bundle of the Secret, and where it came from."""
    if "ca.crt" not in secret:
        return None
    return secret["ca.crt"], f"ca.crt of Secret {name}"


def _platform_ca(settings: Settings) -> tuple[str, str] | None:
    path = settings.prometheus_ca_file
    if path is None:
        return None
    return _read(path, "TRAILBOSS_PROMETHEUS_CA_FILE"), f"the operator's CA file {path}"


def _read(path: str, setting: str) -> str:
    try:
        with open(path, encoding="utf-8") as file:
            return file.read()
    except (OSError, ValueError) as error:
        reason = getattr(error, "strerror", None) or error
        raise NoAccess(f"the operator cannot read {path} ({setting}): {reason}") from None
