"""The trial's front half on the command line: screen, randomise, verify."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from builders import randomise_command

from fdkit.analysis import RESULT_COLUMNS
from fdkit.cli import build_parser, main

SHIPPED = Path(__file__).resolve().parents[1] / "synthetic"


@pytest.fixture()
def eligible(tmp_path):
    out = tmp_path / "eligible.csv"
    code = main(
        [
            "screen",
            "--records",
            str(SHIPPED),
            "--reference-date",
            "2023-02-01",
            "--out",
            str(out),
            "--funnel-out",
            str(tmp_path / "funnel.csv"),
        ]
    )
    assert code == 0
    return out


def test_screen_writes_the_eligible_people_and_funnel(tmp_path, capsys):
    out = tmp_path / "eligible.csv"
    assert (
        main(
            [
                "screen",
                "--records",
                str(SHIPPED),
                "--reference-date",
                "2023-02-01",
                "--out",
                str(out),
                "--funnel-out",
                str(tmp_path / "funnel.csv"),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    table = pd.read_csv(out)
    funnel = pd.read_csv(tmp_path / "funnel.csv")
    assert f"{len(table)} eligible" in printed
    assert funnel["remaining"].iloc[-1] == len(table)
    assert {"person_id", "age", "age_band", "index_crimes", "other_crimes"} <= set(table.columns)


def test_randomise_then_verify_then_refuse_to_overwrite(eligible, tmp_path, capsys):
    allocation = tmp_path / "allocation.csv"
    assert main(randomise_command(eligible, allocation, seed=5)) == 0
    assert (tmp_path / "allocation.seal.json").is_file()
    assert main(["verify", "--eligible", str(eligible), str(allocation)]) == 0
    before = allocation.read_bytes()
    assert main(randomise_command(eligible, allocation, seed=5)) == 2
    assert "never overwritten" in capsys.readouterr().err
    assert allocation.read_bytes() == before


def test_verify_fails_on_a_tampered_row(eligible, tmp_path, capsys):
    allocation = tmp_path / "allocation.csv"
    main(randomise_command(eligible, allocation, seed=5))
    table = pd.read_csv(allocation, dtype=str)
    first_control = table.index[table["arm"] == "control"][0]
    table.loc[first_control, "arm"] = "treatment"
    table.to_csv(allocation, index=False, lineterminator="\n")
    capsys.readouterr()
    assert main(["verify", "--eligible", str(eligible), str(allocation)]) == 1
    err = capsys.readouterr().err
    assert "does not hold" in err and table.loc[first_control, "person_id"] in err


def test_shuffled_eligible_rows_give_the_same_allocation(eligible, tmp_path):
    shuffled = tmp_path / "shuffled.csv"
    pd.read_csv(eligible, dtype=str).sample(frac=1, random_state=2).to_csv(shuffled, index=False)
    main(randomise_command(eligible, tmp_path / "a.csv", seed=5))
    main(randomise_command(shuffled, tmp_path / "b.csv", seed=5))
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


def test_bad_capacity_is_a_data_error_and_bad_usage_exits_2(eligible, tmp_path, capsys):
    args = randomise_command(eligible, tmp_path / "x.csv", seed=5, under_18s=999)
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "capacity of 999" in err and "Traceback" not in err
    with pytest.raises(SystemExit) as stop:
        main(
            [
                "randomise",
                "--eligible",
                str(eligible),
                "--treat",
                "11-17",
                "--seed",
                "1",
                "--date",
                "2023-02-01",
                "--out",
                str(tmp_path / "y.csv"),
            ]
        )
    assert stop.value.code == 2
    with pytest.raises(SystemExit) as stop:
        main(["screen", "--records", str(SHIPPED), "--reference-date", "01/02/2023", "--out", "z.csv"])
    assert stop.value.code == 2


@pytest.mark.parametrize(
    "command",
    [
        "validate",
        "synth",
        "screen",
        "plan",
        "randomise",
        "verify",
        "analyse",
        "power",
        "report",
        "pseudonymise",
        "workshop",
    ],
)
def test_every_command_shows_an_example_in_its_help(command):
    subparsers = next(a for a in build_parser()._actions if a.dest == "command")
    assert "example" in subparsers.choices[command].format_help()


def test_analyse_writes_the_results_table_and_frame(tmp_path, capsys):
    out, frame_out = tmp_path / "results.csv", tmp_path / "frame.csv"
    code = main(
        [
            "analyse",
            "--records",
            str(SHIPPED),
            "--allocation",
            str(SHIPPED / "allocation.csv"),
            "--out",
            str(out),
            "--frame-out",
            str(frame_out),
        ]
    )  # no analysis options: the shipped allocation's sealed plan decides them
    assert code == 0
    results, frame = pd.read_csv(out), pd.read_csv(frame_out)
    assert list(results.columns) == [*RESULT_COLUMNS, "note", "plan", "departs_from"]
    assert set(results["plan"]) == {"pre-specified"} and results["departs_from"].isna().all()
    assert set(results["subgroup"]) == {"all", "11-17", "18-25"}
    assert len(frame) == 148 and (frame["arm"] == "treatment").sum() == 45
    harm = results[
        (results.outcome == "harm_suspect") & (results.subgroup == "all") & (results.method == "ratio_of_means")
    ]
    treated = frame.loc[frame.arm == "treatment", "harm_suspect"].mean()
    control = frame.loc[frame.arm == "control", "harm_suspect"].mean()
    assert harm["pct_reduction"].item() == pytest.approx(100 * (1 - treated / control))
    assert "ratio of means" in capsys.readouterr().out


def test_analyse_can_report_the_bootstrap_interval_by_name(tmp_path):
    common = [
        "analyse",
        "--records",
        str(SHIPPED),
        "--allocation",
        str(SHIPPED / "allocation.csv"),
        "--seed",
        "1",
        "--resamples",
        "200",
        "--permutations",
        "200",
        "--deviate",
        "comparing the two intervals, with fewer re-draws",
    ]
    assert main([*common, "--out", str(tmp_path / "b.csv"), "--interval", "bootstrap"]) == 0
    assert main([*common, "--out", str(tmp_path / "r.csv")]) == 0
    key = ["outcome", "subgroup", "method"]
    boot = pd.read_csv(tmp_path / "b.csv").set_index(key)
    rand = pd.read_csv(tmp_path / "r.csv").set_index(key)
    harm = ("harm_suspect", "all", "ratio_of_means")
    assert boot.loc[harm, "p_value"] == rand.loc[harm, "p_value"]
    assert boot.loc[harm, "ci_low"] != rand.loc[harm, "ci_low"]
    assert rand.loc[harm, "interval"].startswith("inverts") and "bootstrap" in boot.loc[harm, "interval"]
    # The default: every interval excludes 0 exactly when its p < 0.05 (or the row has a note saying why not).
    shown = rand[rand["ci_low"].notna() & rand["note"].isna()]
    assert ((shown["ci_low"] > 0) | (shown["ci_high"] < 0)).eq(shown["p_value"] < 0.05).all()
    assert (rand["ci_high"].dropna() <= 100).all()


def test_analyse_refuses_a_follow_up_beyond_the_records(tmp_path, capsys):
    code = main(
        [
            "analyse",
            "--records",
            str(SHIPPED),
            "--allocation",
            str(SHIPPED / "allocation.csv"),
            "--out",
            str(tmp_path / "r.csv"),
            "--follow-up-months",
            "18",
            "--deviate",
            "a longer follow-up than the plan's",
        ]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert "follow-up ends after the last recorded event" in err and "Traceback" not in err


def test_power_writes_the_diagnosis_with_the_named_columns(tmp_path, capsys):
    out = tmp_path / "power.csv"
    code = main(
        [
            "power",
            "--n-treated",
            "45,90",
            "--n-control",
            "105,210",
            "--reduction",
            "0,54",
            "--sims",
            "50",
            "--seed",
            "1",
            "--out",
            str(out),
            "--permutations",
            "200",
        ]
    )
    assert code == 0
    table = pd.read_csv(out)
    assert list(table.columns) == [
        "outcome",
        "n_treated",
        "n_control",
        "reduction",
        "method",
        "sims",
        *(
            c
            for name in ("power", "reject_reduction", "reject_increase", "bias", "rmse", "coverage", "type_s", "type_m")
            for c in (name, f"{name}_se")
        ),
    ]
    assert (table["power"] == table["reject_reduction"] + table["reject_increase"]).all()
    assert table[["n_treated", "n_control", "reduction"]].values.tolist() == [
        [45, 105, 0.0],
        [45, 105, 54.0],
        [90, 210, 0.0],
        [90, 210, 54.0],
    ]
    assert table.loc[table.reduction == 0, "type_m"].isna().all()


def test_power_plans_for_an_increase_too(tmp_path, capsys):
    out = tmp_path / "increase.csv"
    argv = ["power", "--n-treated", "45", "--n-control", "103", "--reduction=-25", "--sims", "40"]
    assert main([*argv, "--permutations", "200", "--out", str(out)]) == 0
    row = pd.read_csv(out).iloc[0]
    assert row["reduction"] == -25 and row["outcome"] == "harm_suspect"


def test_power_calibration_prints_each_tail_and_each_coverage(tmp_path, capsys):
    out = tmp_path / "calibration.csv"
    argv = ["power", "--calibration", "--n-treated", "45", "--n-control", "103", "--sims", "30"]
    assert main([*argv, "--outcome", "knife_suspect", "--permutations", "200", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "false alarms" in printed and "interval covers" in printed and "25% more" in printed
    table = pd.read_csv(out)
    assert sorted(set(table["reduction"])) == [-25, 0, 40, 54, 70]
    assert set(table["method"]) == {"ratio_of_means", "mann_whitney", "poisson_robust"}
    with pytest.raises(SystemExit) as stop:
        main([*argv, "--reduction", "40", "--out", str(tmp_path / "both.csv")])
    assert stop.value.code == 2


def test_power_rejects_unpaired_sizes(tmp_path):
    with pytest.raises(SystemExit) as stop:
        main(
            [
                "power",
                "--n-treated",
                "45,90",
                "--n-control",
                "105",
                "--reduction",
                "54",
                "--out",
                str(tmp_path / "p.csv"),
            ]
        )
    assert stop.value.code == 2
