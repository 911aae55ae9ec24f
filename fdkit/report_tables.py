"""Tables for people: the report's numbers formatted for a reader who is not a statistician.

Every function here takes one of the kit's tidy result tables (snake_case columns, floats
that may be ``inf`` or ``NaN``) and returns a :class:`PeopleTable`: plain-English column
names, text cells formatted the same way everywhere (1 decimal for %, 3 for p, "< 0.001"),
no index, no dicts, and footnotes for everything a number cannot say by itself:

- an interval limit that is infinite is written **unbounded**, with a footnote;
- a % above 100 (fewer than no crimes: only a method's approximation can give it) is
  written **more than 100**, with a footnote;
- a figure that cannot be estimated is a dash, with the reason in the table's notes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from . import analysis
from . import outcomes as outcome_definitions

__all__ = [
    "FOOTNOTES",
    "METHOD_LABELS",
    "PeopleTable",
    "format_p",
    "format_pct",
    "format_interval",
    "format_number",
    "interval_label",
    "outcome_label",
    "results_for_people",
    "methods_for_people",
    "subgroups_for_people",
    "engagement_for_people",
    "balance_for_people",
    "seal_for_people",
    "PLAN_LABELS",
    "plan_for_people",
    "checklist_for_people",
    "field_words",
]

DASH = "—"

#: Footnotes a table may call on, by key.
FOOTNOTES = {
    "unbounded": (
        "“unbounded”: the interval has no limit on that side. Every value beyond the other limit is "
        "consistent with the data, which happens when an arm has very few events."
    ),
    "over_100": (
        "“more than 100”: a reduction above 100% would mean fewer than no crimes. Only a method that "
        "approximates can give one; it is a sign that the method's assumptions fail for these data."
    ),
    "dash": "“—”: not estimable; the reason is given in the table's notes.",
    "by_name": (
        "The Welch t-test and negative binomial regression are shown for comparison only: at a trial of "
        "this size they fail the kit's calibration checks (Welch's interval misses a true reduction in "
        "crime harm too often, and the negative binomial test finds effects that are not there too "
        "often), so they are not part of the kit's default analysis."
    ),
    "mann_whitney": (
        "The Mann–Whitney test asks whether one arm's outcomes tend to be lower; it estimates no % "
        "reduction and no interval for one, so those cells are empty."
    ),
}

#: The kit's method names in words.
METHOD_LABELS = {
    "ratio_of_means": "Ratio of means, randomisation test (primary method)",
    "welch_t": "Welch t-test",
    "mann_whitney": "Mann–Whitney U test",
    "poisson_robust": "Poisson regression, robust errors",
    "negative_binomial": "Negative binomial regression",
    "cace": "Effect among those who engaged (CACE)",
}


@dataclass
class PeopleTable:
    """A table ready to show: text cells, a caption, the footnotes it uses and notes on its rows."""

    data: pd.DataFrame
    caption: str
    footnotes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    numeric_from: int = 1  # columns from this one on are numbers (right-aligned)

    def use(self, key: str) -> None:
        """Record that a footnote applies to this table."""
        if key not in self.footnotes:
            self.footnotes.append(key)


# ------------------------------------------------------------------- one number


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or pd.isna(value)


def format_number(value, decimals: int = 1) -> str:
    """A number to ``decimals`` places with thousands separators; never ``-0.0``; a dash if missing."""
    if _missing(value):
        return DASH
    value = float(value)
    if math.isinf(value):
        return "unbounded"
    text = f"{value:,.{decimals}f}"
    return text[1:] if text.startswith("-") and float(text[1:].replace(",", "")) == 0 else text


def format_pct(value, table: PeopleTable | None = None) -> str:
    """A percentage to 1 decimal; infinite is "unbounded", above 100 is "more than 100" (footnoted)."""
    if _missing(value):
        return DASH
    value = float(value)
    if math.isinf(value):
        if table is not None:
            table.use("unbounded")
        return "unbounded"
    if round(value, 1) > 100:
        if table is not None:
            table.use("over_100")
        return "more than 100"
    return format_number(value, 1)


def format_interval(low, high, table: PeopleTable | None = None) -> str:
    """An interval of % reductions, "low to high"; a dash when the method gives none."""
    if _missing(low) and _missing(high):
        return DASH
    return f"{format_pct(low, table)} to {format_pct(high, table)}"


def format_p(value) -> str:
    """A p-value to 3 decimals, or "< 0.001"."""
    if _missing(value):
        return DASH
    value = float(value)
    return "< 0.001" if value < 0.0005 else f"{value:.3f}"


def outcome_label(name: str) -> str:
    """An outcome's name in words, capitalised ("Crime harm as a suspect")."""
    label = outcome_definitions.get(name).label
    return label[0].upper() + label[1:]


