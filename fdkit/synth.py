"""Synthetic police records with the statistical texture of the real thing.

Real police records cannot ship with a teaching kit, so the kit makes its own. The
generator simulates a town's young people month by month and writes down the crimes the
police would record for them, following a handful of well-documented regularities:

* **An age-crime curve.** Offending starts at the age of criminal responsibility (10), peaks
  in the late teens and declines; victimisation peaks a little later.
* **Persistent individual differences.** Each person has an offending propensity drawn from a
  log-normal distribution with a wide spread, so a small minority commits most crimes (the
  "power few"). Men offend more than women.
* **Temporary bursts.** People drift in and out of short spells of heavy offending (a
  two-state Markov chain). Anyone selected for recent high offending is likely to be in a
  burst, and bursts end: selected groups fall back afterwards even when nothing is done
  to them. This is regression to the mean, the trap a randomised control group guards against.
* **Victim-offender overlap.** Victimisation propensity is correlated with offending
  propensity, bursts raise both, and some fights record the suspect as a victim as well.
* **Knife involvement and specialisation.** Each person has a share of their crimes that is
  violent and a chance that a violent crime of theirs involves a knife; both rise with
  propensity.
* **Police-initiated detections.** Possession, drugs and public order offences are mostly
  found by proactive policing; crimes with victims rarely are.

Every number lives in a scenario file (TOML); the kit's default is
``fdkit/data/scenarios/milton_keynes.toml``, copied beside the records it generates.

:func:`follow_up` is the hook later stages use to give a treated group true effects: it
thins each treated person's events in their follow-up window with the chosen rate
multipliers, which is exactly a lower-rate Poisson process for the same person. Their
untreated events stay as they were, so every person's outcome under control is known.

Generation is vectorised over people and deterministic from one seed: independent random
streams (population, traits, months, crimes, names) are spawned from it, so the same seed
always gives the same records.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import offences
from ._dates import add_months
from ._text import PATH_ECHOED, quoted, shorten
from .records import Records, write_records

__all__ = [
    "BurstModel",
    "DICTIONARY_FILE",
    "Effects",
    "FollowUp",
    "MANIFEST_FILE",
    "OffendingModel",
    "SCENARIO_FILE",
    "Scenario",
    "ScenarioError",
    "SyntheticRecords",
    "VictimisationModel",
    "WrittenFolder",
    "follow_up",
    "generate",
    "keep_chances",
    "load_scenario",
    "read_manifest",
    "site_scenario",
    "write_synthetic",
]

SCENARIO_FILE = "scenario.toml"
MANIFEST_FILE = "manifest.json"
DICTIONARY_FILE = "data_dictionary.csv"
DEFAULT_SCENARIO = "milton_keynes"

_DAYS_PER_YEAR = 365.25


class ScenarioError(ValueError):
    """A scenario file is malformed; the message names the file and the key."""


# --------------------------------------------------------------------------- scenario


@dataclass(frozen=True)
class OffendingModel:
    """How often, and what, people offend. See the default scenario for each field's meaning."""

    annual_rate: float
    spread: float
    female_multiplier: float
    min_age: float
    age_peak: float
    age_spread: float
    violent_share: float
    violent_share_spread: float
    violent_share_tilt: float
    knife: float
    knife_spread: float
    knife_tilt: float
    mutual_fight_share: float


@dataclass(frozen=True)
class BurstModel:
    """Temporary spells of heavy offending: onset chance a month, mean length, multipliers."""

    monthly_onset: float
    mean_months: float
    offending_multiplier: float
    victim_multiplier: float


@dataclass(frozen=True)
class VictimisationModel:
    """How often people are recorded as victims, and how that relates to their offending."""

    annual_rate: float
    spread: float
    correlation: float
    age_peak: float
    age_spread: float
    knife_link: float


@dataclass(frozen=True)
class Scenario:
    """Everything the generator needs, read from a scenario TOML file.

    Use :func:`load_scenario` to read one; ``text`` keeps the file's exact text so that it
    can be written beside the records it produced.
    """

    name: str
    description: str
    seed: int
    start: date
    end: date
    population: int
    born_from: date
    born_to: date
    sex: Mapping[str, float]
    districts: Mapping[str, float]
    offending: OffendingModel
    bursts: BurstModel
    victimisation: VictimisationModel
    suspect_mix: Mapping[str, Mapping[str, float]]
    victim_mix: Mapping[str, float]
    knife_factor: Mapping[str, float]
    police_initiated: Mapping[str, float]
    codes: Mapping[str, Mapping[str, float]]
    trial: Mapping | None = None  # the shipped trial's design; read by fdkit.synth_trial
    text: str = field(default="", repr=False, compare=False)
    source: str = field(default="", repr=False, compare=False)

    def replace(self, **changes) -> Scenario:
        """Return a copy with some fields changed (for sensitivity runs in notebooks)."""
        return dataclasses.replace(self, **changes)


def load_scenario(path: str | Path | None = None) -> Scenario:
    """Read a scenario from a TOML file, or one of the kit's scenarios by name.

    Parameters
    ----------
    path : str or pathlib.Path, optional
        A TOML file, or the name of a packaged scenario (``"milton_keynes"``, the default,
        or ``"force"``, a force-sized population for benchmarks). A scenario may start with
        ``extends = "NAME"`` (a packaged name or a path) and change only what differs.

    Returns
    -------
    Scenario

    Raises
    ------
    ScenarioError
        If the file is missing, is not valid TOML, lacks a key, has an unknown key, or names
        an offence group or code that the offence lookup does not know.
    """
    text, where, table = _read_scenario_table(DEFAULT_SCENARIO if path is None else path)
    scenario = _build(Scenario, table, where)
    _check_scenario(scenario, where)
    return dataclasses.replace(scenario, text=text, source=where)


