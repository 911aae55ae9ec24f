"""The CONSORT flow of people through the trial: its counts and its diagram.

CONSORT (Consolidated Standards of Reporting Trials; items 22a and 22b of the 2025 edition,
13a and 13b of 2010) asks a trial report to show how
many people were assessed for eligibility, how many were excluded and why, how many were
randomised, allocated to each arm (and received the intervention), lost to follow-up, and
analysed. :func:`consort_counts` takes those numbers from the screening funnel and the
outcome frame; :func:`plot_consort` draws the diagram with matplotlib alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ._text import shorten
from .plotting import FIGURE_TEXT, literal

__all__ = ["ConsortCounts", "consort_counts", "plot_consort", "describe_consort"]


@dataclass(frozen=True)
class ConsortCounts:
    """The numbers in a CONSORT flow diagram.

    Attributes
    ----------
    assessed : int
        People assessed for eligibility (everyone in the records).
    exclusions : tuple of (str, int)
        Each reason people were excluded, with how many.
    randomised, treatment, control : int
        People randomised, and allocated to each arm.
    engaged : int or None
        Treated people recorded as engaging with the intervention (None: not recorded).
    lost_treatment, lost_control : int
        People whose follow-up could not be measured.
    analysed_treatment, analysed_control : int
        People in the intention-to-treat analysis.
    """

    assessed: int
    exclusions: tuple[tuple[str, int], ...]
    randomised: int
    treatment: int
    control: int
    engaged: int | None
    analysed_treatment: int
    analysed_control: int
    lost_treatment: int = 0
    lost_control: int = 0

    @property
    def excluded(self) -> int:
        """Everyone excluded before randomisation."""
        return sum(n for _, n in self.exclusions)

    def adds_up(self) -> bool:
        """Whether every box's count follows from the ones above it."""
        return (
            self.assessed - self.excluded == self.randomised
            and self.treatment + self.control == self.randomised
            and self.analysed_treatment == self.treatment - self.lost_treatment
            and self.analysed_control == self.control - self.lost_control
        )


def consort_counts(funnel: pd.DataFrame, frame: pd.DataFrame) -> ConsortCounts:
    """CONSORT numbers from a screening funnel and the outcome frame.

    Parameters
    ----------
    funnel : pandas.DataFrame
        :attr:`fdkit.eligibility.Screening.funnel` (or the ``funnel.csv`` written with it).
    frame : pandas.DataFrame
        The outcome frame (:func:`fdkit.outcomes.build_frame`). Its outcomes come from police
        records, which follow every randomised person, so no one is lost to follow-up and
        everyone is analysed in the arm they were allocated to.

    Notes
    -----
    When the funnel's eligible count differs from the number randomised (several waves, or
    people screened on another date), the difference is shown as its own exclusion reason,
    so the diagram always adds up and the difference is visible rather than hidden.
    """
    steps = funnel.iloc[1:]
    exclusions = [
        (str(row.reason) or str(row.description), int(row.excluded)) for row in steps.itertuples() if int(row.excluded)
    ]
    treated = frame["arm"] == "treatment"
    assessed = int(funnel["remaining"].iloc[0])
    eligible = int(funnel["remaining"].iloc[-1])
    if eligible != len(frame):
        difference = eligible - len(frame)
        exclusions.append(
            (
                "eligible at screening but not randomised"
                if difference > 0
                else "randomised in other waves (not in this funnel)",
                difference,
            )
        )
    engaged = int(frame.loc[treated, "engaged"].astype(bool).sum()) if "engaged" in frame else None
    return ConsortCounts(
        assessed=assessed,
        exclusions=tuple(exclusions),
        randomised=len(frame),
        treatment=int(treated.sum()),
        control=int((~treated).sum()),
        engaged=engaged,
        analysed_treatment=int(treated.sum()),
        analysed_control=int((~treated).sum()),
    )


def describe_consort(counts: ConsortCounts, follow_up_months: int = 12) -> str:
    """The flow diagram in words (the figure's alternative text)."""
    reasons = "; ".join(f"{reason}: {n:,}" for reason, n in counts.exclusions) or "none"
    engaged = (
        ""
        if counts.engaged is None
        else f" ({counts.engaged:,} engaged with it, {counts.treatment - counts.engaged:,} did not)"
    )
    return (
        f"CONSORT flow diagram. {counts.assessed:,} people were assessed for eligibility and {counts.excluded:,} "
        f"excluded ({reasons}). {counts.randomised:,} were randomised: {counts.treatment:,} allocated to the "
        f"intervention{engaged} and {counts.control:,} to usual services. Lost to follow-up: "
        f"{counts.lost_treatment:,} and {counts.lost_control:,}. Analysed after {follow_up_months} months, "
        f"by intention to treat: {counts.analysed_treatment:,} and {counts.analysed_control:,}."
    )


