"""The balance table: standardised mean differences against hand calculation."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from builders import event, make_records, person

from fdkit import balance, eligibility
from fdkit.randomise import Allocation


def test_smd_by_hand():
    treated, control = pd.Series([1.0, 2.0, 3.0]), pd.Series([2.0, 4.0, 6.0, 8.0])
    pooled = math.sqrt((1.0 + np.var([2, 4, 6, 8], ddof=1)) / 2)
    assert balance.smd(treated, control) == pytest.approx((2 - 5) / pooled)
    # binary: 2/3 v 1/4, variances p(1-p)
    t, c = pd.Series([1, 1, 0]), pd.Series([1, 0, 0, 0])
    expected = (2 / 3 - 1 / 4) / math.sqrt((2 / 9 + 3 / 16) / 2)
    assert balance.smd(t, c, binary=True) == pytest.approx(expected)
    assert balance.smd(pd.Series([1.0, 1.0]), pd.Series([1.0, 1.0])) == 0.0
    assert balance.smd(pd.Series([2.0, 2.0]), pd.Series([1.0, 1.0])) == np.inf


def test_age_on_takes_a_date_per_person():
    dob = pd.Series(pd.to_datetime(["2010-06-15", "2010-06-15"]))
    references = pd.Series(pd.to_datetime(["2023-06-14", "2023-06-15"]))
    assert eligibility.age_on(dob, references).tolist() == [12, 13]


def test_balance_table_counts_prior_crimes_and_demographics():
    persons = [
        person("T1", "2005-02-01", "M"),
        person("T2", "2008-02-01", "F"),
        person("C1", "2005-02-01", "M"),
        person("C2", "2001-02-01", "M"),
    ]
    events = [
        event("a", "T1", "2022-05-01", code="10D/1"),  # knife, in the 24 months before
        event("b", "T1", "2020-05-01", code="10D/1"),  # too early: before the baseline window
        event("c", "C1", "2022-05-01", code="8G"),  # violent
        event("d", "C2", "2022-05-01", code="8G", knife=True),  # violent and knife
    ]
    records = make_records(persons, events)
    table = pd.DataFrame(
        {
            "person_id": ["T1", "T2", "C1", "C2"],
            "stratum": ["all"] * 4,
            "arm": ["treatment", "treatment", "control", "control"],
            "wave": 1,
            "randomised_on": pd.Timestamp("2023-02-01"),
        }
    )
    result = balance.balance_table(records, Allocation(table=table)).set_index("characteristic")
    assert result.loc["age (years)", "mean_treatment"] == pytest.approx((18 + 15) / 2)
    assert result.loc["age (years)", "mean_control"] == pytest.approx((18 + 22) / 2)
    assert result.loc["male", "mean_treatment"] == 0.5 and result.loc["male", "mean_control"] == 1.0
    knife = result.loc["knife offences as a suspect, prior 24 months"]
    assert (knife["mean_treatment"], knife["mean_control"]) == (0.5, 0.5)
    violent = result.loc["violent crimes as a suspect, prior 24 months"]
    assert (violent["mean_treatment"], violent["mean_control"]) == (0.0, 1.0)
    assert violent["smd"] == -np.inf  # neither arm varies, and they differ


def test_a_placeholder_date_of_birth_gives_an_unknown_age_not_one_of_123():
    records = make_records(
        [person("A", "2005-01-01"), person("U", "1900-01-01"), person("B", "2006-01-01")],
        [event("C1", "A", "2022-01-01"), event("C2", "U", "2022-01-01"), event("C3", "B", "2022-01-01")],
    )
    table = pd.DataFrame(
        {"person_id": ["A", "U", "B"], "arm": ["treatment", "treatment", "control"], "stratum": "all", "wave": 1,
         "randomised_on": pd.to_datetime(["2023-02-01"] * 3)}
    )  # fmt: skip
    frame = balance.baseline_frame(records, Allocation(table=table, waves=()))
    ages = frame.set_index("person_id")["age"]
    assert ages["A"] == 18 and np.isnan(ages["U"]) and ages["B"] == 17
