"""The bad-input corpus (``e2e/badinput/*.yaml``): manifests that must be refused,
each naming the field its message must name."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

CORPUS = Path(__file__).resolve().parents[2] / "e2e" / "badinput"
FIELD = "test.trailboss.dev/rejected-field"
WHY = "test.trailboss.dev/why"
ADMISSION_ONLY = "test.trailboss.dev/admission-only"


@dataclass(frozen=True)
class BadManifest:
    manifest: dict[str, Any]
    field: str
    why: str
    admission_only: bool

    @property
    def id(self) -> str:
        return f"{self.manifest['metadata']['name'][:20]}: {self.why}"

    def dotted_field(self) -> str:
        """The field as pydantic paths spell it: `spec.tolerations.0.key`."""
        return re.sub(r"\[(\d+)\]", r".\1", self.field)


def load() -> list[BadManifest]:
    cases = []
    for path in sorted(CORPUS.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            notes = doc["metadata"]["annotations"]
            cases.append(BadManifest(doc, notes[FIELD], notes[WHY], ADMISSION_ONLY in notes))
    return cases
