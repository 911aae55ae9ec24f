"""Records: read, check and write a records folder, the kit's contract with a unit's data.

A records folder holds CSV files (UTF-8, a header row, ISO dates ``YYYY-MM-DD``):

``persons.csv``
    One row per person: ``person_id`` (unique, not blank), ``date_of_birth``, ``sex``
    (``F``, ``M``, ``X`` or blank). Extra columns are kept as text. A date of birth in
    :data:`PLACEHOLDER_BIRTH_DATES` (``1900-01-01`` and the like) is kept as written and
    means "not known" (:func:`placeholder_births`).
``events.csv``
    One row per person per crime per role: ``crime_id``, ``person_id``, ``offence_date``,
    ``role`` (``suspect`` or ``victim``), ``offence_code`` (in the offence lookup), ``knife``
    and ``police_initiated`` (true/false).
``engagement.csv`` (optional)
    At most one row per person: ``person_id``, ``engaged`` (true/false).

Bad input is never passed over: :func:`load_records` either accepts every row or raises one
:class:`FdkitDataError` listing every problem it found, each naming the file, the column, the
file lines and the offending values.
"""

from __future__ import annotations

import csv
import functools
import mmap
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow
import pyarrow.csv

from . import offences
from ._text import PATH_ECHOED, keys_that_may_vary, may_repeat, positions_in, quoted, shorten, starts_with_any

__all__ = [
    "ENGAGEMENT_COLUMNS",
    "EVENT_COLUMNS",
    "FORMULA_STARTS",
    "FdkitDataError",
    "PERSON_COLUMNS",
    "PLACEHOLDER_BIRTH_DATES",
    "Problem",
    "Records",
    "RecordsSummary",
    "SHOWN",
    "at_file_lines",
    "formula_cells_in",
    "formula_problems",
    "load_records",
    "placeholder_births",
    "plausibility_problems",
    "read_table",
    "summarise",
    "validate_frames",
    "write_records",
]

PERSON_COLUMNS = ("person_id", "date_of_birth", "sex")
EVENT_COLUMNS = (
    "crime_id",
    "person_id",
    "offence_date",
    "role",
    "offence_code",
    "knife",
    "police_initiated",
)
ENGAGEMENT_COLUMNS = ("person_id", "engaged")
ROLES = ("suspect", "victim")
SEXES = ("F", "M", "X", "")

#: How many lines and values a problem lists before "... and N more".
SHOWN = 10

_TRUE = ("true", "t", "yes", "y", "1")
_FALSE = ("false", "f", "no", "n", "0")
_SPELLINGS = "true/false, t/f, yes/no, y/n, 1/0, in any case"

_TIME = r"(?:[T ]\d{1,2}:\d{2}\S*)?"  # a time after the date is allowed and dropped
_ISO_DATE = rf"^(\d{{4}})-(\d{{2}})-(\d{{2}}){_TIME}$"
_SLASHED_DATE = rf"^(\d{{1,2}})[/-](\d{{1,2}})[/-](\d{{4}}){_TIME}$"

_OK, _BLANK, _IMPOSSIBLE, _DAY_FIRST, _MONTH_FIRST, _UNREADABLE = range(6)

#: The oldest age a person in the records is believed to be.
MAX_AGE = 110
#: Dates of birth that records systems write when the real date is not known. None can be a
#: living person's (each is over :data:`MAX_AGE` years ago or in the future), so a person
#: with one has an unknown age: loading accepts it, ``fdkit validate`` warns with the count,
#: and screening leaves the person out as "date of birth unknown". Any other impossible date
#: of birth is still an error.
PLACEHOLDER_BIRTH_DATES = (
    "1900-01-01",  # the commonest "unknown" default; the first day of SQL Server's smalldatetime
    "1899-12-31",  # a spreadsheet's day 0 (Excel shows 0 as 1900-01-00)
    "1899-12-30",  # day 0 of OLE Automation dates (Access, ODBC, .NET's OADate)
    "1901-01-01",  # other round dates systems use for "unknown"
    "1800-01-01",
    "1753-01-01",  # the first day of SQL Server's datetime
    "0001-01-01",  # the first day of .NET's DateTime and of SQL's date types
    "9999-12-31",  # the last day of most databases' date types
)
#: Characters that make a spreadsheet run a cell as a formula (see fdkit.files).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

# Python's csv module refuses fields over 131,072 characters; a huge cell is reported as a
# problem with its line, not as a crash while the lines are being counted.
csv.field_size_limit(2**31 - 1)


# --- problems and the error -------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One problem found in a records file or frame.

    Attributes
    ----------
    file : str or None
        The file (``persons.csv``) or, for in-memory frames, the frame (``persons``).
    message : str
        What is wrong and what was expected, quoting the first offending values.
    column : str or None
        The column, or several joined by ``", "`` for a composite key.
    lines : tuple of int
        The first :data:`SHOWN` places it occurs: file lines (the header is line 1) or,
        when ``unit`` is ``"row"``, 0-based row positions in a frame.
    values : tuple of str
        The first :data:`SHOWN` distinct offending values.
    count : int
        How many rows have the problem in all (0 for a problem with a file or column).
    unit : {"line", "row"}
        What the numbers in ``lines`` count.
    """

    file: str | None
    message: str
    column: str | None = None
    lines: tuple[int, ...] = ()
    values: tuple[str, ...] = ()
    count: int = 0
    unit: str = "line"

    def __str__(self) -> str:
        place = [self.file] if self.file else []
        if self.column:
            place.append(f"column{'s' if ', ' in self.column else ''} {shorten(self.column)}")
        if self.lines:
            numbers = _listing([str(n) for n in self.lines], self.count)
            if self.count > len(self.lines):
                place.append(f"{self.count:,} {self.unit}s ({numbers})")
            else:
                place.append(f"{self.unit}{'s' if self.count > 1 else ''} {numbers}")
        return f"{', '.join(place)}: {self.message}" if place else self.message


class FdkitDataError(ValueError):
    """Input data break the records contract; ``problems`` lists everything found.

    Parameters
    ----------
    problems : iterable of Problem
    source : str or pathlib.Path, optional
        The records folder or file the problems were found in.

    Examples
    --------
    >>> error = FdkitDataError([Problem("persons.csv", "file not found")], source="extract")
    >>> print(error)
    1 problem in records folder 'extract':
    - persons.csv: file not found
    """

    def __init__(self, problems: Iterable[Problem], source: str | Path | None = None):
        self.problems = tuple(problems)
        self.source = source
        super().__init__(self._render())

    def _render(self) -> str:
        if self.source is None:
            where = "the records"
        elif _is_folder(self.source):
            where = f"records folder '{shorten(self.source, PATH_ECHOED)}'"
        else:
            where = f"file '{shorten(self.source, PATH_ECHOED)}'"
        count = len(self.problems)
        lines = [f"{count:,} problem{'s' if count != 1 else ''} in {where}:"]
        lines += [f"- {problem}" for problem in self.problems]
        return "\n".join(lines)


def _is_folder(source: str | Path) -> bool:
    """Whether an error's source names a folder (or a file without an extension, which is not there)."""
    try:
        path = Path(source)
        return path.is_dir() or not (path.suffix or path.exists())
    except (OSError, ValueError):  # a name too long for the system, or holding a NUL
        return False


