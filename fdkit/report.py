"""The trial report: everything a chief officer, a board or a funder needs, in one HTML file.

:func:`build_report` computes the report's content from a records folder and a sealed
allocation with the kit's own functions (no notebook, no kernel): the CONSORT flow, the
baseline table, the pre-specified primary outcome and the secondary outcomes with their
multiplicity adjustments, subgroups, engagement, limitations and an appendix. It follows the
analysis plan sealed with the allocation (:mod:`fdkit.adherence`): settings left out take the
plan's values, and a setting that departs from the plan needs a reason and is labelled.
:func:`summary_text` writes the primary result in words. :func:`render_report` writes the
report as one self-contained HTML file (every figure embedded, no scripts, nothing fetched)
laid out after CONSORT 2025 for readers who are not statisticians (:mod:`fdkit.checklist`
maps each of its 30 items to a section), and :func:`write_pdf`
prints it to an A4 PDF with headless Chromium where it is installed.

``notebooks/10_trial_report.ipynb`` is the teaching view of the same functions: how to read
and write a trial report.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import pandas as pd

from . import adherence, analysis, balance, eligibility, harm, randomise
from . import outcomes as outcome_definitions
from .adherence import Analysis, Following
from .checklist import read_statements
from .consort import ConsortCounts, consort_counts, describe_consort, plot_consort
from .plotting import literal
from .randomise import SealedPlan
from .records import Records, load_records
from .report_tables import format_interval, format_number, format_p, format_pct, outcome_label

__all__ = [
    "ConsortCounts",
    "INTERVENTION",
    "PACKAGES",
    "ReportSettings",
    "TrialReport",
    "build_report",
    "consort_counts",
    "describe_consort",
    "describe_forest",
    "execute_notebook",
    "find_chromium",
    "package_versions",
    "plot_consort",
    "plot_forest",
    "render_report",
    "summary_text",
    "write_pdf",
]

PACKAGES = ("fdkit", "numpy", "pandas", "scipy", "statsmodels", "matplotlib", "seaborn")

#: The Milton Keynes model, in words (DOMAIN: poster and press release). A unit that runs
#: something different says so with ``ReportSettings(intervention=...)``.
INTERVENTION = (
    "Young people offered the intervention were each given a named case worker from children's or "
    "adult social care for 12 months (two case workers, one per age band, each with 20 to 25 young "
    "people). The case worker worked one to one and problem by problem with the young person: "
    "education, housing, family, substance use, whatever stood in the way. The first visit was made "
    "jointly with the police lead officer, and police and social care met monthly about each case. "
    "Policing was procedurally just: fair, proportionate and explained, with enforcement used only "
    "where needed. The comparison group received the services they would have received anyway."
)


# ------------------------------------------------------------------ the content


@dataclass(frozen=True)
class ReportSettings:
    """What a report is made from, and the title block's facts.

    Attributes
    ----------
    The analysis options (``primary``, ``follow_up_months``, ``harm_weights``, ``lookup``,
    ``seed``, ``resamples``, ``permutations``) default to None: **the analysis plan sealed with
    the allocation**, or, for an allocation sealed without one, the kit's defaults (12 months,
    crime harm as a suspect, the illustrative weights, seed 1, 1,000 re-draws). A value that
    departs from a sealed plan needs ``deviation`` (a reason), and the results it touches are
    labelled not pre-specified. :func:`build_report` returns the settings resolved.

    Attributes
    ----------
    records, allocation : path
        The records folder and the sealed allocation file.
    funnel : path, optional
        The screening funnel CSV; ``None`` re-screens with the trial's rule on the date of
        randomisation.
    follow_up_months : int, optional
    harm_weights : path, optional
        A CSV of ``offence_code,weight``.
    lookup : path, optional
        A unit's offence lookup (as ``--lookup``), if the records were not loaded with it.
    primary : str, optional
        The primary outcome.
    seed, resamples, permutations : int, optional
        For the resampling methods.
    sensitivity_permutations : int
        Without a plan: re-draws for the sensitivity analysis's Poisson model, whose
        randomisation test and interval cost far more per re-draw than the primary method's (its
        p-values carry a Monte Carlo error of up to about 0.03 at 250). A plan's re-draws are
        used for every method.
    deviation : str
        Why the report departs from the sealed plan, when it does (``--deviate``).
    statements : path, optional
        A ``report.toml`` of the unit's own text for the CONSORT 2025 items the data cannot
        fill (:mod:`fdkit.checklist`).
    unit, report_date, registration : str
        The title block: who ran the trial, the report's date (default today) and the trial's
        registration (registry and identifier; a plan's registration is used when it has one).
    intervention : str
        The intervention in words (default: the Milton Keynes model, :data:`INTERVENTION`).
    """

    records: Path
    allocation: Path
    funnel: Path | None = None
    follow_up_months: int | None = None
    harm_weights: Path | None = None
    primary: str | None = None
    seed: int | None = None
    resamples: int | None = None
    permutations: int | None = None
    sensitivity_permutations: int = 250
    unit: str = ""
    report_date: str = ""
    registration: str = ""
    intervention: str = INTERVENTION
    lookup: Path | None = None
    deviation: str = ""
    statements: Path | None = None

    def __post_init__(self):
        if self.primary is not None and self.primary not in outcome_definitions.OUTCOME_NAMES:
            raise ValueError(
                f"unknown primary outcome {self.primary!r}; "
                f"choose one of {', '.join(outcome_definitions.OUTCOME_NAMES)}"
            )


#: What the report runs for an allocation sealed without a plan (as it always has).
REPORT_DEFAULTS = Analysis(
    outcomes=outcome_definitions.OUTCOME_NAMES,
    methods=analysis.METHODS,
    follow_up_months=12,
    baseline_months=24,
    seed=1,
    permutations=analysis.PERMUTATIONS,
    resamples=1000,
)


@dataclass
class TrialReport:
    """The computed content of a trial report (the numbers; :mod:`fdkit.report_html` lays them out)."""

    settings: ReportSettings
    records: Records
    frame: pd.DataFrame
    funnel: pd.DataFrame
    consort: ConsortCounts
    balance: pd.DataFrame
    headline: pd.DataFrame
    methods: pd.DataFrame
    interactions: pd.DataFrame
    engagement: pd.DataFrame | None
    seal: dict
    seal_unchanged: bool
    synthetic: dict | None
    versions: pd.DataFrame
    interval: str = "randomisation"
    timings: dict = field(default_factory=dict)
    following: Following = field(default_factory=lambda: Following(REPORT_DEFAULTS))
    statements: dict[str, str] = field(default_factory=dict)

    @property
    def plan(self) -> SealedPlan | None:
        """The analysis plan sealed with the allocation (None: it was sealed without one)."""
        return self.following.sealed

    @property
    def primary_outcome(self) -> str:
        """The report's primary outcome (the settings', resolved from the plan by :func:`build_report`)."""
        return self.settings.primary or self.following.analysis.primary

    @property
    def follow_up_months(self) -> int:
        """The follow-up the outcomes were measured over."""
        return self.settings.follow_up_months or self.following.analysis.follow_up_months

    @property
    def primary_pre_specified(self) -> bool:
        """Whether the primary result shown is the one the sealed plan asked for (False without a plan)."""
        if self.plan is None or self.primary_outcome != self.plan.plan.primary_outcome:
            return False
        return self.primary.get("plan", adherence.PRE_SPECIFIED) != adherence.NOT_PRE_SPECIFIED

    @property
    def registration(self) -> str:
        """The trial's registration: the sealed plan's, else the one given."""
        planned = self.plan.plan.registration_id if self.plan is not None else ""
        return planned or self.settings.registration

    @property
    def primary(self) -> pd.Series:
        """The primary outcome's row (all ages)."""
        rows = self.headline[(self.headline["outcome"] == self.primary_outcome) & (self.headline["subgroup"] == "all")]
        return rows.iloc[0]

    @property
    def overall(self) -> pd.DataFrame:
        """Every outcome, all ages: primary first, then the secondary outcomes."""
        rows = self.headline[self.headline["subgroup"] == "all"]
        order = [self.primary_outcome] + [o for o in rows["outcome"] if o != self.primary_outcome]
        return rows.set_index("outcome").loc[order].reset_index()

    @property
    def eligibility_steps(self) -> list[str]:
        """The eligibility rule in words, step by step, as the funnel recorded it."""
        return [str(text) for text in self.funnel["description"].iloc[1:]]

    @property
    def illustrative_weights(self) -> bool:
        return self.settings.harm_weights is None


