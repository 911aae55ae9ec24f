"""The teaching figures of notebook 06 show what the issue asked for (issue 15)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from fdkit import plotting  # noqa: E402
from fdkit.analysis import ShuffledDifferences  # noqa: E402


def test_before_and_after_has_a_tick_for_each_year_and_starts_at_zero():
    table = pd.DataFrame(
        {"year before (average)": [778.6, 796.8], "year after": [132.4, 504.6], "fall": [83.0, 36.7]},
        index=["treatment", "control"],
    )
    ax = plotting.before_and_after(table, ylabel="harm", title="t")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["year before (average)", "year after"]
    assert ax.get_ylim()[0] == 0 and ax.get_ylim()[1] >= 796.8
    lines = {line.get_label(): line.get_ydata() for line in ax.get_lines()}
    np.testing.assert_allclose(lines["treatment"], [778.6, 132.4])  # the "fall" column is not drawn


def test_shuffle_histogram_marks_the_observed_difference_on_both_sides():
    shuffles = ShuffledDifferences(observed=-3.0, shuffled=np.linspace(-5, 5, 101), p_value=0.5)
    ax = plotting.shuffle_histogram(shuffles, xlabel="difference")
    marks = sorted(line.get_xdata()[0] for line in ax.get_lines())
    assert marks == pytest.approx([-3.0, 3.0])
    assert sum(patch.get_height() for patch in ax.patches) == 101
