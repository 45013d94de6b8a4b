"""Node and pod affinity: the shapes of core/v1, with the checks the API server
would otherwise make only when the Job creates the pods, and bounds that keep
a spec within the operator's size budget (see ``trailboss.sizebudget``)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import ConfigDict, Field, model_validator

from trailboss.api.base import ApiModel
from trailboss.api.constraints import (
    Rule,
    checked,
    enforce,
    model_rules,
    total_length,
    total_map_length,
)
from trailboss.api.fields import LabelKey, LabelValue

MAX_TERMS = 2
"""Terms per list: each term is a whole alternative (or preference) of its own."""
MAX_EXPRESSIONS = 4

Weight = Annotated[int, Field(ge=1, le=100)]
LabelValues = Annotated[
    list[LabelValue],
    Field(max_length=8),
    checked(total_length(128, "values", "match on fewer values, or label the nodes or pods")),
]


class NodeOperator(StrEnum):
    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"
    GT = "Gt"
    LT = "Lt"


class SetOperator(StrEnum):
    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"


_VALUES_FIT_OPERATOR = (
    Rule(
        "!(self.operator in ['In', 'NotIn']) || has(self.values) && size(self.values) > 0",
        "operators In and NotIn need at least one value",
        lambda r: r.operator not in ("In", "NotIn") or bool(r.values),
    ),
    Rule(
        "!(self.operator in ['Exists', 'DoesNotExist']) || !has(self.values) || "
        "size(self.values) == 0",
        "operators Exists and DoesNotExist take no values",
        lambda r: r.operator not in ("Exists", "DoesNotExist") or not r.values,
    ),
    Rule(
        "!(self.operator in ['Gt', 'Lt']) || has(self.values) && size(self.values) == 1 && "
        "self.values[0].matches('^[0-9]+$')",
        "operators Gt and Lt take one value, a whole number, e.g. values: ['8']",
        lambda r: r.operator not in ("Gt", "Lt") or (len(r.values) == 1 and r.values[0].isdigit()),
    ),
)


class _Requirement(ApiModel):
    model_config = ConfigDict(json_schema_extra=model_rules(*_VALUES_FIT_OPERATOR))

    key: LabelKey
    """The label, e.g. `nvidia.com/gpu.product`."""
    operator: str
    values: LabelValues = []
    """Values for In and NotIn; one whole number for Gt and Lt; none for Exists
    and DoesNotExist."""

    @model_validator(mode="after")
    def _values_fit(self) -> _Requirement:
        enforce(self, *_VALUES_FIT_OPERATOR)
        return self


class NodeSelectorRequirement(_Requirement):
    """A node label and the values it must or must not have, as in core/v1."""

    operator: NodeOperator
    """In, NotIn, Exists, DoesNotExist, Gt or Lt (numeric comparison)."""


class LabelSelectorRequirement(_Requirement):
    """A pod label and the values it must or must not have, as in metav1."""

    operator: SetOperator
    """In, NotIn, Exists or DoesNotExist."""


class NodeSelectorTerm(ApiModel):
    """Nodes whose labels meet every expression."""

    match_expressions: Annotated[
        list[NodeSelectorRequirement], Field(min_length=1, max_length=MAX_EXPRESSIONS)
    ]
    """Requirements on the node's labels, all of which must hold."""


class NodeSelector(ApiModel):
    """Nodes that meet any one of the terms."""

    node_selector_terms: Annotated[
        list[NodeSelectorTerm], Field(min_length=1, max_length=MAX_TERMS)
    ]
    """Alternatives: a node qualifies when it meets one of them."""


class PreferredSchedulingTerm(ApiModel):
    """Nodes the scheduler prefers, with the weight of the preference."""

    weight: Weight
    """1-100, added to a node's score when it meets the preference."""
    preference: NodeSelectorTerm
    """The nodes preferred."""


class NodeAffinity(ApiModel):
    """Which nodes the training pods run on, beyond `spec.nodeSelector`."""

    required_during_scheduling_ignored_during_execution: NodeSelector | None = None
    """Only nodes that meet these terms, e.g. GPU products In [A100, H100]."""
    preferred_during_scheduling_ignored_during_execution: Annotated[
        list[PreferredSchedulingTerm], Field(max_length=MAX_TERMS)
    ] = []
    """Nodes to prefer when several qualify."""


class LabelSelector(ApiModel):
    """Pods selected by their labels, as in metav1."""

    match_labels: Annotated[
        dict[LabelKey, LabelValue],
        Field(max_length=4),
        checked(total_map_length(256, "matchLabels")),
    ] = {}
    """Labels the pods must have, e.g. `trailboss.dev/trainingrun: fraud-ddp-v3`."""
    match_expressions: Annotated[list[LabelSelectorRequirement], Field(max_length=2)] = []
    """Requirements on the pods' labels, all of which must hold."""


class PodAffinityTerm(ApiModel):
    """Pods in the run's namespace, and the topology they are counted in."""

    label_selector: LabelSelector | None = None
    """The pods this term is about; none selects no pods."""
    topology_key: LabelKey
    """Node label that defines "together", e.g. `kubernetes.io/hostname` (same node)
    or `topology.kubernetes.io/zone` (same zone)."""


class WeightedPodAffinityTerm(ApiModel):
    """A preference for (or against) pods, with its weight."""

    weight: Weight
    """1-100, added to a node's score when it meets the term."""
    pod_affinity_term: PodAffinityTerm
    """The pods and topology."""


class PodAffinity(ApiModel):
    """Run near (affinity) or away from (anti-affinity) pods with given labels."""

    required_during_scheduling_ignored_during_execution: Annotated[
        list[PodAffinityTerm], Field(max_length=MAX_TERMS)
    ] = []
    """Terms every training pod must meet to be scheduled."""
    preferred_during_scheduling_ignored_during_execution: Annotated[
        list[WeightedPodAffinityTerm], Field(max_length=MAX_TERMS)
    ] = []
    """Terms the scheduler prefers to meet."""


class Affinity(ApiModel):
    """Node and pod affinity of the training pods, as in core/v1 (at most two
    terms per list and four expressions per term)."""

    node_affinity: NodeAffinity | None = None
    """Which nodes the pods may or should run on."""
    pod_affinity: PodAffinity | None = None
    """Pods to run near, e.g. the run's own workers in one zone."""
    pod_anti_affinity: PodAffinity | None = None
    """Pods to keep away from, e.g. one worker per node."""
