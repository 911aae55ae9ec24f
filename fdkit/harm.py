"""Crime harm: weight tables and harm per person over a window.

The trial measured offending by its *harm*, in the manner of the Cambridge Crime Harm
Index (CCHI): each crime weighs the number of days of imprisonment that the Sentencing
Council guideline gives as the starting point for a first offender, offences that would
draw a fine or a community order are turned into days too, and crimes detected by the
police on their own initiative are left out. A person's harm over a window is the sum of
the weights of the crimes they are recorded against in that window.

Three kinds of weight table can be used, all with the columns ``offence_code`` and
``weight`` (days, a non-negative number):

:func:`illustrative_weights`
    The table shipped with the kit, one row per code of the kit's offence lookup.
    **It is not the official Cambridge CCHI and must not be quoted as it.** Each row says
    where its value comes from (``basis`` and ``source``): a handful are guideline
    starting points the kit's authors found and cite; the rest are *illustrative*,
    plausible values with the reasoning behind them. Plots and tables built on it should
    carry :data:`ILLUSTRATIVE_LABEL`.
:func:`read_weights`
    A unit's own table, as a CSV file.
:func:`read_cchi_workbook`
    The official CCHI spreadsheet published by the Institute of Criminology, Cambridge,
    for units that hold a copy (the kit does not ship it: no open licence is stated).

**How the illustrative table turns fines and community orders into days.** The CCHI
counts the days a worker on the minimum wage needs to earn a fine; the kit has no
verified copy of the CCHI's own conversions, so it uses a rough rule of its own, stated
here and in each affected row: a Band A fine (about half a week's income) is 2.5 days,
a Band B fine (about a week's income) 5 days and a Band C fine (about one and a half
weeks') 7.5 days of work; a low, medium and high level community order count as about
8, 15 and 30 days. These numbers are illustrative, not the CCHI's.

**Official codes and the kit's codes.** The official spreadsheet keys offences by Home
Office classification in the form ``CCC/SS`` (class and subclass, zero-padded:
``058/04``); the kit's lookup uses the Home Office Counting Rules' short forms (``1``,
``4/1``, ``5A``, ``8G``, ``10D/1``, ``105A``). What is certain is the *class*: the number
before the slash in an official code is the number at the front of a short code, so
``058/04`` and ``58A`` are both in class 58 (:func:`offence_class`). Which subclass number
goes with which letter is **not** certain from the codes alone and differs between
classes, and the kit's ``10D/1``/``10D/2`` split is the kit's own. So the kit never guesses
a subclass: :func:`read_cchi_workbook` keeps the official codes as they are (right for an
extract coded that way), :func:`candidate_mapping` lists, for each kit code, the official
codes of the same class with their titles for an analyst to choose from, and the analyst's
choices, saved as a CSV with columns ``official_code`` and ``offence_code``
(:func:`read_code_mapping`), turn the official table into one keyed by the kit's codes
(:func:`apply_code_mapping`, or ``mapping=`` in :func:`read_cchi_workbook`).

Scoring is vectorised: :func:`weigh` and :func:`score` handle ten million events in
seconds.

Examples
--------
>>> from fdkit import harm
>>> weights = harm.illustrative_weights()
>>> int(weights.loc[weights.offence_code == "1", "weight"].iloc[0])
5475
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from collections.abc import Iterable, Mapping
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from .records import SHOWN, FdkitDataError, Problem, at_file_lines, read_table

__all__ = [
    "BASES",
    "ILLUSTRATIVE_LABEL",
    "MISSING_POLICIES",
    "UnweightedCodesWarning",
    "apply_code_mapping",
    "candidate_mapping",
    "illustrative_weights",
    "offence_class",
    "read_cchi_workbook",
    "read_code_mapping",
    "read_weights",
    "score",
    "weigh",
    "weights_sha256",
]

#: The label notebooks and plots put on anything computed with the shipped table.
ILLUSTRATIVE_LABEL = "illustrative harm weights (not the official Cambridge CCHI)"

#: The values of the shipped table's ``basis`` column.
BASES = ("sentencing starting point", "illustrative")

#: What :func:`weigh` and :func:`score` may do with codes that have no weight.
MISSING_POLICIES = ("error", "zero")

WEIGHT_COLUMNS = ("offence_code", "weight")
MAPPING_COLUMNS = ("official_code", "offence_code")
SCORE_COLUMNS = ("crime_id", "person_id", "offence_date", "role", "offence_code")

_SHEET_PATTERN = re.compile(r"^\s*cchi\b.*\bvalues\s+sheet\s*$", re.IGNORECASE)
_HEADER_SEARCH_ROWS = 50


class UnweightedCodesWarning(UserWarning):
    """Events whose offence code has no weight were weighed 0 (``missing="zero"``)."""


# --- weight tables -----------------------------------------------------------------------


@lru_cache(maxsize=1)
def _packaged_weights() -> pd.DataFrame:
    source = resources.files("fdkit").joinpath("data/harm_weights.csv")
    with resources.as_file(source) as path:
        return read_weights(path)


def illustrative_weights() -> pd.DataFrame:
    """Return the illustrative weight table shipped with the kit.

    **Not the official Cambridge CCHI**: label results with :data:`ILLUSTRATIVE_LABEL`.

    Returns
    -------
    pandas.DataFrame
        One row per code of :func:`fdkit.offences.lookup`, with columns ``offence_code``,
        ``weight`` (days, float), ``basis`` (one of :data:`BASES`) and ``source`` (the
        guideline, year and category cited, or the reasoning behind an illustrative value).
    """
    return _packaged_weights().copy()


def weights_sha256(weights: pd.DataFrame | None = None) -> str:
    """The fingerprint of a weight table (the illustrative one by default): its codes and weights only.

    Computed like the offence lookup's (:func:`fdkit.offences.table_sha256`), so an analysis
    plan can pin the weights it was written for, whatever file they come from.
    """
    from .offences import table_sha256

    return table_sha256(illustrative_weights() if weights is None else weights, WEIGHT_COLUMNS)


def read_weights(path: str | Path) -> pd.DataFrame:
    """Read a unit's own weight table from a CSV file.

    Parameters
    ----------
    path : str or pathlib.Path
        A CSV file with a header row and the columns ``offence_code`` and ``weight``
        (days, a non-negative number). Other columns are kept as text.

    Returns
    -------
    pandas.DataFrame
        The rows in file order; ``weight`` is float.

    Raises
    ------
    fdkit.FdkitDataError
        Listing every problem by file line (the header is line 1): a missing file or
        column, blank codes or weights, weights that are not numbers or are negative, and
        codes that appear more than once.
    """
    path = Path(path)
    frame = read_table(path, required=WEIGHT_COLUMNS)  # a file that cannot be read stops here
    problems: list[Problem] = []
    try:
        read_table(path, required=WEIGHT_COLUMNS, unique=("offence_code",), not_blank=WEIGHT_COLUMNS)
    except FdkitDataError as error:  # blanks and repeated codes, already at file lines
        problems += error.problems
    weights, bad = _parse_weights(frame["weight"])
    problems += _at_lines(path, _weight_problems(path.name, frame["weight"], weights, bad))
    if problems:
        raise FdkitDataError(problems, source=path)
    return frame.assign(weight=weights)


def _parse_weights(text: pd.Series) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Weights as floats (NaN where unusable) and where they are not numbers or negative."""
    text = text.fillna("").astype(str).str.strip()
    values = pd.to_numeric(text, errors="coerce").to_numpy(dtype=float)
    blank = text.eq("").to_numpy()
    bad = {
        "not numbers": ~blank & ~np.isfinite(values),
        "negative": np.isfinite(values) & (values < 0),
    }
    return np.where(bad["not numbers"] | bad["negative"], np.nan, values), bad


