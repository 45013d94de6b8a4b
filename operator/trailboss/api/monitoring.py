"""A Deployment's drift monitoring: what `spec.monitoring` asks for, and the
drift a check found (`status.drift`)."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated

from pydantic import Field

from trailboss.api.common import ApiModel, Duration, S3Uri
from trailboss.api.fields import FeatureName


class DriftMethod(StrEnum):
    AUTO = "auto"
    PSI = "psi"
    KS = "ks"
    JENSEN_SHANNON = "jensen-shannon"
    WASSERSTEIN = "wasserstein"
    CHI_SQUARE = "chi-square"
    Z_TEST = "z-test"


class DriftCorrection(StrEnum):
    """Multiple-testing correction of the p-values that decide a verdict."""

    NONE = "none"
    BONFERRONI = "bonferroni"
    HOLM = "holm"
    BENJAMINI_HOCHBERG = "benjamini-hochberg"


class FeatureType(StrEnum):
    NUMERIC = "numeric"
    CATEGORICAL = "categorical"


class FeatureStatus(StrEnum):
    """Whether a feature could be checked, and if not, why."""

    OK = "Ok"
    INVALID_VALUES = "InvalidValues"
    INSUFFICIENT_DATA = "InsufficientData"
    MISSING_COLUMN = "MissingColumn"
    NOT_IN_REFERENCE = "NotInReference"
    INSUFFICIENT_REFERENCE = "InsufficientReference"
    CONSTANT_REFERENCE = "ConstantReference"
    """No longer reported: a constant reference is measured against a scale floor."""


class FeatureDriftSpec(ApiModel):
    """A different method or threshold for one feature."""

    name: FeatureName
    """Feature name as in the reference data (a prediction is `output.<name>`)."""
    method: DriftMethod | None = None
    """Method for this feature; empty uses spec.monitoring.method."""
    threshold: Annotated[float, Field(gt=0)] | None = None
    """Score threshold for this feature; empty uses the method's default."""


MAX_DRIFT_PODS = 32
"""Most pods one drift check may spread over (spec.monitoring.parallelism)."""


class MonitoringSpec(ApiModel):
    """Drift monitoring of live predictions against the ModelVersion's reference profile.

    Every `interval`, a Job compares the last `window` of prediction logs with
    the reference, feature by feature, and gives each a score and a p-value.
    Methods (score; p-value): `psi` (population stability index on bins; the
    chi-square test on the same bins), `jensen-shannon` (distance, natural log,
    on bins; chi-square), `wasserstein` (W1 divided by the reference's
    interquartile range / 1.349, its standard deviation when that is 0, and
    at least 1e-6 x max(1, |median|); KS's asymptotic p-value), `ks`
    (Kolmogorov-Smirnov D; KS's p-value), `chi-square` (Cramer's V of the two
    distributions given equal weight, free of the sample sizes; chi-square
    test of homogeneity) and `z-test` (|phi| likewise; the two-proportion
    z-test; only for two categories, chi-square otherwise). PSI and
    Jensen-Shannon bin numeric features by ten equal-frequency bins of the
    reference, or value by value when it has at most 20 distinct values; an
    empty bin counts as a share of 0.0001 in PSI.

    A feature drifts when its score exceeds its threshold and its p-value
    (after `correction`) is below `pValueThreshold`: the score says the shift
    is large enough to matter, the p-value that it is not sampling noise. The
    rule is the same at every sample size. A feature also drifts when its
    share of invalid rows (missing, NaN, not a number, infinite) moved from
    the reference's by |phi| > 0.1.

    `auto` picks per feature, at every reference size: `jensen-shannon` for
    categorical features and numeric ones with at most 5 values, else
    `wasserstein`. A reference with fewer valid rows than a method needs (50
    for `ks`, 100 for the others) makes the feature `InsufficientReference`.
    """

    prediction_logs: S3Uri | None = None
    """Where the server writes request features and predictions."""
    method: DriftMethod = DriftMethod.AUTO
    """Drift method for every feature; `auto` picks per feature (see above)."""
    threshold: Annotated[float, Field(gt=0)] | None = None
    """A feature drifts when its score exceeds this (and its p-value is below
    pValueThreshold). Empty uses the method's default: 0.1 for every method
    (PSI 0.1 is "some shift"; 0.25 is "major")."""
    p_value_threshold: Annotated[float, Field(gt=0, lt=1)] = 0.05
    """A feature drifts only when its p-value (after correction) is below this,
    so that too few rows to tell a score from sampling noise never drift."""
    correction: DriftCorrection = DriftCorrection.NONE
    """Correct the features' p-values for testing many features at once:
    `bonferroni`, `holm` or `benjamini-hochberg` (false discovery rate)."""
    drift_share: Annotated[float, Field(gt=0, le=1)] = 0.5
    """The dataset drifts when at least this share of checked features drift."""
    min_samples: Annotated[int, Field(ge=1, le=100_000_000)] = 1000
    """Below this many valid rows in the window a feature is `InsufficientData`,
    never drifted. Small windows inflate distances (for an unshifted normal
    feature, normed W1 exceeds 0.1 in 28% of 200-row windows, 4.5% of 500-row
    and 0.5% of 1000-row ones); the p-value keeps most of those from drifting,
    this keeps all of them."""
    feature_types: Annotated[dict[FeatureName, FeatureType], Field(max_length=32)] = {}
    """Override the inferred type of a feature: `numeric` or `categorical`
    (e.g. an integer-coded category)."""
    features: Annotated[list[FeatureDriftSpec], Field(max_length=32)] = []
    """Per-feature method or threshold."""
    window: Duration = "1h"
    """Recent predictions compared with the reference."""
    interval: Duration = "5m"
    """How often drift is computed."""
    parallelism: Annotated[int, Field(ge=1, le=MAX_DRIFT_PODS)] = 1
    """Pods that share each check: above 1, the check is one Indexed Job of N
    pods, each measuring 1/N of the features (every N-th by name) and writing
    its own part; the operator merges the parts into one result, the same as
    one pod's, and a missing part fails the check. Each pod gets the drift
    Job's resources and holds one column of its own features at a time, so
    N divides each pod's work, not its peak memory. Each pod fetches from the
    window's Parquet files only its own features' columns (range reads)."""


