"""Reading, checking, writing and summarising records folders (fdkit.records)."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import ENGAGEMENT, EVENTS, PERSONS
from fdkit import offences
from fdkit.records import (
    PLACEHOLDER_BIRTH_DATES,
    FdkitDataError,
    Problem,
    Records,
    load_records,
    placeholder_births,
    read_table,
    summarise,
    validate_frames,
    write_records,
)

PERSONS_HEADER = "person_id,date_of_birth,sex\n"
EVENTS_HEADER = "crime_id,person_id,offence_date,role,offence_code,knife,police_initiated\n"


def load_error(folder, **options) -> FdkitDataError:
    with pytest.raises(FdkitDataError) as caught:
        load_records(folder, **options)
    return caught.value


def events_with(*rows: str) -> str:
    return EVENTS_HEADER + "".join(f"{row}\n" for row in rows)


def persons_with(*rows: str) -> str:
    return PERSONS_HEADER + "".join(f"{row}\n" for row in rows)


# --- a good folder -----------------------------------------------------------------------


def test_good_folder_loads_with_the_contract_dtypes(make_folder):
    records = load_records(make_folder())

    assert records.persons["person_id"].tolist() == ["P1", "P2", "P3"]
    assert pd.api.types.is_string_dtype(records.persons["person_id"])
    assert pd.api.types.is_string_dtype(records.events["offence_code"])
    assert records.persons["date_of_birth"].dtype.kind == "M"
    assert records.events["offence_date"].dtype.kind == "M"
    assert records.events["knife"].dtype == np.bool_
    assert records.events["police_initiated"].tolist() == [False, False, True, False]
    assert records.persons["sex"].isna().tolist() == [False, False, True]
    assert records.events["crime_id"].tolist() == ["C1", "C1", "C2", "C3"]
    assert records.events.columns.tolist() == EVENTS.splitlines()[0].split(",")
    assert records.engagement is None


def test_engagement_is_loaded_when_present(make_folder):
    records = load_records(make_folder(engagement=ENGAGEMENT))

    assert records.engagement["engaged"].tolist() == [True, False]


def test_extra_person_columns_are_kept_as_text(make_folder):
    persons = "person_id,date_of_birth,sex,name,postcode_district\nP1,1990-05-01,M,Ann Lee,MK6\n"
    events = events_with("C1,P1,2020-03-01,suspect,8G,false,false")

    records = load_records(make_folder(persons=persons, events=events))

    assert records.persons.loc[0, "postcode_district"] == "MK6"
    assert pd.api.types.is_string_dtype(records.persons["name"])


def test_surrounding_whitespace_is_stripped(make_folder):
    persons = persons_with(" P1 , 1990-05-01 , M ")
    events = events_with("C1,P1 ,2020-03-01, suspect,8G, TRUE ,false")

    records = load_records(make_folder(persons=persons, events=events))

    assert records.persons.loc[0, "sex"] == "M"
    assert records.events.loc[0, "role"] == "suspect"
    assert bool(records.events.loc[0, "knife"])


def test_utf8_byte_order_mark_from_excel_is_accepted(make_folder):
    persons = "\ufeff".encode() + PERSONS.replace("\n", "\r\n").encode()

    records = load_records(make_folder(persons=persons))

    assert records.persons.columns[0] == "person_id"
    assert len(records.persons) == 3


def test_records_repr_gives_counts(make_folder):
    records = load_records(make_folder(engagement=ENGAGEMENT))

    assert repr(records).startswith("Records(3 persons, 4 events, 2 engagement rows, source=")


# --- files that cannot be used -----------------------------------------------------------


def test_missing_folder(tmp_path):
    error = load_error(tmp_path / "nowhere")

    assert str(error) == (f"1 problem in records folder '{tmp_path / 'nowhere'}':\n- folder not found")


def test_missing_file_is_reported_alongside_other_files_problems(make_folder):
    events = events_with("C1,P1,2020-03-01,witness,8G,false,false")
    folder = make_folder(persons=None, events=events)

    message = str(load_error(folder))

    assert message.startswith("2 problems in records folder")
    assert (
        "- persons.csv: file not found; expected a CSV file with a header row and the columns "
        "person_id, date_of_birth, sex" in message
    )
    assert "- events.csv, column role, line 2: values not allowed: 'witness'" in message


def test_missing_required_column_names_it_and_the_columns_found(make_folder):
    persons = "person_id,dob,sex\nP1,1990-05-01,M\n"

    message = str(load_error(make_folder(persons=persons)))

    assert "- persons.csv: missing required column date_of_birth (found: person_id, dob, sex)" in (message)


def test_zero_byte_file_is_empty(make_folder):
    message = str(load_error(make_folder(events="")))

    assert "- events.csv: the file is empty (zero bytes); expected a CSV file" in message


def test_header_only_file_is_empty(make_folder):
    message = str(load_error(make_folder(events=EVENTS_HEADER)))

    assert "- events.csv: the file is empty: a header row but no data rows" in message


def test_file_that_is_not_utf8_is_reported(make_folder):
    persons = persons_with("P1,1990-05-01,M", "Zoë,1990-05-01,F").encode("latin-1")

    message = str(load_error(make_folder(persons=persons)))

    assert "- persons.csv: not UTF-8 text; save it as 'CSV UTF-8' in Excel" in message


# --- ids and keys ------------------------------------------------------------------------


def test_duplicate_person_id_lists_ids_and_lines(make_folder):
    persons = persons_with("P1,1990-05-01,M", "P2,2001-11-21,F", "P1,1990-05-01,M", "P3,1985-01-30,")
    folder = make_folder(persons=persons)

    message = str(load_error(folder))

    assert message == (
        f"1 problem in records folder '{folder}':\n"
        "- persons.csv, column person_id, lines 2, 4: repeated values: 'P1' "
        "(each must appear only once)"
    )


def test_blank_person_id(make_folder):
    persons = persons_with("P1,1990-05-01,M", ",2001-11-21,F", "P2,2001-11-21,F", "P3,1985-01-30,")

    message = str(load_error(make_folder(persons=persons)))

    assert ("- persons.csv, column person_id, line 3: blank values (every row needs a person_id)") in message


def test_duplicate_crime_person_and_role(make_folder):
    events = events_with(
        "C1,P1,2020-03-01,suspect,8G,false,false",
        "C1,P1,2020-03-01,victim,8G,false,false",
        "C1,P1,2020-03-01,suspect,8G,true,false",
    )

    message = str(load_error(make_folder(events=events)))

    assert (
        "- events.csv, columns crime_id, person_id, role, lines 2, 4: repeated combinations: "
        "('C1', 'P1', 'suspect') (each combination must appear only once)"
    ) in message


def test_event_for_unknown_person_lists_ids_and_lines(make_folder):
    events = events_with(
        "C1,P1,2020-03-01,suspect,8G,false,false",
        "C1,P7,2020-03-01,victim,8G,false,false",
        "C2,P8,2020-04-01,suspect,8G,false,false",
        "C3,P7,2020-05-01,suspect,8G,false,false",
    )

    message = str(load_error(make_folder(events=events)))

    assert ("- events.csv, column person_id, lines 3, 4, 5: people not in persons.csv: 'P7', 'P8'") in message


# --- dates -------------------------------------------------------------------------------


def test_unparseable_date(make_folder):
    persons = persons_with("P1,1990-05-01,M", "P2,last tuesday,F", "P3,1985-01-30,")

    message = str(load_error(make_folder(persons=persons)))

    assert (
        "- persons.csv, column date_of_birth, line 3: not dates: 'last tuesday' (expected ISO dates YYYY-MM-DD)"
    ) in message


def test_impossible_dates_are_not_real_dates(make_folder):
    persons = persons_with("P1,1990-05-01,M", "P2,2023-02-30,F", "P3,2023-13-01,")

    message = str(load_error(make_folder(persons=persons)))

    assert (
        "- persons.csv, column date_of_birth, lines 3, 4: dates that do not exist: "
        "'2023-02-30', '2023-13-01' (expected ISO dates YYYY-MM-DD)"
    ) in message


def test_blank_date(make_folder):
    events = events_with("C1,P1,,suspect,8G,false,false")

    message = str(load_error(make_folder(events=events)))

    assert "- events.csv, column offence_date, line 2: blank dates (expected ISO dates" in message


def test_time_after_the_date_is_dropped(make_folder):
    events = events_with(
        "C1,P1,2020-03-01T13:45:00,suspect,8G,false,false",
        "C2,P2,2020-03-02 09:05,suspect,8G,false,false",
    )

    records = load_records(make_folder(events=events))

    assert records.events["offence_date"].tolist() == [
        pd.Timestamp("2020-03-01"),
        pd.Timestamp("2020-03-02"),
    ]


@pytest.mark.parametrize("day_first", ["21/11/2024", "21-11-2024", "1/2/2023", "21/11/2024 10:30"])
def test_day_first_dates_are_rejected_with_the_hint(make_folder, day_first):
    events = events_with(f"C1,P1,{day_first},suspect,8G,false,false")

    message = str(load_error(make_folder(events=events)))

    assert (
        f"- events.csv, column offence_date, line 2: dates that look day-first (DD/MM/YYYY): "
        f"'{day_first}'; dates should be ISO YYYY-MM-DD, or pass dayfirst=True "
        "(--dayfirst on the command line) to read them day first"
    ) in message


def test_day_first_dates_are_read_when_asked(make_folder):
    persons = persons_with("P1,01/05/1990,M", "P2,21-11-2001,F", "P3,1985-01-30,")
    events = events_with("C1,P1,21/11/2024,suspect,8G,false,false", "C2,P2,1/2/2023 10:30,victim,8G,false,false")

    records = load_records(make_folder(persons=persons, events=events), dayfirst=True)

    assert records.persons["date_of_birth"].dt.strftime("%Y-%m-%d").tolist() == [
        "1990-05-01",
        "2001-11-21",
        "1985-01-30",
    ]
    assert records.events["offence_date"].tolist() == [
        pd.Timestamp("2024-11-21"),
        pd.Timestamp("2023-02-01"),
    ]


@pytest.mark.parametrize("dayfirst", [False, True])
def test_month_first_dates_are_never_guessed(make_folder, dayfirst):
    events = events_with("C1,P1,11/21/2024,suspect,8G,false,false")

    message = str(load_error(make_folder(events=events), dayfirst=dayfirst))

    assert (
        "- events.csv, column offence_date, line 2: dates that look month-first (MM/DD/YYYY): "
        "'11/21/2024'; month-first dates are never guessed: convert them to ISO YYYY-MM-DD"
    ) in message


def test_impossible_day_first_date(make_folder):
    events = events_with("C1,P1,30/02/2024,suspect,8G,false,false")

    message = str(load_error(make_folder(events=events), dayfirst=True))

    assert (
        "- events.csv, column offence_date, line 2: dates that do not exist: '30/02/2024' "
        "(expected ISO dates YYYY-MM-DD or DD/MM/YYYY)"
    ) in message


def test_date_of_birth_after_an_offence_date_names_person_crime_and_lines(make_folder):
    persons = persons_with("P1,1990-05-01,M", "P2,2021-01-01,F", "P3,1985-01-30,")

    message = str(load_error(make_folder(persons=persons)))

    assert (
        "- events.csv, column offence_date, line 3: offence before the person's date of "
        "birth: person 'P2' born 2021-01-01, crime 'C1' on 2020-03-01"
    ) in message


@pytest.mark.parametrize("placeholder", PLACEHOLDER_BIRTH_DATES)
def test_a_placeholder_date_of_birth_loads_as_unknown_and_is_counted(make_folder, placeholder):
    # P2 is a suspect on 2021-07-15: not born before it, nor over 110, nor after the extract date.
    persons = persons_with("P1,1990-05-01,M", f"P2,{placeholder},F", "P3,1985-01-30,")

    records = load_records(make_folder(persons=persons), extract_date="2024-01-01")

    assert records.persons["date_of_birth"].dt.strftime("%Y-%m-%d")[1] == placeholder  # kept as written
    assert placeholder_births(records.persons["date_of_birth"]).tolist() == [False, True, False]
    summary = summarise(records)
    assert summary.unknown_birth == 1 and summary.to_dict()["unknown_birth"] == 1
    assert "date of birth unknown  1 person (a placeholder date such as 1900-01-01)" in str(summary)
    copy = write_records(records, make_folder(name="copy"))["persons.csv"].parent
    again = load_records(copy, extract_date="2024-01-01")
    assert again.persons["date_of_birth"].equals(records.persons["date_of_birth"])  # pseudonymise, merge: the same


def test_a_really_impossible_date_of_birth_is_still_an_error_beside_placeholders(make_folder):
    persons = persons_with("P1,1900-01-01,M", "P2,1900-01-02,F", "P3,9999-12-30,")

    message = str(load_error(make_folder(persons=persons), extract_date="2024-01-01"))

    assert "- persons.csv, column date_of_birth, line 3: people over 110 on 2024-01-01: born '1900-01-02'" in message
    assert "line 4: dates of birth after the extract date 2024-01-01: '9999-12-30'" in message
    assert "line 2" not in message
    assert summarise(load_records(make_folder(name="good"))).unknown_birth == 0


@given(st.dates(min_value=dt.date(1800, 1, 1), max_value=dt.date(2200, 12, 31)))
@settings(deadline=None)  # each example reads a file: its time says how busy the machine is, not whether it is right
def test_any_real_date_reads_back_in_iso_and_day_first_form(day):
    table = f"id,iso,uk\nA,{day:%Y-%m-%d},{day.day}/{day.month}/{day:%Y}\n"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder, "dates.csv")
        path.write_text(table, encoding="utf-8")
        frame = read_table(path, required=("id",), dates=("iso", "uk"), dayfirst=True)

    assert frame.loc[0, "iso"] == frame.loc[0, "uk"] == pd.Timestamp(day)


# --- roles, sex, offence codes and booleans ----------------------------------------------


def test_role_other_than_suspect_or_victim(make_folder):
    events = events_with("C1,P1,2020-03-01,Suspect,8G,false,false", "C2,P1,2020-03-01,witness,8G,false,false")

    message = str(load_error(make_folder(events=events)))

    assert (
        "- events.csv, column role, lines 2, 3: values not allowed: 'Suspect', 'witness' "
        "(expected one of 'suspect', 'victim')"
    ) in message


def test_sex_outside_f_m_x_or_blank(make_folder):
    persons = persons_with("P1,1990-05-01,Male", "P2,2001-11-21,F", "P3,1985-01-30,")

    message = str(load_error(make_folder(persons=persons)))

    assert (
        "- persons.csv, column sex, line 2: values not allowed: 'Male' (expected one of 'F', 'M', 'X', (blank))"
    ) in message


def test_offence_code_not_in_lookup_lists_distinct_codes_with_counts(make_folder):
    events = events_with(
        "C1,P1,2020-03-01,suspect,99Z,false,false",
        "C2,P1,2020-03-02,suspect,8G,false,false",
        "C3,P1,2020-03-03,suspect,XX,false,false",
        "C4,P1,2020-03-04,suspect,99Z,false,false",
    )

    message = str(load_error(make_folder(events=events)))

    assert (
        "- events.csv, column offence_code, lines 2, 4, 5: offence codes not in the offence "
        "lookup: '99Z' (2 rows), 'XX' (1 row)"
    ) in message


def test_caller_supplied_lookup_is_used(make_folder):
    events = events_with("C1,P1,2020-03-01,suspect,LOCAL1,true,false")
    lookup = pd.DataFrame(
        {
            "offence_code": ["LOCAL1"],
            "title": ["Local offence"],
            "group": ["Violence with injury"],
            "violent": [True],
            "sexual": [False],
            "knife_offence": [False],
        }
    )
    folder = make_folder(events=events)

    records = load_records(folder, lookup=lookup)

    assert records.events["offence_code"].tolist() == ["LOCAL1"]
    assert "'LOCAL1' (1 row)" in str(load_error(folder))
    by_group = summarise(records, lookup=lookup).events_by_group
    assert by_group.loc["Violence with injury"].tolist() == [1, 0]


TRUE_SPELLINGS = "true TRUE True t T 1 Y y yes YES Yes".split()
FALSE_SPELLINGS = "false FALSE False f F 0 N n no NO No".split()


@pytest.mark.parametrize(
    ("spelling", "value"),
    [(spelling, True) for spelling in TRUE_SPELLINGS] + [(spelling, False) for spelling in FALSE_SPELLINGS],
)
def test_boolean_spellings_are_accepted(make_folder, spelling, value):
    events = events_with(f"C1,P1,2020-03-01,suspect,8G,{spelling},{spelling}")

    records = load_records(make_folder(events=events))

    assert records.events["knife"].tolist() == [value]
    assert records.events["police_initiated"].dtype == np.bool_


@pytest.mark.parametrize(
    ("spelling", "shown"),
    [("maybe", "'maybe'"), ("", "(blank)"), ("2", "'2'"), ("tru", "'tru'"), ("-1", "'-1'")],
)
def test_other_boolean_values_are_rejected(make_folder, spelling, shown):
    events = events_with(f"C1,P1,2020-03-01,suspect,8G,{spelling},false")

    message = str(load_error(make_folder(events=events)))

    assert (
        f"- events.csv, column knife, line 2: not true/false: {shown} "
        "(accepted: true/false, t/f, yes/no, y/n, 1/0, in any case)"
    ) in message


# --- engagement --------------------------------------------------------------------------


def test_engagement_for_unknown_or_repeated_people(make_folder):
    engagement = "person_id,engaged\nP1,true\nP9,false\nP1,false\n"

    message = str(load_error(make_folder(engagement=engagement)))

    assert (
        "- engagement.csv, column person_id, lines 2, 4: repeated values: 'P1' (each must appear only once)"
    ) in message
    assert "- engagement.csv, column person_id, line 3: people not in persons.csv: 'P9'" in message


# --- reporting ---------------------------------------------------------------------------


def test_several_problems_in_one_file_are_reported_together(make_folder):
    events = events_with(
        "C1,P1,2020-02-30,suspect,8G,false,false",
        "C2,P1,2020-03-01,witness,8G,maybe,false",
        "C3,P9,2020-03-01,victim,ZZ,false,false",
    )

    error = load_error(make_folder(events=events))

    assert str(error).startswith("5 problems in records folder")
    assert [(problem.file, problem.column, problem.lines) for problem in error.problems] == [
        ("events.csv", "knife", (3,)),
        ("events.csv", "offence_date", (2,)),
        ("events.csv", "role", (3,)),
        ("events.csv", "offence_code", (4,)),
        ("events.csv", "person_id", (4,)),
    ]


def test_long_lists_are_capped_and_the_total_given(make_folder):
    rows = [f"C{n},P1,2020-03-01,suspect,8G,maybe{n % 12},false" for n in range(1, 1236)]

    error = load_error(make_folder(events=events_with(*rows)))

    (problem,) = error.problems
    assert problem.count == 1235
    assert problem.lines == tuple(range(2, 12))
    assert str(problem).startswith(
        "events.csv, column knife, 1,235 lines (2, 3, 4, 5, 6, 7, 8, 9, 10, 11 and 1,225 more): "
        "not true/false: 'maybe1', 'maybe2',"
    )
    assert "'maybe9', 'maybe10' and 2 more (accepted:" in str(problem)


def test_line_numbers_count_blank_lines_and_values_spanning_lines(make_folder):
    persons = 'person_id,date_of_birth,sex,note\nP1,1990-05-01,M,"two\nlines"\n\nP2,2001-11-21,Q,\nP3,1985-01-30,,\n'

    message = str(load_error(make_folder(persons=persons)))

    assert "- persons.csv, column sex, line 5: values not allowed: 'Q'" in message


def test_problem_without_a_place_renders_as_its_message():
    error = FdkitDataError([Problem(None, "something is wrong")])

    assert str(error) == "1 problem in the records:\n- something is wrong"


# --- read_table on its own ---------------------------------------------------------------


def test_read_table_checks_unique_choices_and_blanks(tmp_path):
    path = tmp_path / "harm.csv"
    path.write_text("code,weight,kind\nA,1,x\nA,2,y\n,3,x\n", encoding="utf-8")

    with pytest.raises(FdkitDataError) as caught:
        read_table(
            path,
            required=("code", "weight"),
            unique=("code",),
            choices={"kind": ("x",)},
            not_blank=("code",),
        )

    assert str(caught.value) == (
        f"3 problems in file '{path}':\n"
        "- harm.csv, column code, line 4: blank values (every row needs a code)\n"
        "- harm.csv, column code, lines 2, 3: repeated values: 'A' (each must appear only once)\n"
        "- harm.csv, column kind, line 3: values not allowed: 'y' (expected one of 'x')"
    )


def test_read_table_missing_file_says_what_was_expected(tmp_path):
    with pytest.raises(FdkitDataError) as caught:
        read_table(tmp_path / "harm.csv", required=("code", "weight"))

    assert str(caught.value).endswith(
        "- harm.csv: file not found; expected a CSV file with a header row and the columns code, weight"
    )


def test_read_table_keeps_text_and_gives_a_range_index(tmp_path):
    path = tmp_path / "table.csv"
    path.write_text("code,flag,note\n007,yes,NA\n", encoding="utf-8")

    frame = read_table(path, required=("code",), booleans=("flag",))

    assert frame.to_dict("records") == [{"code": "007", "flag": True, "note": "NA"}]
    assert frame.index.equals(pd.RangeIndex(1))


# --- in-memory frames --------------------------------------------------------------------


def _frames(records: Records) -> tuple[pd.DataFrame, pd.DataFrame]:
    return records.persons.copy(), records.events.copy()


def test_validate_frames_accepts_good_frames(make_folder):
    persons, events = _frames(load_records(make_folder()))

    records = validate_frames(persons, events, source="memory")

    assert records.persons is persons
    assert records.source == Path("memory")


def test_validate_frames_reports_rows_not_lines(make_folder):
    persons, events = _frames(load_records(make_folder()))
    persons = pd.concat([persons, persons.iloc[[0]]], ignore_index=True)
    events.loc[3, "role"] = "witness"

    with pytest.raises(FdkitDataError) as caught:
        validate_frames(persons, events)

    assert str(caught.value) == (
        "2 problems in the records:\n"
        "- persons, column person_id, rows 0, 3: repeated values: 'P1' "
        "(each must appear only once)\n"
        "- events, column role, row 3: values not allowed: 'witness' "
        "(expected one of 'suspect', 'victim')"
    )
    assert {problem.unit for problem in caught.value.problems} == {"row"}


def test_validate_frames_reports_wrong_dtypes_and_missing_dates(make_folder):
    persons, events = _frames(load_records(make_folder()))
    persons["date_of_birth"] = persons["date_of_birth"].dt.strftime("%Y-%m-%d")
    events["knife"] = events["knife"].map({True: "yes", False: "no"})
    events.loc[1, "offence_date"] = pd.NaT

    with pytest.raises(FdkitDataError) as caught:
        validate_frames(persons, events)

    message = str(caught.value)
    assert "- persons, column date_of_birth: expected datetime64 dates, found dtype str" in message
    assert "- events, column knife: expected a numpy bool column, found dtype str" in message
    assert "- events, column offence_date, row 1: missing dates (NaT)" in message


def test_validate_frames_accepts_missing_sex(make_folder):
    persons, events = _frames(load_records(make_folder()))
    persons["sex"] = persons["sex"].astype(object).where(persons["sex"].notna(), None)

    validate_frames(persons, events)


# --- writing -----------------------------------------------------------------------------


def test_write_then_load_round_trips(make_folder, tmp_path):
    persons = 'person_id,name,date_of_birth,sex\nP1,"Lee, Ann",1990-05-01,M\nP2,,2001-11-21,\n'
    events = events_with("C2,P2,2021-07-15,suspect,10D/1,Y,1", "C1,P1,2020-03-01,victim,8G,no,FALSE")
    records = load_records(make_folder(persons=persons, events=events, engagement=ENGAGEMENT))

    written = write_records(records, tmp_path / "out")
    again = load_records(tmp_path / "out")

    assert sorted(written) == ["engagement.csv", "events.csv", "persons.csv"]
    contract_order = ["person_id", "date_of_birth", "sex", "name"]
    pd.testing.assert_frame_equal(again.persons, records.persons[contract_order])
    pd.testing.assert_frame_equal(again.events, records.events)
    pd.testing.assert_frame_equal(again.engagement, records.engagement)


def test_written_files_are_canonical_and_byte_reproducible(make_folder, tmp_path):
    persons = "\ufeffperson_id,date_of_birth,sex\r\nP1, 1990-05-01T00:00 ,M\r\nP2,2001-11-21,\r\n"
    events = events_with("C1,P1,2020-03-01,suspect,8G,Y,0", "C1,P2,2020-03-01,victim,8G,FALSE,t")
    records = load_records(make_folder(persons=persons, events=events))

    first = write_records(records, tmp_path / "first")
    second = write_records(load_records(tmp_path / "first"), tmp_path / "second")

    assert first["persons.csv"].read_bytes() == (b"person_id,date_of_birth,sex\nP1,1990-05-01,M\nP2,2001-11-21,\n")
    assert first["events.csv"].read_bytes() == (
        EVENTS_HEADER.encode() + b"C1,P1,2020-03-01,suspect,8G,true,false\nC1,P2,2020-03-01,victim,8G,false,true\n"
    )
    for name, path in first.items():
        assert second[name].read_bytes() == path.read_bytes()


def test_writing_records_without_engagement_removes_a_stale_file(make_folder, tmp_path):
    folder = make_folder(engagement=ENGAGEMENT)

    written = write_records(load_records(make_folder(name="other")), folder)

    assert sorted(written) == ["events.csv", "persons.csv"]
    assert load_records(folder).engagement is None


# --- summary -----------------------------------------------------------------------------


def test_summarise_gives_the_figures(make_folder):
    records = load_records(make_folder(engagement=ENGAGEMENT))

    summary = summarise(records)

    assert (summary.persons, summary.events) == (3, 4)
    assert summary.events_by_role.to_dict() == {"suspect": 2, "victim": 2}
    assert summary.events_by_group.to_dict("index") == {
        "Violence with injury": {"suspect": 1, "victim": 1},
        "Robbery": {"suspect": 0, "victim": 1},
        "Possession of weapons": {"suspect": 1, "victim": 0},
    }
    assert (summary.first_offence, summary.last_offence) == (
        pd.Timestamp("2020-03-01"),
        pd.Timestamp("2022-01-09"),
    )
    assert summary.police_initiated_share == 0.25
    assert summary.knife_share == 0.5  # a knife flag on C1 and the knife offence 10D/1
    assert (summary.engagement_recorded, summary.engaged) == (2, 1)


def test_summary_renders_as_text_and_converts_to_a_dict(make_folder):
    summary = summarise(load_records(make_folder()))

    text = str(summary)
    figures = summary.to_dict()

    assert "  offence dates     2020-03-01 to 2022-01-09" in text
    assert "  police-initiated  25.0% of events" in text
    assert "Events by offence group and role" in text
    assert figures["first_offence"] == "2020-03-01"
    assert figures["events_by_group"]["Robbery"] == {"suspect": 0, "victim": 1}
    assert figures["engaged"] is None


def test_offence_lookup_is_read_with_read_table():
    table = offences.lookup()

    assert table["knife_offence"].dtype == np.bool_
    assert table["offence_code"].is_unique
