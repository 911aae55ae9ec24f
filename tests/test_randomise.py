"""Allocation: exact counts, order independence, waves, the seal and its verification."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from fdkit import randomise
from fdkit.randomise import allocate, read_allocation, verify, write_allocation

TRIAL = {"11-17": 20, "18-25": 25}


def cohort(n_young=60, n_old=90, prefix="P"):
    return pd.DataFrame(
        {
            "person_id": [f"{prefix}{i:04d}" for i in range(n_young + n_old)],
            "age_band": ["11-17"] * n_young + ["18-25"] * n_old,
        }
    )


def trial_allocation(eligible=None, seed=7, **kwargs):
    eligible = cohort() if eligible is None else eligible
    return allocate(
        eligible,
        seed=seed,
        randomised_on="2023-02-01",
        strata="age_band",
        capacities=TRIAL,
        sealed_at="2023-02-01T09:00:00+00:00",
        **kwargs,
    )


def test_stratified_treats_exactly_the_capacity_in_each_stratum():
    counts = trial_allocation().counts()
    assert counts.loc["11-17", "treatment"] == 20 and counts.loc["11-17", "control"] == 40
    assert counts.loc["18-25", "treatment"] == 25 and counts.loc["18-25", "control"] == 65


def test_complete_and_simple():
    people = cohort()
    complete = allocate(people, seed=1, randomised_on="2023-02-01", method="complete", n_treated=45)
    assert (complete.table["arm"] == "treatment").sum() == 45
    simple = allocate(people, seed=1, randomised_on="2023-02-01", method="simple", probability=0.3)
    assert set(simple.table["stratum"]) == {"all"}
    treated = (simple.table["arm"] == "treatment").sum()
    assert stats.binomtest(treated, len(people), 0.3).pvalue > 0.001


def test_shuffling_the_eligible_rows_changes_nothing():
    people = cohort()
    first = trial_allocation(people)
    for state in range(3):
        shuffled = trial_allocation(people.sample(frac=1, random_state=state))
        pd.testing.assert_frame_equal(first.table, shuffled.table)


def test_seed_matters_and_every_person_has_the_designed_chance():
    people = cohort()
    treated = np.mean(
        [trial_allocation(people, seed=s).table.set_index("person_id")["arm"].eq("treatment") for s in range(400)],
        axis=0,
    )
    young = people["age_band"].eq("11-17").to_numpy()
    # Each young person should be treated in about 20/60 of the draws, each older one 25/90.
    assert abs(treated[young].mean() - 20 / 60) < 0.01 and abs(treated[~young].mean() - 25 / 90) < 0.01
    assert stats.chisquare(treated[young] * 400, np.full(young.sum(), 400 * 20 / 60)).pvalue > 0.001


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"capacities": {"11-17": 61, "18-25": 25}}, "stratum 11-17 has 60 eligible people but a capacity of 61"),
        ({"capacities": {"11-17": 20, "18-25": 25, "26+": 3}}, "no eligible person is in: 26+"),
        ({"capacities": {"11-17": 20}}, "no capacity: 18-25"),
        ({"capacities": None}, "needs capacities"),
    ],
)
def test_capacity_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        allocate(cohort(), seed=1, randomised_on="2023-02-01", strata="age_band", **kwargs)


def test_duplicate_and_blank_ids_are_refused():
    people = cohort()
    people.loc[5, "person_id"] = people.loc[4, "person_id"]
    with pytest.raises(ValueError, match="repeats 1 person_id values: P0004"):
        trial_allocation(people)
    people.loc[5, "person_id"] = " "
    with pytest.raises(ValueError, match="blank person_id"):
        trial_allocation(people)


def test_a_later_wave_never_re_randomises_anyone():
    first = trial_allocation()
    grown = pd.concat([cohort(), cohort(10, 12, prefix="Q")], ignore_index=True)
    second = allocate(
        grown,
        seed=8,
        randomised_on="2023-08-01",
        strata="age_band",
        capacities={"11-17": 3, "18-25": 4},
        previous=first,
    )
    earlier = second.table[second.table["wave"] == 1].reset_index(drop=True)
    pd.testing.assert_frame_equal(earlier, first.table)
    new = second.table[second.table["wave"] == 2]
    assert set(new["person_id"]) == {f"Q{i:04d}" for i in range(22)}
    assert second.waves[1].already_allocated == 150


# --------------------------------------------------------------------------- files


def test_write_read_and_verify(tmp_path):
    people = cohort()
    allocation_file, seal_file = write_allocation(trial_allocation(people), tmp_path / "allocation.csv")
    assert seal_file.name == "allocation.seal.json"
    seal = json.loads(seal_file.read_text())
    assert seal["waves"][0]["seed"] == 7 and seal["waves"][0]["capacities"] == TRIAL
    assert seal["waves"][0]["eligible_ids_sha256"] == randomise.ids_sha256(people["person_id"])
    read = read_allocation(allocation_file)
    pd.testing.assert_frame_equal(read.table, trial_allocation(people).table)
    result = verify(allocation_file, people.sample(frac=1, random_state=1))
    assert result.ok, str(result)


def test_overwriting_is_refused_and_the_original_is_untouched(tmp_path):
    path = tmp_path / "allocation.csv"
    write_allocation(trial_allocation(), path)
    before = path.read_bytes(), randomise.seal_path(path).read_bytes()
    with pytest.raises(FileExistsError, match="add a wave: fdkit randomise --previous"):
        write_allocation(trial_allocation(seed=99), path)
    assert (path.read_bytes(), randomise.seal_path(path).read_bytes()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["allocation.csv", "allocation.seal.json"]


def test_altering_one_row_breaks_the_seal(tmp_path):
    people = cohort()
    path, _ = write_allocation(trial_allocation(people), tmp_path / "allocation.csv")
    lines = path.read_text().splitlines()
    row = next(i for i, line in enumerate(lines) if ",control," in line)
    lines[row] = lines[row].replace(",control,", ",treatment,")
    path.write_text("\n".join(lines) + "\n")
    result = verify(path, people)
    assert not result.ok
    person = lines[row].split(",")[0]
    assert any("has changed since it was sealed" in m for m in result.mismatches)
    assert any(m.startswith(f"{person}: arm is treatment, the seal gives control") for m in result.mismatches)


def test_a_different_eligible_list_is_reported(tmp_path):
    people = cohort()
    path, _ = write_allocation(trial_allocation(people), tmp_path / "allocation.csv")
    result = verify(path, people.iloc[1:])
    assert not result.ok
    assert any("eligible list is not the one sealed" in m for m in result.mismatches)


def test_waves_verify_with_one_eligible_list_each(tmp_path):
    first_list, second_list = cohort(), pd.concat([cohort(), cohort(10, 12, prefix="Q")], ignore_index=True)
    first = trial_allocation(first_list)
    both = allocate(
        second_list,
        seed=8,
        randomised_on="2023-08-01",
        strata="age_band",
        capacities={"11-17": 3, "18-25": 4},
        previous=first,
        sealed_at="2023-08-01T09:00:00+00:00",
    )
    path, _ = write_allocation(both, tmp_path / "allocation-wave2.csv")
    assert verify(path, [first_list, second_list]).ok
    assert not verify(path, [first_list]).ok


def test_a_broken_allocation_file_gets_a_data_error(tmp_path):
    path, _ = write_allocation(trial_allocation(), tmp_path / "allocation.csv")
    text = path.read_text().replace(",control,", ",placebo,", 1)
    broken = tmp_path / "broken.csv"
    broken.write_text(text)
    randomise.seal_path(broken).write_text(randomise.seal_path(path).read_text())
    with pytest.raises(randomise.FdkitDataError, match="placebo"):
        read_allocation(broken)
    lonely = tmp_path / "lonely.csv"
    lonely.write_text(path.read_text())
    with pytest.raises(randomise.FdkitDataError, match="seal of lonely.csv is missing"):
        read_allocation(lonely)
