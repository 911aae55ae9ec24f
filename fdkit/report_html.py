"""The trial report laid out as one self-contained HTML page.

The page follows CONSORT 2025 in plain English: a title block, a summary in words, the
intervention and who was eligible, the outcomes and analysis, the changes to the sealed analysis
plan, the flow of people, baseline balance, the primary then the secondary outcomes, subgroups,
engagement, the trial's conduct and open-science statements, limitations and an appendix (with
the sealed plan and the CONSORT 2025 checklist, each item mapped to its section). The page
template (``fdkit/templates/report.html``, package data) carries the screen and print
stylesheets; figures are embedded as SVG images with alternative text that says what they
show. The page has no scripts and loads nothing from anywhere.
"""

from __future__ import annotations

import base64
import html
import io
from importlib import resources
from string import Template

import pandas as pd

from . import checklist, harm, offences
from .adherence import NOT_PRE_SPECIFIED
from .consort import describe_consort, plot_consort
from .outcomes import OUTCOME_NAMES
from .report import TrialReport, describe_forest, limitations, plot_forest, summary_text, today
from .report_tables import (
    FOOTNOTES,
    METHOD_LABELS,
    PLAN_LABELS,
    PeopleTable,
    balance_for_people,
    checklist_for_people,
    engagement_for_people,
    field_words,
    format_number,
    methods_for_people,
    outcome_label,
    plan_for_people,
    results_for_people,
    seal_for_people,
    subgroups_for_people,
)

__all__ = ["SECTIONS", "report_to_html", "table_html", "figure_html"]

#: The page's sections, by id, in order (the browser test checks each is there).
SECTIONS = (
    "summary",
    "intervention",
    "methods",
    "changes",
    "flow",
    "baseline",
    "primary",
    "secondary",
    "subgroups",
    "engagement",
    "conduct",
    "open-science",
    "limitations",
    "appendix",
)

#: Each section's heading (and the title block's), for the CONSORT checklist's "where" column.
HEADINGS = {
    "title": "Title block",
    "summary": "Summary",
    "intervention": "The intervention and who was eligible",
    "methods": "Outcomes and analysis",
    "changes": "Changes to the plan",
    "flow": "The flow of people through the trial",
    "baseline": "The groups at the start",
    "primary": "Primary outcome",
    "secondary": "Secondary outcomes",
    "subgroups": "Age bands",
    "engagement": "Engagement",
    "conduct": "How the trial was run",
    "open-science": "Registration, protocol, data and funding",
    "limitations": "Limitations",
    "appendix": "Appendix",
}

_TITLE = "Focused deterrence trial: report of outcomes"


def _escape(text) -> str:
    return html.escape(str(text), quote=True)


def table_html(table: PeopleTable, *, primary_rows: int = 0) -> str:
    """A :class:`PeopleTable` as an HTML table with its caption, notes and footnotes."""
    columns = list(table.data.columns)

    def css(index: int) -> str:
        return ' class="num"' if index >= table.numeric_from else ""

    head = "".join(f'<th scope="col"{css(i)}>{_escape(name)}</th>' for i, name in enumerate(columns))
    body = []
    for number, row in enumerate(table.data.itertuples(index=False)):
        cells = "".join(
            (f'<th scope="row">{_escape(value)}</th>' if i == 0 else f"<td{css(i)}>{_escape(value)}</td>")
            for i, value in enumerate(row)
        )
        body.append(f'<tr class="primary">{cells}</tr>' if number < primary_rows else f"<tr>{cells}</tr>")
    notes = "".join(f"<li>{_escape(note)}</li>" for note in table.notes)
    footnotes = "".join(f"<li>{_escape(FOOTNOTES[key])}</li>" for key in table.footnotes)
    # Short tables move to the next page whole; long ones may break between rows (headers repeat).
    css_class = "table long" if len(table.data) > 16 else "table"
    return (
        f'<figure class="{css_class}"><table><caption>{_escape(table.caption)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        + (f'<ul class="notes">{notes}</ul>' if notes else "")
        + (f'<ul class="footnotes">{footnotes}</ul>' if footnotes else "")
        + "</figure>"
    )


