"""What `trailboss profile` and `trailboss drift` do, from S3 to S3.

Both work in a temporary directory on local disk (the Job's ephemeral
storage) and hold at most one column in memory at a time. A check fetches
from the prediction logs and the profile's samples only the columns of the
features it measures (a pod of a sharded check, its own group's).
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from trailboss.api.durations import duration_seconds
from trailboss.api.modelversion import ReferenceProfileStatus
from trailboss.api.monitoring import FeatureDrift, FeatureType, MonitoringSpec
from trailboss.drift import build, decision, verdict, window
from trailboss.drift import profile as profiles
from trailboss.drift.columns import Current
from trailboss.drift.fetch import fetch_columns
from trailboss.drift.shard import Shard, features_of
from trailboss.drift.store import ObjectStore, join, split_pin, split_uri
from trailboss.policies.drift import PROFILE_STATUS


def make_profile(
    store: ObjectStore, reference_uri: str, output_uri: str, options: build.ProfileOptions
) -> ReferenceProfileStatus:
    """Profile the reference data and upload it; the status a ModelVersion records."""
    _, key = split_uri(split_pin(reference_uri)[0])
    with tempfile.TemporaryDirectory(prefix="trailboss-profile-") as tmp:
        workdir = Path(tmp)
        data = workdir / ("source" + Path(key).suffix)
        store.download(reference_uri, data)
        try:
            digest, rows = build.build(reference_uri, data, workdir, options)
        except (pa.ArrowException, OSError) as error:
            raise ValueError(
                f"{reference_uri} is not a readable CSV or Parquet file: {error}"
            ) from error
        for name, kind in (
            (profiles.PROFILE_JSON, "application/json"),
            (profiles.SAMPLE_PARQUET, "application/vnd.apache.parquet"),
        ):
            store.write(join(output_uri, name), (workdir / name).read_bytes(), kind)
        loaded = profiles.read(workdir)
    status = ReferenceProfileStatus(
        location=join(output_uri, ""),
        rows=rows,
        features=len(loaded.columns),
        digest=digest,
        source=reference_uri,
        created_at=loaded.created_at,
    )
    # Written last: its presence tells the operator the profile is complete.
    document = json.dumps(status.to_json(), sort_keys=True).encode()
    store.write(join(output_uri, PROFILE_STATUS), document, "application/json")
    return status


@dataclass(frozen=True)
class CheckTarget:
    """Which predictions to compare with which profile."""

    profile_uri: str
    logs_uri: str
    deployment: str
    """`namespace.name`, as in the log path."""
    model_version: str


def run_check(
    store: ObjectStore,
    target: CheckTarget,
    spec: MonitoringSpec,
    now: dt.datetime,
    shard: Shard | None = None,
) -> dict[str, Any]:
    """One drift check: the result document written to S3 and printed; with a
    shard, that pod's features before their verdicts (see `shard.merge`)."""
    start = now - dt.timedelta(seconds=duration_seconds(spec.window))
    with tempfile.TemporaryDirectory(prefix="trailboss-drift-") as tmp:
        workdir = Path(tmp)
        profile = _read_profile(store, target.profile_uri, workdir, shard)
        logs = workdir / "logs"
        logs.mkdir()
        prefixes = window.hour_prefixes(
            target.logs_uri, target.deployment, target.model_version, start, now
        )
        measured = [_column_of(name) for name in features_of(profile.columns, shard)]
        current = window.spool(store, prefixes, start, now, logs, measured)
        features = check_window(spec, profile, current, shard)
        if shard is not None:
            return partial_result(target, current, start, now, shard, features)
        status = decision.summarize(
            spec,
            features,
            model_version=target.model_version,
            window_rows=current.rows,
            checked_at=now,
        )
    return {
        "deployment": target.deployment,
        "window": _window_of(current, start, now),
        "profile": target.profile_uri,
        "drift": status.to_json(),
    }


def _read_profile(
    store: ObjectStore, profile_uri: str, workdir: Path, shard: Shard | None
) -> profiles.Profile:
    """The profile's summary, and the samples of the numeric features this pod
    measures (the others' columns are not fetched)."""
    store.download(join(profile_uri, profiles.PROFILE_JSON), workdir / profiles.PROFILE_JSON)
    profile = profiles.read(workdir)
    numeric = [
        name
        for name in features_of(profile.columns, shard)
        if profile.feature_type(name) == FeatureType.NUMERIC
    ]
    samples = join(profile_uri, profiles.SAMPLE_PARQUET)
    try:
        fetch_columns(store, samples, workdir / profiles.SAMPLE_PARQUET, numeric)
    except ValueError as error:
        raise ValueError(f"{samples}: {error}; rebuild the profile") from error
    return profile


def _window_of(current: window.Window, start: dt.datetime, now: dt.datetime) -> dict[str, Any]:
    return {
        "start": start.isoformat(),
        "end": now.isoformat(),
        "files": len(current.files),
        "skippedFiles": current.skipped,
    }


def partial_result(
    target: CheckTarget,
    current: window.Window,
    start: dt.datetime,
    now: dt.datetime,
    shard: Shard,
    features: list[FeatureDrift],
) -> dict[str, Any]:
    """One pod's share of a check: its features, measured but not yet decided."""
    return {
        "deployment": target.deployment,
        "window": _window_of(current, start, now),
        "profile": target.profile_uri,
        "shard": {"index": shard.index, "count": shard.count},
        "modelVersion": target.model_version,
        "windowRows": current.rows,
        "checkedAt": now.isoformat(),
        "features": [f.to_json() for f in features],
    }


def check_window(
    spec: MonitoringSpec,
    profile: profiles.Profile,
    current: window.Window,
    shard: Shard | None = None,
) -> list[FeatureDrift]:
    """Every profiled feature (of the shard), one at a time, then the log
    columns the profile lacks (reported by the first shard)."""
    names = features_of(profile.columns, shard)
    features = [_check_one(spec, profile, current, name) for name in names]
    if shard is not None and shard.index != 0:
        return features
    features += [
        verdict.not_in_reference(_feature_of(column))
        for column in sorted(current.columns())
        if _feature_of(column) not in profile.columns
    ]
    return features


def _column_of(feature: str) -> str:
    return feature if feature.startswith(decision.OUTPUT_PREFIX) else f"input.{feature}"


def _feature_of(column: str) -> str:
    return column[len("input.") :] if column.startswith("input.") else column


def _check_one(
    spec: MonitoringSpec, profile: profiles.Profile, current: window.Window, name: str
) -> FeatureDrift:
    """One feature, read as its (possibly overridden) type; the column is freed after."""
    if current.rows == 0:
        return verdict.insufficient(name, 0, "no successful predictions in the window")
    override = spec.feature_types.get(name)
    kind = FeatureType(override) if override else profile.feature_type(name)
    ignored = None
    if profile.feature_type(name) == FeatureType.CATEGORICAL and kind == FeatureType.NUMERIC:
        kind = FeatureType.CATEGORICAL  # counts cannot be turned back into values
        ignored = (
            "featureTypes says numeric but the profile has it as categorical; "
            "rebuild the profile with --feature-type to check it as numeric"
        )
    column = _column_of(name)
    cur: Current | None = (
        current.numeric(column) if kind == FeatureType.NUMERIC else current.categorical(column)
    )
    if cur is None:
        return verdict.missing_column(name, column)
    result = verdict.check_feature(spec, name, profile.reference(name, kind), cur)
    if ignored:
        message = f"{ignored}; {result.message}" if result.message else ignored
        result = result.model_copy(update={"message": message})
    return result
