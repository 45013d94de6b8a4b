"""The training pods' template: what they get besides what the operator sets,
as a Kubeflow PyTorchJob's pod template gives it, within Pod Security
`restricted` and the operator's size budget (see ``trailboss.sizebudget``)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import ConfigDict, Field, field_validator, model_validator

from trailboss.api.affinity import Affinity
from trailboss.api.base import ApiModel
from trailboss.api.constraints import (
    Rule,
    checked,
    enforce,
    matches,
    model_rules,
    total_map_length,
)
from trailboss.api.corev1 import LocalObjectReference
from trailboss.api.fields import LabelKey, LabelValue, ObjectName, Quantity, quantity_value
from trailboss.api.volumes import SHM_PATH, Volume, VolumeMount, unique

KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
"""The label that puts a Job in a Kueue LocalQueue; Kueue then decides when it runs."""
OPERATOR_PREFIXES = ("trailboss.dev/", "app.kubernetes.io/")
APPARMOR_PREFIX = "container.apparmor.security.beta.kubernetes.io/"

_NOT_THE_OPERATORS = Rule(
    "self.all(k, !k.startsWith('trailboss.dev/') && !k.startsWith('app.kubernetes.io/'))",
    "keys under trailboss.dev/ and app.kubernetes.io/ are the operator's own: use another prefix",
    lambda keys: not any(k.startswith(OPERATOR_PREFIXES) for k in keys),
)
_RESTRICTED_APPARMOR = Rule(
    f"self.all(k, !k.startsWith('{APPARMOR_PREFIX}') || "
    "self[k] == 'runtime/default' || self[k].startsWith('localhost/'))",
    "an AppArmor profile here is runtime/default or localhost/<profile>: training pods meet "
    "Pod Security restricted",
    lambda notes: all(
        not k.startswith(APPARMOR_PREFIX) or v == "runtime/default" or v.startswith("localhost/")
        for k, v in notes.items()
    ),
)
AnnotationValue = Annotated[
    str,
    Field(max_length=1024),
    checked(
        matches(
            r"^[ !#-%'-;=?-\[\]-~]*$",
            'an annotation value here is printable ASCII without ", \\, <, > or &, e.g. '
            "`false` or `cloud.provider.com/topology-block`: keep structured values in a "
            "ConfigMap",
        )
    ),
]


class PodMetadata(ApiModel):
    """Labels and annotations of the training pods, beside the operator's own."""

    labels: Annotated[
        dict[LabelKey, LabelValue],
        Field(max_length=8),
        checked(total_map_length(512, "labels"), _NOT_THE_OPERATORS),
    ] = {}
    """Set on the pods and on their Job, e.g. `kueue.x-k8s.io/queue-name: team-a` to
    queue the run in Kueue. Keys under `trailboss.dev/` and `app.kubernetes.io/` are
    the operator's; the operator's configured training pod labels win a clash."""
    annotations: Annotated[
        dict[LabelKey, AnnotationValue],
        Field(max_length=8),
        checked(total_map_length(1024, "annotations"), _NOT_THE_OPERATORS, _RESTRICTED_APPARMOR),
    ] = {}
    """Set on the pods, e.g. `kueue.x-k8s.io/podset-preferred-topology` or
    `cluster-autoscaler.kubernetes.io/safe-to-evict: "false"`."""


def _positive(quantity: str | int) -> bool:
    return quantity_value(quantity) > 0


ShmSize = Annotated[
    Quantity,
    checked(
        Rule(
            # A string that is no quantity at all is the pattern's to report.
            "!isQuantity(string(self)) || quantity(string(self)).isGreaterThan(quantity('0'))",
            "shmSize is a size above 0, e.g. 1Gi",
            _positive,
        )
    ),
]
_MOUNTS_NAME_VOLUMES = Rule(
    "!has(self.volumeMounts) || self.volumeMounts.all(m, has(self.volumes) && "
    "self.volumes.exists(v, v.name == m.name))",
    "each mount's name is the name of one of volumes: declare the volume or fix the name",
    lambda p: {m.name for m in p.volume_mounts} <= {v.name for v in p.volumes},
    field="volumeMounts",
)
_SHM_NOT_MOUNTED = Rule(
    f"!has(self.shmSize) || !has(self.volumeMounts) || "
    f"self.volumeMounts.all(m, m.mountPath != '{SHM_PATH}')",
    f"shmSize mounts a volume at {SHM_PATH} already: remove that mount, or shmSize",
    lambda p: p.shm_size is None or all(m.mount_path != SHM_PATH for m in p.volume_mounts),
    field="volumeMounts",
)


def _list_map(key: str) -> dict[str, Any]:
    """A list the API server keeps unique by ``key``, as core/v1 does."""
    return {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": [key]}


class PodTemplate(ApiModel):
    """Additions to the training pods: labels and annotations, volumes, image pull
    secrets and scheduling. The operator's own settings (security context,
    environment, labels) stay as they are."""

    model_config = ConfigDict(json_schema_extra=model_rules(_MOUNTS_NAME_VOLUMES, _SHM_NOT_MOUNTED))

    metadata: PodMetadata | None = None
    """Labels and annotations of the pods."""
    shm_size: ShmSize | None = None
    """Size of an in-memory /dev/shm for the training container, e.g. `8Gi`: PyTorch
    DataLoader workers share batches through it, and a container's own is 64Mi. It
    counts against the container's memory limit."""
    volumes: Annotated[list[Volume], Field(max_length=8, json_schema_extra=_list_map("name"))] = []
    """Volumes of the pods: emptyDir, configMap, secret or persistentVolumeClaim."""
    volume_mounts: Annotated[
        list[VolumeMount], Field(max_length=8, json_schema_extra=_list_map("mountPath"))
    ] = []
    """Where the training container mounts the volumes."""
    image_pull_secrets: Annotated[list[LocalObjectReference], Field(max_length=4)] = []
    """Secrets with the credentials to pull `spec.image` from a private registry."""
    affinity: Affinity | None = None
    """Node and pod affinity, e.g. a choice of GPU products, or one worker per node."""
    priority_class_name: ObjectName | None = None
    """PriorityClass of the pods, for preemption and for Kueue's workload priority."""
    scheduler_name: ObjectName | None = None
    """The scheduler that places the pods, e.g. a gang scheduler; the default one
    when empty."""

    @field_validator("volumes")
    @classmethod
    def _unique_volumes(cls, volumes: list[Volume]) -> list[Volume]:
        unique(volumes, "name", "volume names")
        return volumes

    @field_validator("volume_mounts")
    @classmethod
    def _unique_mounts(cls, mounts: list[VolumeMount]) -> list[VolumeMount]:
        unique(mounts, "mount_path", "mount paths")
        return mounts

    @model_validator(mode="after")
    def _mounts_fit(self) -> PodTemplate:
        enforce(self, _MOUNTS_NAME_VOLUMES, _SHM_NOT_MOUNTED)
        return self
