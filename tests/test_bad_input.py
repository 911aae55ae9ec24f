"""Malformed records folders and allocation files, through the command line.

Each case must exit 1 with a message naming the problem, print no traceback, and never
succeed by dropping rows.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from builders import randomise_command

from fdkit.cli import main

SHIPPED = Path(__file__).resolve().parents[1] / "synthetic"

PERSONS = "person_id,date_of_birth,sex\nA,2005-01-01,M\nB,2006-03-04,F\n"
EVENTS = (
    "crime_id,person_id,offence_date,role,offence_code,knife,police_initiated\n"
    "C1,A,2022-10-01,suspect,10D/1,false,true\nC2,A,2022-06-01,suspect,8G,false,false\n"
    "C2,B,2022-06-01,victim,8G,false,false\n"
)


def folder(tmp_path, persons=PERSONS, events=EVENTS, engagement=None, encoding="utf-8"):
    root = tmp_path / "records"
    root.mkdir()
    for name, text in (("persons.csv", persons), ("events.csv", events), ("engagement.csv", engagement)):
        if text is not None:
            (root / name).write_bytes(text.encode(encoding))
    return root


def swap(text, old, new):
    assert old in text
    return text.replace(old, new, 1)


# (case id, how to build the folder, the words the message must contain)
RECORDS_CASES = [
    ("missing persons", lambda t: folder(t, persons=None), "persons.csv"),
    ("missing events", lambda t: folder(t, events=None), "events.csv"),
    ("missing column", lambda t: folder(t, events=EVENTS.replace(",role", "", 1)), "role"),
    ("empty file", lambda t: folder(t, persons=""), "empty"),
    ("header only", lambda t: folder(t, events=EVENTS.splitlines()[0] + "\n"), "empty"),
    ("duplicate person", lambda t: folder(t, persons=PERSONS + "A,2005-01-01,M\n"), "A"),
    ("duplicate event", lambda t: folder(t, events=EVENTS + "C1,A,2022-10-01,suspect,10D/1,false,true\n"), "C1"),
    ("unknown person", lambda t: folder(t, events=EVENTS + "C3,Z,2022-06-01,suspect,8G,false,false\n"), "Z"),
    ("unreadable date", lambda t: folder(t, events=swap(EVENTS, "2022-10-01", "yesterday")), "yesterday"),
    ("impossible date", lambda t: folder(t, events=swap(EVENTS, "2022-10-01", "2023-02-30")), "2023-02-30"),
    ("born after offence", lambda t: folder(t, persons=swap(PERSONS, "2005-01-01", "2023-01-01")), "A"),
    ("bad role", lambda t: folder(t, events=swap(EVENTS, ",victim,", ",witness,")), "witness"),
    ("unknown offence code", lambda t: folder(t, events=swap(EVENTS, ",8G,", ",999Z,")), "999Z"),
    ("bad boolean", lambda t: folder(t, events=swap(EVENTS, "false,true", "false,maybe")), "maybe"),
    ("day-first date", lambda t: folder(t, events=swap(EVENTS, "2022-10-01", "21/10/2022")), "dayfirst"),
    ("month-first date", lambda t: folder(t, events=swap(EVENTS, "2022-10-01", "10/21/2022")), "10/21/2022"),
    ("bad sex", lambda t: folder(t, persons=swap(PERSONS, ",F\n", ",Q\n")), "Q"),
    ("blank person id", lambda t: folder(t, persons=PERSONS + ",2005-01-01,M\n"), "person_id"),
    (
        "not utf-8",
        lambda t: folder(t, persons=PERSONS + "C,2005-01-01,M\n".replace("C", "Ç"), encoding="latin-1"),
        "UTF-8",
    ),
    ("engagement unknown person", lambda t: folder(t, engagement="person_id,engaged\nZ,true\n"), "Z"),
    ("engagement bad boolean", lambda t: folder(t, engagement="person_id,engaged\nA,sometimes\n"), "sometimes"),
    ("no such folder", lambda t: t / "nowhere", "nowhere"),
    ("offence after the extract date", lambda t: folder(t, events=swap(EVENTS, "2022-10-01", "2099-01-01")), "2099"),
    ("born in the future", lambda t: folder(t, persons=swap(PERSONS, "2005-01-01", "2031-01-01")), "2031-01-01"),
    ("older than 110", lambda t: folder(t, persons=swap(PERSONS, "2005-01-01", "1880-01-01")), "over 110"),
    ("crime with two dates", lambda t: folder(t, events=swap(EVENTS, "C2,B,2022-06-01", "C2,B,2022-06-03")), "C2"),
    (
        "crime with two codes",
        lambda t: folder(t, events=swap(EVENTS, "C2,B,2022-06-01,victim,8G", "C2,B,2022-06-01,victim,10D/1")),
        "C2",
    ),
    (
        "formula person_id",
        lambda t: folder(t, persons=PERSONS.replace("\nB,", "\n=B,"), events=EVENTS.replace(",B,", ",=B,")),
        "formula",
    ),
    ("formula crime_id", lambda t: folder(t, events=EVENTS.replace("C1,", "@C1,")), "formula"),
    (
        "line break in a value",
        lambda t: folder(t, persons=PERSONS.replace("\nB,", '\n"B\nB",'), events=EVENTS.replace(",B,", ',"B\nB",')),
        "line break",
    ),
]


@pytest.mark.parametrize(("build", "words"), [c[1:] for c in RECORDS_CASES], ids=[c[0] for c in RECORDS_CASES])
def test_bad_records_are_refused_with_a_clear_message(tmp_path, capsys, build, words):
    assert main(["validate", str(build(tmp_path))]) == 1
    captured = capsys.readouterr()
    assert words in captured.err and "Traceback" not in captured.err + captured.out
    assert "persons" not in captured.out  # no summary: nothing was accepted


# ----------------------------------------------------------------- allocation files


@pytest.fixture(scope="module")
def trial(tmp_path_factory):
    """A valid eligible list and sealed allocation for the shipped records."""
    root = tmp_path_factory.mktemp("trial")
    shutil.copy(SHIPPED / "eligible.csv", root / "eligible.csv")
    shutil.copy(SHIPPED / "allocation.csv", root / "allocation.csv")
    shutil.copy(SHIPPED / "allocation.seal.json", root / "allocation.seal.json")
    return root


def allocation_variant(trial, tmp_path, edit=None, seal=True, seal_text=None):
    target = tmp_path / "allocation.csv"
    text = (trial / "allocation.csv").read_text()
    target.write_text(edit(text) if edit else text)
    if seal:
        (tmp_path / "allocation.seal.json").write_text(seal_text or (trial / "allocation.seal.json").read_text())
    return target


def first_row_swap(old, new):
    def edit(text):
        lines = text.splitlines()
        row = next(i for i, line in enumerate(lines) if old in line)
        lines[row] = lines[row].replace(old, new, 1)
        return "\n".join(lines) + "\n"

    return edit


def analyse(records, allocation, tmp_path, *extra):
    return [
        "analyse",
        "--records",
        str(records),
        "--allocation",
        str(allocation),
        "--out",
        str(tmp_path / "results.csv"),
        "--resamples",
        "100",
        "--permutations",
        "100",
        "--deviate",
        "fewer re-draws: these cases test refusals, not results",
        *extra,
    ]


ALLOCATION_CASES = [
    (
        "allocation missing",
        lambda tr, t: ["verify", "--eligible", str(tr / "eligible.csv"), str(t / "absent.csv")],
        "absent.csv",
    ),
    (
        "seal missing",
        lambda tr, t: ["verify", "--eligible", str(tr / "eligible.csv"), str(allocation_variant(tr, t, seal=False))],
        "seal",
    ),
    (
        "seal corrupt",
        lambda tr, t: [
            "verify",
            "--eligible",
            str(tr / "eligible.csv"),
            str(allocation_variant(tr, t, seal_text="{not json")),
        ],
        "seal",
    ),
    (
        "bad arm",
        lambda tr, t: [
            "verify",
            "--eligible",
            str(tr / "eligible.csv"),
            str(allocation_variant(tr, t, first_row_swap(",control,", ",placebo,"))),
        ],
        "placebo",
    ),
    (
        "bad wave",
        lambda tr, t: [
            "verify",
            "--eligible",
            str(tr / "eligible.csv"),
            str(allocation_variant(tr, t, first_row_swap(",1,2023", ",x,2023"))),
        ],
        "wave",
    ),
    (
        "impossible randomisation date",
        lambda tr, t: [
            "verify",
            "--eligible",
            str(tr / "eligible.csv"),
            str(allocation_variant(tr, t, first_row_swap("2023-02-01", "2023-02-31"))),
        ],
        "2023-02-31",
    ),
    (
        "duplicate person in allocation",
        lambda tr, t: [
            "verify",
            "--eligible",
            str(tr / "eligible.csv"),
            str(allocation_variant(tr, t, lambda text: text + text.splitlines()[1] + "\n")),
        ],
        "person_id",
    ),
    (
        "tampered row",
        lambda tr, t: [
            "verify",
            "--eligible",
            str(tr / "eligible.csv"),
            str(allocation_variant(tr, t, first_row_swap(",control,", ",treatment,"))),
        ],
        "does not hold",
    ),
    (
        "different eligible list",
        lambda tr, t: ["verify", "--eligible", str(_shorter_eligible(tr, t)), str(tr / "allocation.csv")],
        "not the one sealed",
    ),
    (
        "allocation for other records",
        lambda tr, t: analyse(_other_records(t), tr / "allocation.csv", t),
        "not in the records",
    ),
    (
        "follow-up beyond the data",
        lambda tr, t: analyse(SHIPPED, tr / "allocation.csv", t, "--follow-up-months", "24"),
        "last recorded event",
    ),
    (
        "an arm with no one",
        lambda tr, t: analyse(
            SHIPPED, allocation_variant(tr, t, lambda text: text.replace(",treatment,", ",control,")), t, "--unsealed"
        ),
        "treatment arm",
    ),
    (
        "negative harm weight",
        lambda tr, t: analyse(SHIPPED, tr / "allocation.csv", t, "--harm-weights", str(_weights(t, "8G,-5\n"))),
        "-5",
    ),
    (
        "harm weights missing codes",
        lambda tr, t: analyse(SHIPPED, tr / "allocation.csv", t, "--harm-weights", str(_weights(t, ""))),
        "weight",
    ),
    (
        "capacity above a stratum",
        lambda tr, t: randomise_command(tr / "eligible.csv", t / "a.csv", under_18s=500),
        "capacity of 500",
    ),
    (
        "eligible list without the strata column",
        lambda tr, t: randomise_command(_no_bands(tr, t), t / "a.csv"),
        "age_band",
    ),
    (
        "bad exclusion reason",
        lambda tr, t: [
            "screen",
            "--records",
            str(SHIPPED),
            "--reference-date",
            "2023-02-01",
            "--out",
            str(t / "e.csv"),
            "--exclusions",
            str(_exclusions(t)),
        ],
        "on holiday",
    ),
    (
        "report for other records",
        lambda tr, t: [
            "report",
            "--records",
            str(_other_records(t)),
            "--allocation",
            str(tr / "allocation.csv"),
            "--out",
            str(t / "r.html"),
        ],
        "not in the records",
    ),
]


def _shorter_eligible(trial, tmp_path):
    lines = (trial / "eligible.csv").read_text().splitlines()
    path = tmp_path / "eligible-short.csv"
    path.write_text("\n".join(lines[:-1]) + "\n")
    return path


def _other_records(tmp_path):
    return folder(tmp_path)


def _weights(tmp_path, rows):
    path = tmp_path / "weights.csv"
    path.write_text("offence_code,weight\n1,5475\n" + rows)
    return path


def _no_bands(trial, tmp_path):
    import pandas as pd

    path = tmp_path / "eligible-no-bands.csv"
    pd.read_csv(trial / "eligible.csv", dtype=str).drop(columns="age_band").to_csv(path, index=False)
    return path


def _exclusions(tmp_path):
    path = tmp_path / "exclusions.csv"
    path.write_text("person_id,reason\nP001236,on holiday\n")
    return path


@pytest.mark.parametrize(("command", "words"), [c[1:] for c in ALLOCATION_CASES], ids=[c[0] for c in ALLOCATION_CASES])
def test_bad_allocations_are_refused_with_a_clear_message(trial, tmp_path, capsys, command, words):
    assert main(command(trial, tmp_path)) == 1
    captured = capsys.readouterr()
    assert words in captured.err, captured.err
    assert "Traceback" not in captured.err + captured.out


def test_an_extract_date_accepts_what_today_would_not(tmp_path, capsys):
    records = folder(tmp_path, events=swap(EVENTS, "2022-10-01", "2030-01-01"))
    assert main(["validate", str(records)]) == 1
    assert main(["validate", str(records), "--extract-date", "2030-06-01"]) == 0
    assert main(["validate", str(records), "--extract-date", "2029-12-31"]) == 1
    assert "2029-12-31" in capsys.readouterr().err


def test_a_stray_quote_is_reported_where_it_opens_and_closes(tmp_path, capsys):
    rows = [EVENTS.splitlines()[0]] + [f"K{i},A,2022-01-01,suspect,8G,false,false" for i in range(50)]
    rows[4] = rows[4].replace(",8G,", ',"8G,')
    rows[39] = rows[39].replace(",8G,", ',8G",')
    assert main(["validate", str(folder(tmp_path, events="\n".join(rows) + "\n"))]) == 1
    err = capsys.readouterr().err
    assert "opens on line 5 and closes on line 40" in err


def test_a_bug_is_exit_3_with_a_request_to_report_it(tmp_path, capsys, monkeypatch):
    import fdkit.records

    monkeypatch.setattr(fdkit.records, "summarise", lambda records: 1 / 0)
    assert main(["validate", str(folder(tmp_path))]) == 3
    err = capsys.readouterr().err
    assert "this is a bug in fdkit; please report it" in err and "ZeroDivisionError" in err


def test_debug_shows_the_traceback(tmp_path, capsys):
    assert main(["--debug", "validate", str(tmp_path / "nowhere")]) == 1
    assert "Traceback" in capsys.readouterr().err
