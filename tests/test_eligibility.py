"""The trial's eligibility rule: its edges, exactly, and agreement with a brute-force reading."""

from __future__ import annotations

import calendar
from datetime import date, timedelta

import pandas as pd
import pytest
from builders import event, make_records, person
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fdkit import eligibility
from fdkit.eligibility import EligibilityRule, screen

R = "2023-02-01"


def eligible_ids(persons, events, reference=R, **kwargs):
    return screen(make_records(persons, events), reference, **kwargs).eligible["person_id"].tolist()


def knife_and_violence(pid, knife_date="2022-10-01", other_date="2022-06-01"):
    """A knife possession and a separate assault: the commonest way to qualify."""
    return [event(f"K-{pid}", pid, knife_date, code="10D/1"), event(f"V-{pid}", pid, other_date, code="8G")]


# ---------------------------------------------------------------------------- ages


@pytest.mark.parametrize(
    ("date_of_birth", "eligible"),
    [
        ("2012-02-02", False),  # turns 11 the day after the reference date: aged 10
        ("2012-02-01", True),  # 11th birthday on the reference date
        ("1997-02-02", True),  # 25, turns 26 tomorrow
        ("1997-02-01", False),  # 26th birthday on the reference date
    ],
)
def test_age_limits_are_whole_years_on_the_reference_date(date_of_birth, eligible):
    assert eligible_ids([person("A", date_of_birth)], knife_and_violence("A")) == (["A"] if eligible else [])


def test_placeholder_dates_of_birth_leave_the_screen_first_counted_as_unknown():
    persons = [person("A", "2005-01-01"), person("U", "1900-01-01"), person("V", "0001-01-01")]
    persons.append(person("O", "1950-01-01"))
    events = knife_and_violence("A") + knife_and_violence("U") + knife_and_violence("V")
    result = screen(make_records(persons, events), R)

    assert result.eligible["person_id"].tolist() == ["A"]
    funnel = result.funnel.set_index("step")
    assert funnel.loc["birth"].tolist() == ["date of birth on record", 2, 2, "date of birth unknown"]
    assert funnel.loc["age", ["remaining", "excluded"]].tolist() == [1, 1]  # O, aged 73, leaves by age alone
    assert (result.funnel["excluded"].sum(), result.funnel["remaining"].iloc[-1]) == (3, 1)
    plain = screen(make_records([persons[0], persons[3]], knife_and_violence("A")), R).funnel
    assert "birth" not in set(plain["step"])  # the step appears only when someone leaves by it


def test_leap_day_birthdays_turn_over_on_the_first_of_march():
    dob = pd.Series(pd.to_datetime(["2008-02-29"]))
    assert eligibility.age_on(dob, "2019-02-28").item() == 10
    assert eligibility.age_on(dob, "2019-03-01").item() == 11


def test_age_bands_label_the_strata():
    persons = [person("Y", "2010-06-01"), person("O", "2004-01-01")]
    events = knife_and_violence("Y") + knife_and_violence("O")
    result = screen(make_records(persons, events), R).eligible.set_index("person_id")
    assert result.loc["Y", "age_band"] == "11-17" and result.loc["Y", "age"] == 12
    assert result.loc["O", "age_band"] == "18-25" and result.loc["O", "age"] == 19


# ------------------------------------------------------------------------ windows


@pytest.mark.parametrize(
    ("knife_date", "eligible"),
    [("2022-02-01", True), ("2022-01-31", False), ("2023-01-31", True), ("2023-02-01", False), ("2023-02-02", False)],
)
def test_knife_window_is_the_twelve_months_before_the_reference_date(knife_date, eligible):
    # The day rule: windows include their first day and exclude their last, so the
    # reference day itself belongs to the follow-up (tests/test_day_rule.py), not here.
    got = eligible_ids([person("A", "2005-01-01")], knife_and_violence("A", knife_date=knife_date))
    assert got == (["A"] if eligible else [])


@pytest.mark.parametrize(("other_date", "eligible"), [("2021-02-01", True), ("2021-01-31", False)])
def test_other_offence_window_is_twenty_four_months(other_date, eligible):
    got = eligible_ids([person("A", "2005-01-01")], knife_and_violence("A", other_date=other_date))
    assert got == (["A"] if eligible else [])