def _weight_problems(name, text, values, bad) -> list[Problem]:
    messages = {
        "not numbers": "weights that are not numbers: {values} (expected a number of days, "
        "0 or more, such as 365 or 2.5)",
        "negative": "negative weights: {values} (a weight is a number of days and cannot be below 0)",
    }
    return [
        problem
        for kind, template in messages.items()
        for problem in _rows_problem(name, "weight", text, bad[kind], template)
    ]


def _rows_problem(name, column, text, bad, template, unit="row") -> list[Problem]:
    """A problem at the rows where ``bad`` is true, quoting their distinct values."""
    rows = np.flatnonzero(bad)
    if not len(rows):
        return []
    distinct = pd.unique(text.to_numpy()[bad])
    quoted = [f"'{value}'" for value in distinct[:SHOWN]]
    listed = _listed(quoted, len(distinct))
    lines = tuple(int(row) for row in rows[:SHOWN])
    values = tuple(str(value) for value in distinct[:SHOWN])
    return [Problem(name, template.replace("{values}", listed), column, lines, values, len(rows), unit)]


def _listed(texts: list[str], total: int) -> str:
    more = f" and {total - SHOWN:,} more" if total > SHOWN else ""
    return ", ".join(texts[:SHOWN]) + more


def _at_lines(path: Path, problems: list[Problem]) -> list[Problem]:
    """Place problems found at row positions of a CSV file at its file lines."""
    if not problems:
        return []
    return at_file_lines(problems, path.parent)


