"""The names a user may call each kind by on the command line.

`deployment` alone means the Trailboss kind here: this CLI serves nothing
else. In messages we always print the unambiguous forms
(`deployments.trailboss.dev`, `mdeploy`), which also work with kubectl.
"""

from __future__ import annotations

from dataclasses import dataclass

from trailboss.api import KINDS
from trailboss.api.common import GROUP


@dataclass(frozen=True)
class Kind:
    kind: str
    plural: str
    short_names: tuple[str, ...]

    @property
    def qualified(self) -> str:
        """`trainingruns.trailboss.dev`: what kubectl never confuses with another kind."""
        return f"{self.plural}.{GROUP}"

    def ref(self, name: str) -> str:
        """`trainingrun.trailboss.dev/churn`, as kubectl prints an object."""
        return f"{self.kind.lower()}.{GROUP}/{name}"


ALL = tuple(Kind(k.info.kind, k.info.plural, k.info.short_names) for k in KINDS)


def _aliases(kind: Kind) -> set[str]:
    singular = kind.kind.lower()
    names = {singular, kind.plural, *kind.short_names}
    return names | {f"{n}.{GROUP}" for n in (singular, kind.plural)}


def resolve(name: str) -> Kind:
    """The kind a user means by `name`; a clear error listing the choices otherwise."""
    wanted = name.lower()
    for kind in ALL:
        if wanted in _aliases(kind):
            return kind
    choices = ", ".join(f"{k.kind.lower()} ({'/'.join(k.short_names)})" for k in ALL)
    raise ValueError(f"unknown kind {name!r}: use one of {choices}")


def resolve_many(names: str) -> list[Kind]:
    """`trun`, `trun,mver` or `all` (every Trailboss kind), as `kubectl get` reads them."""
    if names.lower() in ("all", "trailboss"):
        return list(ALL)
    return [resolve(name) for name in names.split(",") if name]


def split_ref(kind_or_ref: str, name: str | None) -> tuple[Kind, str]:
    """`trun churn` or `trun/churn`; a bare name that is no kind means a TrainingRun,
    and a bare kind needs a name (`get trun` lists, the other verbs act on one)."""
    if name is not None:
        return resolve(kind_or_ref), name
    if "/" in kind_or_ref:
        kind_name, _, obj = kind_or_ref.partition("/")
        return resolve(kind_name), obj
    if _is_kind(kind_or_ref):
        raise ValueError(f"name the {resolve(kind_or_ref).kind}: {kind_or_ref} NAME")
    return resolve("trainingrun"), kind_or_ref


def _is_kind(name: str) -> bool:
    return any(name.lower() in _aliases(kind) for kind in ALL)
