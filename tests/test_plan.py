"""The analysis plan: every field checked, a fingerprint of its values alone, sealed with the allocation."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
from builders import randomise_command

from fdkit import harm, randomise
from fdkit import plan as plans
from fdkit.cli import main as cli_main
from fdkit.records import FdkitDataError

SHIPPED = Path(__file__).resolve().parents[1] / "synthetic"


def main(argv: list[str]) -> int:
    """The exit code of ``fdkit ARGV``, usage errors (which argparse and the commands raise) included."""
    try:
        return cli_main(argv)
    except SystemExit as stop:
        return int(stop.code or 0)


#: A wrong value for every field that can be wrong, with words the message must hold.
BAD_VALUES = [
    ("plan_format", 2, "must be 1"),
    ("trial", "line one\nline two", "one line"),
    ("registration_id", "ISRCTN123", "ISRCTN and 8 digits"),
    ("registration_id", "has spaces in it", "registry identifier"),
    ("protocol_url", "my drawer", "web address"),
    ("primary_outcome", "harm", "unknown outcome 'harm'"),
    ("primary_outcome", "knife_suspect_all", "unknown outcome"),
    ("secondary_outcomes", ("knife_suspect", "knife"), "unknown outcome 'knife'"),
    ("secondary_outcomes", ("knife_suspect", "knife_suspect"), "more than once"),
    ("secondary_outcomes", ("harm_suspect",), "primary outcome"),
    ("follow_up_months", 0, "from 1 to 120; got 0"),
    ("follow_up_months", 12.5, "whole number"),
    ("follow_up_months", True, "whole number"),
    ("baseline_months", 121, "from 1 to 120"),
    ("day_rule", "last-day-in", "unknown day rule"),
    ("primary_method", "welch_t", "ratio_of_means"),
    ("sensitivity_methods", ("bayes",), "unknown method 'bayes'"),
    ("sensitivity_methods", ("ratio_of_means",), "primary method"),
    ("interval", "wald", "unknown interval"),
    ("alpha", 0.1, "must be 0.05"),
    ("seed", -1, "from 0"),
    ("permutations", 10, "from 100"),
    ("resamples", 10**7, "to 1,000,000"),
    ("multiplicity_family", ("knife_suspect_all",), "re-measures"),
    ("multiplicity_family", ("harm_suspect", "nope"), "unknown outcome"),
    ("multiplicity_adjustment", "bonferroni", "unknown adjustment"),
    ("subgroups", ("all",), "not a stratum name"),
    ("subgroups", ("11-17", "11-17"), "more than once"),
    ("subgroups", ("=cmd",), "formula"),
    ("cace", "yes", "true or false"),
    ("harm_weights_sha256", "abc", "SHA-256"),
    ("offence_lookup_sha256", "xyz", "SHA-256"),
]


def test_the_default_plan_is_the_trials_analysis_and_reads_back_equal():
    plan = plans.Plan()
    assert plan.outcomes[0] == "harm_suspect" and plan.follow_up_months == 12 and plan.baseline_months == 24
    assert "knife_suspect_all" in plan.secondary_outcomes and "knife_suspect_all" not in plan.multiplicity_family
    assert plan.harm_weights_sha256 == harm.weights_sha256()
    for comments in (True, False):
        assert plans.parse_plan(plan.to_toml(comments=comments)) == plan


def test_every_field_is_in_the_file_and_in_the_fingerprint():
    text = plans.Plan().to_toml()
    for name in plans.FIELDS:
        assert f"\n{name} = " in text, name
    changed = {
        "trial": "Another trial",
        "registration_id": "ISRCTN12345678",
        "protocol_url": "https://example.org/protocol",
        "primary_outcome": {
            "primary_outcome": "knife_suspect",
            "secondary_outcomes": ("harm_suspect",),
            "multiplicity_family": ("knife_suspect",),
        },
        "secondary_outcomes": {
            "secondary_outcomes": ("violence_suspect",),
            "multiplicity_family": ("harm_suspect", "violence_suspect"),
        },
        "follow_up_months": 6,
        "baseline_months": 12,
        "sensitivity_methods": ("welch_t",),
        "interval": "bootstrap",
        "seed": 7,
        "permutations": 999,
        "resamples": 500,
        "multiplicity_family": ("harm_suspect",),
        "multiplicity_adjustment": "none",
        "subgroups": ("11-17",),
        "cace": False,
        "harm_weights_sha256": "0" * 64,
        "offence_lookup_sha256": "1" * 64,
    }
    fixed = {"plan_format", "day_rule", "primary_method", "alpha", "harm_weights", "offence_lookup"}
    assert set(changed) | fixed == set(plans.FIELDS)  # a new field must be added here too
    base = plans.Plan()
    for name, value in changed.items():
        other = dataclasses.replace(base, **(value if isinstance(value, dict) else {name: value}))
        assert plans.fingerprint(other) != plans.fingerprint(base), name
        assert name in [d.field for d in plans.differences(base, other)]


def test_the_fingerprint_ignores_comments_spacing_and_order():
    plan = plans.Plan(subgroups=("11-17", "18-25"))
    lines = [line for line in plan.to_toml(comments=False).splitlines() if line]
    shuffled = "# my own notes\n\n" + "\n".join(f"  {line}   # why" for line in reversed(lines)) + "\n"
    assert plans.parse_plan(shuffled).sha256 == plan.sha256


@pytest.mark.parametrize(("name", "value", "words"), BAD_VALUES, ids=[f"{n}={v!r}" for n, v, _ in BAD_VALUES])
def test_every_field_is_checked_and_the_message_names_it(name, value, words):
    with pytest.raises(FdkitDataError) as caught:
        plans.Plan(**{name: value})
    assert f"{name}: " in str(caught.value) and words in str(caught.value)


def test_a_plan_file_with_several_problems_reports_each_on_its_line():
    text = 'primary_outcome = "harm"\nfollow_up_months = 0\nfollow_up = 3\n'
    with pytest.raises(FdkitDataError) as caught:
        plans.parse_plan(text)
    message = str(caught.value)
    assert message.startswith("3 problems in file 'analysis-plan.toml'")
    assert "line 1: primary_outcome: unknown outcome 'harm'" in message
    assert "line 2: follow_up_months: must be a whole number from 1 to 120; got 0" in message
    assert "line 3: follow_up: a field an analysis plan does not have (did you mean follow_up_months?)" in message


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("primary_outcome = [", "not a readable TOML file"),
        ("follow_up_months = 12\n", "primary_outcome: missing"),
        ('primary_outcome = "harm_suspect"\n[windows]\nfollow_up_months = 12\n', "a table an analysis plan"),
        ('primary_outcome = "harm_suspect"\nharm_weights = "w.csv"\n', "harm_weights_sha256: missing"),
    ],
)
def test_malformed_plan_files_are_refused(text, words):
    with pytest.raises(FdkitDataError, match=words):
        plans.parse_plan(text)


def _weights(folder: Path, extra: str = "") -> Path:
    path = folder / "weights.csv"
    table = harm.illustrative_weights()[["offence_code", "weight"]]
    path.write_text(table.to_csv(index=False, lineterminator="\n") + extra)
    return path


def test_a_weights_file_is_pinned_by_fingerprint_and_a_change_is_found(tmp_path):
    _weights(tmp_path)
    (tmp_path / "plan.toml").write_text('primary_outcome = "harm_suspect"\nharm_weights = "weights.csv"\n')
    plan = plans.read_plan(tmp_path / "plan.toml")
    assert plan.harm_weights_sha256 == harm.weights_sha256()  # the same codes and weights as the kit's
    assert plans.check_files(plan, tmp_path) == []
    text = (tmp_path / "weights.csv").read_text().replace("\n1,5475.0\n", "\n1,9999.0\n")
    (tmp_path / "weights.csv").write_text(text)
    [problem] = plans.check_files(plan, tmp_path)
    assert "harm_weights: weights.csv has changed since the plan was written" in problem.message


def test_differences_can_be_limited_to_the_protocol_fields():
    site_a = plans.Plan(registration_id="ISRCTN12345678", seed=1)
    site_b = plans.Plan(registration_id="ISRCTN87654321", seed=2)
    assert [d.field for d in plans.differences(site_a, site_b)] == ["registration_id", "seed"]
    assert plans.differences(site_a, site_b, fields=plans.PROTOCOL_FIELDS) == ()
    site_c = dataclasses.replace(site_a, follow_up_months=6)
    [difference] = plans.differences(site_a, site_c, fields=plans.PROTOCOL_FIELDS)
    assert str(difference) == "follow_up_months: 12 against 6"
    with pytest.raises(ValueError, match="not fields"):
        plans.differences(site_a, site_b, fields=["follow_up"])


# ------------------------------------------------------------------- sealed with the allocation


@pytest.fixture
def sealed(tmp_path):
    """A plan written with fdkit plan and sealed with the trial's allocation."""
    shutil.copy(SHIPPED / "eligible.csv", tmp_path / "eligible.csv")
    plan_file = tmp_path / "analysis-plan.toml"
    assert main(["plan", "--out", str(plan_file), "--subgroups", "11-17,18-25"]) == 0
    allocation = tmp_path / "allocation.csv"
    assert main([*randomise_command(tmp_path / "eligible.csv", allocation), "--plan", str(plan_file)]) == 0
    return allocation


