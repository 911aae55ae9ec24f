"""Pseudonymising a records folder with a keyed hash, so identifiers never leave the unit.

A plain hash of a short identifier is no protection: anyone can hash every possible police
ID and look the results up. A **keyed** hash (HMAC-SHA-256) cannot be reversed or
recomputed without the key, which the unit keeps and never shares. The same key always gives
the same pseudonym, so the unit (and only the unit) can link results back to its systems or
pseudonymise a later extract consistently.

Pseudonyms are the first 16 hex characters (64 bits) of the HMAC, prefixed ``P`` for people
and ``C`` for crimes. With 64 bits a collision between two of a force's million people has a
chance of about 3 in 100 million; :func:`pseudonymise` checks for collisions all the same.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import os
import secrets
from pathlib import Path

import pandas as pd

from .records import ENGAGEMENT_COLUMNS, EVENT_COLUMNS, PERSON_COLUMNS, FdkitDataError, Problem, Records

KEY_BYTES = 32
DIGITS = 16


def new_key(path: str | Path) -> Path:
    """Write a fresh random key (64 hex characters) to a new file readable only by its owner.

    Raises
    ------
    FileExistsError
        If the file exists: a key is never replaced, or earlier pseudonyms could not be
        reproduced.
    """
    path = Path(path)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise FileExistsError(
            f"{path} already exists; a key is never replaced (pseudonyms made with it could not be reproduced)"
        ) from None
    with os.fdopen(descriptor, "w") as handle:
        handle.write(secrets.token_hex(KEY_BYTES) + "\n")
    return path


def read_key(path: str | Path) -> bytes:
    """Read a key file written by :func:`new_key` (any text of at least 32 characters will do)."""
    path = Path(path)
    if not path.is_file():
        raise FdkitDataError(
            [Problem(path.name, "the key file does not exist; create one with fdkit pseudonymise --new-key FILE")],
            source=path,
        )
    key = path.read_text(encoding="utf-8").strip()
    if len(key) < 32:
        raise FdkitDataError(
            [
                Problem(
                    path.name,
                    f"the key is {len(key)} characters long; use at least 32 "
                    "(fdkit pseudonymise --new-key writes a strong one)",
                )
            ],
            source=path,
        )
    return key.encode()


def pseudonym(values: pd.Series, key: bytes, prefix: str) -> pd.Series:
    """HMAC-SHA-256 pseudonyms for a column of identifiers (same value, same pseudonym)."""
    unique = pd.unique(values)
    mapping = {
        value: prefix + hmac.new(key, str(value).encode(), hashlib.sha256).hexdigest()[:DIGITS] for value in unique
    }
    if len(set(mapping.values())) != len(mapping):
        raise FdkitDataError([Problem(None, "two identifiers received the same pseudonym; use a different key")])
    return values.map(mapping).astype("str")


def pseudonymise(records: Records, key: bytes) -> Records:
    """Replace ``person_id`` and ``crime_id`` everywhere with keyed pseudonyms.

    Only the contract's columns are kept: any extra column (names, postcodes, free text)
    could identify someone, so all are dropped. Dates of birth are kept because eligibility
    needs them.

    Examples
    --------
    >>> safe = pseudonymise(load_records("extract"), read_key("unit.key"))  # doctest: +SKIP
    """
    persons = records.persons.loc[:, list(PERSON_COLUMNS)]
    persons = persons.assign(person_id=pseudonym(persons["person_id"], key, "P"))
    events = records.events.loc[:, list(EVENT_COLUMNS)].assign(
        person_id=pseudonym(records.events["person_id"], key, "P"),
        crime_id=pseudonym(records.events["crime_id"], key, "C"),
    )
    engagement = records.engagement
    if engagement is not None:
        engagement = engagement.loc[:, list(ENGAGEMENT_COLUMNS)].assign(
            person_id=pseudonym(engagement["person_id"], key, "P")
        )
    return dataclasses.replace(records, persons=persons, events=events, engagement=engagement, source=None)
