"""False positives and power of every drift method, as `make bench-drift` prints them.

False positives: windows drawn from the reference's own distribution (a
standard normal numeric feature; a categorical one with shares 40/30/20/10 %;
a two-category one with 70/30 % for the z-test), each checked against one
100,000-row reference with the default spec; the share of windows that drift.
Power: the same with the window's mean shifted by 0.1, 0.25 and 0.5 sd, and
with a category the reference never saw taking 5 % or 20 % of the rows.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from trailboss.api.monitoring import DriftMethod, MonitoringSpec
from trailboss.drift import decision, verdict
from trailboss.drift.columns import (
    CategoricalCurrent,
    Current,
    NumericCurrent,
    Reference,
    categorical_reference,
    numeric_reference,
)

NUMERIC_METHODS = ("psi", "jensen-shannon", "wasserstein", "ks", "chi-square", "auto")
CATEGORICAL_METHODS = ("psi", "jensen-shannon", "chi-square", "z-test", "auto")
CATEGORIES = ["amber", "blue", "green", "red"]
SHARES = np.array([0.1, 0.2, 0.3, 0.4])
BINARY = ["no", "yes"]
BINARY_SHARES = np.array([0.7, 0.3])
SIZES = (1_000, 10_000, 100_000, 1_000_000)

Window = Callable[[np.random.Generator, int], Current]


def drifted(method: str, ref: Reference, cur: Current) -> tuple[bool, str]:
    """The verdict and the method used for one feature, with the default spec."""
    spec = MonitoringSpec(method=DriftMethod(method))
    feature = decision.decide(spec, [verdict.check_feature(spec, "x", ref, cur)])[0]
    return feature.drifted, str(feature.method)


def numeric_window(shift: float) -> Window:
    def draw(rng: np.random.Generator, rows: int) -> Current:
        values = rng.standard_normal(rows)
        values += shift
        values.sort()
        return NumericCurrent(values)

    return draw


def categorical_window(categories: list[str], shares: np.ndarray, new_share: float) -> Window:
    """Rows per category; a category the reference never saw takes `new_share`."""
    labels = [*categories, "violet"] if new_share else categories
    p = np.concatenate((shares * (1 - new_share), [new_share])) if new_share else shares

    def draw(rng: np.random.Generator, rows: int) -> Current:
        counts = rng.multinomial(rows, p).astype(np.int64)
        return CategoricalCurrent(tuple(labels), counts)

    return draw


def rates(
    methods: tuple[str, ...],
    ref: Reference,
    window: Window,
    windows: dict[int, int],
    rng: np.random.Generator,
) -> dict[str, dict[int, tuple[float, str]]]:
    """Share of drifted windows per method and window size; each window is drawn
    once and checked by every method."""
    out: dict[str, dict[int, tuple[float, str]]] = {m: {} for m in methods}
    for rows, count in windows.items():
        hits = dict.fromkeys(methods, 0)
        used: dict[str, set[str]] = {m: set() for m in methods}
        for _ in range(count):
            cur = window(rng, rows)
            for method in methods:
                verdict_, method_used = drifted(method, ref, cur)
                hits[method] += verdict_
                used[method].add(method_used)
        for method in methods:
            out[method][rows] = (hits[method] / count, ",".join(sorted(used[method])))
    return out


def table(
    title: str, results: dict[str, dict[int, tuple[float, str]]], windows: dict[int, int]
) -> None:
    print(f"\n{title}")
    header = "".join(f"{f'{rows:,} rows ({count:,})':>22}" for rows, count in windows.items())
    print(f"{'method':<26}{header}")
    for method, by_size in results.items():
        used = {u for _, u in by_size.values()}
        name = method if used == {method} or method == "auto" else f"{method} -> {'/'.join(used)}"
        if method == "auto":
            name = f"auto ({'/'.join(sorted(used))})"
        cells = "".join(f"{by_size[rows][0]:>22.1%}" for rows in windows)
        print(f"{name:<26}{cells}")


def main(argv: list[str] | None = None) -> dict[str, dict[str, dict[int, float]]]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reference-rows", type=int, default=100_000)
    parser.add_argument("--windows", type=int, default=1000, help="null windows per size")
    parser.add_argument("--windows-1m", type=int, default=100, help="null windows of 1M rows")
    parser.add_argument("--power-windows", type=int, default=200)
    parser.add_argument("--power-windows-1m", type=int, default=20)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(2027)
    started = time.perf_counter()
    null_windows = {n: args.windows if n < 1_000_000 else args.windows_1m for n in SIZES}
    power_windows = {
        n: args.power_windows if n < 1_000_000 else args.power_windows_1m for n in SIZES
    }
    numeric = numeric_reference(rng.standard_normal(args.reference_rows), 100_000)
    counts = rng.multinomial(args.reference_rows, SHARES)
    categorical = categorical_reference(CATEGORIES, [int(c) for c in counts])
    binary_counts = rng.multinomial(args.reference_rows, BINARY_SHARES)
    binary = categorical_reference(BINARY, [int(c) for c in binary_counts])
    print(
        f"\n## Drift decisions: {args.reference_rows:,}-row reference, default spec "
        "(score > 0.1 and p < 0.05); the number of windows per size is in brackets"
    )
    if args.windows_1m < args.windows:
        print(
            f"(1M-row windows: {args.windows_1m} null and {args.power_windows_1m} shifted "
            "windows instead of the others' counts, to keep the run short)"
        )
    results: dict[str, dict[str, dict[int, float]]] = {}

    def record(label: str, found: dict[str, dict[int, tuple[float, str]]]) -> None:
        results[label] = {m: {n: r for n, (r, _) in by.items()} for m, by in found.items()}

    fp = rates(NUMERIC_METHODS, numeric, numeric_window(0.0), null_windows, rng)
    table("False positives, numeric N(0, 1) against itself", fp, null_windows)
    record("fp numeric", fp)
    fp_c = rates(
        (*CATEGORICAL_METHODS[:3], "auto"),
        categorical,
        categorical_window(CATEGORIES, SHARES, 0.0),
        null_windows,
        rng,
    )
    table("False positives, categorical 10/20/30/40 % against itself", fp_c, null_windows)
    record("fp categorical", fp_c)
    fp_b = rates(
        ("z-test",), binary, categorical_window(BINARY, BINARY_SHARES, 0.0), null_windows, rng
    )
    table("False positives, two categories 70/30 % against itself", fp_b, null_windows)
    record("fp binary", fp_b)
    for shift in (0.1, 0.25, 0.5):
        power = rates(NUMERIC_METHODS, numeric, numeric_window(shift), power_windows, rng)
        table(f"Power, numeric mean shifted by {shift} sd", power, power_windows)
        record(f"power {shift} sd", power)
    for share in (0.05, 0.2):
        power = rates(
            CATEGORICAL_METHODS,
            categorical,
            categorical_window(CATEGORIES, SHARES, share),
            power_windows,
            rng,
        )
        table(f"Power, a new category taking {share:.0%} of the rows", power, power_windows)
        record(f"power new {share:.0%}", power)
    summarize(results)
    print(f"(decision tables took {time.perf_counter() - started:.0f} s)")
    return results


def summarize(results: dict[str, dict[str, dict[int, float]]]) -> None:
    """The two targets: false positives at most 1 % at every size, a 0.5 sd
    shift found in at least 99 % of windows of 10,000 rows or more."""
    worst_fp = max(
        rate
        for label, by_method in results.items()
        if label.startswith("fp")
        for by_size in by_method.values()
        for rate in by_size.values()
    )
    weakest = min(
        rate
        for by_size in results["power 0.5 sd"].values()
        for rows, rate in by_size.items()
        if rows >= 10_000
    )
    print(f"largest false-positive rate: {worst_fp:.1%} (target <= 1%): {worst_fp <= 0.01}")
    print(
        f"smallest share of 0.5 sd shifts found in windows >= 10,000 rows: {weakest:.1%} "
        f"(target >= 99%): {weakest >= 0.99}"
    )


if __name__ == "__main__":
    main()