def _read_scenario_table(path: str | Path) -> tuple[str, str, dict]:
    """Read a scenario's TOML, merged over the scenario it ``extends`` (if it names one)."""
    if isinstance(path, str) and "/" not in path and not path.endswith(".toml"):
        source = resources.files("fdkit").joinpath(f"data/scenarios/{path}.toml")
        if not source.is_file():
            raise ScenarioError(f"no packaged scenario called {quoted(path)}")
        text, where = source.read_text(encoding="utf-8"), f"packaged scenario {quoted(path)}"
    else:
        path = Path(path)
        if not path.is_file():
            raise ScenarioError(f"scenario file {quoted(path, PATH_ECHOED)} does not exist")
        text, where = path.read_text(encoding="utf-8"), shorten(path, PATH_ECHOED)
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ScenarioError(f"{where}: not valid TOML ({shorten(error, 200)})") from None
    if "extends" in table:
        _, _, base = _read_scenario_table(table.pop("extends"))
        table = _merge(base, table)
    return text, where, table


def _merge(base: dict, override: dict) -> dict:
    merged = dict(base)
    for key, value in override.items():
        merged[key] = _merge(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return merged


def _build(cls, table: Mapping, where: str):
    """Construct a scenario dataclass from a TOML table, naming any missing or unknown key."""
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name not in ("text", "source")}
    optional = {name for name, f in fields.items() if f.default is not dataclasses.MISSING}
    unknown = sorted(set(table) - set(fields))
    missing = sorted(set(fields) - set(table) - optional)
    if unknown or missing:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing)}")
        if unknown:
            parts.append(f"unknown {', '.join(map(shorten, unknown[:10]))}")
        raise ScenarioError(f"{where}: [{cls.__name__}] {'; '.join(parts)}")
    values = {}
    for name in fields.keys() & table.keys():
        value = table[name]
        nested = {"offending": OffendingModel, "bursts": BurstModel, "victimisation": VictimisationModel}
        if name in nested:
            value = _build(nested[name], value, f"{where} [{name}]")
        values[name] = value
    return cls(**values)


def _check_scenario(scenario: Scenario, where: str) -> None:
    table = offences.lookup()
    known_groups, known_codes = set(table["group"]), set(table["offence_code"])
    groups_named = (
        set(scenario.suspect_mix.get("violent", {}))
        | set(scenario.suspect_mix.get("other", {}))
        | set(scenario.victim_mix)
        | set(scenario.knife_factor)
        | set(scenario.police_initiated)
        | set(scenario.codes)
    )
    problems = []
    if set(scenario.suspect_mix) != {"violent", "other"}:
        problems.append("suspect_mix must have exactly the tables 'violent' and 'other'")
    if unknown := sorted(groups_named - known_groups):
        problems.append(f"offence groups not in the lookup: {', '.join(map(quoted, unknown[:10]))}")
    drawn = set(scenario.suspect_mix.get("violent", {})) | set(scenario.suspect_mix.get("other", {}))
    if without := sorted((drawn | set(scenario.victim_mix)) - set(scenario.codes)):
        problems.append(f"groups with no [codes] table: {', '.join(map(quoted, without[:10]))}")
    for group, weights in scenario.codes.items():
        if unknown := sorted(set(weights) - known_codes):
            problems.append(f"codes for {quoted(group)} not in the lookup: {', '.join(map(quoted, unknown[:10]))}")
        wrong = table.loc[table["offence_code"].isin(list(weights)) & (table["group"] != group)]
        if len(wrong):
            problems.append(
                f"codes listed under {quoted(group)} belong to other groups: "
                + ", ".join(map(quoted, wrong["offence_code"][:10]))
            )
    for when in ("start", "end"):
        if getattr(scenario, when).day != 1:
            problems.append(f"{when} must be the first day of a month")
    if scenario.end <= scenario.start:
        problems.append("end must be after start")
    if scenario.born_to > scenario.start:
        problems.append("born_to must not be after start (everyone is born before the records begin)")
    if set(scenario.sex) - {"F", "M", "X"}:
        problems.append("sex shares may only name F, M and X")
    if problems:
        raise ScenarioError(f"{where}: " + "; ".join(problems))


# ------------------------------------------------------------------------- generation


@dataclass(frozen=True)
class SyntheticRecords:
    """What :func:`generate` returns.

    Attributes
    ----------
    records : fdkit.Records
        The police records: everyone with at least one event, and their events.
    latent : pandas.DataFrame
        The hidden truth behind each recorded person (propensities, months spent in a
        burst), for teaching; never part of a records folder.
    bursts : pandas.DataFrame
        Every burst spell of a recorded person: ``person_id``, ``start`` (first day of its
        first month) and ``end`` (first day after it).
    scenario : Scenario
    seed : int
    population : int
        How many people were simulated, including those the police never recorded.
    """

    records: Records
    latent: pd.DataFrame
    bursts: pd.DataFrame
    scenario: Scenario
    seed: int
    population: int