def figure_html(figure, alt: str, caption: str) -> str:
    """A matplotlib figure embedded as an SVG image (vector: sharp on screen and in print)."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(figure)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return (
        f'<figure class="chart"><img src="data:image/svg+xml;base64,{data}" alt="{_escape(alt)}">'
        f"<figcaption>{_escape(caption)}</figcaption></figure>"
    )


def _section(ident: str, heading: str, *parts: str, css: str = "") -> str:
    klass = f' class="{css}"' if css else ""
    return f'<section id="{ident}"{klass}><h2>{_escape(heading)}</h2>{"".join(parts)}</section>'


def _p(text: str, css: str = "") -> str:
    klass = f' class="{css}"' if css else ""
    return f"<p{klass}>{_escape(text)}</p>"


def _title_block(report: TrialReport) -> str:
    settings = report.settings
    facts = [
        ("Unit", settings.unit or "not stated (give it with --unit)"),
        ("Date of report", settings.report_date or today()),
        ("Trial registration", report.registration or "not stated (give the registry and ID with --registration)"),
        ("Analysis plan", _plan_fact(report)),
        (
            "Primary outcome",
            f"{outcome_label(report.primary_outcome)}, {report.follow_up_months} months after randomisation",
        ),
        ("Randomised", f"{report.consort.randomised:,} people on {_randomisation_dates(report)}"),
    ]
    rows = "".join(f"<dt>{_escape(k)}</dt><dd>{_escape(v)}</dd>" for k, v in facts)
    banner = ""
    if report.synthetic is not None:
        scenario = str(report.synthetic.get("scenario", "unknown")).replace("_", " ")
        banner = (
            '<div class="banner" role="note"><strong>Synthetic data.</strong> These records were generated by '
            f"fdkit's simulator (scenario “{_escape(scenario)}”, seed "
            f"{_escape(report.synthetic.get('seed', 'unknown'))}). They describe no real people, and nothing in "
            "this report is evidence about the Milton Keynes trial or any intervention.</div>"
        )
    if report.illustrative_weights:
        banner += (
            '<div class="banner" role="note"><strong>Illustrative harm weights.</strong> Crime harm is weighted '
            "with the kit's illustrative table, not the official Cambridge Crime Harm Index, so harm figures "
            "cannot be compared with published CCHI results.</div>"
        )
    return (
        f'<header class="title-block" id="title"><h1>{_escape(_TITLE)}</h1>'
        f'<p class="small">A randomised controlled trial of focused deterrence with social-care-led problem '
        f'solving, reported after CONSORT 2025 by intention to treat.</p><dl class="facts">{rows}</dl></header>'
        + banner
    )


def _plan_fact(report: TrialReport) -> str:
    if report.plan is None:
        return "none was sealed with the allocation"
    text = f"sealed with the allocation on {report.plan.date}; SHA-256 {report.plan.sha256}"
    if report.following.departures:
        text += f"; this report departs from it ({len(report.following.departures)} changes, see Changes to the plan)"
    return text


def _randomisation_dates(report: TrialReport) -> str:
    days = sorted(set(pd.to_datetime(report.frame["randomised_on"]).dt.strftime("%Y-%m-%d")))
    return days[0] if len(days) == 1 else f"{len(days)} dates, {days[0]} to {days[-1]}"


def _statement(report: TrialReport, key: str) -> str:
    """The unit's text for a CONSORT item (report.toml), or a plain statement that it is not available."""
    if text := report.statements.get(key):
        return text
    return f"Not available: the unit has not given this (item {checklist.STATEMENTS[key][0]} in report.toml)."


def _intervention(report: TrialReport) -> str:
    steps = "".join(f"<li>{_escape(step)}</li>" for step in report.eligibility_steps)
    return _section(
        "intervention",
        "The intervention and who was eligible",
        "<h3>Background</h3>",
        _p(_statement(report, "background")),
        "<h3>The intervention</h3>",
        _p(report.settings.intervention),
        "<h3>Who was eligible</h3>",
        _p(
            "Everyone in the police records was screened by the same rule on the date of randomisation. "
            "To be eligible a person had to meet every one of these conditions:"
        ),
        f"<ol>{steps}</ol>",
        _p(
            "Eligible people were randomised within age bands: a fixed number of places in the intervention in each "
            "band, chosen at random by a sealed, reproducible draw; everyone else eligible formed the comparison group."
        ),
    )


def _methods(report: TrialReport) -> str:
    """Objectives, design, outcomes, randomisation and the statistical methods (CONSORT 7, 9, 14, 16a, 17, 21)."""
    run, settings, counts = report.following.analysis, report.settings, report.consort
    primary = outcome_label(run.primary).lower()
    secondary = [outcome_label(o).lower() for o in run.outcomes[1:]]
    waves = report.seal.get("waves", [])
    first = waves[0] if waves else {}
    strata = str(first.get("strata") or "").replace("_", " ")
    places = first.get("capacities") or first.get("n_treated")
    if isinstance(places, dict):
        places_text = "; ".join(f"{n} aged {band}" for band, n in places.items())
    else:
        places_text = "not recorded" if places is None else f"{places} in all"
    weights = (
        harm.ILLUSTRATIVE_LABEL
        if report.illustrative_weights
        else f"the unit's table {getattr(settings.harm_weights, 'name', settings.harm_weights)}"
    )
    methods = [METHOD_LABELS.get(m, m.replace("_", " ")) for m in run.methods]
    family = run.family if run.family is not None else tuple(o for o in run.outcomes if o != "knife_suspect_all")
    adjustment = {"holm": "Holm's method", "benjamini-hochberg": "the Benjamini–Hochberg method"}.get(
        run.adjustment, "no adjustment"
    )
    extra = []
    if run.subgroups is None:
        extra.append("each age band on its own, with a test of whether the effect differs between them")
    elif run.subgroups:
        extra.append(
            f"the age bands {', '.join(run.subgroups)} on their own, with a test of whether the effect differs"
        )
    if run.cace:
        extra.append("the effect among those who engaged (complier average causal effect)")
    if len(methods) > 1:
        extra.append("the same outcomes by " + ", ".join(methods[1:]) + " (a sensitivity analysis)")
    planned = (
        "Each of them was fixed in the analysis plan sealed with the allocation; any result that departs from it is "
        f"marked “{NOT_PRE_SPECIFIED}”."
        if report.plan is not None
        else "No analysis plan was sealed with the allocation, so none of them can be shown to have been chosen "
        "before the outcomes were seen."
    )
    return _section(
        "methods",
        "Outcomes and analysis",
        "<h3>Objectives</h3>",
        _p(
            f"The trial asked whether offering the intervention reduced {primary} in the {run.follow_up_months} "
            f"months after randomisation (the primary outcome)"
            + (f", and, as secondary outcomes, {', '.join(secondary)}." if secondary else ".")
            + " Harms and unintended effects are under “How the trial was run”."
        ),
        "<h3>Design</h3>",
        _p(
            f"A parallel-group randomised controlled trial with two groups: {counts.treatment:,} offered the "
            f"intervention and {counts.control:,} receiving usual services (a ratio of about 1 to "
            f"{format_number(counts.control / max(counts.treatment, 1), 1)}), "
            + (f"randomised within {strata}. " if strata else "randomised without strata. ")
            + "It tests superiority: whether the intervention changed outcomes at all, in either direction, "
            "by two-sided tests at the 5% level."
        ),
        "<h3>Outcomes</h3>",
        _p(
            f"Every outcome is counted from police records over the {run.follow_up_months} months from each "
            f"person's day of randomisation, against the {run.baseline_months} months before it as a baseline. "
            f"{field_words('day_rule', report.plan.plan.day_rule if report.plan else 'first-day-in-last-day-out')}. "
            f"Crime harm is weighted with {weights}; offences are classified with "
            f"{offences.describe_lookup(report.records.lookup)}."
        ),
        "<h3>Sample size</h3>",
        _p(
            f"The number offered the intervention was fixed by the places available ({places_text}); everyone "
            "else eligible formed the comparison group."
            + (f" {report.statements['sample_size']}" if report.statements.get("sample_size") else "")
        ),
        "<h3>Randomisation</h3>",
        _p(
            f"The allocation was drawn by fdkit's seeded random draw (seed {first.get('seed', 'not recorded')}): "
            f"{str(first.get('method', 'stratified')).replace('_', ' ')} randomisation"
            + (f" within {strata}, with a fixed number of places in each" if strata else "")
            + ". The seal records the seed, the places and a fingerprint of the eligible list, so anyone can "
            "re-derive the allocation with fdkit verify (Table A3)."
        ),
        "<h3>Statistical methods</h3>",
        _p(
            f"The primary analysis is the {methods[0].split(',')[0].lower()}: the % reduction in the average "
            "outcome, with a p-value from a randomisation test that re-draws the trial's own allocation "
            f"{run.permutations:,} times (seed {run.seed}) and an interval made of every effect that test does "
            f"not reject. Secondary outcomes are analysed the same way; the p-values of {len(family)} outcomes "
            f"are adjusted together for multiple testing by {adjustment}. Everyone randomised is analysed in the "
            "group they were allocated to (intention to treat). Police records cover every randomised person, so "
            "no outcome is missing: a person with no recorded crime has an outcome of zero. Additional analyses: "
            + ("; ".join(extra) if extra else "none")
            + ". "
            + planned
        ),
    )