def _verify(allocation: Path, *extra) -> int:
    return main(["verify", "--eligible", str(allocation.parent / "eligible.csv"), str(allocation), *extra])


def test_randomise_seals_the_plans_fingerprint_and_text(sealed, capsys):
    record = json.loads(randomise.seal_path(sealed).read_text())
    found = randomise.sealed_plan(sealed)
    written = plans.read_plan(sealed.parent / "analysis-plan.toml")
    assert found.plan == written and found.sha256 == written.sha256 == record["analysis_plan"]["sha256"]
    assert found.wave == 1 and found.sealed_at == record["waves"][0]["sealed_at"]
    assert "\n".join(record["analysis_plan"]["text"]) + "\n" == written.to_toml(comments=False)
    assert _verify(sealed) == 0
    assert "analysis-plan.toml sealed on" in capsys.readouterr().out


def test_an_allocation_sealed_without_a_plan_has_none(tmp_path):
    shutil.copy(SHIPPED / "eligible.csv", tmp_path / "eligible.csv")
    allocation = tmp_path / "allocation.csv"
    assert main(randomise_command(tmp_path / "eligible.csv", allocation)) == 0
    assert randomise.sealed_plan(allocation) is None
    assert "analysis_plan" not in json.loads(randomise.seal_path(allocation).read_text())
    assert _verify(allocation) == 0


