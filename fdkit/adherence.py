"""Following a sealed analysis plan: what runs, what departs from it, and which results a departure touches.

Given an allocation sealed with a plan (:func:`fdkit.randomise.sealed_plan`), ``fdkit analyse``
and ``fdkit report`` run exactly that plan and need no analysis options. An option that asks for
something else (another follow-up, another seed, other harm weights ...) is a **departure**:

- without a reason it is refused (:class:`PlanDeparted`: a usage error, exit 2) with a message
  naming the plan field it departs from;
- with ``--deviate "reason"`` it runs, and every result it touches is labelled
  **not pre-specified** (:meth:`Following.label`), in ``results.csv``, the command's summary
  and the report, whose "Changes to the plan" section lists each departure with its reason.

A table the plan pins that has changed since it was sealed (the plan's weights file edited, the
records folder carrying another offence lookup) is a data problem, not an option: it stops
the analysis (:class:`fdkit.FdkitDataError`, exit 1) unless the same ``--deviate`` accepts it.

An allocation sealed without a plan works as before: :func:`unplanned` gives the analysis the
kit has always run, from the options given and the kit's defaults, and nothing is labelled.

:class:`Analysis` is what actually runs (the plan with any departures applied) and
:func:`results` runs it: :func:`fdkit.analysis.results_table` over the plan's outcomes, methods
and subgroups, with the multiplicity adjustment over the plan's family.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import analysis, harm, offences
from . import outcomes as outcome_definitions
from .plan import Plan
from .randomise import SealedPlan
from .records import FdkitDataError, Problem

__all__ = [
    "Analysis",
    "Departure",
    "Following",
    "NOT_PRE_SPECIFIED",
    "PRE_SPECIFIED",
    "PlanDeparted",
    "follow",
    "planned_lookup",
    "planned_weights",
    "results",
    "table_departures",
    "unplanned",
]

PRE_SPECIFIED = "pre-specified"
NOT_PRE_SPECIFIED = "not pre-specified"

#: Fields whose departure touches every result (they change every outcome, or every p-value).
_EVERY_RESULT = {
    "follow_up_months",
    "baseline_months",
    "day_rule",
    "offence_lookup_sha256",
    "alpha",
    "multiplicity_family",
    "multiplicity_adjustment",
}
#: Fields that touch no result: they are facts about the trial, reported in the report's text.
_NO_RESULT = {"plan_format", "trial", "registration_id", "protocol_url", "harm_weights", "offence_lookup"}


@dataclass(frozen=True)
class Analysis:
    """The analysis that runs: a plan's choices (or, without a plan, the kit's defaults and the options).

    Unlike :class:`fdkit.plan.Plan` it is not checked as a whole: a departure may leave it
    in a state no plan would be written in (a primary method run as the only method, say).
    """

    outcomes: tuple[str, ...]
    methods: tuple[str, ...]
    follow_up_months: int
    baseline_months: int
    seed: int
    permutations: int
    resamples: int
    interval: str = "randomisation"
    alpha: float = 0.05
    subgroups: tuple[str, ...] | None = None  # None: every stratum with people in both arms
    family: tuple[str, ...] | None = None  # None: every outcome but those that re-measure another
    adjustment: str = "holm"
    cace: bool = True

    @classmethod
    def of(cls, plan: Plan) -> Analysis:
        """What a plan asks to run."""
        return cls(
            outcomes=plan.outcomes,
            methods=plan.methods,
            follow_up_months=plan.follow_up_months,
            baseline_months=plan.baseline_months,
            seed=plan.seed,
            permutations=plan.permutations,
            resamples=plan.resamples,
            interval=plan.interval,
            alpha=plan.alpha,
            subgroups=plan.subgroups,
            family=plan.multiplicity_family,
            adjustment=plan.multiplicity_adjustment,
            cace=plan.cace,
        )

    @property
    def primary(self) -> str:
        return self.outcomes[0]


@dataclass(frozen=True)
class Departure:
    """One choice that departs from the sealed plan.

    Attributes
    ----------
    field : str
        The plan field departed from.
    planned, used
        The plan's value and the one used.
    option : str
        What asked for it: a command-line option (``--follow-up-months``) or an input in words.
    """

    field: str
    planned: Any
    used: Any
    option: str

    def __str__(self) -> str:
        return f"{self.option} asks for {self.field} = {_shown(self.used)}, but the plan's is {_shown(self.planned)}"


def _shown(value) -> str:
    if isinstance(value, tuple | list):
        text = ",".join(map(str, value)) or "none"
    else:
        text = str(value)
    return text if len(text) <= 60 else text[:59] + "…"


class PlanDeparted(Exception):
    """Options depart from the sealed plan and no reason was given: a usage error (exit 2)."""

    def __init__(self, departures: tuple[Departure, ...], sealed: SealedPlan | None):
        self.departures = departures
        where = f" ({sealed})" if sealed is not None else ""
        super().__init__(
            "; ".join(map(str, departures))
            + f'{where}. Leave the option out to follow the plan, or give --deviate "reason" to run it anyway: '
            f"every result it changes is then labelled {NOT_PRE_SPECIFIED}"
        )


@dataclass(frozen=True)
class Following:
    """An analysis and how it stands to the sealed plan.

    Attributes
    ----------
    analysis : Analysis
        What runs.
    sealed : SealedPlan or None
        The plan sealed with the allocation (None: the allocation was sealed without one).
    departures : tuple of Departure
    reason : str
        Why the analysis departs from the plan (``--deviate``), when it does.
    """

    analysis: Analysis
    sealed: SealedPlan | None = None
    departures: tuple[Departure, ...] = ()
    reason: str = ""

    @property
    def planned(self) -> bool:
        """An allocation sealed with a plan."""
        return self.sealed is not None

    def label(self, table: pd.DataFrame) -> pd.DataFrame:
        """``table`` with columns ``plan`` (pre-specified or not) and ``departs_from`` (the fields).

        A table of an allocation without a plan is returned as it is. A row is not
        pre-specified when any departure touches it (see the module docstring).
        """
        if self.sealed is None:
            return table
        hits = [(d.field, _touched(d, self.sealed.plan, self.analysis, table)) for d in self.departures]
        fields = ["; ".join(dict.fromkeys(name for name, hit in hits if hit[row])) for row in range(len(table))]
        status = [NOT_PRE_SPECIFIED if named else PRE_SPECIFIED for named in fields]
        return table.assign(plan=status, departs_from=fields)


def _uses(method: str, parameter: str) -> bool:
    """Whether a method's result depends on ``parameter`` (``seed`` or ``permutations``)."""
    if method in analysis.REGISTRY:
        return parameter in inspect.signature(analysis.REGISTRY[method].run).parameters
    return True  # the CACE and the interaction tests re-draw the design