def _progress(callback: Callable[[str], None] | None, message: str) -> None:
    if callback is not None:
        callback(message)


class _Done:
    """A result computed on the spot, with the interface of a future."""

    def __init__(self, function, args, kwargs):
        self.call = (function, args, kwargs)

    def result(self):
        function, args, kwargs = self.call
        return function(*args, **kwargs)


def _in_background(function, *args, **kwargs):
    """Start ``function(*args, **kwargs)`` in a forked process when there is a spare core.

    Returns an object whose ``result()`` gives the value. Without fork (Windows, macOS
    defaults) or a second core, the call runs when ``result()`` is asked for. Either way the
    value is the same: every random stream is seeded from the settings, not from the process.
    """
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor

    if "fork" not in multiprocessing.get_all_start_methods() or (os.cpu_count() or 1) < 2:
        return _Done(function, args, kwargs)
    executor = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("fork"))
    future = executor.submit(function, *args, **kwargs)
    executor.shutdown(wait=False)
    return future


def _synthetic_manifest(folder: Path) -> dict | None:
    """The kit's manifest when the records are ones ``fdkit synth`` wrote, else None."""
    from .synth import read_manifest

    return read_manifest(folder)


def build_report(
    settings: ReportSettings, *, progress: Callable[[str], None] | None = None, records: Records | None = None
) -> TrialReport:
    """Compute everything the report shows.

    Parameters
    ----------
    settings : ReportSettings
    progress : callable, optional
        Called with a short message before each stage (the command line prints them when
        stderr is a terminal).
    records : Records, optional
        Already-loaded records (read from ``settings.records`` otherwise).

    Returns
    -------
    TrialReport
    """
    import time

    timings, started = {}, time.perf_counter()

    def lap(name):
        nonlocal started
        now = time.perf_counter()
        timings[name] = now - started
        started = now

    _progress(progress, "reading the records, the allocation and its analysis plan")
    sealed_plan = randomise.sealed_plan(settings.allocation)
    folder = Path(settings.allocation).parent
    lookup = adherence.planned_lookup(sealed_plan, folder, settings.lookup)
    data = records if records is not None else load_records(settings.records, lookup=lookup)
    weights_given = adherence.planned_weights(sealed_plan, folder, settings.harm_weights)
    following = _following(settings, sealed_plan, data, weights_given)
    run = following.analysis
    settings = _resolved(settings, run, sealed_plan)
    sealed = randomise.read_allocation(settings.allocation)
    weights = weights_given if weights_given is not None else harm.illustrative_weights()
    frame = outcome_definitions.build_frame(
        data, sealed, weights=weights, follow_up_months=run.follow_up_months, baseline_months=run.baseline_months
    )
    if settings.funnel:
        funnel = pd.read_csv(settings.funnel, keep_default_na=False)
    else:
        funnel = eligibility.screen(data, sealed.table["randomised_on"].min()).funnel
    seal_file = randomise.seal_path(settings.allocation)
    seal = json.loads(seal_file.read_text(encoding="utf-8"))
    unchanged = hashlib.sha256(Path(settings.allocation).read_bytes()).hexdigest() == seal.get("allocation_sha256")
    statements = read_statements(settings.statements) if settings.statements else {}
    lap("read")

    # The sensitivity analysis's Poisson model is the slowest part (a model fit per step of its
    # interval search); where a second core and fork exist it runs beside everything else.
    primary_method, sensitivity = run.methods[0], run.methods[1:]
    slow_methods = tuple(m for m in ("poisson_robust",) if m in sensitivity)
    sensitivity_redraws = run.permutations if following.planned else settings.sensitivity_permutations
    overall = replace(run, subgroups=())
    pending = (
        _in_background(
            adherence.results, frame, replace(overall, methods=slow_methods, permutations=sensitivity_redraws)
        )
        if slow_methods
        else None
    )
    _progress(progress, "baseline balance")
    baseline = balance.balance_table(data, sealed, weights=weights)
    lap("balance")
    _progress(progress, "outcomes: the primary method, with randomisation tests and intervals")
    headline = following.label(adherence.results(frame, replace(run, methods=(primary_method,))))
    lap("headline")
    _progress(progress, "sensitivity analysis: every method")
    others = tuple(m for m in sensitivity if m not in slow_methods)
    parts = [headline[headline["subgroup"] == "all"]]  # the primary method's rows, computed above
    if others:
        parts.append(following.label(adherence.results(frame, replace(overall, methods=others))))
    if pending is not None:  # there were slow methods to run in the background
        parts.append(following.label(pending.result()))
    order = {name: i for i, name in enumerate(analysis.METHODS)}
    methods = pd.concat(parts, ignore_index=True)
    methods = methods.sort_values(
        ["outcome", "method"],
        key=lambda c: c.map({n: i for i, n in enumerate(run.outcomes)}) if c.name == "outcome" else c.map(order),
        kind="stable",
        ignore_index=True,
    )
    lap("methods")
    _progress(progress, "subgroups and engagement")
    outcomes_run = [name for name in run.outcomes if name in frame]
    interactions = pd.DataFrame(columns=["outcome", "p_value", "method", "note"])
    if run.subgroups is None or len(run.subgroups) > 1:
        interactions = following.label(
            pd.concat(
                [analysis.interaction_test(frame, name, seed=run.seed, permutations=run.permutations)
                 for name in outcomes_run],
                ignore_index=True,
            )
        )  # fmt: skip
    engagement = None
    if "engaged" in frame and run.cace:
        engagement = following.label(
            pd.concat(
                [
                    analysis.cace(
                        frame, name, seed=run.seed, resamples=run.resamples, permutations=run.permutations
                    ).to_frame()
                    for name in outcomes_run
                ],
                ignore_index=True,
            )
        )
    lap("subgroups")
    return TrialReport(
        settings=settings,
        records=data,
        frame=frame,
        funnel=funnel,
        consort=consort_counts(funnel, frame),
        balance=baseline,
        headline=headline,
        methods=methods,
        interactions=interactions,
        engagement=engagement,
        seal=seal,
        seal_unchanged=unchanged,
        synthetic=_synthetic_manifest(Path(settings.records)),
        versions=package_versions(),
        interval=run.interval,
        timings=timings,
        following=following,
        statements=statements,
    )


