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
from collections.abc import Sequence
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


def relink(
    table: pd.DataFrame, ids: pd.Series | Sequence[str], key: bytes, *, column: str = "person_id"
) -> pd.DataFrame:
    """Add each pseudonym's real ID back to a table: the unit's case-worker list.

    Each real ID is trimmed of surrounding spaces before it is hashed, exactly as
    ``fdkit import`` trims it before writing, so a padded ``'N1234 '`` in the unit's list
    finds its person. Nothing is dropped: a pseudonym that no ID produces is an error.

    Parameters
    ----------
    table : pandas.DataFrame
        A table with pseudonyms in ``column`` (an allocation, say).
    ids : pandas.Series or sequence of str
        The unit's real IDs (a nominals file's ID column); repeats and blanks are ignored.
    key : bytes
        The key the pseudonyms were made with (:func:`read_key`).
    column : str
        The pseudonym column (default ``person_id``).

    Returns
    -------
    pandas.DataFrame
        ``table`` with a ``real_id`` column after ``column``, in the same row order.

    Raises
    ------
    fdkit.FdkitDataError
        If some pseudonyms match no ID (the wrong key, or an ID missing from the list),
        naming how many and the first of them.

    Examples
    --------
    >>> key = b"k" * 32
    >>> table = pd.DataFrame({"person_id": pseudonym(pd.Series(["N1"]), key, "P")})
    >>> relink(table, pd.Series([" N1 ", "N2"]), key)["real_id"].tolist()
    ['N1']
    """
    real = pd.Series(pd.unique(pd.Series(list(ids), dtype="str").str.strip()))
    real = real[real.ne("")]
    by_pseudonym = pd.Series(real.to_numpy(), index=pseudonym(real, key, "P").to_numpy())
    found = table[column].map(by_pseudonym)
    if (missing := found.isna()).any():
        shown = ", ".join(table.loc[missing, column].astype(str).head(10))
        message = (
            f"{int(missing.sum()):,} pseudonyms match none of the IDs given: {shown}; check the key "
            "and that the ID list is the one the records were imported from"
        )
        raise FdkitDataError([Problem(None, message, column, count=int(missing.sum()))])
    result = table.copy()
    result.insert(result.columns.get_loc(column) + 1, "real_id", found.astype(str))
    return result


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
