"""Import a records system's raw export into a records folder, by a declared mapping.

A force's export (Niche, Athena, Connect, ...) is never in the kit's records format. This
module turns it into one without hand-editing, following a TOML mapping the analyst writes
once and keeps with the protocol (``fdkit import --template`` prints a commented one):

* the source tables: one flat occurrence-involvement file plus a nominals file, or a
  crimes file, a crime-nominal links file and a nominals file;
* which column of the export holds each contract field;
* value maps: involvement -> role, weapon -> knife, proactive flag -> police_initiated,
  gender -> sex, and the crime statuses to keep;
* a code map (``local_code,offence_code``) onto the offence lookup;
* day-first dates (a time after the date is dropped) and the text encoding.

Every value is stripped of surrounding spaces, and matched without regard to case. Exact
duplicate rows are folded. Every row that is not written is counted in the **exclusion
ledger**, by file and reason, with examples of the values exactly as the export had them
(``'Suspect '``, not ``Suspect``); each row is counted once, under the first reason that
applies, in the order of :data:`LEDGER_REASONS`. So the rows of each source file add up:
rows read = rows written + rows in the ledger. The code map's own repeated rows (``8G`` and
``8g``, both mapped onto ``8G``) are folded and counted there too, under the code map's name.

Follow-up extracts: :func:`merge_extracts` combines a baseline and a later extract,
de-duplicating events by (``crime_id``, ``person_id``, ``role``) and reporting crimes
re-recorded differently.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from . import offences
from ._text import quoted, shorten
from .records import (
    EVENT_COLUMNS,
    PERSON_COLUMNS,
    FdkitDataError,
    Problem,
    Records,
    at_file_lines,
    validate_frames,
    write_records,
)

__all__ = [
    "ImportResult",
    "declared_coverage_end",
    "LEDGER_COLUMNS",
    "LEDGER_REASONS",
    "Mapping",
    "MergeResult",
    "import_export",
    "merge_extracts",
    "read_mapping",
    "template",
    "write_import",
    "write_merge",
]

#: Why a row of the export is left out, in the order the reasons are tried.
LEDGER_REASONS = (
    "code map row repeated",
    "blank row",
    "duplicate row",
    "no crime reference",
    "status not kept",
    "witness or other role",
    "unmapped offence code",
    "crime left out",
    "no crime record",
    "no person ID",
    "no nominal record",
    "no date of birth",
    "same crime, person and role",
    "no suspect or victim kept",
)
LEDGER_COLUMNS = ("file", "reason", "rows", "examples")

LEDGER_FILE = "import_ledger.csv"
EXTRACT_FILE = "extract.json"
CONFLICTS_FILE = "merge_conflicts.csv"
EXTRACTS_FILE = "extracts.csv"
LOOKUP_FILE = offences.LOOKUP_FILE

_SOURCE_KEYS = {
    "involvements",
    "crimes",
    "links",
    "nominals",
    "dayfirst",
    "encoding",
    "delimiter",
    "coverage_start",
    "coverage_end",
}
_REQUIRED_COLUMNS = ("crime_id", "offence_date", "offence_code", "person_id", "role", "date_of_birth")
_OPTIONAL_COLUMNS = ("weapon", "police_initiated", "status", "sex")
_VALUE_KEYS = {"role", "knife", "police_initiated", "sex", "keep_status"}
_CODE_KEYS = {"map", "unmapped", "lookup"}
_CRIME_FIELDS = ("crime_id", "offence_date", "offence_code", "weapon", "police_initiated", "status")
_SHOWN = 5
#: How many codes, columns or keys a message lists before "and N more".
_LISTED = 10

_TIME = r"(?:[T ]+\d{1,2}:\d{2}.*)?"  # a time after the date (seconds, zone, AM/PM) is dropped
_ISO = re.compile(rf"^(\d{{4}})-(\d{{1,2}})-(\d{{1,2}}){_TIME}$")
_SLASHED = re.compile(rf"^(\d{{1,2}})[/.-](\d{{1,2}})[/.-](\d{{4}}){_TIME}$")


def _fold(value) -> str:
    """How values are compared: spaces trimmed, case ignored."""
    return str(value).strip().casefold()


# --- the mapping ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Mapping:
    """A checked import mapping (see :func:`read_mapping` and :func:`template`).

    Attributes
    ----------
    files : dict of str to str
        The source files by part: ``involvements`` or ``crimes`` and ``links``; ``nominals``.
    columns : dict of str to str
        The export's column for each contract field that is mapped.
    roles, sexes : dict of str to str
        Folded export value -> ``suspect``/``victim``, and -> ``M``/``F``/``X``.
    knife, police_initiated, keep_status : frozenset of str
        Folded export values meaning a knife, a police-initiated crime, a status to keep.
    code_map : dict of str to str
        Folded local code -> lookup code (empty without a code map).
    code_map_file : str or None
        The code map's file name (None without one).
    code_map_folded : tuple of str
        Local codes, as written, on code map rows that repeat an earlier row's code (ignoring
        case and spaces) and its lookup code: folded into it, and counted in the ledger.
    unmapped : {"error", "drop"}
    dayfirst : bool
    encoding, delimiter : str
    coverage : tuple of (pandas.Timestamp or None)
        The declared first and last day the extract covers.
    lookup : pandas.DataFrame or None
        A unit lookup named in ``[codes] lookup``; None for the kit's.
    source : pathlib.Path or None
        The mapping file.
    """

    files: dict
    columns: dict
    roles: dict
    sexes: dict = field(default_factory=dict)
    knife: frozenset = frozenset()
    police_initiated: frozenset = frozenset()
    keep_status: frozenset | None = None
    code_map: dict = field(default_factory=dict)
    code_map_file: str | None = None
    code_map_folded: tuple = ()
    unmapped: str = "error"
    dayfirst: bool = False
    encoding: str = "utf-8-sig"
    delimiter: str = ","
    coverage: tuple = (None, None)
    lookup: pd.DataFrame | None = None
    source: Path | None = None

    @property
    def flat(self) -> bool:
        """True for one flat involvement file, False for crimes + links."""
        return "involvements" in self.files


def template() -> str:
    """The commented mapping template ``fdkit import --template`` prints."""
    return resources.files("fdkit").joinpath("data/mapping_template.toml").read_text(encoding="utf-8")


def read_mapping(path: str | Path, *, lookup: pd.DataFrame | None = None) -> Mapping:
    """Read and check an import mapping (TOML).

    Parameters
    ----------
    path : str or pathlib.Path
        The mapping file. A code map or lookup it names is read relative to its folder.
    lookup : pandas.DataFrame, optional
        The offence lookup the code map must map onto; ``[codes] lookup`` in the mapping,
        or else the kit's, by default.

    Returns
    -------
    Mapping

    Raises
    ------
    fdkit.FdkitDataError
        Listing every problem: unreadable TOML, unknown sections or keys (a typo would
        otherwise be ignored), missing required columns, values listed under two meanings,
        a code map that is malformed or maps onto codes the lookup does not have.
    """
    path = Path(path)
    name = path.name
    if not path.is_file():
        raise FdkitDataError([Problem(name, "mapping file not found; fdkit import --template writes one")], source=path)
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        message = f"not a readable TOML file ({shorten(error, 200)})"
        raise FdkitDataError([Problem(name, message)], source=path) from None
    problems = []

    def section(key, allowed):
        value = document.get(key, {})
        if not isinstance(value, dict):
            problems.append(Problem(name, f"[{key}] must be a table"))
            return {}
        if unknown := set(value) - set(allowed):
            problems.append(
                Problem(name, f"unknown keys in [{key}]: {_names(unknown)} (known: {', '.join(sorted(allowed))})")
            )
        return value

    if unknown := set(document) - {"source", "columns", "values", "codes"}:
        problems.append(Problem(name, f"unknown sections: {_names(unknown)} (known: source, columns, values, codes)"))
    source = section("source", _SOURCE_KEYS)
    columns = section("columns", (*_REQUIRED_COLUMNS, *_OPTIONAL_COLUMNS))
    values = section("values", _VALUE_KEYS)
    codes = section("codes", _CODE_KEYS)

    files = {key: source[key] for key in ("involvements", "crimes", "links", "nominals") if key in source}
    if "involvements" in files and ({"crimes", "links"} & set(files)):
        problems.append(Problem(name, "[source] gives both involvements and crimes/links; give one layout"))
    if "involvements" not in files and not {"crimes", "links"} <= set(files):
        problems.append(Problem(name, "[source] needs involvements = FILE, or both crimes = FILE and links = FILE"))
    if "nominals" not in files:
        problems.append(Problem(name, "[source] needs nominals = FILE (the people: ID, date of birth, sex)"))
    if missing := [key for key in _REQUIRED_COLUMNS if not isinstance(columns.get(key), str) or not columns[key]]:
        problems.append(Problem(name, f"[columns] needs the export's column name for {', '.join(missing)}"))

    roles = _value_groups(values.get("role"), ("suspect", "victim"), "role", name, problems)
    if not roles:
        problems.append(Problem(name, "[values] role must list the involvements meaning suspect (and victim)"))
    sexes = _value_groups(values.get("sex", {}), ("M", "F", "X"), "sex", name, problems)
    sets = {key: _value_list(values.get(key, []), key, name, problems) for key in ("knife", "police_initiated")}
    keep_status = None
    if "status" in columns:
        if "keep_status" not in values:
            problems.append(
                Problem(name, "[values] keep_status must list the statuses to keep when a status column is mapped")
            )
        keep_status = frozenset(_value_list(values.get("keep_status", []), "keep_status", name, problems))

    unmapped = codes.get("unmapped", "error")
    if unmapped not in ("error", "drop"):
        problems.append(Problem(name, f"[codes] unmapped must be 'error' or 'drop', not {shorten(repr(unmapped))}"))
    dayfirst = source.get("dayfirst", False)
    if not isinstance(dayfirst, bool):
        problems.append(Problem(name, "[source] dayfirst must be true or false"))
    coverage = tuple(_coverage_date(source.get(key), key, name, problems) for key in ("coverage_start", "coverage_end"))
    if problems:
        raise FdkitDataError(problems, source=path)

    if lookup is None and "lookup" in codes:
        lookup = offences.read_lookup(path.parent / codes["lookup"])
    code_map, folded = _read_code_map(path.parent / codes["map"], lookup) if "map" in codes else ({}, ())
    return Mapping(
        files=files,
        columns={key: value for key, value in columns.items() if value},
        roles=roles,
        sexes=sexes,
        knife=frozenset(sets["knife"]),
        police_initiated=frozenset(sets["police_initiated"]),
        keep_status=keep_status,
        code_map=code_map,
        code_map_file=Path(codes["map"]).name if "map" in codes else None,
        code_map_folded=folded,
        unmapped=unmapped,
        dayfirst=dayfirst,
        encoding=source.get("encoding", "utf-8-sig"),
        delimiter=source.get("delimiter", ","),
        coverage=coverage,
        lookup=lookup,
        source=path,
    )


def _names(names, *, quote: bool = False, sort: bool = True) -> str:
    """Names from the user (keys, columns) as a message lists them: at most ten, each shortened."""
    names = sorted(map(str, names)) if sort else list(map(str, names))
    more = f" and {len(names) - _LISTED:,} more" if len(names) > _LISTED else ""
    return ", ".join((quoted if quote else shorten)(name) for name in names[:_LISTED]) + more


def _value_list(value, key, name, problems) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str | int) for item in value):
        problems.append(Problem(name, f'[values] {key} must be a list of values, e.g. ["Y"]'))
        return []
    return [_fold(item) for item in value]


def _value_groups(value, targets, key, name, problems) -> dict[str, str]:
    """``{target: [export values]}`` -> ``{folded export value: target}``."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.append(Problem(name, f"[values] {key} must map each of {', '.join(targets)} to a list of values"))
        return {}
    if unknown := set(value) - set(targets):
        problems.append(Problem(name, f"[values] {key} may only map to {', '.join(targets)}; got {_names(unknown)}"))
    groups: dict[str, str] = {}
    for target, listed in value.items():
        for item in _value_list(listed, f"{key}.{target}", name, problems):
            if groups.get(item, target) != target:
                problems.append(
                    Problem(name, f"[values] {key}: {quoted(item)} is listed under both {groups[item]} and {target}")
                )
            groups[item] = target
    return groups


