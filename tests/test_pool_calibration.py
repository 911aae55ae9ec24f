"""The pooled analysis of several sites, checked by simulation and against an independent test (issue 22).

- Three synthetic towns, each screened, randomised and sealed on its own by ``fdkit synth --site``,
  pool into one analysis whose p-value agrees with a stratified randomisation test written
  plainly here (a loop of shuffles within each site's age bands), within Monte Carlo error.
- On simulated networks of three sites that differ in size, share treated and base rate (the
  case where pooling could go wrong), the pooled test rejects a true null 3.5-6.5% of the time and
  its interval covers a common true 40% reduction 93-97% of the time (the test of a common effect
  across sites is checked in ``tests/test_pool_heterogeneity.py``).
- ``fdkit power --sites`` (the vectorised :func:`fdkit.design.diagnose_sites`) agrees within two
  Monte Carlo SEs with a direct simulation of the same design through the pooled analysis itself.

Every figure is printed with its Monte Carlo SE (run with ``-s``). Seeds are fixed, so the tests
are deterministic. Each network is analysed by the same functions ``fdkit pool`` runs
(:func:`fdkit.sites.pool_frame`, :func:`fdkit.pooling.pooled_effect`), with 500 re-draws per
test to keep the run to a few minutes (the re-draws add a little noise to each p-value, not bias).
"""

from __future__ import annotations

import inspect

import builders
import numpy as np
import pytest

from fdkit import analysis, design, pooling, sites, synth
from fdkit.cli import main

pytestmark = pytest.mark.slow

NETWORKS = 2000
REDRAWS = 500
REJECTION_BAND, COVERAGE_BAND = (0.035, 0.065), (0.93, 0.97)
#: Three sites as fdkit synth --site makes them: the same places, different numbers eligible.
UNEQUAL = design.SitesDesign(3, ((45, 85), (45, 111), (45, 226)), baseline_sd=0.3)


def share(flags, label: str) -> float:
    """The share of True among simulated networks, printed with its Monte Carlo SE."""
    return builders.share(flags, label, unit="networks")


@pytest.fixture(scope="module")
def population():
    return design.build_superpopulation()


def analyse_networks(population, spec, seed):
    """Every simulated network analysed as fdkit pool analyses sites: the pooled p-value and interval."""
    networks = design.simulate_site_trials(population, spec, sims=NETWORKS, seed=seed)
    found = []
    for number in range(NETWORKS):
        frame = sites.pool_frame(networks.frames(number))
        effect = pooling.pooled_effect(frame, "outcome", seed=number, permutations=REDRAWS)
        found.append((effect.p_value, effect.ci_low, effect.ci_high))
    return np.array(found, dtype=float)


@pytest.fixture(scope="module")
def null_networks(population):
    return analyse_networks(population, UNEQUAL, seed=21)


@pytest.fixture(scope="module")
def effect_networks(population):
    from dataclasses import replace

    return analyse_networks(population, replace(UNEQUAL, reduction=40), seed=22)


def test_the_pooled_test_rejects_a_true_null_3_5_to_6_5_percent(null_networks):
    rate = share(null_networks[:, 0] < 0.05, "pooled test, no effect at any site: rejected")
    assert REJECTION_BAND[0] <= rate <= REJECTION_BAND[1]


def test_the_pooled_interval_covers_a_common_true_40_percent_reduction_93_to_97_percent(effect_networks):
    low, high = effect_networks[:, 1], effect_networks[:, 2]
    rate = share((low <= 40) & (40 <= high), "pooled interval, common true 40% reduction: covered")
    assert COVERAGE_BAND[0] <= rate <= COVERAGE_BAND[1]
    share(effect_networks[:, 0] < 0.05, "pooled test, common true 40% reduction: power")


# ------------------------------------------------------ power --sites against a direct simulation


