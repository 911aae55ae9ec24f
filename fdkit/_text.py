"""Text helpers shared across the kit: values as messages echo them, and fast set membership.

Every message that quotes a value from the data or the command line goes through
:func:`shorten` (or :func:`quoted`), so a million-character ID comes back as a readable
line with its length, not as a megabyte of error.

pandas' ``Series.isin`` on Arrow-backed text first turns every allowed value into a Python
object, one at a time; with tens of thousands of allowed values (the people with an index
crime, say) that loop costs several times the membership test itself. :func:`isin` hands
the whole set to pyarrow instead.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "ECHOED",
    "PATH_ECHOED",
    "isin",
    "keys_that_may_vary",
    "may_repeat",
    "positions_in",
    "quoted",
    "shorten",
    "starts_with_any",
]

#: The longest value a message echoes whole; a longer one is cut (see :func:`shorten`).
ECHOED = 60
#: The same for a path the user gave: paths are longer than values but still bounded.
PATH_ECHOED = 200


def shorten(value: object, limit: int = ECHOED) -> str:
    """``value`` as text for a message: whole if short, else its two ends and its length.

    The beginning and the end are kept (an ID's prefix, a path's file name), the middle is
    replaced by ``...``, and the full length follows, so the reader can still tell which
    value it was and how long it really is.

    Parameters
    ----------
    value : object
        Anything; it is shown as ``str(value)``.
    limit : int
        The longest text shown whole (:data:`ECHOED`, 60 characters, by default).

    Examples
    --------
    >>> shorten("P0012")
    'P0012'
    >>> shorten("A" * 30 + "B" * 1_000_000 + "C" * 30)
    'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAABBBBBBBBBB...CCCCCCCCCCCCCCCCC (1,000,060 characters)'
    """
    text = str(value)
    return text if len(text) <= limit else f"{_ends(text, limit)} ({len(text):,} characters)"


def _ends(text: str, limit: int) -> str:
    """The first two thirds and the last third of ``limit`` characters of ``text``, joined by ``...``."""
    head = 2 * limit // 3
    tail = limit - head - 3
    return f"{text[:head]}...{text[len(text) - tail :] if tail > 0 else ''}"


def quoted(value: object, limit: int = ECHOED) -> str:
    """A value as a message quotes it: ``'value'`` (shortened as :func:`shorten` does), or
    ``(blank)`` if it is empty or missing.

    Examples
    --------
    >>> quoted("8G"), quoted(""), quoted(None)
    ("'8G'", '(blank)', '(blank)')
    >>> quoted("9" * 100)
    "'9999999999999999999999999999999999999999...99999999999999999' (100 characters)"
    """
    if value is None or value == "" or (not isinstance(value, str) and bool(pd.isna(value))):
        return "(blank)"
    text = str(value)
    return f"'{text}'" if len(text) <= limit else f"'{_ends(text, limit)}' ({len(text):,} characters)"


def isin(values: pd.Series, allowed: Iterable) -> np.ndarray:
    """Where ``values`` are in ``allowed``, as a numpy bool array (missing values never are).

    Parameters
    ----------
    values : pandas.Series
        Usually a text column.
    allowed : iterable
        The set to test against.

    Returns
    -------
    numpy.ndarray of bool
        The same as ``values.isin(allowed) & values.notna()``.

    Examples
    --------
    >>> isin(pd.Series(["P1", "P2", None], dtype="str"), ["P2", "P9"]).tolist()
    [False, True, False]
    """
    dtype = values.dtype
    if isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow":
        listed = (
            allowed if isinstance(allowed, (pd.Series, pd.Index, pd.api.extensions.ExtensionArray)) else list(allowed)
        )
        value_set = pa.array(listed, from_pandas=True)
        if pa.types.is_string(value_set.type) or pa.types.is_large_string(value_set.type) or not len(value_set):
            column = pa.array(values)
            found = pc.is_in(column, value_set=value_set.cast(column.type), skip_nulls=True)
            return found.to_numpy(zero_copy_only=False)
    return (values.isin(list(allowed)) & values.notna()).to_numpy(dtype=bool)


def positions_in(values: pd.Series, reference: pd.Series) -> np.ndarray:
    """For each value, the position of its first occurrence in ``reference``, or -1 if none.

    Missing values are never found.

    Examples
    --------
    >>> positions_in(pd.Series(["b", "z", "a"], dtype="str"), pd.Series(["a", "b", "b"], dtype="str")).tolist()
    [1, -1, 0]
    """
    if _arrow_text(values) and _arrow_text(reference):
        found = _positions_by_fingerprint(values, reference)
        if found is not None:
            return found
        column = pa.array(values)
        value_set = pa.array(reference).cast(column.type)
        found = pc.index_in(column, value_set=value_set, skip_nulls=True)
        return pc.fill_null(found, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    codes, distinct = pd.factorize(values)
    first = np.flatnonzero(~reference.duplicated().to_numpy())
    at = pd.Index(reference.iloc[first]).get_indexer(distinct)
    positions = np.where(at >= 0, first[at], -1)
    return np.where(codes >= 0, positions[codes], -1)


def starts_with_any(values: pd.Series, characters: Iterable[str]) -> np.ndarray | None:
    """Where each text value begins with one of ``characters``, or None if ``values`` is not Arrow text.

    Missing values never do. One pass in Arrow, without a Python object per value.

    Examples
    --------
    >>> starts_with_any(pd.Series(["=1", "a", None, "@b"], dtype="str"), "=@").tolist()
    [True, False, False, True]
    """
    if not _arrow_text(values):
        return None
    first = pc.utf8_slice_codeunits(pa.array(values), 0, 1)
    found = pc.is_in(first, value_set=pa.array(list(characters), type=first.type))
    return np.asarray(pc.fill_null(found, False).to_numpy(zero_copy_only=False), dtype=bool)


def keys_that_may_vary(keys: pd.Series, columns: Iterable[np.ndarray]) -> np.ndarray | None:
    """Rows whose key some other row shares with a different value in one of ``columns``.

    A quick superset of the rows an exact check would flag: rows are ordered by a 64-bit
    fingerprint of the key and neighbours compared, so a key's rows are all kept when any two
    of them differ (or when different keys share a fingerprint, a rare accident that only
    costs the exact check a little more work). Missing values (NaN) count as different.

    Parameters
    ----------
    keys : pandas.Series
        Arrow text.
    columns : iterable of numpy.ndarray
        Numeric arrays as long as ``keys``.

    Returns
    -------
    numpy.ndarray of bool, or None
        None when the keys cannot be fingerprinted (not Arrow text, missing or long values):
        then every row must be checked.

    Examples
    --------
    >>> keys = pd.Series(["a", "b", "a", "c", "b"], dtype="str")
    >>> keys_that_may_vary(keys, [np.array([1.0, 2.0, 3.0, 4.0, 2.0])]).tolist()
    [True, False, True, False, False]
    """
    prints = _fingerprints(keys) if _arrow_text(keys) else None
    if prints is None:
        return None
    order = np.argsort(prints, kind="stable")
    ordered = prints[order]
    differs = np.zeros(len(ordered) - 1 if len(ordered) else 0, dtype=bool)
    for values in columns:
        values = values[order]
        with np.errstate(invalid="ignore"):
            differs |= ~(values[1:] == values[:-1])
    varying = np.unique(ordered[1:][differs & (ordered[1:] == ordered[:-1])])
    return np.isin(prints, varying)


def _positions_by_fingerprint(values: pd.Series, reference: pd.Series) -> np.ndarray | None:
    """:func:`positions_in` by fingerprints, or None if two reference values share one.

    A hash table of millions of 64-bit numbers is quicker to build and probe than one of
    strings, and the repeat checks have usually made the fingerprints already. A match is
    confirmed by comparing the strings, so a value whose fingerprint collides with another
    value's is never "found".
    """
    value_prints, reference_prints = _fingerprints(values), _fingerprints(reference)
    if value_prints is None or reference_prints is None:
        return None
    table = pd.Index(reference_prints)
    if not table.is_unique:  # a repeated reference value (or a collision): hash the strings instead
        return None
    found = table.get_indexer(value_prints)
    arrow_values, arrow_reference = values.array.__arrow_array__(), reference.array.__arrow_array__()
    matched = arrow_reference.take(pa.array(found, mask=found < 0))  # null where not found
    same = pc.fill_null(pc.equal(arrow_values, matched), False)
    return np.where(same.to_numpy(zero_copy_only=False), found, -1).astype(np.int64)


def may_repeat(frame: pd.DataFrame, key: list[str]) -> bool:
    """False only if no two rows of ``frame`` share all of the ``key`` columns' values.

    A quick test that lets the exact (and slower) search for repeats be skipped when there
    are none, as in almost every file. Each text value is reduced to a 64-bit fingerprint;
    rows with different values can share a fingerprint only by a rare accident, which makes
    this say True (look closer), never False when there are repeats.
    """
    if not all(_arrow_text(frame[column]) for column in key):
        return True
    combined = np.zeros(len(frame), dtype=np.uint64)
    for column in key:
        prints = _fingerprints(frame[column])
        if prints is None:
            return True
        combined = (combined ^ prints) * _FNV_PRIME
    ordered = np.sort(combined)
    return bool((ordered[1:] == ordered[:-1]).any())


_FNV_OFFSET, _FNV_PRIME = np.uint64(0xCBF29CE484222325), np.uint64(0x100000001B3)
#: Masks keeping the first k bytes of a little-endian 64-bit word, for k = 0..8.
_FIRST_BYTES = np.array([(1 << (8 * k)) - 1 for k in range(9)], dtype=np.uint64)


def _fingerprints(values: pd.Series, widest: int = 64) -> np.ndarray | None:
    """A 64-bit FNV-style hash of each text value (None if there are missing or long values).

    The UTF-8 bytes are read straight from the Arrow buffers, eight at a time. Loading checks
    ask for the same column's fingerprints several times (repeats, membership, conflicts), so
    they are kept while the column's Arrow data lives.
    """
    source = values.array.__arrow_array__()
    known = _KNOWN_PRINTS.get(id(source))
    if known is not None and known[0]() is source:
        return known[1]
    prints = _compute_fingerprints(source, widest)
    key = id(source)

    def forget(_: weakref.ref) -> None:
        _KNOWN_PRINTS.pop(key, None)

    _KNOWN_PRINTS[key] = (weakref.ref(source, forget), prints)
    return prints


#: Fingerprints by the id of the Arrow data they were made from (immutable), with a weak
#: reference to it: an entry goes when its data goes.
_KNOWN_PRINTS: dict[int, tuple[weakref.ref, np.ndarray | None]] = {}


def _compute_fingerprints(array: pa.ChunkedArray | pa.Array, widest: int) -> np.ndarray | None:
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if array.null_count:
        return None
    array = array.cast(pa.large_string())
    _, offsets, data = array.buffers()
    bounds = np.frombuffer(offsets, dtype=np.int64)[array.offset : array.offset + len(array) + 1]
    starts, lengths = bounds[:-1], np.diff(bounds)
    longest = int(lengths.max()) if len(lengths) else 0
    if longest > widest:
        return None
    size = 0 if data is None else data.size
    padded = np.zeros(size + 8, dtype=np.uint8)  # so that the last word read stays inside
    if size:
        padded[:size] = np.frombuffer(data, dtype=np.uint8)
    # words[i] is the 8 bytes from byte i on: an overlapping view, one byte apart.
    words = np.ndarray(shape=(size + 1,), dtype="<u8", buffer=padded, strides=(1,))
    prints = np.full(len(array), _FNV_OFFSET) ^ lengths.astype(np.uint64)
    for first in range(0, longest, 8):
        kept = _FIRST_BYTES[np.clip(lengths - first, 0, 8)]
        word = words[np.minimum(starts + first, size)] & kept
        # Only words inside the value count, so a value's fingerprint does not depend on the
        # longest value in its column: values of two columns can be compared by fingerprint.
        prints = np.where(lengths > first, (prints ^ word) * _FNV_PRIME, prints)
    return prints


def _arrow_text(values: pd.Series) -> bool:
    dtype = values.dtype
    return isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow"
