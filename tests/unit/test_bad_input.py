"""The operator's models refuse every manifest of the bad-input corpus the API
server refuses, naming the same field (the e2e suite checks the API server)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tests.unit.badinput import BadManifest, load
from tests.unit.schema import MODELS
from trailboss.api.common import explain

CASES = load()


def test_the_corpus_covers_every_kind_with_over_a_hundred_manifests() -> None:
    assert len(CASES) >= 100
    assert {c.manifest["kind"] for c in CASES} == set(MODELS)
    names = [(c.manifest["kind"], c.manifest["metadata"]["name"]) for c in CASES]
    assert len(names) == len(set(names)), "each manifest needs its own name"


@pytest.mark.parametrize("case", [c for c in CASES if not c.admission_only], ids=lambda c: c.id)
def test_the_operator_refuses_it_naming_the_field(case: BadManifest) -> None:
    with pytest.raises(ValidationError) as refused:
        MODELS[case.manifest["kind"]].model_validate(case.manifest)
    assert case.dotted_field() in explain(refused.value)