def interval_label(results: pd.DataFrame, default: str) -> str:
    """Which interval a results table carries: its ``interval`` column when it has one."""
    if "interval" in results:
        kinds = sorted({str(kind).strip() for kind in results["interval"].dropna()} - {""})
        if kinds:
            return " / ".join(kind.replace("_", " ") for kind in kinds)
    return default


def _with_interval_caption(results: pd.DataFrame, caption: str, interval: str) -> PeopleTable:
    """An empty table whose caption ends by saying how its 95% intervals were made."""
    return PeopleTable(pd.DataFrame(), caption + f" 95% intervals: {interval_label(results, interval)}.")


def _estimate_cells(row, table: PeopleTable) -> tuple[str, str]:
    """A row's % reduction and 95% interval as text; a missing one marks the table's dash footnote."""
    interval_text = format_interval(row.ci_low, row.ci_high, table)
    if interval_text == DASH or _missing(row.pct_reduction):
        table.use("dash")
    return format_pct(row.pct_reduction, table), interval_text


def _mean_decimals(outcome: str) -> int:
    return 1 if outcome_definitions.get(outcome).measure == "harm" else 2


def _marked(label: str, row, table: PeopleTable) -> str:
    """An outcome's label, marked when the sealed plan did not ask for this result."""
    from .adherence import NOT_PRE_SPECIFIED

    if getattr(row, "plan", "") != NOT_PRE_SPECIFIED:
        return label
    note = (
        f"Rows marked “{NOT_PRE_SPECIFIED}” depart from the analysis plan sealed with the allocation; "
        "“Changes to the plan” says how and why."
    )
    if note not in table.notes:
        table.notes.insert(0, note)
    return f"{label} ({NOT_PRE_SPECIFIED})"


def _note(table: PeopleTable, label: str, note) -> None:
    if isinstance(note, str) and note.strip():
        table.notes.append(f"{label}: {note.strip()}")


def _no_interval_note(table: PeopleTable, label: str, row) -> None:
    """Say why a row has no interval when the engine's note does not."""
    if not (_missing(row.ci_low) and _missing(row.ci_high)) or (isinstance(row.note, str) and row.note.strip()):
        return
    if row.mean_treated == 0 and row.mean_control > 0:
        table.notes.append(
            f"{label}: no events among those offered the intervention (a 100% reduction), so the "
            "ratio-based interval cannot be computed."
        )
    elif row.mean_control == 0:
        table.notes.append(f"{label}: no events in the usual-services group, so no reduction can be computed.")


def _mc_note(table: PeopleTable, results: pd.DataFrame) -> None:
    if "p_mcse" in results and results["p_mcse"].notna().any():
        table.notes.append(
            "p-values come from re-drawing the allocation; the largest Monte Carlo standard error of a "
            f"p-value here is {format_p(results['p_mcse'].max())}."
        )


# --------------------------------------------------------------------- tables


