"""Pooled and per-site evidence from several sites that ran one protocol.

Every function takes the pooled outcome frame of :func:`fdkit.sites.pool_frame` (site-scoped
IDs, ``stratum`` = site x age band, each site's own ``wave``) and checks it first
(:func:`fdkit.sites.check_pooled_frame`).

**The pooled effect** (:func:`pooled_effect`) is the kit's primary analysis,
:func:`fdkit.analysis.ratio_of_means`, run on the pooled frame and **stratified**: the common
ratio of means within site x age band x wave (:func:`fdkit.analysis.stratified_ratio`), its
randomisation test (the score statistic fitted within those blocks) re-drawing every site's
allocation within its own age bands and waves with its own numbers of treated places, and the
interval that inverts that test. The pooled test is therefore exact under the sharp null of no
effect anywhere, however the sites differ in size, base rate or share treated; and the estimate
compares each site with itself, where the ratio of the arms' raw pooled means would mix a site
that treats many of its people with one that treats few.

**Per-site effects** (:func:`site_effects`) are each site's own primary analysis, with the
same seed: exactly what the site's own ``fdkit analyse`` reports.

**Heterogeneity** (:func:`heterogeneity_test`): is the effect the same at every site? The
kit's interaction test (:func:`fdkit.analysis.interaction_test`) with the sites as its groups,
in its profile form (:func:`fdkit.analysis.common_ratio_test`): each site's primary score test
of a common ratio, against the re-draws of its own allocation (within its age bands and
waves), combined as Cochran's Q combines estimates.

**Random effects** (:func:`random_effects`): a summary in the meta-analytic tradition, from
each site's log ratio of means and its delta-method variance, with statsmodels'
``combine_effects``: the Paule-Mandel between-site variance ``tau^2``, the average site's
effect with a Knapp-Hartung interval (a t reference with K - 1 degrees of freedom, advised
when there are few sites), and a 95% prediction interval for the effect at a new site
(Higgins, Thompson & Spiegelhalter 2009: ``t_{K-2}`` and ``tau^2`` plus the mean's variance).
It describes how much sites vary; its interval is its own (normal-theory, approximate) and is
never printed beside the randomisation test's p-value.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import analysis
from . import outcomes as outcome_definitions
from .sites import check_pooled_frame, site_frame

__all__ = [
    "HETEROGENEITY_COLUMNS",
    "POOLED",
    "PooledResults",
    "heterogeneity_test",
    "log_ratio",
    "pooled_effect",
    "pooled_results",
    "random_effects",
    "site_effects",
]

#: The ``site`` label of the pooled rows of a results table.
POOLED = "pooled"

HETEROGENEITY_COLUMNS = (
    "outcome",
    "sites",
    "chi2",
    "df",
    "p_value",
    "p_mcse",
    "method",
    "note",
    "re_sites",
    "re_pct_reduction",
    "re_ci_low",
    "re_ci_high",
    "pi_low",
    "pi_high",
    "tau2",
    "i2",
    "re_note",
)


def pooled_effect(
    frame: pd.DataFrame, outcome: str, *, seed: int = 0, permutations: int = analysis.PERMUTATIONS, alpha: float = 0.05
) -> analysis.Effect:
    """The pooled ratio of means with its randomisation test and inverted interval.

    :func:`fdkit.analysis.ratio_of_means` on the pooled frame, whose strata are site x age
    band and whose waves are each site's own, so every re-draw repeats each site's own
    allocation (its blocks and treated places).
    """
    frame = check_pooled_frame(frame)
    return analysis.ratio_of_means(frame, outcome, seed=seed, permutations=permutations, alpha=alpha, stratified=True)


def site_effects(
    frame: pd.DataFrame, outcome: str, *, seed: int = 0, permutations: int = analysis.PERMUTATIONS, alpha: float = 0.05
) -> dict[str, analysis.Effect]:
    """Each site's own primary analysis (the same seed as its own ``fdkit analyse``), by site."""
    frame = check_pooled_frame(frame)
    return {
        site: analysis.ratio_of_means(
            site_frame(frame, site), outcome, seed=seed, permutations=permutations, alpha=alpha
        )
        for site in sorted(set(frame["site"]))
    }


