"""The report against CONSORT 2025: every item filled from the data, given by the unit, or said to be missing.

CONSORT 2025 (Hopewell et al., 2025; BMJ 388:e081123, PLOS Medicine 22:e1004587) is the
checklist of what a report of a randomised trial must contain: 30 items, several split into
parts (1a and 1b, 5a and 5b, ...), 42 rows in all. New since 2010 are an "open science"
section (registration; where the protocol and statistical analysis plan can be read; data
sharing; funding and conflicts of interest), patient and public involvement, harms, and a
stronger demand that changes to the trial and analyses that were not pre-specified are
reported with their reasons.

The kit's report answers each row in one of three ways (:func:`checklist`):

``filled from the data``
    The kit computes it: the flow of people, the outcomes, the methods of the sealed plan, the
    changes to the plan ...
``supplied by the unit``
    Text only the unit can give (funding, data sharing, ethics of involvement, harms,
    blinding, ...), from the analysis plan (registration, protocol) or from ``report.toml``
    (:func:`read_statements`; ``fdkit plan --report-template`` prints one to fill in).
``not available``
    Neither: the report says so plainly rather than leaving the reader to guess.

:data:`ITEMS` lists every row with the section of the report that answers it; the report's
appendix prints the table.
"""

from __future__ import annotations

import difflib
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from .records import FdkitDataError, Problem

if TYPE_CHECKING:
    from .report import TrialReport

__all__ = [
    "FILLED",
    "ITEMS",
    "Item",
    "NOT_AVAILABLE",
    "STATEMENTS",
    "SUPPLIED",
    "checklist",
    "read_statements",
    "statements_template",
    "statements_toml",
]

FILLED = "filled from the data"
SUPPLIED = "supplied by the unit"
NOT_AVAILABLE = "not available"

#: The unit's own text a report may carry, by ``report.toml`` key: the CONSORT 2025 item it
#: answers and what to write.
STATEMENTS: dict[str, tuple[str, str]] = {
    "registration": ("2", "the registry's name, the trial's web address there and the date it was registered"),
    "protocol": ("3", "where the trial protocol and the statistical analysis plan can be read"),
    "data_sharing": ("4", "where and how de-identified data, the data dictionary and the code can be had"),
    "funding": ("5a", "who funded the trial and what part, if any, the funders had in it"),
    "conflicts_of_interest": ("5b", "the authors' financial and other conflicts of interest, or none"),
    "background": ("6", "why the trial was done: what was known, and what was not"),
    "public_involvement": ("8", "how young people, families or the public took part in designing or running it"),
    "protocol_changes": ("10", "changes to the trial itself after it began (recruitment, eligibility ...), with why"),
    "setting": ("11", "where the trial ran: the area, the services and the police force"),
    "deliverers": ("12b", "who delivered the intervention and what was required of them (case workers ...)"),
    "harms": ("15", "how harms or unintended effects were defined and looked for"),
    "sample_size": ("16a", "how the number of places was decided (a power calculation, capacity ...)"),
    "interim_analyses": ("16b", "any interim looks at the results and rules for stopping early, or none"),
    "allocation_concealment": ("18", "how the allocation was kept from those enrolling people until it was made"),
    "implementation": ("19", "who generated the allocation, who enrolled people and who assigned them"),
    "blinding": ("20a", "who knew the allocation after it was made (young people, case workers, analysts)"),
    "trial_end": ("23b", "why the trial ended or was stopped"),
    "concomitant_care": ("24b", "other services either group received during the trial"),
    "harms_observed": ("27", "the harms or unintended effects seen in each group, or none"),
    "interpretation": ("29", "the unit's own reading of the results, beside the report's summary"),
}


@dataclass(frozen=True)
class Item:
    """One row of the CONSORT 2025 checklist and where the kit's report answers it.

    Attributes
    ----------
    number : str
        ``"1a"``, ``"2"`` ...
    topic : str
        The item in a few words.
    section : str
        The id of the report's section that answers it (:data:`fdkit.report_html.SECTIONS`, or
        ``"title"`` for the title block).
    statement : str
        The ``report.toml`` key whose text answers it, if any.
    data : bool
        Whether the kit fills it from the data (when that is possible; see :func:`checklist`).
    """

    number: str
    topic: str
    section: str
    statement: str = ""
    data: bool = True


