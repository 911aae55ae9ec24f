"""The pooled report of a multi-site trial: what ``fdkit report --pooled`` shows.

:func:`build_pooled_report` gathers the content from a pooled folder written by ``fdkit pool``
(:func:`fdkit.sites.read_pooled`, which refuses a folder changed since): the pooled primary
result, the CONSORT flow of every site and in total, the sites' estimates beside the pooled one
(:func:`plot_site_forest`), the test of a common effect and the random-effects summary, and one
appendix per site (its flow, baseline table, results and seal). :func:`pooled_summary_text`
writes the primary result in words. The page itself is laid out by
:func:`fdkit.report_html.pooled_report_to_html`, with the same template and tables as the
single-site report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .consort import ConsortCounts, consort_counts
from .pooling import POOLED
from .report import INTERVENTION, package_versions, today
from .report_tables import format_interval, format_number, format_p, format_pct, outcome_label
from .sites import PooledFolder, read_pooled

__all__ = [
    "PooledReport",
    "build_pooled_report",
    "describe_site_forest",
    "plot_site_forest",
    "pooled_limitations",
    "pooled_summary_text",
    "total_consort",
]

#: The row labels of the site forest plot's summaries.
POOLED_LABEL = "All sites (pooled)"
AVERAGE_LABEL = "Average site (random effects)"


@dataclass
class PooledReport:
    """The computed content of a pooled report (the numbers; :mod:`fdkit.report_html` lays them out).

    Attributes
    ----------
    pooled : fdkit.sites.PooledFolder
    consort : dict of str to ConsortCounts
        Each site's flow, by name.
    total : ConsortCounts
        The flow of every site together.
    unit, report_date, registration, intervention : str
        The title block.
    versions : pandas.DataFrame
    """

    pooled: PooledFolder
    consort: dict[str, ConsortCounts]
    total: ConsortCounts
    unit: str = ""
    report_date: str = ""
    registration: str = ""
    intervention: str = INTERVENTION
    versions: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def settings(self) -> dict:
        return self.pooled.manifest["settings"]

    @property
    def primary_outcome(self) -> str:
        return str(self.settings["primary"])

    @property
    def sites(self) -> list[str]:
        return self.pooled.site_names

    def rows(self, site: str = POOLED) -> pd.DataFrame:
        """The results of one site (or the pooled ones): primary first, then the outcomes in order."""
        results = self.pooled.results
        rows = results[results["site"] == site]
        order = [self.primary_outcome] + [o for o in rows["outcome"] if o != self.primary_outcome]
        return rows.set_index("outcome").loc[order].reset_index()

    @property
    def primary(self) -> pd.Series:
        """The pooled primary outcome's row."""
        return self.rows().iloc[0]

    @property
    def heterogeneity(self) -> pd.Series:
        """The primary outcome's test of a common effect and random-effects summary."""
        return self.pooled.heterogeneity.set_index("outcome").loc[self.primary_outcome]

    @property
    def synthetic(self) -> bool:
        return all(site.get("synthetic") for site in self.pooled.manifest["sites"])


def total_consort(counts: list[ConsortCounts]) -> ConsortCounts:
    """Several sites' CONSORT flows added together (exclusions by reason, in first-seen order)."""
    reasons: dict[str, int] = {}
    for each in counts:
        for reason, number in each.exclusions:
            reasons[reason] = reasons.get(reason, 0) + number
    engaged = [each.engaged for each in counts]
    return ConsortCounts(
        assessed=sum(c.assessed for c in counts),
        exclusions=tuple(reasons.items()),
        randomised=sum(c.randomised for c in counts),
        treatment=sum(c.treatment for c in counts),
        control=sum(c.control for c in counts),
        engaged=None if any(e is None for e in engaged) else sum(e for e in engaged if e is not None),
        analysed_treatment=sum(c.analysed_treatment for c in counts),
        analysed_control=sum(c.analysed_control for c in counts),
        lost_treatment=sum(c.lost_treatment for c in counts),
        lost_control=sum(c.lost_control for c in counts),
    )


def build_pooled_report(
    folder: str | Path, *, unit: str = "", report_date: str = "", registration: str = ""
) -> PooledReport:
    """Read a pooled folder (refusing one changed since ``fdkit pool`` wrote it) and gather the report.

    Parameters
    ----------
    folder : path
        The folder ``fdkit pool --out`` wrote.
    unit, report_date, registration : str
        The title block: the network that ran the trial, the report's date (default today) and
        the trial's registration.

    Returns
    -------
    PooledReport
    """
    pooled = read_pooled(folder)
    frame, funnels = pooled.frame, pooled.funnels
    flows = {
        name: consort_counts(funnels[funnels["site"] == name].reset_index(drop=True), frame[frame["site"] == name])
        for name in pooled.site_names
    }
    return PooledReport(
        pooled=pooled,
        consort=flows,
        total=total_consort(list(flows.values())),
        unit=unit,
        report_date=report_date or today(),
        registration=registration,
        versions=package_versions(),
    )


