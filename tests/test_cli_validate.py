"""``fdkit validate``: a summary on good records, a short message and exit code 1 on bad."""

from __future__ import annotations

import subprocess
import sys

from conftest import EVENTS
from fdkit.cli import main

BAD_ROLE = EVENTS.replace("C3,P3,2022-01-09,victim", "C3,P3,2022-01-09,witness")
DAY_FIRST = EVENTS.replace("2022-01-09", "09/01/2022")


def test_validate_prints_the_summary_of_good_records(make_folder, capsys):
    code = main(["validate", str(make_folder())])

    out, err = capsys.readouterr()
    assert code == 0
    assert err == ""
    assert "  persons           3\n  events            4\n" in out
    assert "  offence dates     2020-03-01 to 2022-01-09" in out


def test_validate_warns_of_placeholder_dates_of_birth_and_exits_0(make_folder, capsys):
    persons = "person_id,date_of_birth,sex\nP1,1990-05-01,M\nP2,1900-01-01,F\nP3,1899-12-31,\n"

    code = main(["validate", str(make_folder(persons=persons))])

    out, err = capsys.readouterr()
    assert code == 0
    assert "date of birth unknown  2 people" in out
    assert err.startswith("fdkit validate: warning: 2 people have a placeholder date of birth (1900-01-01 ")
    assert "'date of birth unknown'" in err and err.count("\n") == 1


def test_validate_reports_bad_records_without_a_traceback(make_folder, capsys):
    folder = make_folder(events=BAD_ROLE)

    code = main(["validate", str(folder)])

    out, err = capsys.readouterr()
    assert code == 1
    assert out == ""
    assert err == (
        f"fdkit validate: 1 problem in records folder '{folder}':\n"
        "- events.csv, column role, line 5: values not allowed: 'witness' "
        "(expected one of 'suspect', 'victim')\n"
    )
    assert "Traceback" not in err


def test_validate_dayfirst_option_reads_day_first_dates(make_folder, capsys):
    folder = make_folder(events=DAY_FIRST)

    refused = main(["validate", str(folder)])
    refused_err = capsys.readouterr().err
    accepted = main(["validate", "--dayfirst", str(folder)])

    assert refused == 1
    assert "pass dayfirst=True (--dayfirst on the command line)" in refused_err
    assert accepted == 0
    assert "2020-03-01 to 2022-01-09" in capsys.readouterr().out


def test_validate_missing_folder_is_a_data_error(tmp_path, capsys):
    code = main(["validate", str(tmp_path / "nowhere")])

    assert code == 1
    assert capsys.readouterr().err.endswith("':\n- folder not found\n")


def test_validate_as_a_process_exits_1_without_a_traceback(make_folder):
    folder = make_folder(events=BAD_ROLE)

    result = subprocess.run(
        [sys.executable, "-m", "fdkit.cli", "validate", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 1
    assert "events.csv, column role, line 5" in result.stderr
    assert "Traceback" not in result.stderr