def _touched(departure: Departure, plan: Plan, run: Analysis, table: pd.DataFrame) -> np.ndarray:
    """Which rows of a results table a departure changes (``run``: the analysis as it ran)."""
    rows = len(table)
    name = departure.field
    outcome = table["outcome"] if "outcome" in table else pd.Series([""] * rows, index=table.index)
    method = table["method"].astype(str) if "method" in table else pd.Series([""] * rows, index=table.index)
    if name in _EVERY_RESULT:
        return np.ones(rows, dtype=bool)
    if name in _NO_RESULT:
        return np.zeros(rows, dtype=bool)
    if name == "harm_weights_sha256":
        return outcome.map(lambda o: o in set(outcome_definitions.OUTCOME_NAMES) and _is_harm(o)).to_numpy(bool)
    if name == "primary_outcome":
        return outcome.isin([departure.planned, departure.used]).to_numpy()
    if name == "secondary_outcomes":
        return (~outcome.isin(plan.outcomes)).to_numpy()
    if name in ("primary_method", "sensitivity_methods"):
        return (method.isin(analysis.REGISTRY) & ~method.isin(plan.methods)).to_numpy()
    if name == "interval":
        return (method == plan.primary_method).to_numpy()
    if name == "resamples":  # only the bootstrap interval resamples
        return ((method == plan.primary_method) & (run.interval == "bootstrap")).to_numpy()
    if name in ("seed", "permutations"):
        return method.map(lambda m: _uses(m, name) if m else True).to_numpy(bool)
    if name == "subgroups":
        if "subgroup" not in table:
            return np.zeros(rows, dtype=bool)
        return (~table["subgroup"].isin(["all", *plan.subgroups])).to_numpy()
    if name == "cace":
        return (method == "cace").to_numpy()
    raise ValueError(f"no rule for which results a departure from {name!r} touches")