def _following(settings: ReportSettings, sealed_plan, data: Records, weights) -> Following:
    """How the report's settings stand to the sealed plan (:class:`fdkit.adherence.PlanDeparted` if they depart)."""
    given = {
        "primary_outcome": settings.primary,
        "follow_up_months": settings.follow_up_months,
        "seed": settings.seed,
        "permutations": settings.permutations,
        "resamples": settings.resamples,
        "registration_id": settings.registration or None,
    }
    if sealed_plan is None:
        return adherence.unplanned(given, REPORT_DEFAULTS.__dict__)
    tables = adherence.table_departures(
        sealed_plan,
        weights=weights,
        weights_given=settings.harm_weights,
        lookup=data.lookup,
        lookup_given=settings.lookup,
        reason=settings.deviation,
    )
    return adherence.follow(sealed_plan, given, reason=settings.deviation, extra=tables)


def _resolved(settings: ReportSettings, run: Analysis, sealed_plan) -> ReportSettings:
    """The settings with every analysis choice filled in: what the report ran."""
    weights = settings.harm_weights
    if weights is None and sealed_plan is not None and sealed_plan.plan.harm_weights:
        weights = Path(settings.allocation).parent / sealed_plan.plan.harm_weights
    return replace(
        settings,
        primary=run.primary,
        follow_up_months=run.follow_up_months,
        seed=run.seed,
        permutations=run.permutations,
        resamples=run.resamples,
        harm_weights=weights,
    )


