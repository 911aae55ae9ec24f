"""The synthetic trial that ships with the kit: screened, randomised, engaged and followed up.

The default scenario's ``[trial]`` table describes a trial run the way Milton Keynes ran
theirs: screen on the reference date with the trial's rule, randomise with fixed treated
places per age band, follow everyone up for 12 months. Two things are then made true in the
synthetic world, so that the analysis notebooks have a known answer to find:

**Engagement.** Each treated person engages with their case worker with a chance set per
age band (under-18s more often than adults, as the trial reported). Control people are
never offered the intervention; ``engagement.csv`` lists the treated arm only.

**True effects.** Only people who engage are affected. Their events in the follow-up year
are thinned with the rate multipliers of their age band (see :class:`fdkit.synth.Effects`),
which are chosen so that the *expected* intention-to-treat reductions come close to the
published ones. :func:`expected_reductions` computes those expectations exactly from the
cohort's untreated outcomes, the engagement chances and the multipliers; they are written to
``trial_truth.csv`` beside the published figures. What any one trial estimates differs from
them by chance; that gap is what the significance-testing notebooks are about.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from . import eligibility, outcomes, randomise
from .eligibility import Screening
from .plan import Plan
from .randomise import Allocation
from .records import Records
from .synth import Effects, Scenario, ScenarioError, follow_up, keep_chances

__all__ = [
    "SyntheticTrial",
    "TrialDesign",
    "draw_engagement",
    "expected_reductions",
    "run_trial",
]


@dataclass(frozen=True)
class TrialDesign:
    """The shipped trial's design and its true effects, from a scenario's ``[trial]`` table."""

    reference_date: date
    seed: int
    strata: str
    capacities: Mapping[str, int]
    follow_up_months: int
    engagement: Mapping[str, float]
    effects: Mapping[str, Effects]

    @classmethod
    def from_scenario(cls, scenario: Scenario) -> TrialDesign:
        """Read the design from ``scenario.trial``."""
        table = scenario.trial
        if table is None:
            raise ScenarioError(f"{scenario.source or scenario.name}: the scenario has no [trial] table")
        try:
            effects = {stratum: Effects(**spec) for stratum, spec in table["effects"].items()}
            design = cls(
                reference_date=table["reference_date"],
                seed=int(table["seed"]),
                strata=table["strata"],
                capacities=dict(table["capacities"]),
                follow_up_months=int(table["follow_up_months"]),
                engagement=dict(table["engagement"]),
                effects=effects,
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ScenarioError(
                f"{scenario.source or scenario.name}: [trial] is incomplete or wrong ({error})"
            ) from None
        strata = set(design.capacities)
        if set(design.engagement) != strata or set(design.effects) != strata:
            raise ScenarioError(
                f"{scenario.source or scenario.name}: [trial] capacities, engagement and "
                "effects must name the same strata"
            )
        return design

    @property
    def sealed_at(self) -> str:
        """The seal's timestamp: midnight on the reference date, so the files reproduce."""
        return f"{self.reference_date.isoformat()}T00:00:00+00:00"

    def statements(self, scenario: Scenario) -> dict[str, str]:
        """What can truly be said, for the CONSORT items only a unit can answer, about a trial that never ran.

        Written beside the shipped allocation as ``report.toml`` (:mod:`fdkit.checklist`); the
        items with nothing true to say (concealment, blinding, ...) are left out, and the report
        says they are not available.
        """
        return {
            "registration": "Not registered: this is the kit's synthetic trial, made for teaching; no trial was run.",
            "data_sharing": (
                "Everything ships with fdkit under the MIT licence: the synthetic records and their data dictionary, "
                "the allocation with its seal and analysis plan, and the code that made and analysed them "
                "(fdkit synth rewrites the folder byte for byte)."
            ),
            "funding": "None: no trial was run; fdkit's simulator generated the records.",
            "conflicts_of_interest": "None: the records are synthetic and describe no one.",
            "public_involvement": (
                "None: the records are synthetic. A real replication should involve young people, families and "
                "practitioners in its design and in reading its results."
            ),
            "setting": f"A synthetic town ({scenario.description}).",
            "interim_analyses": "None: the outcomes were analysed once, after every person's follow-up.",
            "trial_end": (
                f"It ended as planned: every person was followed for {self.follow_up_months} months from "
                "randomisation, and the synthetic records cover that time."
            ),
        }

    def plan(self) -> Plan:
        """The analysis plan sealed with the shipped allocation: the trial's outcomes, analysed as the kit does.

        The kit's defaults (:class:`fdkit.plan.Plan`), with the design's follow-up and its strata
        as the pre-specified subgroups.
        """
        return Plan(
            trial="The kit's synthetic Milton Keynes trial (synthetic records, for teaching)",
            follow_up_months=self.follow_up_months,
            subgroups=tuple(sorted(self.capacities)),
        )


