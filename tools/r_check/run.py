"""Cross-check fdkit's statistics against R (coin, sandwich and base R), independently.

Run from the repository root::

    .venv/bin/python tools/r_check/run.py                  # everything (about 2 minutes)
    .venv/bin/python tools/r_check/run.py --no-simulation  # the quick comparisons only

It needs ``Rscript`` with the R packages coin and sandwich (Debian:
``apt-get install r-base-core r-cran-coin r-cran-sandwich``). It builds the shipped synthetic
trial's outcome frame with fdkit, writes it to a temporary CSV, has R compute every figure from
its own definition (``crosscheck.R`` and ``common_ratio.R``; nothing in R calls or copies fdkit),
and compares, for each outcome:

- the randomisation tests' p-values, each one-sided in both directions and equal-tailed (twice
  the smaller one-sided p): fdkit's ``"difference"`` statistic against coin's
  ``independence_test(y ~ arm | block, distribution = approximate(), alternative = "less")``
  and ``"greater"`` (the same test), and the primary analysis's statistic (``"score"`` today)
  and the studentised one against the same tests written out in R (coin's statistics are
  linear, so it cannot studentise). Drawn independently on each side, they agree when
  ``|z| <= 3``, with ``z`` the difference over the root of the two squared Monte Carlo SEs;
  on fdkit's own re-draws handed to R they must agree exactly, at no effect and at each edge
  of the interval that inverts the test (the edge not rejected, one grid step beyond it
  rejected);
- the robust Poisson score test the same way (R: ``glm`` with the hypothesised coefficient as
  an offset), at no effect and at its interval's edges;
- Welch's t-test p-value (``t.test``) and Fieller's interval for the ratio of means, solved in
  R from the quadratic. fdkit's bounds are the outermost non-rejected points of a 0.1-point grid,
  so each must lie within 0.1 point inside R's;
- the robust Poisson model (``glm`` and ``sandwich::vcovHC``): point estimate to 1e-6, and
  fdkit's HC1 sandwich SE against R's HC1 (and HC0 scaled by ``n / (n - p)``);
- the Mann-Whitney p-value against ``wilcox.test(exact = FALSE, correct = TRUE)``;
- the test that every group shares one ratio of means (``analysis.common_ratio_test``, the profile
  Q): across the trial's age bands (``interaction_test(method="profile")``) for each outcome, and
  across the sites of a simulated three-site network (``pooling.heterogeneity_test``), against R's
  ``common_ratio.R``, written from the test's definition, on the same re-draws (Q, the groups'
  stratified ratios and normal scores and the p-value to 1e-9 relative, the minimising ratio
  exactly); and once on independent re-draws drawn in R (p within 0.05);

and, by simulation on trials drawn from fdkit's superpopulation with no effect, how often each
direction is claimed at 5% equal-tailed (a significant reduction, a significant increase: each
should be about 2.5%) by coin's one-sided tests and by fdkit's three statistics on the same
trials, with their Monte Carlo SEs and agreement with coin's verdicts.

It prints a table of every comparison with its verdict and exits 1 if any disagrees beyond
its tolerance (2 if R or a package is missing). See ``docs/checked-against-r.md``.
"""

from __future__ import annotations

import argparse
import inspect
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
ALPHA = 0.05
#: (RandomisationTest attribute, R quantity suffix, label) of each one-sided p-value.
TAILS = (
    ("p_reduction", "reduction_p", "one-sided p, reduction"),
    ("p_increase", "increase_p", "one-sided p, increase"),
)
EXACT = 1e-12  # p-values on shared re-draws are counts over B + 1: any real gap is at least 1 / (B + 1)
#: fdkit's and R's p of the common-ratio test on independent re-draws: Q is a sum of normal scores
#: of Monte Carlo ranks, each moving by O(1 / sqrt(B)), not a binomial count (see the docs).
COMMON_RATIO_TOLERANCE = 0.05

