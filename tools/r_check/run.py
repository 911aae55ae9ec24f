"""Cross-check fdkit's statistics against R (coin, sandwich and base R), independently.

Run from the repository root::

    .venv/bin/python tools/r_check/run.py                  # everything (about 4 minutes on one core)
    .venv/bin/python tools/r_check/run.py --no-simulation  # the quick comparisons only

It needs ``Rscript`` with the R packages coin and sandwich (Debian:
``apt-get install r-base-core r-cran-coin r-cran-sandwich``). It builds the shipped synthetic
trial's outcome frame with fdkit, writes it to a temporary CSV, has R compute every figure from
its own definition (``crosscheck.R``; nothing in R calls or copies fdkit), and compares, for
each outcome:

- the stratified randomisation test's p-value: fdkit's unstudentised statistic against coin's
  ``independence_test(y ~ arm | block, distribution = approximate())`` (same test, different
  random re-draws), and fdkit's studentised (Welch-type) statistic, the primary test, against
  the same test written out in R (coin's statistics are linear, so it cannot studentise this
  way). Both sides are Monte Carlo estimates: they agree when ``|z| <= 3``, with ``z`` the
  difference over the root of the two squared Monte Carlo SEs;
- Welch's t-test p-value (``t.test``) and Fieller's interval for the ratio of means, solved in
  R from the quadratic. fdkit's bounds are the outermost non-rejected points of a 0.1-point grid,
  so each must lie within 0.1 point inside R's;
- the robust Poisson model (``glm`` and ``sandwich::vcovHC``): point estimate to 1e-6, and
  fdkit's HC1 sandwich SE against R's HC1 (and HC0 scaled by ``n / (n - p)``);
- the Mann-Whitney p-value against ``wilcox.test(exact = FALSE, correct = TRUE)``;

and, by simulation on trials drawn from fdkit's superpopulation with no effect, the 5%
rejection rates of coin's stratified test and of fdkit's tests on the same trials, with their
Monte Carlo SEs and agreement.

It prints a table of every comparison with its verdict and exits 1 if any disagrees beyond
its tolerance (2 if R or a package is missing). See ``docs/checked-against-r.md``.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
REPOSITORY = HERE.parent.parent
OUTCOMES = ("harm_suspect", "knife_suspect", "violence_suspect")
R_PACKAGES = ("coin", "sandwich")
Z_TOLERANCE = 3.0

__all__ = [
    "Comparison",
    "OUTCOMES",
    "missing_r",
    "quick_comparisons",
    "shipped_frame",
    "simulation_comparisons",
]


@dataclass(frozen=True)
class Comparison:
    """One figure computed by fdkit and by R, the gap between them and whether it is within tolerance.

    ``agree`` is None for figures shown for information only (no verdict).
    """

    outcome: str
    quantity: str
    fdkit: float
    r: float
    difference: str
    tolerance: str
    agree: bool | None


def missing_r() -> str:
    """Why the check cannot run here ('' when ``Rscript`` and every R package needed are present)."""
    if shutil.which("Rscript") is None:
        return "Rscript is not installed (Debian: apt-get install r-base-core r-cran-coin r-cran-sandwich)"
    probe = "; ".join(f"if (!requireNamespace('{name}', quietly = TRUE)) cat('{name} ')" for name in R_PACKAGES)
    absent = subprocess.run(["Rscript", "-e", probe], capture_output=True, text=True, check=False).stdout.split()
    return f"R packages missing: {', '.join(absent)} (Debian: r-cran-<name>)" if absent else ""


def _rscript(script: str, *arguments) -> None:
    done = subprocess.run(
        ["Rscript", "--vanilla", str(HERE / script), *map(str, arguments)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{script} failed (exit {done.returncode}):\n{done.stderr}")


def shipped_frame() -> pd.DataFrame:
    """The shipped synthetic trial's outcome frame, built as ``fdkit analyse`` builds it."""
    from fdkit import outcomes, randomise
    from fdkit.records import load_records

    shipped = REPOSITORY / "synthetic"
    checked = randomise.check_sealed(shipped / "allocation.csv", None, unsealed=False)
    return outcomes.build_frame(load_records(shipped), checked.allocation)


