"""Evidently's data drift preset on the benchmark's data; run by bench/drift.py
with the bench-only virtualenv (Evidently is not a Trailboss dependency).

Usage: python bench/drift_evidently.py DATA_DIR  ->  one JSON line on stdout.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset


def main() -> None:
    data = Path(sys.argv[1])
    reference = pd.read_parquet(data / "reference.parquet")
    current = pd.read_parquet(data / "current.parquet")
    numeric = [c for c in reference.columns if c.startswith("num")]
    categorical = [c for c in reference.columns if c.startswith("cat")]
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    started = time.perf_counter()
    snapshot = Report([DataDriftPreset()]).run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )
    seconds = time.perf_counter() - started
    values = {}
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if config.get("column") is not None:
            values[config["column"]] = {
                "method": config["method"],
                "threshold": config["threshold"],
                "value": metric["value"],
            }
    print(json.dumps({"seconds": seconds, "columns": values}))


if __name__ == "__main__":
    main()
