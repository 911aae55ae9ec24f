"""fdkit's statistics on the shipped trial agree with R's (coin, sandwich, base R).

Runs the quick, non-simulation comparisons of ``tools/r_check/run.py``: the randomisation
p-values, one-sided in each direction and equal-tailed (the difference statistic against coin's
stratified test; the primary analysis's statistic, the studentised one and the robust Poisson
score test against the same tests written out in R), each within three combined Monte Carlo
SEs when drawn independently, and exactly equal when R is handed fdkit's own re-draws, at no
effect and at each edge of the interval that inverts each test; Welch's p and Fieller's
interval, the robust Poisson estimate and sandwich SE, and the Mann-Whitney p; and the test that
every group shares one ratio of means (``analysis.common_ratio_test``: across the age bands by
``interaction_test(method="profile")`` and across a simulated network's sites by
``pooling.heterogeneity_test``) against ``common_ratio.R``, exactly on fdkit's re-draws and within
0.05 on R's own. The simulation
check (each direction's rejections under no effect, coin and fdkit on the same trials) takes
minutes and is left to ``.venv/bin/python tools/r_check/run.py``.

R is not a dependency of fdkit and CI does not install it (it would add minutes to every run),
so the comparison test is SKIPPED, with the reason, unless ``Rscript`` and the R packages coin
and sandwich are present (Debian: ``apt-get install r-base-core r-cran-coin r-cran-sandwich``).
It documents the check and is meant to be run locally. See ``docs/checked-against-r.md``.
The tests of the verdicts themselves need no R and always run.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from fdkit import analysis

RUN = Path(__file__).resolve().parent.parent / "tools" / "r_check" / "run.py"


@pytest.fixture(scope="module")
def driver():
    spec = importlib.util.spec_from_file_location("fdkit_r_check", RUN)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def r_check(driver):
    if reason := driver.missing_r():
        pytest.skip(f"R cross-check not run: {reason}")
    return driver


def test_monte_carlo_verdict_flags_a_gap_beyond_three_standard_errors(driver):
    """The judge can fail: knife's score p (0.093) is not coin's difference p (0.144)."""
    assert driver._monte_carlo("knife", "p", 0.0933, 0.0030, 0.0946, 0.0030).agree
    assert not driver._monte_carlo("knife", "p", 0.0933, 0.0030, 0.1437, 0.0036).agree


def test_shared_redraws_must_give_the_same_count(driver):
    """On shared re-draws one re-draw counted differently (1 / 2,001) is a disagreement."""
    assert driver._close("o", "p", 0.0369815, 0.0369815 + 1e-16, driver.EXACT).agree
    assert not driver._close("o", "p", 0.0369815, 0.0369815 + 1 / 2001, driver.EXACT).agree


def test_edge_verdict_needs_the_same_p_and_r_on_the_right_side(driver):
    assert driver._edge("o", "edge", 0.0509745, 0.0509745, inside=True).agree
    assert driver._edge("o", "beyond", 0.0489755, 0.0489755, inside=False).agree
    assert not driver._edge("o", "edge", 0.0489755, 0.0489755, inside=True).agree  # R rejects the edge
    assert not driver._edge("o", "beyond", 0.0509745, 0.0509745, inside=False).agree  # R keeps the point beyond
    assert not driver._edge("o", "edge", 0.0529735, 0.0509745, inside=True).agree  # same side, another p


def test_grid_bound_must_lie_within_one_step_inside_the_exact_bound(driver):
    assert driver._grid_bound("o", "low", 37.3, 37.2999, inward=+1).agree
    assert not driver._grid_bound("o", "low", 37.2, 37.2999, inward=+1).agree  # outside R's interval
    assert not driver._grid_bound("o", "low", 37.5, 37.2999, inward=+1).agree  # more than a step inside
    assert driver._grid_bound("o", "high", 90.6, 90.6786, inward=-1).agree
    assert not driver._grid_bound("o", "high", 90.7, 90.6786, inward=-1).agree
    assert driver._grid_bound("o", "high", 100.0, float("nan"), inward=-1).agree  # both unbounded


def test_simulation_verdicts_can_fail(driver):
    """A tail rejecting 5% of 2,000 null trials is off; so is a one-sided lean against coin."""
    trials = np.arange(2000)
    assert driver._rate("o", "rate", trials < 50, in_r=False).agree  # 2.5%
    assert not driver._rate("o", "rate", trials < 100, in_r=False).agree  # 5%
    assert not driver._rate("o", "rate", trials < 10, in_r=True).agree  # 0.5%: far too conservative
    coin = trials < 50
    assert driver._same_verdicts("o", "same", (trials >= 2) & (trials < 52), coin, judged=True).agree
    leaning = driver._same_verdicts("o", "same", trials < 80, coin, judged=True)  # 30 more, none fewer
    assert leaning.agree is False
    assert driver._same_verdicts("o", "same", trials < 80, coin, judged=False).agree is None


@pytest.mark.slow
def test_fdkit_agrees_with_r_on_the_shipped_trial(r_check):
    comparisons = r_check.quick_comparisons(r_check.shipped_frame(), permutations=5000, resamples=5000)
    judged = [c for c in comparisons if c.agree is not None]
    # A comparison that silently vanished would let this test pass for the wrong reason: every
    # outcome must have each test's three p-values on the shared re-draws, coin's three, and at
    # least one finite edge (the edge and the point beyond it) of every interval re-tested in R.
    primary = r_check._primary_statistic()
    names = [r_check._label(s, primary) for s in analysis.STATISTICS] + ["Poisson score"]
    for outcome in r_check.OUTCOMES:
        quantities = {c.quantity for c in judged if c.outcome == outcome}
        for name in names:
            for p in ("one-sided p, reduction", "one-sided p, increase", "equal-tailed p"):
                assert f"same re-draws: {name}, {p}" in quantities
            assert sum(q.startswith(f"{name} interval edge") for q in quantities) >= 2
        for p in ("one-sided p, reduction", "one-sided p, increase", "equal-tailed p"):
            assert f"difference vs coin: {p}" in quantities
        assert len(quantities) >= 26 + 2 * len(names)  # six drawn apart, twelve shared, eight exact, the edges
    disagreements = [c for c in judged if not c.agree]
    assert not disagreements, "\n".join(
        f"{c.outcome} {c.quantity}: fdkit {c.fdkit!r}, R {c.r!r} ({c.difference}; {c.tolerance})" for c in disagreements
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("written", "mistaken", "caught"),
    [
        # The score statistic's projection taken at no effect whatever theta is.
        ("a <- theta * n_t / (theta * n_t + n_c)", "a <- n_t / (n_t + n_c)", "score"),
        # The Poisson score test re-projecting each candidate away from no effect.
        (
            "signed_ratio(sum(c * residual), sqrt(sum((c - zhat)^2 * residual^2)))",
            "signed_ratio(sum(c * residual), sqrt(sum((c - as.vector(hat %*% c))^2 * residual^2)))",
            "Poisson score",
        ),
    ],
)
def test_the_interval_edges_catch_a_statistic_written_wrongly(
    r_check, monkeypatch, tmp_path, written, mistaken, caught
):
    """The edge re-tests have power: R's script with one plausible slip disagrees with fdkit there."""
    source = (r_check.HERE / "crosscheck.R").read_text()
    assert written in source
    (tmp_path / "crosscheck.R").write_text(source.replace(written, mistaken))
    monkeypatch.setattr(r_check, "HERE", tmp_path)
    comparisons = r_check.quick_comparisons(
        r_check.shipped_frame(), outcomes=("harm_suspect",), permutations=500, resamples=500
    )
    wrong = {c.quantity for c in comparisons if c.agree is False}
    assert wrong, "a mistaken R statistic went unnoticed"
    assert all(q.startswith(caught) and "interval edge" in q for q in wrong), wrong