def generate(scenario: Scenario | None = None, seed: int | None = None) -> SyntheticRecords:
    """Simulate a population and the police records it leaves behind.

    Parameters
    ----------
    scenario : Scenario, optional
        The default Milton-Keynes-like scenario if omitted.
    seed : int, optional
        Overrides the scenario's seed.

    Returns
    -------
    SyntheticRecords

    Examples
    --------
    >>> from fdkit import synth
    >>> small = synth.load_scenario().replace(population=2000)
    >>> result = synth.generate(small, seed=1)
    >>> result.records.events.columns.tolist()[:4]
    ['crime_id', 'person_id', 'offence_date', 'role']
    """
    scenario = load_scenario() if scenario is None else scenario
    seed = scenario.seed if seed is None else int(seed)
    streams = dict(
        zip(
            ("people", "traits", "months", "suspect", "victim", "names"),
            (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(6)),
        )
    )
    people = _draw_people(scenario, streams["people"])
    traits = _draw_traits(scenario, people["sex"], streams["traits"])
    spells = _simulate_months(scenario, people["dob"], traits, streams["months"])
    catalogue = _Catalogue(scenario)
    suspect = _suspect_crimes(scenario, catalogue, spells["suspect"], traits, streams["suspect"])
    victim = _victim_crimes(scenario, catalogue, spells["victim"], traits, streams["victim"])
    events = _assemble_events(catalogue, people, suspect, victim)
    recorded = np.unique(events.pop("_person").to_numpy())
    persons = _persons_frame(scenario, people, recorded, streams["names"])
    latent = pd.DataFrame(
        {
            "person_id": people["person_id"][recorded],
            "offending_propensity": traits["offending"][recorded],
            "victim_propensity": traits["victim"][recorded],
            "violent_share": traits["violent_share"][recorded],
            "knife_propensity": traits["knife"][recorded],
            "months_in_burst": spells["burst_months"][recorded],
        }
    ).sort_values("person_id", ignore_index=True)
    latent["person_id"] = latent["person_id"].astype("str")
    months = np.arange(np.datetime64(scenario.start, "M"), np.datetime64(scenario.end, "M") + 1)
    person, first, after = spells["bursts"].T
    is_recorded = np.isin(person, recorded)
    bursts = pd.DataFrame(
        {
            "person_id": pd.array(people["person_id"][person[is_recorded]], dtype="str"),
            "start": months[first[is_recorded]].astype("datetime64[us]"),
            "end": months[after[is_recorded]].astype("datetime64[us]"),
        }
    ).sort_values(["person_id", "start"], ignore_index=True)
    return SyntheticRecords(
        records=Records(persons=persons, events=events),
        latent=latent,
        bursts=bursts,
        scenario=scenario,
        seed=seed,
        population=scenario.population,
    )


def _draw_people(scenario: Scenario, rng: np.random.Generator) -> dict[str, np.ndarray]:
    n = scenario.population
    first = np.datetime64(scenario.born_from, "D")
    span = (np.datetime64(scenario.born_to, "D") - first).astype(int)
    dob = first + rng.integers(0, span, size=n).astype("timedelta64[D]")
    sexes = list(scenario.sex)
    sex = np.array(sexes)[_categorical(rng, n, [scenario.sex[s] for s in sexes])]
    districts = list(scenario.districts)
    district = np.array(districts)[_categorical(rng, n, [scenario.districts[d] for d in districts])]
    width = max(6, len(str(n)))
    numbers = rng.permutation(n) + 1  # ids carry no information about birth order
    person_id = np.char.add("P", np.char.zfill(numbers.astype(str), width))
    return {"dob": dob, "sex": sex, "district": district, "person_id": person_id, "number": numbers}