def _coverage_date(value, key, name, problems):
    if value is None:
        return None
    try:
        return pd.Timestamp(str(value)).normalize()
    except ValueError:
        problems.append(Problem(name, f"[source] {key} must be a date, YYYY-MM-DD; got {shorten(repr(value))}"))
        return None


def _read_code_map(path: Path, lookup: pd.DataFrame | None) -> tuple[dict[str, str], tuple[str, ...]]:
    """The code map (folded local code -> lookup code) and the local codes of the rows folded.

    Local codes match ignoring case and spaces, so ``8G`` and ``8g`` are one code. Rows that
    list it twice and agree on its lookup code are harmless (a force's export may hold both
    spellings): the later ones are folded into the first. Rows that disagree are an error
    naming both rows, by file line.
    """
    from .records import read_table

    try:
        table = read_table(path, required=("local_code", "offence_code"), not_blank=("local_code", "offence_code"))
    except FdkitDataError as error:
        if not any("a header row but no data rows" in problem.message for problem in error.problems):
            raise
        return {}, ()  # a code map with no rows: every code must already be in the lookup
    lookup = offences.lookup() if lookup is None else lookup
    folded = table["local_code"].map(_fold)
    problems = _code_map_conflicts(table, folded, path.name)
    known = set(lookup["offence_code"])
    if (unknown := ~table["offence_code"].isin(known)).any():
        shown = ", ".join(map(quoted, table.loc[unknown, "offence_code"].unique()[:_LISTED]))
        problems.append(
            Problem(path.name, f"maps onto codes that are not in the offence lookup: {shown}", "offence_code")
        )
    if problems:
        raise FdkitDataError(at_file_lines(problems, path.parent), source=path)
    repeated = folded.duplicated(keep="first").to_numpy()
    first = ~repeated
    return dict(zip(folded[first], table.loc[first, "offence_code"])), tuple(table.loc[repeated, "local_code"])


