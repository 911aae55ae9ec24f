"""Analyses follow the sealed plan: no options needed, departures refused or labelled, every CONSORT item answered."""

from __future__ import annotations

import dataclasses
import html
import io
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.multitest import multipletests

from fdkit import adherence, analysis, checklist, harm, outcomes, randomise, report
from fdkit import plan as plans
from fdkit.cli import main as cli_main
from fdkit.records import FdkitDataError, load_records
from fdkit.report_html import report_to_html

SHIPPED = Path(__file__).resolve().parents[1] / "synthetic"
TRIAL_FILES = ("allocation.csv", "allocation.seal.json", "eligible.csv", "analysis-plan.toml")


def main(argv: list[str]) -> int:
    try:
        return cli_main([str(a) for a in argv])
    except SystemExit as stop:
        return int(stop.code or 0)


@pytest.fixture
def shipped_copy(tmp_path):
    """The shipped allocation, its seal (with its plan), eligible list and plan file, in a folder of their own."""
    for name in TRIAL_FILES:
        shutil.copy(SHIPPED / name, tmp_path / name)
    return tmp_path / "allocation.csv"


def sealed_with(folder: Path, plan: plans.Plan) -> Path:
    """The shipped trial's allocation sealed anew, in ``folder``, with ``plan`` (the same people, the same arms)."""
    shutil.copy(SHIPPED / "eligible.csv", folder / "eligible.csv")
    plans.write_plan(plan, folder / "analysis-plan.toml")
    allocation = randomise.read_allocation(SHIPPED / "allocation.csv")
    randomise.write_allocation(allocation, folder / "allocation.csv", plan=plan)
    return folder / "allocation.csv"


def analyse(allocation: Path, *extra) -> list:
    return ["analyse", "--records", SHIPPED, "--allocation", allocation, "--out", allocation.parent / "r.csv", *extra]


def test_the_shipped_plan_drives_analyse_with_no_options(shipped_copy, capsys):
    assert main(analyse(shipped_copy)) == 0
    assert "every result is pre-specified" in capsys.readouterr().out
    table = pd.read_csv(shipped_copy.parent / "r.csv")
    assert set(table["plan"]) == {adherence.PRE_SPECIFIED}
    plan = randomise.sealed_plan(shipped_copy).plan
    frame = outcomes.build_frame(load_records(SHIPPED), randomise.read_allocation(shipped_copy))
    direct = analysis.ratio_of_means(frame, "harm_suspect", seed=plan.seed, permutations=plan.permutations)
    row = table[(table.outcome == "harm_suspect") & (table.subgroup == "all") & (table.method == "ratio_of_means")]
    assert row["p_value"].item() == pytest.approx(direct.p_value)
    assert (row["ci_low"].item(), row["ci_high"].item()) == pytest.approx((direct.ci_low, direct.ci_high))
    assert set(table["method"]) == set(plan.methods) and set(table["outcome"]) == set(plan.outcomes)


DEPARTURES = [
    (("--follow-up-months", "6"), "follow_up_months"),
    (("--seed", "5"), "seed"),
    (("--permutations", "500"), "permutations"),
    (("--resamples", "500"), "resamples"),
    (("--interval", "bootstrap"), "interval"),
    (("--methods", "ratio_of_means,welch_t"), "sensitivity_methods"),
    (("--methods", "welch_t"), "primary_method"),
]


@pytest.mark.parametrize(("option", "field"), DEPARTURES, ids=[" ".join(o) for o, _ in DEPARTURES])
def test_each_departing_option_without_deviate_exits_2_naming_the_field(shipped_copy, capsys, option, field):
    assert main(analyse(shipped_copy, *option)) == 2
    err = capsys.readouterr().err
    assert f"asks for {field} = " in err and "but the plan's is" in err and "--deviate" in err
    assert "Traceback" not in err
    assert not (shipped_copy.parent / "r.csv").exists()


def test_an_option_equal_to_the_plan_is_not_a_departure(shipped_copy):
    sealed = randomise.sealed_plan(shipped_copy)
    following = adherence.follow(sealed, {"follow_up_months": 12, "seed": sealed.plan.seed, "interval": None})
    assert following.departures == () and following.analysis == adherence.Analysis.of(sealed.plan)


