"""Effect estimates and tests, each against an independent calculation."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

from fdkit import analysis


def small_frame(seed=0, n=(6, 10, 8, 12)):
    """Two strata, treated and control in each, skewed counts; n = (t1, c1, t2, c2)."""
    rng = np.random.default_rng(seed)
    rows = []
    for (stratum, arm), size in zip(itertools.product(["11-17", "18-25"], ["treatment", "control"]), n):
        for _ in range(size):
            base = rng.negative_binomial(1, 0.3)
            rows.append(
                {
                    "stratum": stratum,
                    "arm": arm,
                    "knife_suspect_baseline": float(base),
                    "knife_suspect": float(rng.negative_binomial(1, 0.5 if arm == "control" else 0.65)),
                }
            )
    frame = pd.DataFrame(rows)
    frame.insert(0, "person_id", [f"P{i:03d}" for i in range(len(frame))])
    return frame


# ---------------------------------------------------------------------- the core


def test_randomisation_p_value_matches_full_enumeration():
    y = np.array([0.0, 3, 1, 0, 5, 2, 0, 1])
    strata = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    treated = np.array([1, 1, 0, 0, 1, 0, 1, 0], bool)
    assignments = []
    for first in itertools.combinations(range(4), 2):
        for second in itertools.combinations(range(4, 8), 2):
            row = np.zeros(8, bool)
            row[list(first + second)] = True
            assignments.append(row)
    assignments = np.array(assignments)

    def difference(t):
        return y[t].mean() - y[~t].mean()

    centre = np.mean([difference(a) for a in assignments])  # the design's expected difference
    observed = abs(difference(treated) - centre)
    extreme = sum(abs(difference(a) - centre) >= observed - 1e-12 for a in assignments)
    core = analysis.ratio_of_means_core(y, treated, strata, assignments, np.ones((1, 8), int))
    assert core["p_value"][0] == pytest.approx((1 + extreme) / (1 + len(assignments)))
    assert core["ratio"][0] == pytest.approx(y[treated].mean() / y[~treated].mean())


def test_bootstrap_interval_matches_a_loop_over_the_same_resamples():
    frame = small_frame()
    y, treated, strata = analysis._arrays(frame, "knife_suspect")
    counts = analysis.bootstrap_counts(treated, strata, 300, np.random.default_rng(5))
    ratios = []
    for row in counts:
        sample_y, sample_t = np.repeat(y, row), np.repeat(treated, row)
        ratios.append(sample_y[sample_t].mean() / sample_y[~sample_t].mean())
    core = analysis.ratio_of_means_core(y, treated, strata, np.zeros((1, y.size), bool), counts)
    low, high = np.quantile(np.nan_to_num(ratios, nan=np.inf), [0.025, 0.975])
    assert (core["ci_low"][0], core["ci_high"][0]) == pytest.approx((low, high))


def test_redraws_keep_each_strata_treated_count_and_are_uniform():
    treated = np.array([1, 1, 0, 0, 0, 1, 0, 0, 0, 0], bool)
    strata = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
    draws = analysis.permutation_assignments(treated, strata, 20000, np.random.default_rng(1))
    assert (draws[:, strata == 0].sum(axis=1) == 2).all() and (draws[:, strata == 1].sum(axis=1) == 1).all()
    share = draws.mean(axis=0)
    assert np.allclose(share[strata == 0], 2 / 5, atol=0.015) and np.allclose(share[strata == 1], 1 / 5, atol=0.015)


def test_bootstrap_keeps_cell_sizes():
    treated = np.array([1, 1, 0, 0, 0, 1, 0, 0], bool)
    strata = np.array([0, 0, 0, 0, 0, 1, 1, 1])
    counts = analysis.bootstrap_counts(treated, strata, 50, np.random.default_rng(2))
    for cell in strata * 2 + treated:
        members = (strata * 2 + treated) == cell
        assert (counts[:, members].sum(axis=1) == members.sum()).all()


# --------------------------------------------------------------------- the methods


def test_welch_and_mann_whitney_agree_with_scipy():
    frame = small_frame(3)
    t = frame.loc[frame.arm == "treatment", "knife_suspect"]
    c = frame.loc[frame.arm == "control", "knife_suspect"]
    welch = analysis.welch_t(frame, "knife_suspect")
    reference = stats.ttest_ind(t, c, equal_var=False)
    assert welch.p_value == pytest.approx(reference.pvalue)
    interval = reference.confidence_interval(0.95)
    assert welch.ci_low == pytest.approx(-100 * interval.high / c.mean())
    assert welch.pct_reduction == pytest.approx(100 * (1 - t.mean() / c.mean()))
    assert analysis.mann_whitney(frame, "knife_suspect").p_value == pytest.approx(
        stats.mannwhitneyu(t, c, alternative="two-sided").pvalue
    )


def test_poisson_fit_matches_statsmodels_and_its_sandwich():
    frame = small_frame(4)
    x, names = analysis._design_matrix(frame, "knife_suspect")
    y = frame["knife_suspect"].to_numpy(float)
    beta, mu, cov = analysis.poisson_fit(y, x)
    reference = sm.GLM(y, x, family=sm.families.Poisson()).fit(cov_type="HC0")
    n, p = x.shape
    assert names == ["intercept", "treatment", "stratum[18-25]", "log1p_baseline"]
    assert beta == pytest.approx(reference.params, rel=1e-6)
    assert cov == pytest.approx(reference.cov_params() * n / (n - p), rel=1e-5)


def test_poisson_robust_reports_the_arm_coefficient():
    frame = small_frame(5, n=(20, 30, 20, 30))
    effect = analysis.poisson_robust(frame, "knife_suspect", seed=1, permutations=200)
    x, _ = analysis._design_matrix(analysis.subgroup_frame(frame), "knife_suspect")
    reference = sm.GLM(
        analysis.subgroup_frame(frame)["knife_suspect"].to_numpy(), x, family=sm.families.Poisson()
    ).fit()
    assert effect.pct_reduction == pytest.approx(100 * (1 - np.exp(reference.params[1])))
    assert effect.ci_low <= effect.pct_reduction <= effect.ci_high
    assert 0 < effect.p_value <= 1


def test_negative_binomial_matches_statsmodels_and_refuses_harm():
    frame = small_frame(6, n=(20, 30, 20, 30))
    effect = analysis.negative_binomial(frame, "knife_suspect")
    part = analysis.subgroup_frame(frame)
    x, _ = analysis._design_matrix(part, "knife_suspect")
    reference = sm.NegativeBinomial(part["knife_suspect"], x).fit(disp=0)
    assert effect.pct_reduction == pytest.approx(100 * (1 - np.exp(reference.params.iloc[1])), rel=1e-4)
    assert effect.p_value == pytest.approx(reference.pvalues.iloc[1], rel=1e-3)
    harm = frame.rename(columns={"knife_suspect": "harm_suspect", "knife_suspect_baseline": "harm_suspect_baseline"})
    with pytest.raises(ValueError, match="counts only"):
        analysis.negative_binomial(harm, "harm_suspect")


def test_interaction_test_is_the_wald_test_of_the_interaction_term():
    frame = small_frame(7, n=(20, 30, 20, 30))
    result = analysis.interaction_test(frame, "knife_suspect").iloc[0]
    part = frame.sort_values("person_id")
    x, names = analysis._design_matrix(part, "knife_suspect", interaction=True)
    reference = sm.GLM(part["knife_suspect"].to_numpy(float), x, family=sm.families.Poisson()).fit(cov_type="HC0")
    k = names.index("treatment:stratum[18-25]")
    n, p = x.shape
    chi2 = reference.params[k] ** 2 / (reference.cov_params()[k, k] * n / (n - p))
    assert result["chi2"] == pytest.approx(chi2, rel=1e-5)
    assert result["p_value"] == pytest.approx(stats.chi2.sf(chi2, 1), rel=1e-5)


def test_cace_by_hand():
    frame = pd.DataFrame(
        {
            "person_id": [f"P{i}" for i in range(8)],
            "arm": ["treatment"] * 4 + ["control"] * 4,
            "stratum": ["all"] * 8,
            "engaged": [True, True, True, False, False, False, False, False],
            "knife_suspect_baseline": 0.0,
            "knife_suspect": [0.0, 0, 1, 2, 1, 1, 2, 2],
        }
    )
    # compliers' untreated mean = (1.5 - 0.25 * 2) / 0.75 = 4/3; engaged mean = 1/3
    assert analysis.cace(frame, "knife_suspect", resamples=200).pct_reduction == pytest.approx(75.0)


def test_holm_and_bh_by_hand():
    table = pd.DataFrame({"method": "m", "subgroup": "all", "p_value": [0.01, 0.04, 0.03]})
    adjusted = analysis.adjust_p_values(table)
    assert adjusted["p_holm"].tolist() == pytest.approx([0.03, 0.06, 0.06])
    assert adjusted["p_bh"].tolist() == pytest.approx([0.03, 0.04, 0.04])


def test_results_table_is_tidy_and_ignores_row_order():
    frame = small_frame(8, n=(20, 30, 20, 30))
    first = analysis.results_table(frame, seed=3, resamples=200, permutations=200)
    again = analysis.results_table(frame.sample(frac=1, random_state=1), seed=3, resamples=200, permutations=200)
    assert list(first.columns) == [*analysis.RESULT_COLUMNS, "note"]
    pd.testing.assert_frame_equal(first, again)
    assert set(first["subgroup"]) == {"all", "11-17", "18-25"}
    assert set(first["method"]) == set(analysis.METHODS)


def test_randomisation_interval_contains_the_estimate_and_excludes_rejected_ratios():
    frame = small_frame(9, n=(25, 40, 25, 40))
    y, treated, strata = analysis._arrays(analysis.subgroup_frame(frame), "knife_suspect")
    assignments = analysis.permutation_assignments(treated, strata, 999, np.random.default_rng(4))
    low, high = analysis.randomisation_interval(y, treated, strata, assignments)
    ratio = y[treated].mean() / y[~treated].mean()
    assert low < ratio < high
    for theta, inside in ((low * 0.9, False), (np.sqrt(low * high), True), (high * 1.1, False)):
        scaled = np.where(treated, y / theta, y)
        p = analysis.ratio_of_means_core(scaled, treated, strata, assignments, np.ones((1, y.size), int))["p_value"][0]
        assert (p >= 0.05) == inside
