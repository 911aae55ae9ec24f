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


# --- text from the data is drawn literally (issue 23) ---------------------------------------------

#: A label as an outside user wrote one: mathtext that does not parse, and every character
#: mathtext treats specially.
HOSTILE = r"$\frac{a}$ \ {} % _ from $5 to $6"


def _drawn(figure) -> list[str]:
    """Every text of a drawn figure as matplotlib renders it, asserting that none is mathtext."""
    from matplotlib.text import Text

    figure.canvas.draw()  # ticks and legends make their texts here; bad mathtext raises here
    shown = []
    for text in figure.findobj(Text):
        # What the renderer does with a text: (the string it draws, whether it is mathtext).
        string, math = text._preprocess_math(text.get_text())
        assert math is False, text.get_text()
        shown.append(string)
    return shown


def test_literal_makes_mathtext_plain_and_leaves_plain_text_alone():
    from matplotlib.text import Text

    for text in (HOSTILE, "$x$", "a\\$b", "$", "plain 11-17"):
        assert Text(text=plotting.literal(text))._preprocess_math(plotting.literal(text)) == (text, False)
    assert plotting.literal("x" * 1000).endswith("(1,000 characters)")
    assert plotting.literal("x" * 1000, limit=None) == "x" * 1000


def test_a_consort_reason_with_dollars_is_drawn_as_written():
    from fdkit.consort import ConsortCounts, plot_consort

    counts = ConsortCounts(
        assessed=10, exclusions=((HOSTILE, 4), ("a" * 300, 1)), randomised=5, treatment=2, control=3,
        engaged=None, analysed_treatment=2, analysed_control=3,
    )  # fmt: skip
    shown = "\n".join(_drawn(plot_consort(counts))).replace("\n  ", " ")  # reasons are wrapped
    assert HOSTILE in shown
    assert "(300 characters)" in shown  # a long reason is shortened in the box; the table has it whole


def test_forest_plot_subgroups_and_notes_are_drawn_as_written():
    from fdkit.report import plot_forest

    rows = [
        {"method": "ratio_of_means", "outcome": "harm_suspect", "subgroup": subgroup, "pct_reduction": pct,
         "ci_low": low, "ci_high": high, "p_value": 0.5, "note": note}
        for subgroup, pct, low, high, note in (
            ("all", 20.0, -10.0, 40.0, ""),
            (HOSTILE, float("nan"), float("nan"), float("nan"), "only $1 {x}_y"),
        )
    ]  # fmt: skip
    shown = _drawn(plot_forest(pd.DataFrame(rows)).figure)
    assert HOSTILE in shown
    assert any("only $1 {x}_y" in text for text in shown)


def test_balance_plot_strata_are_drawn_as_written():
    from fdkit.balance import plot_balance

    table = pd.DataFrame(
        {
            "subgroup": ["all", "all", HOSTILE, HOSTILE],
            "characteristic": ["age (years)", "$y$", "age (years)", "$y$"],
            "smd": [0.05, -0.2, 0.3, 0.0],
        }
    )
    shown = _drawn(plot_balance(table).figure)
    assert HOSTILE in shown and "$y$" in shown


def test_teaching_figures_draw_their_labels_as_written():
    table = pd.DataFrame({HOSTILE: [3.0, 2.0], "$after$": [1.0, 1.5]}, index=["treatment", "control"])
    shown = _drawn(plotting.before_and_after(table, ylabel="$harm$", title=HOSTILE).figure)
    assert {HOSTILE, "$after$", "$harm$"} <= set(shown)
    shuffles = ShuffledDifferences(observed=1.0, shuffled=np.linspace(-2, 2, 11), p_value=0.5)
    assert "$\\Delta$ %" in _drawn(plotting.shuffle_histogram(shuffles, xlabel="$\\Delta$ %").figure)
