"""The offence lookup: Home-Office-style offence codes and what kind of crime each is.

Every event in a records folder carries an ``offence_code``. The lookup resolves it to a
title, a higher offence group (the Home Office's published groupings: Homicide, Violence
with injury, Robbery, ...) and three flags the trial's rules and outcomes use:

``violent``
    Violence against the person that involves force or the threat of it (homicide,
    violence with and without injury), plus robbery. Stalking and harassment, public
    order and possession offences are not counted as violent.
``sexual``
    Sexual offences. They are not also flagged violent: the trial reported "violent crime"
    and "violence and sexual crime" as separate outcomes.
``knife_offence``
    The offence is itself a knife offence: possession of, or threatening with, an article
    with a blade or point.

**What counts as a knife offence.** An *event* is a knife offence when its code has
``knife_offence`` true **or** the event's own ``knife`` flag is true (a knife or sharp
instrument was involved, as police systems record for, say, a robbery or a wounding).
:func:`is_knife_event` applies this rule; every part of the kit uses it.

The codes follow the Home Office Counting Rules' notation (``1`` murder, ``4/1``
manslaughter, ``5A``, ``8F``, ``8G``, ``10D`` ...). The classes and titles follow the
published counting rules; the sub-codes ``10D/1`` and ``10D/2`` that separate possession
from threatening are the kit's own. A unit whose extract uses other codes can pass its own
lookup file to :func:`read_lookup`: a records folder that holds one as ``offences.csv``
(``fdkit import --lookup`` puts it there) is read with it, and every command takes
``--lookup``, so the same lookup drives validation, screening, outcomes and the report.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "FLAG_COLUMNS",
    "GROUPS",
    "LOOKUP_COLUMNS",
    "LOOKUP_FILE",
    "classify",
    "describe_lookup",
    "is_knife_event",
    "lookup",
    "lookup_sha256",
    "read_lookup",
    "table_sha256",
    "write_lookup",
]

#: The name a unit's own lookup has inside a records folder.
LOOKUP_FILE = "offences.csv"
LOOKUP_COLUMNS = ("offence_code", "title", "group", "violent", "sexual", "knife_offence")
FLAG_COLUMNS = ("violent", "sexual", "knife_offence")

#: The higher offence groups, in the order tables and plots show them.
GROUPS = (
    "Homicide",
    "Violence with injury",
    "Violence without injury",
    "Stalking and harassment",
    "Sexual offences",
    "Robbery",
    "Possession of weapons",
    "Burglary",
    "Theft",
    "Criminal damage and arson",
    "Drug offences",
    "Public order",
)


@lru_cache(maxsize=1)
def _packaged_lookup() -> pd.DataFrame:
    source = resources.files("fdkit").joinpath("data/offences.csv")
    with resources.as_file(source) as path:
        return read_lookup(path)


def lookup() -> pd.DataFrame:
    """Return the offence lookup shipped with the kit.

    Returns
    -------
    pandas.DataFrame
        One row per offence code with columns ``offence_code``, ``title``, ``group``,
        ``violent``, ``sexual`` and ``knife_offence`` (the last three boolean).

    Examples
    --------
    >>> from fdkit import offences
    >>> table = offences.lookup()
    >>> table.loc[table.knife_offence, "offence_code"].tolist()
    ['10D/1', '10D/2']
    """
    return _packaged_lookup().copy()


def read_lookup(path: str | Path) -> pd.DataFrame:
    """Read and check an offence lookup CSV with the columns of :func:`lookup`.

    Parameters
    ----------
    path : str or pathlib.Path
        A CSV file with a header row and the columns ``offence_code``, ``title``,
        ``group``, ``violent``, ``sexual`` and ``knife_offence``.

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    fdkit.FdkitDataError
        If a column is missing, a code is repeated or blank, a flag is not a boolean, or no
        code carries one of the flags the trial's rule and outcomes need (``violent``,
        ``sexual``, ``knife_offence``): such a lookup would silently empty an outcome.
    """
    from .records import FdkitDataError, Problem, read_table  # records depends on this module

    path = Path(path)
    table = read_table(
        path,
        required=LOOKUP_COLUMNS,
        booleans=FLAG_COLUMNS,
        unique=("offence_code",),
        not_blank=("offence_code", "group"),
    )
    if unused := [flag for flag in FLAG_COLUMNS if not table[flag].any()]:
        message = (
            f"no offence code is flagged {', '.join(unused)}; the trial's eligibility rule and outcomes need "
            "violent, sexual and knife offences, so flag the codes that are"
        )
        raise FdkitDataError([Problem(path.name, message, ", ".join(unused))], source=path)
    return table.loc[:, list(LOOKUP_COLUMNS)].reset_index(drop=True)


def write_lookup(table: pd.DataFrame, path: str | Path) -> Path:
    """Write a lookup as CSV that :func:`read_lookup` reads back (flags as ``true``/``false``)."""
    flags = {flag: table[flag].map({True: "true", False: "false"}) for flag in FLAG_COLUMNS}
    table.loc[:, list(LOOKUP_COLUMNS)].assign(**flags).to_csv(path, index=False, lineterminator="\n")
    return Path(path)


def describe_lookup(table: pd.DataFrame | None) -> str:
    """Name a lookup for reports and seals: the kit's, or a unit's with its fingerprint.

    The fingerprint is the SHA-256 of the lookup written canonically (sorted by code), so
    the same table always gets the same text, however its file was laid out.

    Examples
    --------
    >>> describe_lookup(None)
    "the kit's offence lookup"
    """
    if table is None:
        return "the kit's offence lookup"
    return f"a unit's offence lookup ({len(table)} codes, SHA-256 {lookup_sha256(table)[:16]})"


def lookup_sha256(table: pd.DataFrame | None = None) -> str:
    """The fingerprint of a lookup (the kit's by default): see :func:`table_sha256`."""
    return table_sha256(lookup() if table is None else table, LOOKUP_COLUMNS)


def table_sha256(table: pd.DataFrame, columns: tuple[str, ...]) -> str:
    """SHA-256 of a code table's ``columns`` written canonically: sorted by the first column, as text.

    The same table always gets the same fingerprint, however its file was laid out (column
    and row order, quoting, line endings); extra columns do not count. Seals and analysis
    plans pin the offence lookup and the harm weights by it.
    """
    canonical = table.loc[:, list(columns)].sort_values(columns[0]).astype(str)
    return hashlib.sha256(canonical.to_csv(index=False, lineterminator="\n").encode()).hexdigest()


def is_knife_event(events: pd.DataFrame, table: pd.DataFrame | None = None) -> np.ndarray:
    """Apply the kit's knife rule to events.

    Parameters
    ----------
    events : pandas.DataFrame
        Events with ``offence_code`` and a boolean ``knife`` column.
    table : pandas.DataFrame, optional
        The offence lookup; the packaged one by default.

    Returns
    -------
    numpy.ndarray of bool
        True where the offence code is a knife offence or the event's ``knife`` flag is set.
    """
    table = lookup() if table is None else table
    knife_codes = table.loc[table["knife_offence"], "offence_code"]
    by_code = events["offence_code"].isin(knife_codes).to_numpy()
    return by_code | events["knife"].to_numpy(dtype=bool)


def classify(events: pd.DataFrame, table: pd.DataFrame | None = None) -> pd.DataFrame:
    """Return ``events`` with the lookup's columns and the knife rule joined on.

    Adds ``title``, ``group``, ``violent``, ``sexual``, ``knife_offence`` and
    ``knife_involved`` (the result of :func:`is_knife_event`). Codes missing from the lookup
    are an error in :func:`fdkit.records.load_records`; here too they raise ``ValueError``.
    """
    table = lookup() if table is None else table
    unknown = set(pd.unique(events["offence_code"])) - set(table["offence_code"])
    if unknown:
        # A silent miss would leave the flags empty and quietly change who is eligible.
        raise ValueError(
            f"offence codes not in the offence lookup: {', '.join(sorted(map(str, unknown))[:10])}; "
            "map them onto the kit's codes (docs/your-own-data.md) before screening or analysis"
        )
    joined = events.merge(table, on="offence_code", how="left", validate="many_to_one")
    joined["knife_involved"] = is_knife_event(joined, table)
    return joined


def classify_distinct(events: pd.DataFrame, table: pd.DataFrame | None = None) -> tuple[np.ndarray, pd.DataFrame]:
    """Classify each distinct offence code of ``events`` once: fast for millions of events.

    Parameters
    ----------
    events : pandas.DataFrame
        Events with ``offence_code``.
    table : pandas.DataFrame, optional
        The offence lookup; the packaged one by default.

    Returns
    -------
    codes : numpy.ndarray of int
        For each event, its code's row in ``per_code``.
    per_code : pandas.DataFrame
        :func:`classify` of the distinct codes with ``knife`` false, so ``knife_involved``
        is the code's own knife flag: an event's is ``per_code["knife_involved"][codes] |
        events["knife"]``.

    Raises
    ------
    ValueError
        For codes missing from the lookup, as :func:`classify` does.
    """
    codes, distinct = pd.factorize(events["offence_code"], use_na_sentinel=False)
    per_code = classify(pd.DataFrame({"offence_code": pd.Series(distinct, dtype="str"), "knife": False}), table)
    return codes, per_code
