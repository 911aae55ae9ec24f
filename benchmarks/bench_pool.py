"""Benchmark: `fdkit pool` and then `fdkit report --pooled` for three sites of about 150 people.

Target (issue 22): at most 20 s wall for the two commands together on the 2-core machine, from
the command line (so Python start-up and imports count). The three sites are synthetic towns of
the default scenario at its own base rate (`fdkit synth --site NAME --seed S --base-rate 1`),
each screened, randomised and sealed on its own; making them is not timed.

Run:  .venv/bin/python benchmarks/bench_pool.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET = 20.0
TOWNS = {"northbridge": 11, "eastwick": 12, "southmoor": 13}


def fdkit(*arguments: str) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "fdkit.cli", *arguments], capture_output=True, text=True)
    return time.perf_counter() - started, done


def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        options = []
        for name, seed in TOWNS.items():
            _, done = fdkit("synth", "--site", name, "--seed", str(seed), "--base-rate", "1", "--out", str(root / name))
            if done.returncode != 0:
                print(done.stderr)
                return 1
            options += ["--site", f"{name}={root / name}"]
        people = sum(len((root / name / "allocation.csv").read_text().splitlines()) - 1 for name in TOWNS)
        pool_wall, done = fdkit("pool", *options, "--out", str(root / "pooled"))
        if done.returncode != 0:
            print(done.stderr)
            return 1
        report_wall, done = fdkit("report", "--pooled", str(root / "pooled"), "--out", str(root / "report.html"))
        if done.returncode != 0:
            print(done.stderr)
            return 1
    total = pool_wall + report_wall
    print(
        f"three sites, {people} people randomised: fdkit pool {pool_wall:.1f} s, fdkit report --pooled "
        f"{report_wall:.1f} s; together {total:.1f} s wall (target <= {TARGET:.0f} s: "
        f"{'met' if total <= TARGET else 'NOT met'})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