def _blocks(frame: pd.DataFrame) -> pd.Series:
    """Wave x stratum, the cells the allocation was drawn in (as fdkit's re-draws use them)."""
    wave = frame["wave"].astype(str) if "wave" in frame else "1"
    return wave + ":" + frame["stratum"].astype(str)


def _monte_carlo(outcome, quantity, p_fdkit, se_fdkit, p_r, se_r) -> Comparison:
    spread = np.hypot(se_fdkit, se_r)
    z = (p_fdkit - p_r) / spread if spread > 0 else (0.0 if p_fdkit == p_r else np.inf)
    return Comparison(
        outcome,
        quantity,
        p_fdkit,
        p_r,
        f"{p_fdkit - p_r:+.4f} (MC SEs {se_fdkit:.4f}, {se_r:.4f}; z {z:+.2f})",
        f"|z| <= {Z_TOLERANCE:g}",
        bool(abs(z) <= Z_TOLERANCE),
    )


def _close(outcome, quantity, ours, theirs, absolute, relative=0.0) -> Comparison:
    gap = ours - theirs
    limit = absolute + relative * abs(theirs)
    tolerance = f"|diff| <= {absolute:g}" + (f" + {relative:g} x |R|" if relative else "")
    return Comparison(outcome, quantity, ours, theirs, f"{gap:+.3g}", tolerance, bool(abs(gap) <= limit))


def _grid_bound(outcome, quantity, ours, theirs, inward: int) -> Comparison:
    """A grid bound must lie within one 0.1-point step inside the exact bound (``inward`` = +1 or -1)."""
    if not np.isfinite(theirs):
        agree = not np.isfinite(ours) or ours == 100.0
        return Comparison(outcome, quantity, ours, theirs, "unbounded", "both unbounded", agree)
    step = inward * (ours - theirs)
    return Comparison(
        outcome,
        quantity,
        ours,
        theirs,
        f"{ours - theirs:+.4f}",
        "within 0.1 pp inside R's",
        bool(-1e-9 <= step <= 0.1 + 1e-9),
    )


def _design_matrix(frame: pd.DataFrame, outcome: str) -> np.ndarray:
    """``1, treated, stratum dummies (first sorted stratum left out), log(1 + baseline)``: R's model."""
    columns = [np.ones(len(frame)), (frame["arm"] == "treatment").to_numpy(dtype=float)]
    for stratum in sorted(set(frame["stratum"]))[1:]:
        columns.append((frame["stratum"] == stratum).to_numpy(dtype=float))
    columns.append(np.log1p(frame[f"{outcome}_baseline"].to_numpy(dtype=float)))
    return np.column_stack(columns)


def _edge_points(low: float, high: float) -> list[tuple[int, bool]]:
    """Grid points (k: a k / 10 % reduction) at each finite edge of an interval: ``(k, inside)``.

    ``low`` and ``high`` are the interval's grid indices (infinite where a side is unbounded).
    """
    points = []
    if np.isfinite(low):
        points += [(int(low), True), (int(low) - 1, False)]
    if np.isfinite(high):
        points += [(int(high), True), (int(high) + 1, False)]
    return points


def _grid(ratio_low: float, ratio_high: float) -> tuple[float, float]:
    """A ratio interval as grid indices of the % reduction: ``(low, high)``, infinite where unbounded."""
    low = round(1000 * (1 - ratio_high)) if np.isfinite(ratio_high) else -np.inf
    high = round(1000 * (1 - ratio_low)) if ratio_low > 0 else np.inf
    return low, high


