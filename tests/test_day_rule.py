"""One definition of the day: no crime is counted both for eligibility and as an outcome.

The rule (fdkit.eligibility, fdkit.outcomes, docs/protocol-template.md): every window
includes its first day and excludes its last. Eligibility looks at the months *before* the
reference date; the baseline at the months before randomisation; the follow-up starts *on*
the randomisation day and runs up to, not including, the same date 12 months later.
"""

from __future__ import annotations

import pandas as pd
import pytest
from builders import event, make_records, person

from fdkit import eligibility, outcomes
from fdkit.randomise import Allocation

R = "2023-02-01"


def _frame(records):
    table = pd.DataFrame(
        {"person_id": ["A"], "stratum": "all", "arm": "treatment", "wave": 1, "randomised_on": pd.Timestamp(R)}
    )
    return outcomes.build_frame(records, Allocation(table=table), allow_incomplete=True).iloc[0]


@pytest.mark.parametrize(
    ("day", "eligible", "baseline", "follow_up"),
    [
        ("2021-01-31", False, 0, 0),  # 24 months and a day before: outside everything
        ("2021-02-01", True, 1, 0),  # first day of the 24-month window and the baseline
        ("2023-01-31", True, 1, 0),  # the day before randomisation: last day of both
        ("2023-02-01", False, 0, 1),  # the randomisation day: follow-up only
        ("2024-01-31", False, 0, 1),  # last day of the 12-month follow-up
        ("2024-02-01", False, 0, 0),  # the anniversary: the next window's first day
    ],
)
def test_a_crime_on_each_boundary_day_counts_on_one_side_only(day, eligible, baseline, follow_up):
    # A knife crime three months before qualifies A with a second violent crime on ``day``.
    events = [event("K", "A", "2022-11-01", code="10D/1"), event("V", "A", day, code="8G")]
    records = make_records([person("A", "2005-01-01")], events)
    screened = eligibility.screen(records, R).eligible["person_id"].tolist()
    assert screened == (["A"] if eligible else [])
    row = _frame(records)
    assert row["violence_suspect_baseline"] == baseline
    assert row["violence_suspect"] == follow_up
    assert not (eligible and follow_up)


def test_the_index_knife_crime_on_the_reference_day_does_not_qualify():
    events = [event("K", "A", R, code="10D/1"), event("V", "A", "2022-06-01", code="8G")]
    records = make_records([person("A", "2005-01-01")], events)
    assert eligibility.screen(records, R).eligible.empty
    assert _frame(records)["knife_suspect"] == 1


def test_police_initiated_knife_crimes_count_only_in_knife_suspect_all():
    events = [
        event("P", "A", "2023-03-01", code="10D/1", police_initiated=True),  # found by stop and search
        event("S", "A", "2023-04-01", code="8G", knife=True),  # reported stabbing
    ]
    row = _frame(make_records([person("A", "2005-01-01")], events))
    assert row["knife_suspect"] == 1
    assert row["knife_suspect_all"] == 2


def test_the_sensitivity_outcome_is_outside_the_multiplicity_family():
    from fdkit import analysis

    table = pd.DataFrame(
        {
            "outcome": ["harm_suspect", "knife_suspect", "knife_suspect_all"],
            "method": "ratio_of_means",
            "subgroup": "all",
            "p_value": [0.01, 0.04, 0.02],
        }
    )
    adjusted = analysis.adjust_p_values(table).set_index("outcome")
    assert adjusted.loc["knife_suspect", "p_holm"] == pytest.approx(0.04)  # two tests, not three
    assert adjusted.loc["harm_suspect", "p_holm"] == pytest.approx(0.02)
    assert pd.isna(adjusted.loc["knife_suspect_all", "p_holm"])
