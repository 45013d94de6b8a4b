"""`make bench-drift`: Trailboss's drift computation against Evidently's data
drift preset and against a floor (sorting the current matrix once with
numpy), exactness against scipy, and the drift Job's peak memory, all from
one run on this machine.

Data: 100,000 reference rows and 1,000,000 current rows of 50 numeric
features (the first half shifted by 0.5 sd); a second variant adds 10
categorical features (the first half with reversed category shares).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from scipy import stats as sps

from bench import drift_decisions
from bench.drift_job import NOW, job
from trailboss.api.monitoring import DriftStatus, FeatureDrift, MonitoringSpec
from trailboss.drift import decision, stats, verdict
from trailboss.drift.columns import (
    CategoricalCurrent,
    NumericReference,
    Reference,
    categorical_reference,
    numeric_reference,
    sorted_current,
)
from trailboss.drift.tables import category_counts

ROOT = Path(__file__).resolve().parent.parent
CATEGORIES = np.array(["red", "green", "blue", "amber"])
SHARES = np.array([0.4, 0.3, 0.2, 0.1])


def make_data(rng: np.random.Generator, args: argparse.Namespace) -> dict[str, Any]:
    """Column-major current matrix (one contiguous row per feature) and the reference."""
    numeric = [f"num{i:02d}" for i in range(args.numeric)]
    categorical = [f"cat{i:02d}" for i in range(args.categorical)]
    ref = {n: rng.normal(0, 1, args.reference_rows) for n in numeric}
    cur = np.empty((args.numeric, args.current_rows))
    for i in range(args.numeric):
        cur[i] = rng.normal(0.5 if i < args.numeric // 2 else 0.0, 1, args.current_rows)
    ref_cat, cur_cat = {}, {}
    for i, name in enumerate(categorical):
        ref_cat[name] = pa.array(rng.choice(CATEGORIES, args.reference_rows, p=SHARES))
        shares = SHARES[::-1] if i < args.categorical // 2 else SHARES
        cur_cat[name] = pa.array(rng.choice(CATEGORIES, args.current_rows, p=shares))
    return {
        "numeric": numeric,
        "categorical": categorical,
        "ref": ref,
        "cur": cur,
        "ref_cat": ref_cat,
        "cur_cat": cur_cat,
        # As the Job reads text from Parquet: dictionary-encoded, the codes ready.
        "cur_codes": {n: cur_cat[n].dictionary_encode() for n in categorical},
    }


def trailboss_check(data: dict[str, Any], refs: dict[str, Reference]) -> tuple[float, DriftStatus]:
    """What the Job does per column once it has read it into an array of its
    own: sort, set the invalid values apart, measure; then the verdicts."""
    spec = MonitoringSpec()
    started = time.perf_counter()
    features: list[FeatureDrift] = []
    for i, name in enumerate(data["numeric"]):
        cur = sorted_current(data["cur"][i].copy())
        features.append(verdict.check_feature(spec, name, refs[name], cur))
    for name in data["categorical"]:
        counts, missing = category_counts(data["cur_codes"][name])
        ref = categorical_reference(list(counts), list(counts.values()))
        cur_c = CategoricalCurrent(ref.categories, ref.counts, missing)
        features.append(verdict.check_feature(spec, name, refs[name], cur_c))
    status = decision.summarize(
        spec, features, model_version="v1", window_rows=data["cur"].shape[1], checked_at=NOW
    )
    return time.perf_counter() - started, status


def floor(data: dict[str, Any]) -> float:
    """Sorting the current matrix once (numeric values; categorical codes, given
    dictionary-encoded as the Job reads them, like the check)."""
    codes = [np.asarray(data["cur_codes"][n].indices) for n in data["categorical"]]
    started = time.perf_counter()
    np.sort(data["cur"], axis=1)
    for c in codes:
        np.sort(c)
    return time.perf_counter() - started


def categorical_timings(data: dict[str, Any], repeats: int = 5) -> dict[str, float]:
    """The categorical features alone, best of `repeats` (the rest of the machine
    moves the whole-matrix figures by seconds): counting them from text, from
    the dictionary codes Parquet gives the Job, and sorting those codes (the floor)."""
    names = data["categorical"]

    def best(run: Any) -> float:
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            run()
            times.append(time.perf_counter() - started)
        return min(times)

    return {
        "text": best(lambda: [category_counts(data["cur_cat"][n]) for n in names]),
        "codes": best(lambda: [category_counts(data["cur_codes"][n]) for n in names]),
        "floor": best(lambda: [np.sort(np.asarray(data["cur_codes"][n].indices)) for n in names]),
    }


def profiles(data: dict[str, Any]) -> dict[str, Reference]:
    refs: dict[str, Reference] = {
        n: numeric_reference(data["ref"][n], 100_000) for n in data["numeric"]
    }
    for name in data["categorical"]:
        counts, _ = category_counts(data["ref_cat"][name])
        refs[name] = categorical_reference(list(counts), list(counts.values()))
    return refs


def exactness(data: dict[str, Any], refs: dict[str, Reference], columns: int) -> dict[str, float]:
    """Largest differences from scipy over the first `columns` numeric features
    and every categorical one."""
    worst = {"ks_d": 0.0, "ks_p": 0.0, "w1_rel": 0.0, "chi2_rel": 0.0, "chi2_p": 0.0}
    for i, name in enumerate(data["numeric"][:columns]):
        ref, cur = data["ref"][name], data["cur"][i]
        profile = refs[name]
        assert isinstance(profile, NumericReference)
        ours = stats.ks_test(profile.sample, np.sort(cur))
        theirs = sps.ks_2samp(ref, cur)
        worst["ks_d"] = max(worst["ks_d"], abs(ours.statistic - theirs.statistic))
        worst["ks_p"] = max(worst["ks_p"], abs((ours.p_value or 0) - theirs.pvalue))
        w_ours = stats.wasserstein(profile.sample, np.sort(cur)) / np.std(ref)
        w_theirs = sps.wasserstein_distance(ref, cur) / np.std(ref)
        worst["w1_rel"] = max(worst["w1_rel"], abs(w_ours - w_theirs) / w_theirs)
    for name in data["categorical"]:
        r, _ = category_counts(data["ref_cat"][name])
        c, _ = category_counts(data["cur_cat"][name])
        keys = sorted(set(r) | set(c))
        rc = np.array([r.get(k, 0) for k in keys])
        cc = np.array([c.get(k, 0) for k in keys])
        ours_c = stats.chi_square(rc, cc)
        theirs_c = sps.chi2_contingency(np.vstack((rc, cc)), correction=False)
        worst["chi2_rel"] = max(
            worst["chi2_rel"], abs(ours_c.statistic - theirs_c.statistic) / theirs_c.statistic
        )
        worst["chi2_p"] = max(worst["chi2_p"], abs((ours_c.p_value or 0) - theirs_c.pvalue))
    return worst


def evidently(data: dict[str, Any], workdir: Path) -> dict[str, Any] | None:
    python = ROOT / ".venv-bench" / "bin" / "python"
    if not python.exists():
        print(f"Evidently: not run, no bench virtualenv at {python} (make bench-drift creates it)")
        return None
    reference = {n: data["ref"][n] for n in data["numeric"]} | data["ref_cat"]
    current = {n: data["cur"][i] for i, n in enumerate(data["numeric"])} | data["cur_cat"]
    pq.write_table(pa.table(reference), workdir / "reference.parquet")
    pq.write_table(pa.table(current), workdir / "current.parquet")
    script = ROOT / "bench" / "drift_evidently.py"
    out = subprocess.run(
        [str(python), str(script), str(workdir)], check=True, capture_output=True, text=True
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _verdicts(status: DriftStatus) -> set[str]:
    return {f.name for f in status.features if f.drifted}


def _evidently_verdicts(result: dict[str, Any]) -> set[str]:
    drifted = set()
    for name, column in result["columns"].items():
        p_value = "p_value" in column["method"].lower()
        value, threshold = column["value"], column["threshold"]
        if (value < threshold) if p_value else (value > threshold):
            drifted.add(name)
    return drifted


def variant(label: str, args: argparse.Namespace, categorical: int, workdir: Path) -> None:
    rng = np.random.default_rng(2026)
    args.categorical = categorical
    data = make_data(rng, args)
    refs = profiles(data)
    floor_s = floor(data)
    ours_s, status = trailboss_check(data, refs)
    methods = sorted({str(f.method) for f in status.features})
    print(
        f"\n## {label}: {args.numeric} numeric + {categorical} categorical features, "
        f"{args.reference_rows:,} reference x {args.current_rows:,} current rows"
    )
    print(f"floor (np.sort of the current matrix once)  {floor_s:8.2f} s")
    print(
        f"Trailboss drift computation ({', '.join(methods)})  {ours_s:8.2f} s   "
        f"= {ours_s / floor_s:.2f}x the floor"
    )
    print(
        f"Trailboss verdict: {status.drifted_features}/{status.checked_features} features drifted, "
        f"dataset drift {status.drifted}"
    )
    if categorical:
        cat = categorical_timings(data)
        print(
            f"categorical features alone (best of 5): counted from codes {cat['codes']:.3f} s "
            f"= {cat['codes'] / cat['floor']:.2f}x sorting the codes ({cat['floor']:.3f} s); "
            f"from text {cat['text']:.3f} s = {cat['text'] / cat['floor']:.2f}x"
        )
    theirs = evidently(data, workdir) if args.evidently else None
    if theirs is not None:
        ev_s = theirs["seconds"]
        print(
            f"Evidently {args.evidently_version} DataDriftPreset   {ev_s:8.2f} s   "
            f"Trailboss is {ev_s / ours_s:.1f}x faster"
        )
        same = _verdicts(status) == _evidently_verdicts(theirs)
        print(f"same drifted features as Evidently: {same}")
    worst = exactness(data, refs, args.exact_columns)
    print(
        f"exactness vs scipy (first {args.exact_columns} numeric, all categorical): "
        f"KS D {worst['ks_d']:.1e}, KS p {worst['ks_p']:.1e}, W1/std rel {worst['w1_rel']:.1e}, "
        f"chi2 rel {worst['chi2_rel']:.1e}, chi2 p {worst['chi2_p']:.1e}"
    )
    print(f"load average now {_load()} (other work on the machine slows every figure)")
    if args.job:
        runs, shards = job(data, args.parts)
        for run in runs:
            print(
                f"drift Job, {run['features']:2d} features checked: {run['drift_s']:6.1f} s, "
                f"peak RSS {run['drift_mib']} MiB ({run['window_rows']:,} rows, "
                f"{run['drifted']} drifted); profile build {run['profile_s']:.1f} s, "
                f"{run['profile_mib']} MiB"
            )
        for shard in shards:
            print(
                f"drift Indexed Job, {shard['shards']} pod(s) at once: {shard['wall_s']:6.1f} s "
                f"wall, {shard['cpu_s']:6.1f} CPU s, peak RSS per pod "
                f"{', '.join(map(str, shard['peak_mib']))} MiB, merged result identical to "
                f"one pod's: {shard['same']}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--numeric", type=int, default=50)
    parser.add_argument("--reference-rows", type=int, default=100_000)
    parser.add_argument("--current-rows", type=int, default=1_000_000)
    parser.add_argument("--exact-columns", type=int, default=10)
    parser.add_argument("--parts", type=int, default=10, help="log files in the Job's window")
    parser.add_argument("--no-job", dest="job", action="store_false")
    parser.add_argument("--no-evidently", dest="evidently", action="store_false")
    parser.add_argument(
        "--no-decisions", dest="decisions", action="store_false", help="skip the FP/power tables"
    )
    parser.add_argument("--evidently-version", default=_evidently_version())
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}, numpy {np.__version__}, load average {_load()}")
    with tempfile.TemporaryDirectory(prefix="bench-drift-") as tmp:
        variant("numeric", args, 0, Path(tmp))
        variant("numeric + categorical", args, 10, Path(tmp))
    if args.decisions:
        drift_decisions.main([])


def _load() -> str:
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def _evidently_version() -> str:
    python = ROOT / ".venv-bench" / "bin" / "python"
    if not python.exists():
        return "(not installed)"
    out = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('evidently'))"],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.strip()


if __name__ == "__main__":
    main()
