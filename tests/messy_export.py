"""A messy records-system export built from clean records, and an independent screen of it.

:func:`write_messy_export` turns records in the kit's contract into what a force's system
and Excel make of them: one flat occurrence-involvement file plus a nominals file, in the
column names of ``fdkit import --template``, with

* day-first dates (``21/11/2022``), some with times;
* a UTF-8 byte-order mark and CRLF line endings;
* trailing and leading spaces in IDs, roles and codes, and codes in lower case;
* blank rows (empty lines and rows of empty cells) and exact duplicate rows;
* involvements the trial ignores (Witness, Reporting Person) and several spellings of a
  suspect (Offender, Arrested, Charged), including a second row for one person and crime;
* local offence codes, translated by a code map (written beside the mapping);
* crimes with statuses to leave out, people with no nominal record, nominals with no date
  of birth, names and free text the import must not copy.

None of the additions can make anyone in the clean records eligible or ineligible, so the
cohort from the export must be the clean records' cohort.

:func:`independent_cohort` screens such an export with plain Python (the ``csv`` module,
``datetime``, the offence lookup read as a CSV file): no fdkit function is used, so it
checks ``fdkit import`` and ``fdkit.eligibility.screen`` together against a second,
separately written reading of the same rule.
"""

from __future__ import annotations

import calendar
import csv
import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

#: Kit codes the export writes in a local notation, and that notation.
LOCAL_CODES = {"8G": "008/07", "10D/1": "010/D1", "10D/2": "010/D2", "105A": "105/A", "5A": "005/A"}

#: What the generator added, by ledger reason (checked against the import's ledger).
ADDED = {
    "blank row": 25,
    "duplicate row": 40,
    "status not kept": 30,
    "witness or other role": 300,
    "no nominal record": 20,
    "no date of birth": 10,
    "same crime, person and role": 15,
}


