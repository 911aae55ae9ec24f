"""Set membership for text columns (fdkit._text.isin) agrees with pandas."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from fdkit._text import isin, may_repeat, positions_in

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
