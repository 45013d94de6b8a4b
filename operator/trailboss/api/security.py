"""Pod Security for the pods the operator creates.

Every pod meets the Kubernetes Pod Security `restricted` profile unless its
owner says otherwise through `runAsRoot`, the one documented way out. The
other settings can only make a pod stricter or name the user it runs as.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import ConfigDict, Field, model_validator

from trailboss.api.common import ApiModel
from trailboss.api.constraints import Rule, enforce, model_rules

PROFILE_PATH = r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$"


class SeccompProfileType(StrEnum):
    RUNTIME_DEFAULT = "RuntimeDefault"
    LOCALHOST = "Localhost"


_LOCALHOST_PROFILE = Rule(
    "(self.seccompProfile == 'Localhost') == has(self.localhostProfile)",
    "seccompProfile: Localhost needs localhostProfile (a profile file on the node), "
    "and localhostProfile needs seccompProfile: Localhost",
    lambda s: (
        (s.seccomp_profile == SeccompProfileType.LOCALHOST) == (s.localhost_profile is not None)
    ),
)
_ROOT_OR_USER = Rule(
    "!(has(self.runAsRoot) && self.runAsRoot && has(self.runAsUser))",
    "runAsRoot runs the image's own user; leave runAsUser unset with it",
    lambda s: not (s.run_as_root and s.run_as_user is not None),
)


class PodSecurity(ApiModel):
    """Who the pod's processes run as, within the `restricted` Pod Security profile."""

    model_config = ConfigDict(json_schema_extra=model_rules(_LOCALHOST_PROFILE, _ROOT_OR_USER))

    run_as_user: Annotated[int, Field(ge=1, le=2**31 - 1)] | None = None
    """Run as this UID (not 0). Needed when the image's user is root, as in most
    public Python images; the example trainer's image runs as 65532."""
    run_as_group: Annotated[int, Field(ge=0, le=2**31 - 1)] | None = None
    """Primary GID of the processes."""
    fs_group: Annotated[int, Field(ge=0, le=2**31 - 1)] | None = None
    """GID that owns mounted volumes."""
    read_only_root_filesystem: bool = False
    """Mount the container's root filesystem read-only (write to /tmp or volumes)."""
    seccomp_profile: SeccompProfileType = SeccompProfileType.RUNTIME_DEFAULT
    """RuntimeDefault, or Localhost with `localhostProfile`. Unconfined is not offered."""
    localhost_profile: (
        Annotated[str, Field(pattern=r"^[A-Za-z0-9_./-]+$", max_length=253)] | None
    ) = None
    """Path of a seccomp profile on the node, relative to the kubelet's seccomp directory."""
    run_as_root: bool = False
    """Let the image's own user run even when it is root (`runAsNonRoot` is then not
    set). The pods then meet only the `baseline` profile: a namespace enforcing
    `restricted` refuses them, and the TrainingRun says so (`PodsRejected`)."""

    @model_validator(mode="after")
    def _consistent(self) -> PodSecurity:
        enforce(self, _LOCALHOST_PROFILE, _ROOT_OR_USER)
        return self
