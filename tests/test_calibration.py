"""Calibration by simulation on the trial's design (20+44 aged 11-17, 25+59 aged 18-25).

Simulated trials are drawn from a superpopulation of eligible episodes screened in several
synthetic towns (fdkit.design). Under no effect a 5% test should reject about 5% of the
time; a 95% interval should contain the truth about 95% of the time, at a true 0% and a true
40% reduction. Seeds are fixed, so these tests are deterministic. Every figure is printed
with its Monte Carlo standard error (run with ``-s`` to see them); the bands (3.5-6.5%
rejection, 93-97% coverage) are about three standard errors wide at 2,000 trials.

Coverage of an interval made by inverting a test is exactly one minus that test's rejection
rate at the true value, so it is measured that way (no interval search per trial).
"""

from __future__ import annotations

import numpy as np
import pytest

from fdkit import analysis, design, synth

pytestmark = pytest.mark.slow

TRIAL = design.MILTON_KEYNES
SIMS = 2000
REJECTION_BAND, COVERAGE_BAND = (0.035, 0.065), (0.93, 0.97)
ENGAGEMENT = {"11-17": 0.7, "18-25": 0.6}


def effect(reduction):
    ratio = 1 - reduction / 100
    return None if reduction == 0 else synth.Effects(suspect={"*": ratio}, victim={"*": ratio})


def share(flags, label):
    """The share of True, printed with its Monte Carlo SE."""
    flags = np.asarray(flags, dtype=bool)
    value = flags.mean()
    se = np.sqrt(value * (1 - value) / flags.size)
    print(f"\n{label}: {100 * value:.1f}% (MC SE {100 * se:.1f}, {flags.size:,} trials)")
    return value


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
                seed=11 + reduction + 7 * key[1],
                effects=effect(reduction),
                engagement=engagement,
            )
        return made[key]

    return get


def _p(trials, outcome, ratio=1.0, statistic="studentised", scaled=None, redraws=1000):
    y = trials.follow_up[outcome].copy()
    if ratio != 1.0:
        mask = np.broadcast_to(trials.treated, y.shape) if scaled is None else scaled
        y = np.where(mask, y / ratio, y)
    assignments = trials.redraws(redraws, np.random.default_rng(3))
    return analysis.studentised_p_values(y, trials.treated, trials.strata, assignments, statistic=statistic)[0]


def test_simulated_effects_have_the_intended_size(trials):
    for outcome in ("knife_suspect", "violence_suspect", "harm_suspect"):
        y, base = trials(40).follow_up[outcome], trials(0).follow_up[outcome]
        ratio = y[:, trials(40).treated].mean() / base[:, trials(0).treated].mean()
        assert ratio == pytest.approx(0.6, abs=0.05), outcome


@pytest.mark.parametrize("outcome", ["harm_suspect", "knife_suspect", "violence_suspect"])
def test_primary_test_rejects_a_true_null_3_5_to_6_5_percent(trials, outcome):
    rate = share(_p(trials(0), outcome) < 0.05, f"primary test, null rejection, {outcome}")
    assert REJECTION_BAND[0] <= rate <= REJECTION_BAND[1]


@pytest.mark.parametrize(
    ("outcome", "reduction"),
    [
        ("harm_suspect", 0),
        # 93.7% (MC SE 0.5) on the superpopulation built with the day rule of issue 13; it was 92.8%
        # (0.6) before: near the band's lower edge, because thinning events makes the treated arm's
        # harm heavier-tailed than the control arm's, which the re-draws do not reproduce.
        ("harm_suspect", 40),
        ("knife_suspect", 0),
        ("knife_suspect", 40),
        ("violence_suspect", 0),
        ("violence_suspect", 40),
    ],
)
def test_primary_interval_covers_93_to_97_percent(trials, outcome, reduction):
    covered = _p(trials(reduction), outcome, ratio=1 - reduction / 100) >= 0.05
    rate = share(covered, f"primary interval, coverage at a true {reduction}% reduction, {outcome}")
    assert COVERAGE_BAND[0] <= rate <= COVERAGE_BAND[1]


@pytest.mark.parametrize("outcome", ["harm_suspect", "knife_suspect", "violence_suspect"])
def test_studentising_raises_power_at_a_40_percent_reduction_at_least_1_6_fold(trials, outcome):
    """Same trials, same re-draws: only the statistic differs."""
    studentised = share(_p(trials(40), outcome) < 0.05, f"power at 40%, studentised, {outcome}")
    difference = share(
        _p(trials(40), outcome, statistic="difference") < 0.05, f"power at 40%, unstudentised, {outcome}"
    )
    assert studentised >= 1.6 * difference


def test_bootstrap_interval_still_undercovers(trials):
    """Documented in ratio_of_means' docstring: kept by name only. If it reaches 93%, update the docs."""
    t = trials(40)
    rng = np.random.default_rng(3)
    counts = analysis.bootstrap_counts(t.treated, t.strata, 1000, rng)
    for outcome in ("knife_suspect", "violence_suspect"):
        core = analysis.ratio_of_means_core(t.follow_up[outcome], t.treated, t.strata, t.redraws(1, rng), counts)
        rate = share((core["ci_low"] <= 0.6) & (core["ci_high"] >= 0.6), f"bootstrap coverage at 40%, {outcome}")
        assert 0.84 <= rate < 0.93


def _score_p_values(trials, outcome, ratio, sims=1000):
    assignments = trials.redraws(500, np.random.default_rng(8))
    p_values = []
    for sim in range(sims):
        frame = trials.frame(sim)
        y = frame[outcome].to_numpy(float)
        if y[trials.treated].sum() == 0 or y[~trials.treated].sum() == 0:
            continue
        x, _ = analysis._design_matrix(frame, outcome)
        p_values.append(analysis.score_test_p(y, x, assignments, np.log(ratio)))
    return np.array(p_values)


@pytest.mark.parametrize("outcome", ["harm_suspect", "knife_suspect"])
def test_robust_poisson_rejects_a_true_null_3_5_to_6_5_percent(trials, outcome):
    rate = share(_score_p_values(trials(0), outcome, 1.0) < 0.05, f"robust Poisson, null rejection, {outcome}")
    assert REJECTION_BAND[0] <= rate <= REJECTION_BAND[1]


@pytest.mark.parametrize("outcome", ["harm_suspect", "knife_suspect"])
def test_robust_poisson_interval_covers_93_to_97_percent_at_40(trials, outcome):
    rate = share(_score_p_values(trials(40), outcome, 0.6) >= 0.05, f"robust Poisson, coverage at 40%, {outcome}")
    assert COVERAGE_BAND[0] <= rate <= COVERAGE_BAND[1]


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


def test_cace_rejects_exactly_when_the_itt_does_and_its_interval_covers(trials):
    t = trials(40, ENGAGEMENT)
    null = trials(0)
    # Under no effect the CACE test at theta = 1 is the ITT test itself, so its rejection rate is the ITT's.
    frame = t.frame(0)
    itt = analysis.ratio_of_means(frame, "harm_suspect", permutations=500)
    assert analysis.cace(frame, "harm_suspect", permutations=500).p_value == itt.p_value
    share(_p(null, "harm_suspect") < 0.05, "CACE (= ITT) null rejection, harm")
    # A 40% reduction among those who engage: the hypothesis theta = 0.6 divides engaged people's outcomes.
    for outcome in ("harm_suspect", "knife_suspect"):
        covered = _p(t, outcome, ratio=0.6, scaled=t.engaged) >= 0.05
        rate = share(covered, f"CACE interval, coverage at a 40% reduction among the engaged, {outcome}")
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