# ------------------------------------------------------------ the summary in words


def _p_in_words(p: float) -> str:
    if not np.isfinite(p):
        return "no p-value could be calculated"
    if p < 0.001:
        return "p < 0.001"
    return f"p = {p:.3f}"


def _how_many(n: int) -> str:
    return "none" if n == 0 else f"{n:,}"


def _change_in_words(pct: float) -> str:
    """A % reduction as words: "a 12.3% reduction", "an 8.0% increase", "no change"."""
    if not np.isfinite(pct):
        return "an increase with no upper limit"
    if round(pct, 1) == 0:
        return "no change"
    # A reduction cannot pass 100% (format_pct says so); an increase can be any size.
    size = format_pct(pct) if pct > 0 else format_number(-pct, 1)
    whole = size.split(".")[0].replace(",", "")
    article = "an" if whole.startswith("8") or whole in ("11", "18") else "a"  # an 8%, an 11%, an 80%
    return f"{article} {size}% {'reduction' if pct > 0 else 'increase'}"


def _interval_in_words(low: float, high: float) -> str:
    """An interval of % reductions in words, from the least to the most favourable end."""
    if pd.isna(low) and pd.isna(high):
        return "could not be computed"
    return f"runs from {_change_in_words(low)} to {_change_in_words(high)}"


