"""Several sites, one protocol (issue 22): site folders, site-scoped IDs, the pooled analysis,
`fdkit pool`, `fdkit report --pooled`, `fdkit synth --site` and `fdkit power --sites`.

The sites here are small synthetic towns (a scenario of 40,000 people with 8 + 10 places), so
the file runs in seconds; the calibration of the pooled tests by simulation is in
``tests/test_pool_calibration.py`` (slow).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats

from fdkit import analysis, pooling, sites, synth
from fdkit.cli import main
from fdkit.randomise import AssignmentDesign


def run(argv: list[str]) -> int:
    """The exit code of ``fdkit ARGV``, whether the command returns it or exits with it (usage errors)."""
    try:
        return main(argv)
    except SystemExit as stop:
        return int(stop.code)


SMALL_TOWNS = """\
extends = "milton_keynes"
population = 40000

[trial.capacities]
"11-17" = 8
"18-25" = 10
"""
TOWNS = {"northbridge": 11, "eastwick": 12, "southmoor": 13}


@pytest.fixture(scope="module")
def network(tmp_path_factory):
    """Three small synthetic towns, each screened, randomised and sealed by `fdkit synth --site`."""
    root = tmp_path_factory.mktemp("network")
    scenario = root / "small.toml"
    scenario.write_text(SMALL_TOWNS)
    for name, seed in TOWNS.items():
        command = ["synth", "--scenario", str(scenario), "--site", name, "--seed", str(seed), "--out"]
        assert run([*command, str(root / "sites" / name)]) == 0
    return root


def site_options(root: Path, names=TOWNS) -> list[str]:
    return [option for name in names for option in ("--site", f"{name}={root / 'sites' / name}")]


@pytest.fixture(scope="module")
def pooled(network):
    """The three towns pooled by `fdkit pool`."""
    out = network / "pooled"
    assert run(["pool", *site_options(network), "--permutations", "500", "--out", str(out)]) == 0
    return out


def frames_of(network) -> dict[str, pd.DataFrame]:
    return {name: sites.load_site(name, network / "sites" / name).frame for name in TOWNS}


# ------------------------------------------------------------------ names and site-scoped IDs


@pytest.mark.parametrize("name", ["northbridge", "MK-2", "site_3", "a"])
def test_a_site_name_of_letters_digits_and_dashes_is_accepted(name):
    assert sites.check_site_name(name) == name


@pytest.mark.parametrize("name", ["", "north/bridge", "two words", "=cmd", "-x", "x" * 41, "Pooled", "total"])
def test_a_site_name_that_could_break_ids_strata_or_a_spreadsheet_is_refused(name):
    with pytest.raises(ValueError, match="site name"):
        sites.check_site_name(name)


def two_sites_with_the_same_ids() -> dict[str, pd.DataFrame]:
    frame = pd.DataFrame(
        {
            "person_id": ["P1", "P2", "P3", "P4"],
            "arm": ["treatment", "control", "treatment", "control"],
            "stratum": ["11-17", "11-17", "18-25", "18-25"],
            "wave": 1,
            "outcome": [0.0, 2.0, 1.0, 3.0],
        }
    )
    return {"a": frame, "b": frame.assign(outcome=[1.0, 1.0, 0.0, 4.0])}


def test_the_same_id_at_two_sites_is_two_people():
    pooled = sites.pool_frame(two_sites_with_the_same_ids())
    assert len(pooled) == 8 and pooled["person_id"].is_unique
    assert set(pooled.loc[pooled["site_person_id"] == "P1", "person_id"]) == {"a/P1", "b/P1"}
    assert set(pooled["stratum"]) == {"a / 11-17", "a / 18-25", "b / 11-17", "b / 18-25"}


def test_a_pooled_frame_with_bare_or_clashing_ids_is_refused():
    pooled = sites.pool_frame(two_sites_with_the_same_ids())
    bare = pooled.assign(person_id=pooled["site_person_id"])
    with pytest.raises(ValueError, match="not scoped by their site"):
        sites.check_pooled_frame(bare)
    with pytest.raises(ValueError, match="not scoped by their site"):
        sites.check_pooled_frame(pooled.assign(stratum=pooled["age_band"]))
    with pytest.raises(ValueError, match="not scoped by their site"):
        pooling.pooled_effect(bare, "outcome", permutations=100)
    with pytest.raises(ValueError, match="at least two sites"):
        sites.pool_frame({"a": two_sites_with_the_same_ids()["a"]})


# ----------------------------------------------------------------------- the pooled analysis


def test_the_pooled_test_redraws_within_site_age_band_and_wave_with_each_sites_places(network):
    frames = frames_of(network)
    frames["eastwick"] = frames["eastwick"].assign(wave=np.where(frames["eastwick"]["person_id"] < "P02", 1, 2))
    pooled = sites.pool_frame(frames)
    declared = analysis.assignment_design(pooled)
    expected = {}
    for name, frame in frames.items():
        keys = ["wave", "stratum"] if name == "eastwick" else ["stratum"]
        for key, part in frame.groupby(keys):
            wave, band = key if name == "eastwick" else (1, key[0])
            expected[f"wave {wave} / {name} / {band}"] = int((part["arm"] == "treatment").sum())
    assert dict(zip(declared.block_names, declared.n_treated.tolist())) == expected
    draws = declared.permutation_matrix(50, np.random.default_rng(0))
    for code, places in enumerate(declared.n_treated):
        assert (draws[:, declared.blocks == code].sum(axis=1) == places).all()


def test_the_pooled_effect_is_the_primary_analysis_on_the_pooled_frame(network):
    pooled = sites.pool_frame(frames_of(network))
    effect = pooling.pooled_effect(pooled, "harm_suspect", seed=3, permutations=300)
    same = analysis.ratio_of_means(pooled, "harm_suspect", seed=3, permutations=300, stratified=True)
    assert effect.row() == same.row()
    # The estimate is the common ratio within site x age band x wave (checked against statsmodels in
    # test_analysis), not the ratio of the raw pooled means.
    blocks = analysis.assignment_design(pooled.sort_values("person_id", ignore_index=True)).blocks
    part = pooled.sort_values("person_id", ignore_index=True)
    y, treated = part["harm_suspect"].to_numpy(), (part["arm"] == "treatment").to_numpy()
    assert effect.pct_reduction == pytest.approx(100 * (1 - analysis.stratified_ratio(y, treated, blocks)))
    assert "stratified score" in effect.interval
    assert (effect.ci_low <= effect.pct_reduction <= effect.ci_high) or not np.isfinite(effect.pct_reduction)


def test_each_sites_estimate_is_what_its_own_analysis_gives(network):
    pooled = sites.pool_frame(frames_of(network))
    by_site = pooling.site_effects(pooled, "knife_suspect", seed=5, permutations=300)
    for name, effect in by_site.items():
        own = analysis.ratio_of_means(
            sites.load_site(name, network / "sites" / name).frame, "knife_suspect", seed=5, permutations=300
        )
        assert effect.row() == own.row(), name


def test_the_heterogeneity_test_compares_sites_and_redraws_within_site_age_band_and_wave(network):
    pooled = sites.pool_frame(frames_of(network))
    by_site = pooling._by_site_frame(pooled)
    declared = analysis.assignment_design(by_site)
    assert len(declared.block_names) == 6  # three sites x two age bands, one wave
    assert sorted(set(by_site["stratum"])) == sorted(TOWNS)
    found = pooling.heterogeneity_test(pooled, "harm_suspect", seed=2, permutations=300)
    direct = analysis.interaction_test(by_site, "harm_suspect", seed=2, permutations=300, method="profile").iloc[0]
    assert found["p_value"] == direct["p_value"] and found["df"] == 2 and found["sites"] == 3
    assert found["method"] == "randomisation score test of a common ratio, profile Q"
    # Q from its definition, loop by loop, on the same re-draws and the same grid of common ratios.
    part = by_site.sort_values("person_id", ignore_index=True)
    declared = analysis.assignment_design(part)
    redraws = declared.permutation_matrix(300, analysis.stream(2, "harm_suspect", "interaction"))
    y, treated, blocks = part["harm_suspect"].to_numpy(float), (part["arm"] == "treatment").to_numpy(), declared.blocks
    in_site = {name: (part["stratum"] == name).to_numpy() for name in sorted(TOWNS)}

    def own_ratio(mask):  # the root of the site's stratified score equation
        def score(log_theta):
            theta, total = np.exp(log_theta), 0.0
            for block in np.unique(blocks[mask]):
                b = mask & (blocks == block)
                n_t, n_c = treated[b].sum(), (~treated[b]).sum()
                total += y[b & treated].sum() - theta * n_t * y[b].sum() / (theta * n_t + n_c)
            return total

        return np.exp(optimize.brentq(score, -10, 10, xtol=1e-12))

    def normal_score(mask, theta):
        residual, projection = np.zeros(y.size), np.zeros(y.size)
        for block in np.unique(blocks[mask]):
            b = mask & (blocks == block)
            n_t, n_c = treated[b].sum(), (~treated[b]).sum()
            mu = y[b].sum() / (theta * n_t + n_c)
            residual[b] = y[b] - mu * np.where(treated[b], theta, 1.0)
            projection[b] = theta * n_t / (theta * n_t + n_c)

        def statistic(assignment):
            c = assignment[mask].astype(float)
            return (c @ residual[mask]) / np.sqrt((((c - projection[mask]) * residual[mask]) ** 2).sum())

        observed = statistic(treated)
        drawn = np.array([statistic(row) for row in redraws])
        rank = (drawn < observed - 1e-9).sum() + 0.5 * (np.abs(drawn - observed) <= 1e-9).sum() + 0.5
        return stats.norm.ppf(rank / (len(drawn) + 1))

    ratios = [own_ratio(mask) for mask in in_site.values()]
    low, high = (int(round(1000 * (1 - r))) for r in (max(ratios), min(ratios)))
    grid = sorted({low, high} | {k for k in analysis._SUPREMUM_GRID.tolist() if low <= k <= high})
    q = min(sum(normal_score(mask, (1000 - k) / 1000) ** 2 for mask in in_site.values()) for k in grid)
    assert found["chi2"] == pytest.approx(q, rel=1e-9)
    assert found["p_value"] == pytest.approx(stats.chi2.sf(q, 2), rel=1e-9)


def test_random_effects_agree_with_paule_mandel_knapp_hartung_and_a_prediction_interval_by_hand():
    rng = np.random.default_rng(4)
    frames = {}
    for number, ratio in enumerate((0.5, 0.9, 0.7, 1.1)):
        n = 60 + 20 * number
        arm = np.where(np.arange(n) < n // 3, "treatment", "control")
        y = rng.gamma(0.8, 3.0, n) * np.where(arm == "treatment", ratio, 1.0)
        frames[f"s{number}"] = pd.DataFrame(
            {"person_id": [f"P{i:03d}" for i in range(n)], "arm": arm, "stratum": "all", "wave": 1, "outcome": y}
        )
    pooled = sites.pool_frame(frames)
    found = pooling.random_effects(pooled, "outcome")
    effects, variances = [], []
    for frame in frames.values():
        t, c = frame.loc[frame["arm"] == "treatment", "outcome"], frame.loc[frame["arm"] == "control", "outcome"]
        effects.append(np.log(t.mean() / c.mean()))
        variances.append(t.var() / (len(t) * t.mean() ** 2) + c.var() / (len(c) * c.mean() ** 2))
    y, v, k = np.array(effects), np.array(variances), len(effects)

    def q(tau2):
        w = 1 / (v + tau2)
        mean = (w * y).sum() / w.sum()
        return (w * (y - mean) ** 2).sum() - (k - 1)

    tau2 = optimize.brentq(q, 0, 10) if q(0) > 0 else 0.0
    w = 1 / (v + tau2)
    mean = (w * y).sum() / w.sum()
    knapp_hartung = np.sqrt((w * (y - mean) ** 2).sum() / ((k - 1) * w.sum()))
    t_mean, t_new = stats.t.ppf(0.975, k - 1), stats.t.ppf(0.975, k - 2)
    assert found["tau2"] == pytest.approx(tau2, rel=1e-4, abs=1e-8)
    assert found["re_pct_reduction"] == pytest.approx(100 * (1 - np.exp(mean)), rel=1e-5)
    assert found["re_ci_low"] == pytest.approx(100 * (1 - np.exp(mean + t_mean * knapp_hartung)), rel=1e-4)
    assert found["re_ci_high"] == pytest.approx(100 * (1 - np.exp(mean - t_mean * knapp_hartung)), rel=1e-4)
    new_site = t_new * np.sqrt(tau2 + 1 / w.sum())
    assert found["pi_low"] == pytest.approx(100 * (1 - np.exp(mean + new_site)), rel=1e-3)
    assert found["pi_high"] == pytest.approx(100 * (1 - np.exp(mean - new_site)), rel=1e-3)
    assert 0 <= found["i2"] < 1


def test_a_site_with_no_events_in_an_arm_is_left_out_of_random_effects_and_said_so():
    frames = two_sites_with_the_same_ids()
    frames["c"] = frames["a"].assign(outcome=[0.0, 1.0, 0.0, 2.0])
    pooled = sites.pool_frame(frames)
    found = pooling.random_effects(pooled, "outcome")
    assert found["re_sites"] == 2 and "left out (an arm without events): c" in found["re_note"]
    assert np.isnan(found["pi_low"]) and "three sites" in found["re_note"]
    test = pooling.heterogeneity_test(pooled, "outcome", permutations=100)
    assert np.isnan(test["p_value"]) and "treatment at c" in test["note"]


# ---------------------------------------------------------------------- fdkit synth --site


def test_synth_site_makes_towns_with_their_own_seed_base_rate_and_sealed_trial(network):
    manifests = {name: json.loads((network / "sites" / name / "manifest.json").read_text()) for name in TOWNS}
    rates = {name: manifest["site"]["base_rate"] for name, manifest in manifests.items()}
    assert len(set(rates.values())) == 3 and all(0.6 <= r <= 1.6 for r in rates.values())
    for name, seed in TOWNS.items():
        assert manifests[name]["seed"] == seed and manifests[name]["site"] == {
            "name": name,
            "seed": seed,
            "base_rate": rates[name],
        }
        seal = json.loads((network / "sites" / name / "allocation.seal.json").read_text())
        assert seal["waves"][0]["seed"] == seed and seal["waves"][0]["capacities"] == {"11-17": 8, "18-25": 10}
    ids = [set(pd.read_csv(network / "sites" / name / "persons.csv")["person_id"]) for name in TOWNS]
    assert ids[0] & ids[1], "towns number their people independently, so IDs recur across sites"


def test_a_site_scenario_scales_offending_and_victimisation_by_its_base_rate():
    scenario = synth.load_scenario()
    town, site = synth.site_scenario(scenario, "x", 7, base_rate=1.25)
    assert town.offending.annual_rate == pytest.approx(1.25 * scenario.offending.annual_rate)
    assert town.victimisation.annual_rate == pytest.approx(1.25 * scenario.victimisation.annual_rate)
    assert town.seed == 7 and town.trial["seed"] == 7 and town.text == scenario.text
    assert site == {"name": "x", "seed": 7, "base_rate": 1.25}
    assert synth.site_scenario(scenario, "x", 7)[1] == synth.site_scenario(scenario, "x", 7)[1]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--site", "north"], "--site needs --seed"),
        (["--site", "a/b", "--seed", "1"], "site name"),
        (["--site", "north", "--seed", "1", "--base-rate", "9"], "0.25 to 4"),
        (["--base-rate", "1.2"], "--base-rate needs --site"),
    ],
)
def test_synth_site_usage_errors_exit_2(tmp_path, capsys, options, message):
    assert run(["synth", *options, "--out", str(tmp_path / "town")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "town").exists()


# ----------------------------------------------------------------------------- fdkit pool


def test_pool_writes_a_folder_whose_manifest_fingerprints_every_table(pooled, capsys):
    found = sites.read_pooled(pooled)
    assert found.site_names == list(TOWNS)
    assert set(found.results["site"]) == {"pooled", *TOWNS}
    assert found.frame["person_id"].str.split("/").str[0].tolist() == found.frame["site"].tolist()
    for site in found.manifest["sites"]:
        seal = json.loads((Path(site["folder"]) / "allocation.seal.json").read_text())
        assert site["seal"] == seal and site["allocation_sha256"] == seal["allocation_sha256"]
    assert found.manifest["settings"]["permutations"] == 500


def test_pool_results_are_the_pooled_analysis_of_the_sites(network, pooled):
    found = sites.read_pooled(pooled)
    frame = sites.pool_frame(frames_of(network))
    settings = found.manifest["settings"]
    again = pooling.pooled_results(
        frame, seed=settings["seed"], permutations=settings["permutations"], family=settings["family"]
    )
    pd.testing.assert_frame_equal(found.results, again.results, check_dtype=False)
    pd.testing.assert_frame_equal(found.heterogeneity, again.heterogeneity, check_dtype=False)


def copy_sites(network, tmp_path) -> Path:
    target = tmp_path / "sites"
    shutil.copytree(network / "sites", target)
    return tmp_path


def test_a_site_whose_allocation_was_changed_after_sealing_stops_pool_naming_the_site(network, tmp_path, capsys):
    root = copy_sites(network, tmp_path)
    allocation = root / "sites" / "eastwick" / "allocation.csv"
    lines = allocation.read_text().splitlines()
    header, first = lines[0], lines[1].split(",")
    first[2] = "control" if first[2] == "treatment" else "treatment"
    allocation.write_text("\n".join([header, ",".join(first), *lines[2:]]) + "\n")
    assert run(["pool", *site_options(root), "--out", str(tmp_path / "out")]) == 1
    error = capsys.readouterr().err
    assert "site eastwick" in error and "changed since it was sealed" in error and "Traceback" not in error
    assert not (tmp_path / "out").exists()


def test_a_site_whose_eligible_list_was_changed_stops_pool_naming_the_site(network, tmp_path, capsys):
    root = copy_sites(network, tmp_path)
    eligible = root / "sites" / "southmoor" / "eligible.csv"
    lines = eligible.read_text().splitlines()
    eligible.write_text("\n".join(lines[:-1]) + "\n")
    assert run(["pool", *site_options(root), "--out", str(tmp_path / "out")]) == 1
    assert "site southmoor" in capsys.readouterr().err


def test_a_site_without_its_eligible_list_or_allocation_stops_pool_naming_the_site(network, tmp_path, capsys):
    root = copy_sites(network, tmp_path)
    (root / "sites" / "northbridge" / "eligible.csv").unlink()
    assert run(["pool", *site_options(root), "--out", str(tmp_path / "out")]) == 1
    assert "site northbridge" in (error := capsys.readouterr().err) and "eligible.csv" in error
    (root / "sites" / "eastwick" / "allocation.csv").unlink()
    assert run(["pool", *site_options(root, ["eastwick", "southmoor"]), "--out", str(tmp_path / "out")]) == 1
    assert "site eastwick" in capsys.readouterr().err


def test_one_trial_under_two_names_is_refused(network, tmp_path, capsys):
    root = copy_sites(network, tmp_path)
    shutil.copytree(root / "sites" / "eastwick", root / "sites" / "copy")
    options = [*site_options(root, ["eastwick", "southmoor"]), "--site", f"copy={root / 'sites' / 'copy'}"]
    assert run(["pool", *options, "--out", str(tmp_path / "out")]) == 1
    assert "site copy" in capsys.readouterr().err
    same = ["--site", f"a={root / 'sites' / 'eastwick'}", "--site", f"b={root / 'sites' / 'eastwick'}"]
    assert run(["pool", *same, "--out", str(tmp_path / "out")]) == 2
    assert "same folder" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("sites_given", "message"),
    [
        (["north=x"], "at least two sites"),
        (["north"], "NAME=DIR"),
        (["north=x", "north=y"], "given twice"),
        (["no/rth=x", "b=y"], "site name"),
    ],
)
def test_pool_usage_errors_exit_2(tmp_path, capsys, sites_given, message):
    options = [item for given in sites_given for item in ("--site", given)]
    assert run(["pool", *options, "--out", str(tmp_path / "out")]) == 2
    assert message in capsys.readouterr().err


def test_pool_never_writes_into_a_site_folder(network, capsys):
    out = network / "sites" / "eastwick" / "pooled"
    assert run(["pool", *site_options(network), "--out", str(out)]) == 2
    assert not out.exists()


# ---------------------------------------------------------------------- fdkit report --pooled


def test_report_pooled_writes_one_page_with_every_part(pooled, tmp_path, capsys):
    from fdkit.report_html import POOLED_SECTIONS

    out = tmp_path / "report.html"
    assert run(["report", "--pooled", str(pooled), "--out", str(out), "--unit", "Three towns"]) == 0
    page = out.read_text(encoding="utf-8")
    for section in POOLED_SECTIONS:
        assert f'<section id="{section}"' in page, section
    for name in TOWNS:
        assert f"Site {name}" in page and f"Site {name}: CONSORT flow diagram" in page
    assert page.count("<img") == 2 + len(TOWNS)  # total flow, site forest plot, each site's flow
    assert "<script" not in page and "http://" not in page and "https://" not in page
    assert "Synthetic data." in page and "Three towns" in page


def test_the_pooled_reports_numbers_are_the_pooled_folders(pooled):
    from fdkit.report_pooled import build_pooled_report, pooled_summary_text, total_consort

    report = build_pooled_report(pooled)
    primary = report.primary
    assert primary["site"] == "pooled" and primary["outcome"] == "harm_suspect"
    text = pooled_summary_text(report)
    assert f"{primary['pct_reduction']:.1f}%" in text and "synthetic" in text
    assert report.total == total_consort(list(report.consort.values()))
    assert report.total.adds_up() and all(counts.adds_up() for counts in report.consort.values())
    assert report.total.randomised == len(report.pooled.frame)


def test_report_pooled_refuses_a_pooled_folder_changed_since_pool_wrote_it(pooled, tmp_path, capsys):
    copy = tmp_path / "pooled"
    shutil.copytree(pooled, copy)
    results = copy / "results.csv"
    results.write_text(results.read_text() + "\n")  # one blank line more: the bytes differ
    assert run(["report", "--pooled", str(copy), "--out", str(tmp_path / "r.html")]) == 1
    assert "results.csv" in (error := capsys.readouterr().err) and "changed since fdkit pool" in error
    (tmp_path / "empty").mkdir()
    assert run(["report", "--pooled", str(tmp_path / "empty"), "--out", str(tmp_path / "r.html")]) == 1
    assert "pool.json" in capsys.readouterr().err


def test_report_pooled_refuses_single_site_options(pooled, tmp_path, capsys):
    command = ["report", "--pooled", str(pooled), "--records", "x", "--out", str(tmp_path / "r.html")]
    assert run(command) == 2
    assert "--records" in capsys.readouterr().err
    assert run(["report", "--out", str(tmp_path / "r.html")]) == 2
    assert "--pooled" in capsys.readouterr().err


# ---------------------------------------------------------------------- fdkit power --sites


def test_power_sites_writes_power_with_its_mc_se_and_the_mdes(tmp_path, capsys):
    out = tmp_path / "sites.csv"
    command = ["power", "--sites", "2,4", "--per-site", "45/105", "--reduction", "0,60", "--site-effect-sd", "0.1"]
    assert run([*command, "--sims", "60", "--permutations", "200", "--seed", "3", "--out", str(out)]) == 0
    table = pd.read_csv(out)
    assert table[["sites", "reduction"]].values.tolist() == [[2, 0], [2, 60], [4, 0], [4, 60]]
    assert (table["n_treated"] == 45 * table["sites"]).all() and (table["effect_sd"] == 0.1).all()
    assert np.allclose(table["power_se"], np.sqrt(table["power"] * (1 - table["power"]) / 60))
    assert table.groupby("sites")["mdes"].nunique().eq(1).all()
    assert "mdes" in capsys.readouterr().out
    assert table["coverage"].isna().all()  # sites with different true effects share no one ratio to cover


def test_power_sites_gives_the_pooled_intervals_coverage_when_the_effect_is_common(tmp_path, capsys):
    out = tmp_path / "sites.csv"
    command = ["power", "--sites", "3", "--per-site", "45/105", "--reduction", "40", "--no-mdes"]
    assert run([*command, "--sims", "200", "--permutations", "200", "--seed", "3", "--out", str(out)]) == 0
    row = pd.read_csv(out).iloc[0]
    assert row["coverage_se"] == pytest.approx(np.sqrt(row["coverage"] * (1 - row["coverage"]) / 200))
    assert 0.9 <= row["coverage"] <= 1.0  # about 0.95; tests/test_pool_calibration.py checks it closely
    assert "coverage" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--sites", "3"], "--per-site N_T/N_C"),
        (["--sites", "3", "--per-site", "45-105"], "--per-site N_T/N_C"),
        (["--sites", "1", "--per-site", "45/105"], "at least two sites"),
        (["--sites", "3", "--per-site", "45/105", "--n-treated", "45"], "--n-treated"),
        (["--sites", "3", "--per-site", "45/105", "--methods", "welch_t"], "--methods"),
        (["--sites", "3", "--per-site", "45/105", "--site-effect-sd", "-1"], "cannot be negative"),
    ],
)
def test_power_sites_usage_errors_exit_2(tmp_path, capsys, options, message):
    assert run(["power", *options, "--reduction", "25", "--out", str(tmp_path / "p.csv")]) == 2
    assert message in capsys.readouterr().err


def test_a_simulated_network_keeps_every_sites_places_and_sizes():
    from fdkit import design

    population = design.build_superpopulation()
    spec = design.SitesDesign(3, ((20, 40), (10, 50), (30, 30)), reduction=30, effect_sd=0.2, baseline_sd=0.3)
    networks = design.simulate_site_trials(population, spec, sims=5, seed=1)
    for number, (treated, control) in enumerate(spec.site_sizes):
        mine = networks.site == number
        assert networks.treated[mine].sum() == treated and (~networks.treated[mine]).sum() == control
    assert isinstance(networks.assignment, AssignmentDesign) and len(networks.assignment.block_names) == 6
    assert networks.site_ratio.shape == (5, 3) and np.allclose(
        np.median(np.log(networks.site_ratio)), np.log(0.7), atol=0.3
    )
    frames = networks.frames(0)
    assert list(frames) == ["site1", "site2", "site3"] and len(sites.pool_frame(frames)) == 180


# ------------------------------------------------------------------------- one protocol


def seal_with_plans(network, tmp_path, plans: dict) -> Path:
    """Copies of the towns re-randomised with `fdkit randomise --plan`, one plan per site (None: no plan)."""
    from fdkit import plan as plans_module

    root = copy_sites(network, tmp_path)
    for number, (name, chosen) in enumerate(plans.items()):
        folder = root / "sites" / name
        for old in ("allocation.csv", "allocation.seal.json", "engagement.csv"):
            (folder / old).unlink()  # engagement belonged to the synthetic allocation
        # A unit's own layout: the records in SITE/records, since nothing is written into a records folder.
        (folder / "records").mkdir()
        for moved in ("persons.csv", "events.csv", "manifest.json"):
            (folder / moved).rename(folder / "records" / moved)
        extra = []
        if chosen is not None:
            plans_module.write_plan(chosen, folder / "analysis-plan.toml")
            extra = ["--plan", str(folder / "analysis-plan.toml")]
        command = ["randomise", "--eligible", str(folder / "eligible.csv"), "--strata", "age_band"]
        command += ["--treat", "11-17=8", "--treat", "18-25=10", "--seed", str(100 + number)]
        assert run([*command, "--date", "2023-02-01", "--out", str(folder / "allocation.csv"), *extra]) == 0
    return root


def test_sites_sealed_with_one_protocol_pool_and_the_manifest_records_it(network, tmp_path, capsys):
    from fdkit.plan import Plan, fingerprint

    protocol = Plan(primary_outcome="knife_suspect", secondary_outcomes=("harm_suspect",), seed=4, permutations=300)
    # A field outside the protocol (the registration) may differ between sites.
    site_plans = {name: protocol for name in TOWNS} | {"southmoor": Plan(**{**protocol.to_dict(), "trial": "South"})}
    root = seal_with_plans(network, tmp_path, site_plans)
    assert run(["pool", *site_options(root), "--out", str(tmp_path / "out")]) == 0
    manifest = sites.read_pooled(tmp_path / "out").manifest
    assert manifest["settings"]["protocol"]["sha256"] == fingerprint(protocol)
    assert manifest["settings"]["primary"] == "knife_suspect" and manifest["settings"]["permutations"] == 300
    assert [site["plan"]["sha256"] for site in manifest["sites"]] == [fingerprint(p) for p in site_plans.values()]
    assert "knife_suspect, ratio of means" in capsys.readouterr().out
    # Holm and BH adjust over the protocol's family only (its primary and secondary outcome).
    results = sites.read_pooled(tmp_path / "out").results
    assert manifest["settings"]["family"] == ["knife_suspect", "harm_suspect"]
    in_family = results["outcome"].isin(["knife_suspect", "harm_suspect"])
    assert results.loc[in_family, "p_holm"].notna().all() and results.loc[~in_family, "p_holm"].isna().all()
    assert (~in_family).any()


def test_a_site_whose_plan_differs_on_the_primary_outcome_stops_pool_naming_the_site(network, tmp_path, capsys):
    from fdkit.plan import Plan

    knife_first = Plan(primary_outcome="knife_suspect", secondary_outcomes=("harm_suspect",))
    site_plans = {"northbridge": Plan(), "eastwick": Plan(), "southmoor": knife_first}
    root = seal_with_plans(network, tmp_path, site_plans)
    assert run(["pool", *site_options(root), "--out", str(tmp_path / "out")]) == 1
    error = capsys.readouterr().err
    assert "site southmoor" in error and "primary_outcome" in error and "site eastwick" not in error
    assert "Traceback" not in error and not (tmp_path / "out").exists()


def test_a_site_sealed_without_a_plan_cannot_join_sites_that_sealed_one(network, tmp_path, capsys):
    from fdkit.plan import Plan

    root = seal_with_plans(network, tmp_path, {"northbridge": Plan(), "eastwick": None, "southmoor": Plan()})
    assert run(["pool", *site_options(root), "--out", str(tmp_path / "out")]) == 1
    assert "site eastwick" in (error := capsys.readouterr().err) and "without an analysis plan" in error


def test_a_given_protocol_is_what_every_site_must_match(network, tmp_path, capsys):
    from fdkit.plan import Plan, write_plan

    root = seal_with_plans(network, tmp_path, {name: Plan() for name in TOWNS})
    write_plan(Plan(follow_up_months=6), tmp_path / "protocol.toml")
    command = ["pool", *site_options(root), "--protocol", str(tmp_path / "protocol.toml")]
    assert run([*command, "--out", str(tmp_path / "out")]) == 1
    error = capsys.readouterr().err
    assert all(f"site {name}" in error for name in TOWNS) and "follow_up_months: 12 against 6" in error
    assert run(["pool", *site_options(root), "--primary", "knife_suspect", "--out", str(tmp_path / "out")]) == 2
    assert "primary_outcome" in capsys.readouterr().err


def test_plan_differences_are_listed_field_by_field_on_the_protocol_fields_only():
    from fdkit.plan import Plan

    found = sites.protocol_differences(Plan(follow_up_months=6, seed=9, trial="x"), Plan())
    assert found == ["follow_up_months: 6 against 12"]


def test_settings_come_from_the_options_then_the_protocol_then_the_kit():
    from fdkit.plan import Plan

    assert sites.protocol_settings(None) == {
        "primary": "harm_suspect",
        "follow_up_months": 12,
        "seed": 1,
        "permutations": 4000,
        "alpha": 0.05,
        "family": None,
    }
    protocol = Plan(follow_up_months=6, seed=7, permutations=500, multiplicity_family=("harm_suspect", "knife_suspect"))
    found = sites.protocol_settings(protocol, seed=3)
    assert (found["follow_up_months"], found["seed"], found["permutations"]) == (6, 3, 500)
    assert found["family"] == ["harm_suspect", "knife_suspect"]
    with pytest.raises(sites.ProtocolDeparture, match="follow_up_months = 6"):
        sites.protocol_settings(protocol, follow_up_months=12)
    weights = pd.DataFrame({"offence_code": ["8G"], "weight": [10.0]})
    with pytest.raises(sites.FdkitDataError, match="harm_weights_sha256"):
        sites.protocol_settings(protocol, weights=weights)
    with pytest.raises(sites.FdkitDataError, match="inverts its randomisation test"):
        sites.protocol_settings(Plan(interval="bootstrap"))


def test_a_site_that_randomised_in_two_waves_is_re_drawn_within_each_wave(network, tmp_path):
    """A site folder with eligible-wave1.csv and eligible-wave2.csv: its seal is checked wave by wave."""
    root = copy_sites(network, tmp_path)
    folder = root / "sites" / "eastwick"
    for old in ("allocation.csv", "allocation.seal.json", "engagement.csv"):
        (folder / old).unlink()
    (folder / "records").mkdir()
    for moved in ("persons.csv", "events.csv", "manifest.json"):
        (folder / moved).rename(folder / "records" / moved)
    eligible = pd.read_csv(folder / "eligible.csv", dtype=str, keep_default_na=False)
    eligible.iloc[: len(eligible) // 2].to_csv(folder / "eligible-wave1.csv", index=False)
    eligible.to_csv(folder / "eligible-wave2.csv", index=False)
    (folder / "eligible.csv").unlink()
    for wave, (list_name, out, extra) in enumerate(
        [
            ("eligible-wave1.csv", "allocation-wave1.csv", []),
            ("eligible-wave2.csv", "allocation.csv", ["--previous", str(folder / "allocation-wave1.csv")]),
        ],
        start=1,
    ):
        command = ["randomise", "--eligible", str(folder / list_name), "--strata", "age_band"]
        command += ["--treat", "11-17=4", "--treat", "18-25=5", "--seed", str(wave), "--out", str(folder / out)]
        assert run([*command, "--date", f"2023-0{wave}-01", *extra]) == 0
    site = sites.load_site("eastwick", folder)
    assert len(site.allocation.waves) == 2
    pooled = sites.pool_frame({"eastwick": site.frame, "southmoor": frames_of(network)["southmoor"]})
    declared = analysis.assignment_design(pooled)
    waves_at_eastwick = {name.split(" / ")[0] for name in declared.block_names if "eastwick" in name}
    assert waves_at_eastwick == {"wave 1", "wave 2"} and int(declared.n_treated.sum()) == 2 * 9 + 18
    (folder / "eligible-wave2.csv").write_text((folder / "eligible-wave2.csv").read_text().replace("P0", "Q0", 1))
    with pytest.raises(sites.FdkitDataError, match="site eastwick"):
        sites.load_site("eastwick", folder)