def test_windows_use_calendar_months_clipped_to_month_end():
    # Twelve months before 2023-02-28 is 2022-02-28; 24 months before is 2021-02-28.
    events = knife_and_violence("A", knife_date="2022-02-28", other_date="2021-02-28")
    assert eligible_ids([person("A", "2005-01-01")], events, reference="2023-02-28") == ["A"]


def test_events_after_the_reference_date_are_ignored():
    events = [event("K", "A", "2022-10-01", code="10D/1"), event("V", "A", "2023-02-02", code="8G")]
    assert eligible_ids([person("A", "2005-01-01")], events) == []


# -------------------------------------------------------------------- what counts


def test_one_crime_cannot_satisfy_both_criteria():
    # A knife robbery is a knife offence and violent, but it is a single crime.
    events = [event("K", "A", "2022-10-01", code="34B", knife=True)]
    assert eligible_ids([person("A", "2005-01-01")], events) == []


def test_two_different_knife_crimes_qualify():
    events = [event("K1", "A", "2022-10-01", code="10D/1"), event("K2", "A", "2022-11-01", code="10D/2")]
    assert eligible_ids([person("A", "2005-01-01")], events) == ["A"]


def test_knife_flag_makes_a_violent_crime_a_knife_offence():
    events = [event("W", "A", "2022-10-01", code="5A", knife=True), event("S", "A", "2021-06-01", code="20A")]
    assert eligible_ids([person("A", "2005-01-01")], events) == ["A"]


def test_non_violent_second_crime_does_not_qualify():
    events = [
        event("K", "A", "2022-10-01", code="10D/1"),
        event("T", "A", "2022-09-01", code="46"),
        event("H", "A", "2022-08-01", code="8L"),
    ]
    assert eligible_ids([person("A", "2005-01-01")], events) == []


def test_victim_role_does_not_count():
    events = [event("K", "A", "2022-10-01", code="10D/1"), event("V", "A", "2022-06-01", code="8G", role="victim")]
    assert eligible_ids([person("A", "2005-01-01")], events) == []


def test_police_initiated_events_count():
    events = [
        event("K", "A", "2022-10-01", code="10D/1", police_initiated=True),
        event("V", "A", "2022-06-01", code="8G"),
    ]
    assert eligible_ids([person("A", "2005-01-01")], events) == ["A"]


def test_a_crime_counts_once_even_when_the_person_is_also_its_victim():
    events = [
        event("F", "A", "2022-10-01", code="8G", knife=True),
        event("F", "A", "2022-10-01", code="8G", knife=True, role="victim"),
    ]
    result = screen(make_records([person("A", "2005-01-01")], events), R)
    assert result.eligible.empty


def test_the_rule_is_data():
    persons = [person("A", "2005-01-01")]
    events = knife_and_violence("A", knife_date="2021-12-01")  # 14 months before R
    assert eligible_ids(persons, events) == []
    assert eligible_ids(persons, events, rule=EligibilityRule(index_window_months=18)) == ["A"]
    with pytest.raises(ValueError, match="age_bands"):
        EligibilityRule(max_age=30)


# ------------------------------------------------------------------------- funnel


def test_funnel_counts_every_person_and_exclusion():
    persons = [
        person("A", "2005-01-01"),
        person("B", "2005-01-01"),
        person("C", "1980-01-01"),
        person("D", "2005-01-01"),
        person("E", "2005-01-01"),
    ]
    events = (
        knife_and_violence("A")
        + knife_and_violence("B")
        + knife_and_violence("C")
        + [event("K-D", "D", "2022-10-01", code="10D/1")]
        + knife_and_violence("E")
    )
    exclusions = pd.DataFrame({"person_id": ["B", "C"], "reason": ["in custody", "deceased"]})
    result = screen(make_records(persons, events), R, exclusions=exclusions)
    funnel = result.funnel.set_index("description")
    assert funnel["remaining"].tolist() == [5, 4, 4, 3, 2]
    assert funnel["excluded"].tolist() == [0, 1, 0, 1, 1]
    assert funnel.iloc[-1]["reason"] == "in custody"  # C was out on age, so 'deceased' excludes no one
    assert result.eligible["person_id"].tolist() == ["A", "E"]