def _listing(texts: Sequence[str], total: int) -> str:
    shown = ", ".join(texts[:SHOWN])
    return f"{shown} and {total - SHOWN:,} more" if total > SHOWN else shown


def _problem_at(name, column, bad, message, values=()) -> list[Problem]:
    """A problem at the rows where ``bad`` is true, or none if there are no such rows."""
    rows = np.flatnonzero(bad)
    if not len(rows):
        return []
    lines = tuple(rows[:SHOWN].tolist())
    return [Problem(name, message, column, lines, tuple(values[:SHOWN]), len(rows), "row")]


def _value_problem(name, column, text, bad, template) -> list[Problem]:
    """A problem whose ``template`` quotes the distinct offending values in ``{values}``."""
    if not bad.any():
        return []
    distinct = pd.unique(text.to_numpy()[bad])
    listed = _listing([quoted(value) for value in distinct[:SHOWN]], len(distinct))
    values = ["" if pd.isna(value) else str(value) for value in distinct[:SHOWN]]
    return _problem_at(name, column, bad, template.replace("{values}", listed), values)


def _names(names: Iterable) -> str:
    """Column names as a message lists them: each shortened, at most :data:`SHOWN` of them."""
    names = [shorten(name) for name in names]
    return _listing(names, len(names))


def _missing_columns(name: str, required: Sequence[str], found: Iterable) -> list[Problem]:
    missing = [column for column in required if column not in found]
    if not missing:
        return []
    return [
        Problem(
            name,
            f"missing required column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
            f"(found: {_names(found) or 'no columns'})",
        )
    ]


# --- reading a CSV file ------------------------------------------------------------------


def read_table(
    path: str | Path,
    *,
    required: Sequence[str],
    booleans: Sequence[str] = (),
    dates: Sequence[str] = (),
    unique: Sequence[str] = (),
    dayfirst: bool = False,
    choices: Mapping[str, Sequence[str]] | None = None,
    not_blank: Sequence[str] = (),
) -> pd.DataFrame:
    """Read a CSV file as text, check it and convert its boolean and date columns.

    Every value is read as text with surrounding whitespace removed (a UTF-8 byte order
    mark, as Excel writes, is accepted). All problems in the file are collected and raised
    together. The checks and conversions apply to the named columns the file has; list a
    column in ``required`` too if it must be there.

    Parameters
    ----------
    path : str or pathlib.Path
        The CSV file, with a header row.
    required : sequence of str
        Columns the file must have. Other columns are kept as text.
    booleans : sequence of str
        Columns of true/false values, read in any case as ``true``/``false``, ``t``/``f``,
        ``yes``/``no``, ``y``/``n`` or ``1``/``0``; they become numpy bool columns.
    dates : sequence of str
        Columns of ISO dates ``YYYY-MM-DD``, optionally followed by a time (``T`` or a
        space, then the time), which is dropped; they become ``datetime64`` columns.
    unique : sequence of str
        Columns forming one key that no two rows may share (rows with a blank part of the
        key are not compared).
    dayfirst : bool
        Also read dates written day first, ``DD/MM/YYYY`` (or with ``-``). Without it such
        dates are reported as looking day-first. Month-first dates are never read.
    choices : mapping of str to sequence of str, optional
        The values allowed in a column; include ``""`` to allow blanks.
    not_blank : sequence of str
        Columns in which every row needs a value.

    Returns
    -------
    pandas.DataFrame
        The file's rows in file order, with a fresh ``RangeIndex``.

    Raises
    ------
    FdkitDataError
        Listing every problem, by file line (the header is line 1): a missing or empty
        file, missing columns, values that are not booleans or dates, blanks, repeated
        keys and values outside ``choices``.
    """
    path = Path(path)
    frame, problems = _read(path, required, booleans, dates, dayfirst)
    if frame is not None:
        problems += _blank_problems(frame, not_blank, path.name)
        problems += _duplicate_problems(frame, unique, path.name)
        for column, allowed in (choices or {}).items():
            problems += _choice_problems(frame, column, allowed, path.name)
    if problems:
        raise FdkitDataError(at_file_lines(problems, path.parent), source=path)
    return frame


def _read(
    path: Path,
    required: Sequence[str],
    booleans: Sequence[str],
    dates: Sequence[str],
    dayfirst: bool,
) -> tuple[pd.DataFrame | None, list[Problem]]:
    """Read a CSV file as text and convert its boolean and date columns.

    Returns the frame, or None if the file cannot be used at all, and the problems found,
    at row positions. Values that cannot be converted become False or NaT, so the other
    checks can still run over the frame.
    """
    expected = f"expected a CSV file with a header row and the columns {', '.join(required)}"
    if not path.is_file():
        found = "a folder, not a file" if path.is_dir() else "file not found"
        return None, [Problem(path.name, f"{found}; {expected}")]
    if path.stat().st_size == 0:
        return None, [Problem(path.name, f"the file is empty (zero bytes); {expected}")]
    try:
        frame = _read_text_fast(path)
        if frame is None:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        return None, [Problem(path.name, f"the file is empty (only blank lines); {expected}")]
    except UnicodeDecodeError:
        message = "not UTF-8 text; save it as 'CSV UTF-8' in Excel, or export it as UTF-8"
        return None, [Problem(path.name, message)]
    except pd.errors.ParserError as error:
        return None, [Problem(path.name, f"not a well-formed CSV file ({shorten(error, 200)})")]

    frame.columns = frame.columns.str.strip()
    repeated = frame.columns[frame.columns.duplicated()].unique()
    if len(repeated):
        return None, [Problem(path.name, f"repeated column names: {_names(repeated)}")]
    if missing := _missing_columns(path.name, required, frame.columns):
        return None, missing
    if frame.empty:
        return None, [Problem(path.name, "the file is empty: a header row but no data rows")]

    problems = []
    for column in frame.columns:
        frame[column] = frame[column].str.strip()
    for column in (column for column in booleans if column in frame):
        text = frame[column]
        frame[column], bad = _parse_booleans(text)
        template = f"not true/false: {{values}} (accepted: {_SPELLINGS})"
        problems += _value_problem(path.name, column, text, bad, template)
    for column in (column for column in dates if column in frame):
        text = frame[column]
        frame[column], kinds = _parse_dates(text, dayfirst)
        problems += _date_problems(path.name, column, text, kinds, dayfirst)
    return frame, problems


