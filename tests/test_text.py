"""Set membership for text columns (fdkit._text.isin) agrees with pandas."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from fdkit._text import isin

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