def test_report_options_departing_from_the_plan_exit_2(tmp_path, capsys):
    allocation = sealed_with(tmp_path, plans.Plan(registration_id="ISRCTN12345678"))
    common = ["report", "--records", SHIPPED, "--allocation", allocation, "--out", tmp_path / "r.html"]
    for option, field in (
        (("--primary", "knife_suspect"), "primary_outcome"),
        (("--follow-up-months", "9"), "follow_up_months"),
        (("--seed", "3"), "seed"),
        (("--registration", "ISRCTN87654321"), "registration_id"),
    ):
        assert main([*common, *option]) == 2
        assert f"asks for {field} = " in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()
    assert main([*common, "--registration", "ISRCTN12345678", "--primary", "harm_suspect"]) == 0  # as planned


def _weights_file(folder: Path, name: str = "weights.csv") -> Path:
    path = folder / name
    path.write_text(harm.illustrative_weights()[["offence_code", "weight"]].to_csv(index=False, lineterminator="\n"))
    return path


def test_other_harm_weights_are_a_departure_that_touches_only_harm(shipped_copy, capsys):
    other = _weights_file(shipped_copy.parent, "other.csv")
    other.write_text(other.read_text().replace("\n8G,", "\n8G,1").replace("\n1,5475.0", "\n1,5000.0"))
    assert main(analyse(shipped_copy, "--harm-weights", other)) == 2
    assert "asks for harm_weights_sha256 = " in capsys.readouterr().err
    assert main(analyse(shipped_copy, "--harm-weights", other, "--deviate", "the force's own weights")) == 0
    table = pd.read_csv(shipped_copy.parent / "r.csv")
    labelled = table.loc[table["plan"] == adherence.NOT_PRE_SPECIFIED, "outcome"]
    assert set(labelled) == {"harm_suspect"} and (table["outcome"] == "harm_suspect").sum() == len(labelled)


def test_weights_the_plan_pins_that_changed_after_sealing_stop_the_analysis(tmp_path, capsys):
    weights = _weights_file(tmp_path)
    plan = plans.parse_plan('primary_outcome = "harm_suspect"\nharm_weights = "weights.csv"\n', folder=tmp_path)
    allocation = sealed_with(tmp_path, plan)
    assert main(analyse(allocation)) == 0  # the file is beside the allocation, as sealed
    weights.write_text(weights.read_text().replace("\n1,5475.0", "\n1,10.0"))
    assert main(["verify", "--eligible", tmp_path / "eligible.csv", allocation]) == 1
    assert "harm_weights: weights.csv has changed since the plan was written" in capsys.readouterr().err
    assert main(analyse(allocation, "--unsealed", "--force")) == 1
    assert "harm_weights: weights.csv has changed since the plan was sealed" in capsys.readouterr().err
    assert main(analyse(allocation, "--unsealed", "--force", "--deviate", "corrected murder weight")) == 0


def test_a_plan_weights_file_missing_beside_the_allocation_says_how_to_give_it(tmp_path, capsys):
    _weights_file(tmp_path)
    plan = plans.parse_plan('primary_outcome = "harm_suspect"\nharm_weights = "weights.csv"\n', folder=tmp_path)
    allocation = sealed_with(tmp_path, plan)
    moved = tmp_path / "kept" / "weights.csv"
    moved.parent.mkdir()
    (tmp_path / "weights.csv").rename(moved)
    assert main(analyse(allocation)) == 1
    assert "give it with --harm-weights FILE" in capsys.readouterr().err
    assert main(analyse(allocation, "--harm-weights", moved)) == 0  # the same table: no departure
    assert set(pd.read_csv(tmp_path / "r.csv")["plan"]) == {adherence.PRE_SPECIFIED}


def _results_like() -> pd.DataFrame:
    """Rows of every outcome x method x subgroup, as a results table has them."""
    rows = [
        {"outcome": o, "method": m, "subgroup": s}
        for o in outcomes.OUTCOME_NAMES
        for m in ("ratio_of_means", "mann_whitney", "poisson_robust", "welch_t")
        for s in ("all", "11-17", "18-25")
    ]
    return pd.DataFrame(rows)


