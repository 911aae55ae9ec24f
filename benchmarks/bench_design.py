"""Benchmark: design diagnosis by simulation, vectorised against a per-trial loop.

Targets (issue: design diagnosis and power), on a 2-core machine:
  * diagnosing the primary analysis on the trial's design (45 treated, ~105 control, two
    strata; ratio of means, randomisation p-value from 1,000 re-draws, bootstrap CI from
    1,000 resamples) for 1,000 simulated trials: <= 10 s;
  * a power curve of 8 sizes x 1,000 simulated trials: <= 60 s.
Baseline: the naive approach on the same simulated trials, one at a time:
scipy.stats.permutation_test, scipy.stats.bootstrap and a statsmodels Poisson GLM per trial.
scipy's permutation test permutes across the whole trial (it has no strata), so its p-values
differ slightly from the stratified ones; the script checks that the two agree closely.

Run:  .venv/bin/python benchmarks/bench_design.py [--naive-sims N]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings

import numpy as np

TARGET_DIAGNOSIS, TARGET_CURVE = 10.0, 60.0


def naive(trials, sims: int, outcome: str = "harm_suspect") -> dict:
    import statsmodels.api as sm
    from scipy import stats

    p_values, lows, highs = [], [], []
    for sim in range(sims):
        y = trials.follow_up[outcome][sim]
        treated, control = y[trials.treated], y[~trials.treated]
        # Two-sided as fdkit defines it: the absolute difference, large values extreme.
        test = stats.permutation_test(
            (treated, control),
            lambda a, b, axis: np.abs(np.mean(a, axis=axis) - np.mean(b, axis=axis)),
            vectorized=True,
            n_resamples=1000,
            alternative="greater",
            random_state=sim,
        )
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            interval = stats.bootstrap(
                (treated, control),
                lambda a, b, axis: np.mean(a, axis=axis) / np.mean(b, axis=axis),
                vectorized=True,
                n_resamples=1000,
                method="percentile",
                random_state=sim,
            ).confidence_interval
            x = np.column_stack(
                [
                    np.ones(y.size),
                    trials.treated.astype(float),
                    trials.strata.astype(float),
                    np.log1p(trials.baseline[outcome][sim]),
                ]
            )
            sm.GLM(y, x, family=sm.families.Poisson()).fit(cov_type="HC0")
        p_values.append(test.pvalue)
        lows.append(interval.low)
        highs.append(interval.high)
    return {"p_value": np.array(p_values), "ci_low": np.array(lows), "ci_high": np.array(highs)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--naive-sims", type=int, default=1000, help="trials for the naive loop (default 1000)")
    args = parser.parse_args()

    from fdkit import analysis, design

    print("building the synthetic superpopulation ...", flush=True)
    population = design.build_superpopulation()
    spec = design.Design(design.MILTON_KEYNES, reduction=54, interval="bootstrap", permutations=1000, resamples=1000)

    started = time.perf_counter()
    diagnosis = design.diagnose(spec, population, sims=1000, seed=1)
    fast = time.perf_counter() - started
    row = diagnosis.iloc[0]
    print(f"\ndesign: {row['n_treated']} treated, {row['n_control']} control; true reduction 54% in crime harm")
    print(
        f"fdkit.design.diagnose, 1,000 trials        {fast:7.2f} s   (target <= {TARGET_DIAGNOSIS:.0f} s: "
        f"{'met' if fast <= TARGET_DIAGNOSIS else 'NOT met'})   power {row['power']:.3f}"
    )

    sizes = [(45, 103), (68, 155), (90, 206), (135, 309), (180, 412), (270, 618), (360, 824), (450, 1030)]
    started = time.perf_counter()
    curve = design.power_curve(population, sizes, [25], sims=1000, seed=2)
    curve_seconds = time.perf_counter() - started
    print(
        f"power curve, 8 sizes x 1,000 trials        {curve_seconds:7.2f} s   (target <= {TARGET_CURVE:.0f} s: "
        f"{'met' if curve_seconds <= TARGET_CURVE else 'NOT met'})"
    )
    print("  power at a 25% reduction: " + ", ".join(f"{n}+{c}: {p:.2f}" for (n, c), p in zip(sizes, curve["power"])))

    trials = design.simulate_trials(population, spec.size, sims=1000, seed=1, effects=spec.effects())
    rng = np.random.default_rng(np.random.SeedSequence([1, 5]))
    core = analysis.ratio_of_means_core(
        trials.follow_up["harm_suspect"],
        trials.treated,
        trials.strata,
        analysis.permutation_assignments(trials.treated, trials.strata, 1000, rng),
        analysis.bootstrap_counts(trials.treated, trials.strata, 1000, rng),
    )
    sims = args.naive_sims
    started = time.perf_counter()
    slow = naive(trials, sims)
    slow_seconds = time.perf_counter() - started
    per_trial_fast = fast / 1000
    print(f"naive loop (scipy + statsmodels), {sims:,} trials {slow_seconds:7.2f} s")
    print(f"speed-up per trial: {slow_seconds / sims / per_trial_fast:.0f}x")

    agree_p = np.corrcoef(core["p_value"][:sims], slow["p_value"])[0, 1]
    power_fast, power_slow = np.mean(core["p_value"][:sims] < 0.05), np.mean(slow["p_value"] < 0.05)
    finite = np.isfinite(core["ci_high"][:sims]) & np.isfinite(slow["ci_high"])
    gap = np.median(np.abs(np.log(core["ci_low"][:sims][finite] / slow["ci_low"][finite])))
    print(
        f"\nagreement on the same {sims:,} trials: correlation of p-values {agree_p:.3f}; "
        f"power {power_fast:.3f} v. {power_slow:.3f}; median gap in the lower CI limit {100 * gap:.1f}%"
    )
    agree = agree_p > 0.9 and abs(power_fast - power_slow) < 0.04 and gap < 0.15
    print(f"the two implementations agree: {'yes' if agree else 'NO'}")
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
