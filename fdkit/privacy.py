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
import math
import os
import secrets
import stat
import zlib
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from ._text import shorten
from .records import ENGAGEMENT_COLUMNS, EVENT_COLUMNS, PERSON_COLUMNS, FdkitDataError, Problem, Records

__all__ = ["MIN_KEY_BITS", "key_strength", "new_key", "pseudonym", "pseudonymise", "read_key"]

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


#: The fewest bits of secret a key must carry, by :func:`key_strength`'s estimate.
MIN_KEY_BITS = 128

# Words and keyboard walks people put in keys. None is spelled only with the letters a-f, so
# no random hexadecimal key can contain one.
_WEAK_WORDS = (
    tuple(
        """password passw0rd secret letmein qwerty qwertyuiop asdfgh asdfghjkl zxcvbn qazwsx 1qaz2wsx
    admin administrator welcome police thames valley milton keynes knife knives crime focused
    deterrence fdkit changeme default monkey dragon master shadow sunshine football iloveyou
    trustno1 princess baseball superman hello login test testing pass love london england
    summer winter spring autumn unit violence reduction analyst private token hmac example
    sample secure security pseudonym pseudonymise hunter killer batman letme access""".split()
    )
    + tuple(
        row[i : i + 4]
        for row in ("qwertyuiop", "asdfghjkl", "zxcvbnm", "poiuytrewq", "lkjhgfdsa", "mnbvcxz")
        for i in range(len(row) - 3)
    )
    + ("1qaz", "2wsx", "3edc", "4rfv", "5tgb", "6yhn", "7ujm", "8ik,", "9ol.", "0p;/", "zaq1", "xsw2", "cde3", "vfr4")
)
#: Runs of repeats or steps of one that a random key may hold by chance, and are forgiven.
_CHANCE_RUNS = 3


def key_strength(key: bytes) -> tuple[float, str]:
    """Estimate the secret bits in a key, and the main weakness found (or ``""``).

    A deliberately simple, cautious estimate: dictionary words and keyboard walks count for
    nothing, nor does a character that continues a run of repeats or steps of one
    (``aaaa``, ``abcd``, ``4321``; the first few such characters are forgiven, since random
    keys hold some by chance); each remaining character counts log2 of the alphabet the key
    draws on (10 for digits, 16 for hexadecimal, 36 for lowercase and digits, up to 256 for
    binary). The estimate is capped by the key's compressed size, which catches repeated
    blocks.

    Examples
    --------
    >>> key_strength(b"a" * 32)[0] < MIN_KEY_BITS
    True
    >>> key_strength(b"abcdefghijklmnopqrstuvwxyz012345")[1]
    'sequential characters'
    """
    text = key.decode("latin-1")
    lowered = text.lower()
    reason = ""
    for word in sorted(_WEAK_WORDS, key=len, reverse=True):
        if word in lowered:
            lowered = lowered.replace(word, "\0")
            reason = reason or "dictionary words or keyboard walks"
    repeated = stepped = kept = 0
    step = previous = None
    for character in lowered:
        if character == "\0":
            step = previous = None
            continue
        new_step = None if previous is None else ord(character) - ord(previous)
        if new_step is not None and new_step == step and abs(step) <= 1:
            if step == 0:
                repeated += 1
            else:
                stepped += 1
        else:
            kept += 1
        step, previous = new_step, character
    forgiven = min(repeated + stepped, _CHANCE_RUNS)
    bits = (kept + forgiven) * math.log2(_alphabet_size(text))
    if not reason and repeated + stepped > _CHANCE_RUNS:
        reason = "repeated characters" if repeated >= stepped else "sequential characters"
    compressed = max(0, len(zlib.compress(key, 9)) - 8) * 8
    if compressed < bits:
        bits = compressed
        reason = reason or "repeated blocks"
    if len(set(text)) < 8:
        bits = min(bits, len(set(text)) * 8.0)
        reason = reason or f"only {len(set(text))} different characters"
    return bits, reason if bits < MIN_KEY_BITS else ""


def _alphabet_size(text: str) -> int:
    if any(not (" " <= c <= "~") for c in text):
        return 256
    if all(c in "0123456789" for c in text):
        return 10
    if all(c in "0123456789abcdef" for c in text) or all(c in "0123456789ABCDEF" for c in text):
        return 16
    size = 0
    for members, count in (
        (str.isdigit, 10),
        (str.islower, 26),
        (str.isupper, 26),
        (lambda c: not c.isalnum(), 33),
    ):
        if any(members(c) for c in text):
            size += count
    return max(size, 2)


def read_key(path: str | Path, *, allow_insecure_file: bool = False) -> bytes:
    """Read a secret key file, refusing a weak key or a file others may read.

    The file is read as bytes: a text key (such as the 64 hexadecimal characters
    :func:`new_key` writes) has surrounding whitespace removed; any other bytes (32 bytes
    from ``/dev/urandom``, say) are used as they are.

    Parameters
    ----------
    path : str or pathlib.Path
    allow_insecure_file : bool
        Use a key file that the group or others may read (``--insecure-key-file``); as
        ssh does, the kit refuses one otherwise, because a key anyone can read protects
        nothing.

    Raises
    ------
    fdkit.FdkitDataError
        If the file is missing, unreadable, readable by others, or the key is too short or
        too predictable (see :func:`key_strength`); the message says how to make a good key.
    """
    path = Path(path)
    fix = "fdkit pseudonymise --new-key FILE writes a strong one"

    def refuse(message: str) -> FdkitDataError:
        return FdkitDataError([Problem(path.name, message)], source=path)

    if not path.is_file():
        raise refuse(f"the key file does not exist; create one with {fix.split(' writes')[0]}")
    mode = path.stat().st_mode
    if os.name == "posix" and mode & 0o044 and not allow_insecure_file:
        raise refuse(
            f"the key file can be read by {'others' if mode & 0o004 else 'its group'} "
            f"(permissions {stat.filemode(mode)}); make it private with chmod 600 {path}, "
            "or pass --insecure-key-file to use it anyway"
        )
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise refuse(f"the key file cannot be read ({error.strerror})") from None
    try:
        text = raw.decode("utf-8").strip()
        is_text = text.isprintable()
    except UnicodeDecodeError:
        is_text = False
    key = text.encode("utf-8") if is_text else raw
    if (is_text and len(key) < 32) or len(key) < 16:
        unit = "characters" if is_text else "bytes"
        raise refuse(f"the key is {len(key)} {unit} long; use at least {32 if is_text else 16} ({fix})")
    bits, weakness = key_strength(key)
    if bits < MIN_KEY_BITS:
        raise refuse(
            f"the key is too easy to guess ({weakness}; about {bits:.0f} bits of secret by a simple "
            f"estimate, and at least {MIN_KEY_BITS} are needed): anyone could try weak keys on the "
            f"pseudonyms and reverse them. Use a random key ({fix})"
        )
    return key


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
        shown = ", ".join(map(shorten, table.loc[missing, column].astype(str).head(10)))
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