def _code_map_conflicts(table: pd.DataFrame, folded: pd.Series, name: str) -> list[Problem]:
    """A problem for each local code that rows map onto different offence codes, at those rows."""
    targets = table.groupby(folded, sort=False)["offence_code"].nunique()
    problems = []
    for code in targets.index[targets > 1][:_LISTED]:
        rows = np.flatnonzero(folded.eq(code).to_numpy())
        first = rows[0]
        other = next(row for row in rows if table.at[row, "offence_code"] != table.at[first, "offence_code"])
        pairs = ", ".join(
            f"{quoted(table.at[row, 'local_code'])} onto {quoted(table.at[row, 'offence_code'])}"
            for row in (first, other)
        )
        message = (
            f"one local code mapped onto two offence codes (case and spaces are ignored): {pairs}; "
            "keep one offence code for it"
        )
        problems.append(Problem(name, message, "local_code", (int(first), int(other)), count=2, unit="row"))
    if (more := int((targets > 1).sum()) - _LISTED) > 0:
        problems.append(Problem(name, f"and {more:,} more local codes mapped onto two offence codes", "local_code"))
    return problems


# --- the ledger -----------------------------------------------------------------------------


class _Ledger:
    """Rows left out, by file and reason, with examples as the export wrote them."""

    def __init__(self):
        self.rows = []

    def leave_out(self, file: str, reason: str, examples: pd.Series, count: int | None = None) -> None:
        if examples is None:  # nothing worth showing (blank rows)
            self.rows.append((file, reason, count, ""))
        elif len(examples):
            counts = examples.fillna("").value_counts(sort=False)
            counts = counts.sort_index().sort_values(ascending=False, kind="stable")
            shown = [f"{quoted(value)} ({n:,})" for value, n in counts.head(_SHOWN).items()]
            more = f" and {len(counts) - _SHOWN:,} more values" if len(counts) > _SHOWN else ""
            self.rows.append((file, reason, len(examples), ", ".join(shown) + more))

    def frame(self) -> pd.DataFrame:
        order = {reason: n for n, reason in enumerate(LEDGER_REASONS)}
        rows = sorted(self.rows, key=lambda row: order[row[1]])
        return pd.DataFrame(rows, columns=list(LEDGER_COLUMNS)).astype({"rows": "int64"})


# --- reading the export ---------------------------------------------------------------------


@dataclass
class _Table:
    """One source file: its rows as written (``raw``) and trimmed (``clean``), by file row."""

    name: str
    raw: pd.DataFrame
    clean: pd.DataFrame
    dropped_for_birth: set = field(default_factory=set)

    def keep(self, mask) -> None:
        self.raw, self.clean = self.raw[mask], self.clean[mask]

    def drop(self, ledger: _Ledger, mask, reason: str, column: str | None) -> None:
        mask = np.asarray(mask, dtype=bool)
        if mask.any():
            examples = self.raw.loc[mask, column] if column else None
            ledger.leave_out(self.name, reason, examples, int(mask.sum()))
            self.keep(~mask)


