"""The operator's image settings reach the pods it creates: a private registry's pull
secrets and the pull policy, on model servers and on drift check Jobs."""

from __future__ import annotations

import dataclasses
from typing import Any

from trailboss.settings import Settings

from .test_deployment_reconciler import World, _mv
from .test_drift_parallel import Monitored

PRIVATE = {
    "image_pull_secrets": ["regcred", "mirror"],
    "server_image": "registry.corp/trailboss/serve:1",
    "server_image_pull_policy": "Always",
    "drift_image": "registry.corp/trailboss/trailboss:1",
    "drift_image_pull_policy": "IfNotPresent",
}


def _private(settings: Settings) -> Settings:
    return settings.model_copy(update=PRIVATE)


def _pod_of(manifest: dict[str, Any]) -> dict[str, Any]:
    pod: dict[str, Any] = manifest["spec"]["template"]["spec"]
    return pod


def test_model_server_pods_pull_from_the_configured_registry() -> None:
    world = World(modelVersion="v1")
    world.svc = dataclasses.replace(world.svc, settings=_private(world.svc.settings))
    world.add(_mv("v1", 1))
    world.reconcile()
    server = next(
        o
        for (k, _, _), o in world.kube.objects.items()
        if k == "Deployment" and o["apiVersion"] == "apps/v1"
    )
    pod = _pod_of(server)
    assert pod["imagePullSecrets"] == [{"name": "regcred"}, {"name": "mirror"}]
    assert pod["containers"][0]["image"] == "registry.corp/trailboss/serve:1"
    assert pod["containers"][0]["imagePullPolicy"] == "Always"


def test_drift_check_pods_pull_from_the_configured_registry() -> None:
    world = Monitored()
    world.svc = dataclasses.replace(world.svc, settings=_private(world.svc.settings))
    world.reconcile()
    checks = world.checks()
    assert checks, "no drift check Job was created"
    pod = _pod_of(checks[0])
    assert pod["imagePullSecrets"] == [{"name": "regcred"}, {"name": "mirror"}]
    assert pod["containers"][0]["image"] == "registry.corp/trailboss/trailboss:1"
    assert pod["containers"][0]["imagePullPolicy"] == "IfNotPresent"
