"""Which Prometheus URLs the operator's own credentials may go to.

Any user who may write a Deployment chooses its prometheusUrl, so the operator's
token goes only to URLs under the platform's Prometheus that its settings name:
same scheme, host and port, and a path under the same prefix (a multi-tenant
Prometheus such as Cortex or Mimir tells tenants apart by path)."""

from __future__ import annotations

from urllib.parse import SplitResult, unquote, urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}


def under_platform(url: str, platform_url: str) -> bool:
    """Whether ``url`` is the platform's Prometheus or a path below it."""
    try:
        asked, platform = urlsplit(url), urlsplit(platform_url)
        same_server = _server(asked) == _server(platform)
    except ValueError:  # a port that is not a number
        return False
    return same_server and _path_under(asked.path, platform.path)


def _server(url: SplitResult) -> tuple[str, str | None, int | None]:
    scheme = url.scheme.lower()
    return scheme, url.hostname, url.port or DEFAULT_PORTS.get(scheme)


def _path_under(path: str, prefix: str) -> bool:
    # A dot segment, even percent-encoded, may climb out of the prefix on the way.
    if {".", ".."} & set(unquote(path).split("/")):
        return False
    prefix = prefix.rstrip("/")
    return path == prefix or path.startswith(prefix + "/")