def _read_source(folder: Path, file: str, mapping: Mapping, needed: Sequence[str]) -> _Table:
    path = folder / file
    if not path.is_file():
        found = "a folder, not a file" if path.is_dir() else "file not found"
        raise FdkitDataError([Problem(file, f"{found} (named in the mapping's [source])")], source=folder)
    try:
        raw = pd.read_csv(
            path,
            dtype=str,
            keep_default_na=False,
            skip_blank_lines=False,
            encoding=mapping.encoding,
            sep=mapping.delimiter,
        )
    except UnicodeDecodeError:
        message = f'not {mapping.encoding} text; set [source] encoding (for example "cp1252" for older Excel files)'
        raise FdkitDataError([Problem(file, message)], source=path) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise FdkitDataError([Problem(file, f"not a readable CSV file ({error})")], source=path) from None
    raw.columns = [str(column).strip() for column in raw.columns]
    columns = [mapping.columns[key] for key in needed if key in mapping.columns]
    if missing := [column for column in dict.fromkeys(columns) if column not in raw.columns]:
        message = (
            f"missing the mapped columns {_names(missing, quote=True, sort=False)} "
            f"(found: {_names(raw.columns, quote=True, sort=False)})"
        )
        raise FdkitDataError([Problem(file, message)], source=path)
    if raw.empty:
        raise FdkitDataError([Problem(file, "a header row but no data rows")], source=path)
    raw = raw.fillna("")
    raw.index = pd.RangeIndex(len(raw))
    clean = raw.apply(lambda column: column.str.strip())
    return _Table(file, raw, clean)


def _drop_blank_and_duplicates(table: _Table, ledger: _Ledger, id_column: str) -> None:
    table.drop(ledger, (table.clean == "").all(axis=1).to_numpy(), "blank row", None)
    table.drop(ledger, table.clean.duplicated(keep="first").to_numpy(), "duplicate row", id_column)


def _parse_dates(table: _Table, column: str, dayfirst: bool, label: str) -> tuple[pd.Series, list[Problem]]:
    """Dates (NaT where blank or unreadable) and the problems with them, by file line."""
    text = table.clean[column]
    distinct = pd.Series(text.unique())
    parsed = {}
    for value in distinct:
        if (match := _ISO.match(value)) is not None:
            year, month, day = match.groups()
        elif dayfirst and (match := _SLASHED.match(value)) is not None:
            day, month, year = match.groups()
        else:
            parsed[value] = pd.NaT
            continue
        parsed[value] = pd.Timestamp(f"{year}-{int(month):02d}-{int(day):02d}") if _real(year, month, day) else pd.NaT
    dates = text.map(parsed).astype("datetime64[ns]")
    bad = dates.isna() & text.ne("")
    problems = []
    if bad.any():
        looks_dayfirst = not dayfirst and text[bad].str.match(_SLASHED).any()
        hint = (
            "; they look day-first (21/11/2024): set dayfirst = true in [source]"
            if looks_dayfirst
            else " (expected YYYY-MM-DD" + (" or DD/MM/YYYY" if dayfirst else "") + ", optionally with a time)"
        )
        values = tuple(table.raw.loc[bad, column].unique()[:10])
        lines = tuple((text.index[bad][:10] + 2).tolist())
        message = f"{label}: not dates: {', '.join(map(quoted, values))}{hint}"
        problems.append(Problem(table.name, message, column, lines, values, int(bad.sum())))
    return dates, problems


def _real(year, month, day) -> bool:
    try:
        pd.Timestamp(int(year), int(month), int(day))
    except ValueError:
        return False
    return True


# --- importing ------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ImportResult:
    """What :func:`import_export` produced.

    Attributes
    ----------
    records : fdkit.Records
        The checked records (persons sorted by ``person_id``; events by date, crime, person
        and role), whatever the order of the export's rows.
    ledger : pandas.DataFrame
        Rows left out: ``file``, ``reason``, ``rows``, ``examples`` (and the code map's
        repeated rows, folded, under the code map's name).
    rows_read : dict of str to int
        Data rows (blank lines included) in each source file.
    rows_written : dict of str to int
        For each source file, the rows that became a person or an event.
    sex_blank : pandas.Series
        Export gender values not in the mapping's sex map (left blank), with their counts.
    coverage : tuple of pandas.Timestamp
        First and last day the extract covers: declared in the mapping, or else the first and
        last offence dates.
    mapping : Mapping
    """

    records: Records
    ledger: pd.DataFrame
    rows_read: dict
    rows_written: dict
    sex_blank: pd.Series
    coverage: tuple
    mapping: Mapping

    def __str__(self) -> str:
        lines = []
        for file, read in self.rows_read.items():
            left = int(self.ledger.loc[self.ledger["file"] == file, "rows"].sum())
            lines.append(f"{file}: {read:,} rows = {self.rows_written[file]:,} written + {left:,} left out")
        lines.append(
            f"wrote {len(self.records.persons):,} persons and {len(self.records.events):,} events, "
            f"offences {self.coverage[0]:%Y-%m-%d} to {self.coverage[1]:%Y-%m-%d}"
        )
        if len(self.ledger):
            lines += ["", "Left out (each row once, under the first reason that applies):"]
            lines += ["  " + line for line in self.ledger.to_string(index=False).splitlines()]
        else:
            lines.append("no rows left out")
        if len(self.sex_blank):
            shown = ", ".join(f"{quoted(value)} ({n:,})" for value, n in self.sex_blank.items())
            lines.append(f"\nsex left blank (not in [values] sex): {shown}")
        return "\n".join(lines)


