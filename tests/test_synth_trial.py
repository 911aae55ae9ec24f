"""The shipped synthetic trial: its design, who its effects touch, and its expected reductions."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from fdkit import outcomes, synth
from fdkit.synth_trial import TrialDesign, draw_engagement, run_trial


@pytest.fixture(scope="module")
def scenario():
    return synth.load_scenario()


@pytest.fixture(scope="module")
def trial(scenario):
    return run_trial(synth.generate(scenario).records, TrialDesign.from_scenario(scenario))


def follow_up_window(events, allocation, months=12):
    merged = events.merge(allocation.table[["person_id", "randomised_on"]], on="person_id")
    end = merged["randomised_on"] + pd.DateOffset(months=months)
    return merged[(merged["offence_date"] >= merged["randomised_on"]) & (merged["offence_date"] < end)]


def test_the_design_is_the_trials(trial):
    counts = trial.allocation.counts()
    assert counts["treatment"].to_dict() == {"11-17": 20, "18-25": 25}
    assert trial.allocation.table["randomised_on"].eq(pd.Timestamp("2023-02-01")).all()


def test_engagement_is_recorded_for_the_treated_arm_only(trial):
    engagement = trial.records.engagement
    treated = trial.allocation.table.loc[trial.allocation.table["arm"] == "treatment", "person_id"]
    assert sorted(engagement["person_id"]) == sorted(treated)


def test_under_18s_engage_more_often_in_expectation(scenario, trial):
    design = TrialDesign.from_scenario(scenario)
    assert design.engagement["11-17"] > design.engagement["18-25"]
    rates = []
    for seed in range(300):
        draws = draw_engagement(trial.allocation, dataclasses.replace(design, seed=seed))
        rates.append(draws.merge(trial.allocation.table).groupby("stratum")["engaged"].mean())
    mean = pd.concat(rates, axis=1).mean(axis=1)
    assert abs(mean["11-17"] - 0.85) < 0.02 and abs(mean["18-25"] - 0.65) < 0.02


def test_effects_touch_only_engaged_treated_people_in_their_follow_up(trial):
    before, after = trial.untreated.events, trial.records.events
    key = ["crime_id", "person_id", "role"]
    removed = before.merge(after[key], on=key, how="left", indicator=True).query("_merge == 'left_only'")
    assert len(removed) > 0
    engaged = trial.records.engagement.loc[trial.records.engagement["engaged"], "person_id"]
    assert removed["person_id"].isin(engaged).all()
    window = follow_up_window(removed.drop(columns="_merge"), trial.allocation)
    assert len(window) == len(removed)


def test_expected_reductions_are_near_the_published_ones(trial):
    # The scenario's true effects were tuned to the published knife figures (39.8%, 59% under
    # 18) with police-initiated knife crimes counted; which definition the trial used is not
    # published. The kit's knife_suspect now leaves them out, so the tuned definition is
    # knife_suspect_all, and that is what must sit near the published figure.
    truth = trial.truth.set_index(["outcome", "subgroup"])
    published = truth.dropna(subset=["published_reduction"]).copy()
    tuned = [("knife_suspect_all" if o == "knife_suspect" else o, g) for o, g in published.index]
    published["expected_reduction"] = truth.loc[tuned, "expected_reduction"].to_numpy()
    gap = (published["expected_reduction"] - published["published_reduction"]).abs()
    assert gap.max() <= 2.0, published


@pytest.mark.slow  # simulates the trial's follow-up many times
def test_expected_reductions_match_simulation(scenario, trial):
    """Average many thinned follow-ups of the whole cohort treated; it must match the formula."""
    design = TrialDesign.from_scenario(scenario)
    everyone = dataclasses.replace(trial.allocation, table=trial.allocation.table.assign(arm="treatment"))
    base = follow_up_window(trial.untreated.events, everyone)
    base_values = outcomes.event_values(base).sum()
    realised = []
    for seed in range(200):
        d = dataclasses.replace(design, seed=seed)
        engaged = draw_engagement(everyone, d)
        engaged = engaged.loc[engaged["engaged"], "person_id"]
        records = trial.untreated
        for number, (stratum, effects) in enumerate(sorted(d.effects.items())):
            people = everyone.table[everyone.table["person_id"].isin(engaged) & (everyone.table["stratum"] == stratum)]
            starts = pd.DataFrame({"person_id": people["person_id"], "start_date": people["randomised_on"]})
            records = synth.follow_up(records, starts, effects, seed=seed * 10 + number).records
        kept = outcomes.event_values(follow_up_window(records.events, everyone)).sum()
        realised.append(100 * (1 - kept / base_values))
    simulated = pd.concat(realised, axis=1).mean(axis=1)
    expected = trial.truth[trial.truth["subgroup"] == "all"].set_index("outcome")["expected_reduction"]
    for name in ("knife_suspect", "violence_suspect", "other_npi_suspect", "violence_victim"):
        assert abs(simulated[name] - expected[name]) < 2.0, (name, simulated[name], expected[name])


def test_a_scenario_without_a_trial_says_so(scenario):
    from fdkit.synth import ScenarioError

    with pytest.raises(ScenarioError, match="no \\[trial\\] table"):
        TrialDesign.from_scenario(scenario.replace(trial=None))
    broken = dict(scenario.trial, engagement={"11-17": 0.8})
    with pytest.raises(ScenarioError, match="same strata"):
        TrialDesign.from_scenario(scenario.replace(trial=broken))
