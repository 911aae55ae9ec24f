"""The whole pipeline on the command line, in a temporary folder: synth to report."""

from __future__ import annotations

import re

import pandas as pd
from builders import randomise_command

from fdkit.cli import main


def test_synth_validate_screen_randomise_verify_analyse_report(tmp_path, capsys):
    records = tmp_path / "records"
    assert main(["synth", "--out", str(records)]) == 0
    assert main(["validate", str(records)]) == 0
    eligible, funnel = tmp_path / "eligible.csv", tmp_path / "funnel.csv"
    assert (
        main(
            [
                "screen",
                "--records",
                str(records),
                "--reference-date",
                "2023-02-01",
                "--out",
                str(eligible),
                "--funnel-out",
                str(funnel),
            ]
        )
        == 0
    )
    allocation = tmp_path / "allocation.csv"
    assert main(randomise_command(eligible, allocation, seed=99)) == 0
    assert main(["verify", "--eligible", str(eligible), str(allocation)]) == 0
    results = tmp_path / "results.csv"
    assert (
        main(
            [
                "analyse",
                "--records",
                str(records),
                "--allocation",
                str(allocation),
                "--out",
                str(results),
                "--resamples",
                "200",
                "--permutations",
                "200",
            ]
        )
        == 0
    )
    page = tmp_path / "report.html"
    assert (
        main(
            [
                "report",
                "--records",
                str(records),
                "--allocation",
                str(allocation),
                "--funnel",
                str(funnel),
                "--out",
                str(page),
            ]
        )
        == 0
    )

    html = page.read_text()
    assert "<script" not in html.lower() and not re.search(r'(src|href)="https?:', html)
    assert html.count("data:image/svg+xml;base64") >= 2  # CONSORT flow diagram, forest plot
    for heading in ("Summary", "The flow of people through the trial", "Primary outcome", "Limitations", "Appendix"):
        assert f">{heading}</h2>" in html
    allocated = pd.read_csv(allocation)
    n_control = int((allocated["arm"] == "control").sum())
    assert f"Mean, usual services (n = {n_control})" in html  # the results table's arm sizes
    assert "The allocation file is unchanged since it was sealed." in html
    table = pd.read_csv(results)
    harm = table[(table.outcome == "harm_suspect") & (table.subgroup == "all") & (table.method == "ratio_of_means")]
    assert f">{harm['mean_control'].item():,.1f}</td>" in html
