"""Calibration by simulation on the trial's design (20+44 aged 11-17, 25+59 aged 18-25).

Simulated trials are drawn from a superpopulation of eligible episodes screened in several
synthetic towns (fdkit.design). A true effect prevents (or, for an increase, repeats) each
treated person's crimes at random, so it is not the same multiple of every person's outcome.

Users act on the direction of a result ("a significant reduction"), so each tail is checked on
its own: under no effect a 5% equal-tailed test should call about 2.5% of trials a significant
reduction and 2.5% a significant increase (band 1.5-3.5%). A 95% interval should contain the
truth 93-97% of the time at every effect the kit meets: no effect, 40%, 54% and 70% reductions
and a 25% increase. Seeds are fixed, so these tests are deterministic. Every figure is printed
with its Monte Carlo standard error (run with ``-s`` to see them); at 2,000 trials a tail's SE is
about 0.35 points and a coverage's about 0.5.

Coverage of an interval made by inverting a test is exactly one minus that test's rejection
rate at the true value, so it is measured that way (no interval search per trial).
"""

from __future__ import annotations

import numpy as np
import pytest
from builders import share

from fdkit import analysis, design, synth

pytestmark = pytest.mark.slow

TRIAL = design.MILTON_KEYNES
SIMS = 2000
REJECTION_BAND, TAIL_BAND, COVERAGE_BAND = (0.035, 0.065), (0.015, 0.035), (0.93, 0.97)
ENGAGEMENT = {"11-17": 0.7, "18-25": 0.6}
OUTCOMES = ("harm_suspect", "knife_suspect", "violence_suspect")
EFFECTS = design.CALIBRATION_REDUCTIONS  # 0, 40, 54 and 70% reductions and a 25% increase


def effect(reduction):
    ratio = 1 - reduction / 100
    return None if reduction == 0 else synth.Effects(suspect={"*": ratio}, victim={"*": ratio})


@pytest.fixture(scope="module")
def population():
    return design.build_superpopulation()


@pytest.fixture(scope="module")
def trials(population):
    made = {}

    def get(reduction, engagement=None):
        key = (reduction, engagement is not None)
        if key not in made:
            made[key] = design.simulate_trials(
                population,
                TRIAL,
                sims=SIMS,
                seed=int(11 + abs(reduction) + 7 * key[1] + 1000 * (reduction < 0)),
                effects=effect(reduction),
                engagement=engagement,
            )
        return made[key]

    return get


def _test(trials, outcome, theta=1.0, statistic="score", redraws=1000):
    """The primary randomisation test of ``theta`` in every simulated trial (the same re-draws for all)."""
    assignments = trials.redraws(redraws, np.random.default_rng(3))
    return analysis.randomisation_test(
        trials.follow_up[outcome], trials.treated, trials.strata, assignments, theta=theta, statistic=statistic
    )


def _imputed_test(trials, outcome, theta, scaled):
    """Imbens-Rosenbaum (CACE): the people in ``scaled`` have their outcomes divided by theta, no effect tested."""
    y = trials.follow_up[outcome]
    assignments = trials.redraws(1000, np.random.default_rng(3))
    return analysis.randomisation_test(np.where(scaled, y / theta, y), trials.treated, trials.strata, assignments)


@pytest.mark.parametrize("reduction", [40, 70, -25])
def test_simulated_effects_have_the_intended_size(trials, reduction):
    for outcome in OUTCOMES:
        y, base = trials(reduction).follow_up[outcome], trials(0).follow_up[outcome]
        ratio = y[:, trials(reduction).treated].mean() / base[:, trials(0).treated].mean()
        assert ratio == pytest.approx(1 - reduction / 100, rel=0.08), outcome


@pytest.mark.parametrize("outcome", OUTCOMES)
def test_primary_test_calls_a_true_null_a_significant_reduction_or_increase_1_5_to_3_5_percent_each(trials, outcome):
    test = _test(trials(0), outcome)
    reduction = share(test.p_reduction < 0.025, f"primary test, no effect, significant reduction, {outcome}")
    increase = share(test.p_increase < 0.025, f"primary test, no effect, significant increase, {outcome}")
    assert TAIL_BAND[0] <= reduction <= TAIL_BAND[1]
    assert TAIL_BAND[0] <= increase <= TAIL_BAND[1]
    assert REJECTION_BAND[0] <= np.mean(test.p_value < 0.05) <= REJECTION_BAND[1]


