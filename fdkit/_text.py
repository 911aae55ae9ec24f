"""Fast set membership for text columns, shared by loading and screening.

pandas' ``Series.isin`` on Arrow-backed text first turns every allowed value into a Python
object, one at a time; with tens of thousands of allowed values (the people with an index
crime, say) that loop costs several times the membership test itself. :func:`isin` hands
the whole set to pyarrow instead.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["isin"]


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