def quick_comparisons(
    frame: pd.DataFrame,
    *,
    outcomes: tuple[str, ...] = OUTCOMES,
    permutations: int = 20_000,
    resamples: int = 20_000,
    given_draws: int = 2000,
    seed: int = 20231101,
) -> list[Comparison]:
    """Compare fdkit with R on one outcome frame (no simulation).

    ``permutations`` are fdkit's re-draws, ``resamples`` R's, for each randomisation test
    drawn independently on each side. ``given_draws`` re-draws made by fdkit are also handed
    to R, where the same tests on the same re-draws must give exactly the same p-values.
    """
    from fdkit import analysis

    frame = frame.sort_values("person_id", ignore_index=True)
    treated = (frame["arm"] == "treatment").to_numpy()
    declared = analysis.assignment_design(frame)
    draws = declared.permutation_matrix(given_draws, analysis.stream(seed, "r-check", "given draws"))
    # fdkit's intervals by inverting the studentised and the score tests on those re-draws; R
    # re-tests each edge (must not be rejected) and the grid point just beyond it (must be rejected).
    edges = []
    for outcome in outcomes:
        y = frame[outcome].to_numpy(dtype=float)
        studentised = _grid(*analysis.randomisation_interval(y, treated, declared.blocks, draws))
        x = _design_matrix(frame, outcome)
        beta = analysis.poisson_fit(y, x)[0][1]

        def score_rejects(k, y=y, x=x):
            return analysis.score_test_p(y, x, draws, float(np.log((1000 - k) / 1000))) < 0.05

        score = analysis.invert_on_grid(score_rejects, round(1000 * (1 - np.exp(beta))))[:2]
        for test, interval in (("studentised", studentised), ("score", score)):
            edges += [(outcome, test, k, inside) for k, inside in _edge_points(*interval)]
    grid = pd.DataFrame(edges, columns=["outcome", "test", "k", "inside"])
    columns = ["person_id", "arm", "stratum"] + [c for o in outcomes for c in (o, f"{o}_baseline")]
    with tempfile.TemporaryDirectory(prefix="fdkit-r-check-") as folder:
        frame_csv, out_csv, draws_csv, grid_csv = (
            Path(folder) / name for name in ("frame.csv", "r.csv", "draws.csv", "grid.csv")
        )
        frame[columns].assign(block=_blocks(frame)).to_csv(frame_csv, index=False)
        np.savetxt(draws_csv, draws.astype(int), fmt="%d", delimiter=",")
        grid[["outcome", "test", "k"]].to_csv(grid_csv, index=False)
        _rscript("crosscheck.R", frame_csv, out_csv, ",".join(outcomes), resamples, seed, draws_csv, grid_csv)
        r = pd.read_csv(out_csv).set_index(["outcome", "quantity"])

    comparisons = []
    for outcome in outcomes:

        def value(quantity, outcome=outcome):
            return float(r.loc[(outcome, quantity), "value"])

        def mcse(quantity, outcome=outcome):
            return float(r.loc[(outcome, quantity), "mcse"])

        for statistic, quantity, label in (
            ("difference", "coin_difference_p", "randomisation p, difference (coin)"),
            ("studentised", "studentised_p", "randomisation p, studentised (R by hand)"),
        ):
            effect = analysis.ratio_of_means(frame, outcome, seed=seed, permutations=permutations, statistic=statistic)
            comparisons.append(
                _monte_carlo(outcome, label, effect.p_value, effect.p_mcse, value(quantity), mcse(quantity))
            )

        y = frame[outcome].to_numpy(dtype=float)
        x = _design_matrix(frame, outcome)
        for statistic in ("studentised", "difference"):
            p_value = analysis.studentised_p_values(y, treated, declared.blocks, draws, statistic=statistic)[0][0]
            comparisons.append(
                _close(
                    outcome,
                    f"same re-draws: randomisation p, {statistic}",
                    float(p_value),
                    value(f"given_draws_{statistic}_p"),
                    1e-12,
                )
            )
        comparisons.append(
            _close(
                outcome,
                "same re-draws: Poisson score-test p",
                analysis.score_test_p(y, x, draws),
                value("given_draws_score_p"),
                1e-12,
            )
        )

        for _, test, k, inside in grid[grid["outcome"] == outcome].itertuples(index=False):
            p_value = value(f"grid_p_{test}_{k}")
            comparisons.append(
                Comparison(
                    outcome,
                    f"{'primary' if test == 'studentised' else 'Poisson'} interval edge {k / 10:g}%: "
                    f"{'inside' if inside else 'just outside'}, R's p",
                    float(k / 10),
                    p_value,
                    "not rejected" if p_value >= 0.05 else "rejected",
                    "R must not reject" if inside else "R must reject",
                    bool((p_value >= 0.05) == inside),
                )
            )

        welch = analysis.welch_t(frame, outcome)
        comparisons.append(_close(outcome, "Welch p (t.test)", welch.p_value, value("welch_p"), 1e-12, 1e-9))
        comparisons.append(
            _grid_bound(outcome, "Fieller lower % (quadratic)", welch.ci_low, value("fieller_low_pct"), 1)
        )
        comparisons.append(
            _grid_bound(outcome, "Fieller upper % (quadratic)", welch.ci_high, value("fieller_high_pct"), -1)
        )

        poisson = analysis.poisson_robust(frame, outcome, seed=seed, permutations=permutations)
        beta, _, cov = analysis.poisson_fit(y, x)
        n, p = x.shape
        se_hc1 = float(np.sqrt(cov[1, 1]))
        comparisons += [
            _monte_carlo(
                outcome,
                "Poisson score-test randomisation p (R by hand)",
                poisson.p_value,
                poisson.p_mcse,
                value("poisson_score_p"),
                mcse("poisson_score_p"),
            ),
            _close(outcome, "Poisson coefficient (glm)", float(beta[1]), value("poisson_coefficient"), 1e-6),
            _close(outcome, "Poisson % reduction (glm)", poisson.pct_reduction, value("poisson_pct_reduction"), 1e-4),
            _close(outcome, "Poisson SE, HC1 (vcovHC)", se_hc1, value("poisson_se_hc1"), 0.0, 1e-5),
            _close(
                outcome,
                "Poisson SE x sqrt((n-p)/n) vs HC0",
                se_hc1 * np.sqrt((n - p) / n),
                value("poisson_se_hc0"),
                0.0,
                1e-5,
            ),
        ]

        mann_whitney = analysis.mann_whitney(frame, outcome).p_value
        comparisons.append(
            _close(outcome, "Mann-Whitney p (wilcox, correct)", mann_whitney, value("wilcox_p_corrected"), 1e-12, 1e-9)
        )
        uncorrected = value("wilcox_p_uncorrected")
        comparisons.append(
            Comparison(
                outcome,
                "  (wilcox without continuity corr.)",
                mann_whitney,
                uncorrected,
                f"{mann_whitney - uncorrected:+.3g}",
                "information only",
                None,
            )
        )
    return comparisons


