"""Which prometheusUrls the operator's own token may go to: only those under the
platform's Prometheus, as its settings name it."""

from __future__ import annotations

import pytest

from trailboss.policies.prometheus_access import under_platform

PLATFORM = "https://prometheus.monitoring:9090/tenant-a"


@pytest.mark.parametrize(
    ("url", "under"),
    [
        ("https://prometheus.monitoring:9090/tenant-a", True),
        ("https://prometheus.monitoring:9090/tenant-a/", True),
        ("https://prometheus.monitoring:9090/tenant-a/prometheus", True),
        ("https://PROMETHEUS.monitoring:9090/tenant-a", True),  # host names ignore case
        ("http://prometheus.monitoring:9090/tenant-a", False),  # another scheme
        ("https://prometheus.monitoring:9091/tenant-a", False),  # another port
        ("https://prometheus.monitoring/tenant-a", False),  # 443, not 9090
        ("https://prometheus.monitoring.evil.example:9090/tenant-a", False),
        ("https://evil.example:9090/tenant-a", False),
        ("https://prometheus.monitoring:9090/tenant-b", False),
        ("https://prometheus.monitoring:9090/tenant-ab", False),  # a sibling, not a child
        ("https://prometheus.monitoring:9090", False),  # above the prefix
        ("https://prometheus.monitoring:9090/tenant-a/../tenant-b", False),
        ("https://prometheus.monitoring:9090/tenant-a/%2e%2e/tenant-b", False),
        ("https://prometheus.monitoring:9090/tenant-a/%2E%2E%2Ftenant-b", False),
        ("https://prometheus.monitoring:9090/tenant-a/./x", False),
        ("https://prometheus.monitoring:notaport/tenant-a", False),
    ],
)
def test_only_urls_under_the_platforms_prometheus_get_its_token(url: str, under: bool) -> None:
    assert under_platform(url, PLATFORM) is under


@pytest.mark.parametrize(
    ("url", "under"),
    [
        ("http://prometheus.monitoring", True),
        ("http://prometheus.monitoring:80/", True),
        ("http://prometheus.monitoring/api/prom", True),
        ("http://prometheus.monitoring:8080", False),
        ("http://[::1]", False),
    ],
)
def test_a_platform_url_without_port_or_path_means_the_default_port_and_any_path(
    url: str, under: bool
) -> None:
    assert under_platform(url, "http://prometheus.monitoring/") is under


def test_ipv6_hosts_compare_as_addresses() -> None:
    assert under_platform("http://[::1]:9090/x", "http://[::1]:9090")
    assert not under_platform("http://[::2]:9090/x", "http://[::1]:9090")
