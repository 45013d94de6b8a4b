"""Images as a platform team installs them: pinned by digest, mirrored to a private
registry, pulled with the release's pull secrets, for the operator and for every
pod the operator creates (model servers, profile and drift check Jobs)."""

from __future__ import annotations

import os
import re

import pytest

from tests.unit.test_chart import (
    EVERYTHING,
    Manifest,
    chart_version,
    container,
    needs_helm,
    only,
    render,
)
from trailboss.api.deployment import DeploymentSpec
from trailboss.builders import drift, serving
from trailboss.settings import Settings

DIGEST = "sha256:" + "0123456789abcdef" * 4
SERVE_DIGEST = "sha256:" + "a" * 64
# Kubernetes' label value: at most 63 characters, alphanumeric at both ends.
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
ALL_OBJECTS = [
    *EVERYTHING,
    "--set", "podDisruptionBudget.enabled=true",
    "--set", "podMonitor.enabled=true",
]  # fmt: skip


def label_values(obj: Manifest) -> dict[str, str]:
    """Every label of an object and of the pods it templates, by where it is."""
    found = {
        f"{obj['kind']}/{obj['metadata']['name']}: {key}": value
        for key, value in (obj["metadata"].get("labels") or {}).items()
    }
    template = (obj.get("spec") or {}).get("template") or {}
    for key, value in ((template.get("metadata") or {}).get("labels") or {}).items():
        found[f"{obj['kind']}/{obj['metadata']['name']} pods: {key}"] = value
    return found


def operator_env(objects: list[Manifest]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container(objects)["env"] if "value" in e}


