"""The trial report: numbers for people, the summary in words, the flow diagram, the page.

The browser checks (layout, print, overflow) are in ``test_browser.py``; these run anywhere.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fdkit import analysis, report, report_tables
from fdkit.cli import main
from fdkit.report_html import SECTIONS, report_to_html
from fdkit.resources import kit_path

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "synthetic"


# ------------------------------------------------------------------ formatting


@pytest.mark.parametrize(
    ("value", "text", "footnote"),
    [
        (math.inf, "unbounded", "unbounded"),
        (-math.inf, "unbounded", "unbounded"),
        (128.5, "more than 100", "over_100"),
        (100.04, "100.0", None),
        (-0.0001, "0.0", None),
        (-12.345, "-12.3", None),
        (float("nan"), "—", None),
        (None, "—", None),
    ],
)
def test_percentages_are_written_for_people(value, text, footnote):
    table = report_tables.PeopleTable(pd.DataFrame(), "caption")
    assert report_tables.format_pct(value, table) == text
    assert table.footnotes == ([footnote] if footnote else [])


def test_numbers_have_separators_and_no_negative_zero():
    assert report_tables.format_number(1234.56) == "1,234.6"
    assert report_tables.format_number(-0.04, 1) == "0.0"
    assert report_tables.format_number(-0.004, 2) == "0.00"


@pytest.mark.parametrize(
    ("p", "text"), [(0.0004, "< 0.001"), (0.0005, "0.001"), (0.0594, "0.059"), (1.0, "1.000"), (np.nan, "—")]
)
def test_p_values_have_three_decimals_or_less_than(p, text):
    assert report_tables.format_p(p) == text


def _results(**changes) -> pd.DataFrame:
    row = dict(
        outcome="harm_suspect",
        subgroup="all",
        method="ratio_of_means",
        n_treated=45,
        n_control=103,
        mean_treated=132.4,
        mean_control=504.6,
        pct_reduction=73.8,
        ci_low=-8.0,
        ci_high=87.5,
        p_value=0.059,
        p_holm=0.413,
        p_bh=0.413,
        note="",
    )
    row.update(changes)
    return pd.DataFrame([row])


def test_the_interval_label_comes_from_the_results_when_they_carry_one():
    plain = report_tables.results_for_people(_results(), "Caption.", "randomisation")
    assert "95% intervals: randomisation." in plain.caption
    labelled = report_tables.results_for_people(
        _results(interval="test_inversion", p_mcse=0.004), "Caption.", "randomisation"
    )
    assert "95% intervals: test inversion." in labelled.caption
    assert any("Monte Carlo standard error" in note and "0.004" in note for note in labelled.notes)


def test_unbounded_and_impossible_limits_are_footnoted_not_printed_raw():
    table = report_tables.results_for_people(
        _results(ci_low=-math.inf, ci_high=128.5, pct_reduction=100.0), "Caption.", "randomisation"
    )
    assert table.data.loc[0, "95% interval"] == "unbounded to more than 100"
    assert set(table.footnotes) == {"unbounded", "over_100"}


def test_methods_kept_by_name_only_are_footnoted_in_the_every_method_table():
    results = pd.concat([_results(), _results(method="welch_t")], ignore_index=True)
    assert report_tables.methods_for_people(results, "Caption.").footnotes == ["by_name"]
    assert report_tables.methods_for_people(_results(), "Caption.").footnotes == []


def test_a_row_without_an_interval_says_why():
    table = report_tables.results_for_people(
        _results(mean_treated=0.0, pct_reduction=100.0, ci_low=np.nan, ci_high=np.nan), "Caption.", "randomisation"
    )
    assert table.data.loc[0, "95% interval"] == "—"
    assert any("no events among those offered the intervention" in note for note in table.notes)


def test_the_seal_is_a_table_of_facts_without_dicts():
    seal = {
        "allocation_sha256": "a" * 64,
        "waves": [{"wave": 1, "capacities": {"11-17": 20, "18-25": 25}, "eligible_ids_sha256": "b" * 64}],
    }
    table = report_tables.seal_for_people(seal, True, "Caption.")
    cells = " ".join(table.data["Wave 1"])
    assert "11-17: 20; 18-25: 25" in cells and "{" not in cells and "b" * 64 in cells


# ------------------------------------------------------------------ the content


@pytest.fixture(scope="module")
def trial():
    settings = report.ReportSettings(
        records=SHIPPED,
        allocation=SHIPPED / "allocation.csv",
        funnel=SHIPPED / "funnel.csv",
        unit="Test unit",
        report_date="2024-03-01",
        registration="ISRCTN00000000",
    )
    return report.build_report(settings)


def test_the_flow_diagram_adds_up_and_counts_everyone(trial):
    counts, funnel = trial.consort, pd.read_csv(SHIPPED / "funnel.csv")
    allocation = pd.read_csv(SHIPPED / "allocation.csv")
    assert counts.adds_up()
    assert counts.assessed == funnel["remaining"].iloc[0]
    assert counts.excluded == funnel["excluded"].sum()
    assert (counts.treatment, counts.control) == tuple(allocation["arm"].value_counts()[["treatment", "control"]])
    engaged = pd.read_csv(SHIPPED / "engagement.csv")
    assert counts.engaged == int(engaged["engaged"].astype(str).str.lower().eq("true").sum())


def test_the_primary_result_is_the_engines_own_figure(trial):
    plan = trial.plan.plan  # the shipped allocation's sealed plan decides the seed and the re-draws
    direct = analysis.ratio_of_means(
        trial.frame, "harm_suspect", seed=plan.seed, permutations=plan.permutations, interval=plan.interval
    )
    primary = trial.primary
    assert primary["pct_reduction"] == pytest.approx(direct.pct_reduction)
    assert (primary["ci_low"], primary["ci_high"]) == pytest.approx((direct.ci_low, direct.ci_high))
    assert primary["p_value"] == pytest.approx(direct.p_value)


def test_the_summary_states_the_primary_result_in_words(trial):
    text = report.summary_text(trial)
    row = trial.primary
    assert text.startswith(
        "The primary outcome, fixed in the analysis plan sealed with the allocation on 2023-02-01, was crime harm "
        "as a suspect in the 12 months"
    )
    assert f"{report_tables.format_pct(row['pct_reduction'])}% less crime harm" in text
    assert f"p = {row['p_value']:.3f}" in text or "p < 0.001" in text
    assert "The 95% interval runs from" in text
    conclusive = row["p_value"] < 0.05
    assert ("not conclusive" in text) is (not conclusive)
    assert "does not show how large the effect would be elsewhere" in text
    assert "synthetic" in text


def test_an_increase_is_written_as_one_at_any_size(trial):
    worse = trial.headline.copy()
    primary = (worse["outcome"] == "harm_suspect") & (worse["subgroup"] == "all")
    worse.loc[primary, ["pct_reduction", "ci_low", "ci_high"]] = [-109.3, -788.6, 5.5]
    text = report.summary_text(replace(trial, headline=worse))
    assert "had 109.3% more crime harm" in text
    assert "runs from a 788.6% increase to a 5.5% reduction" in text


def test_another_primary_outcome_rewrites_the_summary(trial):
    knife = replace(trial, settings=replace(trial.settings, primary="knife_suspect"))
    text = report.summary_text(knife)
    assert text.startswith("This report's primary outcome is knife offences as a suspect")
    assert "not the trial's pre-specified answer" in text
    assert knife.overall["outcome"].iloc[0] == "knife_suspect"


def test_an_unknown_primary_outcome_is_refused_by_name(tmp_path, capsys):
    args = ["report", "--records", str(SHIPPED), "--allocation", str(SHIPPED / "allocation.csv")]
    with pytest.raises(SystemExit) as stop:  # a usage error: the option names no outcome
        main([*args, "--primary", "harm", "--out", str(tmp_path / "r.html")])
    assert stop.value.code == 2
    assert "unknown primary outcome 'harm'" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()


class _VisibleText(HTMLParser):
    """The text a reader sees, and every image's alt text."""

    def __init__(self):
        super().__init__()
        self.hidden, self.text, self.alts = 0, [], []

    def handle_starttag(self, tag, attrs):
        if tag in ("style", "script", "title"):
            self.hidden += 1
        if tag == "img":
            self.alts.append(dict(attrs).get("alt", ""))

    def handle_endtag(self, tag):
        if tag in ("style", "script", "title"):
            self.hidden -= 1

    def handle_data(self, data):
        if not self.hidden:
            self.text.append(data)


