"""fdkit import: a messy export, the ledger, the mapping, layouts and follow-up extracts."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest
from messy_export import ADDED, independent_cohort, write_messy_export

from fdkit import FdkitDataError, eligibility, importer, load_records, offences, outcomes, randomise
from fdkit.cli import main

REPO = Path(__file__).resolve().parents[1]
REFERENCE = dt.date(2023, 2, 1)
HEADER = (
    "Occurrence Ref,Offence Date,Home Office Offence Code,Weapon,Proactive,Occurrence Status,Nominal ID,Involvement"
)


@pytest.fixture(scope="module")
def synthetic():
    return load_records(REPO / "synthetic")


@pytest.fixture(scope="module")
def screenable(synthetic):
    """The synthetic people of screening age on 2023-02-01, and their events since 2021-02-01.

    Who is eligible depends only on a person's own date of birth and events in the 24
    months before the reference date, so this sixth of the records has the whole records'
    cohort, and keeps the quick test loop quick.
    """
    from dataclasses import replace

    persons = synthetic.persons
    aged = persons[persons["date_of_birth"].between("1997-02-02", "2012-02-01")]
    events = synthetic.events
    events = events[events["person_id"].isin(aged["person_id"]) & (events["offence_date"] >= "2021-02-01")]
    return replace(synthetic, persons=aged.reset_index(drop=True), events=events.reset_index(drop=True))


@pytest.fixture(scope="module")
def messy(tmp_path_factory, screenable):
    folder = tmp_path_factory.mktemp("raw")
    added = write_messy_export(screenable, folder, mapping_text=importer.template())
    return folder, added


@pytest.fixture(scope="module")
def imported(messy, tmp_path_factory):
    folder, _ = messy
    out = tmp_path_factory.mktemp("records") / "records_raw"
    assert main(["import", "--mapping", str(folder / "mapping.toml"), "--out", str(out), str(folder)]) == 0
    return out


def test_the_template_is_accepted_as_written(tmp_path):
    (tmp_path / "mapping.toml").write_text(importer.template(), encoding="utf-8")
    (tmp_path / "code_map.csv").write_text("local_code,offence_code\n008/07,8G\n", encoding="utf-8")
    mapping = importer.read_mapping(tmp_path / "mapping.toml")
    assert mapping.flat and mapping.dayfirst
    assert mapping.roles["offender"] == "suspect" and mapping.roles["victim"] == "victim"
    assert mapping.code_map == {"008/07": "8G"}
    assert mapping.keep_status == {"recorded"}


def test_the_template_command_prints_it(capsys):
    assert main(["import", "--template"]) == 0
    assert capsys.readouterr().out == importer.template()
    assert (REPO / "templates" / "mapping.toml").read_text(encoding="utf-8") == importer.template()
    shipped = importer.read_mapping(REPO / "templates" / "mapping.toml")  # with templates/code_map.csv
    assert shipped.code_map["010/d1"] == "10D/1"


def test_a_messy_export_gives_the_independent_cohort(messy, imported):
    """Done-when 1: import then screen == a plain-Python reading of the export == the clean cohort."""
    folder, _ = messy
    screened = eligibility.screen(load_records(imported), REFERENCE).eligible
    independent = independent_cohort(folder, REPO / "fdkit" / "data" / "offences.csv", REFERENCE)
    clean = eligibility.screen(load_records(REPO / "synthetic"), REFERENCE).eligible
    assert len(independent) > 100
    assert set(screened["person_id"]) == independent == set(clean["person_id"])


def test_every_row_left_out_is_in_the_ledger(messy, imported):
    folder, added = messy
    ledger = pd.read_csv(imported / importer.LEDGER_FILE, keep_default_na=False)
    by_reason = ledger[ledger["file"] == "crime_involvements.csv"].set_index("reason")["rows"].to_dict()
    assert by_reason == ADDED
    nominals = ledger[ledger["file"] == "nominals.csv"].set_index("reason")["rows"].to_dict()
    assert nominals == {"no date of birth": added["no date of birth (nominals)"]}
    facts = json.loads((imported / importer.EXTRACT_FILE).read_text())
    records = load_records(imported)
    for name, read in facts["rows_read"].items():
        left_out = int(ledger.loc[ledger["file"] == name, "rows"].sum())
        assert read == facts["rows_written"][name] + left_out
    raw_lines = (folder / "crime_involvements.csv").read_bytes().count(b"\r\n") - 1
    assert facts["rows_read"]["crime_involvements.csv"] == raw_lines
    assert facts["rows_written"]["crime_involvements.csv"] == len(records.events)
    assert facts["rows_written"]["nominals.csv"] == len(records.persons)


def test_the_ledger_shows_values_exactly_as_exported(imported):
    ledger = pd.read_csv(imported / importer.LEDGER_FILE, keep_default_na=False).set_index("reason")
    roles = ledger.loc["witness or other role", "examples"]
    assert "'Witness '" in roles and "'Reporting Person'" in roles and "'Witness' (" in roles
    assert "'Q00000 '" in ledger.loc["no nominal record", "examples"]


def test_imported_records_match_the_clean_ones(screenable, imported):
    synthetic = screenable
    records = load_records(imported)
    columns = ["crime_id", "person_id", "offence_date", "role", "offence_code", "knife", "police_initiated"]
    key = ["crime_id", "person_id", "role"]
    expected = synthetic.events[columns].sort_values(key, ignore_index=True)
    assert records.events[columns].sort_values(key, ignore_index=True).equals(expected)
    persons = synthetic.persons[["person_id", "date_of_birth"]].sort_values("person_id", ignore_index=True)
    assert records.persons[["person_id", "date_of_birth"]].equals(persons)
    assert list(records.persons.columns) == ["person_id", "date_of_birth", "sex"]


def test_names_and_other_columns_are_never_copied(screenable, imported):
    synthetic = screenable
    text = "".join(path.read_text(encoding="utf-8") for path in imported.glob("*.csv"))
    surnames = synthetic.persons["name"].str.split().str[-1]
    assert "Grange Road" not in text and "Nobody" not in text
    assert not any(f",{name}," in text for name in surnames.head(200))


def test_the_import_does_not_depend_on_row_order(messy, imported, tmp_path):
    folder, _ = messy
    shuffled = tmp_path / "raw"
    shuffled.mkdir()
    for name in ("code_map.csv", "mapping.toml", "nominals.csv"):
        (shuffled / name).write_bytes((folder / name).read_bytes())
    lines = (folder / "crime_involvements.csv").read_bytes().split(b"\r\n")
    header, body = lines[0], [line for line in lines[1:] if line]
    (shuffled / "crime_involvements.csv").write_bytes(b"\r\n".join([header, *reversed(body)]) + b"\r\n")
    out = tmp_path / "out"
    assert main(["import", "--mapping", str(shuffled / "mapping.toml"), "--out", str(out), str(shuffled)]) == 0
    for name in ("persons.csv", "events.csv"):
        assert (out / name).read_bytes() == (imported / name).read_bytes()


def _small_export(folder: Path, codes=("8G", "10D/1"), roles=("Suspect ", "Witness")) -> Path:
    folder.mkdir(exist_ok=True)
    rows = [
        "Occurrence Ref,Offence Date,Home Office Offence Code,Weapon,Proactive,Occurrence Status,Nominal ID,Involvement"
    ]
    for k, (code, role) in enumerate(zip(codes, roles)):
        rows.append(f"C{k},0{k + 1}/06/2022 10:00,{code} ,,N,Recorded,N1 ,{role}")
    (folder / "crime_involvements.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (folder / "nominals.csv").write_text("Nominal ID,DOB,Gender\nN1,01/02/2005,Male\n", encoding="utf-8")
    (folder / "code_map.csv").write_text("local_code,offence_code\n", encoding="utf-8")
    (folder / "mapping.toml").write_text(importer.template(), encoding="utf-8")
    return folder


def test_unmapped_codes_are_an_error_listing_each_code(tmp_path):
    folder = _small_export(tmp_path / "raw", codes=("XX9", "XX9", "8G"), roles=("Suspect", "Victim", "Suspect"))
    with pytest.raises(FdkitDataError, match=r"offence codes with no mapping: 'XX9 ' \(2 rows\)"):
        importer.import_export(folder, folder / "mapping.toml")


def test_unmapped_codes_can_be_dropped_and_counted(tmp_path):
    folder = _small_export(tmp_path / "raw", codes=("XX9", "XX9", "8G"), roles=("Suspect", "Victim", "Suspect"))
    text = (folder / "mapping.toml").read_text() + 'unmapped = "drop"\n'
    (folder / "mapping.toml").write_text(text)
    result = importer.import_export(folder, folder / "mapping.toml")
    row = result.ledger.set_index("reason").loc["unmapped offence code"]
    assert row["rows"] == 2 and row["examples"] == "'XX9 ' (2)"
    assert result.records.events["offence_code"].tolist() == ["8G"]


def test_a_code_map_listing_one_code_in_two_cases_folds_the_rows_that_agree_and_counts_them(tmp_path, capsys):
    # A force's export holds 8G and 8g for one code; the analyst lists both, each mapped onto 8G.
    folder = _small_export(tmp_path / "raw", codes=("8G", "8g", "P7"), roles=("Suspect", "Victim", "Suspect"))
    (folder / "code_map.csv").write_text("local_code,offence_code\n8G,8G\n8g,8G\n P7,10D/1\np7 ,10D/1\n")

    mapping = importer.read_mapping(folder / "mapping.toml")
    assert mapping.code_map == {"8g": "8G", "p7": "10D/1"} and mapping.code_map_folded == ("8g", "p7")
    out = tmp_path / "records"
    assert main(["import", "--mapping", str(folder / "mapping.toml"), "--out", str(out), str(folder)]) == 0

    ledger = pd.read_csv(out / importer.LEDGER_FILE, keep_default_na=False).set_index("reason")
    assert ledger.loc["code map row repeated", ["file", "rows", "examples"]].tolist() == [
        "code_map.csv",
        2,
        "'8g' (1), 'p7' (1)",
    ]
    assert pd.read_csv(out / "events.csv")["offence_code"].tolist() == ["8G", "8G", "10D/1"]
    described = json.loads((out / importer.EXTRACT_FILE).read_text())
    assert described["rows_left_out"] == int(ledger.loc[ledger["file"] != "code_map.csv", "rows"].sum())
    assert "code map row repeated" in capsys.readouterr().out


def test_a_code_map_listing_one_code_onto_two_offence_codes_names_both_rows(tmp_path, capsys):
    folder = _small_export(tmp_path / "raw")
    (folder / "code_map.csv").write_text("local_code,offence_code\n8G,8G\n\n105A,105A\n8g,10D/1\n")

    code = main(["import", "--mapping", str(folder / "mapping.toml"), "--out", str(tmp_path / "out"), str(folder)])

    err = capsys.readouterr().err
    assert code == 1 and not (tmp_path / "out").exists()
    assert (
        "- code_map.csv, column local_code, lines 2, 5: one local code mapped onto two offence codes (case and "
        "spaces are ignored): '8G' onto '8G', '8g' onto '10D/1'; keep one offence code for it"
    ) in err


def test_a_typo_in_the_mapping_is_an_error(tmp_path):
    folder = _small_export(tmp_path / "raw")
    text = (folder / "mapping.toml").read_text().replace("[values]", "[value]")
    (folder / "mapping.toml").write_text(text)
    with pytest.raises(FdkitDataError, match="unknown sections: value"):
        importer.read_mapping(folder / "mapping.toml")


def test_day_first_dates_need_dayfirst(tmp_path):
    folder = _small_export(tmp_path / "raw")
    text = (folder / "mapping.toml").read_text().replace("dayfirst = true", "dayfirst = false")
    (folder / "mapping.toml").write_text(text)
    with pytest.raises(FdkitDataError, match="look day-first"):
        importer.import_export(folder, folder / "mapping.toml")


def test_three_tables_give_the_same_records_as_one_flat_file(messy, imported, tmp_path):
    folder, _ = messy
    flat = pd.read_csv(folder / "crime_involvements.csv", dtype=str, keep_default_na=False, encoding="utf-8-sig")
    flat = flat[(flat != "").any(axis=1)]
    crime_columns = ["Occurrence Ref", "Offence Date", "Home Office Offence Code", "Weapon", "Proactive"]
    crime_columns.append("Occurrence Status")
    stripped = flat.apply(lambda c: c.str.strip())
    first = ~stripped["Occurrence Ref"].duplicated()
    raw = tmp_path / "raw3"
    raw.mkdir()
    # The flat file repeats each crime's details on every row, spelled differently; keep one.
    flat.loc[first.to_numpy(), crime_columns].to_csv(raw / "crimes.csv", index=False)
    flat[["Occurrence Ref", "Nominal ID", "Involvement", "Officer Notes"]].to_csv(raw / "links.csv", index=False)
    for name in ("nominals.csv", "code_map.csv"):
        (raw / name).write_bytes((folder / name).read_bytes())
    mapping = importer.template().replace(
        'involvements = "crime_involvements.csv"   # or: crimes = ..., links = ... (three-table exports)',
        'crimes = "crimes.csv"\nlinks = "links.csv"',
    )
    (raw / "mapping.toml").write_text(mapping)
    result = importer.import_export(raw, raw / "mapping.toml")
    importer.write_import(result, tmp_path / "out3")
    for name in ("persons.csv", "events.csv"):
        assert (tmp_path / "out3" / name).read_bytes() == (imported / name).read_bytes()
    ledger = result.ledger.set_index(["file", "reason"])["rows"]
    assert ledger[("crimes.csv", "status not kept")] == ADDED["status not kept"]
    assert ledger[("links.csv", "crime left out")] == ADDED["status not kept"]


# --- a unit's own lookup ---------------------------------------------------------------------


def _unit_lookup(path: Path) -> Path:
    table = offences.lookup()
    extra = pd.DataFrame(
        [
            ("LK1", "Possession of a bladed article (local)", "Possession of weapons", False, False, True),
            ("LV1", "Assault with injury (local)", "Violence with injury", True, False, False),
        ],
        columns=list(offences.LOOKUP_COLUMNS),
    )
    offences.write_lookup(pd.concat([table, extra], ignore_index=True), path)
    return path


def test_a_unit_lookup_drives_screening_and_outcomes(tmp_path):
    """Done-when 2: codes the kit does not ship make someone eligible and count as outcomes."""
    lookup_path = _unit_lookup(tmp_path / "our_offences.csv")
    raw = tmp_path / "raw"
    raw.mkdir()
    rows = [
        HEADER,
        "C1,01/06/2022,LK1,,N,Recorded,N1,Suspect",
        "C2,01/07/2022,LV1,,N,Recorded,N1,Suspect",
        "C3,01/03/2023,LK1,,N,Recorded,N1,Suspect",
        "C4,01/04/2023,LK1,,Y,Recorded,N1,Suspect",
        "C5,01/04/2023,LV1,,N,Recorded,N2,Victim",
    ]
    (raw / "crime_involvements.csv").write_text("\n".join(rows) + "\n")
    (raw / "nominals.csv").write_text("Nominal ID,DOB,Gender\nN1,01/02/2005,Male\nN2,01/02/2006,Female\n")
    (raw / "code_map.csv").write_text("local_code,offence_code\n")
    (raw / "mapping.toml").write_text(importer.template())
    with pytest.raises(FdkitDataError, match="'LK1' "):
        importer.import_export(raw, raw / "mapping.toml")  # the kit's lookup does not know LK1
    out = tmp_path / "records"
    args = ["import", "--mapping", str(raw / "mapping.toml"), "--lookup", str(lookup_path), "--out", str(out), str(raw)]
    assert main(args) == 0
    assert (out / offences.LOOKUP_FILE).is_file()
    records = load_records(out)  # the folder carries its lookup
    assert records.lookup is not None
    screened = eligibility.screen(records, "2023-02-01").eligible
    assert screened["person_id"].tolist() == ["N1"]
    assert screened["index_crimes"].tolist() == [1]

    from fdkit.randomise import Allocation

    table = pd.DataFrame(
        {
            "person_id": ["N1", "N2"],
            "stratum": "all",
            "arm": ["treatment", "control"],
            "wave": 1,
            "randomised_on": pd.Timestamp("2023-02-01"),
        }
    )
    weights = pd.DataFrame({"offence_code": ["LK1", "LV1"], "weight": [100.0, 50.0]})
    frame = outcomes.build_frame(records, Allocation(table=table), weights=weights, allow_incomplete=True)
    frame = frame.set_index("person_id")
    assert frame.loc["N1", "knife_suspect"] == 1  # C3; C4 is police-initiated
    assert frame.loc["N1", "knife_suspect_all"] == 2
    assert frame.loc["N1", "harm_suspect"] == 100.0
    assert frame.loc["N1", "violence_suspect_baseline"] == 1
    assert frame.loc["N2", "violence_victim"] == 1

    # The command line: screen reads the folder's lookup; the seal records it.
    eligible = tmp_path / "eligible.csv"
    assert main(["screen", "--records", str(out), "--reference-date", "2023-02-01", "--out", str(eligible)]) == 0
    args = ["randomise", "--eligible", str(eligible), "--n-treated", "1", "--seed", "1", "--date", "2023-02-01"]
    assert main([*args, "--out", str(tmp_path / "allocation.csv"), "--lookup", str(lookup_path)]) == 0
    seal = json.loads((tmp_path / "allocation.seal.json").read_text())
    assert seal["offence_lookup"] == offences.describe_lookup(records.lookup)
    assert "SHA-256" in seal["offence_lookup"]


def test_the_report_reads_the_records_with_the_lookup_given(tmp_path):
    """report --lookup: the report is built from records read with the unit's lookup, and names it."""
    import html

    from fdkit import report
    from fdkit.report_html import report_to_html

    lookup = offences.read_lookup(_unit_lookup(tmp_path / "our_offences.csv"))
    records = load_records(REPO / "synthetic", lookup=lookup)
    settings = report.ReportSettings(
        REPO / "synthetic",
        REPO / "synthetic" / "allocation.csv",
        deviation="the records are read with a unit's lookup, not the one the shipped plan pins",
    )
    built = report.build_report(settings, records=records)
    assert offences.describe_lookup(built.records.lookup) == offences.describe_lookup(lookup)
    assert html.escape(offences.describe_lookup(lookup)) in report_to_html(built)