def _checked_weights(weights: pd.DataFrame) -> pd.DataFrame:
    """Check an in-memory weight table; return its codes and float weights."""
    name = "weights"
    if missing := [column for column in WEIGHT_COLUMNS if column not in weights]:
        found = ", ".join(map(str, weights.columns)) or "no columns"
        message = f"missing required columns {', '.join(missing)} (found: {found})"
        raise FdkitDataError([Problem(name, message)])
    text = weights["weight"].astype(str).where(weights["weight"].notna(), "")
    values, bad = _parse_weights(text)
    problems = _weight_problems(name, text, values, bad)
    blank = text.str.strip().eq("").to_numpy()
    template = "blank weights (every code needs a weight)"
    problems += _rows_problem(name, "weight", text, blank, template)
    codes = weights["offence_code"].astype(str)
    repeated = codes.duplicated(keep=False).to_numpy()
    template = "repeated codes: {values} (each code needs exactly one weight)"
    problems += _rows_problem(name, "offence_code", codes, repeated, template)
    if problems:
        raise FdkitDataError(problems)
    return pd.DataFrame({"offence_code": codes.to_numpy(), "weight": values})


# --- the official CCHI spreadsheet ---------------------------------------------------------


def read_cchi_workbook(
    path: str | Path,
    sheet: str | None = None,
    *,
    mapping: pd.DataFrame | str | Path | None = None,
    columns: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Read the official Cambridge CCHI spreadsheet, in its published layout.

    The 2021 edition keeps its values on the sheet ``CCHI 2021 values sheet`` with the
    columns ``Home Office classification`` (such as ``058/04``), ``Full offence title``,
    ``CCHI score`` and ``If no sentencing data available what similar offence was used``.
    The 2026 edition's sheet is ``CCHI 2026 values sheet``; its column names are not
    verified, so columns are found by what their headers say (a Home Office
    classification or code; a CCHI score or value; a title), and ``columns`` names them
    outright when that fails. Title rows above the header row are skipped.

    Parameters
    ----------
    path : str or pathlib.Path
        The ``.xlsx`` file.
    sheet : str, optional
        The sheet to read. By default, the one sheet whose name reads
        ``CCHI ... values sheet``.
    mapping : pandas.DataFrame or path, optional
        The analyst's mapping from official codes to the kit's codes (columns
        ``official_code`` and ``offence_code``; see :func:`read_code_mapping`). Without
        it the official codes are kept as the ``offence_code``.
    columns : mapping of str to str, optional
        Header texts to use for ``"code"``, ``"score"``, ``"title"`` and ``"similar"``,
        for a layout the automatic search does not recognise.

    Returns
    -------
    pandas.DataFrame
        ``offence_code``, ``weight`` (days, float), ``title``, ``similar_offence`` (the
        stand-in offence the CCHI used when it had no sentencing data; missing if blank or
        the sheet has no such column) and ``official_code``. Rows with neither a code
        (a value starting with a digit, such as ``058/04``) nor a score, such as section
        headings and notes, are skipped; their sheet row numbers are in
        ``result.attrs["skipped_rows"]``.

    Raises
    ------
    fdkit.FdkitDataError
        If the file cannot be read as a workbook, no sheet or header row can be found, or
        rows have scores that are not non-negative numbers or repeated codes (placed by
        sheet row, as Excel numbers them).
    """
    if unknown := set(columns or {}) - {"code", "score", "title", "similar"}:
        raise ValueError(f"columns= takes 'code', 'score', 'title' and 'similar', not {sorted(unknown)}")
    path = Path(path)
    values, sheet_name = _workbook_values(path, sheet)
    label = f"{path.name} [{sheet_name}]"
    header_at, found = _find_header(values, columns or {}, label, path)
    table, skipped = _workbook_table(values, header_at, found, label, path)
    if mapping is not None:
        table = apply_code_mapping(table, mapping)
    table.attrs["skipped_rows"] = skipped
    return table


def _workbook_values(path: Path, sheet: str | None) -> tuple[list[tuple], str]:
    """Every row of the chosen sheet as a tuple of cell values, and the sheet's name."""
    from zipfile import BadZipFile

    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    if not path.is_file():
        message = "file not found; expected the CCHI .xlsx workbook"
        raise FdkitDataError([Problem(path.name, message)], source=path)
    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, BadZipFile, KeyError, OSError) as error:
        message = f"not a readable .xlsx workbook ({error}); save the CCHI file as Excel .xlsx"
        raise FdkitDataError([Problem(path.name, message)], source=path) from error
    try:
        name = _choose_sheet(book.sheetnames, sheet, path)
        return [tuple(row) for row in book[name].iter_rows(values_only=True)], name
    finally:
        book.close()