def _changes(report: TrialReport) -> str:
    """Changes to the sealed plan, each with its reason (CONSORT 10); "none" when there are none."""
    own = report.statements.get("protocol_changes")
    other = [_p(f"Changes to the trial itself, as the unit reports them: {own}")] if own else []
    if report.plan is None:
        return _section(
            "changes",
            "Changes to the plan",
            _p(
                "No plan was sealed: this allocation was sealed without an analysis plan, so nothing shows which "
                "analyses were chosen before the outcomes were seen, and none can be called pre-specified. Seal a "
                "plan with the allocation (fdkit plan, then fdkit randomise --plan) to close that gap."
            ),
            *other,
        )
    sealed = report.plan
    intro = (
        f"The analysis plan was sealed with the allocation on {sealed.date} (SHA-256 {sealed.sha256}; Table A2 "
        "reproduces it)."
    )
    if not report.following.departures:
        return _section(
            "changes",
            "Changes to the plan",
            _p(f"Changes to the plan: none. {intro} Every analysis in this report is one the plan asked for."),
            *other,
        )
    items = "".join(
        f"<li><strong>{_escape(PLAN_LABELS.get(d.field, d.field))}</strong>: the plan gives "
        f"{_escape(field_words(d.field, d.planned))}; this report uses {_escape(field_words(d.field, d.used))} "
        f"({_escape(d.option.split(' ')[0] if d.option.startswith('--') else d.option)}).</li>"
        for d in report.following.departures
    )
    return _section(
        "changes",
        "Changes to the plan",
        _p(
            f"{intro} This report departs from it in {len(report.following.departures)} way"
            f"{'s' if len(report.following.departures) != 1 else ''}, so every result those changes touch is "
            f"marked “{NOT_PRE_SPECIFIED}”: read them as exploratory, not as the trial's answer."
        ),
        f'<ul class="changes">{items}</ul>',
        _p(f"The reason given: {report.following.reason}"),
        *other,
    )


def _conduct(report: TrialReport) -> str:
    """What only the unit can say about how the trial was run (CONSORT 11, 12b, 15, 16b, 18-20, 23b, 24b, 27)."""
    facts = [
        ("Setting (item 11)", "setting"),
        ("Who delivered the intervention (12b)", "deliverers"),
        ("How harms were defined and looked for (15)", "harms"),
        ("Harms seen in each group (27)", "harms_observed"),
        ("Interim analyses and stopping (16b)", "interim_analyses"),
        ("Allocation concealment (18)", "allocation_concealment"),
        ("Who generated, enrolled and assigned (19)", "implementation"),
        ("Blinding (20a, 20b)", "blinding"),
        ("Why the trial ended (23b)", "trial_end"),
        ("Other services received (24b)", "concomitant_care"),
    ]
    rows = "".join(f"<dt>{_escape(label)}</dt><dd>{_escape(_statement(report, key))}</dd>" for label, key in facts)
    return _section(
        "conduct",
        "How the trial was run",
        _p("What only the unit that ran the trial can say, from its report.toml; what it has not given is marked."),
        f'<dl class="facts">{rows}</dl>',
    )


