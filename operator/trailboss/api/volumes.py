"""Volumes of the training pods: the core/v1 sources training needs that Pod
Security `restricted` admits, and where the training container mounts them."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Annotated

from pydantic import ConfigDict, Field, model_validator

from trailboss.api.base import ApiModel
from trailboss.api.constraints import Rule, checked, enforce, matches, model_rules
from trailboss.api.fields import Name, ObjectName, Quantity

SHM_VOLUME = "trailboss-shm"
"""The volume `shmSize` adds; no volume of the user's may take its name."""
SHM_PATH = "/dev/shm"

_FIRST = "A-Za-z0-9_@+=,~-"
_NEXT = "A-Za-z0-9_@+=,~.-"
MountPath = Annotated[
    str,
    Field(max_length=253),
    checked(
        matches(
            rf"^(/[{_NEXT}]+)+$",
            "a mount path is absolute, e.g. `/data` or `/etc/trainer`: after each '/', "
            "letters, digits or _@+=,~.- and no trailing '/'",
        )
    ),
]
SubPath = Annotated[
    str,
    Field(max_length=253),
    checked(
        matches(
            rf"^[{_FIRST}][{_NEXT}]*(/[{_FIRST}][{_NEXT}]*)*$",
            "a subPath is a path inside the volume, e.g. `config.yaml` or `runs/7`: no "
            "leading '/', and no part starting with '.' (so none is '..')",
        )
    ),
]
FileMode = Annotated[int, Field(ge=0, le=0o777)]
VolumeName = Annotated[
    Name,
    checked(
        Rule(
            f"self != '{SHM_VOLUME}'",
            f"{SHM_VOLUME} is the name of the volume shmSize adds: choose another name",
            lambda name: name != SHM_VOLUME,
        )
    ),
]


class StorageMedium(StrEnum):
    NODE_DISK = ""
    MEMORY = "Memory"


class EmptyDirVolumeSource(ApiModel):
    """Scratch space that lives as long as the pod."""

    medium: StorageMedium | None = None
    """Empty for the node's disk, or `Memory` for a tmpfs that counts against the
    container's memory limit."""
    size_limit: Quantity | None = None
    """The most the volume may hold, e.g. `20Gi`."""


class ConfigMapVolumeSource(ApiModel):
    """A ConfigMap, each key a file."""

    name: ObjectName
    """The ConfigMap, in the run's namespace."""
    optional: bool | None = None
    """Start the pod even when the ConfigMap is missing."""
    default_mode: FileMode | None = None
    """Permission bits of the files, e.g. 0440 (octal in YAML, 288 in JSON)."""


class SecretVolumeSource(ApiModel):
    """A Secret, each key a file."""

    secret_name: ObjectName
    """The Secret, in the run's namespace."""
    optional: bool | None = None
    """Start the pod even when the Secret is missing."""
    default_mode: FileMode | None = None
    """Permission bits of the files, e.g. 0400 (octal in YAML, 256 in JSON)."""


class PersistentVolumeClaimVolumeSource(ApiModel):
    """A PersistentVolumeClaim: datasets, caches or checkpoints that outlive the pod."""

    claim_name: ObjectName
    """The PersistentVolumeClaim, in the run's namespace."""
    read_only: bool | None = None
    """Mount it read-only in every container."""


_ONE_SOURCE = Rule(
    "(has(self.emptyDir) ? 1 : 0) + (has(self.configMap) ? 1 : 0) + (has(self.secret) ? 1 : 0)"
    " + (has(self.persistentVolumeClaim) ? 1 : 0) == 1",
    "a volume takes exactly one of emptyDir, configMap, secret or persistentVolumeClaim; "
    "hostPath and other volumes of the node are refused, since training pods meet Pod "
    "Security restricted",
    lambda v: [v.empty_dir, v.config_map, v.secret, v.persistent_volume_claim].count(None) == 3,
)


class Volume(ApiModel):
    """A volume of the training pods, as in core/v1."""

    model_config = ConfigDict(json_schema_extra=model_rules(_ONE_SOURCE))

    name: VolumeName
    """Name the volume is mounted by, unique in the pod."""
    empty_dir: EmptyDirVolumeSource | None = None
    """Scratch space on the node's disk or in memory."""
    config_map: ConfigMapVolumeSource | None = None
    """A ConfigMap's keys as files."""
    secret: SecretVolumeSource | None = None
    """A Secret's keys as files."""
    persistent_volume_claim: PersistentVolumeClaimVolumeSource | None = None
    """A PersistentVolumeClaim."""

    @model_validator(mode="after")
    def _one_source(self) -> Volume:
        enforce(self, _ONE_SOURCE)
        return self


class VolumeMount(ApiModel):
    """Where the training container sees a volume, as in core/v1."""

    name: Name
    """One of `volumes`."""
    mount_path: MountPath
    """Absolute path in the container, unique among the mounts, e.g. `/data`."""
    read_only: bool | None = None
    """Mount it read-only."""
    sub_path: SubPath | None = None
    """Mount only this path inside the volume instead of its root."""


def unique(items: Sequence[ApiModel], attribute: str, what: str) -> None:
    """Refuse two items with the same ``attribute``, as the API server does for a
    list of type map."""
    seen: set[str] = set()
    for item in items:
        key = str(getattr(item, attribute))
        if key in seen:
            raise ValueError(f"{what} must be unique: {key} appears twice")
        seen.add(key)
