"""Calendar arithmetic shared by the windows of eligibility, outcomes and synthesis."""

from __future__ import annotations

import pandas as pd


def add_months(dates, months: int):
    """Shift dates by whole calendar months, clipping to the month's last day.

    ``2023-03-31`` minus one month is ``2023-02-28``; this is the calendar meaning of
    "12 months before" that police analysts use, and the same rule everywhere in the kit.

    Parameters
    ----------
    dates : datetime-like scalar, pandas.Series or pandas.DatetimeIndex
    months : int
        Months to add (negative to go back).

    Returns
    -------
    Same kind as ``dates``.

    Examples
    --------
    >>> add_months(pd.Timestamp("2024-02-29"), -12)
    Timestamp('2023-02-28 00:00:00')
    """
    return dates + pd.DateOffset(months=months)