def summary_text(report: TrialReport) -> str:
    """The primary outcome's result in words: what it shows and what it does not.

    Written for a board: the estimate, its interval and p-value with their plain meaning,
    then the caveats that matter for a decision.
    """
    row = report.primary
    months = report.follow_up_months
    label = outcome_label(row["outcome"]).lower()
    n_t, n_c = int(row["n_treated"]), int(row["n_control"])
    unit = " days" if outcome_definitions.get(row["outcome"]).measure == "harm" else ""
    decimals = 1 if unit else 2
    means = f"(an average of {row['mean_treated']:.{decimals}f}{unit} against {row['mean_control']:.{decimals}f}{unit})"
    pct, p = float(row["pct_reduction"]), float(row["p_value"])
    if report.plan is None:
        named = f"The pre-specified primary outcome was {label} in the {months} months after randomisation. "
    elif not report.primary_pre_specified:
        named = (
            f"This report's primary outcome is {label} in the {months} months after randomisation, analysed in a way "
            f"the analysis plan sealed on {report.plan.date} did not specify (see Changes to the plan), so the "
            "result below is exploratory, not the trial's pre-specified answer. "
        )
    else:
        named = (
            f"The primary outcome, fixed in the analysis plan sealed with the allocation on {report.plan.date}, was "
            f"{label} in the {months} months after randomisation. "
        )
    opening = (
        named + f"{n_t + n_c:,} young people were randomised: {n_t:,} were offered the intervention and {n_c:,} "
        "received usual services. "
    )
    if not np.isfinite(pct):
        return (
            opening + f"The effect on {label} could not be estimated ({row.get('note') or 'no events'}), "
            "so the trial says nothing about it."
        )
    if pct >= 0:
        direction = "fewer" if "offences" in label else "less"
    else:
        direction = "more"
    result = (
        f"Those offered the intervention had {format_pct(pct) if pct >= 0 else format_number(-pct, 1)}% {direction} "
        f"{label} than those who were not "
        f"{means}. The 95% interval {_interval_in_words(row['ci_low'], row['ci_high'])}, "
        f"and {_p_in_words(p)}. "
    )
    if np.isfinite(p) and p < 0.05:
        meaning = (
            "If the intervention had made no difference to anyone, a difference this large would have come up in "
            f"fewer than 5 in 100 of the possible random allocations, so the trial gives evidence that the "
            f"intervention changed {label}. "
        )
    else:
        share = f"about {100 * p:.0f} in 100" if np.isfinite(p) else "many"
        meaning = (
            "If the intervention had made no difference to anyone, a difference at least this large would still "
            f"have come up in {share} of the possible random allocations. The trial is therefore not conclusive: "
            "it does not show that the intervention works, and it does not show that it does not. "
        )
    secondary = report.overall.iloc[1:]
    raw = int((secondary["p_value"] < 0.05).sum())
    holm = int((secondary["p_holm"] < 0.05).sum())
    caveats = (
        f"It does not show how large the effect would be elsewhere: with {n_t + n_c:,} people the interval is wide, "
        "and small trials that find large effects tend to overstate them. "
        f"Of the {len(secondary)} secondary outcomes, {_how_many(raw)} had p < 0.05 before adjustment for testing "
        f"several outcomes and {_how_many(holm)} after it; they support or qualify the primary result but cannot "
        "replace it."
    )
    if report.synthetic is not None:
        caveats += " These records are synthetic: the figures describe no real people."
    return opening + result + meaning + caveats