@pytest.fixture(scope="module")
def network(r_check):
    return r_check.site_network()


@pytest.mark.slow
def test_common_ratio_test_agrees_with_r(r_check, network):
    comparisons = r_check.common_ratio_comparisons(r_check.shipped_frame(), network, permutations=5000, resamples=5000)
    judged = [c for c in comparisons if c.agree is not None]
    # Every case must be there, each with all its figures: a row that vanished would pass silently.
    expected = {
        **{outcome: ("age bands", ("11-17", "18-25")) for outcome in r_check.OUTCOMES},
        "3-site network": ("sites", ("site1", "site2", "site3")),
    }
    for case, (across, groups) in expected.items():
        quantities = {c.quantity for c in judged if c.outcome == case}
        label = f"common ratio across {across}, same 2,000 re-draws"
        for figure in ("ratio at the minimum", "p"):
            assert f"{label}: {figure}" in quantities
        assert any(q.startswith(f"{label}: Q (chi2, df {len(groups) - 1})") for q in quantities)
        for group in groups:
            assert f"{label}: stratified ratio, {group}" in quantities
            assert f"{label}: normal score at the minimum, {group}" in quantities
    assert sum("own re-draws" in c.quantity for c in judged) == 1
    disagreements = [c for c in judged if not c.agree]
    assert not disagreements, "\n".join(
        f"{c.outcome} {c.quantity}: fdkit {c.fdkit!r}, R {c.r!r} ({c.difference}; {c.tolerance})" for c in disagreements
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("written", "mistaken"),
    [
        # The projection taken at no effect whatever the common ratio is.
        ("a <- theta * n_tb / (theta * n_tb + n_cb)", "a <- n_tb / (n_tb + n_cb)"),
        # The observed assignment counted as a whole re-draw below itself, not half.
        ("qnorm((below + 0.5) / length(values))", "qnorm((below + 1) / length(values))"),
    ],
)
def test_the_common_ratio_check_catches_a_slip(r_check, network, monkeypatch, tmp_path, written, mistaken):
    """The same-re-draws rows have power: R's script with one plausible slip disagrees with fdkit there."""
    source = (r_check.HERE / "common_ratio.R").read_text()
    assert written in source
    (tmp_path / "common_ratio.R").write_text(source.replace(written, mistaken))
    monkeypatch.setattr(r_check, "HERE", tmp_path)
    comparisons = r_check.common_ratio_comparisons(
        r_check.shipped_frame(), network, outcomes=("harm_suspect",), given_draws=500, permutations=500, resamples=500
    )
    # On the same re-draws only the test's own figures may move (the groups' ratios do not use it);
    # the row on independent re-draws (500 each side) is left out: Monte Carlo error may move it.
    wrong = {(c.outcome, c.quantity) for c in comparisons if c.agree is False and "own re-draws" not in c.quantity}
    assert {case for case, _ in wrong} >= {"harm_suspect", "3-site network"}, wrong
    assert all("same 500 re-draws" in q and "stratified ratio" not in q for _, q in wrong), wrong
