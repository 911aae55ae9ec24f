"""Loading at scale: the fast pyarrow reader gives exactly what the pandas reader gives.

pandas' reader is the reference (its messages are pinned in test_records.py); every file
here is read both ways and must give the same frame, or the same error message.
"""

from __future__ import annotations

import pandas as pd
import pytest

from conftest import EVENTS, PERSONS
from fdkit import records
from fdkit.records import FdkitDataError, load_records, read_table

HEADER = "crime_id,person_id,offence_date,role,offence_code,knife,police_initiated\n"
ROW = "C9,P1,2022-03-01,suspect,8G,false,false\n"

FILES = {
    "plain": EVENTS,
    "byte order mark": "\ufeff" + EVENTS,
    "blank lines": HEADER + "\n" + ROW + "\n\n",
    "a line of spaces": HEADER + ROW + "   \n",
    "windows line endings": (HEADER + ROW).replace("\n", "\r\n"),
    "old mac line endings": (HEADER + ROW).replace("\n", "\r"),
    "a short row": HEADER + ROW + "C8,P1\n",
    "a long row": HEADER + ROW + "C8,P1,2022-03-01,suspect,8G,false,false,extra\n",
    "quoted values with commas and newlines": HEADER
    + '"C,8","P1","2022-03-01","suspect","8G","false","false"\n'
    + '"C\n7",P1,2022-03-02,suspect,8G,false,false\n',
    "NA and null are text": HEADER
    + "NA,P1,2022-03-01,suspect,8G,false,false\nnull,P1,2022-03-01,suspect,8G,false,false\n",
    "no final newline": HEADER + ROW.rstrip("\n"),
    "empty fields": HEADER + ",,,,,,\n",
    "spaces around values and names": HEADER.replace("role", " role ") + " C9 , P1 ,2022-03-01, suspect,8G, true ,0\n",
    "repeated column names": HEADER.replace("knife", "role") + ROW,
    "a blank column name": HEADER.replace("knife", "") + ROW,
    "not UTF-8": (
        HEADER + "C9,P1,2022-03-01,suspect,8G,false,false\nC\xe99,P1,2022-03-01,suspect,8G,false,false\n"
    ).encode("latin-1"),
    "header only": HEADER,
    "only blank lines": "\n\n\n",
    "a stray quote": HEADER + 'C"9,P1,2022-03-01,suspect,8G,false,false\n',
}


def outcome(path, **options):
    try:
        return read_table(
            path, required=("crime_id", "person_id"), booleans=("knife",), dates=("offence_date",), **options
        )
    except FdkitDataError as error:
        return str(error)


@pytest.mark.parametrize("name", FILES)
def test_fast_reader_gives_what_pandas_gives(tmp_path, monkeypatch, name):
    path = tmp_path / "events.csv"
    content = FILES[name]
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    fast = outcome(path)
    monkeypatch.setattr(records, "_read_text_fast", lambda path: None)
    reference = outcome(path)
    if isinstance(reference, str):
        assert fast == reference
    else:
        pd.testing.assert_frame_equal(fast, reference)


def test_fast_reader_is_used_for_a_well_formed_file(tmp_path):
    path = tmp_path / "events.csv"
    path.write_text(EVENTS)
    frame = records._read_text_fast(path)
    pd.testing.assert_frame_equal(frame, pd.read_csv(path, dtype=str, keep_default_na=False))


@pytest.mark.parametrize("persons_text", [PERSONS, PERSONS + "P1,1990-05-01,M\n", PERSONS + "P4,2030-01-01,Q\n"])
def test_records_folder_loads_or_fails_the_same_both_ways(make_folder, monkeypatch, persons_text):
    folder = make_folder(persons=persons_text, events=EVENTS + "C4,P9,2022-01-09,witness,XX,maybe,false\n")

    def attempt():
        try:
            return load_records(folder)
        except FdkitDataError as error:
            return str(error)

    fast = attempt()
    monkeypatch.setattr(records, "_read_text_fast", lambda path: None)
    assert fast == attempt()
