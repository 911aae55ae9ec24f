"""Interval bounds are grid points decided by accept/reject steps: identical under any BLAS thread count."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SHIPPED = Path(__file__).resolve().parents[1] / "synthetic"

SCRIPT = f"""
from fdkit import analysis, outcomes, randomise
from fdkit.records import load_records

records = load_records({str(SHIPPED)!r})
frame = outcomes.build_frame(records, randomise.read_allocation({str(SHIPPED / "allocation.csv")!r}))
for outcome in ("harm_suspect", "knife_suspect"):
    for method in (analysis.ratio_of_means, analysis.poisson_robust, analysis.welch_t):
        effect = method(frame, outcome)
        print(outcome, method.__name__, repr(effect.ci_low), repr(effect.ci_high), repr(effect.p_value))
"""


def _run(threads: str) -> str:
    environment = {
        **os.environ,
        "OPENBLAS_NUM_THREADS": threads,
        "OMP_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
    }
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=environment, capture_output=True, text=True, check=True)
    return done.stdout


@pytest.mark.slow
def test_bounds_are_grid_points_and_identical_under_one_and_two_blas_threads():
    one, two = _run("1"), _run("2")
    assert one == two
    for line in one.splitlines():
        for bound in map(float, line.split()[2:4]):
            assert bound == round(bound * 10) / 10, line
