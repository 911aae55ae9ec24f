"""Who is eligible for the trial: the cohort rule as data, and a screen with a funnel.

The Milton Keynes trial took young people aged 11 to 25 who had at least one knife offence
as a suspect in the past 12 months **and** one other knife, violent or sexual offence as a
suspect in the past 24 months. :class:`EligibilityRule` holds that rule's parts as fields,
so a unit can change a window or an age limit and see how the cohort moves; the default is
the trial's rule.

Exactly what the default rule means, on a reference date ``R``:

* **Age** in whole years on ``R`` (a birthday on ``R`` counts; someone born on 29 February
  turns a year older on 1 March in other years), and ``11 <= age <= 25``. A person whose
  date of birth is a placeholder for "not known" (1900-01-01 and the others in
  :data:`fdkit.records.PLACEHOLDER_BIRTH_DATES`) has no known age and is left out first,
  counted in the funnel as "date of birth unknown" (a step the funnel has only when
  someone is left out by it).
* **Knife criterion**: at least one knife offence as a suspect with
  ``R - 12 months <= offence_date < R``. A knife offence is an event whose offence code is
  a knife offence or whose ``knife`` flag is true (:func:`fdkit.offences.is_knife_event`).
* **Other-offence criterion**: at least one *other* crime (a different ``crime_id``) as a
  suspect that is a knife offence, violent or sexual, with
  ``R - 24 months <= offence_date < R``. Two different knife crimes in the last 12 months
  therefore qualify on their own; a single crime never satisfies both criteria.
* **The day rule.** Every window in the kit includes its first day and excludes its last:
  eligibility looks at the 12 (24) months *before* ``R``, ending on the day before it; the
  outcome frame's baseline does the same, and the follow-up starts *on* the randomisation
  day (:mod:`fdkit.outcomes`). So a crime dated on the reference and randomisation day
  counts as an outcome and never for eligibility: no crime is counted on both sides.
  Months are calendar months (``2023-03-31`` minus one month is ``2023-02-28``).
* Events on or after ``R`` are ignored. Police-initiated events count. A crime counts once
  per person however many rows record it.

Optional exclusions (already allocated in an earlier wave, in custody, deceased, other) are
applied last and appear in the funnel with their reasons.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from . import offences
from ._dates import add_months
from ._text import isin, quoted
from .records import Records, placeholder_births

__all__ = [
    "EXCLUSION_REASONS",
    "EligibilityRule",
    "UNKNOWN_BIRTH",
    "Screening",
    "age_band",
    "age_on",
    "read_eligible",
    "screen",
    "write_eligible",
]

#: Offence flags a rule's offence sets may name (see :func:`fdkit.offences.classify`).
OFFENCE_FLAGS = ("knife_involved", "violent", "sexual")

#: The funnel's reason for people whose date of birth is a placeholder (their age is unknown).
UNKNOWN_BIRTH = "date of birth unknown"

#: Reasons an eligible person may be excluded before randomisation.
EXCLUSION_REASONS = ("already allocated", "in custody", "deceased", "other")


@dataclass(frozen=True)
class EligibilityRule:
    """The cohort rule. The defaults are the Milton Keynes trial's.

    Attributes
    ----------
    min_age, max_age : int
        Inclusive limits on age in whole years on the reference date.
    index_window_months : int
        Look-back for the index criterion (default 12).
    index_offences : tuple of str
        Offence flags that make a crime count for the index criterion (default: knife).
    other_window_months : int
        Look-back for the second criterion (default 24).
    other_offences : tuple of str
        Offence flags that make a different crime count for the second criterion
        (default: knife, violent or sexual).
    role : str
        The role the person must have had in those crimes (default ``"suspect"``).
    age_bands : tuple of (int, int, str)
        Inclusive age bands used as randomisation strata, with their labels.
    """

    min_age: int = 11
    max_age: int = 25
    index_window_months: int = 12
    index_offences: tuple[str, ...] = ("knife_involved",)
    other_window_months: int = 24
    other_offences: tuple[str, ...] = ("knife_involved", "violent", "sexual")
    role: str = "suspect"
    age_bands: tuple[tuple[int, int, str], ...] = ((11, 17, "11-17"), (18, 25, "18-25"))

    def __post_init__(self):
        if self.min_age > self.max_age:
            raise ValueError(f"min_age ({self.min_age}) is above max_age ({self.max_age})")
        for name in ("index_offences", "other_offences"):
            if unknown := set(getattr(self, name)) - set(OFFENCE_FLAGS):
                raise ValueError(f"{name} may only name {', '.join(OFFENCE_FLAGS)}; got {sorted(unknown)}")
        covered = [age for low, high, _ in self.age_bands for age in range(low, high + 1)]
        if sorted(covered) != list(range(self.min_age, self.max_age + 1)):
            raise ValueError("age_bands must cover min_age..max_age exactly once each")

    def describe(self) -> str:
        """The rule in one sentence."""

        def offence_words(flags):
            words = {"knife_involved": "knife", "violent": "violent", "sexual": "sexual"}
            return " or ".join(words[f] for f in flags)

        return (
            f"aged {self.min_age}-{self.max_age}, with at least one {offence_words(self.index_offences)} "
            f"offence as a {self.role} in the past {self.index_window_months} months and another "
            f"{offence_words(self.other_offences)} offence as a {self.role} in the past "
            f"{self.other_window_months} months"
        )


@dataclass(frozen=True)
class Screening:
    """The result of :func:`screen`.

    Attributes
    ----------
    eligible : pandas.DataFrame
        One row per eligible person: ``person_id``, ``sex``, ``date_of_birth``, ``age``,
        ``age_band``, ``index_crimes`` (distinct crimes meeting the index criterion),
        ``other_crimes`` (distinct crimes meeting the second criterion's offence set and
        window) and ``last_index_date``; sorted by ``person_id``.
    funnel : pandas.DataFrame
        One row per step: ``step``, ``description``, ``remaining``, ``excluded`` and
        ``reason`` (why those people left at that step).
    reference_date : pandas.Timestamp
    rule : EligibilityRule
    """

    eligible: pd.DataFrame
    funnel: pd.DataFrame
    reference_date: pd.Timestamp
    rule: EligibilityRule = field(default_factory=EligibilityRule)

    def _repr_html_(self) -> str:
        heading = (
            f"<p><b>Screening on {self.reference_date:%Y-%m-%d}</b>: {len(self.eligible)} eligible "
            f"({self.rule.describe()})</p>"
        )
        return heading + self.funnel.to_html(index=False)

    def __repr__(self) -> str:
        return f"Screening({self.reference_date:%Y-%m-%d}: {len(self.eligible)} eligible)"


def age_on(dates_of_birth: pd.Series, reference_date) -> pd.Series:
    """Age in whole years on a reference date (a birthday on the date counts).

    ``reference_date`` may be one date or a Series of dates aligned with ``dates_of_birth``
    (each person's own date, such as their randomisation date).

    Examples
    --------
    >>> age_on(pd.Series(pd.to_datetime(["2012-02-01", "2012-02-02"])), "2023-02-01").tolist()
    [11, 10]
    """
    dob = pd.to_datetime(dates_of_birth)
    if isinstance(reference_date, pd.Series):
        reference = pd.to_datetime(reference_date)
        year, month, day = reference.dt.year, reference.dt.month, reference.dt.day
    else:
        reference = pd.Timestamp(reference_date)
        year, month, day = reference.year, reference.month, reference.day
    before_birthday = (dob.dt.month > month) | ((dob.dt.month == month) & (dob.dt.day > day))
    return (year - dob.dt.year - before_birthday.astype(int)).astype("int64")


def age_band(ages: pd.Series, rule: EligibilityRule = EligibilityRule()) -> pd.Series:
    """Label each age with the rule's age band (missing outside every band)."""
    labels = pd.Series(pd.NA, index=ages.index, dtype="str")
    for low, high, label in rule.age_bands:
        labels[(ages >= low) & (ages <= high)] = label
    return labels


def screen(
    records: Records,
    reference_date: date | str | pd.Timestamp,
    rule: EligibilityRule = EligibilityRule(),
    *,
    exclusions: pd.DataFrame | None = None,
    lookup: pd.DataFrame | None = None,
) -> Screening:
    """Apply an eligibility rule to records on a reference date.

    Parameters
    ----------
    records : fdkit.Records
    reference_date : date-like
        The screening date ``R`` (the trial's was 2023-02-01).
    rule : EligibilityRule, optional
        The trial's rule by default.
    exclusions : pandas.DataFrame, optional
        People to exclude even if eligible: ``person_id`` and ``reason`` (one of
        ``"already allocated"``, ``"in custody"``, ``"deceased"``, ``"other"``). People in
        it who are not eligible anyway are not counted as excluded.
    lookup : pandas.DataFrame, optional
        The offence lookup that classifies the events; the records' own
        (``records.lookup``), or else the kit's, by default.

    Returns
    -------
    Screening

    Examples
    --------
    >>> from fdkit import load_records, eligibility
    >>> result = eligibility.screen(load_records("synthetic"), "2023-02-01")  # doctest: +SKIP
    >>> result.funnel  # doctest: +SKIP
    """
    reference = pd.Timestamp(reference_date).normalize()
    persons = records.persons
    steps = [("records", "people in the records", len(persons), 0, "")]

    known = ~placeholder_births(persons["date_of_birth"])
    if not known.all():
        remaining = int(known.sum())
        steps.append(("birth", "date of birth on record", remaining, len(persons) - remaining, UNKNOWN_BIRTH))
    ages = age_on(persons["date_of_birth"], reference)
    in_range = known & (ages >= rule.min_age) & (ages <= rule.max_age)
    people = persons.loc[in_range, ["person_id", "sex", "date_of_birth"]].assign(age=ages[in_range])
    steps.append(
        _step(
            "age",
            f"aged {rule.min_age}-{rule.max_age} on the reference date",
            people,
            steps,
            f"younger than {rule.min_age} or older than {rule.max_age}",
        )
    )

    crimes = _crime_criteria(records.events, reference, rule, records.lookup if lookup is None else lookup)
    # crimes has only the people with an index crime, so an inner join is the index step.
    people = people[isin(people["person_id"], crimes["person_id"])].merge(crimes, on="person_id")
    steps.append(
        _step(
            "index",
            f"{_words(rule.index_offences)} offence as {rule.role}, past {rule.index_window_months} months",
            people,
            steps,
            f"no {_words(rule.index_offences)} offence as {rule.role} in the window",
        )
    )
    # A second, different crime exists exactly when both sets are non-empty and together
    # they hold at least two distinct crimes.
    people = people[(people["other_crimes"] >= 1) & (people["either_crimes"] >= 2)]
    steps.append(
        _step(
            "other",
            f"another {_words(rule.other_offences)} offence as {rule.role}, past {rule.other_window_months} months",
            people,
            steps,
            "no other qualifying crime in the window",
        )
    )

    if exclusions is not None:
        people, steps = _apply_exclusions(people, exclusions, steps)

    eligible = people.drop(columns="either_crimes").assign(age_band=lambda d: age_band(d["age"], rule))
    eligible = eligible[
        ["person_id", "sex", "date_of_birth", "age", "age_band", "index_crimes", "other_crimes", "last_index_date"]
    ].sort_values("person_id", ignore_index=True)
    funnel = pd.DataFrame(steps, columns=["step", "description", "remaining", "excluded", "reason"])
    return Screening(eligible=eligible, funnel=funnel, reference_date=reference, rule=rule)


def _words(flags: tuple[str, ...]) -> str:
    return "/".join({"knife_involved": "knife"}.get(f, f) for f in flags)


def _step(name, description, people, steps, reason):
    remaining = len(people)
    return (name, description, remaining, steps[-1][2] - remaining, reason)


def _crime_criteria(
    events: pd.DataFrame, reference: pd.Timestamp, rule: EligibilityRule, lookup: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Per person with at least one index crime: distinct crimes meeting the index criterion,
    the other criterion, and either, and the date of the last index crime."""
    index_from = add_months(reference, -rule.index_window_months)
    other_from = add_months(reference, -rule.other_window_months)
    dates = events["offence_date"]
    in_window = events["role"].eq(rule.role) & (dates >= min(index_from, other_from)) & (dates < reference)
    rows = np.flatnonzero(in_window.to_numpy(dtype=bool))
    window = events[["offence_date", "offence_code", "knife"]].iloc[rows]
    flags = _offence_flags(window, lookup)
    is_index = ((window["offence_date"] >= index_from) & flags[list(rule.index_offences)].any(axis=1)).to_numpy()
    is_other = ((window["offence_date"] >= other_from) & flags[list(rule.other_offences)].any(axis=1)).to_numpy()
    # Only rows meeting a criterion, of people with an index crime, can count. Narrowing to
    # them before touching the IDs and grouping is what keeps a force-sized screen fast.
    counts = is_index | is_other
    recent = (
        events[["person_id", "crime_id", "offence_date"]]
        .iloc[rows[counts]]
        .assign(is_index=is_index[counts], is_other=is_other[counts])
    )
    recent = recent[isin(recent["person_id"], recent.loc[recent["is_index"], "person_id"].unique())]
    # A crime recorded on several rows for one person (several codes, say) counts once, and
    # counts for a criterion if any of its rows does.
    per_crime = recent.groupby(["person_id", "crime_id"], sort=False).agg(
        is_index=("is_index", "any"),
        is_other=("is_other", "any"),
        index_date=("offence_date", "max"),
    )
    per_crime["index_date"] = per_crime["index_date"].where(per_crime["is_index"])
    per_crime["is_either"] = per_crime["is_index"] | per_crime["is_other"]
    per_person = per_crime.groupby(level="person_id", sort=False).agg(
        index_crimes=("is_index", "sum"),
        other_crimes=("is_other", "sum"),
        either_crimes=("is_either", "sum"),
        last_index_date=("index_date", "max"),
    )
    return per_person.reset_index().astype({"index_crimes": "int64", "other_crimes": "int64", "either_crimes": "int64"})


def _offence_flags(events: pd.DataFrame, lookup: pd.DataFrame | None = None) -> pd.DataFrame:
    """The offence flags a rule may name, one row per event (aligned with ``events``)."""
    codes, per_code = offences.classify_distinct(events, lookup)
    flags = {flag: per_code[flag].to_numpy(dtype=bool)[codes] for flag in OFFENCE_FLAGS}
    flags["knife_involved"] |= events["knife"].to_numpy(dtype=bool)
    return pd.DataFrame(flags, index=events.index)


def _apply_exclusions(people, exclusions, steps):
    unknown = set(exclusions["reason"]) - set(EXCLUSION_REASONS)
    if unknown:
        raise ValueError(
            f"exclusion reasons must be one of {', '.join(EXCLUSION_REASONS)}; "
            f"got {', '.join(map(quoted, sorted(map(str, unknown))[:10]))}"
        )
    if exclusions["person_id"].duplicated().any():
        repeated = exclusions.loc[exclusions["person_id"].duplicated(), "person_id"].tolist()
        raise ValueError(f"exclusions list some people more than once: {', '.join(map(quoted, repeated[:10]))}")
    reasons = exclusions.set_index("person_id")["reason"]
    for reason in EXCLUSION_REASONS:
        leaving = people["person_id"].map(reasons).eq(reason).fillna(False).to_numpy(dtype=bool)
        if leaving.any():
            people = people[~leaving]
            steps.append(_step("exclusion", f"excluded: {reason}", people, steps, reason))
    return people, steps


# --------------------------------------------------------------------------- files

ELIGIBLE_DATE_COLUMNS = ("date_of_birth", "last_index_date")


def write_eligible(screening: Screening, path, funnel_path=None, *, guard=None) -> None:
    """Write the eligible list (and optionally the funnel) as CSV with ISO dates.

    Each file is written atomically; a command checks the paths first with
    :class:`fdkit.files.OutputGuard` and passes it as ``guard``.
    """
    from . import files

    write = files.write_csv if guard is None else guard.write_csv
    table = screening.eligible.copy()
    for column in ELIGIBLE_DATE_COLUMNS:
        table[column] = table[column].dt.strftime("%Y-%m-%d")
    write(table, path)
    if funnel_path is not None:
        write(screening.funnel, funnel_path)


def read_eligible(path, *, strata: str | None = None) -> pd.DataFrame:
    """Read an eligible list written by :func:`write_eligible` (or by hand: ``person_id`` at least).

    Raises
    ------
    fdkit.FdkitDataError
        If ``person_id`` (or the ``strata`` column) is missing or blank, or an ID repeats.
    """
    from .records import FdkitDataError, at_file_lines, formula_problems, read_table

    path = Path(path)
    required = ("person_id",) if strata is None else ("person_id", strata)
    table = read_table(path, required=required, unique=("person_id",), not_blank=required)
    text_columns = [c for c in table.columns if c == "person_id" or c == strata or not _numeric(table[c])]
    if problems := formula_problems(table, text_columns, path.name):
        raise FdkitDataError(at_file_lines(problems, path.parent), source=path)
    return table


def _numeric(values: pd.Series) -> bool:
    """True if every value is a number (a negative number is not a formula)."""
    return bool(pd.to_numeric(values.replace("", "0"), errors="coerce").notna().all())