def import_export(
    raw_dir: str | Path, mapping: Mapping | str | Path, *, lookup: pd.DataFrame | None = None
) -> ImportResult:
    """Turn a raw export into checked records by a mapping, counting every row left out.

    Parameters
    ----------
    raw_dir : str or pathlib.Path
        The folder holding the export's files, as named in the mapping's ``[source]``.
    mapping : Mapping, str or pathlib.Path
        A mapping, or the TOML file to read with :func:`read_mapping`.
    lookup : pandas.DataFrame, optional
        The offence lookup codes are mapped onto (a unit's own, from
        :func:`fdkit.offences.read_lookup`); the mapping's, or else the kit's, by default.

    Returns
    -------
    ImportResult

    Raises
    ------
    fdkit.FdkitDataError
        For files or columns that are missing, dates that cannot be read, offence codes
        with no mapping (each listed with its count; unless ``[codes] unmapped = "drop"``),
        a crime recorded with different dates or codes on different rows, one nominal ID
        with different dates of birth, or records that break the contract.

    Examples
    --------
    >>> result = import_export("raw", "mapping.toml")  # doctest: +SKIP
    >>> print(result)  # doctest: +SKIP
    """
    raw_dir = Path(raw_dir)
    if not isinstance(mapping, Mapping):
        mapping = read_mapping(mapping, lookup=lookup)
    lookup = lookup if lookup is not None else mapping.lookup
    table = offences.lookup() if lookup is None else lookup
    code_of = {_fold(code): code for code in table["offence_code"]} | mapping.code_map
    ledger = _Ledger()
    if mapping.code_map_folded:
        ledger.leave_out(str(mapping.code_map_file), "code map row repeated", pd.Series(mapping.code_map_folded))
    columns = mapping.columns
    rows_read, rows_written = {}, {}

    if mapping.flat:
        involvements = _read_source(
            raw_dir, mapping.files["involvements"], mapping, (*_CRIME_FIELDS, "person_id", "role")
        )
        rows_read[involvements.name] = len(involvements.raw)
        _drop_blank_and_duplicates(involvements, ledger, columns["crime_id"])
        _status_filter(involvements, mapping, ledger)
        _role_filter(involvements, mapping, ledger)
        _code_filter(involvements, mapping, code_of, ledger)
        events = involvements
    else:
        crimes = _read_source(raw_dir, mapping.files["crimes"], mapping, _CRIME_FIELDS)
        links = _read_source(raw_dir, mapping.files["links"], mapping, ("crime_id", "person_id", "role"))
        rows_read[crimes.name], rows_read[links.name] = len(crimes.raw), len(links.raw)
        all_crimes = set(crimes.clean[columns["crime_id"]])
        _drop_blank_and_duplicates(crimes, ledger, columns["crime_id"])
        _status_filter(crimes, mapping, ledger)
        _code_filter(crimes, mapping, code_of, ledger)
        _one_row_per_crime(crimes, columns["crime_id"])
        _drop_blank_and_duplicates(links, ledger, columns["crime_id"])
        crime = links.clean[columns["crime_id"]]
        links.drop(ledger, crime.eq("").to_numpy(), "no crime reference", columns["crime_id"])
        _role_filter(links, mapping, ledger)
        kept = set(crimes.clean[columns["crime_id"]])
        crime = links.clean[columns["crime_id"]]
        links.drop(
            ledger, (~crime.isin(kept) & crime.isin(all_crimes)).to_numpy(), "crime left out", columns["crime_id"]
        )
        links.drop(
            ledger, (~links.clean[columns["crime_id"]].isin(kept)).to_numpy(), "no crime record", columns["crime_id"]
        )
        crime_columns = [columns[key] for key in _CRIME_FIELDS if key in columns and key != "crime_id"]
        crime_columns = [c for c in dict.fromkeys(crime_columns) if c != columns["crime_id"]]
        details = crimes.clean.set_index(columns["crime_id"])[crime_columns]
        own = links.clean.drop(columns=[c for c in crime_columns if c in links.clean])
        links.clean = own.join(details, on=columns["crime_id"])
        events = links

    nominals = _read_source(raw_dir, mapping.files["nominals"], mapping, ("person_id", "date_of_birth", "sex"))
    rows_read[nominals.name] = len(nominals.raw)
    persons, sex_blank = _persons(nominals, mapping, ledger)

    person = events.clean[columns["person_id"]]
    events.drop(ledger, person.eq("").to_numpy(), "no person ID", columns["person_id"])
    person = events.clean[columns["person_id"]]
    known = person.isin(persons["person_id"]).to_numpy()
    without_birth = person.isin(nominals.dropped_for_birth).to_numpy() & ~known
    events.drop(ledger, ~known & ~without_birth, "no nominal record", columns["person_id"])
    person = events.clean[columns["person_id"]]
    events.drop(ledger, ~person.isin(persons["person_id"]).to_numpy(), "no date of birth", columns["person_id"])

    frame = _events(events, mapping)
    if mapping.flat:
        _consistent_crimes(frame, events, columns["crime_id"])
    repeated = frame.duplicated(["crime_id", "person_id", "role"]).to_numpy()
    events.drop(ledger, repeated, "same crime, person and role", columns["role"])
    frame = frame[~repeated]
    rows_written[events.name] = len(frame)
    rows_written[nominals.name] = len(persons)
    if not mapping.flat:
        unused = ~crimes.clean[columns["crime_id"]].isin(frame["crime_id"]).to_numpy()
        crimes.drop(ledger, unused, "no suspect or victim kept", columns["crime_id"])
        rows_written[crimes.name] = len(crimes.raw)

    if frame.empty:
        message = f"no events left to import; every row was left out:\n{ledger.frame().to_string(index=False)}"
        raise FdkitDataError([Problem(events.name, message)], source=raw_dir)
    frame = frame.sort_values(["offence_date", "crime_id", "person_id", "role"], ignore_index=True)
    persons = persons.sort_values("person_id", ignore_index=True)
    records = validate_frames(persons, frame, lookup=lookup, source=raw_dir)
    records = Records(records.persons, records.events, None, raw_dir, lookup=lookup)
    first, last = frame["offence_date"].min(), frame["offence_date"].max()
    coverage = (mapping.coverage[0] or first, mapping.coverage[1] or last)
    return ImportResult(records, ledger.frame(), rows_read, rows_written, sex_blank, coverage, mapping)


def _status_filter(table: _Table, mapping: Mapping, ledger: _Ledger) -> None:
    columns = mapping.columns
    table.drop(ledger, table.clean[columns["crime_id"]].eq("").to_numpy(), "no crime reference", columns["crime_id"])
    if mapping.keep_status is not None:
        status = table.clean[columns["status"]].map(_fold)
        table.drop(ledger, ~status.isin(mapping.keep_status).to_numpy(), "status not kept", columns["status"])