def _open_science(report: TrialReport) -> str:
    """Registration, protocol and plan, data sharing, funding, conflicts, involvement (CONSORT 2-5, 8)."""
    registration = report.registration
    registry = report.statements.get("registration", "")
    protocol_url = report.plan.plan.protocol_url if report.plan is not None else ""
    protocol = "; ".join(t for t in (protocol_url, report.statements.get("protocol", "")) if t)
    sap = (
        f"The statistical analysis plan was sealed with the allocation on {report.plan.date} (SHA-256 "
        f"{report.plan.sha256}) and is reproduced in Table A2."
        if report.plan is not None
        else "No statistical analysis plan was sealed with the allocation."
    )
    facts = [
        (
            "Registration (item 2)",
            " ".join(t for t in (registration, registry) if t) or _statement(report, "registration"),
        ),
        ("Protocol and analysis plan (3)", ((protocol + ". ") if protocol else "Protocol: not available. ") + sap),
        ("Data sharing (4)", _statement(report, "data_sharing")),
        ("Funding (5a)", _statement(report, "funding")),
        ("Conflicts of interest (5b)", _statement(report, "conflicts_of_interest")),
        ("Public involvement (8)", _statement(report, "public_involvement")),
    ]
    rows = "".join(f"<dt>{_escape(label)}</dt><dd>{_escape(text)}</dd>" for label, text in facts)
    return _section("open-science", "Registration, protocol, data and funding", f'<dl class="facts">{rows}</dl>')


def _flow(report: TrialReport) -> str:
    counts = report.consort
    table = PeopleTable(
        pd.DataFrame(
            [("Assessed for eligibility", f"{counts.assessed:,}")]
            + [(f"Excluded: {reason}", f"{n:,}") for reason, n in counts.exclusions]
            + [
                ("Randomised", f"{counts.randomised:,}"),
                ("Allocated to the intervention", f"{counts.treatment:,}"),
                ("… of whom engaged with it", "not recorded" if counts.engaged is None else f"{counts.engaged:,}"),
                ("Allocated to usual services", f"{counts.control:,}"),
                ("Lost to follow-up", f"{counts.lost_treatment + counts.lost_control:,}"),
                ("Analysed, intervention", f"{counts.analysed_treatment:,}"),
                ("Analysed, usual services", f"{counts.analysed_control:,}"),
            ],
            columns=["Stage", "People"],
        ),
        "Table 1. The flow of people through the trial, in numbers.",
    )
    return _section(
        "flow",
        "The flow of people through the trial",
        figure_html(
            plot_consort(counts, report.follow_up_months),
            describe_consort(counts, report.follow_up_months),
            "Figure 1. CONSORT flow diagram. Outcomes come from police records, which follow every randomised "
            "person, so no one is lost to follow-up and everyone is analysed in the group they were allocated to.",
        ),
        table_html(table),
        _p(_dates(report)),
    )


def _dates(report: TrialReport) -> str:
    """When people were randomised and when their follow-up ended (CONSORT 23a)."""
    days = pd.to_datetime(report.frame["randomised_on"])
    months = report.follow_up_months
    last = (days.max() + pd.DateOffset(months=months) - pd.Timedelta(days=1)).strftime("%Y-%m-%d")
    return (
        f"People were randomised on {_randomisation_dates(report)}; each was followed for {months} months from "
        f"that day, the last follow-up ending on {last}."
    )


def _baseline(report: TrialReport) -> str:
    table = balance_for_people(
        report.balance[report.balance["subgroup"] == "all"] if "subgroup" in report.balance else report.balance,
        "Table 2. The two groups before randomisation (prior 24 months).",
    )
    return _section(
        "baseline",
        "The groups at the start",
        _p(
            "Randomisation makes the groups alike on average; any one draw can still differ by chance. The "
            "standardised difference is the gap between the groups' means in units of their spread: within ±0.1 is "
            "usually called balanced. It describes the draw and is not a test."
        ),
        table_html(table),
    )


def _primary(report: TrialReport) -> str:
    overall = report.overall
    table = results_for_people(
        overall.iloc[[0]],
        "Table 3. The primary outcome, all ages, over the follow-up.",
        report.interval,
    )
    return _section(
        "primary",
        "Primary outcome",
        _p(
            "The % reduction compares the average of the two groups: 100 × (1 − intervention ÷ usual services). "
            "The p-value is from a randomisation test that re-draws the trial's own allocation many times, and is "
            "equal-tailed: below 0.05 it is a significant reduction or increase at 2.5% each way. The interval is "
            "the set of effects that test does not reject, so it excludes no effect exactly when p < 0.05."
        ),
        table_html(table, primary_rows=1),
    )


def _secondary(report: TrialReport) -> str:
    table = results_for_people(
        report.overall.iloc[1:],
        "Table 4. Secondary outcomes, all ages, with p-values adjusted for the number of outcomes.",
        report.interval,
    )
    return _section(
        "secondary",
        "Secondary outcomes",
        _p(
            f"{len(report.overall)} outcomes were analysed, so some small p-values are expected by chance alone. "
            "The Holm-adjusted p-value keeps the chance of any false finding across all outcomes below 5% when it "
            "is under 0.05; the Benjamini–Hochberg (BH) p-value controls the expected share of false findings "
            f"among those called significant. {_family_in_words(report)}"
        ),
        table_html(table),
        figure_html(
            _forest_figure(report.headline),
            describe_forest(report.headline),
            "Figure 2. % reduction with 95% intervals for every outcome, for all ages and within each age band. "
            "Arrows mean the interval continues beyond the plot; a row without a bar has no interval, for the "
            "reason written beside it.",
        ),
    )


def _family_in_words(report: TrialReport) -> str:
    """Which outcomes were adjusted together, and which adjustment the plan leads with."""
    run = report.following.analysis
    if run.family is None:
        return "Adjustment is across every outcome, the primary included."
    lead = {"holm": "Holm's", "benjamini-hochberg": "the Benjamini–Hochberg", "none": "no"}[run.adjustment]
    left_out = [outcome_label(o).lower() for o in run.outcomes if o not in run.family]
    return (
        f"Adjustment is across the {len(run.family)} outcomes the analysis plan names as its family, the primary "
        "included" + (f" (not {', '.join(left_out)})" if left_out else "") + f"; the plan leads with {lead} adjustment."
    )