def _is_harm(outcome: str) -> bool:
    return outcome_definitions.get(outcome).measure == "harm"


# ------------------------------------------------------------------------ following


#: What each option of ``fdkit analyse`` and ``fdkit report`` sets in the plan.
OPTION_FIELDS = {
    "primary_outcome": "--primary",
    "follow_up_months": "--follow-up-months",
    "seed": "--seed",
    "permutations": "--permutations",
    "resamples": "--resamples",
    "interval": "--interval",
    "methods": "--methods",
    "registration_id": "--registration",
}


def follow(sealed: SealedPlan, given: Mapping[str, Any], *, reason: str = "", extra=()) -> Following:
    """The analysis a sealed plan asks for, with the options given, or :class:`PlanDeparted`.

    Parameters
    ----------
    sealed : SealedPlan
    given : mapping
        Option values by plan field (``primary_outcome``, ``follow_up_months``, ``seed``,
        ``permutations``, ``resamples``, ``interval``, ``registration_id``) or ``methods``;
        None (or absent) where the option was not given. A value equal to the plan's is not
        a departure.
    reason : str
        ``--deviate``: run the departures anyway, and label them.
    extra : iterable of Departure
        Departures found elsewhere (the tables: :func:`table_departures`).

    Raises
    ------
    PlanDeparted
        If anything departs from the plan and ``reason`` is empty.
    """
    plan = sealed.plan
    run = Analysis.of(plan)
    departures = list(extra)
    changes: dict[str, Any] = {}
    for name, value in given.items():
        if value is None:
            continue
        if name == "methods":
            methods = tuple(value)
            if methods != plan.methods:
                if plan.primary_method not in methods:
                    departures.append(Departure("primary_method", plan.primary_method, "none", OPTION_FIELDS[name]))
                others = tuple(m for m in methods if m != plan.primary_method)
                if others != plan.sensitivity_methods:
                    departures.append(
                        Departure("sensitivity_methods", plan.sensitivity_methods, others, OPTION_FIELDS[name])
                    )
                changes["methods"] = methods
            continue
        if name == "registration_id":
            if plan.registration_id and value and value != plan.registration_id:
                departures.append(Departure(name, plan.registration_id, value, OPTION_FIELDS[name]))
            continue
        planned = getattr(plan, name)
        if value != planned:
            departures.append(Departure(name, planned, value, OPTION_FIELDS.get(name, name)))
            if name == "primary_outcome":  # the planned primary becomes a secondary outcome
                changes["outcomes"] = (value, *(o for o in plan.outcomes if o != value))
            else:
                changes[name] = value
    if departures and not reason.strip():
        raise PlanDeparted(tuple(departures), sealed)
    run = Analysis(**{**run.__dict__, **changes})
    return Following(run, sealed, tuple(departures), reason.strip() if departures else "")


def unplanned(given: Mapping[str, Any], defaults: Mapping[str, Any]) -> Following:
    """The analysis of an allocation sealed without a plan: the options given, else ``defaults``.

    ``defaults`` gives every :class:`Analysis` field the command uses when an option is left
    out (``fdkit analyse`` and ``fdkit report`` have always had their own).
    """
    values = {**defaults, **{k: v for k, v in given.items() if v is not None and k in Analysis.__dataclass_fields__}}
    if given.get("primary_outcome"):
        primary = given["primary_outcome"]
        values["outcomes"] = (primary, *(o for o in values["outcomes"] if o != primary))
    return Following(Analysis(**values))


# -------------------------------------------------------------------------- the tables


def planned_weights(sealed: SealedPlan | None, folder: Path, given: Path | None) -> pd.DataFrame | None:
    """The harm weights an analysis uses: ``given``, else the plan's file beside the allocation, else the kit's.

    Raises
    ------
    fdkit.FdkitDataError
        If the plan names a weights file that is not in ``folder`` (the message says to give it
        with ``--harm-weights``, where it is checked by fingerprint).
    """
    if given is not None:
        return harm.read_weights(given)
    if sealed is None or not sealed.plan.harm_weights:
        return None
    return harm.read_weights(_beside(sealed.plan.harm_weights, "harm_weights", "--harm-weights", folder))


