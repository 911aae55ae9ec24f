"""Benchmark: ``fdkit analyse`` on the shipped trial, whole command, against a naive scipy/statsmodels loop.

Target (issue 10), on a quiet 2-core machine: the whole command (start-up, loading the
records, building the frame, every method of the shipped trial's sealed analysis plan for every
outcome and subgroup with the plan's re-draws, 4,000 since the tests became equal-tailed,
writing the table) <= 5 s.

Baseline: the same statistical work done the naive way, set-up included: for each outcome
and subgroup, the ratio of means' interval found by calling ``scipy.stats.permutation_test``
(2,000 resamples, Welch's t) at every step of the same grid search, and the robust Poisson
interval by refitting a statsmodels GLM at every step and forming the n x n projection (what
fdkit did before). The baseline's p-values are unstratified (scipy has no strata), so only its
time is compared.

Run:  .venv/bin/python benchmarks/bench_analyse.py [--repeats 3] [--naive-outcomes 2]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "synthetic"
TARGET = 5.0


def fdkit_command() -> list[str]:
    script = Path(sys.executable).with_name("fdkit")
    return [str(script)] if script.exists() else [shutil.which("fdkit") or "fdkit"]


def time_command(repeats: int) -> list[float]:
    times = []
    with tempfile.TemporaryDirectory() as folder:
        for number in range(repeats):
            command = [
                *fdkit_command(),
                "analyse",
                "--records",
                str(SHIPPED),
                "--allocation",
                str(SHIPPED / "allocation.csv"),
                "--out",
                str(Path(folder) / f"results{number}.csv"),
            ]
            started = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True)
            times.append(time.perf_counter() - started)
    return times


def naive(outcome_limit: int) -> tuple[float, int]:
    """The naive loop; returns its wall time and the number of (outcome, subgroup) pairs it did."""
    started = time.perf_counter()
    import numpy as np
    import statsmodels.api as sm
    from scipy import stats

    from fdkit import analysis, outcomes, randomise
    from fdkit.records import load_records

    frame = outcomes.build_frame(load_records(SHIPPED), randomise.read_allocation(SHIPPED / "allocation.csv"))
    pairs = 0
    for outcome in outcomes.OUTCOME_NAMES[:outcome_limit]:
        for subgroup in ("all", *sorted(set(frame["stratum"]))):
            part = analysis.subgroup_frame(frame, subgroup)
            y, treated, _ = analysis._arrays(part, outcome)
            if y[treated].sum() == 0 or y[~treated].sum() == 0:
                continue
            pairs += 1

            def ratio_rejected(k, y=y, treated=treated):
                theta = (1000 - k) / 1000
                return (
                    stats.permutation_test(
                        (y[treated] / theta, y[~treated]),
                        lambda a, b, axis: stats.ttest_ind(a, b, axis=axis, equal_var=False).statistic,
                        n_resamples=2000,
                        vectorized=True,
                        random_state=1,
                    ).pvalue
                    < 0.05
                )

            estimate = analysis._grid_index(float(analysis.pct(y[treated].mean() / y[~treated].mean())))
            analysis.invert_on_grid(ratio_rejected, estimate)

            x, _ = analysis._design_matrix(part, outcome)
            assignments = analysis.permutation_assignments(
                treated, np.zeros(len(y), int), 2000, np.random.default_rng(1)
            )

            def poisson_rejected(k, y=y, x=x, assignments=assignments):
                beta = float(np.log((1000 - k) / 1000))
                z, rest = x[:, 1], np.delete(x, 1, axis=1)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    mu = sm.GLM(y, rest, family=sm.families.Poisson(), offset=beta * z).fit().mu
                residual, weighted = y - mu, rest * mu[:, None]
                projection = rest @ np.linalg.solve(rest.T @ weighted, weighted.T)
                candidates = np.vstack([z, assignments.astype(float)])
                candidates = candidates - candidates @ projection.T
                score, variance = candidates @ residual, (candidates**2) @ (residual**2)
                statistic = score**2 / variance
                return (1 + (statistic[1:] >= statistic[0]).sum()) / len(statistic) < 0.05

            fitted = sm.GLM(y, x, family=sm.families.Poisson()).fit()
            analysis.invert_on_grid(
                poisson_rejected, analysis._grid_index(float(analysis.pct(np.exp(fitted.params[1]))))
            )
    return time.perf_counter() - started, pairs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="runs of the command (default 3; the median counts)")
    parser.add_argument("--naive-outcomes", type=int, default=2, help="outcomes the naive loop does (default 2 of 7)")
    args = parser.parse_args()

    times = time_command(args.repeats)
    median = statistics.median(times)
    from fdkit.plan import read_plan

    plan = read_plan(SHIPPED / "analysis-plan.toml")
    print(
        "fdkit analyse, shipped trial (148 people, 7 outcomes x 3 subgroups x the sealed plan's methods: "
        f"{', '.join(plan.methods)}; {plan.permutations:,} re-draws)"
    )
    print(
        f"  whole command: median {median:.2f} s of {args.repeats} runs ({', '.join(f'{t:.2f}' for t in times)}); "
        f"target <= {TARGET:.0f} s: {'met' if median <= TARGET else 'NOT met'}"
    )
    seconds, pairs = naive(args.naive_outcomes)
    from fdkit import outcomes

    total_pairs = len(outcomes.OUTCOME_NAMES) * 3
    print(
        f"naive scipy/statsmodels loop (ratio of means + robust Poisson intervals only): {seconds:.1f} s for "
        f"{pairs} outcome x subgroup pairs, about {seconds / max(pairs, 1) * total_pairs:.0f} s for all {total_pairs}"
    )
    return 0 if median <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