@pytest.mark.parametrize(
    ("given", "touched"),
    [
        ({"follow_up_months": 6}, lambda t: np.ones(len(t), bool)),
        ({"seed": 9}, lambda t: t["method"].isin(["ratio_of_means", "poisson_robust"])),
        ({"permutations": 999}, lambda t: t["method"].isin(["ratio_of_means", "poisson_robust"])),
        ({"interval": "bootstrap"}, lambda t: t["method"] == "ratio_of_means"),
        (
            {"methods": ("ratio_of_means", "mann_whitney", "poisson_robust", "welch_t")},
            lambda t: t["method"] == "welch_t",
        ),
        ({"primary_outcome": "knife_suspect"}, lambda t: t["outcome"].isin(["harm_suspect", "knife_suspect"])),
        ({"resamples": 500}, lambda t: np.zeros(len(t), bool)),  # the plan's interval does not resample
        ({"resamples": 500, "interval": "bootstrap"}, lambda t: t["method"] == "ratio_of_means"),
    ],
)
def test_a_departure_labels_exactly_the_results_it_changes(shipped_copy, given, touched):
    sealed = randomise.sealed_plan(shipped_copy)
    table = _results_like()
    labelled = adherence.follow(sealed, given, reason="testing").label(table)
    expected = np.asarray(touched(table), dtype=bool)
    assert (labelled["plan"] == adherence.NOT_PRE_SPECIFIED).to_numpy().tolist() == expected.tolist()
    fields = {name.replace("methods", "sensitivity_methods") for name in given}
    assert all(set(named.split("; ")) <= fields for named in labelled.loc[expected, "departs_from"])
    assert (labelled.loc[~expected, "departs_from"] == "").all()


def test_the_plans_family_is_adjusted_and_no_other_outcome(tmp_path):
    family = ("harm_suspect", "knife_suspect", "violence_victim")
    plan = plans.Plan(multiplicity_family=family, permutations=200, sensitivity_methods=())
    frame = outcomes.build_frame(load_records(SHIPPED), randomise.read_allocation(SHIPPED / "allocation.csv"))
    table = adherence.results(frame, adherence.Analysis.of(plan))
    overall = table[table["subgroup"] == "all"].set_index("outcome")
    expected = multipletests(overall.loc[list(family), "p_value"], method="holm")[1]
    assert overall.loc[list(family), "p_holm"].to_numpy() == pytest.approx(expected)
    assert overall.drop(index=list(family))["p_holm"].isna().all()


def test_an_allocation_without_a_plan_is_analysed_as_before(tmp_path, capsys):
    shutil.copy(SHIPPED / "eligible.csv", tmp_path / "eligible.csv")
    randomise.write_allocation(randomise.read_allocation(SHIPPED / "allocation.csv"), tmp_path / "allocation.csv")
    args = analyse(tmp_path / "allocation.csv", "--permutations", "200", "--seed", "4")
    assert main(args) == 0
    assert "no analysis plan was sealed" in capsys.readouterr().out
    table = pd.read_csv(tmp_path / "r.csv")
    assert list(table.columns) == [*analysis.RESULT_COLUMNS, "note"]  # no plan columns
    frame = outcomes.build_frame(load_records(SHIPPED), randomise.read_allocation(tmp_path / "allocation.csv"))
    direct = analysis.results_table(frame, seed=4, permutations=200)
    pd.testing.assert_frame_equal(table, pd.read_csv(io.StringIO(direct.to_csv(index=False))))


# --------------------------------------------------------------------------------- the report


@pytest.fixture(scope="module")
def shipped_report():
    settings = report.ReportSettings(SHIPPED, SHIPPED / "allocation.csv", funnel=SHIPPED / "funnel.csv")
    return report.build_report(settings)


def _visible(page: str) -> str:
    text = re.sub(r"<style.*?</style>|<[^>]+>", " ", page, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(text))


def test_the_shipped_report_says_there_are_no_changes_to_the_plan(shipped_report):
    text = _visible(report_to_html(shipped_report))
    assert "Changes to the plan: none." in text
    assert shipped_report.plan.sha256 in text and "2023-02-01" in text
    assert f"({adherence.NOT_PRE_SPECIFIED})" not in text  # no result is marked