def write_messy_export(records, folder: Path, *, seed: int = 13, mapping_text: str) -> dict[str, int]:
    """Write ``crime_involvements.csv``, ``nominals.csv``, ``code_map.csv`` and ``mapping.toml``.

    Parameters
    ----------
    records : fdkit.Records
        Clean records (the shipped synthetic ones).
    folder : pathlib.Path
        Created; the export, the code map and the mapping are written into it.
    seed : int
    mapping_text : str
        The mapping to write as ``mapping.toml`` (the template, as written).

    Returns
    -------
    dict of str to int
        Rows added for each ledger reason (the nominals file's no-date-of-birth rows under
        ``"no date of birth (nominals)"``).
    """
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    events = records.events.reset_index(drop=True)
    persons = records.persons.reset_index(drop=True)
    n = len(events)

    def pad(values, share):
        values = pd.Series(values, dtype=str).to_numpy(dtype=object)
        chosen = rng.random(len(values)) < share
        spaces = rng.choice(["{} ", "{}  ", " {}", " {} "], size=len(values))
        return np.where(chosen, [form.format(v) for form, v in zip(spaces, values)], values)

    def day_first(dates):
        text = pd.Series(dates).dt.strftime("%d/%m/%Y").to_numpy(dtype=object)
        hours = rng.integers(0, 24, len(text))
        minutes = rng.integers(0, 60, len(text))
        timed = rng.random(len(text)) < 0.3
        return np.where(timed, [f"{t} {h:02d}:{m:02d}" for t, h, m in zip(text, hours, minutes)], text)

    suspect_words = np.array(["Suspect", "Offender", "Arrested", "Charged", "suspect"])
    roles = np.where(
        events["role"].eq("suspect"),
        suspect_words[rng.integers(0, len(suspect_words), n)],
        np.array(["Victim", "VICTIM"])[rng.integers(0, 2, n)],
    )
    codes = events["offence_code"].map(lambda code: LOCAL_CODES.get(code, code)).to_numpy(dtype=object)
    lower = rng.random(n) < 0.05
    codes = np.where(lower, [c.lower() for c in codes], codes)
    knife_words = np.array(["Knife", "Bladed Article", "Knife/Sharp Instrument", "knife "])
    other_weapons = np.array(["", "", "", "None", "Firearm", "Blunt Instrument"])
    weapons = np.where(
        events["knife"].to_numpy(),
        knife_words[rng.integers(0, len(knife_words), n)],
        other_weapons[rng.integers(0, len(other_weapons), n)],
    )
    proactive = np.where(
        events["police_initiated"].to_numpy(),
        np.array(["Y", "y ", "Y"])[rng.integers(0, 3, n)],
        np.array(["N", "", "n"])[rng.integers(0, 3, n)],
    )
    flat = pd.DataFrame(
        {
            "Occurrence Ref": pad(events["crime_id"], 0.05),
            "Offence Date": day_first(events["offence_date"]),
            "Home Office Offence Code": pad(codes, 0.1),
            "Weapon": weapons,
            "Proactive": proactive,
            "Occurrence Status": np.array(["Recorded", "Recorded ", "recorded"])[rng.integers(0, 3, n)],
            "Nominal ID": pad(events["person_id"], 0.05),
            "Involvement": pad(roles, 0.1),
            "Officer Notes": np.where(rng.random(n) < 0.1, "seen near the station, Grange Road", ""),
        }
    )
    # A second, identical-in-meaning involvement for some suspects (Suspect and Arrested).
    suspects = np.flatnonzero(events["role"].eq("suspect").to_numpy())
    again = flat.iloc[rng.choice(suspects, ADDED["same crime, person and role"], replace=False)].copy()
    again["Involvement"] = "Arrested "
    again["Officer Notes"] = "arrest recorded separately"
    # Witnesses and reporting persons, on existing crimes, for existing people.
    extra = flat.iloc[rng.integers(0, n, ADDED["witness or other role"])].copy()
    extra["Nominal ID"] = pad(persons["person_id"].to_numpy()[rng.integers(0, len(persons), len(extra))], 0.2)
    extra["Involvement"] = rng.choice(["Witness", "Reporting Person", "Witness ", "Informant"], len(extra))
    # Crimes later transferred or no-crimed: knife crimes of real suspects, which would count.
    knives = np.flatnonzero(events["offence_code"].isin(["10D/1", "10D/2"]).to_numpy())
    cancelled = flat.iloc[rng.choice(knives, ADDED["status not kept"], replace=False)].copy()
    cancelled["Occurrence Ref"] = [f"X{k:06d}" for k in range(len(cancelled))]
    cancelled["Occurrence Status"] = rng.choice(["Transferred", "No Crime", "Cancelled "], len(cancelled))
    # Involvements of people the nominals file does not have.
    strangers = flat.iloc[rng.choice(suspects, ADDED["no nominal record"], replace=False)].copy()
    strangers["Nominal ID"] = [f"Q{k:05d} " for k in range(len(strangers))]
    # People with no date of birth: nominals with a blank DOB, and their involvements.
    unborn_ids = [f"U{k:05d}" for k in range(ADDED["no date of birth"])]
    unborn = flat.iloc[rng.choice(suspects, len(unborn_ids), replace=False)].copy()
    unborn["Nominal ID"] = unborn_ids
    table = pd.concat([flat, again, extra, cancelled, strangers, unborn], ignore_index=True)
    duplicates = table.iloc[rng.integers(0, len(flat), ADDED["duplicate row"])]
    table = pd.concat([table, duplicates], ignore_index=True)
    table = table.iloc[rng.permutation(len(table))].reset_index(drop=True)
    lines = table.to_csv(index=False, lineterminator="\r\n").split("\r\n")
    header, body = lines[0], [line for line in lines[1:] if line]
    blanks = ADDED["blank row"]
    where = sorted(rng.integers(0, len(body), blanks).tolist(), reverse=True)
    for k, at in enumerate(where):
        body.insert(at, "" if k % 2 else "," * (table.shape[1] - 1))
    (folder / "crime_involvements.csv").write_bytes(("\ufeff" + "\r\n".join([header, *body]) + "\r\n").encode("utf-8"))

    names = persons.get("name", pd.Series("", index=persons.index)).fillna("")
    gender = persons["sex"].map({"M": "Male", "F": "Female"}).fillna("Unknown")
    gender = np.where(rng.random(len(gender)) < 0.1, gender.str.upper(), gender)
    nominals = pd.DataFrame(
        {
            "Nominal ID": pad(persons["person_id"], 0.05),
            "Surname": names.str.split().str[-1],
            "Forename": names.str.split().str[0],
            "DOB": persons["date_of_birth"].dt.strftime("%d/%m/%Y"),
            "Gender": pad(gender, 0.1),
        }
    )
    unborn_rows = pd.DataFrame(
        {"Nominal ID": unborn_ids, "Surname": "Nobody", "Forename": "Known", "DOB": "", "Gender": "Male"}
    )
    nominals = pd.concat([nominals, unborn_rows], ignore_index=True)
    nominals = nominals.iloc[rng.permutation(len(nominals))]
    nominals.to_csv(folder / "nominals.csv", index=False, lineterminator="\r\n", encoding="utf-8-sig")

    code_map = pd.DataFrame({"local_code": list(LOCAL_CODES.values()), "offence_code": list(LOCAL_CODES)})
    code_map.to_csv(folder / "code_map.csv", index=False, lineterminator="\n")
    (folder / "mapping.toml").write_text(mapping_text, encoding="utf-8")
    return {**ADDED, "no date of birth (nominals)": len(unborn_ids)}


