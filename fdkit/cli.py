"""The ``fdkit`` command: a thin layer over the package's functions.

Exit codes: 0 success, 1 a data problem or a file that cannot be read or written (a short
message naming the file, column and rows; ``--debug`` adds the traceback), 2 a usage error
(including an output the guard refuses), 3 an unexpected error: a bug in fdkit, reported with
its traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import shutil
import sys
import traceback
from datetime import date
from pathlib import Path
from typing import NoReturn

from ._text import ECHOED, PATH_ECHOED, quoted, shorten
from .records import FdkitDataError, Problem

__all__ = [
    "build_parser",
    "main",
]

EPILOG = """\
examples:
  fdkit synth --out my_records          write the kit's synthetic police records
  fdkit validate synthetic              check a records folder and summarise it
  fdkit screen --records synthetic --reference-date 2023-02-01 --out eligible.csv
  fdkit plan --out analysis-plan.toml --subgroups 11-17,18-25
  fdkit randomise --eligible eligible.csv --strata age_band --treat 11-17=20 --treat 18-25=25 \\
      --seed 20230201 --date 2023-02-01 --out allocation.csv --plan analysis-plan.toml
  fdkit verify --eligible eligible.csv allocation.csv
  fdkit analyse --records synthetic --allocation synthetic/allocation.csv --out results.csv
  fdkit power --n-treated 45 --n-control 103 --reduction 54 --sims 1000 --seed 1 --out power.csv
  fdkit report --records synthetic --allocation synthetic/allocation.csv --out report.html
  fdkit pool --site a=sites/a --site b=sites/b --out pooled   several sites' sealed trials, pooled

Run 'fdkit COMMAND --help' for each command's options and an example."""