@pytest.mark.parametrize("reduction", EFFECTS)
@pytest.mark.parametrize("outcome", OUTCOMES)
def test_primary_interval_covers_93_to_97_percent(trials, outcome, reduction):
    test = _test(trials(reduction), outcome, theta=1 - reduction / 100)
    rate = share(test.p_value >= 0.05, f"primary interval, coverage at a true {reduction:g}% reduction, {outcome}")
    share(test.p_reduction < 0.025, "  of which misses with the whole interval above the truth (overstated)")
    assert COVERAGE_BAND[0] <= rate <= COVERAGE_BAND[1]


@pytest.mark.parametrize("outcome", OUTCOMES)
def test_the_score_statistic_keeps_the_power_of_the_earlier_statistics_at_their_honest_level(trials, outcome):
    """Same trials, same re-draws, every statistic with 2.5% in each tail: only the statistic differs.

    The earlier studentised statistic was read two-sided on |T|, which spent about 4% of the 5% on
    spurious reductions; its power at that level is printed for comparison and is not a fair one.
    """
    t = trials(40)
    power = {
        statistic: share(
            _test(t, outcome, statistic=statistic).p_reduction < 0.025, f"power at 40%, {statistic}, {outcome}"
        )
        for statistic in analysis.STATISTICS
    }
    assert power["score"] >= 0.9 * max(power["studentised"], power["difference"])


def test_bootstrap_interval_still_undercovers(trials):
    """Documented in ratio_of_means' docstring: kept by name only. If it reaches 93%, update the docs."""
    t = trials(40)
    rng = np.random.default_rng(3)
    counts = analysis.bootstrap_counts(t.treated, t.strata, 1000, rng)
    for outcome in ("knife_suspect", "violence_suspect"):
        core = analysis.ratio_of_means_core(t.follow_up[outcome], t.treated, t.strata, t.redraws(1, rng), counts)
        rate = share((core["ci_low"] <= 0.6) & (core["ci_high"] >= 0.6), f"bootstrap coverage at 40%, {outcome}")
        assert 0.84 <= rate < 0.93


def _score_tests(trials, outcome, ratio, sims=1000):
    """The robust Poisson score test of ``ratio`` in the first ``sims`` trials with events in both arms."""
    assignments = trials.redraws(500, np.random.default_rng(8))
    tests = []
    for sim in range(sims):
        frame = trials.frame(sim)
        y = frame[outcome].to_numpy(float)
        if y[trials.treated].sum() == 0 or y[~trials.treated].sum() == 0:
            continue
        x, _ = analysis._design_matrix(frame, outcome)
        tests.append(analysis.score_test(y, x, assignments, np.log(ratio)))
    return np.array([(t.p_value[0], t.p_reduction[0], t.p_increase[0]) for t in tests])


@pytest.mark.parametrize("outcome", ["harm_suspect", "knife_suspect"])
def test_robust_poisson_calls_a_true_null_a_significant_reduction_or_increase_1_5_to_3_5_percent_each(trials, outcome):
    _, reduction, increase = _score_tests(trials(0), outcome, 1.0).T
    assert TAIL_BAND[0] <= share(reduction < 0.025, f"robust Poisson, no effect, reduction, {outcome}") <= TAIL_BAND[1]
    assert TAIL_BAND[0] <= share(increase < 0.025, f"robust Poisson, no effect, increase, {outcome}") <= TAIL_BAND[1]


@pytest.mark.parametrize("reduction", [40, 54, 70])
@pytest.mark.parametrize("outcome", ["harm_suspect", "knife_suspect"])
def test_robust_poisson_interval_covers_93_to_97_percent(trials, outcome, reduction):
    p_value = _score_tests(trials(reduction), outcome, 1 - reduction / 100)[:, 0]
    rate = share(p_value >= 0.05, f"robust Poisson, coverage at a true {reduction:g}% reduction, {outcome}")
    assert COVERAGE_BAND[0] <= rate <= COVERAGE_BAND[1]


@pytest.mark.parametrize("outcome", ["harm_suspect", "knife_suspect"])
def test_robust_poisson_interval_at_a_25_percent_increase_sits_at_the_edge_of_the_band(trials, outcome):
    """A known shortfall, documented in poisson_robust's docstring and the README.

    With 4,000 trials (``fdkit power --calibration --sims 4000 --seed 7``) it covered a true 25%
    increase 92.8% (harm), 93.2% (knife) and 92.8% (violence) of the time, MC SE 0.4; its misses
    fall on the side of no effect (the interval stops short of the increase). The ratio of means
    covers 93.7-94.0% there. If this reaches 93% in every run, fold it into the test above.
    """
    p_value = _score_tests(trials(-25), outcome, 1.25)[:, 0]
    rate = share(p_value >= 0.05, f"robust Poisson, coverage at a true 25% increase, {outcome}")
    assert 0.91 <= rate <= COVERAGE_BAND[1]