def _draw_traits(scenario: Scenario, sex: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    off, vic = scenario.offending, scenario.victimisation
    n = sex.size
    z_offend, z_victim, z_violent, z_knife = rng.standard_normal((4, n))
    sex_multiplier = np.select([sex == "F", sex == "X"], [off.female_multiplier, (1 + off.female_multiplier) / 2], 1.0)
    victim_z = vic.correlation * z_offend + math.sqrt(1 - vic.correlation**2) * z_victim
    return {
        "offending": np.exp(off.spread * z_offend) * sex_multiplier,
        "victim": np.exp(vic.spread * victim_z),
        "violent_share": _expit(
            _logit(off.violent_share) + off.violent_share_spread * z_violent + off.violent_share_tilt * z_offend
        ),
        "knife": _expit(_logit(off.knife) + off.knife_spread * z_knife + off.knife_tilt * z_offend),
    }


def _age_curve(age: np.ndarray, peak: float, spread: float, min_age: float, age_at_start: np.ndarray) -> np.ndarray:
    """A log-normal-shaped age curve, 1 at ``peak``; 0 in any month begun below ``min_age``."""
    safe = np.maximum(age, 1e-3)
    curve = np.exp(-0.5 * (np.log(safe / peak) / spread) ** 2)
    return np.where(age_at_start >= min_age, curve, 0.0)


def _whole_years(day: np.datetime64, dob: np.ndarray) -> np.ndarray:
    """Age in whole years on ``day``: full calendar months lived, divided by twelve."""
    months = day.astype("datetime64[M]").astype(int) - dob.astype("datetime64[M]").astype(int)
    months -= _day_of_month(day) < _day_of_month(dob)
    return months // 12


def _day_of_month(days: np.ndarray | np.datetime64) -> np.ndarray:
    return (days - days.astype("datetime64[M]")).astype(int)


def _simulate_months(scenario, dob, traits, rng) -> dict:
    """Walk month by month: burst states, then Poisson counts of crimes and victimisations.

    Returns the (person, month) pairs of every suspect crime and victimisation, the number
    of months each person spent in a burst, and every burst spell (a spell already under way
    when the records begin is cut at their start).
    """
    off, vic, bursts = scenario.offending, scenario.victimisation, scenario.bursts
    months = np.arange(np.datetime64(scenario.start, "M"), np.datetime64(scenario.end, "M"))
    n = dob.size
    onset = bursts.monthly_onset
    ending = 1.0 / bursts.mean_months
    in_burst = rng.random(n) < onset / (onset + ending)  # start from the chain's steady state
    burst_months = np.zeros(n, dtype=np.int32)
    burst_began = np.where(in_burst, 0, -1)
    spells = []
    dob_days = dob.astype("datetime64[D]").astype(np.int64)
    found: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {"suspect": ([], []), "victim": ([], [])}
    for t, month in enumerate(months):
        first_day = month.astype("datetime64[D]")
        age_at_start = _whole_years(first_day, dob)
        age = (first_day.astype(np.int64) + 15 - dob_days) / _DAYS_PER_YEAR
        switch = rng.random(n)
        was_in_burst = in_burst
        in_burst = np.where(in_burst, switch >= ending, switch < onset)
        burst_months += in_burst
        if t > 0:
            ended = np.flatnonzero(was_in_burst & ~in_burst)
            spells.append(np.column_stack([ended, burst_began[ended], np.full(ended.size, t)]))
            burst_began[in_burst & ~was_in_burst] = t
        suspect_rate = (
            off.annual_rate
            / 12
            * traits["offending"]
            * _age_curve(age, off.age_peak, off.age_spread, off.min_age, age_at_start)
            * np.where(in_burst, bursts.offending_multiplier, 1.0)
        )
        victim_rate = (
            vic.annual_rate
            / 12
            * traits["victim"]
            * _age_curve(age, vic.age_peak, vic.age_spread, 0.0, age_at_start)
            * np.where(in_burst, bursts.victim_multiplier, 1.0)
        )
        for role, rate in (("suspect", suspect_rate), ("victim", victim_rate)):
            counts = rng.poisson(rate)
            who = np.flatnonzero(counts)
            people, when = found[role]
            people.append(np.repeat(who, counts[who]))
            when.append(np.full(int(counts[who].sum()), t, dtype=np.int32))
    still_in = np.flatnonzero(in_burst)
    spells.append(np.column_stack([still_in, burst_began[still_in], np.full(still_in.size, months.size)]))
    result: dict[str, Any] = {
        role: (np.concatenate(people), months[np.concatenate(when)]) for role, (people, when) in found.items()
    }
    result["burst_months"] = burst_months
    result["bursts"] = np.concatenate(spells)  # rows: person, first month index, month index after
    return result


class _Catalogue:
    """The scenario's offence mixes as arrays indexed by group, for fast vectorised draws.

    Groups are numbered in :data:`fdkit.offences.GROUPS` order. A group that has
    knife-offence codes (possession of weapons) uses the knife draw to choose between its
    knife codes and the rest; other groups use all their codes whatever the draw.
    """

    def __init__(self, scenario: Scenario):
        self.groups = np.array(offences.GROUPS)
        index = {g: i for i, g in enumerate(offences.GROUPS)}

        def per_group(mapping):
            return np.array([mapping.get(g, 0.0) for g in offences.GROUPS])

        self.violent_mix = per_group(scenario.suspect_mix["violent"])
        self.other_mix = per_group(scenario.suspect_mix["other"])
        self.victim_mix = per_group(scenario.victim_mix)
        self.knife_factor = per_group(scenario.knife_factor)
        self.police_initiated = per_group(scenario.police_initiated)
        self.fight = np.isin(self.groups, ["Violence with injury", "Violence without injury"])
        knife_code = offences.lookup().set_index("offence_code")["knife_offence"]
        self.codes = np.array([c for weights in scenario.codes.values() for c in weights])
        self.pools: dict[tuple[int, bool], tuple[np.ndarray, np.ndarray]] = {}
        start = 0
        for group, weights in scenario.codes.items():
            members = np.arange(start, start + len(weights))
            start += len(weights)
            w = np.array(list(weights.values()), dtype=float)
            is_knife = knife_code.loc[list(weights)].to_numpy(dtype=bool)
            for with_knife in (True, False):
                chosen = is_knife == with_knife if is_knife.any() else np.ones_like(is_knife)
                self.pools[index[group], with_knife] = (members[chosen], w[chosen])


def _draw_crimes(catalogue, person, month, group, knife_chance, rng) -> dict[str, np.ndarray]:
    """Offence code, knife flag, day and police-initiated flag for crimes whose group is drawn."""
    n = person.size
    knife = rng.random(n) < knife_chance
    code = np.empty(n, dtype=np.int64)
    for g in np.unique(group):
        for with_knife in (True, False):
            chosen = (group == g) & (knife == with_knife)
            if chosen.any():
                members, weights = catalogue.pools[g, with_knife]
                code[chosen] = members[_categorical(rng, int(chosen.sum()), weights)]
    start = month.astype("datetime64[D]")
    length = ((month + 1).astype("datetime64[D]") - start).astype(int)
    day = start + np.floor(rng.random(n) * length).astype("timedelta64[D]")
    police_initiated = rng.random(n) < catalogue.police_initiated[group]
    return {
        "person": person,
        "date": day,
        "group": group,
        "code": code,
        "knife": knife,
        "police_initiated": police_initiated,
    }


def _suspect_crimes(scenario, catalogue, spell, traits, rng) -> dict[str, np.ndarray]:
    person, month = spell
    n = person.size
    violent_mix = rng.random(n) < traits["violent_share"][person]
    group = np.where(
        violent_mix, _categorical(rng, n, catalogue.violent_mix), _categorical(rng, n, catalogue.other_mix)
    )
    chance = np.minimum(catalogue.knife_factor[group] * traits["knife"][person], 0.95)
    crimes = _draw_crimes(catalogue, person, month, group, chance, rng)
    crimes["mutual"] = catalogue.fight[group] & (rng.random(n) < scenario.offending.mutual_fight_share)
    return crimes


def _victim_crimes(scenario, catalogue, spell, traits, rng) -> dict[str, np.ndarray]:
    person, month = spell
    group = _categorical(rng, person.size, catalogue.victim_mix)
    exposure = 0.05 + scenario.victimisation.knife_link * traits["knife"][person]
    chance = np.minimum(catalogue.knife_factor[group] * exposure, 0.95)
    crimes = _draw_crimes(catalogue, person, month, group, chance, rng)
    crimes["police_initiated"][:] = False  # a crime reported by its victim was not found proactively
    return crimes


def _assemble_events(catalogue, people, suspect, victim) -> pd.DataFrame:
    """Number the crimes in date order and lay them out one row per person, crime and role."""
    crimes = {
        key: np.concatenate([suspect[key], victim[key]])
        for key in ("person", "date", "code", "knife", "police_initiated")
    }
    n_suspect = suspect["person"].size
    role = np.repeat(np.array(["suspect", "victim"]), [n_suspect, victim["person"].size])
    order = np.lexsort((role == "victim", people["number"][crimes["person"]], crimes["date"]))
    crime_number = np.empty(order.size, dtype=np.int64)
    crime_number[order] = np.arange(1, order.size + 1)
    # A mutual fight adds a victim row for the suspect, under the same crime.
    mutual = np.flatnonzero(suspect["mutual"])
    rows = np.concatenate([np.arange(order.size), mutual])
    row_role = np.concatenate([role, np.full(mutual.size, "victim")])
    width = max(8, len(str(order.size)))
    frame = pd.DataFrame(
        {
            "_number": crime_number[rows],
            "_victim_row": row_role == "victim",
            "_person": crimes["person"][rows],
            "offence_date": crimes["date"][rows].astype("datetime64[us]"),
            "role": row_role,
            "offence_code": catalogue.codes[crimes["code"][rows]],
            "knife": crimes["knife"][rows],
            "police_initiated": crimes["police_initiated"][rows],
        }
    )
    frame = frame.sort_values(["_number", "_victim_row"], ignore_index=True)
    frame.insert(0, "crime_id", "C" + frame["_number"].astype(str).str.zfill(width))
    frame.insert(1, "person_id", people["person_id"][frame["_person"].to_numpy()])
    frame = frame.drop(columns=["_number", "_victim_row"])
    for column in ("crime_id", "person_id", "role", "offence_code"):
        frame[column] = frame[column].astype("str")
    return frame


def _persons_frame(scenario, people, recorded, rng) -> pd.DataFrame:
    sex = people["sex"][recorded]
    names = _names(scenario.seed, sex, rng)
    persons = pd.DataFrame(
        {
            "person_id": people["person_id"][recorded],
            "date_of_birth": people["dob"][recorded].astype("datetime64[us]"),
            "sex": sex,
            "name": names,
            "postcode_district": people["district"][recorded],
        }
    ).sort_values("person_id", ignore_index=True)
    for column in ("person_id", "sex", "name", "postcode_district"):
        persons[column] = persons[column].astype("str")
    return persons


def _names(seed: int, sex: np.ndarray, rng: np.random.Generator, pool: int = 600) -> np.ndarray:
    """Faker en_GB names drawn from seeded pools (calling Faker per person is far too slow)."""
    from faker import Faker

    fake = Faker("en_GB")
    fake.seed_instance(seed)
    female = np.array(sorted({fake.first_name_female() for _ in range(pool)}))
    male = np.array(sorted({fake.first_name_male() for _ in range(pool)}))
    surnames = np.array(sorted({fake.last_name() for _ in range(pool)}))
    n = sex.size
    either = np.where(rng.random(n) < 0.5, female[rng.integers(0, female.size, n)], male[rng.integers(0, male.size, n)])
    first = np.select(
        [sex == "F", sex == "M"], [female[rng.integers(0, female.size, n)], male[rng.integers(0, male.size, n)]], either
    )
    return np.char.add(np.char.add(first.astype(str), " "), surnames[rng.integers(0, surnames.size, n)])


def _categorical(rng: np.random.Generator, n: int, weights) -> np.ndarray:
    cumulative = np.cumsum(np.asarray(weights, dtype=float))
    return np.searchsorted(cumulative / cumulative[-1], rng.random(n), side="right")


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def _expit(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


# -------------------------------------------------------------------------- follow-up


@dataclass(frozen=True)
class Effects:
    """True effects of a treatment, as multipliers on the rate of each kind of event.

    A multiplier of 0.6 on a group keeps, on average, 60% of a treated person's events of
    that group in their follow-up window (a 40% reduction). Multipliers multiply: a knife
    robbery by a treated suspect is kept with probability
    ``suspect["Robbery"] * knife_suspect``.

    Attributes
    ----------
    suspect : mapping of offence group or code to multiplier
        For crimes as a suspect. A code's multiplier wins over its group's; the key ``"*"``
        sets the default for everything unlisted.
    victim : mapping of offence group or code to multiplier
        For victimisations; keys as above.
    knife_suspect, knife_victim : float
        Extra multipliers on knife-involved events (the kit's knife rule).
    """

    suspect: Mapping[str, float] = field(default_factory=dict)
    victim: Mapping[str, float] = field(default_factory=dict)
    knife_suspect: float = 1.0
    knife_victim: float = 1.0

    def keep_probability(self, role: np.ndarray, group: np.ndarray, code: np.ndarray, knife: np.ndarray) -> np.ndarray:
        """The chance each event survives treatment.

        A key may be an offence code or an offence group; a code's own multiplier wins over
        its group's, and ``"*"`` covers everything not listed.
        """
        by_role = {"suspect": (self.suspect, self.knife_suspect), "victim": (self.victim, self.knife_victim)}
        keep = np.ones(role.size)
        for name, (multipliers, knife_multiplier) in by_role.items():
            mine = role == name
            default = multipliers.get("*", 1.0)
            keep[mine] = [multipliers.get(c, multipliers.get(g, default)) for c, g in zip(code[mine], group[mine])]
            keep[mine & knife] *= knife_multiplier
        return keep

    def __post_init__(self):
        if any(not 0.0 <= v < np.inf for v in self._multipliers()):
            raise ValueError("effect multipliers must be finite and not negative")

    def _multipliers(self) -> list[float]:
        return [*self.suspect.values(), *self.victim.values(), self.knife_suspect, self.knife_victim]

    @property
    def increases(self) -> bool:
        """Whether any multiplier is above 1 (more events: the design simulation's, not :func:`follow_up`'s)."""
        return any(v > 1.0 for v in self._multipliers())


@dataclass(frozen=True)
class FollowUp:
    """What :func:`follow_up` returns: the new records and the events treatment removed."""

    records: Records
    removed: pd.DataFrame


def follow_up(
    records: Records,
    starts: pd.DataFrame,
    effects: Effects,
    *,
    months: int = 12,
    seed: int,
    data_end: date | None = None,
) -> FollowUp:
    """Give chosen people true treatment effects over a follow-up window.

    Each listed person's events with ``start_date <= offence_date < start_date + months``
    are thinned: an event is kept with the probability :meth:`Effects.keep_probability`
    gives it. Thinning a Poisson process keeps it Poisson at the lower rate, so the result is
    what the generator would have produced had the person's rates been multiplied. A crime in
    which the person is both suspect and victim is kept or removed whole, by its suspect row.

    Parameters
    ----------
    records : fdkit.Records
        Records that cover the follow-up windows (synthetic, usually).
    starts : pandas.DataFrame
        ``person_id`` and ``start_date`` (when each person's treatment began). People not
        listed are untouched; list control people with :class:`Effects` ``()`` or simply
        leave them out.
    effects : Effects
    months : int, default 12
    seed : int
        The draws depend only on the seed and the set of events, not on row order.
    data_end : datetime.date, optional
        The first day the records do not cover; a window reaching past it is an error.

    Returns
    -------
    FollowUp
    """
    if starts["person_id"].duplicated().any():
        raise ValueError("starts lists a person more than once")
    if effects.increases:
        raise ValueError(
            "effect multipliers must lie between 0 and 1 here: follow_up removes events from a person's own "
            "record, so it can model reductions but not increases (fdkit.design simulates increases)"
        )
    ends = add_months(pd.to_datetime(starts["start_date"]), months)
    if data_end is not None and (late := ends > pd.Timestamp(data_end)).any():
        raise ValueError(
            f"{int(late.sum())} follow-up windows end after the records do ({data_end}); "
            "shorten the follow-up or extend the scenario's end"
        )
    chances = keep_chances(records.events, starts, effects, months)
    draws = np.random.default_rng(seed).random(len(chances))
    removed_pairs = chances.loc[draws >= chances["keep"].to_numpy(), ["crime_id", "person_id"]]
    events = records.events
    key = pd.MultiIndex.from_frame(events[["crime_id", "person_id"]])
    drop = key.isin(pd.MultiIndex.from_frame(removed_pairs))
    return FollowUp(
        records=dataclasses.replace(records, events=events.loc[~drop].reset_index(drop=True)),
        removed=events.loc[drop].reset_index(drop=True),
    )


def keep_chances(events: pd.DataFrame, starts: pd.DataFrame, effects: Effects, months: int) -> pd.DataFrame:
    """The survival chance of each (crime, person) in the listed people's follow-up windows.

    One decision is made per crime and person: where a person is both suspect and victim of
    a crime, the suspect row decides for both. Rows are sorted by ``crime_id`` and
    ``person_id``, which is what makes :func:`follow_up` independent of row order.

    Returns
    -------
    pandas.DataFrame
        ``crime_id``, ``person_id`` and ``keep``.
    """
    starts = starts.loc[:, ["person_id", "start_date"]].assign(
        start_date=lambda d: pd.to_datetime(d["start_date"]),
        end_date=lambda d: add_months(pd.to_datetime(d["start_date"]), months),
    )
    windows = events[["person_id", "offence_date"]].merge(starts, on="person_id", how="left")
    in_window = (
        (windows["offence_date"] >= windows["start_date"]) & (windows["offence_date"] < windows["end_date"])
    ).to_numpy()
    candidates = offences.classify(events.loc[in_window])
    candidates["_suspect_first"] = candidates["role"] != "suspect"
    deciding = candidates.sort_values(["crime_id", "person_id", "_suspect_first"]).drop_duplicates(
        ["crime_id", "person_id"]
    )
    keep = effects.keep_probability(
        deciding["role"].to_numpy(),
        deciding["group"].to_numpy(),
        deciding["offence_code"].to_numpy(),
        deciding["knife_involved"].to_numpy(),
    )
    return pd.DataFrame(
        {"crime_id": deciding["crime_id"].to_numpy(), "person_id": deciding["person_id"].to_numpy(), "keep": keep}
    )


# ------------------------------------------------------------------------------ sites

#: The spread of the towns' base rates drawn by :func:`site_scenario`: the standard deviation
#: of the log of a town's rate multiplier (a modelling choice, not a fact about any town).
SITE_RATE_SPREAD = 0.2
#: The range a drawn base rate is kept within, so that every town can fill the trial's places.
SITE_RATE_RANGE = (0.6, 1.6)


def site_scenario(scenario: Scenario, name: str, seed: int, base_rate: float | None = None) -> tuple[Scenario, dict]:
    """One town of a multi-site network: the same scenario with its own seed and base rate.

    Every town follows the same scenario (the same people, crimes, trial protocol and true
    effects); it differs in its seed (its own people, records and allocation) and in its base
    rate, a multiplier on the rates of offending and of victimisation. By default the base rate
    is drawn from the seed and the name: ``exp(0.2 z)`` for a standard normal ``z``
    (:data:`SITE_RATE_SPREAD`), kept within :data:`SITE_RATE_RANGE` and rounded to 2 decimals,
    so a network of towns differs as real places do, and the same name and seed always give the
    same town.

    Parameters
    ----------
    scenario : Scenario
    name : str
        The site's name (:func:`fdkit.sites.check_site_name`).
    seed : int
        Seeds the town's records and its trial's allocation.
    base_rate : float, optional
        The multiplier itself (0.25 to 4), instead of a drawn one.

    Returns
    -------
    (Scenario, dict)
        The town's scenario, and what makes it this site (``name``, ``seed``, ``base_rate``),
        which :func:`write_synthetic` records in the manifest.
    """
    from .sites import check_site_name

    check_site_name(name)
    if base_rate is None:
        key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big")
        z = np.random.default_rng(np.random.SeedSequence([int(seed), key])).standard_normal()
        base_rate = round(float(np.clip(np.exp(SITE_RATE_SPREAD * z), *SITE_RATE_RANGE)), 2)
    if not 0.25 <= base_rate <= 4:
        raise ValueError(f"a base rate is a multiplier from 0.25 to 4; got {base_rate}")
    town = scenario.replace(
        seed=int(seed),
        offending=dataclasses.replace(scenario.offending, annual_rate=scenario.offending.annual_rate * base_rate),
        victimisation=dataclasses.replace(
            scenario.victimisation, annual_rate=scenario.victimisation.annual_rate * base_rate
        ),
        trial=None if scenario.trial is None else {**scenario.trial, "seed": int(seed)},
    )
    return town, {"name": name, "seed": int(seed), "base_rate": base_rate}


# ---------------------------------------------------------------------------- writing

#: What every column of a synthetic records folder means.
DATA_DICTIONARY = (
    ("persons.csv", "person_id", "text", "Pseudonymous identifier, unique per person"),
    ("persons.csv", "date_of_birth", "date (YYYY-MM-DD)", "Date of birth"),
    ("persons.csv", "sex", "F / M / X / blank", "Sex as recorded"),
    ("persons.csv", "name", "text", "Invented name (synthetic data only; Faker en_GB)"),
    ("persons.csv", "postcode_district", "text", "Home postcode district (synthetic data only)"),
    ("events.csv", "crime_id", "text", "Crime reference; a crime can have several rows (one per person and role)"),
    ("events.csv", "person_id", "text", "The person this row is about (in persons.csv)"),
    ("events.csv", "offence_date", "date (YYYY-MM-DD)", "Date the offence was committed"),
    ("events.csv", "role", "suspect / victim", "The person's role in the crime"),
    ("events.csv", "offence_code", "text", "Home-Office-style offence code (fdkit.offences.lookup)"),
    ("events.csv", "knife", "true / false", "A knife or sharp instrument was involved"),
    ("events.csv", "police_initiated", "true / false", "Found by proactive policing rather than reported"),
    ("engagement.csv", "person_id", "text", "A person randomised to treatment"),
    ("engagement.csv", "engaged", "true / false", "Whether they engaged with their case worker"),
    ("eligible.csv", "*", "", "The trial's eligibility screen on the reference date (fdkit screen)"),
    ("funnel.csv", "*", "", "How many people remained at each step of the screen, and why the rest left"),
    (
        "allocation.csv",
        "arm",
        "treatment / control",
        "The sealed random allocation (fdkit randomise); allocation.seal.json re-derives it",
    ),
    (
        "analysis-plan.toml",
        "*",
        "",
        "The analysis plan sealed with the allocation (fdkit plan); fdkit analyse and fdkit report follow it",
    ),
    (
        "report.toml",
        "*",
        "",
        "What can truly be said about the synthetic trial for CONSORT 2025 items the data cannot fill",
    ),
    (
        "trial_truth.csv",
        "expected_reduction",
        "percent",
        "The reduction the synthetic world's true effects should produce on average, beside the published figure",
    ),
)


@dataclass(frozen=True)
class WrittenFolder:
    """A synthetic records folder on disk and its manifest."""

    path: Path
    manifest: dict

    def describe(self) -> str:
        """A few lines for the command line."""
        lines = [
            f"wrote synthetic records to {self.path}/ (scenario {self.manifest['scenario']}, "
            f"seed {self.manifest['seed']})"
        ]
        for name, entry in self.manifest["files"].items():
            rows = f"{entry['rows']:>9,} rows" if "rows" in entry else " " * 14
            lines.append(f"  {name:<22}{rows}  sha256 {entry['sha256'][:16]}…")
        return "\n".join(lines)


def write_synthetic(
    out: str | Path,
    scenario: Scenario | None = None,
    *,
    seed: int | None = None,
    overwrite: bool = False,
    progress: Callable[[str], None] | None = None,
    site: dict | None = None,
) -> WrittenFolder:
    """Generate records and write them as a records folder with provenance.

    Writes ``persons.csv``, ``events.csv``, the scenario file used (``scenario.toml``), a
    data dictionary (``data_dictionary.csv``) and ``manifest.json`` (scenario, seed and the
    SHA-256 of every file). The output is identical byte for byte for the same scenario,
    seed and pinned dependency versions.

    Parameters
    ----------
    out : str or pathlib.Path
        Folder to write; created if missing.
    scenario : Scenario, optional
    seed : int, optional
    overwrite : bool, default False
        Refuse to write into a folder that already holds a records file unless True.
    progress : callable, optional
        Called with the name of each step as it starts; see :mod:`fdkit.progress`.
    site : dict, optional
        What makes the records one town of a network (:func:`site_scenario`); recorded in the
        manifest under ``site``. The ``scenario.toml`` written is the network's shared scenario.

    Returns
    -------
    WrittenFolder
    """
    out = Path(out)
    scenario = load_scenario() if scenario is None else scenario
    if not overwrite and (out / "events.csv").exists():
        raise FileExistsError(f"{out}/ already holds records; pass overwrite=True (--force) to replace them")
    step = progress or (lambda label: None)
    step(f"simulating {scenario.population:,} people")
    result = generate(scenario, seed)
    records = result.records
    out.mkdir(parents=True, exist_ok=True)
    if scenario.trial is not None:
        step("running the trial")
        records = _write_trial(out, records, scenario)
    step("writing the records")
    write_records(records, out)
    step("writing the manifest")
    (out / SCENARIO_FILE).write_text(scenario.text, encoding="utf-8", newline="\n")
    pd.DataFrame(DATA_DICTIONARY, columns=["file", "column", "type", "description"]).to_csv(
        out / DICTIONARY_FILE, index=False, lineterminator="\n"
    )
    tables = {"persons.csv": records.persons, "events.csv": records.events, "engagement.csv": records.engagement}
    rows = {name: len(frame) for name, frame in tables.items() if frame is not None}
    files: dict[str, dict[str, str | int]] = {}
    for name in sorted(p.name for p in out.iterdir() if p.name != MANIFEST_FILE):
        entry: dict[str, str | int] = {"sha256": _sha256(out / name)}
        if name in rows:
            entry["rows"] = rows[name]
        files[name] = entry
    manifest = {
        "generator": "fdkit.synth.write_synthetic",
        "scenario": scenario.name,
        "scenario_file": SCENARIO_FILE,
        "seed": result.seed,
        "population_simulated": result.population,
        "files": files,
    }
    if site is not None:
        manifest["site"] = site
    (out / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return WrittenFolder(path=out, manifest=manifest)


def _write_trial(out: Path, records: Records, scenario: Scenario) -> Records:
    """Run the scenario's trial and write its files; return the records with its effects."""
    from . import checklist, eligibility, randomise, synth_trial
    from . import plan as plans

    trial = synth_trial.run_trial(records, synth_trial.TrialDesign.from_scenario(scenario))
    eligibility.write_eligible(trial.screening, out / "eligible.csv", out / "funnel.csv")
    allocation_file = out / "allocation.csv"
    for old in (allocation_file, randomise.seal_path(allocation_file)):
        old.unlink(missing_ok=True)  # the caller has already agreed to replace this folder
    plan = trial.design.plan()
    plans.write_plan(plan, out / plans.PLAN_FILE)
    randomise.write_allocation(trial.allocation, allocation_file, plan=plan)
    (out / "report.toml").write_text(
        checklist.statements_toml(trial.design.statements(scenario)), encoding="utf-8", newline="\n"
    )
    trial.truth.to_csv(out / "trial_truth.csv", index=False, lineterminator="\n")
    return trial.records


def read_manifest(folder: str | Path) -> dict | None:
    """The manifest :func:`write_synthetic` wrote in ``folder``, or None when the records are not synthetic."""
    manifest = Path(folder) / MANIFEST_FILE
    if not manifest.is_file():
        return None
    try:
        content = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return content if str(content.get("generator", "")).startswith("fdkit.synth") else None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