def test_power_sites_agrees_with_a_direct_simulation_of_the_same_design_within_two_mc_ses(population):
    spec = design.SitesDesign(3, (45, 105), reduction=40, effect_sd=0.2, baseline_sd=0.3, permutations=1000)
    planned = design.diagnose_sites(spec, population, sims=NETWORKS, seed=5).iloc[0]

    # The same design simulated directly: each site its own simulated trial of the common effect, its own
    # base rate and its own departure from the common effect (log-normal, the SDs above), analysed as
    # fdkit pool analyses real sites.
    direct, rng = [], np.random.default_rng(606)
    size = design.split_size(45, 105)
    common = synth.Effects(suspect={"*": 0.6}, victim={"*": 0.6})
    for number in range(500):
        frames = {}
        for site in range(3):
            trial = design.simulate_trials(
                population, size, sims=1, seed=10_000 * number + site, effects=common, outcomes=("harm_suspect",)
            )
            frame = trial.frame(0).assign(wave=1)
            base, departure = np.exp(0.3 * rng.standard_normal()), np.exp(0.2 * rng.standard_normal())
            treated = frame["arm"] == "treatment"
            frame["harm_suspect"] = frame["harm_suspect"] * base * np.where(treated, departure, 1.0)
            frames[f"site{site}"] = frame
        effect = pooling.pooled_effect(sites.pool_frame(frames), "harm_suspect", seed=number, permutations=1000)
        direct.append(effect.p_value < 0.05)
    simulated = share(direct, "direct simulation, 3 sites of 45/105, median 40%, tau 0.2, base-rate SD 0.3: power")
    direct_se = np.sqrt(simulated * (1 - simulated) / len(direct))
    print(f"fdkit power --sites: {100 * planned['power']:.1f}% (MC SE {100 * planned['power_se']:.1f})")
    assert abs(planned["power"] - simulated) <= 2 * np.hypot(planned["power_se"], direct_se)


# ------------------------------------------------------ three synthetic sites, one independent test


def shuffled_p_value(frame, outcome, draws, seed):
    """The pooled test, written plainly: shuffle the labels within each site's age band and wave.

    The statistic is the one :func:`fdkit.pooling.pooled_effect` uses (the default statistic of
    :func:`fdkit.analysis.ratio_of_means`, stratified), coded here from its definition, at no effect:
    within each block ``b`` (site x age band x wave) the residual of each person is their outcome
    minus the block's mean, and a labelling ``c`` scores ``U = sum over the labelled treated of the
    residuals`` over ``sqrt(sum_i (c_i - p_b(i))^2 r_i^2)``, with ``p_b`` the block's treated share.
    Equal-tailed: twice the smaller share of shuffles at least as far out in one direction,
    counting the observed labelling once.
    """
    default = inspect.signature(analysis.ratio_of_means).parameters["statistic"].default
    if default != "score":
        pytest.fail(f"write the independent version of the {default!r} statistic here before trusting the comparison")
    y = frame[outcome].to_numpy(dtype=float)
    labels = (frame["arm"] == "treatment").to_numpy()
    cells = frame["stratum"].astype(str) + "|" + frame["wave"].astype(str)
    blocks = [np.flatnonzero((cells == b).to_numpy()) for b in sorted(set(cells))]
    residual, share_treated = np.empty(y.size), np.empty(y.size)
    for members in blocks:
        residual[members] = y[members] - y[members].mean()
        share_treated[members] = labels[members].mean()

    def statistic(treated):
        return residual[treated].sum() / np.sqrt(((treated - share_treated) ** 2 * residual**2).sum())

    observed, rng = statistic(labels), np.random.default_rng(seed)
    below = above = 0
    for _ in range(draws):
        shuffled = labels.copy()
        for members in blocks:
            shuffled[members] = rng.permutation(labels[members])
        value = statistic(shuffled)
        below += value <= observed + 1e-9 * abs(observed)
        above += value >= observed - 1e-9 * abs(observed)
    return min(1.0, 2 * (1 + min(below, above)) / (1 + draws))


@pytest.fixture(scope="module")
def three_towns(tmp_path_factory):
    """Three towns of the default scenario, each screened, randomised and sealed by fdkit synth --site, then pooled."""
    root = tmp_path_factory.mktemp("towns")
    options = []
    for name, seed in (("northbridge", 11), ("eastwick", 12), ("southmoor", 13)):
        assert main(["synth", "--site", name, "--seed", str(seed), "--out", str(root / name)]) == 0
        options += ["--site", f"{name}={root / name}"]
    assert main(["pool", *options, "--out", str(root / "pooled")]) == 0
    return sites.read_pooled(root / "pooled")


@pytest.mark.parametrize("outcome", ["harm_suspect", "knife_suspect"])
def test_three_sealed_towns_pool_and_the_p_value_agrees_with_an_independent_stratified_test(three_towns, outcome):
    assert three_towns.site_names == ["northbridge", "eastwick", "southmoor"]
    frame = three_towns.frame
    assert frame.groupby("site")["arm"].apply(lambda arm: (arm == "treatment").sum()).eq(45).all()
    row = three_towns.results.query("site == 'pooled' and outcome == @outcome").iloc[0]
    redraws = three_towns.manifest["settings"]["permutations"]
    independent = shuffled_p_value(frame, outcome, draws=5000, seed=8)
    both = np.sqrt(independent * (2 - independent) * (1 / redraws + 1 / 5000))  # equal-tailed p-values
    print(f"\n{outcome}: fdkit pool p = {row['p_value']:.4f}, independent p = {independent:.4f} (MC SE {both:.4f})")
    assert abs(row["p_value"] - independent) <= 3 * both + 1 / 5000