class FeatureDrift(ApiModel):
    """Drift of one feature (or prediction) in the last check."""

    name: str
    """Feature name; predictions are `output.<name>`."""
    status: FeatureStatus = FeatureStatus.OK
    """Ok, InvalidValues (checked without the invalid rows), InsufficientData
    (too few rows in the window), InsufficientReference (too few in the
    reference for the method), MissingColumn or NotInReference."""
    method: DriftMethod | None = None
    """Method used (never `auto`: the one it picked)."""
    score: float | None = None
    """Drift statistic of the method."""
    p_value: float | None = None
    """p-value of the method's test (see spec.monitoring), after correction."""
    threshold: float | None = None
    """The score threshold the verdict compared against."""
    p_value_threshold: float | None = None
    """The p-value threshold the verdict compared against."""
    decided_by: Annotated[str, Field(pattern=r"^(score|pValue)$")] | None = None
    """`pValue` when the score exceeded its threshold but the p-value did not
    fall below its own (too few rows to tell the shift from noise); else `score`."""
    drifted: bool = False
    """Whether the feature drifted; never true without a verdict."""
    rows: int | None = None
    """Valid rows of this feature in the window."""
    missing: int | None = None
    """Rows of the window dropped as missing, NaN or not a number."""
    infinite: int | None = None
    """Rows of the window dropped as +inf or -inf (an overflow upstream)."""
    invalid_share_drifted: bool | None = None
    """Whether the share of invalid (missing or infinite) rows drifted from the
    reference's; a feature whose share drifted is drifted."""
    message: str | None = None
    """Why the status is not Ok, and what to do."""


class DriftStatus(ApiModel):
    """Result of the last drift check."""

    score: float | None = None
    """Largest feature score (scores of different methods are not comparable)."""
    drifted: bool | None = None
    """Dataset drift: at least spec.monitoring.driftShare of the checked
    features drifted. Empty when no feature could be checked."""
    drift_share: float | None = None
    """Share of checked features that drifted."""
    drifted_features: int | None = None
    """Number of features that drifted."""
    checked_features: int | None = None
    """Number of features with a verdict (status Ok or InvalidValues)."""
    prediction_drifted: bool | None = None
    """Whether any prediction (output) drifted."""
    model_version: str | None = None
    """The ModelVersion whose predictions and reference were compared."""
    window_rows: int | None = None
    """Successful predictions in the window."""
    features: list[FeatureDrift] = []
    """Per-feature results, predictions included."""
    checked_at: dt.datetime | None = None
    """When drift was last computed."""
    failed_at: dt.datetime | None = None
    """When the last check failed (its result is not in this status)."""
    consecutive: int | None = None
    """Checks in a row, up to this one, that found dataset drift in this model version.
    A failed check ends the streak (0); only a streak of the stable version retrains."""
    checks: int | None = None
    """Checks completed so far, failed ones included. The next check's Job is
    named after this count, so a restart never runs one check twice."""