def _code_filter(table: _Table, mapping: Mapping, code_of: dict, ledger: _Ledger) -> None:
    column = mapping.columns["offence_code"]
    codes = table.clean[column]
    unmapped = codes.map(_fold).map(code_of).isna().to_numpy()
    if unmapped.any() and mapping.unmapped == "error":
        counts = table.raw.loc[unmapped, column].value_counts()
        counts = counts.sort_index().sort_values(ascending=False, kind="stable")
        listing = ", ".join(f"{quoted(code)} ({n:,} rows)" for code, n in counts.head(_LISTED).items())
        if len(counts) > _LISTED:
            listing += f" and {len(counts) - _LISTED:,} more codes"
        message = (
            f"offence codes with no mapping: {listing}; add them to the code map ([codes] map), "
            'or set [codes] unmapped = "drop" to leave those rows out and count them'
        )
        lines = tuple((codes.index[unmapped][:10] + 2).tolist())
        problem = Problem(table.name, message, column, lines, tuple(counts.index[:10]), int(unmapped.sum()))
        raise FdkitDataError([problem], source=table.name)
    table.drop(ledger, unmapped, "unmapped offence code", column)
    table.clean = table.clean.assign(**{column: table.clean[column].map(_fold).map(code_of)})


def _role_filter(table: _Table, mapping: Mapping, ledger: _Ledger) -> None:
    column = mapping.columns["role"]
    roles = table.clean[column].map(_fold).map(mapping.roles)
    table.drop(ledger, roles.isna().to_numpy(), "witness or other role", column)
    table.clean = table.clean.assign(**{column: table.clean[column].map(_fold).map(mapping.roles)})


def _one_row_per_crime(crimes: _Table, column: str) -> None:
    ids = crimes.clean[column]
    if (repeated := ids.duplicated(keep=False)).any():
        shown = ", ".join(map(quoted, crimes.raw.loc[repeated, column].unique()[:10]))
        message = (
            f"crimes with several different rows (several offence codes or dates?): {shown}; keep one row per "
            "crime (the principal offence) before importing"
        )
        lines = tuple((ids.index[repeated][:10] + 2).tolist())
        raise FdkitDataError(
            [Problem(crimes.name, message, column, lines, count=int(repeated.sum()))], source=crimes.name
        )


def _persons(nominals: _Table, mapping: Mapping, ledger: _Ledger) -> tuple[pd.DataFrame, pd.Series]:
    columns = mapping.columns
    _drop_blank_and_duplicates(nominals, ledger, columns["person_id"])
    nominals.drop(ledger, nominals.clean[columns["person_id"]].eq("").to_numpy(), "no person ID", columns["person_id"])
    ids = nominals.clean[columns["person_id"]]
    fields = [columns[key] for key in ("date_of_birth", "sex") if key in columns]
    differing = ids[ids.duplicated(keep=False)]
    if len(differing):
        # Rows that differ only in columns the kit does not read are the same person.
        same = nominals.clean.loc[differing.index, [columns["person_id"], *fields]].drop_duplicates()
        if same[columns["person_id"]].duplicated().any():
            clash = same.loc[same[columns["person_id"]].duplicated(keep=False), columns["person_id"]].unique()
            message = (
                f"nominal IDs with different dates of birth or sexes on different rows: "
                f"{', '.join(map(quoted, clash[:10]))}; correct them at source"
            )
            raise FdkitDataError([Problem(nominals.name, message, columns["person_id"], count=len(clash))])
        nominals.drop(ledger, ids.duplicated(keep="first").to_numpy(), "duplicate row", columns["person_id"])
    births, problems = _parse_dates(nominals, columns["date_of_birth"], mapping.dayfirst, "dates of birth")
    if problems:
        raise FdkitDataError(problems, source=nominals.name)
    no_birth = births.isna().to_numpy()
    nominals.dropped_for_birth = set(nominals.clean.loc[no_birth, columns["person_id"]])
    nominals.drop(ledger, no_birth, "no date of birth", columns["date_of_birth"])
    births = births[~no_birth]
    sex_blank = pd.Series(dtype="int64")
    if "sex" in columns:
        raw_sex = nominals.clean[columns["sex"]]
        sex = raw_sex.map(_fold).map(mapping.sexes)
        unmatched = sex.isna() & raw_sex.ne("")
        sex_blank = nominals.raw.loc[unmatched.to_numpy(), columns["sex"]].value_counts()
        sex = sex.fillna("")
    else:
        sex = pd.Series("", index=nominals.clean.index)
    persons = pd.DataFrame(
        {
            "person_id": nominals.clean[columns["person_id"]].astype(str),
            "date_of_birth": births.astype("datetime64[ns]"),
            "sex": sex.astype(str).mask(sex.eq("")),
        }
    )
    return persons.loc[:, list(PERSON_COLUMNS)], sex_blank


def _events(events: _Table, mapping: Mapping) -> pd.DataFrame:
    columns, clean = mapping.columns, events.clean
    dates, problems = _parse_dates(events, columns["offence_date"], mapping.dayfirst, "offence dates")
    if dates.isna().any():
        blank = dates.isna() & clean[columns["offence_date"]].eq("")
        if blank.any():
            lines = tuple((clean.index[blank][:10] + 2).tolist())
            problems.append(
                Problem(events.name, "blank offence dates", columns["offence_date"], lines, count=int(blank.sum()))
            )
        raise FdkitDataError(problems, source=events.name)

    def flag(column, meaning):
        if column not in columns:
            return np.zeros(len(clean), dtype=bool)
        return clean[columns[column]].map(_fold).isin(meaning).to_numpy(dtype=bool)

    return pd.DataFrame(
        {
            "crime_id": clean[columns["crime_id"]].astype(str),
            "person_id": clean[columns["person_id"]].astype(str),
            "offence_date": dates.astype("datetime64[ns]"),
            "role": clean[columns["role"]].astype(str),
            "offence_code": clean[columns["offence_code"]].astype(str),
            "knife": flag("weapon", mapping.knife),
            "police_initiated": flag("police_initiated", mapping.police_initiated),
        },
        index=clean.index,
    ).loc[:, list(EVENT_COLUMNS)]