def simulation_comparisons(
    *,
    sims: int = 2000,
    outcomes: tuple[str, ...] = OUTCOMES,
    redraws: int = 2000,
    seed: int = 20231102,
) -> list[Comparison]:
    """Rejection at 5% under no effect: coin (R) and fdkit's tests on the same simulated trials."""
    from fdkit import analysis, design

    population = design.build_superpopulation()
    trials = design.simulate_trials(population, design.MILTON_KEYNES, sims=sims, seed=seed, outcomes=outcomes)
    blocks = trials.assignment.blocks
    assignments = trials.redraws(redraws, analysis.stream(seed, "r-check", "simulation"))
    comparisons = []
    with tempfile.TemporaryDirectory(prefix="fdkit-r-check-") as folder:
        design_csv = Path(folder) / "design.csv"
        pd.DataFrame(
            {"arm": np.where(trials.treated, "treatment", "control"), "block": [f"b{b}" for b in blocks]}
        ).to_csv(design_csv, index=False)
        for outcome in outcomes:
            y = trials.follow_up[outcome]
            trials_csv, out_csv = Path(folder) / f"{outcome}.csv", Path(folder) / f"{outcome}-p.csv"
            np.savetxt(trials_csv, y, delimiter=",", fmt="%.17g")
            _rscript("simulate.R", design_csv, trials_csv, out_csv, redraws, seed)
            coin = pd.read_csv(out_csv)["p_value"].to_numpy(dtype=float)
            usable = ~np.isnan(coin)
            reject_coin = coin[usable] < 0.05
            label = f"null, {usable.sum()} trials"
            rates = {"coin (R)": reject_coin}
            for statistic in ("difference", "studentised"):
                p, _ = analysis.studentised_p_values(
                    y[usable], trials.treated, blocks, assignments, statistic=statistic
                )
                rates[f"fdkit {statistic}"] = p < 0.05
            band = Z_TOLERANCE * np.sqrt(0.05 * 0.95 / usable.sum())
            for name, rejected in rates.items():
                rate = rejected.mean()
                se = np.sqrt(rate * (1 - rate) / rejected.size)
                comparisons.append(
                    Comparison(
                        outcome,
                        f"null rejection at 5%, {name} ({label})",
                        np.nan if name == "coin (R)" else rate,
                        rate if name == "coin (R)" else np.nan,
                        f"{100 * rate:.1f}% (MC SE {100 * se:.1f})",
                        f"within 5 +- {100 * band:.1f}%",
                        bool(abs(rate - 0.05) <= band),
                    )
                )
            for name in ("fdkit difference", "fdkit studentised"):
                rejected = rates[name]
                only_fdkit, only_coin = int((rejected & ~reject_coin).sum()), int((~rejected & reject_coin).sum())
                discordant = only_fdkit + only_coin
                z = (only_fdkit - only_coin) / np.sqrt(discordant) if discordant else 0.0
                agreement = 1 - discordant / rejected.size
                agreement_se = np.sqrt(agreement * (1 - agreement) / rejected.size)
                same_test = name == "fdkit difference"
                comparisons.append(
                    Comparison(
                        outcome,
                        f"  same verdict as coin, {name}",
                        rejected.mean(),
                        reject_coin.mean(),
                        f"{100 * agreement:.1f}% (MC SE {100 * agreement_se:.1f}) agree; {only_fdkit} reject only "
                        f"in fdkit, {only_coin} only in coin (McNemar z {z:+.2f})",
                        f"|McNemar z| <= {Z_TOLERANCE:g}" if same_test else "information only (another statistic)",
                        bool(abs(z) <= Z_TOLERANCE) if same_test else None,
                    )
                )
    return comparisons