@pytest.mark.parametrize(
    ("edit", "value"),
    [
        ("follow_up_months = 12", "follow_up_months = 6"),
        ('interval = "randomisation"', 'interval = "bootstrap"'),
        ("seed = 0", "seed = 3"),
        ('subgroups = ["11-17", "18-25"]', 'subgroups = ["11-17"]'),
        ("cace = true", "cace = false"),
        ('multiplicity_adjustment = "holm"', 'multiplicity_adjustment = "none"'),
    ],
)
def test_verify_catches_any_field_of_the_plan_file_changed_after_sealing(sealed, capsys, edit, value):
    plan_file = sealed.parent / "analysis-plan.toml"
    plan_file.write_text(plan_file.read_text().replace(edit, value))
    assert _verify(sealed) == 1
    field = edit.split(" = ")[0]
    assert f"analysis-plan.toml has changed since it was sealed: {field} is" in capsys.readouterr().err


def test_verify_catches_a_plan_swapped_for_another_file(sealed, tmp_path, capsys):
    other = tmp_path / "other.toml"
    assert main(["plan", "--out", str(other), "--follow-up-months", "6"]) == 0
    assert _verify(sealed, "--plan", str(other)) == 1
    assert "follow_up_months is 6, the seal gives 12" in capsys.readouterr().err


def test_verify_catches_the_plan_text_edited_inside_the_seal(sealed, capsys):
    seal = randomise.seal_path(sealed)
    record = json.loads(seal.read_text())
    record["analysis_plan"]["text"] = [
        line.replace("follow_up_months = 12", "follow_up_months = 6") for line in record["analysis_plan"]["text"]
    ]
    seal.write_text(json.dumps(record))
    assert _verify(sealed) == 1
    assert "its fingerprint differs" in capsys.readouterr().err
    with pytest.raises(FdkitDataError, match="fingerprint differs"):
        randomise.sealed_plan(sealed)