def _consistent_crimes(frame: pd.DataFrame, events: _Table, column: str) -> None:
    """In a flat file each crime's details repeat on every row; they must agree."""
    details = frame[["crime_id", "offence_date", "offence_code", "knife", "police_initiated"]].drop_duplicates()
    if (clash := details["crime_id"].duplicated(keep=False)).any():
        crimes = details.loc[clash, "crime_id"].unique()
        message = (
            f"crimes recorded with different dates, codes or flags on different rows: "
            f"{', '.join(map(quoted, crimes[:10]))}{' and more' if len(crimes) > 10 else ''}; keep one version of "
            "each crime (the principal offence) before importing"
        )
        raise FdkitDataError([Problem(events.name, message, column, count=len(crimes))], source=events.name)


# --- writing --------------------------------------------------------------------------------


def _write_text(path: Path, text: str) -> None:
    """Write a text file atomically, through :func:`fdkit.files.atomic_write`."""
    from .files import atomic_write

    atomic_write(path, lambda handle: handle.write(text))


def _refuse_records_folder(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{out} is a file; --out must be a folder")
    if any((out / name).exists() for name in ("persons.csv", "events.csv")):
        raise FileExistsError(f"{out}/ already holds records; choose a new folder")


def _write_records_folder(
    out: str | Path, records: Records, tables: dict[str, str], description: dict
) -> dict[str, Path]:
    """Write records, then each of ``tables`` (file name: CSV text), then ``extract.json``, into a new folder."""
    out = Path(out)
    _refuse_records_folder(out)
    out.mkdir(parents=True, exist_ok=True)
    written = write_records(records, out)
    for name, text in {**tables, EXTRACT_FILE: json.dumps(description, indent=2) + "\n"}.items():
        _write_text(out / name, text)
        written[name] = out / name
    return written


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_import(result: ImportResult, out: str | Path, raw_dir: str | Path | None = None) -> dict[str, Path]:
    """Write imported records, the ledger and the extract's description to a new folder.

    Writes ``persons.csv`` and ``events.csv`` (canonical form), ``offences.csv`` when a
    unit lookup was used (so every later command uses it), ``import_ledger.csv`` and
    ``extract.json`` (coverage dates, row counts, SHA-256 of the mapping and source files).

    Raises
    ------
    FileExistsError
        If ``out`` already holds records.
    """
    sources = {}
    if raw_dir is not None:
        sources = {name: _sha256(Path(raw_dir) / name) for name in result.rows_read}
    mapping = result.mapping
    description = {
        "coverage_start": f"{result.coverage[0]:%Y-%m-%d}",
        "coverage_end": f"{result.coverage[1]:%Y-%m-%d}",
        "coverage_declared": [date is not None for date in mapping.coverage],
        "rows_read": result.rows_read,
        "rows_written": result.rows_written,
        "rows_left_out": int(result.ledger.loc[result.ledger["file"].isin(result.rows_read), "rows"].sum()),
        "persons": len(result.records.persons),
        "events": len(result.records.events),
        "mapping_sha256": _sha256(mapping.source) if mapping.source else None,
        "source_sha256": sources,
        "lookup": offences.describe_lookup(result.records.lookup),
    }
    ledger = {LEDGER_FILE: result.ledger.to_csv(index=False, lineterminator="\n")}
    return _write_records_folder(out, result.records, ledger, description)


# --- follow-up extracts ---------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class MergeResult:
    """What :func:`merge_extracts` produced.

    Attributes
    ----------
    records : fdkit.Records
    conflicts : pandas.DataFrame
        One row per re-recorded value that changed: ``table`` (persons/events), ``key``,
        ``column``, ``earlier``, ``later``, ``earlier_extract``, ``later_extract``. The
        later extract's value is kept.
    extracts : pandas.DataFrame
        One row per extract: ``extract``, ``coverage_start``, ``coverage_end``, ``persons``,
        ``events``, ``new_events`` (not in an earlier extract) and ``missing_events``
        (events of an earlier extract, dated inside this extract's coverage, that it does
        not have; they are kept).
    """

    records: Records
    conflicts: pd.DataFrame
    extracts: pd.DataFrame

    def __str__(self) -> str:
        table = self.extracts.assign(
            coverage_start=self.extracts["coverage_start"].dt.strftime("%Y-%m-%d"),
            coverage_end=self.extracts["coverage_end"].dt.strftime("%Y-%m-%d"),
        )
        lines = ["Extracts, oldest first:", *("  " + line for line in table.to_string(index=False).splitlines())]
        lines.append(
            f"\nmerged: {len(self.records.persons):,} persons, {len(self.records.events):,} events; "
            f"{len(self.conflicts):,} re-recorded values changed (the later extract's kept)"
        )
        if len(self.conflicts):
            counts = self.conflicts.groupby(["table", "column"]).size()
            lines += [f"  {table}.{column}: {n:,}" for (table, column), n in counts.items()]
        return "\n".join(lines)


def declared_coverage_end(folder: str | Path | None) -> pd.Timestamp | None:
    """The last day a records folder's extract covers, from its ``extract.json``; None if unknown.

    ``fdkit import`` writes it (from ``coverage_end`` in the mapping, or the last offence
    date), ``fdkit merge`` gives the last extract's, and ``fdkit pseudonymise`` copies it.
    The outcome frame refuses follow-up windows that run past it.
    """
    if folder is None or not (path := Path(folder) / EXTRACT_FILE).is_file():
        return None
    try:
        return pd.Timestamp(json.loads(path.read_text(encoding="utf-8"))["coverage_end"])
    except (ValueError, KeyError, TypeError) as error:
        raise FdkitDataError([Problem(EXTRACT_FILE, f"not readable ({shorten(error, 200)})")], source=path) from None


def _coverage_of(records: Records) -> tuple[pd.Timestamp, pd.Timestamp]:
    described = None if records.source is None else Path(records.source) / EXTRACT_FILE
    if described is not None and described.is_file():
        facts = json.loads(described.read_text(encoding="utf-8"))
        return pd.Timestamp(facts["coverage_start"]), pd.Timestamp(facts["coverage_end"])
    dates = records.events["offence_date"]
    return dates.min(), dates.max()


def merge_extracts(extracts: Sequence[Records], names: Sequence[str] | None = None) -> MergeResult:
    """Combine a baseline extract and later ones into one set of records.

    Events are de-duplicated by (``crime_id``, ``person_id``, ``role``); persons by
    ``person_id``; engagement by ``person_id``. Where a later extract records the same key
    differently (a crime reclassified, a date corrected) its version is kept and the change
    is listed in ``conflicts``. Events an earlier extract has but a later one covering their
    date does not (cancelled or no-crimed since?) are kept and counted.

    Parameters
    ----------
    extracts : sequence of fdkit.Records
        Oldest first, each imported with the same mapping and code map. Their offence
        lookups must agree.
    names : sequence of str, optional
        How to name each extract in the tables (default: its folder name).

    Returns
    -------
    MergeResult
    """
    if len(extracts) < 2:
        raise ValueError("merging needs at least two extracts, oldest first")
    names = (
        list(names)
        if names is not None
        else [Path(e.source).name if e.source else f"extract {n + 1}" for n, e in enumerate(extracts)]
    )
    lookups = [offences.describe_lookup(e.lookup) for e in extracts]
    if len(set(lookups)) > 1:
        raise FdkitDataError([Problem(None, f"the extracts use different offence lookups: {', '.join(lookups)}")])
    conflicts, summary = [], []
    events: pd.DataFrame | None = None
    persons: pd.DataFrame | None = None
    engagement: pd.DataFrame | None = None
    for number, (extract, name) in enumerate(zip(extracts, names)):
        start, end = _coverage_of(extract)
        new, missing = len(extract.events), 0
        if events is None or persons is None:
            events, persons, engagement = extract.events, extract.persons[list(PERSON_COLUMNS)], extract.engagement
        else:
            key = ["crime_id", "person_id", "role"]
            conflicts += _changes(events, extract.events, key, "events", names, number)
            conflicts += _changes(persons, extract.persons, ["person_id"], "persons", names, number)
            earlier = pd.MultiIndex.from_frame(events[key])
            later = pd.MultiIndex.from_frame(extract.events[key])
            new = int((~later.isin(earlier)).sum())
            gone = ~earlier.isin(later) & events["offence_date"].between(start, end).to_numpy()
            missing = int(gone.sum())
            events = pd.concat([events[~earlier.isin(later)], extract.events], ignore_index=True)
            persons = pd.concat(
                [
                    persons[~persons["person_id"].isin(extract.persons["person_id"])],
                    extract.persons[list(PERSON_COLUMNS)],
                ],
                ignore_index=True,
            )
            if extract.engagement is not None:
                kept = (
                    None
                    if engagement is None
                    else engagement[~engagement["person_id"].isin(extract.engagement["person_id"])]
                )
                engagement = pd.concat([kept, extract.engagement], ignore_index=True)
        summary.append(
            {
                "extract": name,
                "coverage_start": start,
                "coverage_end": end,
                "persons": len(extract.persons),
                "events": len(extract.events),
                "new_events": new,
                "missing_events": missing,
            }
        )
    assert events is not None and persons is not None  # set by the first of at least two extracts
    events = events.sort_values(["offence_date", "crime_id", "person_id", "role"], ignore_index=True)
    persons = persons.sort_values("person_id", ignore_index=True)
    if engagement is not None:
        engagement = engagement.sort_values("person_id", ignore_index=True)
    lookup = extracts[-1].lookup
    checked = validate_frames(persons, events, engagement, lookup=lookup)
    records = Records(checked.persons, checked.events, checked.engagement, None, lookup=lookup)
    columns = ["table", "key", "column", "earlier", "later", "earlier_extract", "later_extract"]
    return MergeResult(records, pd.DataFrame(conflicts, columns=columns), pd.DataFrame(summary))


def _changes(earlier: pd.DataFrame, later: pd.DataFrame, key: list[str], table: str, names, number) -> list[dict]:
    both = earlier.merge(later, on=key, suffixes=(" earlier", " later"))
    rows = []
    for column in (c for c in later.columns if c not in key and f"{c} earlier" in both):
        before, after = both[f"{column} earlier"], both[f"{column} later"]
        changed = ~((before == after) | (before.isna() & after.isna()))
        for _, row in both[changed.to_numpy()].iterrows():
            rows.append(
                {
                    "table": table,
                    "key": " / ".join(str(row[k]) for k in key),
                    "column": column,
                    "earlier": _text(row[f"{column} earlier"]),
                    "later": _text(row[f"{column} later"]),
                    "earlier_extract": ", ".join(names[:number]) if number > 1 else names[0],
                    "later_extract": names[number],
                }
            )
    return rows


def _text(value) -> str:
    if isinstance(value, pd.Timestamp):
        return f"{value:%Y-%m-%d}"
    return "" if pd.isna(value) else str(value).lower() if isinstance(value, bool | np.bool_) else str(value)


def write_merge(result: MergeResult, out: str | Path) -> dict[str, Path]:
    """Write merged records, ``merge_conflicts.csv`` and ``extracts.csv`` to a new folder.

    The merged folder's ``extract.json`` gives the coverage of the extracts together (the
    first extract's start, the last one's end), so a later merge reads it correctly.
    """
    description = {
        "coverage_start": f"{result.extracts['coverage_start'].iloc[0]:%Y-%m-%d}",
        "coverage_end": f"{result.extracts['coverage_end'].iloc[-1]:%Y-%m-%d}",
        "merged_from": result.extracts["extract"].tolist(),
        "persons": len(result.records.persons),
        "events": len(result.records.events),
        "lookup": offences.describe_lookup(result.records.lookup),
    }
    tables = {
        CONFLICTS_FILE: result.conflicts.to_csv(index=False, lineterminator="\n"),
        EXTRACTS_FILE: result.extracts.to_csv(index=False, lineterminator="\n", date_format="%Y-%m-%d"),
    }
    return _write_records_folder(out, result.records, tables, description)
