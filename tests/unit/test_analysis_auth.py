"""Rollout analysis against a Prometheus that needs authentication, on the fakes:
the Secret a Deployment names is read at every pass, what is missing from it is
an Error measurement naming it, and the operator's own token goes only to the
platform's Prometheus."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from tests.unit.schema import openapi_schema, schema_errors
from tests.unit.test_deployment_reconciler import ERRORS, NS, World, _mv, _ready
from trailboss.api.deployment import Deployment
from trailboss.clients.protocols import Credentials, Endpoint
from trailboss.settings import Settings

V2_ERRORS = 'sum(rate(errors{version="v2"}[1m]))'
URL = "http://prometheus.monitoring:9090"
PLATFORM = "https://prometheus.monitoring:9443/tenant-a"
CA = "-----BEGIN CERTIFICATE-----\nthe platform's CA\n-----END CERTIFICATE-----\n"


def analysis(url: str = URL, secret: str | None = "prom-auth", **more: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "prometheusUrl": url,
        "interval": "10s",
        "consecutiveErrorLimit": 2,
        "queries": [{"name": "error-rate", "query": ERRORS, "max": 0.05}],
        **more,
    }
    if secret is not None:
        spec["prometheusAuth"] = {"secretRef": {"name": secret}}
    return spec


def rolling(spec: dict[str, Any], settings: Settings | None = None) -> World:
    """A rollout of v2 about to be analysed, Prometheus answering 0.01 for it."""
    world = World(modelVersion="v1", rollout={"steps": [{"weight": 10, "pause": "5m"}]})
    if settings is not None:
        world.svc.settings = settings
    world.add(_mv("v1", 1), _mv("v2", 2))
    world.settle()
    world.edit(
        modelVersion="v2", rollout={"steps": [{"weight": 10, "pause": "5m"}], "analysis": spec}
    )
    world.prometheus.answers[V2_ERRORS] = 0.01
    return world


def put_secret(world: World, name: str = "prom-auth", **data: str) -> None:
    encoded = {
        key.replace("_", "."): base64.b64encode(v.encode()).decode() for key, v in data.items()
    }
    world.kube.put(
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": NS},
         "data": encoded}
    )  # fmt: skip


def last(status: dict[str, Any]) -> tuple[str, str | None]:
    measured = status["analysis"][-1]
    return measured["phase"], measured.get("message")


def sent(world: World) -> Endpoint:
    """The last request Prometheus received."""
    return world.prometheus.endpoints[-1]


# --------------------------------------------------------------------------- the named Secret


def test_the_secrets_token_authenticates_and_a_rotated_token_takes_effect() -> None:
    world = rolling(analysis())
    put_secret(world, token="t0k-1\n")  # as `kubectl create secret --from-file` makes it
    world.prometheus.requires = Credentials(token="t0k-1")
    assert last(world.settle()) == ("Successful", None)

    put_secret(world, token="t0k-2")
    world.prometheus.requires = Credentials(token="t0k-2")
    assert last(world.settle(10)) == ("Successful", None)


def test_the_secrets_username_and_password_authenticate() -> None:
    world = rolling(analysis())
    put_secret(world, username="analysis", password="s3cret\n")
    world.prometheus.requires = Credentials(username="analysis", password="s3cret")
    assert last(world.settle()) == ("Successful", None)


def test_the_secrets_ca_bundle_verifies_prometheus() -> None:
    world = rolling(analysis("https://prometheus.monitoring:9443"))
    put_secret(world, token="t", ca_crt=CA)
    world.settle()
    assert (sent(world).ca_bundle, sent(world).ca_origin) == (CA, "ca.crt of Secret prom-auth")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (None, "Secret prom-auth (spec.rollout.analysis.prometheusAuth.secretRef) does not "
               "exist in namespace ml"),
        ({}, "Secret prom-auth has no key token or username/password"),
        ({"ca_crt": CA}, "Secret prom-auth has no key token or username/password"),
        ({"token": " \n"}, "Secret prom-auth has no key token or username/password"),
        ({"username": "analysis"}, "Secret prom-auth has username but no password"),
        ({"password": "s3cret"}, "Secret prom-auth has password but no username"),
        ({"token": "t", "username": "u", "password": "p"},
         "Secret prom-auth has both token and username/password; keep one"),
        ({"token": "t0k\nX-Other: 1"},
         "Secret prom-auth: token holds a line break or control character"),
        ({"username": "a:b", "password": "p"},
         "Secret prom-auth: a basic auth username cannot hold ':'"),
    ],
)  # fmt: skip
def test_what_the_secret_lacks_is_an_error_measurement_naming_it(
    data: dict[str, str] | None, message: str
) -> None:
    world = rolling(analysis())
    if data is not None:
        put_secret(world, **data)
    status = world.settle()
    assert last(status) == ("Error", message)
    assert status["phase"] == "Progressing"
    assert world.prometheus.asked == []  # nothing went out half-authenticated


def test_a_secret_that_stays_missing_aborts_the_rollout_naming_it() -> None:
    world = rolling(analysis())
    world.settle()
    world.settle(10)
    status = world.settle(10)
    assert (status["phase"], status["abortedVersion"]) == ("Degraded", "v2")
    assert (
        "Secret prom-auth (spec.rollout.analysis.prometheusAuth.secretRef) does not exist"
        in (_ready(status)["message"])
    )


def test_an_install_without_secret_reads_names_the_chart_value_and_the_fix() -> None:
    """Installed with rbac.readSecrets: false, the API server refuses the read: the
    measurement says so instead of a traceback, and no request goes out."""
    world = rolling(analysis())
    put_secret(world, token="t0k")
    world.kube.forbidden.add("Secret")
    phase, message = last(world.settle())
    assert phase == "Error"
    assert message is not None
    assert "may not read Secret prom-auth" in message
    assert "rbac.readSecrets: true" in message
    assert world.prometheus.asked == []


def test_a_secret_created_late_is_read_at_the_next_pass() -> None:
    world = rolling(analysis())
    assert last(world.settle())[0] == "Error"
    put_secret(world, token="t0k")
    world.prometheus.requires = Credentials(token="t0k")
    assert last(world.settle(10)) == ("Successful", None)


def test_a_secret_that_is_not_text_is_named() -> None:
    world = rolling(analysis())
    world.kube.put(
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "prom-auth", "namespace": NS},
         "data": {"token": base64.b64encode(b"\xff\xfe").decode()}}
    )  # fmt: skip
    assert last(world.settle()) == ("Error", "Secret prom-auth: key token is not UTF-8 text")


def test_the_query_timeout_reaches_prometheus() -> None:
    world = rolling(analysis(secret=None, timeout="3s"))
    world.settle()
    assert sent(world).timeout == 3.0
    world = rolling(analysis(secret=None))
    world.settle()
    assert sent(world).timeout == 10.0


# --------------------------------------------------------------------------- the operator's own


@pytest.fixture
def platform(tmp_path: Path) -> Settings:
    (tmp_path / "token").write_text("operator-token\n")
    (tmp_path / "ca.crt").write_text(CA)
    return Settings(
        mlflow_tracking_uri="http://mlflow:5000",
        prometheus_url=PLATFORM,
        prometheus_token_file=str(tmp_path / "token"),
        prometheus_ca_file=str(tmp_path / "ca.crt"),
    )


def test_the_platforms_prometheus_gets_the_operators_token_and_ca(
    platform: Settings, tmp_path: Path
) -> None:
    world = rolling(analysis(PLATFORM + "/prometheus", secret=None), platform)
    world.prometheus.requires = Credentials(token="operator-token")
    assert last(world.settle()) == ("Successful", None)
    assert sent(world).ca_bundle == CA

    (tmp_path / "token").write_text("rotated-token")  # as the kubelet updates a Secret volume
    world.prometheus.requires = Credentials(token="rotated-token")
    assert last(world.settle(10)) == ("Successful", None)


@pytest.mark.parametrize(
    "url",
    [
        "http://prometheus.monitoring:9443/tenant-a",
        "https://prometheus.monitoring:9444/tenant-a",
        "https://prometheus.monitoring.evil.example:9443/tenant-a",
        "https://prometheus.monitoring:9443/tenant-b",
        "https://prometheus.monitoring:9443/tenant-ab",
        "https://prometheus.monitoring:9443/tenant-a/%2e%2e/tenant-b",
        "https://prometheus.monitoring:9443",
    ],
)
def test_the_operators_token_never_goes_to_a_url_a_user_may_choose(
    platform: Settings, url: str
) -> None:
    world = rolling(analysis(url, secret=None), platform)
    world.settle()
    assert sent(world) == Endpoint(url)


def test_a_deployment_that_names_a_secret_sends_only_the_secrets_credentials(
    platform: Settings,
) -> None:
    world = rolling(analysis(PLATFORM), platform)
    put_secret(world, username="team", password="p")
    world.settle()
    assert sent(world).credentials == Credentials(username="team", password="p")
    assert sent(world).ca_bundle == CA  # the platform's CA still verifies the platform
    put_secret(world, token="t", ca_crt="-----BEGIN CERTIFICATE-----\nteam's\n")
    world.settle(10)
    assert sent(world).ca_origin == "ca.crt of Secret prom-auth"


def test_an_unreadable_token_file_is_an_error_naming_it(platform: Settings, tmp_path: Path) -> None:
    (tmp_path / "token").unlink()
    world = rolling(analysis(PLATFORM, secret=None), platform)
    assert last(world.settle()) == (
        "Error",
        f"the operator cannot read {tmp_path / 'token'} (TRAILBOSS_PROMETHEUS_TOKEN_FILE): "
        "No such file or directory",
    )


def test_the_operators_files_need_the_platforms_url() -> None:
    with pytest.raises(ValidationError, match="set it too"):
        Settings(prometheus_token_file="/var/run/token")
    with pytest.raises(ValidationError, match="http:// or https://"):
        Settings(prometheus_url="prometheus:9090")
    assert Settings(prometheus_url="", prometheus_token_file="").prometheus_url is None


# --------------------------------------------------------------------------- the API


def deployment(**more: Any) -> dict[str, Any]:
    return {
        "apiVersion": "trailboss.dev/v1alpha1",
        "kind": "Deployment",
        "metadata": {"name": "churn", "namespace": NS},
        "spec": {
            "model": "churn",
            "modelVersion": "churn-v1",
            "rollout": {"analysis": analysis(**more)},
        },
    }


@pytest.mark.parametrize("timeout", ["500ms", "61s", "2m"])
def test_a_query_timeout_outside_1s_to_60s_is_refused(timeout: str) -> None:
    with pytest.raises(ValidationError, match="must be between 1s and 60s"):
        Deployment.model_validate(deployment(timeout=timeout))
    assert Deployment.model_validate(deployment(timeout="60s"))


def test_the_api_server_checks_the_timeout_and_the_secret_name_too() -> None:
    spec = openapi_schema("Deployment")["properties"]["spec"]
    analysis_schema = spec["properties"]["rollout"]["properties"]["analysis"]["properties"]
    (rule,) = analysis_schema["timeout"]["x-kubernetes-validations"]
    assert rule["rule"] == "duration(self) >= duration('1s') && duration(self) <= duration('60s')"
    errors = schema_errors(deployment(secret="Not_A_Secret"))
    assert [e.split(":")[0] for e in errors] == [
        "spec.rollout.analysis.prometheusAuth.secretRef.name"
    ]
    with pytest.raises(ValidationError):
        Deployment.model_validate(deployment(secret="Not_A_Secret"))