@dataclass(frozen=True)
class SyntheticTrial:
    """What :func:`run_trial` returns.

    Attributes
    ----------
    records : fdkit.Records
        The records with the true effects applied and the engagement table.
    untreated : fdkit.Records
        The same records without any effect: every treated person's outcome had they been
        in the control group.
    screening : fdkit.eligibility.Screening
    allocation : fdkit.randomise.Allocation
    truth : pandas.DataFrame
        Expected reductions by outcome and subgroup, beside the published ones.
    design : TrialDesign
    """

    records: Records
    untreated: Records
    screening: Screening
    allocation: Allocation
    truth: pd.DataFrame
    design: TrialDesign


def run_trial(records: Records, design: TrialDesign) -> SyntheticTrial:
    """Screen, randomise, draw engagement and apply the true effects.

    Parameters
    ----------
    records : fdkit.Records
        Untreated synthetic records covering the follow-up year.
    design : TrialDesign

    Returns
    -------
    SyntheticTrial
    """
    screening = eligibility.screen(records, design.reference_date)
    allocation = randomise.allocate(
        screening.eligible,
        seed=design.seed,
        randomised_on=design.reference_date,
        strata=design.strata,
        capacities=design.capacities,
        sealed_at=design.sealed_at,
    )
    engagement = draw_engagement(allocation, design)
    engaged = engagement.loc[engagement["engaged"], "person_id"]
    treated = records
    for number, (stratum, effects) in enumerate(sorted(design.effects.items())):
        people = allocation.table[
            allocation.table["person_id"].isin(engaged) & (allocation.table["stratum"] == stratum)
        ]
        starts = pd.DataFrame({"person_id": people["person_id"], "start_date": people["randomised_on"]})
        seed = int(np.random.SeedSequence([design.seed, 2, number]).generate_state(1)[0])
        treated = follow_up(treated, starts, effects, months=design.follow_up_months, seed=seed).records
    return SyntheticTrial(
        records=dataclasses.replace(treated, engagement=engagement),
        untreated=records,
        screening=screening,
        allocation=allocation,
        truth=expected_reductions(records, allocation, design),
        design=design,
    )


def draw_engagement(allocation: Allocation, design: TrialDesign) -> pd.DataFrame:
    """Whether each treated person engages: a draw per person at their stratum's rate.

    Returns
    -------
    pandas.DataFrame
        ``person_id`` and ``engaged`` for the treated arm, sorted by ``person_id``.
    """
    treated = allocation.table[allocation.table["arm"] == "treatment"].sort_values("person_id")
    chance = treated["stratum"].map(design.engagement).to_numpy(dtype=float)
    draws = np.random.default_rng(np.random.SeedSequence([design.seed, 1])).random(len(treated))
    return pd.DataFrame({"person_id": treated["person_id"].to_numpy(), "engaged": draws < chance}).astype(
        {"person_id": "str"}
    )


def expected_reductions(records: Records, allocation: Allocation, design: TrialDesign) -> pd.DataFrame:
    """The intention-to-treat reductions the design's true effects should produce, on average.

    For every randomised person (either arm) and every untreated event in their follow-up
    window, the expected share that would survive being offered treatment is
    ``engagement * keep + (1 - engagement)``. The expected reduction of an outcome is one
    minus the surviving share of its total (harm or count) across the cohort: the ratio of
    means a trial estimates, before chance.

    Returns
    -------
    pandas.DataFrame
        ``outcome``, ``subgroup`` (``all`` and each stratum), ``expected_reduction`` and
        ``published_reduction`` (percent; missing where nothing was published).
    """
    people = allocation.table
    events = records.events[records.events["person_id"].isin(people["person_id"])]
    parts = []
    for stratum, effects in design.effects.items():
        members = people[people["stratum"] == stratum]
        starts = pd.DataFrame({"person_id": members["person_id"], "start_date": members["randomised_on"]})
        chances = keep_chances(events, starts, effects, design.follow_up_months)
        rate = design.engagement[stratum]
        parts.append(chances.assign(keep=rate * chances["keep"] + (1 - rate), stratum=stratum))
    chances = pd.concat(parts, ignore_index=True)
    in_window = events.merge(chances, on=["crime_id", "person_id"], how="inner")
    values = outcomes.event_values(in_window)
    rows = []
    for subgroup in ("all", *sorted(design.effects)):
        chosen = np.ones(len(in_window), bool) if subgroup == "all" else (in_window["stratum"] == subgroup).to_numpy()
        for outcome in outcomes.OUTCOMES:
            total = values.loc[chosen, outcome.name].sum()
            kept = (values.loc[chosen, outcome.name] * in_window.loc[chosen, "keep"]).sum()
            published = (
                outcome.published_reduction
                if subgroup == "all"
                else (outcomes.PUBLISHED_UNDER_18.get(outcome.name) if subgroup == "11-17" else None)
            )
            rows.append(
                {
                    "outcome": outcome.name,
                    "subgroup": subgroup,
                    "expected_reduction": round(100 * (1 - kept / total), 1) if total else np.nan,
                    "published_reduction": published,
                }
            )
    return pd.DataFrame(rows)
