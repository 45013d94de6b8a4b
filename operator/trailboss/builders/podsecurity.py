"""securityContext for the pods the operator creates: Pod Security `restricted`
unless the object's owner explicitly asks for root. Pure."""

from __future__ import annotations

from typing import Any

from trailboss.api.security import PodSecurity, SeccompProfileType


def pod_security_context(security: PodSecurity | None) -> dict[str, Any]:
    """The pod-level half: non-root, a seccomp profile, and the user's IDs."""
    security = security or PodSecurity()
    seccomp: dict[str, Any] = {"type": security.seccomp_profile}
    if security.seccomp_profile == SeccompProfileType.LOCALHOST:
        seccomp["localhostProfile"] = security.localhost_profile
    context: dict[str, Any] = {"seccompProfile": seccomp}
    if not security.run_as_root:
        context["runAsNonRoot"] = True
    for key, value in (
        ("runAsUser", security.run_as_user),
        ("runAsGroup", security.run_as_group),
        ("fsGroup", security.fs_group),
    ):
        if value is not None:
            context[key] = value
    return context


def container_security_context(security: PodSecurity | None) -> dict[str, Any]:
    """The container-level half: no privilege escalation, every capability dropped."""
    security = security or PodSecurity()
    context: dict[str, Any] = {
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
    }
    if security.read_only_root_filesystem:
        context["readOnlyRootFilesystem"] = True
    return context
