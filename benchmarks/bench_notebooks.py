"""Benchmark: how long each notebook takes to run, and the whole nbval suite.

Targets (issue: teaching layer), on a 2-core machine: each notebook executes in at most
30 s, and the nbval suite over every notebook finishes in at most 3 minutes.

Run:  .venv/bin/python benchmarks/bench_notebooks.py
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PER_NOTEBOOK, SUITE = 30.0, 180.0


def main() -> int:
    import nbformat

    from fdkit.report import execute_notebook

    slowest = 0.0
    print(f"{'notebook':<36}{'seconds':>8}")
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        document = nbformat.read(path, as_version=4)
        started = time.perf_counter()
        execute_notebook(document, path.parent)
        seconds = time.perf_counter() - started
        slowest = max(slowest, seconds)
        print(f"{path.name:<36}{seconds:>8.1f}{'' if seconds <= PER_NOTEBOOK else '   over target'}", flush=True)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "notebooks"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    suite = time.perf_counter() - started
    print(
        f"\nslowest notebook {slowest:.1f} s "
        f"(target <= {PER_NOTEBOOK:.0f} s: {'met' if slowest <= PER_NOTEBOOK else 'NOT met'})"
    )
    print(
        f"nbval suite      {suite:.1f} s (target <= {SUITE:.0f} s: {'met' if suite <= SUITE else 'NOT met'}); "
        f"{done.stdout.strip().splitlines()[-1] if done.stdout.strip() else 'no output'}"
    )
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