def _forest_figure(results: pd.DataFrame):
    return plot_forest(results).figure


def _interaction_caption(interactions: pd.DataFrame) -> str:
    calibrated = "method" in interactions and interactions["method"].astype(str).str.contains("random").any()
    if calibrated:
        return "The last column is a randomisation test of whether the effect differs between the age bands."
    return (
        "The last column is a Wald test of whether the effect differs between the age bands. It is not calibrated "
        "at this trial's size (in the kit's simulations it finds a difference that is not there more often than "
        "5% of the time), so read a small value there as a prompt for a larger trial, not as a finding."
    )


def _subgroups(report: TrialReport) -> str:
    rows = report.headline[report.headline["subgroup"] != "all"]
    if rows.empty:
        planned = report.plan is not None and not report.plan.plan.subgroups
        return _section(
            "subgroups",
            "Age bands",
            _p(
                "The analysis plan named no subgroups, so no age band is analysed on its own."
                if planned
                else "The trial was not randomised within age bands."
            ),
        )
    table = subgroups_for_people(
        rows.assign(order=rows["outcome"].map({name: i for i, name in enumerate(OUTCOME_NAMES)}))
        .sort_values(["order", "subgroup"])
        .drop(columns="order"),
        report.interactions,
        "Table 5. Effects within each age band. " + _interaction_caption(report.interactions),
        report.interval,
    )
    return _section(
        "subgroups",
        "Age bands",
        _p(
            "Effects within each age band rest on fewer people than the overall result, so their intervals are wider. "
            "A difference between bands is evidence only if the test of difference says so."
        ),
        table_html(table),
    )


def _engagement(report: TrialReport) -> str:
    if report.engagement is None:
        recorded = report.consort.engaged is not None
        return _section(
            "engagement",
            "Engagement",
            _p(
                f"{report.consort.engaged:,} of the {report.consort.treatment:,} people offered the intervention "
                "engaged with it. The analysis plan did not ask for the effect among those who engaged."
                if recorded
                else "Engagement was not recorded, so the effect among those who engaged cannot be estimated."
            ),
        )
    label = "bootstrap percentile"  # what fdkit.analysis.cace gives, unless its rows say otherwise
    table = engagement_for_people(
        report.engagement,
        "Table 6. The effect among those who engaged (complier average causal effect).",
        label,
    )
    counts = report.consort
    return _section(
        "engagement",
        "Engagement",
        _p(
            f"{counts.engaged:,} of the {counts.treatment:,} people offered the intervention engaged with it. The main "
            "results compare everyone offered it with everyone not (intention to treat), which is what a service "
            "that offers it can expect. The effect among those who engaged assumes that being offered it did nothing "
            "for those who never engaged; it is larger by design and rests on that assumption."
        ),
        table_html(table),
    )


def _limitations(report: TrialReport) -> str:
    items = "".join(f"<li><strong>{_escape(head)}</strong> {_escape(text)}</li>" for head, text in limitations(report))
    return _section("limitations", "Limitations", f'<ul class="limitations">{items}</ul>')


def _appendix(report: TrialReport) -> str:
    settings = report.settings
    settings_table = PeopleTable(
        pd.DataFrame(
            [
                (
                    "Records folder",
                    settings.records.name if hasattr(settings.records, "name") else str(settings.records),
                ),
                ("Allocation file", getattr(settings.allocation, "name", str(settings.allocation))),
                ("Screening funnel", getattr(settings.funnel, "name", "re-screened on the randomisation date")),
                ("Follow-up", f"{report.follow_up_months} months from each person's randomisation"),
                (
                    "Harm weights",
                    getattr(settings.harm_weights, "name", harm.ILLUSTRATIVE_LABEL),
                ),
                ("Offence lookup", offences.describe_lookup(report.records.lookup)),
                ("Primary outcome", outcome_label(report.primary_outcome)),
                ("Resampling seed", str(report.following.analysis.seed)),
                ("Randomisation re-draws", f"{report.following.analysis.permutations:,}"),
                ("Bootstrap resamples", f"{report.following.analysis.resamples:,}"),
                *(
                    []
                    if report.plan is not None
                    else [
                        (
                            "Re-draws for the sensitivity analysis's Poisson model",
                            f"{settings.sensitivity_permutations:,}",
                        )
                    ]
                ),
                ("Analysis plan", _plan_fact(report)),
            ],
            columns=["Setting", "Value"],
        ),
        "Table A1. Settings used to make this report.",
        numeric_from=2,
    )
    if report.plan is not None:
        plan = plan_for_people(
            report.plan.plan,
            f"Table A2. The analysis plan sealed with the allocation on {report.plan.date} "
            f"(SHA-256 {report.plan.sha256}), field by field. The seal holds its full text.",
        )
        plan_part = table_html(plan)
    else:
        plan_part = _p("Table A2. No analysis plan was sealed with this allocation.")
    seal = seal_for_people(report.seal, report.seal_unchanged, "Table A3. The allocation's seal.")
    summary = _records_table(report)
    methods = methods_for_people(
        report.methods,
        "Table A5. Sensitivity analysis: every outcome by each method, all ages. Each interval "
        "belongs to its own method's test. The primary analysis is the ratio of means; where the methods "
        "disagree, that pre-specified analysis stands, and the disagreement is a reason for caution.",
    )
    items = checklist.checklist(report)
    counted = items["status"].value_counts()
    consort = checklist_for_people(
        items,
        HEADINGS,
        f"Table A6. The CONSORT 2025 checklist: its 30 items ({len(items)} rows with their parts), each "
        f"{checklist.FILLED} ({counted.get(checklist.FILLED, 0)}), {checklist.SUPPLIED} "
        f"({counted.get(checklist.SUPPLIED, 0)}) or {checklist.NOT_AVAILABLE} "
        f"({counted.get(checklist.NOT_AVAILABLE, 0)}), with the section that answers it.",
    )
    versions = PeopleTable(
        report.versions.rename(columns={"package": "Software", "version": "Version"}),
        "Table A7. Software used.",
        numeric_from=2,
    )
    return _section(
        "appendix",
        "Appendix",
        "<h3>Settings</h3>",
        table_html(settings_table),
        "<h3>The analysis plan</h3>",
        plan_part,
        "<h3>The allocation's seal</h3>",
        table_html(seal),
        "<h3>The records</h3>",
        table_html(summary),
        "<h3>Sensitivity analysis</h3>",
        table_html(methods),
        "<h3>CONSORT 2025 checklist</h3>",
        table_html(consort),
        "<h3>Software</h3>",
        table_html(versions),
        css="appendix",
    )