def _by_site_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The pooled frame with the sites as strata and site's age band x wave as waves.

    :func:`fdkit.analysis.interaction_test` compares the effect across ``stratum`` and re-draws
    within ``wave`` x ``stratum``; here that is site, and site x age band x wave.
    """
    cells = frame["age_band"].astype(str) + "\x00" + frame["wave"].astype(str)
    codes = pd.factorize(cells, sort=True)[0] + 1
    return frame.assign(stratum=frame["site"].astype(str), wave=codes)


def heterogeneity_test(
    frame: pd.DataFrame, outcome: str, *, seed: int = 0, permutations: int = analysis.PERMUTATIONS
) -> dict:
    """A randomisation test that the effect is a common ratio at every site.

    :func:`fdkit.analysis.common_ratio_test` (``method="profile"`` of the interaction test) with
    the sites as the groups: for a common ratio, each site's own primary score test of it
    against the re-draws of that site's allocation, its observed statistic as a normal score;
    ``Q`` is the smallest sum of the sites' squared scores over common ratios, referred to
    chi-squared on sites - 1, as Cochran's Q is.

    Calibration (simulated networks of three sites with different sizes, shares treated and base
    rates; 6,000 networks per figure, 1,000 re-draws, by a vectorised copy of this statistic whose
    search steps 3% in the ratio; ``tests/test_pool_heterogeneity.py`` checks this function itself
    on 2,000 other networks each): it rejects a true common effect 4.9% (MC SE 0.3) of the time at no
    effect for crime harm and 4.6% for knife offences; 3.9% at a common 40% reduction in harm, 3.4%
    in knife offences; 3.5% at a common 70% reduction in harm and 6.0% at a common 25% increase.
    The lean with the effect's size has two sources: each site's design-based variance assumes
    everyone's effect is the same, so it overstates the variance when the intervention prevents
    some people's crimes and not others' (at a 40% reduction in harm the sites' scores at the true
    ratio had variance 0.93-0.95 in a check of 500 networks); and the search over common ratios, along
    which each site's spread changes. The plug-in test of Q (the age bands' default) rejected
    a common 40% harm reduction 7.0% (0.6) of the time here, because it imputes each treated
    person's untreated harm by dividing by the common ratio. With three sites no test of this kind
    has much power: sites whose true effects spread from about 0 to 70% (a between-site SD of 0.5
    in the log ratio) were told apart 13.8% of the time for harm (11.3% by the same scores at the
    pooled estimate alone, without the search over common ratios).

    Returns
    -------
    dict
        ``outcome``, ``sites``, ``chi2`` (Q), ``df``, ``p_value``, ``p_mcse``, ``method`` and
        ``note`` (why there is no test, when a site has an arm without events).
    """
    frame = check_pooled_frame(frame)
    by_site = _by_site_frame(frame)
    row = analysis.interaction_test(by_site, outcome, seed=seed, permutations=permutations, method="profile").iloc[0]
    note = str(row["note"]).replace("aged ", "at ") if isinstance(row["note"], str) else ""
    return {
        "outcome": outcome,
        "sites": int(frame["site"].nunique()),
        "chi2": float(row["chi2"]),
        "df": int(row["df"]) if pd.notna(row["df"]) else np.nan,
        "p_value": float(row["p_value"]),
        "p_mcse": float(row["p_mcse"]),
        "method": str(row["method"]),
        "note": note,
    }


def log_ratio(frame: pd.DataFrame, outcome: str) -> tuple[float, float]:
    """One site's log ratio of means and its delta-method variance.

    ``var = s_t^2 / (n_t m_t^2) + s_c^2 / (n_c m_c^2)``; both are ``nan`` when an arm has no
    events (there is no log ratio).
    """
    treated = (frame["arm"] == "treatment").to_numpy()
    y = frame[outcome].to_numpy(dtype=float)
    first, second = y[treated], y[~treated]
    mean_t, mean_c = first.mean(), second.mean()
    if not (mean_t > 0 and mean_c > 0):
        return np.nan, np.nan
    variance = first.var(ddof=1) / (first.size * mean_t**2) + second.var(ddof=1) / (second.size * mean_c**2)
    return float(np.log(mean_t / mean_c)), float(variance)


def random_effects(frame: pd.DataFrame, outcome: str, *, alpha: float = 0.05) -> dict:
    """A random-effects summary of the sites' ratios of means (statsmodels' ``combine_effects``).

    Returns
    -------
    dict
        ``re_sites`` (sites with events in both arms, the ones combined), ``re_pct_reduction``
        (the average site's % reduction), ``re_ci_low``/``re_ci_high`` (Knapp-Hartung),
        ``pi_low``/``pi_high`` (the 95% prediction interval for a new site; needs 3 sites),
        ``tau2`` (between-site variance of the log ratio), ``i2`` (the share of the spread of
        the sites' estimates that is between-site variation) and ``re_note``.
    """
    from scipy import stats
    from statsmodels.stats.meta_analysis import combine_effects

    frame = check_pooled_frame(frame)
    names, effects, variances, left_out = [], [], [], []
    for site in sorted(set(frame["site"])):
        effect, variance = log_ratio(site_frame(frame, site), outcome)
        if np.isfinite(effect) and variance > 0:
            names.append(site)
            effects.append(effect)
            variances.append(variance)
        else:
            left_out.append(site)
    row: dict = {
        "re_sites": len(names),
        "re_pct_reduction": np.nan,
        "re_ci_low": np.nan,
        "re_ci_high": np.nan,
        "pi_low": np.nan,
        "pi_high": np.nan,
        "tau2": np.nan,
        "i2": np.nan,
    }
    notes = [f"left out (an arm without events): {', '.join(left_out)}"] if left_out else []
    if len(names) < 2:
        row["re_note"] = "; ".join([*notes, "fewer than two sites to combine"])
        return row
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # it warns that the sites' own intervals use the normal distribution
        combined = combine_effects(
            np.array(effects), np.array(variances), method_re="iterated", use_t=True, alpha=alpha
        )
        table = combined.summary_frame(alpha=alpha)
    summary = table.loc["random effect wls"]  # Knapp-Hartung: its SE is scaled by the sites' spread
    mean, spread = float(summary["eff"]), float(table.loc["random effect", "sd_eff"])  # the plain SE
    tau2 = max(float(combined.tau2), 0.0)
    row.update(
        re_pct_reduction=float(analysis.pct(np.exp(mean))),
        re_ci_low=float(analysis.pct(np.exp(summary["ci_upp"]))),
        re_ci_high=float(analysis.pct(np.exp(summary["ci_low"]))),
        tau2=tau2,
        i2=max(float(combined.i2), 0.0),
    )
    if len(names) >= 3:
        half = stats.t.ppf(1 - alpha / 2, len(names) - 2) * np.sqrt(tau2 + spread**2)
        row.update(pi_low=float(analysis.pct(np.exp(mean + half))), pi_high=float(analysis.pct(np.exp(mean - half))))
    else:
        notes.append("a prediction interval needs at least three sites")
    row["re_note"] = "; ".join(notes)
    return row


@dataclass(frozen=True)
class PooledResults:
    """Everything the pooled analysis found.

    Attributes
    ----------
    results : pandas.DataFrame
        One row per outcome and ``site`` (``"pooled"`` first, then each site): ``site`` then
        the columns of :func:`fdkit.analysis.results_table` (``p_holm``/``p_bh`` adjust across
        the family's outcomes within the pooled rows and within each site's).
    heterogeneity : pandas.DataFrame
        One row per outcome: :data:`HETEROGENEITY_COLUMNS`.
    """

    results: pd.DataFrame
    heterogeneity: pd.DataFrame

    def pooled(self, outcome: str | None = None) -> pd.DataFrame:
        """The pooled rows (of one outcome)."""
        rows = self.results[self.results["site"] == POOLED]
        return rows if outcome is None else rows[rows["outcome"] == outcome]


def pooled_results(
    frame: pd.DataFrame,
    *,
    outcomes: tuple[str, ...] | None = None,
    seed: int = 0,
    permutations: int = analysis.PERMUTATIONS,
    alpha: float = 0.05,
    family: tuple[str, ...] | list[str] | None = None,
) -> PooledResults:
    """The pooled and per-site effects, the heterogeneity test and the random-effects summary.

    Parameters
    ----------
    frame : pandas.DataFrame
        The pooled frame (:func:`fdkit.sites.pool_frame`).
    outcomes : tuple of str, optional
        Default: every outcome in the frame.
    seed, permutations, alpha
        For every randomisation test (each outcome, site and test draws its own stream).
    family : sequence of str, optional
        The outcomes whose p-values are adjusted together, as the common protocol's
        ``multiplicity_family`` says (the others get no adjusted p-value); by default every
        outcome but the sensitivity ones (:func:`fdkit.analysis.adjust_p_values`).

    Returns
    -------
    PooledResults
    """
    frame = check_pooled_frame(frame.sort_values("person_id", ignore_index=True))
    names = outcomes or tuple(o for o in outcome_definitions.OUTCOME_NAMES if o in frame)
    options = dict(seed=seed, permutations=permutations)
    groups: dict[str, list[dict]] = {POOLED: []}
    rows = []
    for outcome in names:
        groups[POOLED].append(pooled_effect(frame, outcome, alpha=alpha, **options).row())
        for site, effect in site_effects(frame, outcome, alpha=alpha, **options).items():
            groups.setdefault(site, []).append(effect.row())
        rows.append({**heterogeneity_test(frame, outcome, **options), **random_effects(frame, outcome, alpha=alpha)})
    results = pd.concat(
        [
            analysis.adjust_p_values(pd.DataFrame(group), family=None if family is None else tuple(family)).assign(
                site=site
            )
            for site, group in groups.items()
        ],
        ignore_index=True,
    )
    columns = ["site", *analysis.RESULT_COLUMNS, "note"]
    return PooledResults(results[columns], pd.DataFrame(rows)[list(HETEROGENEITY_COLUMNS)])
