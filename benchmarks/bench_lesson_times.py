"""Benchmark: how long each notebook takes a learner, by the model in ``fdkit.lessons``.

Reading at 200 words a minute (plus code at 10 lines a minute), running (measured execution plus
10 s a cell) and the exercises (3 min to read each, 1 min per line of its model answer, 2 min to
interpret; 6 min for a written one; 1 min per "predict, then run" question), rounded up to 5 min.
The baseline it compares against is the time each notebook states in its opening.

By default execution times come from the timings stored in the committed notebooks; with
``--execute`` every notebook is run again here and timed afresh (slower; use ``nice``).

Run:  .venv/bin/python benchmarks/bench_lesson_times.py [--execute]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    import nbformat

    from fdkit.lessons import lesson_time, stated_minutes

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--execute", action="store_true", help="run each notebook again and time it afresh")
    args = parser.parse_args(argv)

    header = (
        f"{'notebook':<34}{'words':>6}{'code':>6}{'ex':>4}{'pred':>5}{'run s':>7}"
        f"{'read':>7}{'run':>6}{'exer':>6}{'total':>7}{'stated':>8}"
    )
    print(header)
    print("-" * len(header))
    mismatched = 0
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        document = nbformat.read(path, as_version=4)
        if args.execute:
            from fdkit.report import execute_notebook

            execute_notebook(document, path.parent)
        time = lesson_time(document)
        stated = stated_minutes(document)
        flag = "" if stated == time.total else "  <- differs"
        mismatched += bool(flag)
        print(
            f"{path.stem:<34}{time.words:>6}{time.code_lines:>6}{time.exercises:>4}{time.predictions:>5}"
            f"{time.execution_seconds:>7.1f}{time.reading:>7.1f}{time.running:>6.1f}{time.exercising:>6.1f}"
            f"{time.total:>7}{stated if stated is not None else '-':>8}{flag}",
            flush=True,
        )
    print(
        "\nminutes: read = words/200 + code lines/10; run = (execution s + 10 s per cell)/60; "
        "exer = exercises and predictions; total rounded up to 5."
    )
    print(f"notebooks whose stated time differs from the measured one: {mismatched}")

    # Part of a notebook that the trainer guide's 3-hour plan uses on its own.
    path = ROOT / "notebooks" / "02_synthetic_cohort.ipynb"
    if path.is_file():
        cells = nbformat.read(path, as_version=4).cells
        start = next(i for i, c in enumerate(cells) if c.source.startswith("## 3. Bursts"))
        end = next(i for i, c in enumerate(cells) if c.source.startswith("## 4. "))
        setup = [c for c in cells[:start] if c.cell_type == "code"][:2]  # imports + generating the town
        part = lesson_time({"cells": setup + cells[start:end]})
        print(
            f"\n02 section 3 only (regression to the mean, with the two set-up cells): {part.words} words, "
            f"read {part.reading:.1f} + run {part.running:.1f} + predict {part.exercising:.1f} min = {part.total} min"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