#: pyarrow's reader parses blocks of this size in parallel: larger than its 1 MB default, so that
#: a file of millions of rows becomes a few dozen column chunks, quicker for every later step.
_READ_BLOCK_BYTES = 16 << 20


def _read_text_fast(path: Path) -> pd.DataFrame | None:
    """Read a CSV file as text with pyarrow's multi-threaded reader, or None if it cannot.

    pandas' reader is the reference: for the files pyarrow reads (a header of distinct,
    non-blank names and every row with one field per column) both give the same frame, and
    for any other file this returns None, so pandas reads it and reports what is wrong in
    its own words. Files of one column go to pandas too: it also skips lines of spaces.
    """
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            header = next(csv.reader(handle), [])
    except (UnicodeDecodeError, csv.Error, OSError):  # pandas reads it again and names the problem
        return None
    if len(header) < 2 or len(set(header)) < len(header) or not all(name.strip() for name in header):
        return None
    try:
        table = pyarrow.csv.read_csv(
            path,
            read_options=pyarrow.csv.ReadOptions(block_size=_READ_BLOCK_BYTES),
            # Only a quoted value can hold a line break; without quotes the reader splits the file faster.
            parse_options=pyarrow.csv.ParseOptions(newlines_in_values=_may_hold_quotes(path)),
            convert_options=pyarrow.csv.ConvertOptions(
                column_types=dict.fromkeys(header, pyarrow.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pyarrow.ArrowInvalid, UnicodeDecodeError):
        return None
    if table.column_names != header:
        return None
    return table.to_pandas()


def _parse_booleans(text: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Return the values as booleans (False where unreadable) and where they are unreadable."""
    codes, uniques = pd.factorize(text)
    lowered = pd.Series(uniques, dtype=str).str.lower()
    truth = lowered.isin(_TRUE).to_numpy()
    readable = lowered.isin(_TRUE + _FALSE).to_numpy()
    return truth[codes], ~readable[codes]


def _parse_dates(text: pd.Series, dayfirst: bool) -> tuple[pd.Series, np.ndarray]:
    """Return the values as dates (NaT where unreadable) and each row's kind of problem.

    Each distinct value is parsed once, so a column of millions of rows costs little more
    than factorising it.
    """
    codes, uniques = pd.factorize(text)
    unique = pd.Series(uniques, dtype=str)
    iso = unique.str.extract(_ISO_DATE)
    slashed = unique.str.extract(_SLASHED_DATE)
    month_first = pd.to_numeric(slashed[1]).gt(12) & pd.to_numeric(slashed[0]).le(12)
    candidate = iso[0] + "-" + iso[1] + "-" + iso[2]
    if dayfirst:
        day_first = slashed[2] + "-" + slashed[1].str.zfill(2) + "-" + slashed[0].str.zfill(2)
        candidate = candidate.fillna(day_first.where(~month_first))
    parsed = pd.to_datetime(candidate, format="%Y-%m-%d", errors="coerce")
    kinds = np.select(
        [
            unique.eq("").to_numpy(),
            parsed.notna().to_numpy(),
            month_first.to_numpy(),
            slashed[2].notna().to_numpy() & (not dayfirst),
            candidate.notna().to_numpy(),
        ],
        [_BLANK, _OK, _MONTH_FIRST, _DAY_FIRST, _IMPOSSIBLE],
        _UNREADABLE,
    ).astype(np.int8)
    dates = pd.Series(parsed.to_numpy()[codes], index=text.index, name=text.name)
    return dates, kinds[codes]


def _date_problems(name, column, text, kinds, dayfirst) -> list[Problem]:
    expected = "ISO dates YYYY-MM-DD" + (" or DD/MM/YYYY" if dayfirst else "")
    templates = {
        _BLANK: f"blank dates (expected {expected})",
        _IMPOSSIBLE: f"dates that do not exist: {{values}} (expected {expected})",
        _DAY_FIRST: "dates that look day-first (DD/MM/YYYY): {values}; dates should be ISO "
        "YYYY-MM-DD, or pass dayfirst=True (--dayfirst on the command line) to read them "
        "day first",
        _MONTH_FIRST: "dates that look month-first (MM/DD/YYYY): {values}; month-first "
        "dates are never guessed: convert them to ISO YYYY-MM-DD",
        _UNREADABLE: f"not dates: {{values}} (expected {expected})",
    }
    return [
        problem
        for kind, template in templates.items()
        for problem in _value_problem(name, column, text, kinds == kind, template)
    ]


def at_file_lines(problems: list[Problem], folder: Path) -> list[Problem]:
    """Turn the row positions of problems found in files into the files' line numbers."""
    wanted: defaultdict[str, set[int]] = defaultdict(set)
    for problem in problems:
        if problem.unit == "row":
            wanted[_file_of(problem)].update(problem.lines)
    line_of = {name: _file_lines(folder / name, rows) for name, rows in wanted.items()}
    located = []
    for problem in problems:
        if problem.unit == "row":
            lines = tuple(line_of[_file_of(problem)][row] for row in problem.lines)
            problem = replace(problem, lines=lines, unit="line")
        located.append(problem)
    return located


def _file_of(problem: Problem) -> str:
    """The file a problem at row positions is in; every such problem names its file."""
    if problem.file is None:
        raise ValueError(f"a problem at row positions names no file: {problem.message}")
    return problem.file


def _file_lines(path: Path, rows: set[int]) -> dict[int, int]:
    """Map data-row positions to the file lines they start on (the header is line 1).

    A row is not always on line position + 2: pandas skips blank lines and a quoted value
    may span lines. So the file is scanned, as far as the last row wanted; this happens
    only when there are problems to report.
    """
    found, last = {}, max(rows)
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        position, end = -1, 0  # position -1 is the header
        for fields in reader:
            start, end = end + 1, reader.line_num
            if len(fields) <= 1 and not "".join(fields).strip():
                continue
            if position in rows:
                found[position] = start
            if position == last:
                break
            position += 1
    return {row: found.get(row, row + 2) for row in rows}


# --- checks shared by files and frames ---------------------------------------------------


def _blank(values: pd.Series) -> np.ndarray:
    return (values.isna() | values.eq("")).to_numpy()


def _blank_problems(frame: pd.DataFrame, columns: Sequence[str], name: str) -> list[Problem]:
    return [
        problem
        for column in columns
        if column in frame
        for problem in _problem_at(name, column, _blank(frame[column]), f"blank values (every row needs a {column})")
    ]


def _duplicate_problems(frame: pd.DataFrame, key: Sequence[str], name: str) -> list[Problem]:
    key = list(key)
    if not key or any(column not in frame for column in key) or not may_repeat(frame, key):
        return []
    keyed = ~np.logical_or.reduce([_blank(frame[column]) for column in key])
    repeated = frame.duplicated(key, keep=False).to_numpy() & keyed
    if not repeated.any():
        return []
    keys = frame.loc[repeated, key].drop_duplicates()
    shown = list(keys.head(SHOWN).itertuples(index=False))
    if len(key) == 1:
        texts = [quoted(row[0]) for row in shown]
        message = f"repeated values: {_listing(texts, len(keys))} (each must appear only once)"
    else:
        texts = ["(" + ", ".join(map(quoted, row)) + ")" for row in shown]
        message = f"repeated combinations: {_listing(texts, len(keys))} (each combination must appear only once)"
    values = [", ".join(map(str, row)) for row in shown]
    return _problem_at(name, ", ".join(key), repeated, message, values)


def _choice_problems(frame: pd.DataFrame, column: str, allowed: Sequence[str], name: str) -> list[Problem]:
    if column not in frame:
        return []
    bad = ~frame[column].fillna("").isin(allowed).to_numpy()
    expected = ", ".join(map(quoted, allowed))
    template = f"values not allowed: {{values}} (expected one of {expected})"
    return _value_problem(name, column, frame[column], bad, template)


# --- records: persons, events and engagement ---------------------------------------------


@dataclass(frozen=True)
class _Table:
    name: str
    columns: tuple[str, ...]
    dates: tuple[str, ...] = ()
    booleans: tuple[str, ...] = ()


_PERSONS = _Table("persons", PERSON_COLUMNS, dates=("date_of_birth",))
_EVENTS = _Table("events", EVENT_COLUMNS, ("offence_date",), ("knife", "police_initiated"))
_ENGAGEMENT = _Table("engagement", ENGAGEMENT_COLUMNS, booleans=("engaged",))
_TABLES = (_PERSONS, _EVENTS, _ENGAGEMENT)


@dataclass(frozen=True, eq=False)
class Records:
    """Checked records: persons, events and, if recorded, engagement.

    Attributes
    ----------
    persons : pandas.DataFrame
        ``person_id``, ``date_of_birth``, ``sex`` (missing when blank) and any extra
        columns, as text.
    events : pandas.DataFrame
        ``crime_id``, ``person_id``, ``offence_date``, ``role``, ``offence_code``,
        ``knife``, ``police_initiated``, in file order.
    engagement : pandas.DataFrame or None
        ``person_id``, ``engaged``; None when the folder has no ``engagement.csv``.
    source : pathlib.Path or None
        Where the records came from, usually the folder they were read from.
    lookup : pandas.DataFrame or None
        The unit's own offence lookup the records' codes resolve through; None for the
        kit's (:func:`fdkit.offences.lookup`). Screening, outcomes and summaries use it.
    """

    persons: pd.DataFrame
    events: pd.DataFrame
    engagement: pd.DataFrame | None = None
    source: Path | None = None
    lookup: pd.DataFrame | None = None

    def __repr__(self) -> str:
        parts = [f"{len(self.persons):,} persons", f"{len(self.events):,} events"]
        if self.engagement is not None:
            parts.append(f"{len(self.engagement):,} engagement rows")
        if self.source is not None:
            parts.append(f"source='{self.source}'")
        return f"Records({', '.join(parts)})"


def load_records(
    folder: str | Path,
    *,
    dayfirst: bool = False,
    lookup: pd.DataFrame | None = None,
    extract_date: str | date | pd.Timestamp | None = None,
    progress: Callable[[str], None] | None = None,
) -> Records:
    """Read and check a records folder.

    Parameters
    ----------
    folder : str or pathlib.Path
        A folder with ``persons.csv``, ``events.csv`` and optionally ``engagement.csv``.
    dayfirst : bool
        Also read dates written day first, ``DD/MM/YYYY``; see :func:`read_table`.
    lookup : pandas.DataFrame, optional
        The offence lookup event codes must be in (:func:`fdkit.offences.read_lookup`). By
        default the folder's own ``offences.csv`` if it has one, else the kit's lookup. A
        lookup given here must match a folder's own: two lookups for one set of records
        would classify them two ways.
    extract_date : date or str, optional
        When the extract was taken (default today): no offence or birth may be later, and
        no one older than :data:`MAX_AGE` on it. See :func:`plausibility_problems`.
    progress : callable, optional
        Called with the name of each step as it starts (``"reading events.csv"``,
        ``"checking"``); :func:`fdkit.progress.stepper` makes one that shows a bar.

    Returns
    -------
    Records
        With ``lookup`` set to the unit lookup used (None for the kit's).

    Raises
    ------
    FdkitDataError
        Listing every problem found across the files, by file and line (the header is
        line 1): unreadable files or values, blank or repeated ids, repeated
        (``crime_id``, ``person_id``, ``role``), roles other than suspect or victim, sex
        other than F, M, X or blank, offence codes not in the lookup, events or engagement
        rows for people not in ``persons.csv``, dates of birth after an offence date, and
        the implausible records :func:`plausibility_problems` finds.

    Examples
    --------
    >>> records = load_records("synthetic")  # doctest: +SKIP
    >>> print(summarise(records))  # doctest: +SKIP
    """
    folder = Path(folder)
    if not folder.is_dir():
        what = "a file, not a folder" if folder.exists() else "folder not found"
        raise FdkitDataError([Problem(None, what)], source=folder)
    lookup = _folder_lookup(folder, lookup)
    frames: dict[str, pd.DataFrame | None] = {}
    problems: list[Problem] = []
    for table in _TABLES:
        path = folder / f"{table.name}.csv"
        if table is _ENGAGEMENT and not path.exists():
            frames[table.name] = None
            continue
        if progress is not None:
            progress(f"reading {path.name}")
        frames[table.name], found = _read(path, table.columns, table.booleans, table.dates, dayfirst)
        problems += found
    if progress is not None:
        progress("checking")
    # The two sets of checks only read the frames, and most of their work runs in numpy and
    # Arrow without the GIL: side by side they take little longer than the slower one.
    with ThreadPoolExecutor(max_workers=2) as pool:
        contract = pool.submit(_check_records, frames, lookup, ".csv")
        plausible = pool.submit(plausibility_problems, frames, folder, extract_date)
        problems += contract.result() + plausible.result()
    if problems:
        located = at_file_lines(_by_file(problems, suffix=".csv"), folder)
        raise FdkitDataError(located, source=folder)
    persons, events = frames["persons"], frames["events"]
    # a required file that cannot be read at all is a problem, and problems were raised above
    assert persons is not None and events is not None
    persons["sex"] = persons["sex"].mask(persons["sex"].eq(""))
    return Records(persons, events, frames["engagement"], source=folder, lookup=lookup)


def _folder_lookup(folder: Path, given: pd.DataFrame | None) -> pd.DataFrame | None:
    """The lookup for a records folder: the one given, the folder's own, or None (the kit's)."""
    path = folder / offences.LOOKUP_FILE
    if not path.is_file():
        return given
    own = offences.read_lookup(path)
    if given is not None and offences.describe_lookup(given) != offences.describe_lookup(own):
        message = (
            f"the folder has its own offence lookup ({offences.describe_lookup(own)}), which differs from the one "
            f"given ({offences.describe_lookup(given)}); use one lookup for one set of records"
        )
        raise FdkitDataError([Problem(offences.LOOKUP_FILE, message)], source=folder)
    return own


def validate_frames(
    persons: pd.DataFrame,
    events: pd.DataFrame,
    engagement: pd.DataFrame | None = None,
    *,
    lookup: pd.DataFrame | None = None,
    source: str | Path | None = None,
) -> Records:
    """Check in-memory records with the same rules as :func:`load_records`.

    The frames must already be typed: dates ``datetime64`` without missing values,
    flags numpy bool, the other contract columns text. Sex may be blank or missing.

    Parameters
    ----------
    persons, events : pandas.DataFrame
    engagement : pandas.DataFrame, optional
    lookup : pandas.DataFrame, optional
        The offence lookup; :func:`fdkit.offences.lookup` by default.
    source : str or pathlib.Path, optional
        Where the records come from, kept on the result.

    Returns
    -------
    Records
        The frames as given.

    Raises
    ------
    FdkitDataError
        Listing every problem. Problems are placed by frame (``persons``, ``events``,
        ``engagement``) and 0-based row position, as ``frame.iloc`` counts (``unit`` is
        ``"row"``), not by file line.
    """
    given = {"persons": persons, "events": events, "engagement": engagement}
    frames: dict[str, pd.DataFrame | None] = {}
    problems: list[Problem] = []
    for table in _TABLES:
        frame = given[table.name]
        structural = [] if frame is None else _dtype_problems(frame, table)
        problems += structural + _missing_dates(frame, table)
        frames[table.name] = None if structural else frame
    problems += _check_records(frames, lookup, suffix="")
    if problems:
        raise FdkitDataError(_by_file(problems, suffix=""), source=source)
    return Records(persons, events, engagement, None if source is None else Path(source))


def _dtype_problems(frame: pd.DataFrame, table: _Table) -> list[Problem]:
    if missing := _missing_columns(table.name, table.columns, frame.columns):
        return missing
    problems = []
    for column in table.columns:
        dtype = frame[column].dtype
        if column in table.dates:
            ok, expected = pd.api.types.is_datetime64_dtype(dtype), "datetime64 dates"
        elif column in table.booleans:
            ok, expected = dtype == np.bool_, "a numpy bool column"
        else:
            kind = pd.api.types.infer_dtype(frame[column], skipna=True)
            ok, expected = kind in ("string", "empty"), "text"
        if not ok:
            message = f"expected {expected}, found dtype {dtype}"
            problems.append(Problem(table.name, message, column))
    return problems


def _missing_dates(frame: pd.DataFrame | None, table: _Table) -> list[Problem]:
    if frame is None:
        return []
    return [
        problem
        for column in table.dates
        if column in frame and pd.api.types.is_datetime64_dtype(frame[column].dtype)
        for problem in _problem_at(table.name, column, frame[column].isna().to_numpy(), "missing dates (NaT)")
    ]


def _by_file(problems: list[Problem], suffix: str) -> list[Problem]:
    order: list[str | None] = [table.name + suffix for table in _TABLES]
    return sorted(problems, key=lambda problem: order.index(problem.file))


def _check_records(
    frames: Mapping[str, pd.DataFrame | None], lookup: pd.DataFrame | None, suffix: str
) -> list[Problem]:
    """The contract's checks on typed frames; a frame that is None is skipped.

    Problems are named ``persons`` + ``suffix`` and so on, and placed at row positions.
    """
    names = {table.name: table.name + suffix for table in _TABLES}
    persons, events, engagement = (frames[table.name] for table in _TABLES)
    problems = []
    if persons is not None:
        problems += _blank_problems(persons, ("person_id",), names["persons"])
        problems += _duplicate_problems(persons, ("person_id",), names["persons"])
        problems += _choice_problems(persons, "sex", SEXES, names["persons"])
    if events is not None:
        name = names["events"]
        problems += _blank_problems(events, ("crime_id", "person_id", "offence_code"), name)
        problems += _duplicate_problems(events, ("crime_id", "person_id", "role"), name)
        problems += _choice_problems(events, "role", ROLES, name)
        problems += _unknown_codes(events, lookup, name)
        if persons is not None:
            found = _person_positions(events["person_id"], persons)
            problems += _unknown_people(events, found, name, names["persons"])
            problems += _born_after_offence(events, persons, found, name)
    if engagement is not None:
        name = names["engagement"]
        problems += _blank_problems(engagement, ("person_id",), name)
        problems += _duplicate_problems(engagement, ("person_id",), name)
        if persons is not None:
            found = _person_positions(engagement["person_id"], persons)
            problems += _unknown_people(engagement, found, name, names["persons"])
    return problems


def _unknown_codes(events: pd.DataFrame, lookup: pd.DataFrame | None, name: str) -> list[Problem]:
    lookup = offences.lookup() if lookup is None else lookup
    codes = events["offence_code"]
    bad = ~codes.isin(lookup["offence_code"]).to_numpy() & ~_blank(codes)
    if not bad.any():
        return []
    counts = codes[bad].value_counts().sort_index().sort_values(ascending=False, kind="stable")
    texts = [f"{quoted(code)} ({n:,} row{'s' if n > 1 else ''})" for code, n in counts.items()]
    message = f"offence codes not in the offence lookup: {_listing(texts, len(counts))}"
    return _problem_at(name, "offence_code", bad, message, counts.index[:SHOWN].tolist())


def _person_positions(ids: pd.Series, persons: pd.DataFrame) -> np.ndarray:
    """For each id, the row position of that person in ``persons``, or -1 if none."""
    return positions_in(ids, persons["person_id"])


def _unknown_people(frame: pd.DataFrame, found: np.ndarray, name: str, persons_name: str) -> list[Problem]:
    ids = frame["person_id"]
    bad = (found < 0) & ~_blank(ids)
    template = f"people not in {persons_name}: {{values}}"
    return _value_problem(name, "person_id", ids, bad, template)


def _born_after_offence(events: pd.DataFrame, persons: pd.DataFrame, found: np.ndarray, name: str) -> list[Problem]:
    born = persons["date_of_birth"].to_numpy()[found]  # meaningless where found is -1
    known = ~placeholder_births(persons["date_of_birth"])[found]
    bad = (found >= 0) & known & (born > events["offence_date"].to_numpy())
    if not bad.any():
        return []
    rows = np.flatnonzero(bad)[:SHOWN]
    shown = events.iloc[rows]
    texts = [
        f"person {quoted(person)} born {pd.Timestamp(birth):%Y-%m-%d}, crime {quoted(crime)} on {date:%Y-%m-%d}"
        for person, birth, crime, date in zip(shown["person_id"], born[rows], shown["crime_id"], shown["offence_date"])
    ]
    message = f"offence before the person's date of birth: {_listing(texts, int(bad.sum()))}"
    return _problem_at(name, "offence_date", bad, message, shown["person_id"].tolist())


# --- plausibility: records that parse but cannot be true ---------------------------------


def placeholder_births(dates: pd.Series) -> np.ndarray:
    """Where dates of birth are placeholders for "not known" (:data:`PLACEHOLDER_BIRTH_DATES`).

    Parameters
    ----------
    dates : pandas.Series
        Dates of birth, ``datetime64`` (missing dates are not placeholders).

    Returns
    -------
    numpy.ndarray of bool

    Examples
    --------
    >>> placeholder_births(pd.Series(pd.to_datetime(["1900-01-01", "2005-01-01"]))).tolist()
    [True, False]
    """
    # Microseconds hold every placeholder (0001-01-01 and 9999-12-31 lie outside nanoseconds' range).
    values = np.asarray(dates.to_numpy(), dtype="datetime64[us]")
    return np.isin(values, _PLACEHOLDERS)


_PLACEHOLDERS = np.array(PLACEHOLDER_BIRTH_DATES, dtype="datetime64[us]")


def plausibility_problems(
    frames: Mapping[str, pd.DataFrame | None],
    folder: Path | None,
    extract_date: str | date | pd.Timestamp | None = None,
) -> list[Problem]:
    """Problems with records that are well formed but cannot be true, or are unsafe to open.

    - offence dates after the extract date, dates of birth after it, and ages over
      :data:`MAX_AGE` on it (the extract date defaults to today), except the placeholders
      systems write for an unknown date of birth (:data:`PLACEHOLDER_BIRTH_DATES`);
    - a ``crime_id`` recorded with different offence dates or codes;
    - a ``person_id`` or ``crime_id`` beginning with a character that makes a spreadsheet
      run it as a formula (formula injection);
    - a value holding a line break: real records never do, so it is almost always a stray
      quote that has merged rows; the lines where it opens and closes are given.

    Parameters
    ----------
    frames : mapping of str to DataFrame or None
        ``persons``, ``events`` and ``engagement`` as read (None where unreadable).
    folder : pathlib.Path or None
        The records folder, to give file lines for line breaks; None for in-memory frames.
    extract_date : date or str, optional

    Returns
    -------
    list of Problem
        Named ``persons.csv`` and so on, at row positions (line breaks at file lines).
    """
    extract = pd.Timestamp(date.today() if extract_date is None else extract_date).normalize()
    on = f"{extract:%Y-%m-%d}"
    persons, events, engagement = (frames.get(table.name) for table in _TABLES)
    problems = []
    if persons is not None and pd.api.types.is_datetime64_dtype(persons["date_of_birth"].dtype):
        born = persons["date_of_birth"]
        known = ~placeholder_births(born)
        future = (born > extract).to_numpy() & known
        if future.any():
            problems += _value_problem(
                "persons.csv",
                "date_of_birth",
                _iso_text(born),
                future,
                f"dates of birth after the extract date {on}: {{values}} (give the extract date with "
                "--extract-date YYYY-MM-DD if it is not today)",
            )
        oldest = extract - pd.DateOffset(years=MAX_AGE)
        too_old = (born < oldest).to_numpy() & known
        if too_old.any():
            problems += _value_problem(
                "persons.csv",
                "date_of_birth",
                _iso_text(born),
                too_old,
                f"people over {MAX_AGE} on {on}: born {{values}}; check the dates of birth",
            )
    if events is not None and pd.api.types.is_datetime64_dtype(events["offence_date"].dtype):
        dates = events["offence_date"]
        future = (dates > extract).to_numpy()
        if future.any():
            problems += _value_problem(
                "events.csv",
                "offence_date",
                _iso_text(dates),
                future,
                f"offence dates after the extract date {on}: {{values}}; a date in the future is a typing "
                "error (give the extract date with --extract-date YYYY-MM-DD if it is not today)",
            )
        problems += _conflicting_crimes(events)
    for name, frame, columns in (
        ("persons.csv", persons, ("person_id",)),
        ("events.csv", events, ("crime_id",)),  # its person_ids must be in persons.csv, checked there
        ("engagement.csv", engagement, ("person_id",)),
    ):
        if frame is not None:
            problems += formula_problems(frame, columns, name)
            problems += _line_break_problems(frame, name, folder)
    return problems


def _iso_text(dates: pd.Series) -> pd.Series:
    return dates.dt.strftime("%Y-%m-%d")


def _conflicting_crimes(events: pd.DataFrame) -> list[Problem]:
    columns = [
        (column, what) for column, what in (("offence_date", "dates"), ("offence_code", "codes")) if column in events
    ]
    numbers = {column: _comparable_numbers(events[column]) for column, _ in columns}
    # Almost every crime is consistent: a quick pass finds the few rows worth the exact check.
    rows = keys_that_may_vary(events["crime_id"], numbers.values())
    rows = np.arange(len(events)) if rows is None else np.flatnonzero(rows)
    crime = pd.factorize(events["crime_id"].iloc[rows])[0]
    problems = []
    for column, what in columns:
        values = numbers[column][rows]
        grouped = pd.Series(values).groupby(crime, sort=False)
        differs = (grouped.transform("min") != grouped.transform("max")).to_numpy() & (crime >= 0) & ~np.isnan(values)
        bad = np.zeros(len(events), dtype=bool)
        bad[rows[differs]] = True
        problems += _value_problem(
            "events.csv",
            "crime_id",
            events["crime_id"],
            bad,
            f"crimes recorded with different offence {what}: {{values}} (every row of one crime must "
            f"share its {column})",
        )
    return problems


def _comparable_numbers(values: pd.Series) -> np.ndarray:
    """Dates or codes as floats that are equal exactly when the values are (NaN for an unreadable date)."""
    if pd.api.types.is_datetime64_dtype(values.dtype):
        numbers = values.to_numpy("datetime64[ns]").view("int64").astype("float64")
        numbers[values.isna().to_numpy()] = np.nan  # an unreadable date is reported already
        return numbers
    return pd.factorize(values)[0].astype("float64")


def formula_problems(frame: pd.DataFrame, columns: Sequence[str], name: str) -> list[Problem]:
    """Values in ``columns`` that a spreadsheet would run as a formula, as problems at rows.

    Identifiers and stratum names must not begin with ``=``, ``+``, ``-``, ``@``, a tab or
    a carriage return: the kit writes them to CSV files analysts open in Excel.
    """
    problems = []
    for column in columns:
        if column not in frame:
            continue
        bad = formula_cells_in(frame[column])
        problems += _value_problem(
            name,
            column,
            frame[column],
            bad,
            "values beginning with =, +, -, @, a tab or a carriage return: {values}. A spreadsheet runs "
            "such a cell as a formula (formula injection), so the kit refuses them; give safe IDs with "
            "fdkit pseudonymise, or rename them",
        )
    return problems


def formula_cells_in(values: pd.Series) -> np.ndarray:
    """Where ``values`` begin with a character in :data:`FORMULA_STARTS`, as a numpy bool array."""
    found = starts_with_any(values, FORMULA_STARTS)
    return np.isin(_first_characters(values), FORMULA_STARTS) if found is None else found


def _first_characters(values: pd.Series) -> np.ndarray:
    """Each value's first character ('' if blank or missing), looking at each distinct value once."""
    codes, distinct = pd.factorize(values)
    try:
        first = np.asarray(np.asarray(distinct, dtype=object), dtype="U1")
    except (TypeError, ValueError):
        first = pd.Series(distinct, dtype="string").str[:1].fillna("").to_numpy(dtype="U1")
    return np.where(codes >= 0, np.append(first, "")[codes], "")


def _may_hold_quotes(path: Path) -> bool:
    """False if the file has no double quote at all, so no value in it can hold a line break.

    Reading and the line-break check both ask; the answer is kept for the file as it is
    (its size and modification time), so a large file is scanned once.
    """
    try:
        stat = path.stat()
    except OSError:
        return True
    return _holds_aquoted(str(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _holds_aquoted(path: str, size: int, modified_ns: int) -> bool:
    try:
        with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return data.find(b'"') >= 0
    except (OSError, ValueError):
        return True


def _line_break_problems(frame: pd.DataFrame, name: str, folder: Path | None) -> list[Problem]:
    if folder is not None and (folder / name).is_file() and not _may_hold_quotes(folder / name):
        return []  # only a quoted value can hold a line break: a quick scan saves checking every value
    problems = []
    for column in frame.columns:
        if not pd.api.types.is_object_dtype(frame[column].dtype) and not pd.api.types.is_string_dtype(
            frame[column].dtype
        ):
            continue
        breaks = frame[column].astype("string").str.count(r"\r\n|\r|\n").fillna(0).to_numpy(dtype=int)
        rows = np.flatnonzero(breaks)
        if not len(rows):
            continue
        shown = rows[:SHOWN]
        if folder is not None and (folder / name).is_file():
            starts = _file_lines(folder / name, set(shown.tolist()))
            lines = tuple(starts[row] for row in shown.tolist())
            spans = [f"opens on line {starts[r]} and closes on line {starts[r] + breaks[r]}" for r in shown]
            unit = "line"
        else:
            lines, unit = tuple(shown.tolist()), "row"
            spans = [f"row {r} holds {breaks[r]} line break(s)" for r in shown]
        message = (
            f"values holding line breaks ({_listing(spans, len(rows))}): real records do not hold line "
            "breaks, so a quote has probably been left open and merged the rows in between into one; "
            "remove the stray quote"
        )
        problems.append(Problem(name, message, column, lines, (), len(rows), unit))
    return problems


# --- writing -----------------------------------------------------------------------------


def write_records(records: Records, folder: str | Path) -> dict[str, Path]:
    """Write records as a records folder in the canonical format.

    The files are byte-reproducible: UTF-8 without a byte order mark, ``\\n`` line
    endings, ISO dates, booleans as ``true``/``false``, blanks empty, the contract's
    columns first and then any extra columns, rows in the frames' order.

    Parameters
    ----------
    records : Records
    folder : str or pathlib.Path
        Created if missing. Existing records files in it are replaced; an
        ``engagement.csv`` is removed when the records have no engagement, and an
        ``offences.csv`` when they use the kit's lookup, so that the folder reads back as
        these records. A unit lookup (``records.lookup``) is written as ``offences.csv``.

    Returns
    -------
    dict of str to pathlib.Path
        The files written, by file name.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for table, frame in zip(_TABLES, (records.persons, records.events, records.engagement)):
        path = folder / f"{table.name}.csv"
        if frame is None:
            path.unlink(missing_ok=True)
            continue
        _canonical(frame, table.columns).to_csv(
            path, index=False, lineterminator="\n", encoding="utf-8", date_format="%Y-%m-%d"
        )
        written[path.name] = path
    path = folder / offences.LOOKUP_FILE
    if records.lookup is None:
        path.unlink(missing_ok=True)
    else:  # the codes mean nothing without it, so it travels with them
        offences.write_lookup(records.lookup, path)
        written[path.name] = path
    return written


def _canonical(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    ordered = frame[[*columns, *(column for column in frame if column not in columns)]]
    as_text = {
        column: ordered[column].map({True: "true", False: "false"})
        for column in ordered
        if pd.api.types.is_bool_dtype(ordered[column])
    }
    return ordered.assign(**as_text)


# --- summary -----------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class RecordsSummary:
    """The figures ``fdkit validate`` prints about a set of records.

    Attributes
    ----------
    persons, events : int
        Numbers of persons and of events.
    events_by_role : pandas.Series
        Events by role (``suspect``, ``victim``).
    events_by_group : pandas.DataFrame
        Events by offence group (rows, in :data:`fdkit.offences.GROUPS` order) and role.
    first_offence, last_offence : pandas.Timestamp or None
        The range of offence dates.
    police_initiated_share, knife_share : float
        Shares of events that were police-initiated and that involved a knife (by the
        kit's rule, :func:`fdkit.offences.is_knife_event`).
    engagement_recorded, engaged : int or None
        People with an engagement record, and how many engaged; None without one.
    unknown_birth : int
        People whose date of birth is a placeholder for "not known"
        (:data:`PLACEHOLDER_BIRTH_DATES`): their age is unknown, and screening leaves them out.
    source : pathlib.Path or None
    lookup : str
        Which offence lookup classified the events (:func:`fdkit.offences.describe_lookup`).
    """

    persons: int
    events: int
    events_by_role: pd.Series
    events_by_group: pd.DataFrame
    first_offence: pd.Timestamp | None
    last_offence: pd.Timestamp | None
    police_initiated_share: float
    knife_share: float
    engagement_recorded: int | None = None
    engaged: int | None = None
    unknown_birth: int = 0
    source: Path | None = None
    lookup: str = offences.describe_lookup(None)

    def to_dict(self) -> dict:
        """Return the figures as plain Python values (dates as ISO text)."""
        return {
            "source": None if self.source is None else str(self.source),
            "persons": self.persons,
            "events": self.events,
            "events_by_role": {role: int(n) for role, n in self.events_by_role.items()},
            "events_by_group": {
                group: {role: int(n) for role, n in row.items()} for group, row in self.events_by_group.iterrows()
            },
            "first_offence": _iso(self.first_offence),
            "last_offence": _iso(self.last_offence),
            "police_initiated_share": self.police_initiated_share,
            "knife_share": self.knife_share,
            "engagement_recorded": self.engagement_recorded,
            "engaged": self.engaged,
            "unknown_birth": self.unknown_birth,
            "lookup": self.lookup,
        }

    def __str__(self) -> str:
        dates = f"{_iso(self.first_offence)} to {_iso(self.last_offence)}" if self.first_offence is not None else "none"
        rows = [("persons", f"{self.persons:,}"), ("events", f"{self.events:,}")]
        rows += [(f"  as {role}", f"{n:,}") for role, n in self.events_by_role.items()]
        rows += [
            ("offence dates", dates),
            ("police-initiated", f"{self.police_initiated_share:.1%} of events"),
            ("knife involved", f"{self.knife_share:.1%} of events"),
        ]
        if self.lookup != offences.describe_lookup(None):
            rows.append(("offence codes", f"classified by {self.lookup}"))
        if self.engagement_recorded is not None:
            rows.append(("engagement", f"{self.engagement_recorded:,} people recorded, {self.engaged:,} engaged"))
        if self.unknown_birth:
            people = f"{self.unknown_birth:,} {'person' if self.unknown_birth == 1 else 'people'}"
            rows.append(("date of birth unknown", f"{people} (a placeholder date such as 1900-01-01)"))
        width = max(len(label) for label, _ in rows)
        title = "Records" if self.source is None else f"Records in '{shorten(self.source, PATH_ECHOED)}'"
        table = self.events_by_group.map("{:,}".format).to_string()
        return "\n".join(
            [title]
            + [f"  {label:<{width}}  {value}" for label, value in rows]
            + ["", "Events by offence group and role"]
            + ["  " + line for line in table.splitlines()]
        )


def _iso(day: pd.Timestamp | None) -> str | None:
    return None if day is None else f"{day:%Y-%m-%d}"


def summarise(records: Records, *, lookup: pd.DataFrame | None = None) -> RecordsSummary:
    """Summarise checked records: counts, roles, offence groups, dates and shares.

    Parameters
    ----------
    records : Records
    lookup : pandas.DataFrame, optional
        The offence lookup; :func:`fdkit.offences.lookup` by default.

    Returns
    -------
    RecordsSummary
    """
    events, engagement = records.events, records.engagement
    lookup = records.lookup if lookup is None else lookup
    # Classified once per distinct code and counted on integer codes: fast for millions of events.
    codes, per_code = offences.classify_distinct(events, lookup)
    group_of_code, groups = pd.factorize(per_code["group"])
    role_codes, roles = pd.factorize(events["role"], use_na_sentinel=False)
    cells = group_of_code[codes] * len(roles) + role_codes
    counts = np.bincount(cells, minlength=len(groups) * len(roles)).reshape(len(groups), len(roles))
    by_group = (
        pd.DataFrame(counts, index=pd.Index(groups, name="offence group"), columns=pd.Index(roles))
        .loc[:, pd.notna(roles)]  # as pd.crosstab, which leaves out missing values
        .loc[lambda table: table.sum(axis=1) > 0]
        .reindex(columns=list(ROLES), fill_value=0)
        .rename_axis(columns=None)
    )
    knife_involved = per_code["knife_involved"].to_numpy(dtype=bool)[codes] | events["knife"].to_numpy(dtype=bool)
    order = [group for group in offences.GROUPS if group in by_group.index]
    by_group = by_group.reindex(order + sorted(set(by_group.index) - set(order)))
    first, last = events["offence_date"].min(), events["offence_date"].max()
    return RecordsSummary(
        persons=len(records.persons),
        events=len(events),
        events_by_role=events["role"].value_counts().reindex(list(ROLES), fill_value=0),
        events_by_group=by_group,
        first_offence=None if pd.isna(first) else first,
        last_offence=None if pd.isna(last) else last,
        police_initiated_share=float(events["police_initiated"].mean()),
        knife_share=float(knife_involved.mean()) if len(events) else float("nan"),
        engagement_recorded=None if engagement is None else len(engagement),
        engaged=None if engagement is None else int(engagement["engaged"].sum()),
        unknown_birth=int(placeholder_births(records.persons["date_of_birth"]).sum()),
        source=records.source,
        lookup=offences.describe_lookup(lookup),
    )