ITEMS: tuple[Item, ...] = (
    Item("1a", "Identified as a randomised trial", "title"),
    Item("1b", "Structured summary of design, methods, results and conclusions", "summary"),
    Item("2", "Trial registration: registry, number and date", "open-science", "registration", data=False),
    Item("3", "Where the protocol and statistical analysis plan can be read", "open-science", "protocol"),
    Item("4", "Data sharing: data, data dictionary and code", "open-science", "data_sharing", data=False),
    Item("5a", "Funding and the role of funders", "open-science", "funding", data=False),
    Item("5b", "Conflicts of interest", "open-science", "conflicts_of_interest", data=False),
    Item("6", "Scientific background and rationale", "intervention", "background", data=False),
    Item("7", "Objectives, for benefits and harms", "methods"),
    Item("8", "Patient and public involvement", "open-science", "public_involvement", data=False),
    Item("9", "Trial design: type, allocation ratio and framework", "methods"),
    Item("10", "Changes to the trial and analyses not pre-specified, with reasons", "changes", "protocol_changes"),
    Item("11", "Setting and locations", "conduct", "setting", data=False),
    Item("12a", "Eligibility criteria for participants", "intervention"),
    Item("12b", "Eligibility of those delivering the intervention", "conduct", "deliverers", data=False),
    Item("13", "The intervention and comparator, in enough detail to repeat", "intervention"),
    Item("14", "Pre-specified primary and secondary outcomes, how and when measured", "methods"),
    Item("15", "How harms were defined and assessed", "conduct", "harms", data=False),
    Item("16a", "How the sample size was determined", "methods", "sample_size"),
    Item("16b", "Interim analyses and stopping rules", "conduct", "interim_analyses", data=False),
    Item("17a", "How the allocation sequence was generated", "methods"),
    Item("17b", "Type of randomisation and any restriction (strata)", "methods"),
    Item("18", "Allocation concealment", "conduct", "allocation_concealment", data=False),
    Item("19", "Who generated the sequence, enrolled and assigned", "conduct", "implementation", data=False),
    Item("20a", "Who was blinded after assignment", "conduct", "blinding", data=False),
    Item("20b", "How blinding was achieved, and the similarity of interventions", "conduct", "blinding", data=False),
    Item("21a", "Statistical methods for each outcome", "methods"),
    Item("21b", "Who was included in each analysis, and in which group", "methods"),
    Item("21c", "How missing data were handled", "methods"),
    Item("21d", "Additional analyses (subgroup, sensitivity), pre-specified or not", "methods"),
    Item("22a", "Participant flow: randomised, received, analysed (diagram)", "flow"),
    Item("22b", "Losses and exclusions after randomisation, with reasons", "flow"),
    Item("23a", "Dates of recruitment and follow-up", "flow"),
    Item("23b", "Why the trial ended or was stopped", "conduct", "trial_end", data=False),
    Item("24a", "The intervention as delivered (engagement)", "engagement"),
    Item("24b", "Concomitant care", "conduct", "concomitant_care", data=False),
    Item("25", "Baseline characteristics of each group", "baseline"),
    Item("26", "Each outcome by group: numbers, results, effect and its precision", "primary"),
    Item("27", "Harms or unintended effects in each group", "conduct", "harms_observed", data=False),
    Item("28", "Other analyses, pre-specified or exploratory", "subgroups"),
    Item("29", "Interpretation consistent with the results", "summary", "interpretation"),
    Item("30", "Limitations: bias, imprecision, multiplicity", "limitations"),
)


