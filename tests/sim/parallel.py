"""The long simulation in several processes at once: SEQUENCES split among JOBS
pytest processes, each drawing its own sequences from its own seed. Each seed is
printed, so a failing process replays exactly with `--hypothesis-seed=<seed>`
and the same TRAILBOSS_SIM_SEQUENCES and TRAILBOSS_SIM_STEPS; a failure is kept
in TRAILBOSS_SIM_DATABASE (shared, it is safe for concurrent use) and replays first.

    python -m tests.sim.parallel --jobs 4 --sequences 20000 --steps 50
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

TAIL = 6000
"""Characters of a failing process's output shown: the shrunk steps and the assertion."""


@dataclass
class Job:
    seed: int
    log: Path
    process: subprocess.Popen[bytes]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--sequences", type=int, default=20000)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--seed", type=int, help="the first job's seed (default: a new one)")
    parser.add_argument("--logs", type=Path, default=Path(".hypothesis/simulate"))
    args = parser.parse_args(argv)
    first = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    share = -(-args.sequences // args.jobs)  # rounded up: at least SEQUENCES in all
    args.logs.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    jobs = [_start(first + n, share, args.steps, args.logs) for n in range(args.jobs)]
    print(f"{args.jobs} processes x {share} sequences of up to {args.steps} steps, seeds "
          f"{first}..{first + args.jobs - 1}; logs in {args.logs}/", flush=True)  # fmt: skip
    failed = [job for job in jobs if not _passed(job, share, args.steps)]
    print(f"{len(jobs) - len(failed)} of {len(jobs)} passed in {time.monotonic() - started:.0f}s")
    return 1 if failed else 0


def _start(seed: int, sequences: int, steps: int, logs: Path) -> Job:
    env = {
        **os.environ,
        "TRAILBOSS_SIM_SEQUENCES": str(sequences),
        "TRAILBOSS_SIM_STEPS": str(steps),
        "TRAILBOSS_SIM_RANDOM": "1",
    }
    command = [sys.executable, "-m", "pytest", "tests/sim/test_simulation.py", "-q",
               "-p", "no:cacheprovider", f"--hypothesis-seed={seed}"]  # fmt: skip
    log = logs / f"seed-{seed}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    return Job(seed, log, process)


def _passed(job: Job, sequences: int, steps: int) -> bool:
    if job.process.wait() == 0:
        print(f"seed {job.seed}: passed")
        return True
    print(f"seed {job.seed}: FAILED; replay with TRAILBOSS_SIM_SEQUENCES={sequences} "
          f"TRAILBOSS_SIM_STEPS={steps} TRAILBOSS_SIM_RANDOM=1 python -m pytest "
          f"tests/sim/test_simulation.py --hypothesis-seed={job.seed}")  # fmt: skip
    print(job.log.read_text(errors="replace")[-TAIL:])
    return False


if __name__ == "__main__":
    sys.exit(main())
