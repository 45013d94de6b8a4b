"""The chart's platform Prometheus: its URL, and the operator's token and CA bundle
mounted from a Secret in the release namespace, as the operator's settings read them."""

from __future__ import annotations

import pytest

from tests.unit.test_chart import CHART, Manifest, container, helm, needs_helm, only, render
from trailboss.settings import Settings

PLATFORM = "https://prometheus.monitoring:9090/tenant-a"
WITH_SECRET = [
    "--set", f"prometheus.url={PLATFORM}",
    "--set", "prometheus.secret.name=prometheus-token",
    "--set", "prometheus.secret.caKey=ca.crt",
]  # fmt: skip


def env(objects: list[Manifest]) -> dict[str, str]:
    return {e["name"]: e.get("value") for e in container(objects)["env"]}


def settings_of(objects: list[Manifest], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The settings the operator starts with, from the variables the chart gives it."""
    for name, value in env(objects).items():
        if name.startswith("TRAILBOSS_PROMETHEUS_") and value is not None:
            monkeypatch.setenv(name, value)
    return Settings(mlflow_tracking_uri="http://mlflow:5000")


@needs_helm
def test_by_default_the_operator_has_no_prometheus_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    objects = render()
    assert not [name for name in env(objects) if "PROMETHEUS" in name]
    settings = settings_of(objects, monkeypatch)
    assert (settings.prometheus_url, settings.prometheus_token_file) == (None, None)


@needs_helm
def test_the_token_and_ca_are_mounted_from_a_secret_and_named_to_the_operator(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    objects = render(*WITH_SECRET)
    settings = settings_of(objects, monkeypatch)
    assert settings.prometheus_url == PLATFORM
    assert settings.prometheus_token_file == "/etc/trailboss/prometheus/token"
    assert settings.prometheus_ca_file == "/etc/trailboss/prometheus/ca.crt"
    pod = only(objects, "Deployment")["spec"]["template"]["spec"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == "prometheus-credentials"]
    assert volume["secret"] == {
        "secretName": "prometheus-token",
        "defaultMode": 0o440,
        "items": [{"key": "token", "path": "token"}, {"key": "ca.crt", "path": "ca.crt"}],
    }
    (mount,) = [m for m in container(objects)["volumeMounts"] if m["name"] == volume["name"]]
    assert mount == {
        "name": "prometheus-credentials", "mountPath": "/etc/trailboss/prometheus", "readOnly": True
    }  # fmt: skip
    # Mounted as a whole (no subPath), so the kubelet updates a rotated token.
    assert "subPath" not in mount


@needs_helm
def test_a_ca_bundle_alone_mounts_no_token(monkeypatch: pytest.MonkeyPatch) -> None:
    objects = render(
        "--set", f"prometheus.url={PLATFORM}", "--set", "prometheus.secret.name=platform-ca",
        "--set", "prometheus.secret.tokenKey=", "--set", "prometheus.secret.caKey=ca.crt",
    )  # fmt: skip
    assert "TRAILBOSS_PROMETHEUS_TOKEN_FILE" not in env(objects)
    assert (
        settings_of(objects, monkeypatch).prometheus_ca_file == "/etc/trailboss/prometheus/ca.crt"
    )


@needs_helm
def test_a_secret_without_the_url_it_is_for_is_refused() -> None:
    result = helm("template", "trailboss", str(CHART), "--set", "prometheus.secret.name=token")
    assert result.returncode != 0
    assert "/prometheus/url" in result.stderr
    refused = helm("template", "trailboss", str(CHART), "--set", "prometheus.url=prom:9090")
    assert refused.returncode != 0