# --- the independent screen -------------------------------------------------------------------

SUSPECT = {"suspect", "offender", "arrested", "charged"}
VICTIM = {"victim"}
KNIFE_WEAPONS = {"knife", "bladed article", "knife/sharp instrument"}
KEEP_STATUS = {"recorded"}


def _months_back(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` calendar months earlier, clipped to the month's end."""
    total = day.year * 12 + (day.month - 1) - months
    year, month = divmod(total, 12)
    month += 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _day_first(text: str) -> dt.date:
    day, month, year = text.split()[0].split("/")
    return dt.date(int(year), int(month), int(day))


def _rows(path: Path):
    with path.open(encoding="utf-8-sig", newline="") as handle:
        for row in csv.DictReader(handle):
            yield {key.strip(): (value or "").strip() for key, value in row.items()}


def independent_cohort(folder: Path, lookup_csv: Path, reference: dt.date) -> set[str]:
    """The people eligible on ``reference`` in a messy export, by plain Python.

    The rule (the trial's, with the kit's day rule): aged 11-25 on the reference date; a
    knife crime as a suspect dated in the 12 months before it (``R - 12 months <= date <
    R``); and a different knife, violent or sexual crime as a suspect in the 24 months
    before it. A knife crime has a knife code or a knife weapon.
    """
    flags = {}
    for row in _rows(lookup_csv):
        flags[row["offence_code"].casefold()] = {
            k: row[k].lower() == "true" for k in ("violent", "sexual", "knife_offence")
        }
    local = {row["local_code"].casefold(): row["offence_code"].casefold() for row in _rows(folder / "code_map.csv")}
    births = {}
    for row in _rows(folder / "nominals.csv"):
        if row["DOB"]:
            births[row["Nominal ID"]] = _day_first(row["DOB"])
    index_start, other_start = _months_back(reference, 12), _months_back(reference, 24)
    index_crimes, other_crimes = {}, {}
    for row in _rows(folder / "crime_involvements.csv"):
        if not any(row.values()) or row["Occurrence Status"].casefold() not in KEEP_STATUS:
            continue
        if row["Involvement"].casefold() not in SUSPECT:
            continue
        person = row["Nominal ID"]
        if person not in births:
            continue
        day = _day_first(row["Offence Date"])
        if not other_start <= day < reference:
            continue
        code = row["Home Office Offence Code"].casefold()
        flag = flags[local.get(code, code)]
        knife = flag["knife_offence"] or row["Weapon"].casefold() in KNIFE_WEAPONS
        crime = row["Occurrence Ref"]
        if knife and day >= index_start:
            index_crimes.setdefault(person, set()).add(crime)
        if knife or flag["violent"] or flag["sexual"]:
            other_crimes.setdefault(person, set()).add(crime)
    eligible = set()
    for person, index in index_crimes.items():
        born = births[person]
        age = reference.year - born.year - ((reference.month, reference.day) < (born.month, born.day))
        if not 11 <= age <= 25:
            continue
        if any(other != first for first in index for other in other_crimes.get(person, ())):
            eligible.add(person)
    return eligible