def limitations(report: TrialReport) -> list[tuple[str, str]]:
    """The report's limitations, as (heading, text) pairs."""
    n = report.consort.randomised
    items = [
        (
            "A small trial.",
            f"{n:,} people were randomised. With so few, intervals are wide, one prolific person can move an arm's "
            "average, and a large estimate is more likely to overstate the true effect than to understate it. "
            "A larger replication is needed before the size of the effect is relied on.",
        ),
        (
            "Several outcomes.",
            f"{len(report.overall)} outcomes were analysed. The more outcomes tested, the more likely one looks "
            "significant by chance; the Holm and Benjamini–Hochberg columns adjust for this. Only the primary "
            "outcome, named in advance, answers the trial's question.",
        ),
        _pre_specified(report),
        (
            "Detection bias.",
            "Outcomes come from police records, so a crime counts only if the police record it. People under "
            "closer police attention may have more of their crimes recorded; the harm outcome leaves out "
            "police-initiated crimes for this reason, but the other outcomes can still be affected.",
        ),
    ]
    if report.illustrative_weights:
        items.append(
            (
                "Illustrative harm weights.",
                "Crime harm is weighted with the kit's illustrative table, not the official Cambridge Crime Harm "
                "Index. The harm figures show the method and cannot be compared with published CCHI results; "
                "load the official table with --harm-weights to report real harm.",
            )
        )
    if report.synthetic is not None:
        items.append(
            (
                "Synthetic records.",
                "The records were generated by fdkit's simulator: they describe no real people, and these results "
                "are not evidence about the Milton Keynes trial or any intervention.",
            )
        )
    return items


def _pre_specified(report: TrialReport) -> tuple[str, str]:
    """The limitation about choosing the analysis in advance: what the seal shows, and what it cannot."""
    primary = outcome_label(report.primary_outcome).lower()
    if report.plan is None:
        return (
            "The primary outcome must be named before the data are seen.",
            f"This report takes “{primary}” as primary because it was named when the report was made (fdkit "
            "report --primary); no analysis plan was sealed with the allocation. Only a registered protocol, "
            "written before follow-up ended, shows that it was chosen in advance.",
        )
    if not report.primary_pre_specified or report.following.departures:
        return (
            "Departures from the sealed plan.",
            f"The analysis plan sealed on {report.plan.date} fixed the analysis before any outcome existed; this "
            "report departs from it (Changes to the plan), and the results those changes touch are exploratory.",
        )
    return (
        "A plan sealed in advance.",
        f"“{primary}” and every other choice in this analysis were fixed in the analysis plan sealed with the "
        f"allocation on {report.plan.date}, before any outcome existed. The seal proves the plan has not changed "
        "since; that it was sealed on that date rests on the fingerprint having been registered or shared then.",
    )


# -------------------------------------------------------------------- forest plot


def _forest_rows(results: pd.DataFrame, method: str) -> tuple[pd.DataFrame, list[str], list[str]]:
    rows = results[results["method"] == method]
    order = [o.name for o in outcome_definitions.OUTCOMES if o.name in set(rows["outcome"])]
    subgroups = list(dict.fromkeys(rows["subgroup"]))
    return rows, order, subgroups


