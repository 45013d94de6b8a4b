"""Every name the operator, the kubectl plugin and the Argo CD actions generate,
within the limit of the kind it names, for any valid parent name.

Children are ``<parent>-<role>-<hash5>``: the hash covers the parent's UID, so a
parent deleted and created again under the same name never collides with
children still being garbage collected. A rerun is ``<run>-rerun-<mark>``; the
Argo CD rerun action (deploy/argocd/actions/trailboss.dev_TrainingRun/rerun)
builds it the same way in Lua, and tests/unit/names_cases.json holds the cases
both must agree on.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any, ClassVar

from trailboss.api.common import API_VERSION
from trailboss.api.trainingrun import TRAINING_RUN_NAME_LIMIT
from trailboss.builders.labels import owner_reference

MAX_NAME = 63
"""A DNS label: what Jobs, Services and serving Deployments are named within."""
RERUN = "-rerun-"
_RERUN_MARK = re.compile(r"-rerun-[0-9]+$")


def fit(base: str, suffix: str, limit: int) -> str:
    """``base`` cut so that ``base + suffix`` is at most ``limit`` characters; a
    cut never leaves a '-' before the suffix. The first character of ``base`` is
    kept, so a name that starts with a letter still does."""
    head = base[: max(1, limit - len(suffix))].rstrip("-.")
    return f"{head}{suffix}"


def child_name(parent: str, role: str, uid: str, limit: int = MAX_NAME) -> str:
    digest = hashlib.sha256(f"{uid}/{role}".encode()).hexdigest()[:5]
    return fit(parent, f"-{role}-{digest}", limit)


def rerun_name(old: str, mark: str | int) -> str:
    """The TrainingRun that runs ``old`` again: ``<old>-rerun-<mark>``, where the
    mark is a count (the plugin) or a UTC time (Argo CD). A rerun of a rerun
    takes the place of its mark, and the whole fits a TrainingRun name."""
    base = _RERUN_MARK.sub("", old) or old
    return fit(base, f"{RERUN}{mark}", TRAINING_RUN_NAME_LIMIT)


def training_run_name(parent: str, role: str, uid: str) -> str:
    """A TrainingRun the operator creates for ``parent`` (a retraining)."""
    return child_name(parent, role, uid, limit=TRAINING_RUN_NAME_LIMIT)


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
