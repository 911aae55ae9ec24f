"""Design diagnosis: its summaries by hand, its reduced form against the generator, its calibration."""

from __future__ import annotations

import numpy as np
import pytest

from fdkit import design, eligibility, synth


@pytest.fixture(scope="module")
def population():
    return design.build_superpopulation()


def test_summary_by_hand():
    spec = design.Design(size={"a": (2, 2)}, reduction=50)
    row = design._summary(
        "m", spec, np.array([60.0, -20, 80, 10]), np.array([0.01, 0.02, 0.5, 0.04]), np.array([1.0, 0.0, 1.0, 1.0])
    )
    assert row["power"] == 0.75 and row["coverage"] == 0.75
    assert row["bias"] == pytest.approx(32.5 - 50) and row["rmse"] == pytest.approx(np.sqrt(1875))
    assert row["type_s"] == pytest.approx(1 / 3)  # -20 is significant with the wrong sign
    assert row["type_m"] == pytest.approx((60 + 20 + 10) / 3 / 50)


def test_split_size_keeps_totals_and_the_trials_proportions():
    assert design.split_size(45, 103) == design.MILTON_KEYNES
    for n_t, n_c in ((90, 210), (200, 400), (7, 13)):
        split = design.split_size(n_t, n_c)
        assert sum(t for t, _ in split.values()) == n_t and sum(c for _, c in split.values()) == n_c


def test_episodes_are_the_generators_eligible_people():
    population = design.build_superpopulation(towns=(4,), reference_dates=("2022-02-01",))
    expected = eligibility.screen(synth.generate(seed=4).records, "2022-02-01").eligible
    assert sorted(population.episodes["person_id"]) == sorted(expected["person_id"])
    assert (
        population.episodes.set_index("person_id")["stratum"]
        == expected.set_index("person_id")["age_band"].reindex(population.episodes["person_id"])
    ).all()


def test_primary_analysis_is_calibrated_under_no_effect(population):
    """Issue: under a 0% reduction the rejection rate is 3-7% and coverage 93-97% over 2,000 trials."""
    result = design.diagnose(design.Design(design.MILTON_KEYNES, reduction=0), population, sims=2000, seed=21)
    row = result.set_index("method").loc["ratio_of_means"]
    assert 0.03 <= row["power"] <= 0.07
    assert 0.93 <= row["coverage"] <= 0.97


def test_power_rises_with_size_and_effect(population):
    curve = design.power_curve(population, [(45, 103), (180, 412)], [30, 60], sims=400, seed=2)
    power = curve.set_index(["n_treated", "reduction"])["power"]
    assert power[(180, 30)] > power[(45, 30)] and power[(45, 60)] > power[(45, 30)]


def test_small_significant_trials_exaggerate(population):
    row = design.diagnose(design.Design(design.MILTON_KEYNES, reduction=30), population, sims=1000, seed=3).iloc[0]
    assert row["type_m"] > 1.3  # significant results overstate a true 30% reduction


def test_mdes_is_where_power_crosses_80_percent(population):
    size = design.split_size(180, 412)
    found = design.mdes(population, size, sims=400, seed=5, tolerance=2)
    spec = lambda r: design.Design(size, reduction=r)  # noqa: E731
    assert design.diagnose(spec(found), population, sims=400, seed=5)["power"].iloc[0] >= 0.8
    assert design.diagnose(spec(found - 2), population, sims=400, seed=5)["power"].iloc[0] < 0.8