def plot_forest(results: pd.DataFrame, method: str = "ratio_of_means", ax=None):
    """A forest plot of % reductions with intervals, on the log-ratio scale.

    Each outcome is a group of rows, one per subgroup; the axis is the ratio of treated to
    control (log scale), labelled as % reductions, so a halving and a doubling are equally far
    from "no effect". An interval that runs past the plot's edge (or to 100% or to minus
    infinity) ends in an arrow; a row with no interval, or whose estimate cannot be drawn on
    this scale (a 100% reduction), is still shown, with the reason written beside it. The
    legend sits below the plot, clear of the data. Subgroup names and notes come from the
    data, so they are drawn literally (:func:`fdkit.plotting.literal`).

    Returns
    -------
    matplotlib.axes.Axes
    """
    import matplotlib.pyplot as plt

    rows, order, subgroups = _forest_rows(results, method)
    height = len(order) * (len(subgroups) + 1)
    if ax is None:
        _, ax = plt.subplots(figsize=(8.5, 0.27 * height + 1.4))
    floor, ceiling = 0.02, 5.0
    y, ticks, names = height, [], []
    for outcome in order:
        ticks.append(y - (len(subgroups) + 1) / 2 + 0.5)
        names.append(literal(outcome_label(outcome)))
        for offset, (subgroup, marker) in enumerate(zip(subgroups, "osD^v")):
            row = rows[(rows["outcome"] == outcome) & (rows["subgroup"] == subgroup)]
            if row.empty:
                continue
            row = row.iloc[0]
            colour = f"C{offset}"
            position = y - (offset + 1)
            ratio = 1 - row["pct_reduction"] / 100
            low, high = 1 - row["ci_high"] / 100, 1 - row["ci_low"] / 100
            explanation = ""
            if np.isfinite(low) or np.isfinite(high) or (np.isinf(row["ci_low"]) or np.isinf(row["ci_high"])):
                low = floor if not low > floor else low  # a ratio of 0 or below: an arrow to the left
                high = ceiling if not (np.isfinite(high) and high < ceiling) else high
                ax.plot([low, high], [position, position], color=colour, linewidth=1.6, solid_capstyle="butt")
                for end, edge, head in ((low, floor, "<"), (high, ceiling, ">")):
                    if end == edge:
                        ax.plot(end, position, marker=head, color=colour, markersize=7, clip_on=False)
            else:
                explanation = "no interval"
            if np.isfinite(ratio) and ratio > 0:
                ax.plot(ratio, position, marker=marker, color=colour, linestyle="none", markersize=6)
            elif np.isfinite(ratio):
                ax.plot(floor, position, marker=marker, color=colour, markersize=6, clip_on=False)
                explanation = "100% reduction: no events in the intervention arm" + (
                    "; no interval" if explanation else ""
                )
            else:
                explanation = "not estimable"
            if explanation:
                note = row.get("note") if isinstance(row.get("note"), str) and row.get("note") else ""
                text = explanation + (f" ({note})" if note and note not in explanation else "")
                ax.text(1.01, position, literal(text), transform=ax.get_yaxis_transform(), va="center", fontsize=8)
        y -= len(subgroups) + 1
    for subgroup, offset in zip(subgroups, range(len(subgroups))):
        ax.plot([], [], marker="osD^v"[offset], color=f"C{offset}", label=literal(subgroup))
    ax.axvline(1, color="0.4", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_xlim(floor, ceiling)
    ax.set_ylim(0.3, height + 0.3)
    marks = [0.05, 0.1, 0.25, 0.5, 1, 2, 4]
    ax.set_xticks(marks, [f"{100 * (1 - m):.0f}%" for m in marks])
    ax.minorticks_off()
    ax.set_xlabel("% reduction in the intervention arm (log-ratio scale; left of the line = fewer)")
    ax.set_yticks(ticks, names)
    ax.tick_params(axis="y", length=0)
    ax.grid(axis="y", visible=False)
    ax.legend(
        title="Age band:",
        loc="lower left",
        bbox_to_anchor=(0.0, 1.0),
        ncol=len(subgroups),
        frameon=False,
        alignment="left",
    )
    ax.set_title("Effects by outcome (95% intervals; arrows: the interval continues)", pad=44)
    return ax


def describe_forest(results: pd.DataFrame, method: str = "ratio_of_means") -> str:
    """The forest plot in words (its alternative text)."""
    rows, order, subgroups = _forest_rows(results, method)
    parts = []
    for outcome in order:
        cells = []
        for subgroup in subgroups:
            row = rows[(rows["outcome"] == outcome) & (rows["subgroup"] == subgroup)]
            if row.empty:
                continue
            row = row.iloc[0]
            cells.append(
                f"{subgroup}: {format_pct(row['pct_reduction'])}% "
                f"({format_interval(row['ci_low'], row['ci_high'])}%, p {format_p(row['p_value'])})"
            )
        parts.append(f"{outcome_label(outcome)}: " + "; ".join(cells) + ".")
    return "Forest plot of % reductions with 95% intervals by outcome and age band. " + " ".join(parts)


# ------------------------------------------------------------------ environment


def package_versions() -> pd.DataFrame:
    """The versions of Python and the main packages, for the report's record."""
    rows = [("python", sys.version.split()[0])]
    for name in PACKAGES:
        try:
            rows.append((name, version(name)))
        except PackageNotFoundError:
            rows.append((name, "not installed"))
    return pd.DataFrame(rows, columns=["package", "version"])


# -------------------------------------------------------------- writing the file


def render_report(
    parameters: dict | ReportSettings,
    out: str | Path,
    *,
    progress: Callable[[str], None] | None = None,
    notebook=None,
    timeout=None,
) -> Path:
    """Compute the report and write it as one self-contained HTML file.

    Parameters
    ----------
    parameters : ReportSettings or dict
        The settings, or a dict of :class:`ReportSettings` fields (``records``,
        ``allocation``, ``funnel``, ``follow_up_months``, ``harm_weights``, ``seed``, ...).
    out : path
        The HTML file to write (atomically: a reader never sees half a file).
    progress : callable, optional
        Called with a message before each stage.
    notebook, timeout
        Accepted and ignored, for callers of the earlier version that executed a notebook.

    Returns
    -------
    pathlib.Path
        ``out``.
    """
    from .report_html import report_to_html

    del notebook, timeout

    settings = parameters if isinstance(parameters, ReportSettings) else settings_from_dict(parameters)
    report = build_report(settings, progress=progress)
    _progress(progress, "drawing the figures and writing the page")
    _write_text(Path(out), report_to_html(report))
    return Path(out)


def settings_from_dict(parameters: dict) -> ReportSettings:
    """:class:`ReportSettings` from a dict (unknown keys are an error; paths become :class:`~pathlib.Path`)."""
    known = set(inspect.signature(ReportSettings).parameters)
    if unknown := set(parameters) - known:
        raise ValueError(f"unknown report settings {sorted(unknown)}; known: {', '.join(sorted(known))}")
    values = dict(parameters)
    for key in ("records", "allocation", "funnel", "harm_weights"):
        if values.get(key):
            values[key] = Path(values[key])
    return replace(ReportSettings(values.pop("records"), values.pop("allocation")), **values)


def _write_text(path: Path, text: str) -> None:
    """Write the page atomically (:func:`fdkit.files.atomic_write`): a reader never sees half a file."""
    from .files import atomic_write

    atomic_write(path, lambda handle: handle.write(text))


def find_chromium() -> str | None:
    """The path of a Chromium or Chrome browser on this machine, or None."""
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome"):
        if found := shutil.which(name):
            return found
    return None


#: How to print the report without Chromium: any browser's print dialogue does it.
#: How the kit runs Chromium: no window, no sandbox (these machines run as root), and nothing
#: fetched or synced in the background, so a report prints offline.
HEADLESS_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
PRINT_HELP = (
    "open {html} in a web browser, choose Print (Ctrl+P or Cmd+P), set the paper to A4 and the "
    "destination to 'Save as PDF'; the page's print layout does the rest"
)


def write_pdf(html_path: str | Path, pdf_path: str | Path, *, browser: str | None = None, timeout: int = 120) -> Path:
    """Print the HTML report to an A4 PDF with headless Chromium.

    Raises
    ------
    FileNotFoundError
        When no Chromium is installed; the message says how to print from a browser instead.
    """
    browser = browser or find_chromium()
    html_path, pdf_path = Path(html_path).resolve(), Path(pdf_path).resolve()
    if browser is None:
        raise FileNotFoundError("no Chromium to print with; " + PRINT_HELP.format(html=html_path))
    with tempfile.TemporaryDirectory() as profile:
        command = [
            browser,
            *HEADLESS_FLAGS,
            f"--user-data-dir={profile}",
            "--no-pdf-header-footer",
            f"--print-to-pdf={pdf_path}",
            html_path.as_uri(),
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0 or not pdf_path.is_file():
        raise RuntimeError(f"Chromium could not print the report (exit {done.returncode}): {done.stderr[-500:]}")
    return pdf_path


def execute_notebook(document, cwd: str | Path, *, timeout: int = 600) -> None:
    """Run a notebook in place, in this Python (not whatever a 'python3' kernelspec points at).

    Parameters
    ----------
    document : nbformat.NotebookNode
        Executed in place: its outputs are filled in.
    cwd : path
        The kernel's working folder (notebooks find their data relative to it).
    on_cell_executed : callable, optional
        nbclient's hook, called after each cell (with ``cell``, ``cell_index`` and
        ``execute_reply`` keywords); the command line uses it to show progress.
    """
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    with tempfile.TemporaryDirectory() as kernels:
        spec = Path(kernels) / "fdkit-current"
        spec.mkdir()
        (spec / "kernel.json").write_text(
            json.dumps(
                {
                    "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                    "display_name": "fdkit (this Python)",
                    "language": "python",
                }
            )
        )
        manager = KernelManager(
            kernel_name="fdkit-current", kernel_spec_manager=KernelSpecManager(kernel_dirs=[kernels])
        )
        NotebookClient(
            document,
            km=manager,
            timeout=timeout,
            resources={"metadata": {"path": str(cwd)}},
        ).execute()


def today() -> str:
    """Today's date, ISO (the report's default date)."""
    return date.today().isoformat()