def _add_validate(commands) -> None:
    parser = commands.add_parser(
        "validate",
        help="check a records folder and summarise it",
        description="Load a records folder (persons.csv, events.csv and optionally "
        "engagement.csv), check it against the records contract and print a summary, "
        "or every problem found.",
        epilog="example:\n  fdkit validate synthetic\n  fdkit validate extract --dayfirst",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("folder", type=Path, help="the records folder")
    parser.add_argument(
        "--dayfirst",
        action="store_true",
        help="read dates written day first (21/11/2024) instead of rejecting them",
    )
    _add_extract_date(parser)
    _add_lookup(parser)
    parser.set_defaults(run=_run_validate)


def _run_validate(args) -> int:
    from .progress import bar, stepper
    from .records import load_records, summarise

    with bar(5, "fdkit validate") as shown:
        step = stepper(shown)
        records = load_records(
            args.folder, dayfirst=args.dayfirst, lookup=_lookup(args), extract_date=args.extract_date, progress=step
        )
        step("summarising")
        summary = summarise(records)
    print(summary)
    if summary.unknown_birth:
        people = f"{summary.unknown_birth:,} {'person has' if summary.unknown_birth == 1 else 'people have'}"
        print(
            f"fdkit validate: warning: {people} a placeholder date of birth (1900-01-01 or another date systems "
            "write for 'not known'; see docs/your-own-data.md), read as unknown: screening leaves them out, "
            "counted in the funnel as 'date of birth unknown'",
            file=sys.stderr,
        )
    return 0


def _add_synth(commands) -> None:
    parser = commands.add_parser(
        "synth",
        help="write synthetic police records from a scenario",
        description="Generate a synthetic records folder (persons.csv, events.csv, the "
        "scenario used, a manifest with SHA-256 checksums and a data dictionary). With the "
        "default scenario and seed the folder is identical, byte for byte, to the "
        "repository's synthetic/ folder.",
        epilog="example:\n  fdkit synth --out my_records\n"
        "  fdkit synth --scenario synthetic/scenario.toml --seed 7 --out other_records\n"
        "three towns of one network, each with its own sealed trial (then: fdkit pool):\n"
        "  fdkit synth --site northbridge --seed 11 --out sites/northbridge\n"
        "  fdkit synth --site eastwick --seed 12 --out sites/eastwick\n"
        "  fdkit synth --site southmoor --seed 13 --base-rate 1.3 --out sites/southmoor",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", type=Path, required=True, help="folder to write (created)")
    parser.add_argument("--scenario", type=Path, default=None, help="scenario TOML file (default: the kit's)")
    parser.add_argument("--seed", type=_seed, default=None, help="overrides the scenario's seed")
    parser.add_argument(
        "--site",
        metavar="NAME",
        help="write one town of a multi-site network: the scenario with its own seed (--seed, required) and "
        "base rate, and its own sealed trial",
    )
    parser.add_argument(
        "--base-rate",
        type=float,
        metavar="MULTIPLIER",
        help="with --site: the town's rates of offending and victimisation as a multiple of the scenario's "
        "(0.25-4; default: drawn from the name and seed)",
    )
    parser.add_argument(
        "--force", action="store_true", help="replace --out even if it already has files (never a sealed allocation)"
    )
    parser.set_defaults(run=_run_synth)


def _run_synth(args) -> int:
    from . import files, synth
    from .progress import bar, stepper

    outputs = files.OutputGuard(inputs=[args.scenario], force=args.force)
    scenario = synth.load_scenario(args.scenario)
    site = None
    if args.site is not None or args.base_rate is not None:
        scenario, site = _site_scenario(args, scenario)
    own = (*RECORDS_FILES, synth.SCENARIO_FILE, synth.MANIFEST_FILE, synth.DICTIONARY_FILE, *SYNTH_TRIAL_FILES)
    with outputs.staged_folder(args.out, own_names=own) as staging, bar(4, "fdkit synth") as shown:
        try:
            written = synth.write_synthetic(
                staging, scenario, seed=args.seed, overwrite=True, progress=stepper(shown), site=site
            )
        except ValueError as error:
            if site is None:
                raise
            raise FdkitDataError(
                [Problem(f"site {site['name']}", f"{error}; a higher --base-rate gives the town more eligible people")]
            ) from error
    print(dataclasses.replace(written, path=args.out).describe())
    if site is not None:
        print(f"site {site['name']}: base rate {site['base_rate']:g} x the scenario's, seed {site['seed']}")
    return 0


def _site_scenario(args, scenario):
    """``fdkit synth --site``: the town's scenario and what makes it this site."""
    from . import synth

    if args.site is None:
        raise SystemExit(_usage(args, "--base-rate needs --site NAME"))
    if args.seed is None:
        raise SystemExit(_usage(args, "--site needs --seed: each town of a network has its own seed"))
    try:
        return synth.site_scenario(scenario, args.site, args.seed, args.base_rate)
    except ValueError as error:
        raise SystemExit(_usage(args, str(error))) from error


RECORDS_FILES = ("persons.csv", "events.csv", "engagement.csv")
SYNTH_TRIAL_FILES = (
    "eligible.csv",
    "funnel.csv",
    "allocation.csv",
    "trial_truth.csv",
    "analysis-plan.toml",
    "report.toml",
)


def _add_screen(commands) -> None:
    parser = commands.add_parser(
        "screen",
        help="find the people eligible for the trial on a reference date",
        description="Apply the eligibility rule (by default the Milton Keynes trial's: aged "
        "11-25, a knife offence as a suspect in the past 12 months and another knife, violent "
        "or sexual offence as a suspect in the past 24 months) and write the eligible people. "
        "The funnel (how many remained at each step, and why the rest left) is printed.",
        epilog="example:\n  fdkit screen --records synthetic --reference-date 2023-02-01 "
        "--out eligible.csv --funnel-out funnel.csv",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--records", type=Path, required=True, help="the records folder")
    parser.add_argument("--reference-date", type=_iso_date, required=True, help="screening date, YYYY-MM-DD")
    parser.add_argument("--out", type=Path, required=True, help="where to write the eligible people (CSV)")
    parser.add_argument("--funnel-out", type=Path, help="also write the funnel as CSV")
    parser.add_argument(
        "--exclusions", type=Path, help="CSV of person_id,reason (already allocated / in custody / deceased / other)"
    )
    parser.add_argument("--dayfirst", action="store_true", help="read day-first dates in the records")
    _add_extract_date(parser)
    parser.add_argument("--force", action="store_true", help="replace existing output files (never a sealed list)")
    rule = parser.add_argument_group("the rule (defaults: the trial's)")
    rule.add_argument("--min-age", type=_positive_int, default=11)
    rule.add_argument("--max-age", type=_positive_int, default=25)
    rule.add_argument("--knife-window-months", type=_positive_int, default=12)
    rule.add_argument("--other-window-months", type=_positive_int, default=24)
    _add_lookup(parser)
    parser.set_defaults(run=_run_screen)


def _run_screen(args) -> int:
    from . import files
    from .progress import bar, stepper
    from .records import load_records

    outputs = files.OutputGuard(inputs=[args.exclusions], input_folders=[args.records], force=args.force)
    outputs.claim(args.out)
    outputs.claim(args.funnel_out)
    with bar(6, "fdkit screen") as shown:
        step = stepper(shown)
        records = load_records(
            args.records, dayfirst=args.dayfirst, lookup=_lookup(args), extract_date=args.extract_date, progress=step
        )
        step("screening")
        rule, result = _screen(args, records, step, outputs)
    print(f"Screening on {args.reference_date}: {rule.describe()}")
    print(result.funnel.to_string(index=False))
    bands_found = result.eligible["age_band"].value_counts().sort_index()
    print(
        f"\n{len(result.eligible)} eligible ({', '.join(f'{n} aged {b}' for b, n in bands_found.items())}); "
        f"written to {args.out}"
    )
    return 0


def _screen(args, records, step, outputs):
    """Screen loaded records by the command's rule and write the eligible list; return the rule and result."""
    from . import eligibility
    from .records import read_table

    adult_from = min(max(18, args.min_age), args.max_age + 1)
    bands = tuple(
        (low, high, f"{low}-{high}")
        for low, high in ((args.min_age, adult_from - 1), (adult_from, args.max_age))
        if low <= high
    )
    try:
        rule = eligibility.EligibilityRule(
            min_age=args.min_age,
            max_age=args.max_age,
            index_window_months=args.knife_window_months,
            other_window_months=args.other_window_months,
            age_bands=bands,
        )
    except ValueError as error:
        raise SystemExit(_usage(args, str(error))) from error
    exclusions = None
    if args.exclusions is not None:
        exclusions = read_table(
            args.exclusions,
            required=("person_id", "reason"),
            unique=("person_id",),
            not_blank=("person_id", "reason"),
            choices={"reason": eligibility.EXCLUSION_REASONS},
        )
    result = eligibility.screen(records, args.reference_date, rule, exclusions=exclusions)
    step(f"writing {args.out}")
    eligibility.write_eligible(result, args.out, args.funnel_out, guard=outputs)
    return rule, result


def _add_randomise(commands) -> None:
    parser = commands.add_parser(
        "randomise",
        help="allocate eligible people to treatment or control, with a seal",
        description="Randomise the eligible list and write the allocation with a seal file "
        "beside it (<name>.seal.json) from which 'fdkit verify' can re-derive it. An existing "
        "allocation is never overwritten; use --previous to add a wave of people recruited later.",
        epilog="example (the trial's design):\n  fdkit randomise --eligible eligible.csv --strata age_band "
        "--treat 11-17=20 --treat 18-25=25 --seed 20230201 --date 2023-02-01 --out allocation.csv\n"
        "a later wave:\n  fdkit randomise --eligible eligible-august.csv --previous allocation.csv "
        "--strata age_band --treat 11-17=3 --treat 18-25=4 --seed 7 --date 2023-08-01 --out allocation-wave2.csv",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--eligible", type=Path, required=True, help="the eligible list (CSV with person_id)")
    parser.add_argument("--seed", type=_seed, required=True, help="the random seed, a whole number from 0 (record it!)")
    parser.add_argument("--date", type=_iso_date, required=True, help="date of randomisation, YYYY-MM-DD")
    parser.add_argument("--out", type=Path, required=True, help="allocation file to create")
    parser.add_argument(
        "--method",
        choices=("stratified", "complete", "simple"),
        default=None,
        help="default: stratified if --treat is given, otherwise complete",
    )
    parser.add_argument("--strata", help="column of the eligible list to stratify by (e.g. age_band)")
    parser.add_argument(
        "--treat",
        action="append",
        default=[],
        metavar="STRATUM=N",
        help="treated places in a stratum; repeat for each stratum",
    )
    parser.add_argument("--n-treated", type=_non_negative_int, help="treated places in all (complete method)")
    parser.add_argument("--probability", type=float, default=0.5, help="chance of treatment (simple method)")
    parser.add_argument("--previous", type=Path, help="an earlier allocation this wave adds to")
    parser.add_argument(
        "--plan",
        type=Path,
        metavar="TOML",
        help="an analysis plan (fdkit plan) to seal with the allocation: its fingerprint and full text go in the "
        "seal, and fdkit analyse and fdkit report will follow it",
    )
    _add_lookup(parser, purpose="the unit offence lookup the eligible list was screened with, to record in the seal")
    parser.set_defaults(run=_run_randomise)


def _run_randomise(args) -> int:
    from . import files, randomise
    from .eligibility import read_eligible
    from .offences import describe_lookup

    previous_seal = randomise.seal_path(args.previous) if args.previous else None
    outputs = files.OutputGuard(inputs=[args.eligible, args.previous, previous_seal, args.plan])
    for existing in (args.out, randomise.seal_path(args.out)):
        if existing.exists() and files.resolved(existing) not in outputs.inputs:
            raise files.OutputRefused(randomise._refusal(existing, args.out))
    outputs.claim(args.out, replaceable=False)
    outputs.claim(randomise.seal_path(args.out), replaceable=False, new_seal=True)
    if not 0 <= args.probability <= 1:
        raise SystemExit(_usage(args, f"--probability must lie between 0 and 1; got {args.probability}"))
    capacities = {}
    for item in args.treat:
        stratum, _, number = item.rpartition("=")
        if not stratum or not number.isdigit():
            raise SystemExit(_usage(args, f"--treat takes STRATUM=N, e.g. 11-17=20; got {quoted(item)}"))
        capacities[stratum] = int(number)
    method = args.method or ("stratified" if capacities else "complete")
    if method == "stratified" and not (args.strata and capacities):
        raise SystemExit(_usage(args, "stratified allocation needs --strata and a --treat for each stratum"))
    if method == "complete" and args.n_treated is None:
        raise SystemExit(_usage(args, "complete allocation needs --n-treated"))
    eligible = read_eligible(args.eligible, strata=args.strata if method == "stratified" else None)
    previous = randomise.read_allocation(args.previous) if args.previous else None
    plan = _plan_to_seal(args, capacities if method == "stratified" else {})
    try:
        allocation = randomise.allocate(
            eligible,
            seed=args.seed,
            randomised_on=args.date,
            method=method,
            strata=args.strata,
            capacities=capacities or None,
            n_treated=args.n_treated,
            probability=args.probability,
            previous=previous,
        )
    except ValueError as error:
        raise _data_error(args.eligible, str(error)) from error
    lookup = _lookup(args)
    described = None if lookup is None else describe_lookup(lookup)
    path, seal = randomise.write_allocation(allocation, args.out, offence_lookup=described, plan=plan)
    print(allocation.counts().to_string())
    print(f"\nwrote {path} and its seal {seal}")
    if plan is not None:
        sealed = randomise.sealed_plan(path)
        print(f"{sealed}; fdkit analyse and fdkit report will follow it")
    return 0


def _plan_to_seal(args, capacities: dict):
    """The plan this wave seals: the one given, or the one an earlier wave sealed (never a new one)."""
    from . import plan as plans
    from . import randomise

    earlier = randomise.sealed_plan(args.previous) if args.previous else None
    if args.plan is None:
        return earlier
    plan = plans.read_plan(args.plan)
    if problems := plans.check_files(plan, args.plan.parent):
        raise FdkitDataError(problems, source=args.plan)
    if earlier is not None:
        if earlier.sha256 != plan.sha256:
            changes = "; ".join(str(d) for d in plans.differences(earlier.plan, plan))
            raise SystemExit(
                _usage(
                    args,
                    f"{args.previous.name} was sealed with an analysis plan on {earlier.date} (SHA-256 "
                    f"{earlier.sha256[:16]}), and a sealed plan is never changed ({changes}); leave out --plan "
                    "to keep it",
                )
            )
        return earlier
    strata = set(capacities) or {"all"}
    if outside := [s for s in plan.subgroups if s not in strata]:
        message = (
            f"subgroups: {outside[0]!r} is not a stratum of this randomisation "
            f"({', '.join(sorted(strata)) if capacities else 'it is not stratified'})"
        )
        raise _data_error(args.plan, message)
    return plan


def _add_verify(commands) -> None:
    parser = commands.add_parser(
        "verify",
        help="check an allocation against its seal and eligible list",
        description="Re-derive the allocation from its seal and the eligible list(s) and report "
        "any difference. Exit 0 if the seal holds, 1 otherwise.",
        epilog="example:\n  fdkit verify --eligible eligible.csv allocation.csv\n"
        "with two waves:\n  fdkit verify --eligible eligible.csv --eligible eligible-august.csv allocation-wave2.csv",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("allocation", type=Path, help="the allocation CSV (its seal beside it)")
    parser.add_argument(
        "--eligible", type=Path, action="append", required=True, help="the eligible list of each wave, in order"
    )
    parser.add_argument(
        "--plan",
        type=Path,
        metavar="TOML",
        help="a plan file to compare with the plan sealed with the allocation (default: the one beside it)",
    )
    parser.set_defaults(run=_run_verify)


def _run_verify(args) -> int:
    from . import randomise
    from .eligibility import read_eligible

    result = randomise.verify(args.allocation, [read_eligible(path) for path in args.eligible], plan=args.plan)
    print(result, file=sys.stdout if result.ok else sys.stderr)
    return 0 if result.ok else 1


def _add_plan(commands) -> None:
    parser = commands.add_parser(
        "plan",
        help="write or check an analysis plan, to seal with the allocation",
        description="Write analysis-plan.toml: the primary and secondary outcomes, the follow-up and baseline "
        "windows, the day rule, the methods and alpha, the multiplicity family and adjustment, the subgroups, the "
        "engagement (CACE) analysis, the harm weights and offence lookup (pinned by fingerprint), and the trial's "
        "registration and protocol. Seal it with 'fdkit randomise --plan'; 'fdkit analyse' and 'fdkit report' then "
        "follow it with no analysis options, and anything that departs from it runs only with --deviate.",
        epilog="examples:\n"
        "  fdkit plan --out analysis-plan.toml --primary harm_suspect --subgroups 11-17,18-25 "
        "--registration ISRCTN12345678\n"
        "  fdkit plan --template > analysis-plan.toml      # then edit it\n"
        "  fdkit plan --check analysis-plan.toml\n"
        "  fdkit randomise --eligible eligible.csv --strata age_band --treat 11-17=20 --treat 18-25=25 \\\n"
        "      --seed 20230201 --date 2023-02-01 --out allocation.csv --plan analysis-plan.toml",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--out", type=Path, help="the plan file to write (analysis-plan.toml)")
    what.add_argument("--check", type=Path, metavar="TOML", help="check a plan file, field by field, and stop")
    what.add_argument("--template", action="store_true", help="print a commented plan with the kit's defaults")
    what.add_argument(
        "--report-template",
        action="store_true",
        help="print a commented report.toml: your text for the CONSORT 2025 items the data cannot fill",
    )
    fields = parser.add_argument_group("the plan (defaults: the Milton Keynes trial's analysis)")
    fields.add_argument("--trial", default="", help="the trial's name")
    fields.add_argument("--registration", default="", metavar="ID", help="registry identifier, e.g. ISRCTN12345678")
    fields.add_argument(
        "--protocol", default="", metavar="URL", help="where the protocol can be read (web address or DOI)"
    )
    fields.add_argument("--primary", default="harm_suspect", metavar="OUTCOME", help="the primary outcome")
    fields.add_argument(
        "--secondary",
        type=_names_list,
        metavar="A,B",
        help="secondary outcomes in order (default: every other; 'none')",
    )
    fields.add_argument("--follow-up-months", type=int, default=12, help="follow-up length (default 12)")
    fields.add_argument("--baseline-months", type=int, default=24, help="baseline length (default 24)")
    fields.add_argument(
        "--sensitivity", type=_names_list, metavar="A,B", help="sensitivity methods (default: the kit's default table)"
    )
    fields.add_argument("--interval", choices=("randomisation", "bootstrap"), default="randomisation")
    fields.add_argument("--seed", type=_seed, default=0, help="seed of the resampling (default 0)")
    redraws = _default_redraws()
    fields.add_argument(
        "--permutations", type=int, default=redraws, help=f"re-draws per randomisation test (default {redraws})"
    )
    fields.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples (default 2000)")
    fields.add_argument(
        "--family", type=_names_list, metavar="A,B", help="outcomes adjusted together (default: every hypothesis)"
    )
    fields.add_argument("--adjustment", choices=("holm", "benjamini-hochberg", "none"), default="holm")
    fields.add_argument("--subgroups", type=_names_list, default=(), metavar="A,B", help="strata analysed on their own")
    fields.add_argument("--no-cace", action="store_true", help="leave out the effect among those who engaged")
    fields.add_argument(
        "--harm-weights", type=Path, metavar="CSV", help="harm weights (default: the kit's illustrative)"
    )
    fields.add_argument("--lookup", type=Path, metavar="CSV", help="your unit's offence lookup (default: the kit's)")
    parser.add_argument("--force", action="store_true", help="replace an existing plan file (never a sealed one)")
    parser.set_defaults(run=_run_plan)


def _names_list(text: str) -> tuple[str, ...]:
    return () if text.strip().lower() == "none" else tuple(part.strip() for part in text.split(",") if part.strip())


#: The command-line option that sets each plan field, for messages.
PLAN_OPTIONS = {
    "trial": "--trial",
    "registration_id": "--registration",
    "protocol_url": "--protocol",
    "primary_outcome": "--primary",
    "secondary_outcomes": "--secondary",
    "follow_up_months": "--follow-up-months",
    "baseline_months": "--baseline-months",
    "sensitivity_methods": "--sensitivity",
    "interval": "--interval",
    "seed": "--seed",
    "permutations": "--permutations",
    "resamples": "--resamples",
    "multiplicity_family": "--family",
    "multiplicity_adjustment": "--adjustment",
    "subgroups": "--subgroups",
    "cace": "--no-cace",
    "harm_weights": "--harm-weights",
    "offence_lookup": "--lookup",
}


def _run_plan(args) -> int:
    import os

    from . import files, harm, offences
    from . import plan as plans

    if args.template:
        sys.stdout.write(plans.Plan().to_toml())
        return 0
    if args.report_template:
        from .checklist import statements_template

        sys.stdout.write(statements_template())
        return 0
    if args.check:
        checked = plans.read_plan(args.check)
        if problems := plans.check_files(checked, args.check.parent):
            raise FdkitDataError(problems, source=args.check)
        print(f"{args.check} is a sound analysis plan:\n{checked.describe()}")
        return 0
    outputs = files.OutputGuard(inputs=[args.harm_weights, args.lookup], force=args.force)
    outputs.claim(args.out)
    values: dict = {
        "trial": args.trial,
        "registration_id": args.registration,
        "protocol_url": args.protocol,
        "primary_outcome": args.primary,
        "follow_up_months": args.follow_up_months,
        "baseline_months": args.baseline_months,
        "interval": args.interval,
        "seed": args.seed,
        "permutations": args.permutations,
        "resamples": args.resamples,
        "multiplicity_adjustment": args.adjustment,
        "subgroups": args.subgroups,
        "cace": not args.no_cace,
    }
    chosen = {
        "secondary_outcomes": args.secondary,
        "sensitivity_methods": args.sensitivity,
        "multiplicity_family": args.family,
    }
    values.update({name: value for name, value in chosen.items() if value is not None})
    if "secondary_outcomes" not in values:  # every other outcome, in the kit's order
        values["secondary_outcomes"] = tuple(o for o in plans.Plan().outcomes if o != args.primary)
    folder = args.out.parent
    for name, path, sha in (
        ("harm_weights", args.harm_weights, lambda p: harm.weights_sha256(harm.read_weights(p))),
        ("offence_lookup", args.lookup, lambda p: offences.lookup_sha256(offences.read_lookup(p))),
    ):
        if path is not None:
            values[name] = Path(os.path.relpath(path.resolve(), folder.resolve())).as_posix()
            values[f"{name}_sha256"] = sha(path)
    try:
        written = plans.Plan(**values)
    except FdkitDataError as error:
        messages = [p.message for p in error.problems]
        shown = "; ".join(f"{PLAN_OPTIONS.get(m.split(':')[0], m.split(':')[0])} ({m})" for m in messages)
        raise SystemExit(_usage(args, shown)) from None
    plans.write_plan(written, args.out, guard=outputs)
    print(f"wrote {args.out}:\n{written.describe()}")
    print(f"\ncheck it with 'fdkit plan --check {args.out}', then seal it with 'fdkit randomise ... --plan {args.out}'")
    return 0


def _add_analyse(commands) -> None:
    parser = commands.add_parser(
        "analyse",
        help="estimate the trial's effects on every outcome",
        description="Build each randomised person's baseline and follow-up outcomes from the "
        "records and the allocation, then estimate the effects by every default method, overall and "
        "per stratum, with Holm and Benjamini-Hochberg adjusted p-values. Every interval inverts the "
        "test whose p-value is beside it (column 'interval' says how it was made; 'p_mcse' is a "
        "randomisation p-value's Monte Carlo SE), so it excludes 0 exactly when p < 0.05. An allocation "
        "sealed with an analysis plan (fdkit randomise --plan) is analysed exactly as the plan says, with no "
        "options; an option that departs from the plan runs only with --deviate, and its results are "
        "labelled 'not pre-specified' (columns 'plan' and 'departs_from').",
        epilog="example:\n  fdkit analyse --records synthetic --allocation synthetic/allocation.csv "
        "--out results.csv --frame-out frame.csv\n"
        "a post-hoc choice, labelled:\n  fdkit analyse --records synthetic --allocation synthetic/allocation.csv "
        "--out results-6m.csv --follow-up-months 6 --deviate 'asked for by the board after the results'",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--records", type=Path, required=True, help="the records folder")
    parser.add_argument("--allocation", type=Path, required=True, help="the allocation CSV (its seal beside it)")
    parser.add_argument("--out", type=Path, required=True, help="where to write the results table (CSV)")
    parser.add_argument("--frame-out", type=Path, help="also write the per-person outcome frame (CSV)")
    parser.add_argument(
        "--follow-up-months", type=_positive_int, default=None, help="follow-up length (default: the plan's, else 12)"
    )
    parser.add_argument(
        "--harm-weights",
        type=Path,
        help="CSV of offence_code,weight (default: the plan's, else the kit's illustrative weights)",
    )
    parser.add_argument("--seed", type=_seed, default=None, help="seed for resampling (default: the plan's, else 0)")
    parser.add_argument(
        "--resamples",
        type=int,
        default=None,
        help="bootstrap resamples, with --interval bootstrap (default: the plan's, else 2000)",
    )
    parser.add_argument(
        "--permutations",
        type=int,
        default=None,
        help=f"re-draws of the design for randomisation tests (default: the plan's, else {_default_redraws()}: "
        "p_mcse <= 0.005 near 0.05)",
    )
    parser.add_argument(
        "--interval",
        choices=("randomisation", "bootstrap"),
        default=None,
        help="the ratio of means' interval: inverting its randomisation test (the default, calibrated) or the "
        "stratified percentile bootstrap (kept for teaching; it under-covers at ~150 people)",
    )
    parser.add_argument(
        "--methods",
        type=lambda t: tuple(t.split(",")),
        default=None,
        help="comma-separated methods (default: the plan's, else "
        + ",".join(_analysis_methods(default=True))
        + "; also "
        + ",".join(sorted(set(_analysis_methods()) - set(_analysis_methods(default=True))))
        + " by name)",
    )
    _add_deviate(parser)
    parser.add_argument("--dayfirst", action="store_true", help="read day-first dates in the records")
    _add_seal_options(parser)
    _add_extract_date(parser)
    parser.add_argument("--force", action="store_true", help="replace existing output files")
    _add_lookup(parser)
    parser.set_defaults(run=_run_analyse)


def _add_deviate(parser) -> None:
    parser.add_argument(
        "--deviate",
        default="",
        metavar="REASON",
        help="run options that depart from the sealed analysis plan anyway, for this reason; every result they "
        "touch is labelled 'not pre-specified'",
    )


#: What fdkit analyse has always run for an allocation sealed without a plan.
ANALYSE_DEFAULTS = {  # and every outcome, by the default table's methods, with analysis.PERMUTATIONS re-draws
    "follow_up_months": 12,
    "baseline_months": 24,
    "seed": 0,
    "resamples": 2000,
    "interval": "randomisation",
}


def _analysis_following(args, checked, given: dict):
    """What fdkit analyse runs: the sealed plan (with any departures), or the options and their defaults."""
    from . import adherence, analysis, outcomes

    if checked.plan is not None:
        return _follow_plan(args, checked.plan, given)
    if args.deviate:
        print(f"fdkit {args.command}: note: --deviate is ignored: no analysis plan was sealed", file=sys.stderr)
    defaults = dict(
        ANALYSE_DEFAULTS,
        permutations=analysis.PERMUTATIONS,
        outcomes=outcomes.OUTCOME_NAMES,
        methods=analysis.DEFAULT_METHODS,
    )
    return adherence.unplanned(given, defaults)


def _follow_plan(args, sealed, given: dict, tables=()):
    """:func:`fdkit.adherence.follow`, a departure without --deviate being a usage error."""
    from . import adherence

    try:
        return adherence.follow(sealed, given, reason=args.deviate, extra=tables)
    except adherence.PlanDeparted as departed:
        raise SystemExit(_usage(args, str(departed))) from None


def _plan_banner(following) -> str:
    """A line or two on how the analysis stands to the sealed plan."""
    from .adherence import NOT_PRE_SPECIFIED

    if following.sealed is None:
        return "no analysis plan was sealed with this allocation: the analysis follows the options given"
    if not following.departures:
        return f"following {following.sealed}: every result is pre-specified"
    lines = [f"{NOT_PRE_SPECIFIED.upper()}: this analysis departs from {following.sealed}"]
    lines += [f"  - {departure}" for departure in following.departures]
    lines.append(f"  reason given: {following.reason}")
    return "\n".join(lines)


def _run_analyse(args) -> int:
    from . import adherence, outcomes, randomise
    from .progress import bar, stepper
    from .records import load_records

    if (args.resamples is not None and args.resamples < 100) or (
        args.permutations is not None and args.permutations < 100
    ):
        raise SystemExit(_usage(args, "--resamples and --permutations must be at least 100"))
    if args.methods and (unknown := set(args.methods) - set(_analysis_methods())):
        raise SystemExit(
            _usage(args, f"unknown methods {', '.join(sorted(unknown))}; choose from {', '.join(_analysis_methods())}")
        )
    outputs = _analysis_guard(args)
    outputs.claim(args.out)
    outputs.claim(args.frame_out)
    checked = randomise.check_sealed(args.allocation, args.eligible, unsealed=args.unsealed)
    given = {
        "follow_up_months": args.follow_up_months,
        "seed": args.seed,
        "permutations": args.permutations,
        "resamples": args.resamples,
        "interval": args.interval,
        "methods": args.methods,
    }
    following = _analysis_following(args, checked, given)  # refuses a departure early, before any work
    if not checked.sealed:
        print(_unsealed_banner(checked))
    with bar(7, "fdkit analyse") as shown:
        step = stepper(shown)
        folder = args.allocation.parent
        lookup = adherence.planned_lookup(checked.plan, folder, args.lookup)
        records = load_records(
            args.records, dayfirst=args.dayfirst, lookup=lookup, extract_date=args.extract_date, progress=step
        )
        allocation = checked.allocation
        weights = adherence.planned_weights(checked.plan, folder, args.harm_weights)
        if checked.plan is not None:
            tables = adherence.table_departures(
                checked.plan,
                weights=weights,
                weights_given=args.harm_weights,
                lookup=records.lookup,
                lookup_given=args.lookup,
                reason=args.deviate,
            )
            if tables:
                following = _follow_plan(args, checked.plan, given, tables)
        run = following.analysis
        print(_plan_banner(following))
        step("building the outcomes")
        frame = outcomes.build_frame(
            records,
            allocation,
            weights=weights,
            follow_up_months=run.follow_up_months,
            baseline_months=run.baseline_months,
        )
        for arm in ("treatment", "control"):
            if not (frame["arm"] == arm).any():
                raise _data_error(args.allocation, f"no one in the {arm} arm: there is nothing to compare")
        stamp = {} if checked.sealed else {"allocation": randomise.UNSEALED}
        if args.frame_out:
            outputs.write_csv(
                frame.assign(randomised_on=frame["randomised_on"].dt.strftime("%Y-%m-%d"), **stamp), args.frame_out
            )
        arms_per_stratum = frame.groupby("stratum")["arm"].nunique()
        if one_armed := sorted(arms_per_stratum.index[arms_per_stratum < 2]):
            print(
                f"note: no separate estimate for {', '.join(one_armed)}: everyone there is in one arm", file=sys.stderr
            )
        step("estimating the effects (re-drawing the design)")
        table = following.label(adherence.results(frame, run))
        step(f"writing {args.out}")
        outputs.write_csv(table.assign(**stamp), args.out)
    primary_method = run.methods[0]
    shown = table[(table["subgroup"] == "all") & (table["method"] == primary_method)]
    print(
        f"{len(frame)} people ({(frame['arm'] == 'treatment').sum()} treatment), "
        f"{run.follow_up_months}-month follow-up; {primary_method.replace('_', ' ')}, all ages:"
    )
    columns = ["outcome", "mean_treated", "mean_control", "pct_reduction", "ci_low", "ci_high", "p_value"]
    if following.departures:
        columns.append("plan")
    printed = shown[columns]
    print(
        printed.round({"mean_treated": 3, "mean_control": 3, "pct_reduction": 1, "ci_low": 1, "ci_high": 1})
        .round({"p_value": 3})
        .to_string(index=False)
    )
    intervals = set(shown["interval"].dropna().astype(str)) - {"", "none"}
    if intervals:
        print(f"95% intervals: {'; '.join(sorted(intervals))}")
    print(
        f"\nall methods and subgroups written to {args.out}"
        + (f"; outcome frame to {args.frame_out}" if args.frame_out else "")
    )
    return 0


POWER_COLUMNS = (
    "outcome",
    "n_treated",
    "n_control",
    "reduction",
    "method",
    "sims",
    *(
        column
        for name in ("power", "reject_reduction", "reject_increase", "bias", "rmse", "coverage", "type_s", "type_m")
        for column in (name, f"{name}_se")
    ),
)


def _analysis_methods(default: bool = False, diagnosable: bool = False) -> tuple[str, ...]:
    """Method names from the one registry in :mod:`fdkit.analysis`."""
    from .analysis import REGISTRY

    return tuple(
        name
        for name, method in REGISTRY.items()
        if (method.default or not default) and (method.diagnosable or not diagnosable)
    )


def _add_power(commands) -> None:
    parser = commands.add_parser(
        "power",
        help="power, bias, coverage and type S/M of trial designs, by simulation",
        description="Simulate trials of each design from the synthetic world and diagnose the "
        "analysis. Sizes are paired element by element and split across age bands in the trial's "
        "proportions; every size is run at every reduction (negative: an increase). With --reduction 0 "
        "the 'power' column is the type I error, and 'reject_reduction' and 'reject_increase' split it "
        "into its two tails. --calibration instead checks each default method of a design at no effect "
        "(each tail's false alarms) and at the effects the kit meets (its interval's coverage).",
        epilog=(
            "example:\n"
            "  fdkit power --n-treated 45 --n-control 103 --reduction 54 --sims 1000 --seed 1 --out power.csv\n"
            "  fdkit power --n-treated 45,90,180 --n-control 105,210,420 --reduction 25,54 --out curve.csv\n"
            "  fdkit power --n-treated 45 --n-control 103 --reduction=-25 --out increase.csv\n"
            "  fdkit power --calibration --n-treated 45 --n-control 103 --sims 2000 --out calibration.csv"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--n-treated", type=_int_list, help="comma-separated treated sizes (required unless --sites)")
    parser.add_argument("--n-control", type=_int_list, help="comma-separated control sizes, paired")
    parser.add_argument(
        "--reduction",
        type=_float_list,
        help="true %% reduction(s) in the outcome, comma-separated; negative for an increase (--reduction=-25)",
    )
    parser.add_argument(
        "--calibration",
        action="store_true",
        help="check the default methods instead: false alarms in each tail at no effect, and coverage at "
        "a true 0, 40, 54 and 70%% reduction and a 25%% increase (--reduction is then not taken)",
    )
    parser.add_argument("--out", type=Path, required=True, help="where to write the diagnosis (CSV)")
    parser.add_argument("--sims", type=int, default=1000, help="simulated trials per design (default 1000)")
    parser.add_argument("--seed", type=_seed, default=0, help="seed (default 0)")
    parser.add_argument("--force", action="store_true", help="replace an existing output file")
    parser.add_argument(
        "--outcome",
        type=lambda t: tuple(t.split(",")),
        default=None,
        help="comma-separated outcomes to analyse (default harm_suspect; with --calibration "
        "harm_suspect,knife_suspect,violence_suspect)",
    )
    parser.add_argument(
        "--methods",
        type=lambda t: tuple(t.split(",")),
        default=None,
        help="comma-separated: "
        + ",".join(_analysis_methods(diagnosable=True))
        + " (default ratio_of_means; with --calibration every default one: "
        + ",".join(_analysis_methods(default=True, diagnosable=True))
        + ")",
    )
    parser.add_argument("--permutations", type=int, default=1000, help="randomisation re-draws (default 1000)")
    statistics = _statistics()
    parser.add_argument(
        "--statistic",
        choices=statistics,
        default=statistics[0],
        help=f"the primary randomisation test's statistic (default {statistics[0]}; the others are the kit's "
        "earlier ones, for comparison)",
    )
    _add_power_sites(parser)
    parser.set_defaults(run=_run_power)


def _default_redraws() -> int:
    from .analysis import PERMUTATIONS

    return PERMUTATIONS


def _statistics() -> tuple[str, ...]:
    from .analysis import STATISTICS

    return STATISTICS


def _run_power(args) -> int:
    import pandas as pd

    from . import design, files, outcomes
    from .progress import bar

    if args.sites is not None:
        return _run_power_sites(args)
    if args.n_treated is None or args.n_control is None:
        raise SystemExit(_usage(args, "give --n-treated and --n-control (or --sites and --per-site)"))
    outcome_names = args.outcome or (CALIBRATION_OUTCOMES if args.calibration else ("harm_suspect",))
    methods = args.methods or (
        _analysis_methods(default=True, diagnosable=True) if args.calibration else ("ratio_of_means",)
    )
    if len(args.n_treated) != len(args.n_control):
        raise SystemExit(_usage(args, "--n-treated and --n-control must list the same number of sizes"))
    if unknown := set(outcome_names) - set(outcomes.OUTCOME_NAMES):
        raise SystemExit(
            _usage(
                args, f"unknown outcome {', '.join(sorted(unknown))}; choose from {', '.join(outcomes.OUTCOME_NAMES)}"
            )
        )
    if unknown := set(methods) - set(_analysis_methods(diagnosable=True)):
        raise SystemExit(
            _usage(
                args,
                f"unknown methods {', '.join(sorted(unknown))}; "
                f"choose from {', '.join(_analysis_methods(diagnosable=True))}",
            )
        )
    if args.calibration == (args.reduction is not None):
        raise SystemExit(_usage(args, "give --reduction, or --calibration (which sets its own effects), not both"))
    reductions = list(design.CALIBRATION_REDUCTIONS) if args.calibration else args.reduction
    if any(not -900 <= r <= 100 for r in reductions) or min(args.n_treated + args.n_control) < 2 or args.sims < 10:
        raise SystemExit(
            _usage(args, "reductions must be from -900 (an increase) to 100, sizes at least 2 and --sims at least 10")
        )
    if args.permutations < 100:
        raise SystemExit(_usage(args, "--permutations must be at least 100"))
    outputs = files.OutputGuard(force=args.force)
    outputs.claim(args.out)
    sizes = list(zip(args.n_treated, args.n_control))
    with bar(len(sizes) * len(reductions) * len(outcome_names), "fdkit power", unit="design") as shown:
        shown.set_postfix_str("building the synthetic superpopulation")
        population = design.build_superpopulation()
        tables = []
        for number, outcome in enumerate(outcome_names):
            done = number * len(sizes) * len(reductions)

            def report(count, total, label, final=False, done=done, outcome=outcome):
                shown.update(done + (total if final else count - 1) - shown.n)
                shown.set_postfix_str(f"{outcome}: {label}")

            curve = design.power_curve(
                population,
                sizes,
                reductions,
                sims=args.sims,
                seed=args.seed,
                progress=report,
                outcome=outcome,
                methods=methods,
                permutations=args.permutations,
                statistic=args.statistic,
            )
            tables.append(curve.assign(outcome=outcome))
        table = pd.concat(tables, ignore_index=True)[list(POWER_COLUMNS)]
    outputs.write_csv(table, args.out)
    if args.calibration:
        print(design.calibration_table(table).to_string(index=False))
        print(
            f"\n{args.sims:,} simulated trials per effect, {args.permutations:,} re-draws each; % with Monte Carlo SEs "
            f"in brackets. A calibrated test has about 2.5% in each tail and covers 93-97%. Written to {args.out}"
        )
        return 0
    print(table.round(3).to_string(index=False))
    print(f"\n{args.sims:,} simulated trials per design; written to {args.out}")
    return 0


#: The outcomes ``fdkit power --calibration`` checks unless told: the trial's harm, knife and violence measures.
CALIBRATION_OUTCOMES = ("harm_suspect", "knife_suspect", "violence_suspect")


# -------------------------------------------------------------- fdkit power --sites (several sites)


def _add_power_sites(parser) -> None:
    """``fdkit power``'s options for a network of sites."""
    group = parser.add_argument_group(
        "a network of sites (instead of --n-treated/--n-control)",
        "Power and MDES of the pooled analysis for K sites of the same size, each randomising its own people "
        "within age bands; sites differ in base rate and in effect by the standard deviations given. "
        "example: fdkit power --sites 3,12,24 --per-site 45/105 --reduction 25 --site-effect-sd 0.2 "
        "--site-baseline-sd 0.3 --sims 500 --out sites.csv",
    )
    group.add_argument("--sites", type=_int_list, metavar="K", help="comma-separated numbers of sites")
    group.add_argument("--per-site", metavar="N_T/N_C", help="treated and control people at every site, e.g. 45/105")
    group.add_argument(
        "--site-effect-sd",
        type=float,
        default=0.0,
        metavar="TAU",
        help="between-site SD of the log ratio of means (default 0: one common effect)",
    )
    group.add_argument(
        "--site-baseline-sd",
        type=float,
        default=0.0,
        metavar="SD",
        help="between-site SD of the log base rate (default 0: every site's outcomes like the synthetic world's)",
    )
    group.add_argument(
        "--no-mdes", action="store_true", help="skip the minimum detectable effect (a bisection of 7 or so runs)"
    )
    parser.set_defaults(
        _site_defaults={name: parser.get_default(name) for name in ("n_treated", "n_control", "methods", "statistic")}
    )


SITES_POWER_COLUMNS = (
    "sites",
    "n_treated",
    "n_control",
    "reduction",
    "effect_sd",
    "baseline_sd",
    "method",
    "sims",
    "mean_estimate",
    "power",
    "power_se",
    "reject_reduction",
    "reject_increase",
    "coverage",
    "coverage_se",
    "site_power",
    "every_site_significant",
    "any_site_significant",
    "mdes",
    "power_at_mdes",
    "power_at_mdes_se",
)


def _run_power_sites(args) -> int:
    """``fdkit power --sites``: power (and MDES) of the pooled analysis of a network of sites."""
    from dataclasses import replace

    import numpy as np
    import pandas as pd

    from . import design, files, outcomes
    from .progress import bar

    if changed := [
        f"--{name.replace('_', '-')}" for name, default in args._site_defaults.items() if getattr(args, name) != default
    ]:
        raise SystemExit(
            _usage(args, f"{', '.join(changed)} cannot be used with --sites: the pooled primary analysis is simulated")
        )
    per_site = _per_site(args)
    if args.calibration or args.reduction is None:
        raise SystemExit(_usage(args, "--sites needs --reduction (the calibration table is for one site's design)"))
    outcome = (args.outcome or ("harm_suspect",))[0]
    if len(args.outcome or ()) > 1 or outcome not in outcomes.OUTCOME_NAMES:
        raise SystemExit(_usage(args, f"--outcome must be one of {', '.join(outcomes.OUTCOME_NAMES)}"))
    if args.sims < 10 or args.permutations < 100:
        raise SystemExit(_usage(args, "--sims must be at least 10 and --permutations at least 100"))
    try:
        specs = [
            design.SitesDesign(
                sites,
                per_site,
                reduction=reduction,
                effect_sd=args.site_effect_sd,
                baseline_sd=args.site_baseline_sd,
                outcome=outcome,
                permutations=args.permutations,
            )
            for sites in args.sites
            for reduction in args.reduction
        ]
        for spec in specs:
            design.Design(spec.size(), reduction=spec.reduction).effects()  # the same check as every design
    except ValueError as error:
        raise SystemExit(_usage(args, str(error))) from error
    outputs = files.OutputGuard(force=args.force)
    outputs.claim(args.out)
    with bar(len(specs) + (0 if args.no_mdes else len(args.sites)), "fdkit power", unit="design") as shown:
        shown.set_postfix_str("building the synthetic superpopulation")
        population = design.build_superpopulation()
        rows = []
        for spec in specs:
            shown.set_postfix_str(f"{spec.sites} sites, {spec.reduction:g}% reduction")
            # Each point's seed depends on the point itself, so adding points changes no other.
            key = [args.seed, spec.sites, int(round(spec.reduction * 1000))]
            seed = int(np.random.SeedSequence(key).generate_state(1)[0])
            rows.append(design.diagnose_sites(spec, population, sims=args.sims, seed=seed))
            shown.update(1)
        smallest = []
        for sites in [] if args.no_mdes else args.sites:
            shown.set_postfix_str(f"{sites} sites: the minimum detectable effect")
            spec = next(s for s in specs if s.sites == sites)
            mdes = design.mdes_sites(population, spec, sims=args.sims, seed=args.seed)
            at = {"power_at_mdes": np.nan, "power_at_mdes_se": np.nan}
            if np.isfinite(mdes):
                found = design.diagnose_sites(replace(spec, reduction=mdes), population, sims=args.sims, seed=args.seed)
                at = {"power_at_mdes": found["power"].iloc[0], "power_at_mdes_se": found["power_se"].iloc[0]}
            smallest.append({"sites": sites, "mdes": mdes, **at})
            shown.update(1)
    table = pd.concat(rows, ignore_index=True)
    columns = ["sites", "mdes", "power_at_mdes", "power_at_mdes_se"]
    table = table.merge(pd.DataFrame(smallest, columns=columns), on="sites", how="left")
    table = table[list(SITES_POWER_COLUMNS)]
    outputs.write_csv(table, args.out)
    shown_columns = ["sites", "reduction", "power", "power_se", "mean_estimate", "site_power", "every_site_significant"]
    shown_columns += ["coverage"] if args.site_effect_sd == 0 else []
    shown_columns += [] if args.no_mdes else ["mdes"]
    print(
        f"networks of sites with {per_site[0]} treated and {per_site[1]} control people each; between-site SD of "
        f"the log ratio {args.site_effect_sd:g}, of the log base rate {args.site_baseline_sd:g}; {outcome}:"
    )
    print(table[shown_columns].round(3).to_string(index=False))
    print(
        "power: of the pooled analysis; site_power: of one site's own analysis; every_site_significant: the share "
        "of networks in which every site's own p < 0.05"
        + ("; coverage: of the common true ratio by the pooled 95% interval" if args.site_effect_sd == 0 else "")
    )
    if not args.no_mdes:
        print("mdes: the smallest true % reduction (at the median site) the pooled analysis detects with 80% power")
    print(f"\n{args.sims:,} simulated networks per design; written to {args.out}")
    return 0


def _per_site(args) -> tuple[int, int]:
    text = args.per_site or ""
    treated, slash, control = text.partition("/")
    if not (slash and treated.strip().isdigit() and control.strip().isdigit()):
        raise SystemExit(_usage(args, f"--sites needs --per-site N_T/N_C, e.g. 45/105; got {text or 'nothing'!r}"))
    return int(treated), int(control)


def _add_report(commands) -> None:
    parser = commands.add_parser(
        "report",
        help="write the trial report as one self-contained HTML file (and a PDF)",
        description="Compute the trial report from the records and the sealed allocation and write it as one "
        "HTML file that opens offline: a summary in words of the pre-specified primary outcome, the "
        "intervention and eligibility rule, the CONSORT flow, baseline balance, primary and secondary "
        "outcomes with multiplicity adjustment, age bands, engagement, limitations, and an appendix with the "
        "settings, the seal, a sensitivity analysis and software versions. It prints to A4.",
        epilog="example:\n  fdkit report --records synthetic --allocation synthetic/allocation.csv "
        "--funnel synthetic/funnel.csv --unit 'Thames Valley VRU' --registration 'ISRCTN00000000' "
        "--out report.html --pdf",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--records", type=Path, help="the records folder (required unless --pooled)")
    parser.add_argument("--allocation", type=Path, help="the allocation CSV, its seal beside it (unless --pooled)")
    parser.add_argument("--out", type=Path, required=True, help="the HTML file to write")
    parser.add_argument(
        "--pooled",
        type=Path,
        metavar="DIR",
        help="instead: the report of several sites pooled by fdkit pool (its --out folder); takes the title "
        "block's options, --pdf and --force",
    )
    parser.add_argument(
        "--funnel",
        type=Path,
        help="the screening funnel CSV (fdkit screen --funnel-out); default: re-screen "
        "with the trial's rule on the randomisation date",
    )
    parser.add_argument(
        "--primary",
        default=None,
        metavar="OUTCOME",
        help="the primary outcome (default: the sealed plan's, else harm_suspect): harm_suspect, "
        "knife_suspect, violence_suspect, violence_sexual_suspect, other_npi_suspect, violence_victim or knife_victim",
    )
    parser.add_argument(
        "--follow-up-months", type=_positive_int, default=None, help="follow-up length (default: the plan's, else 12)"
    )
    parser.add_argument(
        "--harm-weights", type=Path, help="CSV of offence_code,weight (default: the plan's, else illustrative)"
    )
    parser.add_argument("--seed", type=_seed, default=None, help="seed for resampling (default: the plan's, else 1)")
    _add_deviate(parser)
    parser.add_argument(
        "--statements",
        type=Path,
        metavar="TOML",
        help="your text for the CONSORT 2025 items the data cannot fill (default: report.toml beside the "
        "allocation, if there is one; fdkit plan --report-template prints one)",
    )
    title = parser.add_argument_group("the title block")
    title.add_argument("--unit", default="", help="the unit that ran the trial")
    title.add_argument("--date", type=_iso_date, default=None, help="the report's date, YYYY-MM-DD (default today)")
    title.add_argument(
        "--registration", default="", help="the trial's registry and identifier (default: the sealed plan's)"
    )
    parser.add_argument(
        "--pdf",
        nargs="?",
        type=Path,
        const=True,
        default=None,
        metavar="FILE",
        help="also print the report to an A4 PDF with headless Chromium (default: beside the HTML)",
    )
    _add_seal_options(parser)
    parser.add_argument("--force", action="store_true", help="replace an existing report file")
    _add_lookup(parser)
    parser.set_defaults(run=_run_report)


def _run_report(args) -> int:
    from . import adherence, outcomes, randomise, report
    from .records import load_records, read_table
    from .report_html import report_to_html

    if args.pooled is not None:
        return _run_pooled_report(args)
    if args.records is None or args.allocation is None:
        raise SystemExit(_usage(args, "give --records and --allocation (or --pooled DIR for several sites)"))

    if args.primary is not None and args.primary not in outcomes.OUTCOME_NAMES:
        choices = ", ".join(outcomes.OUTCOME_NAMES)
        raise SystemExit(_usage(args, f"unknown primary outcome {quoted(args.primary)}; choose one of {choices}"))
    statements = args.statements
    if statements is None and (args.allocation.parent / "report.toml").is_file():
        statements = args.allocation.parent / "report.toml"
    outputs = _analysis_guard(args, args.funnel, statements)
    outputs.claim(args.out)
    pdf = None
    if args.pdf is not None:
        pdf = args.out.with_suffix(".pdf") if args.pdf is True else args.pdf
        outputs.claim(pdf)
    # Check the inputs first, so a data problem is a short message naming the file.
    if args.unsealed and args.allocation.is_file() and not randomise.seal_path(args.allocation).is_file():
        raise _data_error(
            args.allocation,
            "the report shows the allocation's seal, so it needs one even with --unsealed; "
            "fdkit analyse --unsealed gives the results of an allocation without a seal",
        )
    checked = randomise.check_sealed(args.allocation, args.eligible, unsealed=args.unsealed)
    if not checked.sealed:
        print(_unsealed_banner(checked))
    lookup = adherence.planned_lookup(checked.plan, args.allocation.parent, args.lookup)
    records = load_records(args.records, lookup=lookup)
    if args.harm_weights:
        from . import harm

        harm.read_weights(args.harm_weights)
    if args.funnel:
        read_table(args.funnel, required=FUNNEL_COLUMNS)
    settings = report.ReportSettings(
        records=args.records,
        allocation=args.allocation,
        funnel=args.funnel,
        follow_up_months=args.follow_up_months,
        harm_weights=args.harm_weights,
        lookup=args.lookup,
        primary=args.primary,
        seed=args.seed,
        unit=args.unit,
        report_date=args.date or report.today(),
        registration=args.registration,
        deviation=args.deviate,
        statements=statements,
    )
    progress = None
    if sys.stderr.isatty():

        def progress(message):
            print(f"fdkit report: {message} ...", file=sys.stderr, flush=True)

    try:
        built = report.build_report(settings, progress=progress, records=records)
    except adherence.PlanDeparted as departed:
        raise SystemExit(_usage(args, str(departed))) from None
    print(_plan_banner(built.following))
    html = report_to_html(built)
    if not checked.sealed:
        html = _stamp_unsealed(html, checked)
    outputs.write_text(html, args.out)
    print(f"wrote {args.out} ({len(html.encode()) / 1024:,.0f} KB, self-contained)")
    if pdf is not None:
        _print_pdf(args.out, pdf)
    return 0


def _run_pooled_report(args) -> int:
    """``fdkit report --pooled DIR``: the report of several sites from the folder fdkit pool wrote."""
    from . import files, report
    from .report_html import pooled_report_to_html
    from .report_pooled import build_pooled_report

    single_site = {
        "--records": args.records,
        "--allocation": args.allocation,
        "--funnel": args.funnel,
        "--harm-weights": args.harm_weights,
        "--eligible": args.eligible,
        "--lookup": args.lookup,
        "--unsealed": args.unsealed,
    }
    if given := [name for name, value in single_site.items() if value]:
        raise SystemExit(
            _usage(args, f"{', '.join(given)} belong to a single site's report; fdkit pool already read the sites")
        )
    outputs = files.OutputGuard(input_folders=[args.pooled], force=args.force)
    outputs.claim(args.out)
    pdf = None
    if args.pdf is not None:
        pdf = args.out.with_suffix(".pdf") if args.pdf is True else args.pdf
        outputs.claim(pdf)
    content = build_pooled_report(
        args.pooled, unit=args.unit, report_date=args.date or report.today(), registration=args.registration
    )
    html = pooled_report_to_html(content)
    outputs.write_text(html, args.out)
    print(
        f"wrote {args.out} ({len(html.encode()) / 1024:,.0f} KB, self-contained): {len(content.sites)} sites, "
        f"{content.total.randomised:,} people ({', '.join(content.sites)})"
    )
    if pdf is not None:
        _print_pdf(args.out, pdf)
    return 0


def _print_pdf(html: Path, pdf: Path) -> None:
    """Print a report to an A4 PDF with headless Chromium, or say how to print it without one."""
    from . import report

    if report.find_chromium() is None:
        print(f"fdkit report: no Chromium here to print with; {report.PRINT_HELP.format(html=html)}", file=sys.stderr)
        return
    report.write_pdf(html, pdf)
    print(f"wrote {pdf} (A4)")


#: The columns of a funnel file (fdkit screen --funnel-out).
FUNNEL_COLUMNS = ("step", "description", "remaining", "excluded", "reason")


def _add_seal_options(parser) -> None:
    parser.add_argument(
        "--eligible",
        type=Path,
        action="append",
        default=[],
        help="the eligible list of each wave, to verify the allocation's seal against before "
        "analysing (default: eligible.csv beside the allocation)",
    )
    parser.add_argument(
        "--unsealed",
        action="store_true",
        help="go on even if the allocation does not match its seal; every output then says UNSEALED ALLOCATION",
    )


def _add_extract_date(parser) -> None:
    parser.add_argument(
        "--extract-date",
        type=_iso_date,
        default=None,
        help="when the records were extracted, YYYY-MM-DD (default today): no offence or birth may be later",
    )


def _analysis_guard(args, *extra_inputs):
    from . import files, randomise

    return files.OutputGuard(
        inputs=[
            args.allocation,
            randomise.seal_path(args.allocation),
            args.harm_weights,
            *args.eligible,
            *extra_inputs,
        ],
        input_folders=[args.records],
        force=args.force,
    )


def _unsealed_banner(checked) -> str:
    from .randomise import UNSEALED

    return (
        f"{UNSEALED}: the allocation was not verified against its seal ({'; '.join(checked.verification.mismatches)})"
    )


def _stamp_unsealed(html: str, checked) -> str:
    import html as markup

    from .randomise import UNSEALED

    why = markup.escape("; ".join(checked.verification.mismatches))
    banner = (
        '<div class="fdkit-unsealed" style="background:#b00020;color:#fff;padding:1em;font-size:1.4em;'
        f'font-weight:bold;text-align:center">{UNSEALED}: the allocation was not verified against its seal; '
        f"these results cannot be trusted as a randomised comparison.<br><small>{why}</small></div>"
    )
    at = html.find("<body")
    at = html.find(">", at) + 1 if at >= 0 else 0
    return html[:at] + banner + html[at:]


# ------------------------------------------------------------------ several sites: fdkit pool


def _add_pool(commands) -> None:
    parser = commands.add_parser(
        "pool",
        help="bring several sites' sealed trials together into one pooled analysis",
        description="Read each site's folder (its records, eligible list, sealed allocation and, if it has one, "
        "its screening funnel), check every seal, and analyse the sites together: the pooled ratio of means with "
        "a randomisation test that re-draws every site's own allocation (strata: site x age band, each site's "
        "waves and places) and the interval that inverts it; each site's own estimate; a randomisation test of "
        "a common effect across sites; and a random-effects summary with the between-site variation and a "
        "prediction interval for a new site. Person IDs are site-scoped: the same ID at two sites is two people. "
        "Writes a folder that 'fdkit report --pooled' turns into a report.",
        epilog="example:\n  fdkit pool --site northbridge=sites/northbridge --site eastwick=sites/eastwick "
        "--site southmoor=sites/southmoor --out pooled\n"
        "  fdkit report --pooled pooled --out pooled-report.html",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--site",
        action="append",
        required=True,
        metavar="NAME=DIR",
        help="a site and its folder; give one --site for each site (at least two)",
    )
    parser.add_argument("--out", type=Path, required=True, help="the pooled folder to create")
    parser.add_argument(
        "--protocol",
        type=Path,
        metavar="PLAN",
        help="the network's common analysis plan (fdkit plan); default: the first site's sealed plan. Every site's "
        "sealed plan must match it on the fields that make results poolable",
    )
    parser.add_argument(
        "--primary",
        metavar="OUTCOME",
        help="the primary outcome the report leads with (default: the protocol's, else harm_suspect)",
    )
    parser.add_argument(
        "--follow-up-months", type=_positive_int, help="follow-up length (default: the protocol's, else 12)"
    )
    parser.add_argument(
        "--harm-weights", type=Path, help="offence_code,weight CSV for every site (default: illustrative)"
    )
    parser.add_argument("--seed", type=_seed, help="seed for the re-draws (default: the protocol's, else 1)")
    parser.add_argument(
        "--permutations", type=int, help="re-draws for every randomisation test (default: the protocol's, else 2000)"
    )
    _add_extract_date(parser)
    parser.add_argument("--force", action="store_true", help="replace an existing pooled folder")
    _add_lookup(parser, purpose="an offence lookup for every site (default: each site folder's own, else the kit's)")
    parser.set_defaults(run=_run_pool)


def _site_arguments(args) -> dict[str, Path]:
    """``--site NAME=DIR`` options as {name: folder}, refusing repeats and invalid names."""
    from . import files, sites

    found: dict[str, Path] = {}
    folders: dict[Path, str] = {}
    for item in args.site:
        name, equals, folder = item.partition("=")
        if not equals or not name or not folder:
            raise SystemExit(_usage(args, f"--site takes NAME=DIR, e.g. northbridge=sites/northbridge; got {item!r}"))
        try:
            sites.check_site_name(name)
        except ValueError as error:
            raise SystemExit(_usage(args, str(error))) from error
        if name in found:
            raise SystemExit(_usage(args, f"site {name!r} is given twice; each site needs its own name"))
        where = files.resolved(folder)
        if where in folders:
            raise SystemExit(
                _usage(args, f"sites {folders[where]} and {name} are the same folder; a site pooled twice counts twice")
            )
        found[name], folders[where] = Path(folder), name
    if len(found) < 2:
        raise SystemExit(_usage(args, "pooling needs at least two sites: give --site NAME=DIR for each"))
    return found


def _run_pool(args) -> int:
    from . import files, harm, outcomes, plan, pooling, sites
    from .progress import bar, stepper

    if args.primary is not None and args.primary not in outcomes.OUTCOME_NAMES:
        choices = ", ".join(outcomes.OUTCOME_NAMES)
        raise SystemExit(_usage(args, f"unknown primary outcome {args.primary!r}; choose one of {choices}"))
    if args.permutations is not None and args.permutations < 100:
        raise SystemExit(_usage(args, "--permutations must be at least 100"))
    folders = _site_arguments(args)
    outputs = files.OutputGuard(
        inputs=[args.harm_weights, args.lookup, args.protocol], input_folders=folders.values(), force=args.force
    )
    given = None if args.protocol is None else plan.read_plan(args.protocol)
    plans = {name: sites.site_plan(name, folder) for name, folder in folders.items()}
    protocol = sites.common_protocol(plans, given, source=args.protocol.name if args.protocol else "")
    weights = harm.read_weights(args.harm_weights) if args.harm_weights else None
    try:
        settings = sites.protocol_settings(
            protocol,
            primary=args.primary,
            follow_up_months=args.follow_up_months,
            seed=args.seed,
            permutations=args.permutations,
            weights=weights,
        )
    except sites.ProtocolDeparture as departure:
        raise SystemExit(_usage(args, str(departure))) from departure
    lookup = _lookup(args)
    with bar(len(folders) + 2, "fdkit pool") as shown:
        step = stepper(shown)
        loaded = {}
        for name, folder in folders.items():
            step(f"reading and checking site {name}")
            loaded[name] = sites.load_site(
                name,
                folder,
                weights=weights,
                follow_up_months=settings["follow_up_months"],
                lookup=lookup,
                extract_date=args.extract_date,
            )
        _refuse_repeated_allocations(loaded)
        frame = sites.pool_frame({name: site.frame for name, site in loaded.items()})
        step("analysing (re-drawing every site's allocation)")
        found = pooling.pooled_results(
            frame,
            seed=settings["seed"],
            permutations=settings["permutations"],
            alpha=settings["alpha"],
            family=settings["family"],
        )
        step(f"writing {args.out}")
        manifest = {
            "generator": "fdkit pool",
            "fdkit_version": _version(),
            "settings": {
                **settings,
                "harm_weights": sites.describe_weights(args.harm_weights),
                "offence_lookup": _describe_lookup(lookup),
                "dropped_columns": frame.attrs.get("dropped_columns", []),
                "protocol": None
                if protocol is None
                else {
                    "sha256": plan.fingerprint(protocol),
                    "source": args.protocol.name if args.protocol else f"site {next(iter(plans))}'s sealed plan",
                },
            },
            "sites": [sites.site_facts(site) for site in loaded.values()],
        }
        tables = {
            "frame": frame,
            "results": found.results,
            "heterogeneity": found.heterogeneity,
            "funnels": sites.by_site({name: site.funnel for name, site in loaded.items()}),
            "balance": sites.by_site({name: site.balance for name, site in loaded.items()}),
        }
        with outputs.staged_folder(args.out, own_names=sites.POOL_FILES) as staging:
            sites.write_pooled(staging, manifest, tables)
    _print_pooled(frame, found, settings["primary"])
    if protocol is None:
        print("no site sealed an analysis plan: the pooled analysis follows these options, not a sealed protocol")
    print(f"\nwritten to {args.out}/; make the report with: fdkit report --pooled {args.out} --out report.html")
    return 0


def _describe_lookup(lookup) -> str:
    from .offences import describe_lookup

    return describe_lookup(lookup) if lookup is not None else "each site's own offence lookup, else the kit's"


def _refuse_repeated_allocations(loaded) -> None:
    """Two sites whose allocation files are the same bytes are one trial pooled twice."""
    seen: dict[str, str] = {}
    for name, site in loaded.items():
        digest = site.seal.get("allocation_sha256", "")
        if digest in seen:
            raise FdkitDataError(
                [
                    Problem(
                        f"site {name}",
                        f"its allocation is the same file as site {seen[digest]}'s (SHA-256 {digest[:16]}): "
                        "one trial pooled twice would be counted twice",
                    )
                ]
            )
        seen[digest] = name


def _print_pooled(frame, found, primary) -> None:
    from .report_tables import format_interval, format_p, format_pct

    by_site = frame.groupby("site")["arm"].value_counts().unstack(fill_value=0)
    treated = int((frame["arm"] == "treatment").sum())
    print(f"{frame['site'].nunique()} sites, {len(frame):,} people ({treated:,} offered the intervention):")
    print(by_site[["treatment", "control"]].to_string())
    print(f"\n{primary}, ratio of means (95% interval inverts each randomisation test):")
    rows = found.results[found.results["outcome"] == primary]
    for row in rows.itertuples():
        print(
            f"  {row.site:<12} {format_pct(row.pct_reduction):>8}% reduction "
            f"({format_interval(row.ci_low, row.ci_high)}), p {format_p(row.p_value)}"
        )
    het = found.heterogeneity.set_index("outcome").loc[primary]
    note = f" ({het['note']})" if het["note"] else ""
    print(f"  same effect at every site? {het['method']}: p {format_p(het['p_value'])}{note}")
    if het["re_sites"] >= 2:
        prediction = f"; a new site: {format_interval(het['pi_low'], het['pi_high'])}" if het["re_sites"] >= 3 else ""
        print(
            f"  random effects: average site {format_pct(het['re_pct_reduction'])}% "
            f"({format_interval(het['re_ci_low'], het['re_ci_high'])}), tau^2 {het['tau2']:.3f}{prediction}"
        )


def _add_pseudonymise(commands) -> None:
    parser = commands.add_parser(
        "pseudonymise",
        help="replace person and crime IDs with keyed hashes (HMAC-SHA-256)",
        description="Write a copy of a records folder whose person_id and crime_id are keyed hashes, "
        "and without names or postcodes. Keep the key file private: with it the same IDs always "
        "get the same pseudonyms; without it they cannot be reversed or recomputed.",
        epilog="example:\n  fdkit pseudonymise --new-key unit.key\n"
        "  fdkit pseudonymise --records raw_extract --out pseudonymised --key-file unit.key\n"
        "  fdkit pseudonymise --relink allocation.csv --ids raw/nominals.csv --id-column 'Nominal ID' "
        "--key-file unit.key --out case_list.csv",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--records", type=Path, help="the records folder to pseudonymise")
    parser.add_argument("--out", type=Path, help="the folder to write (must not hold records already)")
    parser.add_argument("--key-file", type=Path, help="the unit's secret key")
    parser.add_argument("--new-key", type=Path, metavar="FILE", help="create a new random key file and stop")
    parser.add_argument("--dayfirst", action="store_true", help="read day-first dates in the records")
    parser.add_argument(
        "--insecure-key-file", action="store_true", help="use a key file that others may read (not advised)"
    )
    parser.add_argument(
        "--relink",
        type=Path,
        metavar="CSV",
        help="instead: add the real ID to each pseudonym (person_id) of this table, e.g. the allocation; "
        "needs --ids, --id-column, --key-file and --out",
    )
    parser.add_argument("--ids", type=Path, metavar="CSV", help="with --relink: the unit's file of real IDs")
    parser.add_argument("--id-column", help="with --relink: the column of --ids holding the IDs")
    parser.set_defaults(run=_run_pseudonymise)


def _run_pseudonymise(args) -> int:
    from . import files, privacy
    from .records import load_records, write_records

    if args.relink:
        return _relink(args)
    if args.new_key:
        files.OutputGuard(inputs=[args.records, args.key_file], input_folders=[args.records]).claim(
            args.new_key, replaceable=False
        )
        privacy.new_key(args.new_key)
        print(f"wrote a new key to {args.new_key}; keep it private and never commit or share it")
        return 0
    if not (args.records and args.out and args.key_file):
        raise SystemExit(_usage(args, "give --records, --out and --key-file (or --new-key FILE)"))
    outputs = files.OutputGuard(inputs=[args.key_file], input_folders=[args.records])
    key = privacy.read_key(args.key_file, allow_insecure_file=args.insecure_key_file)
    with outputs.staged_folder(args.out) as staging:
        safe = privacy.pseudonymise(load_records(args.records, dayfirst=args.dayfirst), key)
        write_records(safe, staging)
        described = args.records / "extract.json"  # coverage dates and fingerprints: no personal data
        if described.is_file():
            shutil.copyfile(described, staging / described.name)
    print(f"wrote pseudonymised records to {args.out}/ ({len(safe.persons):,} persons, {len(safe.events):,} events)")
    return 0


def _relink(args) -> int:
    from . import files, privacy
    from .records import read_table

    if not (args.ids and args.id_column and args.key_file and args.out):
        raise SystemExit(_usage(args, "--relink needs --ids, --id-column, --key-file and --out"))
    outputs = files.OutputGuard(inputs=[args.relink, args.ids, args.key_file])
    outputs.claim(args.out, replaceable=False)  # a case list is never overwritten
    table = read_table(args.relink, required=("person_id",), not_blank=("person_id",))
    ids = read_table(args.ids, required=(args.id_column,))[args.id_column]
    key = privacy.read_key(args.key_file, allow_insecure_file=args.insecure_key_file)
    outputs.write_csv(privacy.relink(table, ids, key), args.out)
    print(f"wrote {args.out}: {len(table):,} rows, each with its real_id; it identifies people, keep it secure")
    return 0


def _add_workshop(commands) -> None:
    parser = commands.add_parser(
        "workshop",
        help="write student and trainer copies of the notebooks for a workshop",
        description="Write DIR/student (solution cells removed, outputs cleared), DIR/trainer (complete) "
        "and DIR/synthetic (the data the notebooks read), ready to zip for an offline room.",
        epilog="example:\n  fdkit workshop --out workshop\n"
        "  cd workshop && zip -r ../students.zip student synthetic README.md   # the trainer/ copies stay with you",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", type=Path, required=True, help="the folder to create")
    parser.add_argument("--force", action="store_true", help="replace an existing workshop folder")
    parser.set_defaults(run=_run_workshop)


def _run_workshop(args) -> int:
    from . import files
    from .resources import kit_path
    from .workshop import make_workshop

    outputs = files.OutputGuard(input_folders=[kit_path("notebooks"), kit_path("synthetic")], force=args.force)
    with outputs.staged_folder(args.out, own_names=("student", "trainer", "synthetic", "README.md")) as staging:
        written = make_workshop(staging, overwrite=True)
    print(
        f"wrote {len(written['student'])} student and {len(written['trainer'])} trainer notebooks "
        f"and the synthetic records to {args.out}/"
    )
    return 0


def _whole_number(text: str, minimum: int, rule: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {quoted(text)}") from None
    if number < minimum:
        raise argparse.ArgumentTypeError(f"{rule}, got {shorten(number)}")
    return number


def _positive_int(text: str) -> int:
    return _whole_number(text, 1, "must be at least 1")


def _non_negative_int(text: str) -> int:
    return _whole_number(text, 0, "must not be negative")


def _seed(text: str) -> int:
    try:
        return _non_negative_int(text)
    except argparse.ArgumentTypeError as error:
        raise argparse.ArgumentTypeError(f"a seed is a whole number from 0: {error}") from None


def _add_import(commands) -> None:
    parser = commands.add_parser(
        "import",
        help="turn a records system's raw export into a records folder, by a declared mapping",
        description="Read the export's files named in a TOML mapping (one flat involvement file, or crimes "
        "and links; and nominals), map their columns, values and offence codes onto the records contract, "
        "and write a records folder with an exclusion ledger (import_ledger.csv) that counts every row left "
        "out, by reason, and an extract.json with the extract's coverage dates. Spaces around values are "
        "always trimmed, case is ignored, exact duplicate rows are folded, and names and every other "
        "column not mapped are never copied.",
        epilog="example:\n  fdkit import --template > mapping.toml      # then edit it\n"
        "  fdkit import --mapping mapping.toml --out records_raw raw\n"
        "  fdkit import --mapping mapping.toml --lookup our_offences.csv --out records_raw raw",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("raw", type=Path, nargs="?", help="the folder holding the export's files")
    parser.add_argument("--mapping", type=Path, help="the mapping (TOML)")
    parser.add_argument("--out", type=Path, help="the records folder to create (must not hold records)")
    parser.add_argument("--template", action="store_true", help="print a commented mapping template and stop")
    _add_lookup(parser)
    parser.set_defaults(run=_run_import)


def _run_import(args) -> int:
    from . import files, importer

    if args.template:
        sys.stdout.write(importer.template())
        return 0
    if not (args.raw and args.mapping and args.out):
        raise SystemExit(_usage(args, "give --mapping, --out and the raw export folder (or --template)"))
    outputs = files.OutputGuard(inputs=[args.mapping, args.lookup], input_folders=[args.raw])
    result = importer.import_export(args.raw, args.mapping, lookup=_lookup(args))
    with outputs.staged_folder(args.out) as staging:
        importer.write_import(result, staging, args.raw)
    print(result)
    print(f"\nwritten to {args.out}/ (the ledger is {args.out / importer.LEDGER_FILE})")
    return 0


def _add_merge(commands) -> None:
    parser = commands.add_parser(
        "merge",
        help="combine a baseline extract and a later follow-up extract into one records folder",
        description="Combine imported records folders, oldest first. Events are de-duplicated by "
        "(crime_id, person_id, role) and persons by person_id; where a later extract records the same "
        "crime or person differently, its version is kept and the change is listed in merge_conflicts.csv. "
        "extracts.csv records each extract's coverage dates and what it added.",
        epilog="example:\n  fdkit merge --out records_all records_2023 records_2024\n"
        "  fdkit analyse --records records_all --allocation allocation.csv --out results.csv",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("extracts", type=Path, nargs="+", help="records folders, oldest first (at least two)")
    parser.add_argument("--out", type=Path, required=True, help="the records folder to create")
    _add_lookup(parser)
    parser.set_defaults(run=_run_merge)


def _run_merge(args) -> int:
    from . import files, importer
    from .records import load_records

    if len(args.extracts) < 2:
        raise SystemExit(_usage(args, "give at least two records folders, oldest first"))
    lookup = _lookup(args)
    outputs = files.OutputGuard(inputs=[args.lookup], input_folders=args.extracts)
    result = importer.merge_extracts([load_records(folder, lookup=lookup) for folder in args.extracts])
    with outputs.staged_folder(args.out) as staging:
        importer.write_merge(result, staging)
    print(result)
    print(f"\nwritten to {args.out}/ (changes in {args.out / importer.CONFLICTS_FILE})")
    return 0


def _add_lookup(parser, purpose: str | None = None) -> None:
    """The one --lookup option every command that classifies offences takes."""
    parser.add_argument(
        "--lookup",
        type=Path,
        metavar="CSV",
        help=purpose
        or "your unit's offence lookup (the columns of fdkit/data/offences.csv); default: the records "
        "folder's own offences.csv if it has one, else the kit's",
    )


def _lookup(args):
    from .offences import read_lookup

    return read_lookup(args.lookup) if getattr(args, "lookup", None) else None


def _int_list(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected whole numbers separated by commas, got {quoted(text)}") from None


def _float_list(text: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, got {quoted(text)}") from None


def _iso_date(text: str) -> str:
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date as YYYY-MM-DD, got {quoted(text)}") from None


def _usage(args, message: str) -> int:
    print(f"fdkit {args.command}: {message}", file=sys.stderr)
    return 2


def _data_error(path: Path, message: str) -> FdkitDataError:
    return FdkitDataError([Problem(path.name, message)], source=path)


class _Parser(argparse.ArgumentParser):
    """argparse's parser, with each long value in its own messages shortened.

    argparse writes its messages itself (an invalid choice, arguments it does not know), so
    the long words in them are cut as every other message of the kit cuts its values.
    """

    def error(self, message: str) -> NoReturn:
        super().error(re.sub(rf"\S{{{ECHOED + 1},}}", lambda long: shorten(long.group()), message))


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="fdkit",
        description="Teach and replicate the Milton Keynes Focused Deterrence trial.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"fdkit {_version()}")
    parser.add_argument("--debug", action="store_true", help="show a traceback when a command fails")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True, dest="command")
    for add in (
        _add_validate,
        _add_synth,
        _add_screen,
        _add_plan,
        _add_randomise,
        _add_verify,
        _add_analyse,
        _add_power,
        _add_report,
        _add_pool,
        _add_pseudonymise,
        _add_workshop,
        _add_import,
        _add_merge,
    ):
        add(commands)
    return parser


def _version() -> str:
    from . import __version__

    return __version__


def main(argv: list[str] | None = None) -> int:
    """Run the ``fdkit`` command and return its exit code.

    0 success; 1 a data problem or a file that cannot be read or written (a message naming
    the file); 2 a usage error (argparse's, or an output the guard refuses); 3 an unexpected
    error, which is a bug in fdkit: the message asks for a report and shows the traceback.
    """
    from .files import OutputRefused

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except BrokenPipeError:  # output piped into `head` and the like: stop quietly
        sys.stdout = open(os.devnull, "w")
        return 0
    except KeyboardInterrupt:
        print(f"fdkit {args.command}: interrupted; no output was half-written", file=sys.stderr)
        return 130
    except OutputRefused as error:
        _debug_traceback(args)
        print(f"fdkit {args.command}: {error}", file=sys.stderr)
        return 2
    except FdkitDataError as error:
        _debug_traceback(args)
        print(f"fdkit {args.command}: {error}", file=sys.stderr)
        return 1
    except OSError as error:  # a file that cannot be read or written: the user can fix it
        _debug_traceback(args)
        print(f"fdkit {args.command}: {_os_message(error)}", file=sys.stderr)
        return 1
    except Exception:
        print(
            f"fdkit {args.command}: an unexpected error; this is a bug in fdkit; please report it "
            "with the command you ran and the traceback below.",
            file=sys.stderr,
        )
        traceback.print_exc()
        return 3


def _debug_traceback(args) -> None:
    if getattr(args, "debug", False):
        traceback.print_exc()


def _os_message(error: OSError) -> str:
    """A file system error in words: the file, the reason and what to do."""
    from .files import OutputFailed

    if isinstance(error, OutputFailed) or error.filename is None:
        return str(error.strerror or error)
    fixes = {
        FileNotFoundError: "check the path",
        PermissionError: "check the file's permissions",
        IsADirectoryError: "give a file, not a folder",
        NotADirectoryError: "a part of the path is a file, not a folder",
    }
    fix = next((text for kind, text in fixes.items() if isinstance(error, kind)), "check the file and the disk")
    return f"cannot use {shorten(error.filename, PATH_ECHOED)}: {error.strerror}; {fix}"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