def test_a_later_wave_keeps_the_plan_and_refuses_another(sealed, tmp_path, capsys):
    later = tmp_path / "eligible-later.csv"
    later.write_text(
        (tmp_path / "eligible.csv").read_text()
        + "Q1,M,2008-01-01,15,11-17,1,1,2023-05-01\nQ2,F,2001-01-01,22,18-25,1,1,2023-05-01\n"
    )
    wave2 = tmp_path / "allocation-wave2.csv"
    command = randomise_command(later, wave2, seed=2, under_18s=1, adults=0)
    assert main([*command, "--previous", str(sealed)]) == 0
    assert randomise.sealed_plan(wave2) == randomise.sealed_plan(sealed)
    other = tmp_path / "other.toml"
    assert main(["plan", "--out", str(other), "--follow-up-months", "6"]) == 0
    wave3 = tmp_path / "allocation-wave3.csv"
    assert main([*command[:-2], "--out", str(wave3), "--previous", str(sealed), "--plan", str(other)]) == 2
    assert "a sealed plan is never changed (follow_up_months: 12 against 6;" in capsys.readouterr().err
    assert not wave3.exists()


def test_a_sealed_plan_file_is_never_written_over(sealed, capsys):
    assert main(["plan", "--out", str(sealed.parent / "analysis-plan.toml"), "--force"]) == 2
    assert "sealed plan is never written over" in capsys.readouterr().err


def test_randomise_refuses_a_plan_whose_subgroups_are_not_strata(tmp_path, capsys):
    shutil.copy(SHIPPED / "eligible.csv", tmp_path / "eligible.csv")
    assert main(["plan", "--out", str(tmp_path / "p.toml"), "--subgroups", "under-18"]) == 0
    command = randomise_command(tmp_path / "eligible.csv", tmp_path / "allocation.csv")
    assert main([*command, "--plan", str(tmp_path / "p.toml")]) == 1
    assert "subgroups: 'under-18' is not a stratum of this randomisation" in capsys.readouterr().err
    assert not (tmp_path / "allocation.csv").exists()


def test_randomise_refuses_a_plan_whose_weights_changed_since_it_was_written(tmp_path, capsys):
    shutil.copy(SHIPPED / "eligible.csv", tmp_path / "eligible.csv")
    weights = _weights(tmp_path)
    assert main(["plan", "--out", str(tmp_path / "p.toml"), "--harm-weights", str(weights)]) == 0
    assert 'harm_weights = "weights.csv"' in (tmp_path / "p.toml").read_text()
    weights.write_text(weights.read_text().replace("\n1,5475.0\n", "\n1,1.0\n"))
    command = randomise_command(tmp_path / "eligible.csv", tmp_path / "allocation.csv")
    assert main([*command, "--plan", str(tmp_path / "p.toml")]) == 1
    assert "harm_weights: weights.csv has changed since the plan was written" in capsys.readouterr().err


# --------------------------------------------------------------------------- fdkit plan


def test_the_template_is_a_sound_plan(capsys):
    assert main(["plan", "--template"]) == 0
    assert plans.parse_plan(capsys.readouterr().out) == plans.Plan()


def test_plan_check_reports_a_bad_file_and_exits_1(tmp_path, capsys):
    path = tmp_path / "analysis-plan.toml"
    path.write_text(plans.Plan().to_toml().replace("follow_up_months = 12", "follow_up_months = 0"))
    assert main(["plan", "--check", str(path)]) == 1
    err = capsys.readouterr().err
    assert "follow_up_months: must be a whole number from 1 to 120; got 0" in err and "Traceback" not in err


def test_a_bad_option_is_a_usage_error_naming_the_option(tmp_path, capsys):
    assert main(["plan", "--out", str(tmp_path / "p.toml"), "--follow-up-months", "0"]) == 2
    assert "--follow-up-months (follow_up_months: must be a whole number" in capsys.readouterr().err
    assert main(["plan", "--out", str(tmp_path / "p.toml"), "--secondary", "knife"]) == 2
    assert not (tmp_path / "p.toml").exists()