def results_for_people(results: pd.DataFrame, caption: str, interval: str) -> PeopleTable:
    """Outcomes with means, % reduction, interval and raw and adjusted p-values.

    Parameters
    ----------
    results : pandas.DataFrame
        Rows of :func:`fdkit.analysis.results_table` for one method and subgroup.
    caption : str
    interval : str
        What the interval is, when the table has no ``interval`` column to say so.
    """
    n_t, n_c = int(results["n_treated"].iloc[0]), int(results["n_control"].iloc[0])
    table = _with_interval_caption(results, caption, interval)
    rows = []
    for row in results.itertuples():
        decimals = _mean_decimals(row.outcome)
        reduction_text, interval_text = _estimate_cells(row, table)
        rows.append(
            {
                "Outcome": _marked(outcome_label(row.outcome), row, table),
                f"Mean, intervention (n = {n_t})": format_number(row.mean_treated, decimals),
                f"Mean, usual services (n = {n_c})": format_number(row.mean_control, decimals),
                "% reduction": reduction_text,
                "95% interval": interval_text,
                "p-value": format_p(row.p_value),
                "Holm-adjusted p": format_p(getattr(row, "p_holm", float("nan"))),
                "BH-adjusted p": format_p(getattr(row, "p_bh", float("nan"))),
            }
        )
        _note(table, outcome_label(row.outcome), getattr(row, "note", ""))
        _no_interval_note(table, outcome_label(row.outcome), row)
    table.data = pd.DataFrame(rows)
    _mc_note(table, results)
    return table


def methods_for_people(results: pd.DataFrame, caption: str) -> PeopleTable:
    """Every method for every outcome (the sensitivity analysis), one row per outcome and method."""
    table = PeopleTable(pd.DataFrame(), caption)
    rows = []
    for row in results.itertuples():
        no_estimate = row.method == "mann_whitney"
        if no_estimate:
            table.use("mann_whitney")
        if row.method in analysis.REGISTRY and not analysis.REGISTRY[row.method].default:
            table.use("by_name")
        interval_text = DASH if no_estimate else format_interval(row.ci_low, row.ci_high, table)
        rows.append(
            {
                "Outcome": _marked(outcome_label(row.outcome), row, table),
                "Method": METHOD_LABELS.get(row.method, row.method.replace("_", " ")),
                "% reduction": DASH if no_estimate else format_pct(row.pct_reduction, table),
                "95% interval": interval_text,
                "p-value": format_p(row.p_value),
                "Holm-adjusted p": format_p(getattr(row, "p_holm", float("nan"))),
            }
        )
        if not no_estimate and interval_text == DASH:
            table.use("dash")
        _note(table, f"{outcome_label(row.outcome)}, {METHOD_LABELS.get(row.method, row.method)}", row.note)
    table.data = pd.DataFrame(rows)
    table.numeric_from = 2
    _mc_note(table, results)
    return table


def subgroups_for_people(results: pd.DataFrame, interactions: pd.DataFrame, caption: str, interval: str) -> PeopleTable:
    """Each outcome's effect within each stratum, with the test of whether the effects differ."""
    table = _with_interval_caption(results, caption, interval)
    interaction_p = dict(zip(interactions["outcome"], interactions["p_value"]))
    rows = []
    for row in results.itertuples():
        reduction_text, interval_text = _estimate_cells(row, table)
        rows.append(
            {
                "Outcome": _marked(outcome_label(row.outcome), row, table),
                "Age band": str(row.subgroup),
                "People (intervention / usual)": f"{row.n_treated} / {row.n_control}",
                "% reduction": reduction_text,
                "95% interval": interval_text,
                "p-value": format_p(row.p_value),
                "Effects differ? p": format_p(interaction_p.get(row.outcome)),
            }
        )
        _note(table, f"{outcome_label(row.outcome)}, aged {row.subgroup}", row.note)
        _no_interval_note(table, f"{outcome_label(row.outcome)}, aged {row.subgroup}", row)
    for row in interactions.itertuples():
        _note(table, f"{outcome_label(row.outcome)}, test of difference", row.note)
    table.data = pd.DataFrame(rows)
    table.numeric_from = 2
    return table