def _print(comparisons: list[Comparison]) -> None:
    table = pd.DataFrame(
        [
            {
                "outcome": c.outcome,
                "comparison": c.quantity,
                "fdkit": f"{c.fdkit:.6g}" if np.isfinite(c.fdkit) else ("unbounded" if np.isinf(c.fdkit) else ""),
                "R": f"{c.r:.6g}" if np.isfinite(c.r) else ("unbounded" if np.isinf(c.r) else ""),
                "difference": c.difference,
                "tolerance": c.tolerance,
                "verdict": {True: "agree", False: "DISAGREE", None: "-"}[c.agree],
            }
            for c in comparisons
        ]
    )
    with pd.option_context("display.max_rows", None, "display.max_colwidth", 120, "display.width", 250):
        print(table.to_string(index=False))


def _versions() -> str:
    probe = (
        "cat(R.version.string, '; coin', format(packageVersion('coin')), "
        "'; sandwich', format(packageVersion('sandwich')), sep = '')"
    )
    return subprocess.run(["Rscript", "-e", probe], capture_output=True, text=True, check=False).stdout.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-simulation", action="store_true", help="only the quick comparisons on the shipped trial")
    parser.add_argument("--sims", type=int, default=2000, help="simulated null trials (default 2,000)")
    parser.add_argument("--permutations", type=int, default=20_000, help="fdkit's re-draws on the shipped trial")
    parser.add_argument("--resamples", type=int, default=20_000, help="R's re-draws on the shipped trial")
    parser.add_argument("--sim-redraws", type=int, default=2000, help="re-draws per simulated trial, both sides")
    parser.add_argument("--out", help="also write the comparisons to this CSV")
    args = parser.parse_args(argv)
    if reason := missing_r():
        print(f"cannot run the R cross-check: {reason}", file=sys.stderr)
        return 2
    print(f"fdkit against {_versions()}\n")
    comparisons = quick_comparisons(shipped_frame(), permutations=args.permutations, resamples=args.resamples)
    if not args.no_simulation:
        comparisons += simulation_comparisons(sims=args.sims, redraws=args.sim_redraws)
    _print(comparisons)
    if args.out:
        from fdkit.files import atomic_write

        rows = pd.DataFrame([c.__dict__ for c in comparisons])
        atomic_write(args.out, lambda handle: rows.to_csv(handle, index=False))
    failed = [c for c in comparisons if c.agree is False]
    print(f"\n{len(failed)} of {sum(c.agree is not None for c in comparisons)} comparisons disagree beyond tolerance")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