def _records_table(report: TrialReport) -> PeopleTable:
    from .records import summarise

    summary = summarise(report.records)
    by_group = summary.events_by_group.reset_index()
    by_group.columns = ["Offence group", *[f"Events as {c}" for c in by_group.columns[1:]]]
    by_group = by_group.astype({c: "object" for c in by_group.columns[1:]})
    for column in by_group.columns[1:]:
        by_group[column] = by_group[column].map(lambda n: f"{int(n):,}")
    dates = f"{summary.first_offence:%Y-%m-%d} to {summary.last_offence:%Y-%m-%d}" if summary.first_offence else "none"
    table = PeopleTable(
        by_group,
        f"Table A4. The records: {summary.persons:,} people and {summary.events:,} events dated {dates}; "
        f"{100 * summary.police_initiated_share:.1f}% of events police-initiated, "
        f"{100 * summary.knife_share:.1f}% involving a knife.",
    )
    return table


def report_to_html(report: TrialReport) -> str:
    """The whole report as one HTML page (text)."""
    own = report.statements.get("interpretation")
    summary = _section(
        "summary",
        "Summary",
        f'<p class="summary">{_escape(summary_text(report))}</p>',
        _p(f"The unit's interpretation: {own}") if own else "",
    )
    body = "\n".join(
        [
            _title_block(report),
            summary,
            _intervention(report),
            _methods(report),
            _changes(report),
            _flow(report),
            _baseline(report),
            _primary(report),
            _secondary(report),
            _subgroups(report),
            _engagement(report),
            _conduct(report),
            _open_science(report),
            _limitations(report),
            _appendix(report),
        ]
    )
    return _page(_TITLE, body)


def _page(title: str, body: str) -> str:
    """The page template (``fdkit/templates/report.html``) around a report's body."""
    from . import __version__

    template = Template(resources.files("fdkit").joinpath("templates/report.html").read_text(encoding="utf-8"))
    return template.substitute(title=_escape(title), body=body, version=_escape(__version__))


# ----------------------------------------------------------------- the pooled report (several sites)

#: The pooled page's sections, by id, in order.
POOLED_SECTIONS = (
    "summary",
    "sites",
    "flow",
    "primary",
    "by-site",
    "secondary",
    "heterogeneity",
    "limitations",
    "appendix",
)
_POOLED_TITLE = "Focused deterrence trial at several sites: pooled report of outcomes"


def pooled_report_to_html(report) -> str:
    """A pooled report (:class:`fdkit.report_pooled.PooledReport`) as one self-contained HTML page."""
    from .report_pooled import pooled_summary_text

    body = "\n".join(
        [
            _pooled_title_block(report),
            _section("summary", "Summary", f'<p class="summary">{_escape(pooled_summary_text(report))}</p>'),
            _pooled_sites(report),
            _pooled_flow(report),
            _pooled_primary(report),
            _pooled_by_site(report),
            _pooled_secondary(report),
            _pooled_heterogeneity(report),
            _pooled_limitations(report),
            _pooled_appendix(report),
        ]
    )
    return _page(_POOLED_TITLE, body)


def _pooled_title_block(report) -> str:
    settings = report.settings
    people = report.total.randomised
    facts = [
        ("Network", report.unit or "not stated (give it with --unit)"),
        ("Date of report", report.report_date),
        ("Trial registration", report.registration or "not stated (give the registry and ID with --registration)"),
        ("Sites", f"{len(report.sites)}: {', '.join(report.sites)}"),
        ("Primary outcome", f"{outcome_label(report.primary_outcome)}, {settings['follow_up_months']} months"),
        ("Randomised", f"{people:,} people ({report.total.treatment:,} offered the intervention)"),
    ]
    rows = "".join(f"<dt>{_escape(k)}</dt><dd>{_escape(v)}</dd>" for k, v in facts)
    banner = ""
    if report.synthetic:
        banner += (
            '<div class="banner" role="note"><strong>Synthetic data.</strong> Every site\'s records were generated by '
            "fdkit's simulator. They describe no real people, and nothing in this report is evidence about any "
            "intervention.</div>"
        )
    if str(settings.get("harm_weights", "")).startswith("illustrative"):
        banner += (
            '<div class="banner" role="note"><strong>Illustrative harm weights.</strong> Crime harm is weighted '
            "with the kit's illustrative table, not the official Cambridge Crime Harm Index.</div>"
        )
    return (
        f'<header class="title-block"><h1>{_escape(_POOLED_TITLE)}</h1>'
        '<p class="small">Several sites ran one protocol, each with its own sealed random allocation; their '
        "outcomes are analysed together by intention to treat, after CONSORT 2010.</p>"
        f'<dl class="facts">{rows}</dl></header>' + banner
    )