def engagement_for_people(effects: pd.DataFrame, caption: str, interval: str) -> PeopleTable:
    """The effect among those who engaged (CACE), per outcome."""
    table = _with_interval_caption(effects, caption, interval)
    rows = []
    for row in effects.itertuples():
        reduction_text, interval_text = _estimate_cells(row, table)
        rows.append(
            {
                "Outcome": _marked(outcome_label(row.outcome), row, table),
                "% reduction among those who engaged": reduction_text,
                "95% interval": interval_text,
                "p-value": format_p(getattr(row, "p_value", float("nan"))),
            }
        )
        _no_interval_note(table, outcome_label(row.outcome), row)
    table.data = pd.DataFrame(rows)
    if (table.data["p-value"] == DASH).all():  # the estimate has no test of its own
        table.data = table.data.drop(columns="p-value")
    notes = list(dict.fromkeys(n.strip() for n in effects["note"] if isinstance(n, str) and n.strip()))
    if len(notes) == 1:  # the same for every outcome (the engaged share): say it once
        table.notes.insert(0, notes[0][0].upper() + notes[0][1:] + ".")
    else:
        for row in effects.itertuples():
            _note(table, outcome_label(row.outcome), row.note)
    return table


def balance_for_people(balance: pd.DataFrame, caption: str) -> PeopleTable:
    """Baseline characteristics by arm: mean (SD), or % for yes/no characteristics, and the SMD."""
    table = PeopleTable(pd.DataFrame(), caption)
    n_t, n_c = int(balance["n_treatment"].iloc[0]), int(balance["n_control"].iloc[0])
    rows = []
    for row in balance.itertuples():
        binary = _missing(row.sd_treatment) and _missing(row.sd_control)
        label = row.characteristic[0].upper() + row.characteristic[1:]

        def cell(mean, sd, binary=binary):
            if binary:
                return f"{format_number(100 * mean, 1)}%"
            return f"{format_number(mean, 1)} ({format_number(sd, 1)})"

        rows.append(
            {
                "Characteristic": label + (" (% of people)" if binary else ""),
                f"Intervention (n = {n_t})": cell(row.mean_treatment, row.sd_treatment),
                f"Usual services (n = {n_c})": cell(row.mean_control, row.sd_control),
                "Standardised difference": format_number(row.smd, 2),
            }
        )
    table.data = pd.DataFrame(rows)
    table.notes.append("Cells show the mean with the standard deviation in brackets, or a percentage.")
    return table


def seal_for_people(seal: dict, unchanged: bool, caption: str) -> PeopleTable:
    """The allocation's seal, one row per fact and one column per wave (no dicts, no truncation)."""
    waves = seal.get("waves", [])

    def capacities(value) -> str:
        if isinstance(value, dict):
            return "; ".join(f"{key}: {number}" for key, number in value.items())
        return DASH if value in (None, "") else str(value)

    facts = [
        ("Randomised on", lambda w: str(w.get("randomised_on", DASH))),
        ("Method", lambda w: str(w.get("method", DASH)).replace("_", " ")),
        ("Strata", lambda w: str(w.get("strata") or "none").replace("_", " ")),
        ("Places in the intervention", lambda w: capacities(w.get("capacities") or w.get("n_treated"))),
        ("Eligible people", lambda w: format_number(w.get("eligible_count"), 0)),
        ("Random seed", lambda w: str(w.get("seed", DASH))),
        ("Sealed at", lambda w: str(w.get("sealed_at", DASH))),
        ("SHA-256 of the eligible list", lambda w: str(w.get("eligible_ids_sha256", DASH))),
    ]
    data = {"Fact": [name for name, _ in facts]}
    for wave in waves:
        data[f"Wave {wave.get('wave', len(data))}"] = [get(wave) for _, get in facts]
    table = PeopleTable(pd.DataFrame(data), caption, numeric_from=len(data))
    table.notes.append(f"SHA-256 of the allocation file when sealed: {seal.get('allocation_sha256', DASH)}.")
    table.notes.append(
        "The allocation file is unchanged since it was sealed."
        if unchanged
        else "WARNING: the allocation file has changed since it was sealed; check it with fdkit verify."
    )
    return table