def test_a_lookup_without_a_flag_is_refused(tmp_path):
    table = offences.lookup().assign(sexual=False)
    offences.write_lookup(table, tmp_path / "bad.csv")
    with pytest.raises(FdkitDataError, match="no offence code is flagged sexual"):
        offences.read_lookup(tmp_path / "bad.csv")


def test_two_lookups_for_one_folder_are_refused(tmp_path, capsys):
    out = tmp_path / "records"
    records = load_records(REPO / "synthetic")
    from dataclasses import replace

    from fdkit.records import write_records

    write_records(replace(records, lookup=offences.lookup()), out)
    other = offences.lookup().assign(knife_offence=lambda t: t["offence_code"].eq("10D/1"))
    offences.write_lookup(other, tmp_path / "other.csv")
    assert main(["validate", str(out), "--lookup", str(tmp_path / "other.csv")]) == 1
    assert "differs from the one given" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["validate", "screen", "analyse", "report", "import", "merge"])
def test_every_command_that_classifies_offences_takes_lookup(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = capsys.readouterr().out
    assert "--lookup CSV" in text and "example" in text


# --- follow-up extracts ----------------------------------------------------------------------


def _extract(synthetic, folder: Path, start: str, end: str, changes=None) -> Path:
    from dataclasses import replace

    from fdkit.records import write_records

    events = synthetic.events
    events = events[(events["offence_date"] >= start) & (events["offence_date"] <= end)].copy()
    if changes is not None:
        events = changes(events)
    write_records(replace(synthetic, events=events.reset_index(drop=True), engagement=None), folder)
    (folder / importer.EXTRACT_FILE).write_text(json.dumps({"coverage_start": start, "coverage_end": end}))
    return folder


def test_a_two_extract_analysis_works(synthetic, tmp_path, capsys):
    """Done-when 3: a baseline extract and a later one, merged, analyse like the whole records."""
    baseline = _extract(synthetic, tmp_path / "x2023", "2018-02-01", "2023-01-31")
    reclassified = set()

    def reclassify(events):
        # The later extract re-records three 2022 assaults as GBH, as forces do when injuries are known.
        rows = events.index[(events["offence_code"] == "8G") & (events["offence_date"] >= "2022-01-01")][:3]
        reclassified.update({(events.at[r, "crime_id"], events.at[r, "person_id"]) for r in rows})
        events.loc[rows, "offence_code"] = "8F"
        return events

    later = _extract(synthetic, tmp_path / "x2024", "2021-02-01", "2024-01-31", reclassify)
    merged = tmp_path / "merged"
    assert main(["merge", "--out", str(merged), str(baseline), str(later)]) == 0
    assert "re-recorded values changed" in capsys.readouterr().out
    conflicts = pd.read_csv(merged / importer.CONFLICTS_FILE)
    assert len(conflicts) == 3 and set(conflicts["later"]) == {"8F"}
    extracts = pd.read_csv(merged / importer.EXTRACTS_FILE)
    assert extracts["coverage_start"].tolist() == ["2018-02-01", "2021-02-01"]
    assert extracts["coverage_end"].tolist() == ["2023-01-31", "2024-01-31"]
    records = load_records(merged)
    assert len(records.events) == len(synthetic.events)
    key = ["crime_id", "person_id", "role"]
    together = records.events.sort_values(key, ignore_index=True)
    expected = synthetic.events.sort_values(key, ignore_index=True)
    changed = together.apply(lambda r: (r["crime_id"], r["person_id"]) in reclassified, axis=1)
    unchanged = ~changed.to_numpy()
    pd.testing.assert_frame_equal(
        together[unchanged].reset_index(drop=True), expected.loc[unchanged, together.columns].reset_index(drop=True)
    )
    assert (together.loc[changed, "offence_code"] == "8F").all()
    # The outcome frame from the merged extracts is the whole records' frame, but for the
    # three re-recorded assaults (now GBH, which is also violent: counts are unchanged).
    allocation = randomise.read_allocation(REPO / "synthetic" / "allocation.csv")
    frame = outcomes.build_frame(records, allocation)
    whole = outcomes.build_frame(synthetic, allocation)
    counts = [c for c in frame.columns if c.endswith(("_suspect", "_victim", "_baseline")) and "harm" not in c]
    pd.testing.assert_frame_equal(frame[counts], whole[counts])
    # The baseline extract alone does not cover the follow-up: the analysis refuses it.
    with pytest.raises(
        FdkitDataError, match=r"follow-up ends after the extract's declared coverage in extract.json \(2023-01-31"
    ):
        outcomes.build_frame(load_records(baseline), allocation)


def test_the_follow_up_check_uses_the_declared_coverage(synthetic, tmp_path):
    """A quiet last week is not missing data when the extract says it covers it, and vice versa."""
    allocation = randomise.read_allocation(REPO / "synthetic" / "allocation.csv")
    quiet = _extract(synthetic, tmp_path / "quiet", "2018-02-01", "2024-01-24")
    with pytest.raises(FdkitDataError, match="declared coverage"):
        outcomes.build_frame(load_records(quiet), allocation)  # its extract.json says 2024-01-24
    (quiet / importer.EXTRACT_FILE).write_text(
        json.dumps({"coverage_start": "2018-02-01", "coverage_end": "2024-01-31"})
    )
    outcomes.build_frame(load_records(quiet), allocation)
    (quiet / importer.EXTRACT_FILE).unlink()
    with pytest.raises(FdkitDataError, match="follow-up ends after the last recorded event"):
        outcomes.build_frame(load_records(quiet), allocation)


@pytest.mark.slow
def test_analyse_runs_on_merged_extracts(synthetic, tmp_path):
    baseline = _extract(synthetic, tmp_path / "x2023", "2018-02-01", "2023-01-31")
    later = _extract(synthetic, tmp_path / "x2024", "2021-02-01", "2024-01-31")
    merged = tmp_path / "merged"
    assert main(["merge", "--out", str(merged), str(baseline), str(later)]) == 0
    out = tmp_path / "results.csv"
    args = ["analyse", "--records", str(merged), "--allocation", str(REPO / "synthetic" / "allocation.csv")]
    assert main([*args, "--out", str(out)]) == 0  # as the allocation's sealed plan says
    assert set(pd.read_csv(out)["outcome"]) >= {"harm_suspect", "knife_suspect", "knife_suspect_all"}
