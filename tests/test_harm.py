"""Harm weights (illustrative, custom, official CCHI workbook) and harm scoring."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from builders import event, make_records, person
from openpyxl import Workbook

from fdkit import harm, offences
from fdkit.records import FdkitDataError

# --- the illustrative table ---------------------------------------------------------------


@pytest.fixture(scope="module")
def table():
    return harm.illustrative_weights()


def weight_of(table, code):
    return float(table.loc[table["offence_code"] == code, "weight"].iloc[0])


def test_every_lookup_code_has_exactly_one_weight_and_there_are_no_others(table):
    assert sorted(table["offence_code"]) == sorted(offences.lookup()["offence_code"])
    assert table["offence_code"].is_unique
    assert table["weight"].dtype == float and (table["weight"] >= 0).all()


def test_murder_is_5475_days_the_top_of_the_scale(table):
    assert weight_of(table, "1") == 5475
    assert table["weight"].max() == 5475
    assert (table["weight"] < 5475).sum() == len(table) - 1


@pytest.mark.parametrize(
    "graver, lesser",
    [
        ("1", "19C"),  # murder far above rape
        ("19C", "34B"),  # rape above robbery
        ("19D", "19C"),  # rape of a child above rape of an adult
        ("5A", "34B"),  # s18 above robbery
        ("5A", "8F"),
        ("8F", "8G"),  # s20 above ABH
        ("34B", "8G"),  # robbery above ABH
        ("8G", "28E"),  # ABH above burglary
        ("28E", "30C"),  # burglary of a home above business burglary
        ("28E", "49"),  # burglary above theft
        ("8G", "105A"),  # injury above no injury
        ("10D/2", "10D/1"),  # threatening with a knife above carrying one
        ("10D/1", "10C"),  # a knife above other weapons
        ("92A", "92D"),  # supply above possession
        ("92D", "92E"),  # Class A above cannabis
        ("56A", "56B"),
        ("56B", "58A"),
    ],
)
def test_the_relative_order_is_sensible(table, graver, lesser):
    assert weight_of(table, graver) > weight_of(table, lesser)


def test_murder_is_at_least_twice_any_sexual_or_robbery_weight(table):
    others = table.loc[table["offence_code"].isin(["17A", "19C", "19D", "20A", "34A", "34B"]), "weight"]
    assert weight_of(table, "1") >= 1.8 * others.max()


def test_every_row_has_a_basis_and_a_source_that_disowns_the_official_cchi(table):
    assert set(table["basis"]) <= set(harm.BASES)
    assert table["source"].str.len().gt(60).all()
    assert table["source"].str.contains("not the official Cambridge CCHI").all()


def test_cited_rows_name_a_guideline_year_and_their_verified_values(table):
    cited = table[table["basis"] == "sentencing starting point"]
    assert set(cited["offence_code"]) == {"1", "5A", "19C", "19D", "34A", "34B"}
    assert cited["source"].str.contains(r"\b(?:19|20)\d\d\b", regex=True).all()  # a year
    assert weight_of(table, "5A") == 12 * 365  # s18 category 1, 2011 guideline
    assert "category 1" in table.set_index("offence_code").loc["5A", "source"]
    assert weight_of(table, "10D/2") == 182.5  # statutory minimum of 6 months
    assert table.set_index("offence_code").loc["10D/2", "basis"] == "illustrative"


def test_illustrative_rows_give_their_reasoning(table):
    illustrative = table[table["basis"] == "illustrative"]
    assert len(illustrative) > 0
    assert illustrative["source"].str.contains(r"set at|taken as|assumed", case=False, regex=True).all()


def test_the_label_says_it_is_not_the_official_cchi():
    assert "not the official Cambridge CCHI" in harm.ILLUSTRATIVE_LABEL
    assert "not the official Cambridge CCHI" in harm.__doc__


def test_the_shipped_table_is_returned_as_a_copy(table):
    first = harm.illustrative_weights()
    first.loc[0, "weight"] = -1
    assert harm.illustrative_weights().loc[0, "weight"] >= 0


# --- a unit's own table --------------------------------------------------------------------


def write(tmp_path, text, name="weights.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_read_weights_keeps_extra_columns_and_reads_weights_as_numbers(tmp_path):
    path = write(tmp_path, "offence_code,weight,note\n8G,273,ours\n46, 2.5 ,\n")
    weights = harm.read_weights(path)
    assert weights["weight"].tolist() == [273.0, 2.5]
    assert weights["note"].tolist() == ["ours", ""]


def test_blank_weights_are_reported_with_file_column_and_line(tmp_path):
    path = write(tmp_path, "offence_code,weight\n8G,273\n46,\n")
    with pytest.raises(FdkitDataError) as caught:
        harm.read_weights(path)
    text = str(caught.value)
    assert "weights.csv, column weight, line 3: blank values" in text


def test_negative_weights_are_reported_with_their_values(tmp_path):
    path = write(tmp_path, "offence_code,weight\n8G,273\n46,-3\n49,-0.5\n")
    with pytest.raises(FdkitDataError) as caught:
        harm.read_weights(path)
    (problem,) = caught.value.problems
    assert (problem.file, problem.column, problem.lines) == ("weights.csv", "weight", (3, 4))
    assert problem.values == ("-3", "-0.5")
    assert "negative weights: '-3', '-0.5'" in problem.message


def test_weights_that_are_not_numbers_are_reported_with_their_values(tmp_path):
    path = write(tmp_path, "offence_code,weight\n8G,ten\n46,2.5\n49,inf\n")
    with pytest.raises(FdkitDataError) as caught:
        harm.read_weights(path)
    (problem,) = caught.value.problems
    assert (problem.column, problem.lines, problem.values) == ("weight", (2, 4), ("ten", "inf"))
    assert "not numbers: 'ten', 'inf'" in problem.message


def test_repeated_codes_are_reported_at_every_line(tmp_path):
    path = write(tmp_path, "offence_code,weight\n8G,273\n46,2.5\n8G,300\n")
    with pytest.raises(FdkitDataError) as caught:
        harm.read_weights(path)
    (problem,) = caught.value.problems
    assert (problem.column, problem.lines) == ("offence_code", (2, 4))
    assert "repeated values: '8G'" in problem.message


def test_a_missing_weight_column_is_reported(tmp_path):
    path = write(tmp_path, "offence_code,days\n8G,273\n")
    with pytest.raises(FdkitDataError, match="missing required column weight"):
        harm.read_weights(path)


def test_every_problem_in_a_weight_file_is_reported_at_once_at_true_file_lines(tmp_path):
    path = write(tmp_path, 'offence_code,weight,note\n8G,-1,"two\nlines"\n\n8G,x,\n46,,\n')
    with pytest.raises(FdkitDataError) as caught:
        harm.read_weights(path)
    by_message = {problem.message.split(":")[0]: problem.lines for problem in caught.value.problems}
    assert by_message["blank values (every row needs a weight)"] == (6,)
    assert by_message["repeated values"] == (2, 5)
    assert by_message["negative weights"] == (2,)
    assert by_message["weights that are not numbers"] == (5,)


def test_an_in_memory_weight_table_is_checked_too():
    bad = pd.DataFrame({"offence_code": ["8G", "8G"], "weight": [1.0, -2.0]})
    with pytest.raises(FdkitDataError) as caught:
        harm.weigh(pd.DataFrame({"offence_code": ["8G"]}), bad)
    text = str(caught.value)
    assert "weights, column weight, row 1: negative weights: '-2.0'" in text
    assert "repeated codes: '8G'" in text


# --- the official CCHI workbook ------------------------------------------------------------

HEADERS_2021 = [
    "Home Office classification",
    "Full offence title",
    "CCHI score",
    "If no sentencing data available what similar offence was used",
]


def make_workbook(path, sheet="CCHI 2021 values sheet", headers=HEADERS_2021, rows=None, extra_sheets=("Read me",)):
    book = Workbook()
    book.active.title = extra_sheets[0] if extra_sheets else sheet
    for name in extra_sheets[1:]:
        book.create_sheet(name)
    values = book.create_sheet(sheet) if extra_sheets else book.active
    values.append(["Cambridge Crime Harm Index"])  # title rows above the header
    values.append(["Values in days of imprisonment"])
    values.append([])
    values.append(list(headers))
    for row in rows if rows is not None else WORKBOOK_ROWS:
        values.append(list(row))
    book.save(path)
    return path


WORKBOOK_ROWS = [
    ("001/00", "Murder", 5475, None),
    ("Violence with injury", None, None, None),  # a section heading: no code
    ("008/06", "Assault with injury", 200, None),
    ("058/04", "Criminal damage to a vehicle", 2.5, "Criminal damage to other property"),
    ("010/03", "Possession of article with blade or point", 120, None),
    ("010/04", "Threatening with a blade or point", 182, None),
]


def test_the_2021_layout_is_read_below_its_title_rows(tmp_path):
    path = make_workbook(tmp_path / "cchi.xlsx")
    table = harm.read_cchi_workbook(path)
    assert table["offence_code"].tolist() == ["001/00", "008/06", "058/04", "010/03", "010/04"]
    assert table["weight"].tolist() == [5475.0, 200.0, 2.5, 120.0, 182.0]
    assert table.loc[2, "title"] == "Criminal damage to a vehicle"
    assert table.loc[2, "similar_offence"] == "Criminal damage to other property"
    assert pd.isna(table.loc[0, "similar_offence"])
    assert table.attrs["skipped_rows"] == [6]  # the section heading, as Excel numbers rows


def test_the_2026_sheet_is_found_and_plausible_header_variants_are_recognised(tmp_path):
    headers = ["HO code", "Offence title", "CCHI 2026 score (days)"]
    rows = [(row[0], row[1], row[2]) for row in WORKBOOK_ROWS]
    path = make_workbook(tmp_path / "cchi.xlsx", sheet="CCHI 2026 values sheet", headers=headers, rows=rows)
    table = harm.read_cchi_workbook(path)
    assert table.set_index("offence_code").loc["008/06", "weight"] == 200.0
    assert table["similar_offence"].isna().all()


def test_columns_can_be_named_when_the_layout_is_not_recognised(tmp_path):
    headers = ["Ref", "Name", "Days"]
    rows = [(row[0], row[1], row[2]) for row in WORKBOOK_ROWS]
    path = make_workbook(tmp_path / "cchi.xlsx", sheet="Values", headers=headers, rows=rows)
    with pytest.raises(FdkitDataError, match="no header row"):
        harm.read_cchi_workbook(path, sheet="Values")
    table = harm.read_cchi_workbook(path, sheet="Values", columns={"code": "Ref", "score": "Days", "title": "Name"})
    assert table["weight"].sum() == 5475 + 200 + 2.5 + 120 + 182


def test_a_workbook_without_a_values_sheet_names_the_sheets_it_has(tmp_path):
    path = make_workbook(tmp_path / "cchi.xlsx", sheet="Scores")
    with pytest.raises(FdkitDataError) as caught:
        harm.read_cchi_workbook(path)
    assert "no sheet named like 'CCHI 2021 values sheet' (sheets: 'Read me', 'Scores')" in str(caught.value)


def test_two_values_sheets_need_the_sheet_named(tmp_path):
    path = make_workbook(tmp_path / "cchi.xlsx", extra_sheets=("CCHI 2026 values sheet",))
    with pytest.raises(FdkitDataError, match="several sheets"):
        harm.read_cchi_workbook(path)
    assert len(harm.read_cchi_workbook(path, sheet="CCHI 2021 values sheet")) == 5


def test_bad_scores_and_repeated_codes_are_reported_by_sheet_row(tmp_path):
    rows = [("001/00", "Murder", 5475, None), ("008/06", "Assault", "n/a", None), ("008/06", "Again", -4, None)]
    path = make_workbook(tmp_path / "cchi.xlsx", rows=rows)
    with pytest.raises(FdkitDataError) as caught:
        harm.read_cchi_workbook(path)
    text = str(caught.value)
    assert (
        "cchi.xlsx [CCHI 2021 values sheet], column CCHI score, sheet row 6: CCHI scores that are not numbers: 'n/a'"
        in text
    )
    assert "sheet row 7: negative CCHI scores: '-4'" in text
    assert "column Home Office classification, sheet rows 6, 7: repeated" in text


def test_a_file_that_is_not_a_workbook_is_a_data_error(tmp_path):
    path = write(tmp_path, "not a workbook", name="cchi.xlsx")
    with pytest.raises(FdkitDataError, match="not a readable .xlsx workbook"):
        harm.read_cchi_workbook(path)


@pytest.mark.parametrize(
    "code, expected",
    [("058/04", "58"), ("58A", "58"), ("10D/1", "10"), ("4/1", "4"), ("105A", "105"), ("001/00", "1"), ("8G", "8")],
)
def test_offence_class_is_the_part_both_code_systems_share(code, expected):
    assert harm.offence_class(code) == expected


def test_candidate_mapping_pairs_kit_codes_with_official_codes_of_their_class(tmp_path):
    official = harm.read_cchi_workbook(make_workbook(tmp_path / "cchi.xlsx"))
    candidates = harm.candidate_mapping(official)
    knives = candidates[candidates["offence_code"] == "10D/1"]
    assert sorted(knives["official_code"]) == ["010/03", "010/04"]
    assert candidates.loc[candidates["offence_code"] == "92A", "official_code"].isna().all()
    assert set(candidates["offence_code"]) == set(offences.lookup()["offence_code"])


def test_a_mapping_keys_the_official_table_by_kit_codes(tmp_path):
    workbook = make_workbook(tmp_path / "cchi.xlsx")
    mapping = write(
        tmp_path, "official_code,offence_code\n001/00,1\n008/06,8G\n010/03,10D/1\n010/04,10D/2\n", "map.csv"
    )
    table = harm.read_cchi_workbook(workbook, mapping=mapping)
    assert table["offence_code"].tolist() == ["1", "8G", "10D/1", "10D/2"]
    assert table["weight"].tolist() == [5475.0, 200.0, 120.0, 182.0]
    assert table["official_code"].tolist() == ["001/00", "008/06", "010/03", "010/04"]


def test_a_mapping_with_unknown_official_codes_or_a_kit_code_twice_is_refused(tmp_path):
    official = harm.read_cchi_workbook(make_workbook(tmp_path / "cchi.xlsx"))
    mapping = pd.DataFrame({"official_code": ["001/00", "999/99", "008/06"], "offence_code": ["1", "8G", "8G"]})
    with pytest.raises(FdkitDataError) as caught:
        harm.apply_code_mapping(official, mapping)
    text = str(caught.value)
    assert "official codes not in the CCHI table: '999/99'" in text
    assert "kit codes mapped more than once: '8G'" in text


# --- scoring -------------------------------------------------------------------------------

WEIGHTS = pd.DataFrame({"offence_code": ["8G", "34B", "10D/1", "105A", "1"], "weight": [10.0, 100.0, 1.0, 0.5, 1000.0]})


@pytest.fixture
def events():
    """A hand-worked example; the expected harm of each case is worked out in its test."""
    persons = [person("A", "2005-01-01"), person("B", "2006-01-01"), person("C", "2007-01-01")]
    rows = [
        event("C1", "A", "2023-01-01", "8G"),  # on the start day: in
        event("C2", "A", "2023-06-30", "34B"),
        event("C2", "A", "2023-06-30", "34B"),  # the same crime recorded twice: once
        event("C3", "A", "2024-01-01", "8G"),  # on the end day: out
        event("C4", "A", "2023-03-01", "10D/1", police_initiated=True),
        event("C5", "A", "2023-03-01", "34B", role="victim"),
        event("C6", "B", "2022-12-31", "8G"),  # the day before the start: out
        event("C7", "B", "2023-05-05", "105A"),
        event("C8", "B", "2023-05-05", "8G"),  # one crime, two codes: the heavier counts
        event("C8", "B", "2023-05-05", "34B"),
    ]
    return make_records(persons, rows).events


def test_harm_sums_weights_over_a_window_that_includes_its_start_and_excludes_its_end(events):
    result = harm.score(events, WEIGHTS, start="2023-01-01", end="2024-01-01")
    # A: C1 10 + C2 100 (once); C3 on the end day and police-initiated C4 are out.
    # B: C7 0.5 + C8 at its heavier code 100; C6 before the start is out. C has no events.
    assert result.to_dict() == {"A": 110.0, "B": 100.5}
    assert result.name == "harm" and result.index.name == "person_id"


def test_police_initiated_crimes_count_only_when_asked(events):
    result = harm.score(events, WEIGHTS, start="2023-01-01", end="2024-01-01", include_police_initiated=True)
    assert result["A"] == 111.0


def test_harm_as_a_victim(events):
    result = harm.score(events, WEIGHTS, role="victim", start="2023-01-01", end="2024-01-01", people=["A", "B", "C"])
    assert result.tolist() == [100.0, 0.0, 0.0]


def test_open_windows_count_everything_in_the_role(events):
    result = harm.score(events, WEIGHTS)
    assert result.to_dict() == {"A": 120.0, "B": 110.5}  # adds C3 for A and C6 for B


def test_role_none_counts_a_crime_once_across_roles(events):
    assert harm.score(events, WEIGHTS, role=None)["A"] == 220.0


def test_people_sets_the_rows_and_fills_zeros(events):
    result = harm.score(events, WEIGHTS, start="2023-01-01", end="2024-01-01", people=["C", "A"])
    assert result.to_dict() == {"C": 0.0, "A": 110.0}


def test_per_person_windows(events):
    start = pd.Series(pd.to_datetime(["2023-03-01", "2023-01-01"]), index=["A", "B"])
    end = pd.Series(pd.to_datetime(["2024-01-02", "2023-05-05"]), index=["A", "B"])
    result = harm.score(events, WEIGHTS, start=start, end=end)
    # A: from 1 March: C2 100 + C3 on 1 January 2024 10; C1 is before A's start.
    # B: C7 and C8 fall on B's end day, so nothing counts.
    assert result.to_dict() == {"A": 110.0, "B": 0.0}


def test_per_person_windows_leave_out_people_without_a_window(events):
    start = pd.Series(pd.to_datetime(["2023-01-01"]), index=["B"])
    result = harm.score(events, WEIGHTS, start=start, end="2024-01-01")
    assert result.to_dict() == {"B": 100.5}


def test_a_per_person_window_with_a_missing_date_is_an_error(events):
    start = pd.Series(pd.to_datetime(["2023-01-01", None]), index=["A", "B"])
    with pytest.raises(FdkitDataError, match="people with no start date: 'B'"):
        harm.score(events, WEIGHTS, start=start)


def test_codes_without_a_weight_are_an_error_listing_codes_and_counts(events):
    weights = WEIGHTS[WEIGHTS["offence_code"] != "34B"]
    with pytest.raises(FdkitDataError) as caught:
        harm.score(events, weights, start="2023-01-01", end="2024-01-01")
    (problem,) = caught.value.problems
    assert "offence codes with no harm weight: '34B' (3 events)" in problem.message
    assert problem.lines == (1, 2, 9)  # rows of events, as events.iloc counts them
    assert problem.column == "offence_code" and problem.values == ("34B",)


def test_codes_outside_the_window_or_role_need_no_weight(events):
    weights = WEIGHTS[WEIGHTS["offence_code"] != "34B"]
    result = harm.score(events, weights, start="2023-07-01", end="2024-01-01", people=["A"])
    assert result.tolist() == [0.0]


def test_the_zero_policy_weighs_missing_codes_0_and_reports_them(events):
    weights = WEIGHTS[WEIGHTS["offence_code"] != "34B"]
    with pytest.warns(harm.UnweightedCodesWarning, match="'34B' \\(3 events\\)"):
        result = harm.score(events, weights, start="2023-01-01", end="2024-01-01", missing="zero")
    assert result.to_dict() == {"A": 10.0, "B": 10.5}
    assert result.attrs["unweighted"] == {"34B": 3}


def test_an_unknown_policy_or_role_is_refused(events):
    with pytest.raises(ValueError, match="missing must be one of"):
        harm.score(events, WEIGHTS, missing="ignore")
    with pytest.raises(ValueError, match="role must be"):
        harm.score(events, WEIGHTS, role="witness")


def test_weigh_attaches_each_events_weight_and_leaves_the_input_alone(events):
    weighed = harm.weigh(events, WEIGHTS)
    assert weighed["harm"].tolist() == [10, 100, 100, 10, 1, 100, 10, 0.5, 10, 100]
    assert "harm" not in events
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert harm.weigh(events, WEIGHTS).attrs["unweighted"] == {}


def test_scoring_with_the_illustrative_table_covers_every_lookup_code(events):
    result = harm.score(events, harm.illustrative_weights(), start="2023-01-01", end="2024-01-01")
    assert result["A"] == 273 + 365  # ABH and street robbery


def test_the_result_does_not_depend_on_row_order(events):
    shuffled = events.sample(frac=1, random_state=3)
    pd.testing.assert_series_equal(harm.score(shuffled, WEIGHTS), harm.score(events, WEIGHTS))


def test_vectorised_scoring_agrees_with_a_plain_loop():
    rng = np.random.default_rng(7)
    n = 2_000
    events = pd.DataFrame(
        {
            "crime_id": rng.integers(0, 600, n).astype(str),
            "person_id": rng.choice(list("ABCDEFGH"), n),
            "offence_date": pd.Timestamp("2022-01-01") + pd.to_timedelta(rng.integers(0, 900, n), unit="D"),
            "role": rng.choice(["suspect", "victim"], n),
            "offence_code": rng.choice(WEIGHTS["offence_code"].to_numpy(), n),
            "police_initiated": rng.random(n) < 0.2,
        }
    )
    start = pd.Series(
        pd.Timestamp("2022-06-01") + pd.to_timedelta(rng.integers(0, 200, 8), unit="D"), index=list("ABCDEFGH")
    )
    end = start + pd.DateOffset(months=12)
    result = harm.score(events, WEIGHTS, start=start, end=end)
    weight = dict(zip(WEIGHTS["offence_code"], WEIGHTS["weight"]))
    expected = {}
    for who in "ABCDEFGH":
        mine = events[
            (events["person_id"] == who)
            & (events["role"] == "suspect")
            & ~events["police_initiated"]
            & (events["offence_date"] >= start[who])
            & (events["offence_date"] < end[who])
        ]
        expected[who] = sum(
            max(weight[code] for code in crime["offence_code"]) for _, crime in mine.groupby("crime_id")
        )
    assert result.to_dict() == pytest.approx(expected)


def test_a_score_on_a_row_without_a_proper_code_or_a_code_without_a_score_is_reported(tmp_path):
    rows = [("001/00", "Murder", 5475, None), ("Total", None, 99, None), ("008/06", "Assault", None, None)]
    path = make_workbook(tmp_path / "cchi.xlsx", rows=rows)
    with pytest.raises(FdkitDataError) as caught:
        harm.read_cchi_workbook(path)
    text = str(caught.value)
    assert "column Home Office classification, sheet row 6: scores on rows whose code is not" in text
    assert "column CCHI score, sheet row 7: blank CCHI scores" in text
