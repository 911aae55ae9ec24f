"""Small in-memory records for tests: write only the columns a test cares about."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fdkit.records import Records


def person(person_id, date_of_birth, sex="M"):
    return {"person_id": person_id, "date_of_birth": date_of_birth, "sex": sex}


def event(crime_id, person_id, offence_date, code="8G", role="suspect", knife=False, police_initiated=False):
    return {
        "crime_id": crime_id,
        "person_id": person_id,
        "offence_date": offence_date,
        "role": role,
        "offence_code": code,
        "knife": knife,
        "police_initiated": police_initiated,
    }


def make_records(persons, events) -> Records:
    """Records with the dtypes :func:`fdkit.load_records` produces."""
    persons = pd.DataFrame(persons, columns=["person_id", "date_of_birth", "sex"])
    events = pd.DataFrame(
        events,
        columns=["crime_id", "person_id", "offence_date", "role", "offence_code", "knife", "police_initiated"],
    )
    persons["date_of_birth"] = pd.to_datetime(persons["date_of_birth"])
    events["offence_date"] = pd.to_datetime(events["offence_date"])
    for column in ("knife", "police_initiated"):
        events[column] = events[column].astype(bool)
    for frame, columns in (
        (persons, ("person_id", "sex")),
        (events, ("crime_id", "person_id", "role", "offence_code")),
    ):
        for column in columns:
            frame[column] = frame[column].astype("str")
    return Records(persons=persons, events=events)


def randomise_command(eligible, out, *extra, seed=1, under_18s=20, adults=25) -> list[str]:
    """``fdkit randomise`` as the trial ran it: by age band, 20 + 25 treated places, on 2023-02-01."""
    return [
        "randomise",
        "--eligible",
        str(eligible),
        "--strata",
        "age_band",
        "--treat",
        f"11-17={under_18s}",
        "--treat",
        f"18-25={adults}",
        "--seed",
        str(seed),
        "--date",
        "2023-02-01",
        "--out",
        str(out),
        *extra,
    ]


def share(flags, label: str, unit: str = "trials") -> float:
    """The share of True among simulated trials (or networks), printed with its Monte Carlo SE."""
    flags = np.asarray(flags, dtype=bool)
    value = float(flags.mean())
    se = np.sqrt(value * (1 - value) / flags.size)
    print(f"\n{label}: {100 * value:.1f}% (MC SE {100 * se:.1f}, {flags.size:,} {unit})")
    return value