def test_the_report_lists_each_departure_with_its_reason_and_labels_the_rows(tmp_path):
    allocation = sealed_with(tmp_path, plans.Plan(subgroups=("11-17", "18-25")))
    reason = "The board asked for six months after the twelve-month results"
    settings = report.ReportSettings(SHIPPED, allocation, follow_up_months=6, seed=2, deviation=reason)
    built = report.build_report(settings)
    assert [d.field for d in built.following.departures] == ["follow_up_months", "seed"]
    text = _visible(report_to_html(built))
    assert f"The reason given: {reason}" in text
    assert "Follow-up : the plan gives 12 months" in text.replace("</strong>", "")
    assert "Crime harm as a suspect (not pre-specified)" in text
    assert "This report's primary outcome is crime harm as a suspect in the 6 months" in text
    assert set(built.headline["plan"]) == {adherence.NOT_PRE_SPECIFIED}
    with pytest.raises(adherence.PlanDeparted, match="follow_up_months"):
        report.build_report(dataclasses.replace(settings, deviation=""))


def test_a_report_without_a_plan_says_so(tmp_path):
    shutil.copy(SHIPPED / "eligible.csv", tmp_path / "eligible.csv")
    randomise.write_allocation(randomise.read_allocation(SHIPPED / "allocation.csv"), tmp_path / "allocation.csv")
    built = report.build_report(report.ReportSettings(SHIPPED, tmp_path / "allocation.csv", permutations=200))
    text = _visible(report_to_html(built))
    assert "No plan was sealed" in text and "none was sealed with the allocation" in text
    items = checklist.checklist(built).set_index("item")
    assert items.loc["10", "status"] == checklist.NOT_AVAILABLE
    assert "no analysis plan was sealed" in items.loc["10", "note"]


def test_the_checklist_covers_all_30_items_of_consort_2025(shipped_report):
    items = checklist.checklist(shipped_report)
    numbers = {int(re.match(r"\d+", item).group()) for item in items["item"]}
    assert numbers == set(range(1, 31)) and len(items) == 42
    assert set(items["status"]) <= {checklist.FILLED, checklist.SUPPLIED, checklist.NOT_AVAILABLE}
    from fdkit.report_html import HEADINGS, SECTIONS

    assert set(items["section"]) <= set(SECTIONS) | {"title"} and set(HEADINGS) >= set(items["section"])
    page = report_to_html(shipped_report)
    for section in set(items["section"]) - {"title"}:
        assert f'<section id="{section}"' in page
    assert 'id="title"' in page and "Table A6. The CONSORT 2025 checklist" in page


def test_statements_from_report_toml_fill_their_items(tmp_path, shipped_report):
    path = tmp_path / "report.toml"
    path.write_text('funding = "The Home Office, which had no part in the analysis."\nblinding = """None:\nopen."""\n')
    statements = checklist.read_statements(path)
    assert statements["blinding"] == "None: open."
    filled = dataclasses.replace(shipped_report, statements=statements)
    items = checklist.checklist(filled).set_index("item")
    assert items.loc["5a", "status"] == items.loc["20a", "status"] == checklist.SUPPLIED
    assert items.loc["4", "status"] == checklist.NOT_AVAILABLE
    assert "The Home Office, which had no part in the analysis." in report_to_html(filled)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('fundng = "x"\n', "fundng: not a statement a report takes (did you mean funding?)"),
        ("funding = 3\n", "funding: must be text"),
        ('funding = ""\n', "funding: must be text"),
        ("funding = [\n", "not a readable TOML file"),
    ],
)
def test_a_bad_report_toml_is_refused_naming_the_key(tmp_path, text, words):
    path = tmp_path / "report.toml"
    path.write_text(text)
    with pytest.raises(FdkitDataError, match=re.escape(words)):
        checklist.read_statements(path)


def test_the_report_toml_template_reads_back_once_filled(tmp_path, capsys):
    assert main(["plan", "--report-template"]) == 0
    template = capsys.readouterr().out
    filled = re.sub(r'^# (\w+) = ""$', r'\1 = "something true"', template, flags=re.MULTILINE)
    path = tmp_path / "report.toml"
    path.write_text(filled)
    assert set(checklist.read_statements(path)) == set(checklist.STATEMENTS)


def test_a_planned_subgroup_no_one_is_in_is_refused_not_dropped():
    frame = outcomes.build_frame(load_records(SHIPPED), randomise.read_allocation(SHIPPED / "allocation.csv"))
    run = adherence.Analysis.of(plans.Plan(subgroups=("11-17", "26-30"), permutations=100))
    with pytest.raises(FdkitDataError, match="subgroups: the plan names '26-30', which no one randomised is in"):
        adherence.results(frame, run)