def test_unknown_exclusion_reason_is_an_error():
    with pytest.raises(ValueError, match="exclusion reasons"):
        screen(
            make_records([person("A", "2005-01-01")], knife_and_violence("A")),
            R,
            exclusions=pd.DataFrame({"person_id": ["A"], "reason": ["on holiday"]}),
        )


# ------------------------------------------------------- brute force, by hypothesis


def months_before(day: date, months: int) -> date:
    """Calendar months back, clipping to the month's end: written independently of fdkit."""
    year, month = divmod(day.year * 12 + day.month - 1 - months, 12)
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


KNIFE_CODES, VIOLENT_CODES, SEXUAL_CODES = {"10D/1", "10D/2"}, {"8G", "5A", "34B", "105A"}, {"20A"}


def brute_force(persons, events, reference: date) -> list[str]:
    chosen = []
    for p in persons:
        dob = date.fromisoformat(p["date_of_birth"])
        age = reference.year - dob.year - ((reference.month, reference.day) < (dob.month, dob.day))
        if not 11 <= age <= 25:
            continue
        mine = [
            e
            for e in events
            if e["person_id"] == p["person_id"]
            and e["role"] == "suspect"
            and date.fromisoformat(e["offence_date"]) < reference
        ]
        knife = {
            e["crime_id"]
            for e in mine
            if (e["offence_code"] in KNIFE_CODES or e["knife"])
            and date.fromisoformat(e["offence_date"]) >= months_before(reference, 12)
        }
        other = {
            e["crime_id"]
            for e in mine
            if (e["offence_code"] in KNIFE_CODES | VIOLENT_CODES | SEXUAL_CODES or e["knife"])
            and date.fromisoformat(e["offence_date"]) >= months_before(reference, 24)
        }
        if any(a != b for a in knife for b in other):
            chosen.append(p["person_id"])
    return sorted(chosen)


REFERENCE = date(2023, 2, 28)
# Dates cluster around the window edges so the boundaries are exercised often.
edges = [months_before(REFERENCE, m) for m in (0, 12, 24)]
near_edge = st.sampled_from(edges).flatmap(
    lambda edge: st.integers(-2, 2).map(lambda shift: (edge + timedelta(days=shift)).isoformat())
)
any_date = st.dates(date(2020, 6, 1), date(2023, 6, 1)).map(date.isoformat)
birthdays = st.sampled_from([11, 25, 26, 10, 18]).flatmap(
    lambda age: st.integers(-2, 2).map(
        lambda shift: (date(REFERENCE.year - age, REFERENCE.month, 28) + timedelta(days=shift)).isoformat()
    )
)


@st.composite
def records_strategy(draw):
    n_people = draw(st.integers(1, 4))
    persons = [person(f"P{i}", draw(birthdays)) for i in range(n_people)]
    events, used = [], set()
    for _ in range(draw(st.integers(0, 12))):
        pid = f"P{draw(st.integers(0, n_people - 1))}"
        crime = f"C{draw(st.integers(0, 6))}"  # few crime ids, so crimes are shared across rows
        role = draw(st.sampled_from(["suspect", "suspect", "victim"]))
        if (crime, pid, role) in used:
            continue
        used.add((crime, pid, role))
        code = draw(st.sampled_from(sorted(KNIFE_CODES | VIOLENT_CODES | SEXUAL_CODES | {"46", "8L", "92E"})))
        events.append(
            event(crime, pid, draw(st.one_of(near_edge, any_date)), code=code, role=role, knife=draw(st.booleans()))
        )
    return persons, events


@pytest.mark.slow  # 300 generated record sets, each screened twice
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records_strategy())
def test_screen_agrees_with_brute_force(data):
    persons, events = data
    got = screen(make_records(persons, events), REFERENCE).eligible["person_id"].tolist()
    assert got == brute_force(persons, events, REFERENCE)


def test_codes_missing_from_the_lookup_stop_the_screen_instead_of_counting_as_nothing():
    records = make_records(
        [person("A", "2005-01-01")], knife_and_violence("A") + [event("X", "A", "2022-07-01", code="ZZ9")]
    )
    with pytest.raises(ValueError, match="ZZ9"):
        screen(records, R)