def _pooled_sites(report) -> str:
    rows = []
    for site in report.pooled.manifest["sites"]:
        synthetic = site.get("synthetic") or {}
        town = synthetic.get("site") or {}
        rows.append(
            {
                "Site": site["name"],
                "Randomised on": ", ".join(site["randomised_on"]),
                "Waves": str(site["waves"]),
                "Intervention": f"{site['treatment']:,}",
                "Usual services": f"{site['control']:,}",
                "Share offered the intervention": f"{100 * site['treatment'] / site['people']:.1f}%",
                **({"Base rate (synthetic)": f"{town['base_rate']:g}"} if "base_rate" in town else {}),
            }
        )
    table = PeopleTable(
        pd.DataFrame(rows).fillna("—"),
        "Table 1. The sites: each randomised its own eligible young people with its own sealed allocation.",
    )
    table.notes.append(
        "Every site's seal was checked against its eligible list when the sites were pooled; each site's seal is "
        "listed in its appendix."
    )
    return _section(
        "sites",
        "The sites",
        _p(report.intervention),
        _p(
            "Each site screened its own police records with the same rule and randomised within age bands with its own "
            "number of places. The sites differ in how many people were eligible, so the share offered the "
            "intervention differs too; the pooled analysis re-draws every site's allocation as that site made it, "
            "and its estimate is the common ratio within each site's age bands (each site compared with itself), "
            "so these differences cannot masquerade as an effect."
        ),
        table_html(table),
    )


def _consort_table(report) -> PeopleTable:
    flows = {**report.consort, "Total": report.total}
    reasons = list(dict.fromkeys(reason for counts in flows.values() for reason, _ in counts.exclusions))
    stages = [
        "Assessed for eligibility",
        *(f"Excluded: {reason}" for reason in reasons),
        "Randomised",
        "Allocated to the intervention",
        "… of whom engaged with it",
        "Allocated to usual services",
        "Lost to follow-up",
        "Analysed, intervention",
        "Analysed, usual services",
    ]
    data = {"Stage": stages}
    for name, counts in flows.items():
        excluded = dict(counts.exclusions)
        numbers = [
            counts.assessed,
            *(excluded.get(reason, 0) for reason in reasons),
            counts.randomised,
            counts.treatment,
            counts.engaged,
            counts.control,
            counts.lost_treatment + counts.lost_control,
            counts.analysed_treatment,
            counts.analysed_control,
        ]
        data[name] = ["not recorded" if n is None else f"{n:,}" for n in numbers]
    return PeopleTable(pd.DataFrame(data), "Table 2. The flow of people through the trial at each site and in total.")


def _pooled_flow(report) -> str:
    months = report.settings["follow_up_months"]
    return _section(
        "flow",
        "The flow of people through the trial",
        table_html(_consort_table(report)),
        figure_html(
            plot_consort(report.total, months),
            describe_consort(report.total, months),
            "Figure 1. CONSORT flow diagram of every site together (each site's own diagram is in its appendix). "
            "Outcomes come from police records, which follow every randomised person.",
        ),
    )


def _pooled_primary(report) -> str:
    rows = report.rows()
    table = results_for_people(
        rows.iloc[[0]],
        "Table 3. The pre-specified primary outcome, every site together.",
        "inverts the stratified score randomisation test",
    )
    return _section(
        "primary",
        "Primary outcome",
        _p(
            "The % reduction is 100 × (1 − ratio), where the ratio of intervention to usual services is the one "
            "common to every site's age bands, each compared with itself: the sites offered the intervention to "
            "different shares of people with different base rates, so it can differ from the ratio of the two "
            "averages shown. The p-value comes from a randomisation test that re-draws every site's own "
            "allocation, within its age bands and waves and with its own number of places, many times over, "
            "and is equal-tailed (2.5% each way); the interval is the set of effects that test does not reject, "
            "so it excludes no effect exactly when p < 0.05."
        ),
        table_html(table, primary_rows=1),
    )


def _site_results_table(report, outcome: str) -> PeopleTable:
    from .pooling import POOLED
    from .report_pooled import POOLED_LABEL
    from .report_tables import format_interval, format_p, format_pct

    results = report.pooled.results
    table = PeopleTable(pd.DataFrame(), "")
    rows = []
    for site in [*report.sites, POOLED]:
        row = results[(results["site"] == site) & (results["outcome"] == outcome)].iloc[0]
        rows.append(
            {
                "Site": POOLED_LABEL if site == POOLED else site,
                "People (intervention / usual)": f"{int(row['n_treated'])} / {int(row['n_control'])}",
                "% reduction": format_pct(row["pct_reduction"], table),
                "95% interval": format_interval(row["ci_low"], row["ci_high"], table),
                "p-value": format_p(row["p_value"]),
            }
        )
        if isinstance(row["note"], str) and row["note"]:
            table.notes.append(f"{rows[-1]['Site']}: {row['note']}")
    table.data = pd.DataFrame(rows)
    table.numeric_from = 2
    table.caption = (
        f"Table 4. {outcome_label(outcome)}: each site's own analysis beside the pooled one. 95% intervals invert "
        "each randomisation test."
    )
    return table


def _pooled_by_site(report) -> str:
    from .report_pooled import describe_site_forest, plot_site_forest

    return _section(
        "by-site",
        "Each site and all together",
        _p(
            "Each site's own result rests on a fraction of the people, so its interval is wide and its p-value is "
            "often above 0.05 even when the intervention works everywhere. Counting the sites that reached "
            "significance would mislead: read the estimates and intervals together, and the pooled row, which "
            "uses everyone."
        ),
        table_html(_site_results_table(report, report.primary_outcome)),
        figure_html(
            plot_site_forest(report.pooled.results, report.pooled.heterogeneity, report.primary_outcome).figure,
            describe_site_forest(report.pooled.results, report.pooled.heterogeneity, report.primary_outcome),
            "Figure 2. % reduction at each site (squares, people in brackets: intervention / usual services), pooled "
            "(diamond) and for the average site of a random-effects model (circle; the dotted line is the 95% "
            "prediction interval for a new site). Arrows mean the interval continues beyond the plot.",
        ),
    )


