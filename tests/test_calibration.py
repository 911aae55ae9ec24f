"""Calibration by simulation on the trial's design (20+44 aged 11-17, 25+59 aged 18-25).

Simulated trials are drawn from a superpopulation of eligible episodes screened in several
synthetic towns (fdkit.design). Under no effect a 5% test should reject about 5% of the
time; under a true 40% reduction a 95% interval should contain the truth about 95% of the
time. Seeds are fixed, so these tests are deterministic; the tolerances allow for the
simulation's own error (1,000-2,000 trials: about ±1 point).
"""

from __future__ import annotations

import numpy as np
import pytest

from fdkit import analysis, design, synth

TRIAL = {"11-17": (20, 44), "18-25": (25, 59)}
TRUE_RATIO = 0.6
EFFECT = synth.Effects(suspect={"*": TRUE_RATIO}, victim={"*": TRUE_RATIO})


@pytest.fixture(scope="module")
def population():
    return design.build_superpopulation()


@pytest.fixture(scope="module")
def null_trials(population):
    return design.simulate_trials(population, TRIAL, sims=2000, seed=11)


@pytest.fixture(scope="module")
def effect_trials(population):
    return design.simulate_trials(population, TRIAL, sims=2000, seed=12, effects=EFFECT)


def _redraws(trials, count=1000, seed=3):
    rng = np.random.default_rng(seed)
    return (
        analysis.permutation_assignments(trials.treated, trials.strata, count, rng),
        analysis.bootstrap_counts(trials.treated, trials.strata, count, rng),
    )


def test_simulated_effects_have_the_intended_size(effect_trials, null_trials):
    for outcome in ("knife_suspect", "violence_suspect", "harm_suspect"):
        y = effect_trials.follow_up[outcome]
        base = null_trials.follow_up[outcome]
        ratio = y[:, effect_trials.treated].mean() / base[:, null_trials.treated].mean()
        assert ratio == pytest.approx(TRUE_RATIO, abs=0.05), outcome


@pytest.mark.parametrize("outcome", ["harm_suspect", "knife_suspect", "violence_suspect", "violence_victim"])
def test_randomisation_inference_rejects_a_true_null_at_most_6_percent(null_trials, outcome):
    assignments, counts = _redraws(null_trials)
    core = analysis.ratio_of_means_core(
        null_trials.follow_up[outcome], null_trials.treated, null_trials.strata, assignments, counts
    )
    rate = (core["p_value"] < 0.05).mean()
    assert 0.035 <= rate <= 0.06, rate


@pytest.mark.parametrize("outcome", ["harm_suspect", "knife_suspect", "violence_suspect", "violence_victim"])
def test_randomisation_interval_covers_95_percent(effect_trials, outcome):
    """Coverage of the test-inversion interval = 1 - the test's rejection rate at the truth."""
    assignments, counts = _redraws(effect_trials)
    y = effect_trials.follow_up[outcome].copy()
    y[:, effect_trials.treated] /= TRUE_RATIO
    core = analysis.ratio_of_means_core(y, effect_trials.treated, effect_trials.strata, assignments, counts)
    coverage = 1 - (core["p_value"] < 0.05).mean()
    assert 0.93 <= coverage <= 0.97, coverage


def test_the_percentile_bootstrap_undercovers_at_this_size(effect_trials):
    """Documented, not endorsed: notebook 06 shows this. If it ever reaches 93%, update the docs."""
    assignments, counts = _redraws(effect_trials)
    for outcome in ("knife_suspect", "violence_suspect"):
        core = analysis.ratio_of_means_core(
            effect_trials.follow_up[outcome], effect_trials.treated, effect_trials.strata, assignments, counts
        )
        coverage = ((core["ci_low"] <= TRUE_RATIO) & (core["ci_high"] >= TRUE_RATIO)).mean()
        assert 0.85 <= coverage < 0.94, (outcome, coverage)


def _score_rejections(trials, outcome, beta, sims=1000):
    assignments = analysis.permutation_assignments(trials.treated, trials.strata, 500, np.random.default_rng(8))
    rejected = []
    for sim in range(sims):
        frame = trials.frame(sim)
        y = frame[outcome].to_numpy(float)
        if y[trials.treated].sum() == 0 or y[~trials.treated].sum() == 0:
            continue
        x, _ = analysis._design_matrix(frame, outcome)
        rejected.append(analysis.score_test_p(y, x, assignments, beta) < 0.05)
    return np.mean(rejected)


@pytest.mark.parametrize("outcome", ["harm_suspect", "knife_suspect"])
def test_robust_poisson_model_rejects_a_true_null_at_most_6_percent(null_trials, outcome):
    rate = _score_rejections(null_trials, outcome, 0.0)
    assert 0.035 <= rate <= 0.06, rate


@pytest.mark.parametrize("outcome", ["knife_suspect", "violence_suspect"])
def test_robust_poisson_interval_covers_95_percent(effect_trials, outcome):
    coverage = 1 - _score_rejections(effect_trials, outcome, np.log(TRUE_RATIO))
    assert 0.93 <= coverage <= 0.97, coverage