#: Each field of an analysis plan (:data:`fdkit.plan.FIELDS`) in words.
PLAN_LABELS = {
    "plan_format": "Format of the plan",
    "trial": "Trial",
    "registration_id": "Registration",
    "protocol_url": "Protocol",
    "primary_outcome": "Primary outcome",
    "secondary_outcomes": "Secondary outcomes, in order",
    "follow_up_months": "Follow-up",
    "baseline_months": "Baseline",
    "day_rule": "Day rule",
    "primary_method": "Primary method",
    "sensitivity_methods": "Sensitivity methods",
    "interval": "Interval of the primary method",
    "alpha": "Significance level (two-sided)",
    "seed": "Resampling seed",
    "permutations": "Randomisation re-draws",
    "resamples": "Bootstrap resamples",
    "multiplicity_family": "Outcomes adjusted together for multiple testing",
    "multiplicity_adjustment": "Adjustment for multiple testing",
    "subgroups": "Pre-specified subgroups (age bands)",
    "cace": "Effect among those who engaged (CACE)",
    "harm_weights": "Harm weights",
    "harm_weights_sha256": "SHA-256 of the harm weights",
    "offence_lookup": "Offence lookup",
    "offence_lookup_sha256": "SHA-256 of the offence lookup",
}

_ADJUSTMENTS = {"holm": "Holm", "benjamini-hochberg": "Benjamini–Hochberg", "none": "none"}


def field_words(name: str, value) -> str:
    """A plan field's value for a reader: outcomes and methods by name, months, yes or no."""
    from .plan import DAY_RULES

    if name in ("primary_outcome",) and isinstance(value, str) and value in outcome_definitions.OUTCOME_NAMES:
        return outcome_label(value)
    if name in ("secondary_outcomes", "multiplicity_family") and isinstance(value, tuple | list):
        return "; ".join(outcome_label(v) for v in value) or "none"
    if name in ("primary_method", "sensitivity_methods"):
        values = value if isinstance(value, tuple | list) else (value,)
        return "; ".join(METHOD_LABELS.get(str(v), str(v).replace("_", " ")) for v in values) or "none"
    if name in ("follow_up_months", "baseline_months") and isinstance(value, int):
        return f"{value} months " + ("from the day of randomisation" if name.startswith("follow") else "before it")
    if name == "day_rule":
        return DAY_RULES.get(str(value), str(value)).capitalize()
    if name == "subgroups" and isinstance(value, tuple | list):
        return ", ".join(map(str, value)) or "none"
    if name == "multiplicity_adjustment":
        return _ADJUSTMENTS.get(str(value), str(value))
    if name == "interval":
        return "inverts the primary test" if value == "randomisation" else "stratified percentile bootstrap"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if name in ("harm_weights", "offence_lookup") and not value:
        return "the kit's illustrative weights" if name == "harm_weights" else "the kit's offence lookup"
    if name in ("trial", "registration_id", "protocol_url") and not value:
        return "not stated"
    if name in ("seed", "permutations", "resamples") and isinstance(value, int):
        return f"{value:,}" if name != "seed" else str(value)
    return str(value)


def plan_for_people(plan, caption: str) -> PeopleTable:
    """A sealed analysis plan, one row per field, in words."""
    rows = [
        {"Field": PLAN_LABELS[name], "As sealed": field_words(name, getattr(plan, name))}
        for name in PLAN_LABELS
        if name != "plan_format"
    ]
    return PeopleTable(pd.DataFrame(rows), caption, numeric_from=2)


def checklist_for_people(items: pd.DataFrame, sections: dict[str, str], caption: str) -> PeopleTable:
    """The CONSORT 2025 checklist: each item, how the report answers it and in which section."""
    rows = [
        {
            "Item": row.item,
            "Topic": row.topic,
            "How": row.status + (f" ({row.note})" if row.note else ""),
            "Where in this report": sections.get(row.section, row.section),
        }
        for row in items.itertuples()
    ]
    return PeopleTable(pd.DataFrame(rows), caption, numeric_from=4)