def plot_consort(counts: ConsortCounts, follow_up_months: int = 12):
    """Draw the CONSORT flow diagram with matplotlib (no graphviz needed).

    Boxes have fixed sizes and every arrow runs from one box's edge to the next box's edge,
    so no arrowhead lands on text. Exclusion reasons come from the funnel, so they are drawn
    literally (:func:`fdkit.plotting.literal`), each shortened to :data:`~fdkit.plotting.FIGURE_TEXT`
    characters; the report's table of the flow gives them whole.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import textwrap

    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    fig, ax = plt.subplots(figsize=(9, 8.4))
    ax.set_axis_off()
    ax.set_xlim(0, 11)
    ax.set_ylim(0, 10.4)
    line = "0.25"

    def box(x, y, width, height, text, shade="white", align="center"):
        ax.add_patch(
            FancyBboxPatch(
                (x - width / 2, y - height / 2),
                width,
                height,
                boxstyle="round,pad=0.02,rounding_size=0.12",
                facecolor=shade,
                edgecolor=line,
                linewidth=1,
            )
        )
        left = align == "left"
        ax.text(
            x - width / 2 + 0.2 if left else x,
            y,
            literal(text, limit=None),  # wrapped before escaping, so no line ends between \ and $
            ha=align,
            va="center",
            fontsize=9.5,
            linespacing=1.35,
        )
        return {"top": y + height / 2, "bottom": y - height / 2, "left": x - width / 2, "right": x + width / 2}

    def arrow(x0, y0, x1, y1):
        ax.annotate(
            "",
            xy=(x1, y1),
            xytext=(x0, y0),
            arrowprops=dict(arrowstyle="-|>", color=line, linewidth=1, mutation_scale=12, shrinkA=0, shrinkB=0),
        )

    def stage(y, text):
        ax.text(0.0, y, text, ha="left", va="center", fontsize=10, fontweight="bold", color="#1b4f4c")

    stage(10.15, "Enrolment")
    assessed = box(2.9, 9.3, 4.0, 0.85, f"Assessed for eligibility\n(everyone in the records)\nn = {counts.assessed:,}")
    reasons = [
        "\n  ".join(textwrap.wrap(f"• {shorten(reason, FIGURE_TEXT)}: {n:,}", 44)) for reason, n in counts.exclusions
    ] or ["none"]
    text = f"Excluded (n = {counts.excluded:,})\n" + "\n".join(reasons)
    excluded_height = 0.35 + 0.27 * (text.count("\n") + 1)
    excluded = box(8.0, 7.7, 5.8, excluded_height, text, "#f6f6f6", align="left")
    randomised = box(2.9, 5.95, 3.0, 0.65, f"Randomised\nn = {counts.randomised:,}")
    arrow(2.9, assessed["bottom"], 2.9, randomised["top"])
    arrow(2.9, 7.7, excluded["left"], 7.7)

    stage(5.35, "Allocation")
    engaged = (
        ""
        if counts.engaged is None
        else f"\nengaged with it: {counts.engaged:,}\ndid not engage: {counts.treatment - counts.engaged:,}"
    )
    height = 1.3 if counts.engaged is not None else 0.8
    left = box(2.9, 4.35, 4.6, height, f"Allocated to the intervention\nn = {counts.treatment:,}{engaged}")
    right = box(8.1, 4.35, 4.6, height, f"Allocated to usual services\nn = {counts.control:,}")
    # One line down from "Randomised" that branches to the two arms: both branches end in a head.
    branch = randomised["bottom"] - 0.25
    ax.plot([2.9, 2.9], [randomised["bottom"], branch], color=line, linewidth=1)
    ax.plot([2.9, 8.1], [branch, branch], color=line, linewidth=1)
    arrow(2.9, branch, 2.9, left["top"])
    arrow(8.1, branch, 8.1, right["top"])

    stage(3.3, "Follow-up")
    lost = []
    for x, n_lost, above in ((2.9, counts.lost_treatment, left), (8.1, counts.lost_control, right)):
        lost_box = box(
            x, 2.55, 4.6, 0.8, f"Lost to follow-up: {n_lost:,}\n(followed {follow_up_months} months in police records)"
        )
        arrow(x, above["bottom"], x, lost_box["top"])
        lost.append(lost_box)

    stage(1.55, "Analysis")
    for x, n, above in ((2.9, counts.analysed_treatment, lost[0]), (8.1, counts.analysed_control, lost[1])):
        analysed = box(x, 0.75, 4.6, 0.8, f"Analysed (intention to treat)\nn = {n:,}")
        arrow(x, above["bottom"], x, analysed["top"])
    return fig
