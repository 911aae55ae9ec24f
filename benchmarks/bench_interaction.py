"""Benchmark: ``analysis.interaction_test`` on the shipped trial, per outcome, 2,000 re-draws.

Target (issue 10, build item 5): the confidence-set ("supremum") version, the default, should
take no more than about 1 s per outcome with 2,000 re-draws of the design, so that
``fdkit analyse``, ``fdkit report`` and notebook 07 do not get noticeably slower.

Baseline: the plug-in version (``method="plug-in"``), one p-value at the estimated common ratio,
which is what the kit ran before the supremum version became the default. On code without the
``method`` keyword the script times the plug-in version alone.

Run:  .venv/bin/python benchmarks/bench_interaction.py [--repeats 3] [--permutations 2000]
"""

from __future__ import annotations

import argparse
import inspect
import time
from functools import partial
from pathlib import Path

import fdkit
from fdkit import analysis, outcomes, randomise

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "synthetic"
TARGET = 1.0


def best_time(call, repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - started)
    return min(times), result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--permutations", type=int, default=2000)
    options = parser.parse_args()
    records = fdkit.load_records(SHIPPED)
    frame = outcomes.build_frame(records, randomise.read_allocation(SHIPPED / "allocation.csv"))
    has_method = "method" in inspect.signature(analysis.interaction_test).parameters
    methods = ["plug-in", "supremum"] if has_method else [None]
    print(f"interaction_test, shipped trial, {options.permutations:,} re-draws, best of {options.repeats}")
    totals = dict.fromkeys(methods, 0.0)
    for outcome in outcomes.OUTCOME_NAMES:
        if outcome not in frame:
            continue
        for method in methods:
            keywords = {"method": method} if method else {}
            call = partial(analysis.interaction_test, frame, outcome, permutations=options.permutations, **keywords)
            seconds, result = best_time(call, options.repeats)
            totals[method] += seconds
            row = result.iloc[0]
            label = method or "plug-in (no method keyword)"
            print(f"  {outcome:20s} {label:28s} {seconds:6.3f} s   p = {row['p_value']:.3f}   {row['note']}")
    for method, seconds in totals.items():
        print(f"total {method or 'plug-in'}: {seconds:.2f} s")
    if has_method:
        print(f"supremum minus plug-in (the baseline): {totals['supremum'] - totals['plug-in']:.2f} s in all")
    print(f"target: at most about {TARGET:.0f} s per outcome")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