def planned_lookup(sealed: SealedPlan | None, folder: Path, given: Path | None) -> pd.DataFrame | None:
    """The offence lookup to load the records with: ``given``, else the plan's file, else None (the default)."""
    if given is not None:
        return offences.read_lookup(given)
    if sealed is None or not sealed.plan.offence_lookup:
        return None
    return offences.read_lookup(_beside(sealed.plan.offence_lookup, "offence_lookup", "--lookup", folder))


def _beside(name: str, field: str, option: str, folder: Path) -> Path:
    path = folder / name
    if not path.is_file():
        message = (
            f"{field}: the sealed plan's file {name} is not beside the allocation in {folder}; put it there, or give "
            f"it with {option} FILE (it is checked against the plan's fingerprint)"
        )
        raise FdkitDataError([Problem(name, message)], source=path)
    return path


def table_departures(
    sealed: SealedPlan,
    *,
    weights: pd.DataFrame | None,
    weights_given: Path | None,
    lookup: pd.DataFrame | None,
    lookup_given: Path | None,
    reason: str = "",
) -> tuple[Departure, ...]:
    """How the weights and lookup in use differ from the ones the plan pins, by fingerprint.

    A table given by option that differs is a departure (refused without a reason by
    :func:`follow`). A table that changed on its own (the plan's file edited, the kit's table
    revised, the records folder's own lookup) is a data problem unless ``reason`` accepts it.

    Raises
    ------
    fdkit.FdkitDataError
        For a table that changed on its own, without ``reason``.
    """
    plan = sealed.plan
    found = []
    problems = []
    for field, table, given, fingerprint, kit, named in (
        ("harm_weights_sha256", weights, weights_given, harm.weights_sha256, "the kit's illustrative weights",
         plan.harm_weights),
        ("offence_lookup_sha256", lookup, lookup_given, offences.lookup_sha256, "the kit's offence lookup",
         plan.offence_lookup),
    ):  # fmt: skip
        used = fingerprint(table)  # None: the kit's own
        planned = getattr(plan, field)
        if used == planned:
            continue
        option = "--harm-weights" if field.startswith("harm") else "--lookup"
        if given is not None:
            found.append(Departure(field, planned[:16], used[:16], f"{option} {given.name} (SHA-256)"))
            continue
        source = named or ("the records folder's own offences.csv" if table is not None else kit)
        found.append(Departure(field, planned[:16], used[:16], f"{source} (SHA-256)"))
        problems.append(
            Problem(
                named or None,
                f"{field.removesuffix('_sha256')}: {source} has changed since the plan was sealed (SHA-256 "
                f'{used[:16]}, the plan pins {planned[:16]}); restore it, or give --deviate "reason" to analyse '
                f"with it, labelled {NOT_PRE_SPECIFIED}",
            )
        )
    if problems and not reason.strip():
        raise FdkitDataError(problems)
    return tuple(found)


# --------------------------------------------------------------------------- running


def results(frame: pd.DataFrame, run: Analysis) -> pd.DataFrame:
    """Every outcome, subgroup and method the analysis asks for, with the plan's multiplicity adjustment.

    Subgroups the analysis names but whose people are all in one arm are left out (the caller
    says so); a subgroup no one is in is an error (:class:`fdkit.FdkitDataError`). The Holm and
    Benjamini-Hochberg p-values are computed over the analysis's family, per method and subgroup;
    outcomes outside the family have none.
    """
    strata = frame.groupby("stratum")["arm"].nunique()
    two_armed = sorted(strata.index[strata == 2])
    if run.subgroups is not None and (absent := [s for s in run.subgroups if s not in strata.index]):
        message = (
            f"subgroups: the plan names {', '.join(map(repr, absent))}, which no one randomised is in "
            f"(the strata are {', '.join(map(str, strata.index))})"
        )
        raise FdkitDataError([Problem("analysis plan", message)])
    subgroups = two_armed if run.subgroups is None else [s for s in run.subgroups if s in two_armed]
    outcomes = tuple(o for o in run.outcomes if o in frame)
    table = analysis.results_table(
        frame,
        outcomes=outcomes,
        methods=run.methods,
        subgroups=("all", *subgroups),
        seed=run.seed,
        resamples=run.resamples,
        permutations=run.permutations,
        alpha=run.alpha,
        interval=run.interval,
    )
    return table if run.family is None else analysis.adjust_p_values(table, family=run.family)
