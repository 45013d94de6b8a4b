"""Deterministic child names: ``<parent>-<role>-<hash5>``, at most 63 characters.

The hash covers the parent's UID, so a parent deleted and created again under
the same name never collides with children still being garbage collected.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, ClassVar

from trailboss.api.common import API_VERSION
from trailboss.builders.labels import owner_reference

MAX_NAME = 63


def child_name(parent: str, role: str, uid: str, limit: int = MAX_NAME) -> str:
    digest = hashlib.sha256(f"{uid}/{role}".encode()).hexdigest()[:5]
    suffix = f"-{role}-{digest}"
    head = parent[: max(1, limit - len(suffix))].rstrip("-.")
    return f"{head}{suffix}"


@dataclass(frozen=True)
class Owner:
    """A Trailboss object as the owner of the children built for it."""

    kind: ClassVar[str]
    name: str
    namespace: str
    uid: str

    def reference(self) -> dict[str, object]:
        return owner_reference(API_VERSION, self.kind, self.name, self.uid)


def s3_env(endpoint_url: str | None, credentials_secret: str | None) -> list[dict[str, Any]]:
    """The S3 endpoint and the credentials Secret as a container's env, for every
    pod the operator runs that reads or writes S3 (model servers, drift Jobs)."""
    env: list[dict[str, Any]] = []
    if endpoint_url:
        env += [{"name": "TRAILBOSS_S3_ENDPOINT_URL", "value": endpoint_url},
                {"name": "AWS_ENDPOINT_URL_S3", "value": endpoint_url}]  # fmt: skip
    if credentials_secret:
        env += [
            {"name": key, "valueFrom": {"secretKeyRef": {"name": credentials_secret, "key": key}}}
            for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
        ]
    return env