# ------------------------------------------------------------------- the summary in words


def _change(pct: float) -> str:
    """A % reduction in words: "a reduction of 41.8%", "an increase of 291.0%", "no change"."""
    if not np.isfinite(pct):
        return "an increase with no upper limit" if pct < 0 else "no estimate"
    if round(pct, 1) == 0:
        return "no change"
    # A reduction cannot pass 100% (format_pct says so); an increase can be any size.
    return f"a reduction of {format_pct(pct)}%" if pct > 0 else f"an increase of {format_number(-pct, 1)}%"


def _p_words(p: float) -> str:
    text = format_p(p)
    return f"p {text}" if text.startswith("<") else f"p = {text}"


def pooled_summary_text(report: PooledReport) -> str:
    """The pooled primary result in words, with what the sites' spread means for a new site."""
    row, het = report.primary, report.heterogeneity
    label = outcome_label(report.primary_outcome).lower()
    n_t, n_c = int(row["n_treated"]), int(row["n_control"])
    months = report.settings["follow_up_months"]
    text = (
        f"{len(report.sites)} sites ran the same protocol, each randomising its own eligible young people with a "
        f"sealed allocation. In all {n_t + n_c:,} were randomised: {n_t:,} offered the intervention and {n_c:,} "
        f"usual services. The pre-specified primary outcome was {label} in the {months} months after randomisation. "
    )
    pct, p = float(row["pct_reduction"]), float(row["p_value"])
    if not np.isfinite(pct):
        return text + f"The pooled effect could not be estimated ({row['note'] or 'no events'})."
    text += (
        f"Pooled across the sites, the estimate is {_change(pct)} "
        f"(95% interval {format_interval(row['ci_low'], row['ci_high'])}%, {_p_words(p)}), from a randomisation "
        "test that re-draws every site's own allocation. "
    )
    if np.isfinite(p) and p < 0.05:
        text += "Taken together, the sites give evidence that the intervention changed this outcome. "
    else:
        text += "Taken together, the sites are not conclusive: they neither show that it works nor that it does not. "
    if np.isfinite(het["p_value"]):
        text += (
            f"The test of a common effect at every site gives {_p_words(het['p_value'])}; with "
            f"{len(report.sites)} sites it can detect only large differences between them. "
        )
    if het["re_sites"] >= 3 and np.isfinite(het["pi_low"]):
        text += (
            f"Allowing the effect to vary between sites, a new site's effect could plausibly lie anywhere from "
            f"{_change(het['pi_low'])} to {_change(het['pi_high'])} (95% prediction interval). "
        )
    text += (
        "Read the sites' own results in the forest plot, not by their own p-values: each site alone is small, so "
        "a non-significant site is not evidence that the intervention failed there."
    )
    if report.synthetic:
        text += " These records are synthetic: the figures describe no real people."
    return text


def pooled_limitations(report: PooledReport) -> list[tuple[str, str]]:
    """The pooled report's limitations, as (heading, text) pairs."""
    items = [
        (
            "Few sites.",
            f"{len(report.sites)} sites can say little about how much the effect varies between places: the "
            "between-site variance is estimated from only as many numbers as there are sites, and the prediction "
            "interval for a new site is wide for that reason.",
        ),
        (
            "One protocol, several places.",
            "Pooling assumes every site screened, randomised, delivered and measured the same way. Differences in "
            "how sites ran the intervention, or recorded crime, show up as between-site variation.",
        ),
        (
            "Person IDs are site-scoped.",
            "Each site's records are counted as its own people. Someone randomised at two sites would be counted "
            "twice; the sites must check for this between themselves before pooling.",
        ),
        (
            "The primary outcome must be named before the data are seen.",
            "Only a protocol registered before follow-up ended shows that the primary outcome and the pooled "
            "analysis were chosen in advance.",
        ),
    ]
    if str(report.settings.get("harm_weights", "")).startswith("illustrative"):
        items.append(
            (
                "Illustrative harm weights.",
                "Crime harm is weighted with the kit's illustrative table, not the official Cambridge Crime Harm "
                "Index, so harm figures cannot be compared with published CCHI results.",
            )
        )
    if report.synthetic:
        items.append(
            (
                "Synthetic records.",
                "Every site's records were generated by fdkit's simulator: they describe no real people, and these "
                "results are not evidence about any intervention.",
            )
        )
    return items


# ------------------------------------------------------------------- the site forest plot


