"""The synthetic generator: determinism, the contract, and the regularities it promises."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from fdkit import offences, synth
from fdkit.records import validate_frames

SMALL = 20_000


@pytest.fixture(scope="module")
def scenario():
    return synth.load_scenario()


@pytest.fixture(scope="module")
def small(scenario):
    return synth.generate(scenario.replace(population=SMALL), seed=11)


@pytest.fixture(scope="module")
def busy(scenario):
    """A population that offends a lot, so that statistical checks have power."""
    offending = dataclasses.replace(scenario.offending, annual_rate=0.2)
    return synth.generate(scenario.replace(population=SMALL, offending=offending), seed=5)


def _ages(events: pd.DataFrame, persons: pd.DataFrame) -> pd.Series:
    dob = events["person_id"].map(persons.set_index("person_id")["date_of_birth"])
    return (events["offence_date"] - dob).dt.days / 365.25


def test_same_seed_same_records_and_different_seed_different(scenario):
    sized = scenario.replace(population=3_000)
    first, again, other = synth.generate(sized, seed=3), synth.generate(sized, seed=3), synth.generate(sized, seed=4)
    pd.testing.assert_frame_equal(first.records.events, again.records.events)
    pd.testing.assert_frame_equal(first.records.persons, again.records.persons)
    assert not first.records.events.equals(other.records.events)


def test_output_meets_the_records_contract(small):
    records = small.records
    checked = validate_frames(records.persons, records.events)
    assert len(checked.events) == len(records.events)
    assert list(records.events.columns) == [
        "crime_id",
        "person_id",
        "offence_date",
        "role",
        "offence_code",
        "knife",
        "police_initiated",
    ]
    assert set(records.persons["person_id"]) == set(records.events["person_id"])


def test_events_lie_inside_the_scenario_window(small, scenario):
    dates = small.records.events["offence_date"]
    assert dates.min() >= pd.Timestamp(scenario.start)
    assert dates.max() < pd.Timestamp(scenario.end)


def test_no_one_is_a_suspect_below_the_age_of_criminal_responsibility(small):
    events, persons = small.records.events, small.records.persons
    suspect = events[events["role"] == "suspect"]
    assert _ages(suspect, persons).min() >= 10


def test_offending_follows_an_age_crime_curve(busy, scenario):
    events, persons = busy.records.events, busy.records.persons
    suspect = events[events["role"] == "suspect"]
    counts = np.floor(_ages(suspect, persons)).value_counts().sort_index()
    peak = counts.idxmax()
    assert abs(peak - scenario.offending.age_peak) <= 3
    assert counts.loc[11] < counts.loc[peak] / 2
    assert counts.loc[29] < counts.loc[peak] / 2


def test_a_few_people_commit_most_crimes(busy):
    suspect = busy.records.events.query("role == 'suspect'")
    per_person = suspect.groupby("person_id").size().sort_values(ascending=False)
    top_tenth = per_person.iloc[: len(per_person) // 10].sum() / per_person.sum()
    assert top_tenth > 0.35, top_tenth


def test_people_selected_on_a_high_year_fall_back_the_next(busy):
    """Regression to the mean: selection on recent offending overstates future offending."""
    events = busy.records.events.query("role == 'suspect'")
    cut = pd.Timestamp("2022-02-01")
    year_before = events[(events.offence_date >= cut - pd.DateOffset(years=1)) & (events.offence_date < cut)]
    year_after = events[(events.offence_date >= cut) & (events.offence_date < cut + pd.DateOffset(years=1))]
    before = year_before.groupby("person_id").size()
    selected = before[before >= before.quantile(0.95)].index
    after = year_after.groupby("person_id").size().reindex(selected, fill_value=0)
    assert after.mean() < 0.8 * before.loc[selected].mean()


def test_offenders_are_more_often_victims(busy):
    events = busy.records.events
    counts = events.pivot_table(index="person_id", columns="role", values="crime_id", aggfunc="count", fill_value=0)
    occasional = counts.loc[counts["suspect"] == 1, "victim"].mean()
    prolific = counts.loc[counts["suspect"] >= 5, "victim"].mean()
    assert prolific > 1.5 * occasional, (prolific, occasional)
    mutual = events.groupby(["crime_id", "person_id"])["role"].nunique()
    assert (mutual == 2).any(), "some fights record the suspect as a victim too"


def test_knife_involvement_and_police_initiation_are_plausible(busy):
    events = offences.classify(busy.records.events)
    suspect = events[events["role"] == "suspect"]
    assert 0.05 < suspect["knife_involved"].mean() < 0.35
    by_group = suspect.groupby("group")["police_initiated"].mean()
    assert by_group["Drug offences"] > 0.7
    assert by_group["Violence with injury"] < 0.05
    victim_only = ~events["crime_id"].isin(suspect["crime_id"])
    assert not events.loc[victim_only, "police_initiated"].any()
    weapons = suspect[suspect["group"] == "Possession of weapons"]
    assert weapons["knife_offence"].mean() > 0.3


def test_scenario_errors_name_the_problem(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('extends = "milton_keynes"\npopulation = 10\nwizards = 3\n')
    with pytest.raises(synth.ScenarioError, match="unknown wizards"):
        synth.load_scenario(bad)
    bad.write_text('extends = "milton_keynes"\n[codes."Robbery"]\n"34Z" = 1.0\n')
    with pytest.raises(synth.ScenarioError, match="34Z"):
        synth.load_scenario(bad)
    bad.write_text("name = 'x'\n")
    with pytest.raises(synth.ScenarioError, match="missing"):
        synth.load_scenario(bad)
    with pytest.raises(synth.ScenarioError, match="does not exist"):
        synth.load_scenario(tmp_path / "absent.toml")


# ------------------------------------------------------------------- the follow-up hook


@pytest.fixture(scope="module")
def trial_people(busy):
    suspects = busy.records.events.query("role == 'suspect'")["person_id"].drop_duplicates()
    chosen = suspects.sort_values().iloc[:400]
    return pd.DataFrame({"person_id": chosen, "start_date": pd.Timestamp("2022-06-15")})


def _in_windows(events, people, months=12):
    merged = events.merge(people, on="person_id")
    end = merged["start_date"] + pd.DateOffset(months=months)
    return merged[(merged.offence_date >= merged.start_date) & (merged.offence_date < end)]


def test_multiplier_zero_removes_every_window_event_and_nothing_else(busy, trial_people):
    result = synth.follow_up(busy.records, trial_people, synth.Effects(suspect={"*": 0.0}, victim={"*": 0.0}), seed=1)
    assert _in_windows(result.records.events, trial_people).empty
    removed = _in_windows(busy.records.events, trial_people)
    assert len(result.removed) == len(removed)
    assert len(result.records.events) + len(result.removed) == len(busy.records.events)


def test_unit_multipliers_change_nothing(busy, trial_people):
    result = synth.follow_up(busy.records, trial_people, synth.Effects(), seed=1)
    pd.testing.assert_frame_equal(result.records.events, busy.records.events)


def test_thinning_keeps_the_expected_share(busy, trial_people):
    window = _in_windows(busy.records.events, trial_people)
    robberies = window[(window.role == "suspect") & (window.offence_code.isin(["34A", "34B"]))]
    result = synth.follow_up(busy.records, trial_people, synth.Effects(suspect={"Robbery": 0.3}), seed=2)
    kept = _in_windows(result.records.events, trial_people)
    kept_robberies = kept[(kept.role == "suspect") & (kept.offence_code.isin(["34A", "34B"]))]
    test = stats.binomtest(len(kept_robberies), len(robberies), 0.3)
    assert test.pvalue > 0.001
    # Robbery is never a mutual fight, so every other event in the windows survives.
    assert len(kept) - len(kept_robberies) == len(window) - len(robberies)


def test_follow_up_ignores_row_order(busy, trial_people):
    effects = synth.Effects(suspect={"*": 0.5}, victim={"*": 0.5})
    shuffled = dataclasses.replace(busy.records, events=busy.records.events.sample(frac=1, random_state=3))
    first = synth.follow_up(busy.records, trial_people, effects, seed=9)
    second = synth.follow_up(shuffled, trial_people.iloc[::-1], effects, seed=9)
    key = ["crime_id", "person_id", "role"]
    assert first.removed.sort_values(key)[key].values.tolist() == second.removed.sort_values(key)[key].values.tolist()


def test_a_fight_is_removed_whole(busy, trial_people):
    result = synth.follow_up(busy.records, trial_people, synth.Effects(suspect={"*": 0.0}), seed=1)
    removed = result.removed
    fights = removed.groupby(["crime_id", "person_id"])["role"].nunique()
    kept_rows = result.records.events.set_index(["crime_id", "person_id"]).index
    assert not kept_rows.isin(fights.index).any()


def test_follow_up_refuses_increases_and_windows_past_the_data(busy, trial_people, scenario):
    with pytest.raises(ValueError, match="between 0 and 1"):
        synth.follow_up(busy.records, trial_people, synth.Effects(suspect={"Robbery": 1.5}), seed=1)
    with pytest.raises(ValueError, match="not negative"):
        synth.Effects(suspect={"Robbery": -0.5})
    late = trial_people.assign(start_date=pd.Timestamp("2023-06-01"))
    with pytest.raises(ValueError, match="end after the records"):
        synth.follow_up(busy.records, late, synth.Effects(), seed=1, data_end=scenario.end)
