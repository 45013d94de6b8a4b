"""The reference profile on disk: ``profile.json`` (types, counts, moments,
decile edges, category frequencies) and ``sample.parquet`` (one sorted sample
column per numeric feature). A check reads the JSON once and one sample
column per feature, so its memory does not grow with the number of features.

Sample size: exact KS and Wasserstein need the reference values themselves,
so a numeric column is kept whole up to ``DEFAULT_SAMPLE_ROWS`` rows (800 kB
per feature as float64) and checks are then exact. Above that a seeded
uniform sample of that size is kept; by the DKW inequality its ECDF is within
0.0062 of the whole column's with probability 0.999, far below the 0.1 KS
threshold. Counts (deciles, categories) always come from every row.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from trailboss.api.monitoring import FeatureType
from trailboss.drift.columns import (
    CategoricalReference,
    NumericReference,
    Reference,
    as_categorical,
    categorical_reference,
)

FORMAT = "trailboss.dev/reference-profile/v1"
PROFILE_JSON = "profile.json"
SAMPLE_PARQUET = "sample.parquet"
DEFAULT_SAMPLE_ROWS = 100_000


@dataclass
class Profile:
    """Every profiled column's summary; numeric samples stay on disk until asked for."""

    source: str
    rows: int
    created_at: dt.datetime
    sample_rows: int = DEFAULT_SAMPLE_ROWS
    columns: dict[str, dict[str, Any]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    directory: Path | None = None

    def feature_type(self, name: str) -> FeatureType:
        return FeatureType(self.columns[name]["type"])

    def reference(self, name: str, as_type: FeatureType | None = None) -> Reference:
        """One column's reference, read from disk; a numeric column may be
        read as categorical (a type override at check time)."""
        meta = self.columns[name]
        if meta["type"] == FeatureType.CATEGORICAL:
            return categorical_reference(
                list(meta["categories"]), [int(c) for c in meta["counts"]], int(meta["missing"])
            )
        numeric = NumericReference(
            sample=self._sample(name, int(meta["sampleRows"])),
            rows=int(meta["rows"]),
            std=float(meta["std"]),
            edges=np.asarray(meta["edges"], dtype=np.float64),
            bin_counts=np.asarray(meta["binCounts"], dtype=np.int64),
            values=None if meta["values"] is None else np.asarray(meta["values"], np.float64),
            value_counts=None
            if meta["valueCounts"] is None
            else np.asarray(meta["valueCounts"], np.int64),
            spread=meta.get("spread"),
            median=float(meta.get("median", 0.0)),
            invalid=int(meta["missing"]),
        )
        return as_categorical(numeric) if as_type == FeatureType.CATEGORICAL else numeric

    def _sample(self, name: str, rows: int) -> np.ndarray[Any, np.dtype[np.float64]]:
        assert self.directory is not None, "profile not loaded from disk"
        table = pq.read_table(self.directory / SAMPLE_PARQUET, columns=[name])
        values = np.asarray(table.column(0).to_numpy(zero_copy_only=False), dtype=np.float64)
        return values[:rows]


def column_meta(ref: Reference, missing: int) -> dict[str, Any]:
    """A column's entry in profile.json."""
    if isinstance(ref, CategoricalReference):
        return {
            "type": FeatureType.CATEGORICAL.value,
            "rows": ref.rows,
            "missing": missing,
            "categories": list(ref.categories),
            "counts": [int(c) for c in ref.counts],
        }
    return {
        "type": FeatureType.NUMERIC.value,
        "rows": ref.rows,
        "missing": missing,
        "std": ref.std,
        "edges": [float(e) for e in ref.edges],
        "binCounts": [int(c) for c in ref.bin_counts],
        "values": None if ref.values is None else [float(v) for v in ref.values],
        "valueCounts": None if ref.value_counts is None else [int(c) for c in ref.value_counts],
        "sampleRows": int(ref.sample.size),
        "spread": ref.spread,
        "median": ref.median,
    }


def write(profile: Profile, samples: dict[str, np.ndarray[Any, Any]], directory: Path) -> str:
    """Write the profile's two files; returns their ``sha256:`` digest.

    Samples of different lengths share one Parquet file, padded with NaN;
    ``sampleRows`` in the JSON says where each one ends.
    """
    longest = max((s.size for s in samples.values()), default=0)
    padded = {
        name: np.concatenate((s, np.full(longest - s.size, np.nan))) for name, s in samples.items()
    }
    pq.write_table(
        pa.table(padded or {"_": pa.array([], pa.float64())}), directory / SAMPLE_PARQUET
    )
    document = {
        "format": FORMAT,
        "source": profile.source,
        "rows": profile.rows,
        "createdAt": profile.created_at.isoformat(),
        "sampleRows": profile.sample_rows,
        "columns": profile.columns,
        "skipped": profile.skipped,
    }
    (directory / PROFILE_JSON).write_text(json.dumps(document, indent=1, sort_keys=True))
    return digest(directory)


def digest(directory: Path) -> str:
    h = hashlib.sha256()
    for name in (PROFILE_JSON, SAMPLE_PARQUET):
        h.update((directory / name).read_bytes())
    return "sha256:" + h.hexdigest()


def read(directory: Path) -> Profile:
    """Load profile.json; a file of another format is refused by name."""
    document = json.loads((directory / PROFILE_JSON).read_text())
    if document.get("format") != FORMAT:
        raise ValueError(
            f"{PROFILE_JSON} has format {document.get('format')!r}, expected {FORMAT!r}: "
            "rebuild it with `trailboss profile`"
        )
    return Profile(
        source=document["source"],
        rows=int(document["rows"]),
        created_at=dt.datetime.fromisoformat(document["createdAt"]),
        sample_rows=int(document["sampleRows"]),
        columns=document["columns"],
        skipped=document.get("skipped", {}),
        directory=directory,
    )
