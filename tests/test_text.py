"""The fast text helpers of fdkit._text agree with plain pandas and Python answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.compute as pc
from hypothesis import given
from hypothesis import strategies as st

from fdkit._text import isin, keys_that_may_vary, may_repeat, positions_in, quoted, shorten, starts_with_any

words = st.sampled_from(["P1", "P2", "P10", "", " P1", "é"])


@given(
    st.lists(st.one_of(words, st.none()), max_size=30),
    st.lists(words, max_size=10),
    st.sampled_from(["list", "series", "array", "unique"]),
)
def test_isin_agrees_with_pandas_and_never_matches_missing(values, allowed, kind):
    column = pd.Series(values, dtype="str")
    given_as = {
        "list": allowed,
        "series": pd.Series(allowed, dtype="str"),
        "array": np.array(allowed, dtype=object),
        "unique": pd.Series(allowed, dtype="str").unique(),
    }[kind]
    expected = (column.isin(allowed) & column.notna()).to_numpy()
    assert isin(column, given_as).tolist() == expected.tolist()


def test_isin_falls_back_to_pandas_for_other_columns():
    assert isin(pd.Series([1, 2, 3]), [2, 3]).tolist() == [False, True, True]
    assert isin(pd.Series(["a", None], dtype=object), ["a"]).tolist() == [True, False]


@given(st.lists(st.one_of(words, st.none()), max_size=30), st.lists(words, max_size=10))
def test_positions_in_finds_the_first_occurrence(values, reference):
    found = positions_in(pd.Series(values, dtype="str"), pd.Series(reference, dtype="str"))
    expected = [reference.index(v) if v is not None and v in reference else -1 for v in values]
    assert found.tolist() == expected


@given(st.lists(st.tuples(words, st.sampled_from(["a", "b", "ab", ""])), max_size=30))
def test_may_repeat_is_false_only_without_repeats(rows):
    frame = (
        pd.DataFrame(rows, columns=["x", "y"]).astype("str") if rows else pd.DataFrame({"x": [], "y": []}, dtype="str")
    )
    repeated = len(set(rows)) < len(rows)
    # A fingerprint collision could only make it say True wrongly; with these few short values it never does.
    assert may_repeat(frame, ["x", "y"]) == repeated


def test_fingerprints_tell_near_identical_ids_apart():
    ids = pd.Series([f"C{i:08d}" for i in range(200_000)] + ["C00000001 ", "C0000001"], dtype="str")
    assert not may_repeat(ids.to_frame("crime_id"), ["crime_id"])
    assert may_repeat(pd.concat([ids, ids.iloc[[5]]], ignore_index=True).to_frame("crime_id"), ["crime_id"])


@given(
    st.lists(st.one_of(st.sampled_from(["=1", "+44", "-", "@x", "\tx", "a=", "", "é", "P1"]), st.none()), max_size=30)
)
def test_starts_with_any_matches_the_first_character(values):
    found = starts_with_any(pd.Series(values, dtype="str"), "=+-@\t")
    assert found.tolist() == [v is not None and v[:1] in set("=+-@\t") and v != "" for v in values]
    assert starts_with_any(pd.Series(values, dtype=object), "=") is None  # not Arrow text: the caller decides


@given(st.lists(st.tuples(st.sampled_from(["c1", "c2", "c10", "é"]), st.sampled_from([1.0, 2.0, np.nan])), max_size=30))
def test_keys_that_may_vary_flags_the_rows_of_keys_whose_values_differ(rows):
    keys = pd.Series([key for key, _ in rows], dtype="str")
    kept = keys_that_may_vary(keys, [np.array([value for _, value in rows], dtype=float)])
    values_of = {key: [value for k, value in rows if k == key] for key, _ in rows}

    def varies(values):  # a missing value counts as different from every value, itself included
        return len(values) > 1 and (any(np.isnan(values)) or len(set(values)) > 1)

    # With these few short keys no fingerprints collide, so the quick superset is exact.
    assert kept.tolist() == [varies(values_of[key]) for key, _ in rows]


@given(st.lists(words.filter(bool), max_size=30), st.lists(words.filter(bool), unique=True, max_size=6))
def test_positions_in_by_fingerprint_agrees_when_every_value_is_present_and_unique(values, reference):
    found = positions_in(pd.Series(values, dtype="str"), pd.Series(reference, dtype="str"))
    assert found.tolist() == [reference.index(v) if v in reference else -1 for v in values]


def test_positions_in_confirms_a_fingerprint_match_by_comparing_the_strings(monkeypatch):
    from fdkit import _text

    # Fingerprints by length alone: "bb" collides with "aa" but must not be found.
    monkeypatch.setattr(_text, "_compute_fingerprints", lambda array, widest: pc.utf8_length(array).to_numpy())
    reference = pd.Series(["aa", "b", "cccc"], dtype="str")
    assert positions_in(pd.Series(["aa", "bb", "cccc", "z"], dtype="str"), reference).tolist() == [0, -1, 2, -1]


def test_fingerprints_follow_a_column_that_is_changed_in_place():
    frame = pd.DataFrame({"x": pd.Series(["a", "b", "c"], dtype="str")})
    assert not may_repeat(frame, ["x"])
    frame.loc[1, "x"] = "a"
    assert may_repeat(frame, ["x"])


def test_a_value_has_one_fingerprint_whatever_its_column_holds():
    from fdkit import _text

    short = _text._fingerprints(pd.Series(["", "P1"], dtype="str"))
    long = _text._fingerprints(pd.Series(["P1", "", "a much longer identifier than eight bytes"], dtype="str"))
    assert short.tolist() == [long[1], long[0]]


@given(st.text(max_size=300), st.integers(min_value=10, max_value=200))
def test_shorten_keeps_short_values_whole_and_cuts_long_ones_to_both_ends_and_the_length(text, limit):
    shown = shorten(text, limit)
    if len(text) <= limit:
        assert shown == text
    else:
        head = 2 * limit // 3
        tail = limit - head - 3
        assert shown == f"{text[:head]}...{text[len(text) - tail :]} ({len(text):,} characters)"
        assert len(shown) <= limit + len(f" ({len(text):,} characters)")


def test_a_million_character_value_is_echoed_in_under_a_hundred():
    value = "P" + "7" * 999_999
    assert len(quoted(value)) < 100
    assert quoted(value).startswith("'P777") and quoted(value).endswith("777' (1,000,000 characters)")
    assert quoted("") == quoted(None) == quoted(float("nan")) == "(blank)"