def settings_from(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The operator's settings as its container sees them."""
    for name in list(os.environ):
        if name.startswith("TRAILBOSS_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings()


# --------------------------------------------------------------------------- digests


@needs_helm
@pytest.mark.parametrize(
    "values",
    [
        ["--set", f"image.digest={DIGEST}"],
        ["--set", f"image.tag={DIGEST}"],
        ["--set", "image.tag=1.2.3+build.7"],
        ["--set", f"image.tag=1.2.3@{DIGEST}"],
        ["--set", "image.tag=" + "v" * 70],
    ],
    ids=["digest", "digest-as-tag", "build-metadata", "tag-and-digest", "long-tag"],
)
def test_every_label_value_is_valid_whatever_the_tag(values: list[str]) -> None:
    for where, value in label_values_of(render(*ALL_OBJECTS, *values)).items():
        assert isinstance(value, str), f"{where}: {value!r}"
        assert LABEL_VALUE.match(value), f"{where}: {value!r}"
        assert len(value) <= 63, f"{where}: {value!r}"


def label_values_of(objects: list[Manifest]) -> dict[str, str]:
    return {where: value for obj in objects for where, value in label_values(obj).items()}


@needs_helm
def test_a_digest_pins_the_operator_image_and_wins_over_the_tag() -> None:
    pinned = f"ghcr.io/trailboss-dev/trailboss@{DIGEST}"
    objects = render("--set", f"image.digest={DIGEST}")
    assert container(objects)["image"] == pinned
    assert only(objects, "Pod")["spec"]["containers"][0]["image"] == pinned  # helm test
    labels = only(objects, "Deployment")["metadata"]["labels"]
    assert labels["app.kubernetes.io/version"] == chart_version("appVersion")
    tagged = render("--set", "image.tag=0.9.0", "--set", f"image.digest={DIGEST}")
    assert container(tagged)["image"] == pinned
    assert only(tagged, "Deployment")["metadata"]["labels"]["app.kubernetes.io/version"] == "0.9.0"


# --------------------------------------------------------------------------- registries


PRIVATE = [
    "--set", "image.registry=registry.corp:5000",
    "--set", "image.repository=mirror/trailboss",
    "--set", "image.tag=0.1.0",
    "--set", "serverImage.registry=registry.corp:5000",
    "--set", "serverImage.repository=mirror/trailboss-serve",
    "--set", f"serverImage.digest={SERVE_DIGEST}",
    "--set", "serverImage.pullPolicy=Always",
    "--set", "driftImage.registry=registry.corp:5000",
    "--set", "driftImage.repository=mirror/trailboss",
    "--set", "driftImage.tag=0.1.0-drift",
    "--set", "driftImage.pullPolicy=Never",
    "--set", "global.imagePullSecrets[0].name=corp",
    "--set", "imagePullSecrets[0].name=regcred",
    "--set", "imagePullSecrets[1].name=corp",
]  # fmt: skip


@needs_helm
def test_every_image_can_come_from_a_private_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    objects = render(*PRIVATE)
    assert container(objects)["image"] == "registry.corp:5000/mirror/trailboss:0.1.0"
    settings = settings_from(operator_env(objects), monkeypatch)
    assert settings.server_image == f"registry.corp:5000/mirror/trailboss-serve@{SERVE_DIGEST}"
    assert settings.server_image_pull_policy == "Always"
    assert settings.drift_image == "registry.corp:5000/mirror/trailboss:0.1.0-drift"
    assert settings.drift_image_pull_policy == "Never"
    # The pods the operator creates are pulled with the release's secrets too.
    assert settings.image_pull_secrets == ["corp", "regcred"]


@needs_helm
def test_global_image_registry_rewrites_every_image(monkeypatch: pytest.MonkeyPatch) -> None:
    objects = render(
        "--set", "global.imageRegistry=mirror.corp",
        "--set", "image.repository=quay.io/someone/trailboss",  # a registry of its own
    )  # fmt: skip
    tag = container(render())["image"].rsplit(":", 1)[1]
    assert container(objects)["image"] == f"mirror.corp/someone/trailboss:{tag}"
    assert only(objects, "Pod")["spec"]["containers"][0]["image"] == container(objects)["image"]
    settings = settings_from(operator_env(objects), monkeypatch)
    assert settings.server_image == f"mirror.corp/trailboss-dev/trailboss-serve:{tag}"
    assert settings.drift_image == f"mirror.corp/trailboss-dev/trailboss-drift:{tag}"


@needs_helm
def test_a_repository_naming_its_registry_keeps_it() -> None:
    objects = render("--set", "image.repository=registry.corp/trailboss")
    assert container(objects)["image"].startswith("registry.corp/trailboss:")


@needs_helm
def test_default_images_are_the_operators_own_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = settings_from({}, monkeypatch)
    settings = settings_from(operator_env(render()), monkeypatch)
    assert settings.server_image == defaults.server_image
    assert settings.drift_image == defaults.drift_image
    assert settings.image_pull_secrets == []


# --------------------------------------------------------------------------- created pods


OWNER = serving.Owner(name="churn", namespace="ml", uid="u-1")
SPEC = DeploymentSpec.model_validate({"model": "churn", "versionPolicy": {"latest": "Validated"}})
SERVED = serving.ServedVersion(name="churn-3", model="churn", artifact_uri="s3://m/1")
SERVER_IMAGE = f"registry.corp/mirror/trailboss-serve@{SERVE_DIGEST}"


def server_pod(
    spec: DeploymentSpec = SPEC,
    image_pull_policy: str | None = None,
    image_pull_secrets: tuple[str, ...] = (),
) -> Manifest:
    ctx = serving.ServingContext(
        image=SERVER_IMAGE,
        tracking_uri="http://mlflow:5000",
        image_pull_policy=image_pull_policy,
        image_pull_secrets=image_pull_secrets,
    )
    pod: Manifest = serving.build_server(OWNER, spec, SERVED, 1, ctx)["spec"]["template"]["spec"]
    return pod


def test_model_server_pods_carry_the_configured_image_pull_policy_and_secrets() -> None:
    pod = server_pod(image_pull_policy="Always", image_pull_secrets=("corp", "regcred"))
    (server,) = pod["containers"]
    assert server["image"] == SERVER_IMAGE
    assert server["imagePullPolicy"] == "Always"
    assert pod["imagePullSecrets"] == [{"name": "corp"}, {"name": "regcred"}]


def test_a_users_own_server_image_gets_the_pull_secrets_but_keeps_its_pull_policy() -> None:
    own = SPEC.model_copy(update={"server": SPEC.server.model_copy(update={"image": "me/srv:1"})})
    pod = server_pod(own, image_pull_policy="Never", image_pull_secrets=("corp",))
    (server,) = pod["containers"]
    assert server["image"] == "me/srv:1"
    assert "imagePullPolicy" not in server
    assert pod["imagePullSecrets"] == [{"name": "corp"}]


def test_without_pull_settings_model_server_pods_keep_kubernetes_defaults() -> None:
    pod = server_pod()
    assert "imagePullSecrets" not in pod
    assert "imagePullPolicy" not in pod["containers"][0]


def drift_pods(ctx: drift.JobContext) -> list[Manifest]:
    jobs = [
        drift.profile_job(OWNER, ["profile"], ctx),
        drift.check_job(OWNER, 1, ["drift"], ctx),
        drift.check_job(OWNER, 2, ["drift"], ctx, pods=3),
    ]
    return [job["spec"]["template"]["spec"] for job in jobs]


def test_profile_and_drift_check_pods_carry_the_configured_image_pull_policy_and_secrets() -> None:
    image = "registry.corp/mirror/trailboss:0.1.0"
    ctx = drift.JobContext(
        image=image, image_pull_policy="IfNotPresent", image_pull_secrets=("corp",)
    )
    for pod in drift_pods(ctx):
        (check,) = pod["containers"]
        assert (check["image"], check["imagePullPolicy"]) == (image, "IfNotPresent")
        assert pod["imagePullSecrets"] == [{"name": "corp"}]
    for pod in drift_pods(drift.JobContext(image=image)):
        assert "imagePullSecrets" not in pod
        assert "imagePullPolicy" not in pod["containers"][0]


def test_pull_secrets_and_policies_are_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_from(
        {
            "TRAILBOSS_IMAGE_PULL_SECRETS": "corp, regcred",
            "TRAILBOSS_SERVER_IMAGE_PULL_POLICY": "Always",
            "TRAILBOSS_DRIFT_IMAGE_PULL_POLICY": "IfNotPresent",
        },
        monkeypatch,
    )
    assert settings.image_pull_secrets == ["corp", "regcred"]
    assert settings.server_image_pull_policy == "Always"
    assert settings.drift_image_pull_policy == "IfNotPresent"
    with pytest.raises(ValueError, match="server_image_pull_policy"):
        settings_from({"TRAILBOSS_SERVER_IMAGE_PULL_POLICY": "Sometimes"}, monkeypatch)
