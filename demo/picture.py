"""The demo's picture: traffic by version, drift per check and the milestones
of the loop on one time axis, as a PNG."""

from __future__ import annotations

import collections
from pathlib import Path

from e2e.loop import Timeline
from e2e.serving import Answer

BUCKET_SECONDS = 5.0
COLOURS = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3"]


def traffic_shares(
    answers: list[Answer], start: float
) -> tuple[list[float], dict[str, list[float]]]:
    """Share of successful answers per version in buckets of BUCKET_SECONDS."""
    buckets: dict[int, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for answer in answers:
        if answer.ok and answer.version:
            buckets[int((answer.at - start) // BUCKET_SECONDS)][answer.version] += 1
    if not buckets:
        return [], {}
    order = list(dict.fromkeys(a.version for a in answers if a.ok and a.version))
    times: list[float] = []
    shares: dict[str, list[float]] = {v: [] for v in order}
    for index in range(min(buckets), max(buckets) + 1):
        counted = buckets.get(index, collections.Counter())
        total = sum(counted.values())
        times.append((index + 0.5) * BUCKET_SECONDS)
        for version in order:
            shares[version].append(100.0 * counted[version] / total if total else float("nan"))
    return times, shares


def draw(timeline: Timeline, answers: list[Answer], path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    start = timeline.start
    figure, (traffic, drift) = plt.subplots(
        2, 1, figsize=(12, 7.5), sharex=True, gridspec_kw={"height_ratios": [3, 2]}
    )
    times, shares = traffic_shares(answers, start)
    colour = {v: COLOURS[i % len(COLOURS)] for i, v in enumerate(shares)}
    if times:
        traffic.stackplot(
            times,
            *shares.values(),
            labels=list(shares),
            colors=[colour[v] for v in shares],
            alpha=0.85,
        )
    weights = [(s.at - start, s.weight if s.canary else None) for s in timeline.samples]
    traffic.step(
        [t for t, _ in weights],
        [w if w is not None else float("nan") for _, w in weights],
        where="post",
        color="black",
        linestyle="--",
        linewidth=1.2,
        label="canary weight set",
    )
    traffic.set_ylim(0, 100)
    traffic.set_ylabel("% of answers by version")
    failed = [a.at - start for a in answers if not a.ok]
    if failed:
        traffic.plot(failed, [2] * len(failed), "x", color="#C44E52", label="failed request")
    traffic.set_title(title, loc="left", fontsize=11, pad=16)
    traffic.legend(loc="lower left", fontsize=8, ncol=6, framealpha=0.9)

    for version in dict.fromkeys(c.version for c in timeline.checks):
        points = [
            (c.at - start, c.drift_share)
            for c in timeline.checks
            if c.version == version and c.drift_share is not None
        ]
        if points:
            drift.plot(
                [t for t, _ in points],
                [s for _, s in points],
                marker="o",
                color=colour.get(str(version), "grey"),
                label=f"checks of {version}",
            )
    drift.axhline(0.5, color="#C44E52", linestyle=":", linewidth=1, label="dataset drift at 0.5")
    drift.set_ylim(-0.05, 1.05)
    drift.set_ylabel("share of features drifted")
    drift.set_xlabel("seconds since start")
    drift.legend(loc="upper left", fontsize=8)

    captions = []
    for number, (at, text) in enumerate(timeline.marks, 1):
        for axis in (traffic, drift):
            axis.axvline(at - start, color="grey", linewidth=0.6, linestyle="-.")
        traffic.annotate(
            str(number),
            xy=(at - start, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(0, 3),
            textcoords="offset points",
            ha="center",
            fontsize=8,
            color="dimgrey",
        )
        captions.append(f"{number}. [{at - start:5.0f}s] {text}")
    figure.text(0.01, 0.01, "\n".join(captions), fontsize=7.5, family="monospace", va="bottom")
    figure.subplots_adjust(left=0.07, right=0.98, top=0.95, bottom=0.12 + 0.018 * len(captions))
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
