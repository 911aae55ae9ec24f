"""Benchmark: how long `fdkit report` takes on the shipped trial, as a user runs it.

Target (issue: trial report): at most 15 s wall on the shipped synthetic trial, from the
command line (so Python start-up and imports count). Baseline: the earlier report, which ran
notebook 09 through a Jupyter kernel, took 38-41 s and printed kernel warnings on stderr.
The script also prints the CPU time of each stage, which varies less on a shared machine.

Run:  .venv/bin/python benchmarks/bench_report.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET, BASELINE = 15.0, 40.0


def main() -> int:
    shipped = ROOT / "synthetic"
    with tempfile.TemporaryDirectory() as folder:
        command = [
            sys.executable,
            "-m",
            "fdkit.cli",
            "report",
            "--records",
            str(shipped),
            "--allocation",
            str(shipped / "allocation.csv"),
            "--funnel",
            str(shipped / "funnel.csv"),
            "--out",
            str(Path(folder) / "report.html"),
        ]
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True)
        wall = time.perf_counter() - started
    if done.returncode != 0:
        print(done.stderr)
        return 1

    from fdkit import report
    from fdkit.report_html import report_to_html

    settings = report.ReportSettings(shipped, shipped / "allocation.csv", shipped / "funnel.csv")
    cpu = time.process_time()
    built = report.build_report(settings)
    stages = {name: seconds for name, seconds in built.timings.items()}
    before = time.process_time()
    report_to_html(built)
    stages["page"] = time.process_time() - before
    print("stage wall seconds (in-process): " + ", ".join(f"{k} {v:.1f}" for k, v in stages.items()))
    print(f"CPU for computing and laying out the report in-process: {time.process_time() - cpu:.1f} s")
    print(
        f"fdkit report, command line: {wall:.1f} s wall (target <= {TARGET:.0f} s: "
        f"{'met' if wall <= TARGET else 'NOT met'}; baseline through a notebook kernel about {BASELINE:.0f} s); "
        f"stderr {'empty' if not done.stderr else 'NOT empty'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
