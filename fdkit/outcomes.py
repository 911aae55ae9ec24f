"""The per-person outcome frame: what each randomised person did before and after.

One row per randomised person, with ``person_id``, ``arm``, ``stratum``, ``wave``,
``randomised_on`` (and ``engaged`` when engagement is known), and for each outcome two
columns: ``<outcome>_baseline`` (the ``baseline_months`` before randomisation:
``randomised_on - months <= offence_date < randomised_on``) and ``<outcome>`` (the
follow-up: ``randomised_on <= offence_date < randomised_on + months``).

**The day rule.** Every window includes its first day and excludes its last, so the
randomisation day itself belongs to the follow-up, and eligibility
(:mod:`fdkit.eligibility`), which looks only at the days before the reference date, never
sees it: a crime is counted on one side of randomisation only.

The outcomes are the trial's published ones. Each counts a crime once per person:

=========================  ==========================================================
``harm_suspect``           crime harm (days) of non-police-initiated crimes as suspect
``knife_suspect``          non-police-initiated knife offences as suspect (the kit's knife rule)
``knife_suspect_all``      knife offences as suspect, police-initiated ones included
``violence_suspect``       violent crimes as suspect
``violence_sexual_suspect``  violent or sexual crimes as suspect
``other_npi_suspect``      non-police-initiated crimes as suspect that are neither violent,
                           sexual nor knife offences
``violence_victim``        violent crimes as victim
``knife_victim``           knife offences as victim
=========================  ==========================================================

Police-initiated crimes are left out of the harm outcome, of ``knife_suspect`` (and of
``other_npi_suspect`` by definition) because they measure police attention as much as
offending: most police-initiated knife crimes are possession found by stop and search, so a
treated group watched more closely would otherwise look worse, and a group the police
stepped back from would look better. ``knife_suspect_all`` keeps them, to show how much the
choice matters; it is reported beside the others but is not a separate hypothesis, so it is
left out of the multiplicity adjustments (:data:`SENSITIVITY_OUTCOMES`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import facts, harm, offences
from ._dates import add_months
from ._text import isin
from .randomise import Allocation
from .records import FdkitDataError, Problem, Records

__all__ = [
    "OUTCOMES",
    "OUTCOME_NAMES",
    "Outcome",
    "PUBLISHED_UNDER_18",
    "SENSITIVITY_OUTCOMES",
    "build_frame",
    "event_values",
    "get",
]


@dataclass(frozen=True)
class Outcome:
    """One outcome: who (role), which crimes, and whether it sums harm or counts crimes."""

    name: str
    label: str
    role: str
    selects: Callable[[pd.DataFrame], pd.Series]
    measure: str = "count"
    published_reduction: float | None = None  # the trial's reported % reduction, all ages

    def mask(self, classified: pd.DataFrame) -> np.ndarray:
        """Which rows of classified events (see :func:`fdkit.offences.classify`) count."""
        return ((classified["role"] == self.role) & self.selects(classified)).to_numpy(dtype=bool)


def _published(key: str) -> float:
    """A published % reduction from the trial facts table (``fdkit/data/trial_facts.csv``)."""
    return float(facts.number(key))


def _not_police_initiated(e):
    return ~e["police_initiated"]


OUTCOMES: tuple[Outcome, ...] = (
    Outcome(
        "harm_suspect",
        "crime harm as a suspect",
        "suspect",
        _not_police_initiated,
        "harm",
        _published("reduction_harm_suspect"),
    ),
    Outcome(
        "knife_suspect",
        "knife offences as a suspect",
        "suspect",
        lambda e: e["knife_involved"] & ~e["police_initiated"],
        published_reduction=_published("reduction_knife_suspect"),
    ),
    Outcome(
        "knife_suspect_all",
        "knife offences as a suspect, police-initiated included",
        "suspect",
        lambda e: e["knife_involved"],
    ),
    Outcome(
        "violence_suspect",
        "violent crime as a suspect",
        "suspect",
        lambda e: e["violent"],
        published_reduction=_published("reduction_violence_suspect"),
    ),
    Outcome(
        "violence_sexual_suspect",
        "violent or sexual crime as a suspect",
        "suspect",
        lambda e: e["violent"] | e["sexual"],
        published_reduction=_published("reduction_violent_sexual_suspect"),
    ),
    Outcome(
        "other_npi_suspect",
        "other non-police-initiated crime as a suspect",
        "suspect",
        lambda e: ~(e["police_initiated"] | e["violent"] | e["sexual"] | e["knife_involved"]),
        published_reduction=_published("reduction_other_suspect"),
    ),
    Outcome(
        "violence_victim",
        "violent crime as a victim",
        "victim",
        lambda e: e["violent"],
        published_reduction=_published("reduction_violence_victim"),
    ),
    Outcome("knife_victim", "knife crime as a victim", "victim", lambda e: e["knife_involved"]),
)
OUTCOME_NAMES = tuple(o.name for o in OUTCOMES)
#: Outcomes that re-measure another one a different way: reported, but left out of the
#: family of hypotheses that Holm and Benjamini-Hochberg adjust over.
SENSITIVITY_OUTCOMES = ("knife_suspect_all",)
#: Published under-18 reductions (poster: harm and knife offending; press release: knife crime
#: as a victim), from the trial facts table.
PUBLISHED_UNDER_18 = {
    "harm_suspect": _published("under_18_harm_suspect"),
    "knife_suspect": _published("under_18_knife_suspect"),
    "knife_victim": _published("under_18_knife_victim"),
}


def get(name: str) -> Outcome:
    """The outcome called ``name``."""
    for outcome in OUTCOMES:
        if outcome.name == name:
            return outcome
    raise KeyError(f"no outcome called {name!r}; the outcomes are {', '.join(OUTCOME_NAMES)}")


def event_values(
    events: pd.DataFrame,
    weights: pd.DataFrame | None = None,
    *,
    missing: str = "error",
    lookup: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """What each event contributes to each outcome: 0/1 for counts, its harm for harm.

    Parameters
    ----------
    events : pandas.DataFrame
        Events in the records format.
    weights : pandas.DataFrame, optional
        A harm weight table (``offence_code``, ``weight``); the kit's illustrative one by default.
    missing : {"error", "zero"}
        What to do with offence codes that have no weight (see :func:`fdkit.harm.weigh`).
    lookup : pandas.DataFrame, optional
        The offence lookup (a unit's own); the kit's by default.

    Returns
    -------
    pandas.DataFrame
        One column per outcome, aligned with ``events``.
    """
    classified = offences.classify(events, lookup)
    weights = harm.illustrative_weights() if weights is None else weights
    harm_days = harm.weigh(events, weights, missing=missing)["harm"].to_numpy(dtype=float)
    values = {}
    for outcome in OUTCOMES:
        selected = outcome.mask(classified)
        values[outcome.name] = np.where(selected, harm_days if outcome.measure == "harm" else 1.0, 0.0)
    return pd.DataFrame(values, index=events.index)


def build_frame(
    records: Records,
    allocation: Allocation,
    *,
    weights: pd.DataFrame | None = None,
    follow_up_months: int = 12,
    baseline_months: int = 24,
    missing: str = "error",
    allow_incomplete: bool = False,
    lookup: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Build the per-person outcome frame for an allocation.

    Parameters
    ----------
    records : fdkit.Records
    allocation : fdkit.randomise.Allocation
    weights : pandas.DataFrame, optional
        Harm weights; the illustrative table by default.
    follow_up_months, baseline_months : int
        Window lengths in calendar months.
    missing : {"error", "zero"}
        Policy for offence codes without a harm weight.
    allow_incomplete : bool, default False
        Build the frame even if some follow-up windows end after the last recorded event
        (by default that is an error: outcomes would be undercounted).
    lookup : pandas.DataFrame, optional
        The offence lookup; the records' own (``records.lookup``), or else the kit's.

    Returns
    -------
    pandas.DataFrame
        See the module docstring. Sorted by ``person_id``.

    Raises
    ------
    fdkit.FdkitDataError
        If allocated people are missing from the records, or follow-up windows run past
        the records.
    """
    people = allocation.table.copy()
    _check_people(records, people)
    people["baseline_start"] = add_months(people["randomised_on"], -baseline_months)
    people["follow_up_end"] = add_months(people["randomised_on"], follow_up_months)
    _check_coverage(records, people, follow_up_months, allow_incomplete)

    events = records.events
    mine = events["person_id"].isin(people["person_id"]).to_numpy()
    events = events.loc[mine]
    values = event_values(events, weights, missing=missing, lookup=records.lookup if lookup is None else lookup)
    windows = events[["person_id", "offence_date"]].merge(
        people[["person_id", "baseline_start", "randomised_on", "follow_up_end"]], on="person_id", how="left"
    )
    date = windows["offence_date"].to_numpy()
    period = np.select(
        [
            (date >= windows["baseline_start"].to_numpy()) & (date < windows["randomised_on"].to_numpy()),
            (date >= windows["randomised_on"].to_numpy()) & (date < windows["follow_up_end"].to_numpy()),
        ],
        ["baseline", "follow_up"],
        default="outside",
    )
    values.index = windows.index
    values["person_id"], values["period"] = windows["person_id"].to_numpy(), period
    frame = people[["person_id", "arm", "stratum", "wave", "randomised_on"]].set_index("person_id")
    for period_name, suffix in (("baseline", "_baseline"), ("follow_up", "")):
        in_period = values[values["period"] == period_name]
        totals = in_period.groupby("person_id")[list(OUTCOME_NAMES)].sum().reindex(frame.index, fill_value=0.0)
        for outcome in OUTCOME_NAMES:
            frame[outcome + suffix] = totals[outcome].astype(float)
    frame = frame[[*frame.columns[:4], *(c for o in OUTCOME_NAMES for c in (f"{o}_baseline", o))]]
    if records.engagement is not None:
        engaged = records.engagement.set_index("person_id")["engaged"]
        frame.insert(4, "engaged", engaged.reindex(frame.index).fillna(False).astype(bool).to_numpy())
    return frame.reset_index().sort_values("person_id", ignore_index=True)


def _check_people(records: Records, people: pd.DataFrame) -> None:
    unknown = people.loc[~isin(people["person_id"], records.persons["person_id"]), "person_id"]
    if len(unknown):
        raise FdkitDataError(
            [
                Problem(
                    "allocation",
                    f"{len(unknown)} people allocated but not in the records' persons.csv "
                    f"(is this the right records folder?): {_some(unknown)}",
                    column="person_id",
                    values=tuple(unknown.head(10)),
                    count=len(unknown),
                )
            ],
            source=records.source,
        )


def _check_coverage(records: Records, people: pd.DataFrame, months: int, allow_incomplete: bool) -> None:
    if allow_incomplete or records.events.empty:
        return
    from .importer import declared_coverage_end

    last, what = records.events["offence_date"].max(), "the last recorded event"
    if (declared := declared_coverage_end(records.source)) is not None:
        last, what = declared, "the extract's declared coverage in extract.json"
    late = people[people["follow_up_end"] > last + pd.Timedelta(days=1)]
    if len(late):
        raise FdkitDataError(
            [
                Problem(
                    "allocation",
                    f"{len(late)} people's {months}-month follow-up ends after {what} "
                    f"({last:%Y-%m-%d}), so their outcomes would be undercounted; "
                    f"use records that cover the follow-up, or a shorter follow-up: {_some(late['person_id'])}",
                    column="randomised_on",
                    values=tuple(late["person_id"].head(10)),
                    count=len(late),
                )
            ],
            source=records.source,
        )


def _some(ids: pd.Series, shown: int = 10) -> str:
    listed = ", ".join(map(str, ids.head(shown)))
    return listed + (f" and {len(ids) - shown:,} more" if len(ids) > shown else "")
