"""Training pods meet Pod Security `restricted` by default; the Job replaces pods
that failed for reasons other than the training code without using up retries."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from tests.unit.factories import OWNER, context, training_spec
from trailboss.api.common import explain
from trailboss.api.trainingrun import INFRASTRUCTURE_FAILURE_EXIT_CODE
from trailboss.api.volumes import Volume
from trailboss.builders.training import CONTAINER, build_job

RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "privileged": False,
    "capabilities": {"drop": ["ALL"]},
}


def _pod(**fields: Any) -> dict[str, Any]:
    pod: dict[str, Any] = build_job(OWNER, training_spec(**fields), context())["spec"]["template"][
        "spec"
    ]
    return pod


@pytest.mark.parametrize("workers", [1, 4])
def test_every_training_pod_is_restricted_by_default(workers: int) -> None:
    pod = _pod(workers=workers)
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert pod["containers"][0]["securityContext"] == RESTRICTED_CONTAINER


def test_settings_name_the_user_or_tighten_but_keep_restricted() -> None:
    pod = _pod(
        securityContext={
            "runAsUser": 1000,
            "runAsGroup": 1000,
            "fsGroup": 2000,
            "readOnlyRootFilesystem": True,
            "seccompProfile": "Localhost",
            "localhostProfile": "profiles/trainer.json",
        }
    )
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 1000,
        "runAsGroup": 1000,
        "fsGroup": 2000,
        "seccompProfile": {"type": "Localhost", "localhostProfile": "profiles/trainer.json"},
    }
    assert pod["containers"][0]["securityContext"] == {
        **RESTRICTED_CONTAINER,
        "readOnlyRootFilesystem": True,
    }


def test_run_as_root_is_the_one_explicit_way_out() -> None:
    pod = _pod(securityContext={"runAsRoot": True})
    assert "runAsNonRoot" not in pod["securityContext"]
    # Everything else stays as strict as before.
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["containers"][0]["securityContext"] == RESTRICTED_CONTAINER


def test_infrastructure_failures_and_disruptions_do_not_use_up_retries() -> None:
    job = build_job(OWNER, training_spec(backoffLimit=0), context())
    assert job["spec"]["backoffLimit"] == 0
    rules = job["spec"]["podFailurePolicy"]["rules"]
    assert {
        "action": "Ignore",
        "onExitCodes": {
            "containerName": CONTAINER,
            "operator": "In",
            "values": [INFRASTRUCTURE_FAILURE_EXIT_CODE],
        },
    } in rules
    assert {
        "action": "Ignore",
        "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
    } in rules
    # The Job API accepts a pod failure policy only with restartPolicy Never.
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert CONTAINER in [c["name"] for c in job["spec"]["template"]["spec"]["containers"]]
    assert INFRASTRUCTURE_FAILURE_EXIT_CODE == 75


# Pod Security `restricted` admits these volume types and no others.
RESTRICTED_VOLUMES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
    "persistentVolumeClaim", "projected", "secret",
}  # fmt: skip


def test_every_volume_source_the_api_offers_is_one_restricted_admits() -> None:
    sources = {f.alias or n for n, f in Volume.model_fields.items()} - {"name"}
    assert sources <= RESTRICTED_VOLUMES


def test_a_pod_template_leaves_the_pods_restricted() -> None:
    pod = _pod(
        podTemplate={
            "shmSize": "1Gi",
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}],
            "volumeMounts": [{"name": "data", "mountPath": "/data"}],
            "metadata": {
                "annotations": {
                    "container.apparmor.security.beta.kubernetes.io/trainer": "runtime/default"
                }
            },
        }
    )
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert pod["containers"][0]["securityContext"] == RESTRICTED_CONTAINER
    for volume in pod["volumes"]:
        assert set(volume) - {"name"} <= RESTRICTED_VOLUMES


@pytest.mark.parametrize(
    "volume",
    [
        {"name": "host", "hostPath": {"path": "/var/lib/data"}},
        {"name": "nfs", "nfs": {"server": "nfs.example.com", "path": "/data"}},
    ],
    ids=["hostPath", "nfs"],
)
def test_volumes_of_the_node_or_network_are_refused_naming_the_volume(
    volume: dict[str, Any],
) -> None:
    with pytest.raises(ValidationError) as error:
        training_spec(podTemplate={"volumes": [volume]})
    message = explain(error.value)
    assert message.startswith("podTemplate.volumes.0: ")
    assert "emptyDir, configMap, secret or persistentVolumeClaim" in message
    assert "hostPath" in message
    assert "restricted" in message


def test_an_apparmor_profile_outside_restricted_is_refused() -> None:
    notes = {"container.apparmor.security.beta.kubernetes.io/trainer": "unconfined"}
    with pytest.raises(ValidationError) as error:
        training_spec(podTemplate={"metadata": {"annotations": notes}})
    assert "podTemplate.metadata.annotations" in explain(error.value)
