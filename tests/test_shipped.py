"""The synthetic records committed under synthetic/ are exactly what `fdkit synth` writes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from fdkit import eligibility, load_records
from fdkit.cli import main

SHIPPED = Path(__file__).resolve().parents[1] / "synthetic"


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "records"
    assert main(["synth", "--out", str(out)]) == 0
    return out


#: Files that record the version of fdkit that wrote them (the seal, and the manifest's hash of it).
VERSIONED = {"allocation.seal.json", "manifest.json"}


def without_version(folder: Path, name: str) -> dict:
    """A versioned file's content with the fdkit version that wrote it set aside."""
    content = json.loads((folder / name).read_text())
    if name == "allocation.seal.json":
        assert content.pop("fdkit_version")
    else:
        content["files"].pop("allocation.seal.json")
    return content


def test_fdkit_synth_reproduces_the_shipped_folder_byte_for_byte(regenerated):
    shipped = sorted(p.name for p in SHIPPED.iterdir())
    assert sorted(p.name for p in regenerated.iterdir()) == shipped
    for name in shipped:
        if name in VERSIONED:  # identical but for the version of the code that regenerated it
            assert without_version(regenerated, name) == without_version(SHIPPED, name), name
        else:
            assert (regenerated / name).read_bytes() == (SHIPPED / name).read_bytes(), name


def test_manifest_checksums_match_the_files():
    manifest = json.loads((SHIPPED / "manifest.json").read_text())
    for name, entry in manifest["files"].items():
        assert hashlib.sha256((SHIPPED / name).read_bytes()).hexdigest() == entry["sha256"], name
    assert set(manifest["files"]) | {"manifest.json"} == {p.name for p in SHIPPED.iterdir()}


def test_shipped_records_are_small_and_valid():
    assert sum(p.stat().st_size for p in SHIPPED.iterdir()) < 8 * 2**20
    records = load_records(SHIPPED)
    assert len(records.persons) > 10_000


def test_the_trial_rule_finds_a_cohort_of_the_trial_size():
    """Calibration: 120-200 eligible on 2023-02-01, with room for 20 aged 11-17 and 25 aged 18-25."""
    result = eligibility.screen(load_records(SHIPPED), "2023-02-01")
    bands = result.eligible["age_band"].value_counts()
    assert 120 <= len(result.eligible) <= 200
    assert bands["11-17"] >= 20 and bands["18-25"] >= 25


def test_writing_over_a_trial_folder_is_refused_even_with_force(regenerated, capsys):
    # The folder holds a sealed allocation, which is never replaced (exit 2, a usage error).
    before = (regenerated / "allocation.csv").read_bytes()
    assert main(["synth", "--out", str(regenerated)]) == 2
    assert main(["synth", "--out", str(regenerated), "--force"]) == 2
    assert "sealed allocation" in capsys.readouterr().err
    assert (regenerated / "allocation.csv").read_bytes() == before


def test_the_shipped_trial_follows_its_sealed_plan_and_its_report_shows_no_changes(tmp_path, capsys):
    import html
    import re

    assert main(["verify", "--eligible", str(SHIPPED / "eligible.csv"), str(SHIPPED / "allocation.csv")]) == 0
    assert "the analysis plan analysis-plan.toml sealed on 2023-02-01" in capsys.readouterr().out
    page = tmp_path / "report.html"
    command = ["report", "--records", str(SHIPPED), "--allocation", str(SHIPPED / "allocation.csv")]
    assert main([*command, "--funnel", str(SHIPPED / "funnel.csv"), "--out", str(page)]) == 0
    assert "every result is pre-specified" in capsys.readouterr().out
    text = re.sub(r"\s+", " ", html.unescape(re.sub(r"<style.*?</style>|<[^>]+>", " ", page.read_text(), flags=re.S)))
    assert "Changes to the plan: none." in text
    assert "None: no trial was run" in text  # the shipped report.toml beside the allocation, found without options