def checklist(report: TrialReport) -> pd.DataFrame:
    """Every row of CONSORT 2025 for a report: how it is answered, and where.

    Returns
    -------
    pandas.DataFrame
        ``item``, ``topic``, ``status`` (:data:`FILLED`, :data:`SUPPLIED` or
        :data:`NOT_AVAILABLE`), ``section`` and ``note`` (why an item is not available).
    """
    rows = []
    for item in ITEMS:
        supplied = bool(item.statement and report.statements.get(item.statement)) or _supplied_by_plan(item, report)
        filled, note = _filled(item, report)
        status = FILLED if filled else SUPPLIED if supplied else NOT_AVAILABLE
        if status != NOT_AVAILABLE:
            note = ""
        elif not note:
            note = f"the unit can give it in report.toml (item {item.number})" if item.statement else "not recorded"
        rows.append({"item": item.number, "topic": item.topic, "status": status, "section": item.section, "note": note})
    return pd.DataFrame(rows)


def _supplied_by_plan(item: Item, report: TrialReport) -> bool:
    if item.number == "2":
        return bool(report.registration)
    return False


def _filled(item: Item, report: TrialReport) -> tuple[bool, str]:
    """Whether the kit fills an item from the data for this report (and, if not, why)."""
    if not item.data:
        return False, ""
    if item.number == "3":  # the plan itself is reproduced in the appendix when one was sealed
        return report.plan is not None, "no analysis plan was sealed with the allocation"
    if item.number == "10":
        return report.plan is not None, "no analysis plan was sealed, so no change to one can be shown"
    if item.number == "24a":
        return report.consort.engaged is not None, "engagement was not recorded"
    return True, ""


# ---------------------------------------------------------------------------- report.toml


def read_statements(path: str | Path) -> dict[str, str]:
    """Read ``report.toml``: the unit's text for items of CONSORT 2025 the data cannot fill.

    Every key must be one of :data:`STATEMENTS` and every value non-empty text.

    Raises
    ------
    fdkit.FdkitDataError
        Naming the file and each key that is unknown or whose value is not text.
    """
    path = Path(path)
    name = path.name
    try:
        values = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise FdkitDataError(
            [Problem(name, "not found; fdkit plan --report-template prints one to fill in")], source=path
        ) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise FdkitDataError([Problem(name, f"not a readable TOML file ({error})")], source=path) from None
    problems = []
    for key, value in values.items():
        if key not in STATEMENTS:
            close = difflib.get_close_matches(key, STATEMENTS, n=1)
            hint = f" (did you mean {close[0]}?)" if close else "; fdkit plan --report-template lists the keys"
            problems.append(Problem(name, f"{key}: not a statement a report takes{hint}"))
        elif not isinstance(value, str) or not value.strip():
            shown = repr(value)[:60]
            problems.append(Problem(name, f"{key}: must be text (in quotes), not empty; got {shown}"))
        elif len(value) > 4000:
            problems.append(Problem(name, f"{key}: at most 4,000 characters; got {len(value):,}"))
    if problems:
        raise FdkitDataError(problems, source=path)
    return {key: " ".join(value.split()) for key, value in values.items()}


def statements_toml(statements: dict[str, str]) -> str:
    """``report.toml`` holding ``statements`` (keys of :data:`STATEMENTS`), which :func:`read_statements` reads back."""
    import json

    if unknown := sorted(set(statements) - set(STATEMENTS)):
        raise ValueError(f"not statements a report takes: {', '.join(unknown)}")
    lines = ["# report.toml: the unit's own text for the CONSORT 2025 items the data cannot fill."]
    for key, text in statements.items():
        lines += [f"# (item {STATEMENTS[key][0]}) {STATEMENTS[key][1]}", f"{key} = {json.dumps(text)}"]
    return "\n".join(lines) + "\n"


def statements_template() -> str:
    """A commented ``report.toml`` with every key the report takes (each left out until filled in)."""
    lines = [
        "# report.toml: your own text for the CONSORT 2025 items the data cannot fill.",
        "# Put it beside the allocation (or give it with fdkit report --statements FILE). Remove the",
        "# '# ' before a key and write its text; leave out what you cannot say, and the report will",
        "# state plainly that it is not available. Text may run over several lines in triple quotes.",
        "",
    ]
    for key, (number, about) in STATEMENTS.items():
        lines += [f"# (item {number}) {about}", f'# {key} = ""', ""]
    return "\n".join(lines)