def _choose_sheet(names: list[str], sheet: str | None, path: Path) -> str:
    listed = ", ".join(f"'{name}'" for name in names)
    if sheet is not None:
        if sheet in names:
            return sheet
        message = f"no sheet '{sheet}' (sheets: {listed})"
        raise FdkitDataError([Problem(path.name, message)], source=path)
    matches = [name for name in names if _SHEET_PATTERN.match(name)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        message = f"no sheet named like 'CCHI 2021 values sheet' (sheets: {listed}); pass sheet="
    else:
        several = ", ".join(f"'{name}'" for name in matches)
        message = f"several sheets named like 'CCHI ... values sheet' ({several}); pass sheet="
    raise FdkitDataError([Problem(path.name, message)], source=path)


def _normal(text) -> str:
    return " ".join(str(text).lower().split()) if text is not None else ""


def _header_role(text: str) -> str | None:
    """What a header cell holds: the code, the score, the title, the similar offence."""
    if "similar offence" in text:
        return "similar"
    if ("home office" in text and ("class" in text or "code" in text)) or text in (
        "ho code",
        "hoc",
        "offence code",
        "code",
        "classification",
    ):
        return "code"
    measures = ("score", "value", "weight", "days")
    if ("cchi" in text or "harm" in text) and any(word in text for word in measures):
        return "score"
    if text == "cchi" or "crime harm index" in text:
        return "score"
    if "title" in text or text in ("offence", "offence description", "description"):
        return "title"
    return None


def _find_header(values, columns: Mapping[str, str], label: str, path: Path) -> tuple[int, dict[str, int]]:
    """The header row's position and the position of each column found in it."""
    named = {_normal(text): role for role, text in columns.items()}
    for at, row in enumerate(values[:_HEADER_SEARCH_ROWS]):
        found: dict[str, list[int]] = {}
        for position, text in enumerate(_normal(cell) for cell in row):
            role = named.get(text)
            if role is None and (role := _header_role(text)) in columns:
                role = None  # the caller named this column: look-alikes do not count
            if role:
                found.setdefault(role, []).append(position)
        if "code" in found and "score" in found:
            if ambiguous := {role: spots for role, spots in found.items() if len(spots) > 1}:
                texts = "; ".join(
                    f"{role}: " + ", ".join(f"'{row[spot]}'" for spot in spots) for role, spots in ambiguous.items()
                )
                message = f"sheet row {at + 1}: more than one column could be the {texts}; name them with columns="
                raise FdkitDataError([Problem(label, message)], source=path)
            return at, {role: spots[0] for role, spots in found.items()}
    message = (
        "no header row with a Home Office classification column and a CCHI score column in "
        f"the first {_HEADER_SEARCH_ROWS} rows; name the headers with "
        "columns={'code': ..., 'score': ...}"
    )
    raise FdkitDataError([Problem(label, message)], source=path)


def _cell_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _workbook_table(values, header_at, found, label, path) -> tuple[pd.DataFrame, list[int]]:
    """The offence rows below the header, checked; and the sheet rows skipped."""
    body = values[header_at + 1 :]
    first_row = header_at + 2  # sheet rows are numbered from 1, as Excel shows them
    columns = {role: _sheet_column(body, found.get(role)) for role in ("code", "score", "title", "similar")}
    filled = np.array([any(_cell_text(cell) for cell in row) for row in body], dtype=bool)
    # An offence row has a code that starts with a digit, or at least a score; the others
    # (section headings, notes, blank rows) are skipped and listed in attrs.
    keep = (columns["code"].str.match(r"\d") | columns["score"].ne("")).to_numpy()
    skipped = (np.flatnonzero(filled & ~keep) + first_row).tolist()
    codes, scores, titles, similar = (column[keep].reset_index(drop=True) for column in columns.values())
    weights, problems = _sheet_problems(codes, scores, label)
    if problems:
        rows = np.flatnonzero(keep) + first_row
        raise FdkitDataError([_at_sheet_rows(problem, rows) for problem in problems], source=path)
    table = pd.DataFrame(
        {
            "offence_code": codes,
            "weight": weights,
            "title": titles,
            "similar_offence": similar.mask(similar.eq("")),
            "official_code": codes,
        }
    )
    return table, skipped


def _sheet_column(body, spot: int | None) -> pd.Series:
    return pd.Series([_cell_text(row[spot]) if spot is not None and spot < len(row) else "" for row in body])


def _sheet_problems(codes: pd.Series, scores: pd.Series, label: str) -> tuple[np.ndarray, list[Problem]]:
    """Scores as floats, and problems with scores and codes at positions among the rows."""
    weights, bad = _parse_weights(scores)
    bad["blank"] = scores.eq("").to_numpy()
    bad["not codes"] = ~codes.str.match(r"\d").to_numpy()
    bad["repeated"] = codes.duplicated(keep=False).to_numpy() & ~bad["not codes"]
    code_column, score_column = "Home Office classification", "CCHI score"
    checks = [
        ("not numbers", score_column, scores, "CCHI scores that are not numbers: {values}"),
        ("negative", score_column, scores, "negative CCHI scores: {values}"),
        ("blank", score_column, scores, "blank CCHI scores"),
        (
            "not codes",
            code_column,
            codes,
            "scores on rows whose code is not a Home Office classification: {values} (expected codes such as 058/04)",
        ),
        ("repeated", code_column, codes, "repeated Home Office classifications: {values} (each must appear once)"),
    ]
    problems = [
        problem
        for kind, column, text, template in checks
        for problem in _rows_problem(label, column, text, bad[kind], template, unit="sheet row")
    ]
    return weights, problems


def _at_sheet_rows(problem: Problem, rows: np.ndarray) -> Problem:
    lines = tuple(int(rows[position]) for position in problem.lines)
    return dataclasses.replace(problem, lines=lines)


def offence_class(code: str) -> str:
    """The Home Office class of an official or a kit offence code.

    The class is the number an official ``CCC/SS`` code starts with (leading zeros
    dropped) and the number at the front of a Counting Rules short code. This is the part
    of a code the two systems certainly share.

    Examples
    --------
    >>> [offence_class(code) for code in ("058/04", "58A", "10D/1", "4/1", "105A", "001/00")]
    ['58', '58', '10', '4', '105', '1']
    """
    match = re.match(r"\s*0*(\d+)", str(code))
    if not match:
        raise ValueError(f"not a Home Office offence code: {code!r}")
    return match.group(1) or "0"


def candidate_mapping(official: pd.DataFrame, lookup: pd.DataFrame | None = None) -> pd.DataFrame:
    """List, for each kit code, the official codes of the same Home Office class.

    A worksheet for the analyst who builds the mapping file: keep one row per kit code,
    the official code that matches its meaning, and save ``official_code`` and
    ``offence_code`` as a CSV for :func:`read_code_mapping`. Sharing a class is certain;
    the choice within a class is the analyst's.

    Parameters
    ----------
    official : pandas.DataFrame
        The result of :func:`read_cchi_workbook` without ``mapping``.
    lookup : pandas.DataFrame, optional
        The kit's offence lookup; :func:`fdkit.offences.lookup` by default.

    Returns
    -------
    pandas.DataFrame
        ``offence_code``, ``kit_title``, ``official_code``, ``official_title``, ``weight``;
        kit codes whose class has no official code appear once with the rest missing.
    """
    from . import offences

    lookup = offences.lookup() if lookup is None else lookup
    kit = pd.DataFrame(
        {
            "offence_code": lookup["offence_code"],
            "kit_title": lookup["title"],
            "class": lookup["offence_code"].map(offence_class),
        }
    )
    codes = official["official_code"] if "official_code" in official else official["offence_code"]
    theirs = pd.DataFrame(
        {
            "official_code": codes,
            "official_title": official["title"],
            "weight": official["weight"],
            "class": codes.map(offence_class),
        }
    )
    merged = kit.merge(theirs, on="class", how="left").drop(columns="class")
    return merged.reset_index(drop=True)


def read_code_mapping(path: str | Path) -> pd.DataFrame:
    """Read an analyst's mapping from official CCHI codes to the kit's codes.

    Parameters
    ----------
    path : str or pathlib.Path
        A CSV file with columns ``official_code`` and ``offence_code``. One official code
        may serve several kit codes; each kit code takes exactly one official code.

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    fdkit.FdkitDataError
        If a column is missing, a value is blank or a kit code is mapped twice.
    """
    return read_table(path, required=MAPPING_COLUMNS, unique=("offence_code",), not_blank=MAPPING_COLUMNS)


def apply_code_mapping(official: pd.DataFrame, mapping: pd.DataFrame | str | Path) -> pd.DataFrame:
    """Key an official CCHI table by the kit's codes through an analyst's mapping.

    Parameters
    ----------
    official : pandas.DataFrame
        The result of :func:`read_cchi_workbook` without ``mapping``.
    mapping : pandas.DataFrame or path
        Columns ``official_code`` and ``offence_code``, or a CSV file of them.

    Returns
    -------
    pandas.DataFrame
        One row per mapped kit code: ``offence_code`` (the kit's), ``weight``, ``title``,
        ``similar_offence`` and ``official_code``, in the mapping's order.

    Raises
    ------
    fdkit.FdkitDataError
        If the mapping names official codes the table does not have, or maps a kit code
        twice.
    """
    if not isinstance(mapping, pd.DataFrame):
        mapping = read_code_mapping(mapping)
    name = "mapping"
    if missing := [column for column in MAPPING_COLUMNS if column not in mapping]:
        raise FdkitDataError([Problem(name, f"missing required columns {', '.join(missing)}")])
    mapping = mapping.loc[:, list(MAPPING_COLUMNS)].astype(str).reset_index(drop=True)
    codes = official["official_code"] if "official_code" in official else official["offence_code"]
    unknown = ~mapping["official_code"].isin(codes).to_numpy()
    template = "official codes not in the CCHI table: {values}"
    problems = _rows_problem(name, "official_code", mapping["official_code"], unknown, template)
    repeated = mapping["offence_code"].duplicated(keep=False).to_numpy()
    template = "kit codes mapped more than once: {values} (each needs exactly one official code)"
    problems += _rows_problem(name, "offence_code", mapping["offence_code"], repeated, template)
    if problems:
        raise FdkitDataError(problems)
    table = official.drop(columns="offence_code").assign(official_code=codes.to_numpy())
    merged = mapping.merge(table, on="official_code", how="left", validate="many_to_one")
    ordered = ["offence_code", "weight", "title", "similar_offence", "official_code"]
    return merged[[column for column in ordered if column in merged]]


# --- scoring -------------------------------------------------------------------------------


def weigh(events: pd.DataFrame, weights: pd.DataFrame, *, missing: str = "error") -> pd.DataFrame:
    """Return a copy of ``events`` with a ``harm`` column: each event's weight in days.

    Parameters
    ----------
    events : pandas.DataFrame
        Any frame with an ``offence_code`` column.
    weights : pandas.DataFrame
        A weight table (``offence_code``, ``weight``).
    missing : {"error", "zero"}
        What to do with codes that have no weight. ``"error"`` (default) raises, listing
        the codes and how many events have each. ``"zero"`` weighs them 0, warns with an
        :class:`UnweightedCodesWarning` and records the counts by code in
        ``result.attrs["unweighted"]``.

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    fdkit.FdkitDataError
        If codes have no weight and ``missing`` is ``"error"``, or the weight table is
        malformed.
    """
    _check_policy(missing)
    harm, unweighted = _harm_of(events["offence_code"], weights, missing)
    result = events.assign(harm=harm)
    result.attrs["unweighted"] = unweighted
    return result


def _check_policy(missing: str) -> None:
    if missing not in MISSING_POLICIES:
        raise ValueError(f"missing must be one of {', '.join(map(repr, MISSING_POLICIES))}, not {missing!r}")


def _harm_of(
    codes: pd.Series, weights: pd.DataFrame, missing: str, rows: np.ndarray | None = None
) -> tuple[np.ndarray, dict[str, int]]:
    """Each code's weight (each distinct code looked up once) and the unweighted counts.

    ``rows`` gives each code's row position in the events frame, for error messages.
    """
    table = _checked_weights(weights)
    positions, distinct = pd.factorize(codes, use_na_sentinel=True)
    found = pd.Index(table["offence_code"]).get_indexer(pd.Index(distinct).astype(str))
    by_code = np.append(table["weight"].to_numpy(), np.nan)[found]  # -1, not found: NaN
    harm = np.append(by_code, np.nan)[positions]  # -1, a missing code: NaN
    unweighted_rows = np.isnan(harm)
    if not unweighted_rows.any():
        return harm, {}
    shown = codes.astype(object).where(codes.notna(), "(blank)").to_numpy()[unweighted_rows]
    counts = pd.Series(shown).value_counts().sort_index().sort_values(ascending=False, kind="stable")
    unweighted = {str(code): int(n) for code, n in counts.items()}
    texts = [f"'{code}' ({n:,} event{'s' if n != 1 else ''})" for code, n in unweighted.items()]
    listing = _listed(texts, len(texts))
    if missing == "error":
        message = (
            f"offence codes with no harm weight: {listing}; add them to the weight table, or "
            "pass missing='zero' to weigh them 0 and have them reported"
        )
        at = np.flatnonzero(unweighted_rows)
        at = at if rows is None else rows[at]
        shown_rows, shown_codes = tuple(at[:SHOWN].tolist()), tuple(list(unweighted)[:SHOWN])
        problem = Problem("events", message, "offence_code", shown_rows, shown_codes, len(at), "row")
        raise FdkitDataError([problem])
    warnings.warn(
        f"{int(unweighted_rows.sum()):,} events have offence codes with no harm weight and were weighed 0: {listing}",
        UnweightedCodesWarning,
        stacklevel=3,
    )
    return np.where(unweighted_rows, 0.0, harm), unweighted


def score(
    events: pd.DataFrame,
    weights: pd.DataFrame,
    *,
    role: str | None = "suspect",
    start=None,
    end=None,
    include_police_initiated: bool = False,
    missing: str = "error",
    people: Iterable | None = None,
) -> pd.Series:
    """Harm per person over a window: the sum of the weights of their crimes.

    A crime counts when its ``offence_date`` is in ``[start, end)`` (the start day
    included, the end day not), the person is recorded against it in ``role``, and it was
    not police-initiated (unless ``include_police_initiated``). A crime counts once per
    person: several rows for one ``(crime_id, person_id)`` in the role add its weight once,
    the heaviest if they carry different codes.

    Parameters
    ----------
    events : pandas.DataFrame
        ``crime_id``, ``person_id``, ``offence_date`` (datetime64), ``role``,
        ``offence_code`` and, unless ``include_police_initiated``, ``police_initiated``.
    weights : pandas.DataFrame
        A weight table (``offence_code``, ``weight``).
    role : {"suspect", "victim"} or None
        Whose harm: as suspect (default) or as victim; None counts either role, each
        crime once.
    start, end : date-like, pandas.Series or None
        The window. A scalar applies to everyone; a Series indexed by ``person_id`` gives
        each person their own window (for example ``randomised_on`` and 12 months later).
        Events of people missing from such a Series are not counted. None leaves that
        side open.
    include_police_initiated : bool
        Count crimes the police detected on their own initiative. False by default, as in
        CCHI practice: such detections measure police activity more than offending.
    missing : {"error", "zero"}
        What to do with counted events whose code has no weight; see :func:`weigh`. Events
        outside the window or role are never weighed, so their codes do not matter.
    people : iterable, optional
        The people to report, in this order, with 0 for those with no counted crime. By
        default the index of a per-person ``start``/``end`` Series (their union, sorted),
        or else every ``person_id`` in ``events``, sorted.

    Returns
    -------
    pandas.Series
        Harm in days, float, named ``harm`` and indexed by ``person_id``. With
        ``missing="zero"``, ``result.attrs["unweighted"]`` holds the counts of unweighted
        events by code.

    Raises
    ------
    fdkit.FdkitDataError
        If columns are missing, a per-person window is missing a date or repeats a person,
        codes lack weights (with ``missing="error"``) or the weight table is malformed.

    Examples
    --------
    >>> from fdkit import harm
    >>> events = pd.DataFrame({
    ...     "crime_id": ["C1", "C1", "C2", "C3"], "person_id": ["A", "A", "A", "B"],
    ...     "offence_date": pd.to_datetime(["2023-01-01", "2023-01-01", "2024-01-01", "2023-05-01"]),
    ...     "role": "suspect", "offence_code": ["8G", "8G", "8G", "34B"],
    ...     "police_initiated": False})
    >>> weights = pd.DataFrame({"offence_code": ["8G", "34B"], "weight": [273, 365]})
    >>> harm.score(events, weights, start="2023-01-01", end="2024-01-01").to_dict()
    {'A': 273.0, 'B': 365.0}
    """
    _check_policy(missing)
    if role not in ("suspect", "victim", None):
        raise ValueError(f"role must be 'suspect', 'victim' or None, not {role!r}")
    _check_event_columns(events, include_police_initiated)
    windows = {side: _window(bound, side) for side, bound in (("start", start), ("end", end))}
    rows = _in_scope(events, role, include_police_initiated, windows)
    counted = events.iloc[rows][["crime_id", "person_id", "offence_code"]]
    harm, unweighted = _harm_of(counted["offence_code"], weights, missing, rows)
    totals = _once_per_crime_totals(counted["crime_id"], counted["person_id"], harm)
    index = _people(people, windows, events)
    result = totals.reindex(index, fill_value=0.0).astype(float).rename("harm")
    result.index.name = "person_id"
    result.attrs["unweighted"] = unweighted
    return result


def _check_event_columns(events: pd.DataFrame, include_police_initiated: bool) -> None:
    required = list(SCORE_COLUMNS) + ([] if include_police_initiated else ["police_initiated"])
    problems = []
    if missing := [column for column in required if column not in events]:
        found = ", ".join(map(str, events.columns)) or "no columns"
        message = f"missing required columns {', '.join(missing)} (found: {found})"
        problems.append(Problem("events", message))
    elif not pd.api.types.is_datetime64_dtype(events["offence_date"].dtype):
        message = f"expected datetime64 dates, found dtype {events['offence_date'].dtype}"
        problems.append(Problem("events", message, "offence_date"))
    if problems:
        raise FdkitDataError(problems)


def _window(bound, side: str):
    """A scalar Timestamp, a per-person Series of datetime64, or None."""
    if bound is None:
        return None
    if isinstance(bound, pd.Series):
        dates = pd.to_datetime(bound)
        name = f"{side} dates"
        problems = []
        if dates.isna().any():
            people = [str(person) for person in dates.index[dates.isna()]]
            message = (
                f"people with no {side} date: {_listed([repr(p) for p in people], len(people))} "
                "(a per-person window needs a date for everyone it lists)"
            )
            problems.append(Problem(name, message, side, values=tuple(people[:SHOWN]), count=len(people)))
        if dates.index.duplicated().any():
            people = [str(person) for person in dates.index[dates.index.duplicated()].unique()]
            message = f"people listed more than once: {_listed([repr(p) for p in people], len(people))}"
            problems.append(Problem(name, message, side))
        if problems:
            raise FdkitDataError(problems)
        return dates
    return pd.Timestamp(bound)


def _in_scope(events: pd.DataFrame, role, include_police_initiated: bool, windows) -> np.ndarray:
    """Row positions of the events that count: role, police-initiated rule and window."""
    keep = np.ones(len(events), dtype=bool)
    if role is not None:
        keep &= events["role"].to_numpy() == role
    if not include_police_initiated:
        keep &= ~events["police_initiated"].to_numpy(dtype=bool)
    rows = np.flatnonzero(keep)
    dates = events["offence_date"].to_numpy(dtype="datetime64[ns]")[rows]
    per_person = [bound for bound in windows.values() if isinstance(bound, pd.Series)]
    if per_person:  # each distinct person is looked up once, not each of millions of rows
        person_codes, distinct = pd.factorize(events["person_id"].iloc[rows])
    ok = np.ones(len(rows), dtype=bool)
    for side, bound in windows.items():
        if bound is None:
            continue
        if isinstance(bound, pd.Series):
            at = pd.Index(bound.index).get_indexer(pd.Index(distinct))[person_codes]
            ok &= at >= 0
            dates_of = np.append(bound.to_numpy(dtype="datetime64[ns]"), np.datetime64("NaT", "ns"))
            limits = dates_of[at]  # -1, no window: NaT, which no date passes
        else:
            limits = np.datetime64(bound.as_unit("ns"))
        with np.errstate(invalid="ignore"):
            ok &= dates >= limits if side == "start" else dates < limits
    return rows[ok]


def _once_per_crime_totals(crime_ids: pd.Series, person_ids: pd.Series, harm: np.ndarray) -> pd.Series:
    """Sum per person of each (crime, person)'s heaviest weight."""
    crime_codes, crimes = pd.factorize(crime_ids, use_na_sentinel=False)
    person_codes, persons = pd.factorize(person_ids, use_na_sentinel=False)
    stride = max(len(crimes), 1)
    key = person_codes.astype(np.int64) * stride + crime_codes
    heaviest = pd.Series(harm).groupby(key, sort=False).max()
    owner = (heaviest.index.to_numpy() // stride).astype(np.intp)
    sums = np.bincount(owner, weights=heaviest.to_numpy(), minlength=len(persons))
    return pd.Series(sums, index=pd.Index(persons, name="person_id"))


def _people(people, windows, events: pd.DataFrame) -> pd.Index:
    if people is not None:
        return pd.Index(list(people), name="person_id")
    per_person = [bound.index for bound in windows.values() if isinstance(bound, pd.Series)]
    if per_person:
        union = per_person[0]
        for other in per_person[1:]:
            union = union.union(other)
        return pd.Index(union.unique(), name="person_id").sort_values()
    return pd.Index(pd.unique(events["person_id"]), name="person_id").sort_values()