def _forest_rows(results: pd.DataFrame, heterogeneity: pd.DataFrame, outcome: str) -> list[dict]:
    """The plot's rows, top to bottom: each site (in the results' order), the pooled estimate, the average site."""
    het = heterogeneity.set_index("outcome").loc[outcome]
    rows = []
    for site in [*(name for name in dict.fromkeys(results["site"]) if name != POOLED), POOLED]:
        row = results[(results["site"] == site) & (results["outcome"] == outcome)].iloc[0]
        label = POOLED_LABEL if site == POOLED else site
        rows.append(
            dict(
                label=f"{label} ({int(row['n_treated'])} / {int(row['n_control'])})",
                pct=row["pct_reduction"],
                low=row["ci_low"],
                high=row["ci_high"],
                p=row["p_value"],
                kind="pooled" if site == POOLED else "site",
            )
        )
    if het["re_sites"] >= 2:
        rows.append(
            dict(
                label=AVERAGE_LABEL,
                pct=het["re_pct_reduction"],
                low=het["re_ci_low"],
                high=het["re_ci_high"],
                p=np.nan,
                kind="average",
                prediction=(het["pi_low"], het["pi_high"]),
            )
        )
    return rows


def plot_site_forest(results: pd.DataFrame, heterogeneity: pd.DataFrame, outcome: str, ax=None):
    """A forest plot of each site's % reduction, the pooled one and the average site's, on the log-ratio scale.

    Each site's row is its own primary analysis with its own interval; the pooled row (a
    diamond) is the pooled randomisation analysis; the last row is the random-effects average
    site with its interval, and a dotted line for the prediction interval of a new site. As in
    the single-site forest plot the axis is the ratio of treated to control (log scale),
    labelled as % reductions, and an interval that runs off the plot ends in an arrow.

    Parameters
    ----------
    results, heterogeneity : pandas.DataFrame
        The tables of :func:`fdkit.pooling.pooled_results` (or of a pooled folder).
    outcome : str
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    import matplotlib.pyplot as plt

    from .plotting import PALETTE

    rows = _forest_rows(results, heterogeneity, outcome)
    sites = sum(row["kind"] == "site" for row in rows)
    if ax is None:
        _, ax = plt.subplots(figsize=(8.5, 0.45 * len(rows) + 1.6))
    floor, ceiling = 0.02, 5.0

    def ratio(pct):
        return np.clip(1 - pct / 100, floor, ceiling) if np.isfinite(pct) else (floor if pct > 0 else ceiling)

    def span(position: float, low: float, high: float, style: str, colour: str, width: float) -> None:
        left, right = ratio(high), ratio(low)
        ax.plot([left, right], [position, position], linestyle=style, color=colour, linewidth=width)
        for end, edge, head in ((left, floor, "<"), (right, ceiling, ">")):
            if end == edge:
                ax.plot(end, position, marker=head, color=colour, markersize=6, clip_on=False)

    ticks, names = [], []
    for number, row in enumerate(rows):
        position = len(rows) - number
        colour = "0.2" if row["kind"] == "site" else PALETTE[0 if row["kind"] == "pooled" else 3]
        if "prediction" in row and np.isfinite(row["prediction"][0]):
            span(position, row["prediction"][0], row["prediction"][1], ":", colour, 1.2)
        if np.isfinite(row["low"]) or np.isfinite(row["high"]) or np.isinf(row["low"]):
            span(position, row["low"], row["high"], "-", colour, 1.8 if row["kind"] != "site" else 1.4)
        if np.isfinite(row["pct"]):
            marker = {"site": "s", "pooled": "D", "average": "o"}[row["kind"]]
            ax.plot(ratio(row["pct"]), position, marker=marker, color=colour, markersize=8 if marker == "D" else 6)
        ticks.append(position)
        names.append(row["label"])
    ax.axvline(1, color="0.4", linewidth=0.8)
    ax.axhline(len(rows) - sites + 0.5, color="0.7", linewidth=0.6)
    ax.set_xscale("log")
    ax.set_xlim(floor, ceiling)
    ax.set_ylim(0.4, len(rows) + 0.6)
    marks = [0.05, 0.1, 0.25, 0.5, 1, 2, 4]
    ax.set_xticks(marks, [f"{100 * (1 - m):.0f}%" for m in marks])
    ax.minorticks_off()
    ax.set_yticks(ticks, names)
    ax.tick_params(axis="y", length=0)
    ax.grid(axis="y", visible=False)
    ax.set_xlabel("% reduction in the intervention arm (log-ratio scale; left of the line = fewer)")
    ax.set_title(f"{outcome_label(outcome)}: each site and all together (95% intervals)", pad=10)
    return ax


def describe_site_forest(results: pd.DataFrame, heterogeneity: pd.DataFrame, outcome: str) -> str:
    """The site forest plot in words (its alternative text)."""
    parts = []
    for row in _forest_rows(results, heterogeneity, outcome):
        cell = f"{row['label']}: {format_pct(row['pct'])}% ({format_interval(row['low'], row['high'])}%"
        cell += f", p {format_p(row['p'])})" if np.isfinite(row["p"]) else ")"
        if "prediction" in row and np.isfinite(row["prediction"][0]):
            cell += f", a new site {format_interval(*row['prediction'])}%"
        parts.append(cell)
    return f"Forest plot of {outcome_label(outcome).lower()} by site, with 95% intervals. " + "; ".join(parts) + "."