@pytest.fixture(scope="module")
def page(trial):
    return report_to_html(trial)


def test_the_page_is_self_contained_and_has_every_section(page):
    assert "<script" not in page.lower()
    assert not re.search(r'(src|href)="(https?:|//)', page)
    assert page.count('src="data:image/svg+xml;base64,') == 2  # flow diagram, forest plot
    for section in SECTIONS:
        assert f'<section id="{section}"' in page
    assert "Test unit" in page and "ISRCTN00000000" in page and "2024-03-01" in page


def test_the_page_shows_no_raw_numbers_or_code_names(page):
    parser = _VisibleText()
    parser.feed(page)
    text = " ".join(parser.text)
    assert not re.findall(r"(?<![\w-])(-?inf|nan|NaN|None)(?![\w-])", text)
    assert not re.findall(r"\b[a-z]+_[a-z0-9_]+\b", text)
    assert not re.search(r"(?<![\d.])-0(\.0+)?(?![.\d])", text) and "¶" not in text
    assert all(len(alt) > 60 for alt in parser.alts)
    assert "Synthetic data." in text and "Illustrative harm weights." in text


def test_the_page_carries_the_caveats_and_the_appendix(page, trial):
    for words in ("A small trial.", "Several outcomes.", "Detection bias.", "Illustrative harm weights."):
        assert words in page
    assert "Sensitivity analysis" in page and "Table A4" in page
    assert trial.seal["allocation_sha256"] in page  # never truncated


# ------------------------------------------------------------------ resources


def test_the_kits_folders_are_found_in_a_checkout():
    assert (kit_path("notebooks") / "00_start_here.ipynb").is_file()
    assert (kit_path("synthetic") / "events.csv").is_file()
    assert kit_path("docs/trainer-guide.md").is_file()
    with pytest.raises(ValueError, match="not one of the kit's folders"):
        kit_path("tests")