@pytest.mark.parametrize("reduction", [0, 40])
def test_interaction_test_rejects_a_common_effect_3_5_to_6_percent(trials, reduction):
    """Build item 5: the default (plug-in) test rejects a true common effect at most 6% of the time.

    At the default 2,000 re-draws, over 2,000 trials: measured 5.2% at no effect and 5.6% at a
    common 40% reduction (MC SE 0.5). The supremum version (method="supremum") is valid by
    construction and rejects less often still; tests/test_analysis.py checks that its p-value
    is never below the plug-in one.
    """
    t = trials(reduction)
    p_values = np.array(
        [analysis.interaction_test(t.frame(sim), "harm_suspect", seed=sim)["p_value"].iloc[0] for sim in range(SIMS)]
    )
    estimable = ~np.isnan(p_values)
    print(
        f"\ninteraction test, harm, common {reduction}% effect: {np.sum(~estimable)} of {SIMS:,} trials not estimable"
    )
    rate = share(p_values[estimable] < 0.05, f"interaction test (plug-in), harm, common {reduction}% effect, rejection")
    assert REJECTION_BAND[0] <= rate <= 0.06


def test_cace_rejects_exactly_when_the_itt_does(trials):
    """Under no effect the CACE test at theta = 1 is the ITT test itself, so its rejection rate is the ITT's."""
    frame = trials(40, ENGAGEMENT).frame(0)
    itt = analysis.ratio_of_means(frame, "harm_suspect", permutations=500)
    assert analysis.cace(frame, "harm_suspect", permutations=500).p_value == itt.p_value


CACE_SHORTFALL = ("harm_suspect", 70)


@pytest.mark.parametrize("reduction", EFFECTS[1:])
@pytest.mark.parametrize("outcome", OUTCOMES)
def test_cace_interval_covers_93_to_97_percent(trials, outcome, reduction):
    """An effect among those who engage: the hypothesis theta divides engaged people's outcomes.

    One known shortfall (``CACE_SHORTFALL``, in :func:`fdkit.analysis.cace`'s docstring and the
    README): a 70% harm reduction among the engaged is covered only about 91% of the time, because
    dividing engaged people's harm by 0.3 makes it heavier-tailed than the controls' (the reason the
    primary test no longer imputes). If it reaches 93%, drop the exception.
    """
    t = trials(reduction, ENGAGEMENT)
    test = _imputed_test(t, outcome, 1 - reduction / 100, t.engaged)
    rate = share(test.p_value >= 0.05, f"CACE interval, coverage at a true {reduction:g}% among the engaged, {outcome}")
    if (outcome, reduction) == CACE_SHORTFALL:
        assert 0.88 <= rate < COVERAGE_BAND[0]
    else:
        assert COVERAGE_BAND[0] <= rate <= COVERAGE_BAND[1]


@pytest.mark.parametrize(
    ("outcome", "reduction"),
    [
        ("harm_suspect", 0),
        ("knife_suspect", 0),
        ("knife_suspect", 40),
        ("violence_suspect", 0),
        ("violence_suspect", 40),
    ],
)
def test_welch_fieller_interval_covers_93_to_97_percent(population, outcome, reduction):
    spec = design.Design(TRIAL, reduction=reduction, outcome=outcome, methods=("welch_t",))
    row = design.diagnose(spec, population, sims=SIMS, seed=11 + reduction).iloc[0]
    print(
        f"\nWelch/Fieller coverage at {reduction}%, {outcome}: "
        f"{100 * row.coverage:.1f}% (MC SE {100 * row.coverage_se:.1f})"
    )
    assert COVERAGE_BAND[0] <= row.coverage <= COVERAGE_BAND[1]


def test_welch_interval_undercovers_harm_so_it_is_by_name_only(population):
    """Documented in welch_t's docstring and the README. If it reaches 93%, make it a default again."""
    spec = design.Design(TRIAL, reduction=40, outcome="harm_suspect", methods=("welch_t",))
    row = design.diagnose(spec, population, sims=SIMS, seed=11 + 40).iloc[0]
    print(
        f"\nWelch/Fieller coverage at 40%, harm_suspect: {100 * row.coverage:.1f}% (MC SE {100 * row.coverage_se:.1f})"
    )
    assert 0.85 <= row.coverage < COVERAGE_BAND[0]
    assert "welch_t" not in analysis.DEFAULT_METHODS