def _pooled_secondary(report) -> str:
    table = results_for_people(
        report.rows().iloc[1:],
        "Table 5. Secondary outcomes, every site together, with p-values adjusted for the number of outcomes.",
        "inverts the stratified score randomisation test",
    )
    return _section(
        "secondary",
        "Secondary outcomes",
        _p(
            f"{len(report.rows())} outcomes were analysed, so some small p-values are expected by chance alone; the "
            "Holm and Benjamini–Hochberg columns adjust for this across the outcomes."
        ),
        table_html(table),
    )


def _pooled_heterogeneity(report) -> str:
    from .report_tables import format_interval, format_number, format_p, format_pct

    rows = []
    table = PeopleTable(pd.DataFrame(), "")
    for row in report.pooled.heterogeneity.itertuples():
        rows.append(
            {
                "Outcome": outcome_label(row.outcome),
                "Same effect at every site? p": format_p(row.p_value),
                "Average site (random effects)": f"{format_pct(row.re_pct_reduction, table)}%"
                if pd.notna(row.re_pct_reduction)
                else "—",
                "95% interval": format_interval(row.re_ci_low, row.re_ci_high, table),
                "A new site (95% prediction)": format_interval(row.pi_low, row.pi_high, table),
                "Between-site variance (log ratio)": format_number(row.tau2, 3),
            }
        )
        for note in (row.note, row.re_note):
            if isinstance(note, str) and note:
                table.notes.append(f"{outcome_label(row.outcome)}: {note}")
    table.data = pd.DataFrame(rows)
    table.numeric_from = 1
    table.caption = (
        "Table 6. Does the effect differ between sites? A randomisation test of one common effect (each site's "
        "primary test of a common ratio against re-draws of its own allocation, combined as Cochran's Q: the "
        "smallest sum of the sites' squared normal scores over common ratios, on sites − 1 degrees of freedom), "
        "and a random-effects summary (Paule–Mandel "
        "between-site variance; Knapp–Hartung interval for the average site; prediction interval for a new site)."
    )
    method = str(report.pooled.heterogeneity["method"].iloc[0])
    return _section(
        "heterogeneity",
        "Do the sites differ?",
        _p(
            f"The test of a common effect ({method}) asks whether the sites' estimates differ by more than chance "
            "would make them differ if the intervention had the same effect everywhere. With few sites it detects "
            "only large differences, so a large p-value does not show that the sites are alike. The random-effects "
            "model describes the spread instead: the between-site variance, the effect at the average site, and "
            "where the effect at a new site running the same protocol could plausibly fall. That last interval is "
            "the honest answer to 'would it work here?', and with few sites it is wide."
        ),
        table_html(table),
    )


def _pooled_limitations(report) -> str:
    from .report_pooled import pooled_limitations

    items = "".join(
        f"<li><strong>{_escape(head)}</strong> {_escape(text)}</li>" for head, text in pooled_limitations(report)
    )
    return _section("limitations", "Limitations", f'<ul class="limitations">{items}</ul>')


def _pooled_site_appendix(report, site: dict, number: int) -> str:
    name = site["name"]
    months = report.settings["follow_up_months"]
    counts = report.consort[name]
    balance = report.pooled.balance
    part = balance[balance["site"] == name].drop(columns="site")
    results = results_for_people(
        report.rows(name),
        f"Table B{number}.2. Site {name}: every outcome, its own analysis (the same as the site's own fdkit analyse).",
        "inverts the randomisation test",
    )
    return "".join(
        [
            f"<h3>Site {_escape(name)}</h3>",
            figure_html(
                plot_consort(counts, months),
                describe_consort(counts, months),
                f"Figure B{number}. Site {name}: CONSORT flow diagram.",
            ),
            table_html(
                balance_for_people(
                    part[part["subgroup"] == "all"] if "subgroup" in part else part,
                    f"Table B{number}.1. Site {name}: the two groups before randomisation (prior 24 months).",
                )
            ),
            table_html(results),
            table_html(seal_for_people(site["seal"], True, f"Table B{number}.3. Site {name}: the allocation's seal.")),
        ]
    )


def _pooled_appendix(report) -> str:
    settings = report.settings
    settings_table = PeopleTable(
        pd.DataFrame(
            [
                ("Pooled folder", report.pooled.folder.name),
                ("Follow-up", f"{settings['follow_up_months']} months from each person's randomisation"),
                ("Harm weights", str(settings["harm_weights"])),
                ("Offence lookup", str(settings["offence_lookup"])),
                ("Primary outcome", outcome_label(report.primary_outcome)),
                ("Resampling seed", str(settings["seed"])),
                ("Randomisation re-draws", f"{settings['permutations']:,}"),
                ("Strata of the pooled test", "site × age band, within each site's waves"),
            ],
            columns=["Setting", "Value"],
        ),
        "Table A1. Settings used to pool the sites.",
        numeric_from=2,
    )
    versions = PeopleTable(
        report.versions.rename(columns={"package": "Software", "version": "Version"}),
        "Table A2. Software used to make this report.",
        numeric_from=2,
    )
    sites = [
        _pooled_site_appendix(report, site, number) for number, site in enumerate(report.pooled.manifest["sites"], 1)
    ]
    return _section(
        "appendix",
        "Appendix",
        "<h3>Settings</h3>",
        table_html(settings_table),
        "<h3>Software</h3>",
        table_html(versions),
        *sites,
        css="appendix",
    )
