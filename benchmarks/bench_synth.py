"""Benchmark: the synthetic generator at police-force scale.

Target (issue: foundation): 1,000,000 people with 5-10 million events over five years in
at most 60 s on a 2-core machine, with peak memory reported.

Run:  .venv/bin/python benchmarks/bench_synth.py [--write]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time

TARGET_SECONDS = 60.0


def peak_rss_gib() -> float:
    """Peak resident memory of this process so far (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1 << 30 if sys.platform == "darwin" else 1 << 20)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="also time writing the CSV files")
    args = parser.parse_args()

    from fdkit import synth

    scenario = synth.load_scenario("force")
    before = peak_rss_gib()
    started = time.perf_counter()
    result = synth.generate(scenario)
    seconds = time.perf_counter() - started
    events = len(result.records.events)
    print(
        f"scenario            {scenario.name}: {scenario.population:,} people simulated, "
        f"{scenario.start} to {scenario.end}"
    )
    print(f"recorded persons    {len(result.records.persons):,}")
    print(f"events              {events:,}")
    print(
        f"generation time     {seconds:.1f} s   (target <= {TARGET_SECONDS:.0f} s: "
        f"{'met' if seconds <= TARGET_SECONDS else 'NOT met'})"
    )
    print(f"peak memory         {peak_rss_gib():.2f} GiB resident (process, {before:.2f} GiB before generating)")
    if not 5_000_000 <= events <= 10_000_000:
        print("warning: the force scenario no longer gives 5-10 million events")
    if args.write:
        from fdkit.records import write_records

        with tempfile.TemporaryDirectory() as folder:
            started = time.perf_counter()
            write_records(result.records, folder)
            print(f"writing CSV files   {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