__all__ = [
    "Comparison",
    "OUTCOMES",
    "common_ratio_comparisons",
    "missing_r",
    "quick_comparisons",
    "shipped_frame",
    "simulation_comparisons",
    "site_network",
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


def _ratio_at(k: int) -> float:
    """The ratio of means at grid point ``k`` (a ``k / 10`` % reduction), as R computes it too."""
    return (1000 - k) / 1000


def _grid(ratio_low: float, ratio_high: float) -> tuple[float, float]:
    """A ratio interval as grid indices of the % reduction: ``(low, high)``, infinite where unbounded."""
    low = round(1000 * (1 - ratio_high)) if np.isfinite(ratio_high) else -np.inf
    high = round(1000 * (1 - ratio_low)) if ratio_low > 0 else np.inf
    return low, high


def _primary_statistic() -> str:
    """The statistic of the primary analysis (``ratio_of_means``'s default), whichever it is."""
    from fdkit import analysis

    return str(inspect.signature(analysis.ratio_of_means).parameters["statistic"].default)


def _label(statistic: str, primary: str) -> str:
    return f"{statistic} (primary)" if statistic == primary else statistic


def _edge(outcome, quantity, p_fdkit, p_r, inside: bool) -> Comparison:
    """A point at an interval's edge: the same p on both sides, and R's verdict matching the interval.

    ``inside``: the point is the interval's outermost non-rejected grid point (R must not reject
    it at ``ALPHA``); otherwise it is one grid step beyond (R must reject it).
    """
    verdict = "not rejected" if p_r >= ALPHA else "rejected"
    return Comparison(
        outcome,
        quantity,
        p_fdkit,
        p_r,
        f"{p_fdkit - p_r:+.3g}; R: {verdict}",
        f"|diff| <= {EXACT:g}; R must {'not reject' if inside else 'reject'}",
        bool(abs(p_fdkit - p_r) <= EXACT and (p_r >= ALPHA) == inside),
    )


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
    blocks = declared.blocks
    primary = _primary_statistic()
    statistics = (primary,) + tuple(s for s in analysis.STATISTICS if s != primary)
    draws = declared.permutation_matrix(given_draws, analysis.stream(seed, "r-check", "given draws"))
    independent = declared.permutation_matrix(permutations, analysis.stream(seed, "r-check", "independent"))

    # The intervals that invert each test on the shared re-draws: R re-tests each edge (must not
    # be rejected) and the grid point just beyond it (must be rejected), with fdkit's p there.
    edges = []
    for outcome in outcomes:
        y = frame[outcome].to_numpy(dtype=float)
        for statistic in statistics:
            interval = _grid(*analysis.randomisation_interval(y, treated, blocks, draws, statistic=statistic))
            for k, inside in _edge_points(*interval):
                test = analysis.randomisation_test(y, treated, blocks, draws, theta=_ratio_at(k), statistic=statistic)
                edges.append((outcome, statistic, k, inside, float(test.p_value[0])))
        x = _design_matrix(frame, outcome)

        def poisson_p(k, y=y, x=x):
            return float(analysis.score_test(y, x, draws, beta=float(np.log(_ratio_at(k)))).p_value[0])

        beta = analysis.poisson_fit(y, x)[0][1]
        interval = analysis.invert_on_grid(lambda k: poisson_p(k) < ALPHA, round(1000 * (1 - np.exp(beta))))[:2]
        edges += [(outcome, "poisson", k, inside, poisson_p(k)) for k, inside in _edge_points(*interval)]
    grid = pd.DataFrame(edges, columns=["outcome", "test", "k", "inside", "p"])
    columns = ["person_id", "arm", "stratum"] + [c for o in outcomes for c in (o, f"{o}_baseline")]
    with tempfile.TemporaryDirectory(prefix="fdkit-r-check-") as folder:
        frame_csv, out_csv, draws_csv, grid_csv = (
            Path(folder) / name for name in ("frame.csv", "r.csv", "draws.csv", "grid.csv")
        )
        frame[columns].assign(block=_blocks(frame)).to_csv(frame_csv, index=False)
        np.savetxt(draws_csv, draws.astype(int), fmt="%d", delimiter=",")
        grid[["outcome", "test", "k"]].to_csv(grid_csv, index=False)
        _rscript(
            "crosscheck.R",
            frame_csv,
            out_csv,
            ",".join(outcomes),
            ",".join(statistics),
            resamples,
            seed,
            draws_csv,
            grid_csv,
        )
        r = pd.read_csv(out_csv).set_index(["outcome", "quantity"])

    comparisons = []
    for outcome in outcomes:

        def value(quantity, outcome=outcome):
            return float(r.loc[(outcome, quantity), "value"])

        def mcse(quantity, outcome=outcome):
            return float(r.loc[(outcome, quantity), "mcse"])

        y = frame[outcome].to_numpy(dtype=float)
        x = _design_matrix(frame, outcome)

        # Independent re-draws: the difference statistic against coin, in each direction and
        # equal-tailed; each other statistic through the primary analysis against R by hand.
        difference = analysis.randomisation_test(y, treated, blocks, independent, statistic="difference")
        for attribute, quantity, label in TAILS:
            p = float(getattr(difference, attribute)[0])
            comparisons.append(
                _monte_carlo(
                    outcome,
                    f"difference vs coin: {label}",
                    p,
                    float(analysis.p_value_mcse(p, permutations, equal_tailed=False)),
                    value(f"coin_{quantity}"),
                    mcse(f"coin_{quantity}"),
                )
            )
        p = float(difference.p_value[0])
        comparisons.append(
            _monte_carlo(
                outcome,
                "difference vs coin: equal-tailed p",
                p,
                float(analysis.p_value_mcse(p, permutations)),
                value("coin_p"),
                mcse("coin_p"),
            )
        )
        for statistic in statistics:
            if statistic == "difference":
                continue
            effect = analysis.ratio_of_means(frame, outcome, seed=seed, permutations=permutations, statistic=statistic)
            comparisons.append(
                _monte_carlo(
                    outcome,
                    f"{_label(statistic, primary)}, by hand in R: equal-tailed p",
                    effect.p_value,
                    effect.p_mcse,
                    value(f"{statistic}_p"),
                    mcse(f"{statistic}_p"),
                )
            )
        poisson = analysis.poisson_robust(frame, outcome, seed=seed, permutations=permutations)
        comparisons.append(
            _monte_carlo(
                outcome,
                "Poisson score, by hand in R: equal-tailed p",
                poisson.p_value,
                poisson.p_mcse,
                value("poisson_score_p"),
                mcse("poisson_score_p"),
            )
        )

        # Shared re-draws, no effect: every p-value exactly.
        tests = [
            (_label(s, primary), f"given_{s}", analysis.randomisation_test(y, treated, blocks, draws, statistic=s))
            for s in statistics
        ]
        tests.append(("Poisson score", "given_poisson_score", analysis.score_test(y, x, draws)))
        for name, key, test in tests:
            for attribute, quantity, label in (*TAILS, ("p_value", "p", "equal-tailed p")):
                comparisons.append(
                    _close(
                        outcome,
                        f"same re-draws: {name}, {label}",
                        float(getattr(test, attribute)[0]),
                        value(f"{key}_{quantity}"),
                        EXACT,
                    )
                )
        for _, test_name, k, inside, p in grid[grid["outcome"] == outcome].itertuples(index=False):
            name = "Poisson score" if test_name == "poisson" else _label(test_name, primary)
            where = "edge" if inside else "one step beyond"
            comparisons.append(
                _edge(
                    outcome,
                    f"{name} interval edge, {k / 10:g}% ({where}): p",
                    p,
                    value(f"grid_p_{test_name}_{k}"),
                    inside,
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

        beta, _, cov = analysis.poisson_fit(y, x)
        n, q = x.shape
        se_hc1 = float(np.sqrt(cov[1, 1]))
        comparisons += [
            _close(outcome, "Poisson coefficient (glm)", float(beta[1]), value("poisson_coefficient"), 1e-6),
            _close(outcome, "Poisson % reduction (glm)", poisson.pct_reduction, value("poisson_pct_reduction"), 1e-4),
            _close(outcome, "Poisson SE, HC1 (vcovHC)", se_hc1, value("poisson_se_hc1"), 0.0, 1e-5),
            _close(
                outcome,
                "Poisson SE x sqrt((n-p)/n) vs HC0",
                se_hc1 * np.sqrt((n - q) / n),
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


def site_network(seed: int = 5) -> pd.DataFrame:
    """A pooled network of three simulated sites, as ``sites.pool_frame`` stacks the sites' outcome frames.

    From fdkit's superpopulation: 45 treated at each site against 85, 111 and 226 controls, base
    rates differing by an SD of 0.3 in the log, a common 40% reduction; crime harm as ``outcome``.
    """
    from fdkit import design, sites

    spec = design.SitesDesign(3, ((45, 85), (45, 111), (45, 226)), baseline_sd=0.3, reduction=40)
    networks = design.simulate_site_trials(design.build_superpopulation(), spec, sims=1, seed=seed)
    return sites.pool_frame(networks.frames(0))


def _profile_case(part: pd.DataFrame, outcome: str, groups: str, permutations: int, seed: int):
    """What ``interaction_test(method="profile")`` tests on ``part`` (sorted by ``person_id``), rebuilt outside it.

    The same re-draws (the design read from the frame, drawn from the interaction test's stream)
    and :func:`fdkit.analysis.common_ratio_test`'s whole answer on them, with the minimising ratio
    and the groups' normal scores that the interaction test does not return.
    """
    from fdkit import analysis

    declared = analysis.assignment_design(part)
    draws = declared.permutation_matrix(permutations, analysis.stream(seed, outcome, "interaction"))
    y = part[outcome].to_numpy(dtype=float)
    treated = (part["arm"] == "treatment").to_numpy()
    group = part[groups].astype(str).to_numpy()
    found = analysis.common_ratio_test(y, treated, declared.blocks, group, draws)
    names = sorted(set(group))
    own = {
        name: analysis.stratified_ratio(y[group == name], treated[group == name], declared.blocks[group == name])
        for name in names
    }
    return draws, found, own, dict(zip(names, found.scores))


def _reproduced(label: str, found, chi2: float, p_value: float) -> None:
    """Stop unless the rebuilt test is the one fdkit ran (else the re-draws handed to R are not fdkit's)."""
    if not (found.chi2 == chi2 and found.p_value == p_value):
        raise RuntimeError(
            f"{label}: common_ratio_test on the rebuilt re-draws gives Q {found.chi2!r}, p {found.p_value!r}, "
            f"not fdkit's Q {chi2!r}, p {p_value!r}: the re-draws are no longer made as this check assumes"
        )


def common_ratio_comparisons(
    frame: pd.DataFrame,
    network: pd.DataFrame,
    *,
    outcomes: tuple[str, ...] = OUTCOMES,
    given_draws: int = 2000,
    permutations: int = 20_000,
    resamples: int = 20_000,
    seed: int = 20231101,
) -> list[Comparison]:
    """fdkit's test of one common ratio across groups (profile Q) against R's, written from its definition.

    - The trial's age bands, each outcome: ``interaction_test(method="profile")`` with
      ``given_draws`` re-draws, which R is handed; the groups' stratified ratios, Q, the ratio
      where Q is smallest, each group's normal score there and p must agree to 1e-9 relative
      (the ratio exactly: the same grid point).
    - A pooled ``network`` of sites (its outcome column ``outcome``):
      ``pooling.heterogeneity_test`` the same way, the sites as the groups, its blocks site x age
      band x wave.
    - The first outcome's age bands on independent re-draws (``permutations`` in fdkit,
      ``resamples`` drawn in R by permuting the labels within each block): p within 0.05.
    """
    from fdkit import analysis, pooling

    part = frame.sort_values("person_id", ignore_index=True)
    pooled = network.sort_values("person_id", ignore_index=True)
    by_site = pooling._by_site_frame(pooled)  # the frame heterogeneity_test hands the interaction test
    cases, expected = [], {}
    with tempfile.TemporaryDirectory(prefix="fdkit-r-check-") as folder:
        folder = Path(folder)

        def write(name, source, group, block, outcome, draws=None):
            path = folder / f"{name}.csv"
            pd.DataFrame(
                {"arm": source["arm"], "group": group.astype(str), "block": block, "y": source[outcome]}
            ).to_csv(path, index=False)
            if draws is not None:
                np.savetxt(folder / f"{name}-draws.csv", draws.astype(int), fmt="%d", delimiter=",")
            cases.append(
                {
                    "case": name,
                    "frame": path,
                    "draws": "" if draws is None else folder / f"{name}-draws.csv",
                    "resamples": resamples,
                    "seed": seed,
                }
            )

        for outcome in outcomes:
            row = analysis.interaction_test(part, outcome, seed=seed, permutations=given_draws, method="profile")
            draws, found, own, scores = _profile_case(part, outcome, "stratum", given_draws, seed)
            _reproduced(f"{outcome} age bands", found, float(row["chi2"].iloc[0]), float(row["p_value"].iloc[0]))
            expected[outcome] = ("across age bands", found, own, scores)
            write(outcome, part, part["stratum"], _blocks(part), outcome, draws)
        result = pooling.heterogeneity_test(pooled, "outcome", seed=seed, permutations=given_draws)
        draws, found, own, scores = _profile_case(by_site, "outcome", "stratum", given_draws, seed)
        _reproduced("network of sites", found, result["chi2"], result["p_value"])
        network_label = f"{result['sites']}-site network"
        expected[network_label] = ("across sites", found, own, scores)
        blocks = pooled["site"] + ":" + pooled["age_band"].astype(str) + ":" + pooled["wave"].astype(str)
        write(network_label, pooled, pooled["site"], blocks, "outcome", draws)
        independent = analysis.interaction_test(
            part, outcomes[0], seed=seed, permutations=permutations, method="profile"
        )
        write("own re-draws", part, part["stratum"], _blocks(part), outcomes[0])
        cases_csv, out_csv = folder / "cases.csv", folder / "r.csv"
        pd.DataFrame(cases).to_csv(cases_csv, index=False)
        _rscript("common_ratio.R", cases_csv, out_csv)
        r = pd.read_csv(out_csv, dtype={"case": str, "quantity": str}).set_index(["case", "quantity"])["value"]

    comparisons = []
    for case, (across, found, own, scores) in expected.items():
        label = f"common ratio {across}, same {given_draws:,} re-draws"
        comparisons += [
            _close(case, f"{label}: stratified ratio, {name}", ratio, float(r[(case, f"own_ratio:{name}")]), 0.0, 1e-9)
            for name, ratio in own.items()
        ]
        theta = float(r[(case, "theta")])
        comparisons += [
            _close(case, f"{label}: Q (chi2, df {found.df})", found.chi2, float(r[(case, "Q")]), 0.0, 1e-9),
            Comparison(
                case,
                f"{label}: ratio at the minimum",
                found.ratio,
                theta,
                f"{found.ratio - theta:+.3g} ({int(r[(case, 'grid_points')])} grid points)",
                "exactly",
                found.ratio == theta,
            ),
            _close(case, f"{label}: p", found.p_value, float(r[(case, "p")]), 0.0, 1e-9),
        ]
        comparisons += [
            _close(case, f"{label}: normal score at the minimum, {name}", z, float(r[(case, f"z:{name}")]), 1e-12, 1e-9)
            for name, z in scores.items()
        ]
        wider = float(r[(case, "Q_beyond")])
        comparisons.append(
            Comparison(
                case,
                "  (R: Q also searching 10 grid points beyond each end)",
                found.chi2,
                wider,
                f"{found.chi2 - wider:+.3g}",
                "information only",
                None,
            )
        )
    p_fdkit, p_r = float(independent["p_value"].iloc[0]), float(r[("own re-draws", "p")])
    comparisons.append(
        Comparison(
            outcomes[0],
            f"common ratio across age bands, own re-draws ({permutations:,}; R {resamples:,}): p",
            p_fdkit,
            p_r,
            f"{p_fdkit - p_r:+.4f} (fdkit's MC SE {float(independent['p_mcse'].iloc[0]):.4f})",
            f"|diff| <= {COMMON_RATIO_TOLERANCE:g}",
            bool(abs(p_fdkit - p_r) <= COMMON_RATIO_TOLERANCE),
        )
    )
    return comparisons


def _rate(outcome, quantity, rejected: np.ndarray, in_r: bool) -> Comparison:
    """How often a test claims one direction at ``ALPHA`` equal-tailed: about ``ALPHA / 2`` under no effect."""
    rate = float(rejected.mean())
    se = np.sqrt(rate * (1 - rate) / rejected.size)
    band = Z_TOLERANCE * np.sqrt(ALPHA / 2 * (1 - ALPHA / 2) / rejected.size)
    return Comparison(
        outcome,
        quantity,
        np.nan if in_r else rate,
        rate if in_r else np.nan,
        f"{100 * rate:.2f}% (MC SE {100 * se:.2f})",
        f"within {100 * ALPHA / 2:g} +- {100 * band:.2f}%",
        bool(abs(rate - ALPHA / 2) <= band),
    )


def _same_verdicts(outcome, quantity, rejected: np.ndarray, by_coin: np.ndarray, judged: bool) -> Comparison:
    """Agreement with coin's verdicts; a McNemar z on the discordant trials says whether either leans one way."""
    only_fdkit, only_coin = int((rejected & ~by_coin).sum()), int((~rejected & by_coin).sum())
    discordant = only_fdkit + only_coin
    z = (only_fdkit - only_coin) / np.sqrt(discordant) if discordant else 0.0
    agreement = 1 - discordant / rejected.size
    agreement_se = np.sqrt(agreement * (1 - agreement) / rejected.size)
    return Comparison(
        outcome,
        quantity,
        float(rejected.mean()),
        float(by_coin.mean()),
        f"{100 * agreement:.1f}% (MC SE {100 * agreement_se:.1f}) agree; {only_fdkit} only in fdkit, "
        f"{only_coin} only in coin (McNemar z {z:+.2f})",
        f"|McNemar z| <= {Z_TOLERANCE:g}" if judged else "information only (another statistic)",
        bool(abs(z) <= Z_TOLERANCE) if judged else None,
    )


def simulation_comparisons(
    *,
    sims: int = 2000,
    outcomes: tuple[str, ...] = OUTCOMES,
    redraws: int = 2000,
    seed: int = 20231102,
) -> list[Comparison]:
    """Each direction's rejections under no effect: coin (R) and fdkit's statistics on the same simulated trials.

    A direction is claimed when the equal-tailed p is below ``ALPHA`` with the statistic on that
    side, that is when that direction's one-sided p is below ``ALPHA / 2``.
    """
    from fdkit import analysis, design

    population = design.build_superpopulation()
    trials = design.simulate_trials(population, design.MILTON_KEYNES, sims=sims, seed=seed, outcomes=outcomes)
    assert trials.assignment is not None  # simulate_trials always declares the assignment
    blocks = trials.assignment.blocks
    assignments = trials.redraws(redraws, analysis.stream(seed, "r-check", "simulation"))
    primary = _primary_statistic()
    statistics = (primary,) + tuple(s for s in analysis.STATISTICS if s != primary)
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
            coin = pd.read_csv(out_csv)
            usable = coin["p_reduction"].notna().to_numpy()
            tests = {
                s: analysis.randomisation_test(y[usable], trials.treated, blocks, assignments, statistic=s)
                for s in statistics
            }
            for attribute, column, direction in (
                ("p_reduction", "p_reduction", "reduction"),
                ("p_increase", "p_increase", "increase"),
            ):
                by_coin = coin[column].to_numpy(dtype=float)[usable] < ALPHA / 2
                by_fdkit = {statistic: getattr(test, attribute) < ALPHA / 2 for statistic, test in tests.items()}
                label = f"null: significant {direction} ({usable.sum()} trials)"
                comparisons.append(_rate(outcome, f"{label}, coin (R)", by_coin, in_r=True))
                comparisons += [
                    _rate(outcome, f"{label}, fdkit {_label(statistic, primary)}", rejected, in_r=False)
                    for statistic, rejected in by_fdkit.items()
                ]
                comparisons += [
                    _same_verdicts(
                        outcome,
                        f"  same {direction} verdict as coin, fdkit {statistic}",
                        rejected,
                        by_coin,
                        judged=statistic == "difference",
                    )
                    for statistic, rejected in by_fdkit.items()
                ]
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
        "cat(R.version.string, '; coin ', format(packageVersion('coin')), "
        "'; sandwich ', format(packageVersion('sandwich')), sep = '')"
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
    shipped = shipped_frame()
    comparisons = quick_comparisons(shipped, permutations=args.permutations, resamples=args.resamples)
    comparisons += common_ratio_comparisons(
        shipped, site_network(), permutations=args.permutations, resamples=args.resamples
    )
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
