"""The ``fdkit`` command: a thin layer over the package's functions.

Exit codes: 0 success, 1 a data problem (a short message naming the file, column and rows;
``--debug`` adds the traceback), 2 a usage error.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from datetime import date
from pathlib import Path

from .records import FdkitDataError, Problem

EPILOG = """\
examples:
  fdkit synth --out my_records          write the kit's synthetic police records
  fdkit validate synthetic              check a records folder and summarise it
  fdkit screen --records synthetic --reference-date 2023-02-01 --out eligible.csv
  fdkit randomise --eligible eligible.csv --strata age_band --treat 11-17=20 --treat 18-25=25 \\
      --seed 20230201 --date 2023-02-01 --out allocation.csv
  fdkit verify --eligible eligible.csv allocation.csv
  fdkit analyse --records synthetic --allocation synthetic/allocation.csv --out results.csv
  fdkit power --n-treated 45 --n-control 103 --reduction 54 --sims 1000 --seed 1 --out power.csv
  fdkit report --records synthetic --allocation synthetic/allocation.csv --out report.html

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
    parser.set_defaults(run=_run_validate)


def _run_validate(args) -> int:
    from .records import load_records, summarise

    records = load_records(args.folder, dayfirst=args.dayfirst)
    print(summarise(records))
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
        "  fdkit synth --scenario synthetic/scenario.toml --seed 7 --out other_records",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", type=Path, required=True, help="folder to write (created)")
    parser.add_argument("--scenario", type=Path, default=None, help="scenario TOML file (default: the kit's)")
    parser.add_argument("--seed", type=int, default=None, help="overrides the scenario's seed")
    parser.add_argument("--force", action="store_true", help="write into --out even if it already has files")
    parser.set_defaults(run=_run_synth)


def _run_synth(args) -> int:
    from . import synth

    scenario = synth.load_scenario(args.scenario)
    written = synth.write_synthetic(args.out, scenario, seed=args.seed, overwrite=args.force)
    print(written.describe())
    return 0


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
    rule = parser.add_argument_group("the rule (defaults: the trial's)")
    rule.add_argument("--min-age", type=int, default=11)
    rule.add_argument("--max-age", type=int, default=25)
    rule.add_argument("--knife-window-months", type=int, default=12)
    rule.add_argument("--other-window-months", type=int, default=24)
    parser.set_defaults(run=_run_screen)


def _run_screen(args) -> int:
    from . import eligibility
    from .records import load_records, read_table

    records = load_records(args.records, dayfirst=args.dayfirst)
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
    eligibility.write_eligible(result, args.out, args.funnel_out)
    print(f"Screening on {args.reference_date}: {rule.describe()}")
    print(result.funnel.to_string(index=False))
    bands_found = result.eligible["age_band"].value_counts().sort_index()
    print(
        f"\n{len(result.eligible)} eligible ({', '.join(f'{n} aged {b}' for b, n in bands_found.items())}); "
        f"written to {args.out}"
    )
    return 0


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
    parser.add_argument("--seed", type=int, required=True, help="the random seed (record it!)")
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
    parser.add_argument("--n-treated", type=int, help="treated places in all (complete method)")
    parser.add_argument("--probability", type=float, default=0.5, help="chance of treatment (simple method)")
    parser.add_argument("--previous", type=Path, help="an earlier allocation this wave adds to")
    parser.set_defaults(run=_run_randomise)


def _run_randomise(args) -> int:
    from . import randomise
    from .eligibility import read_eligible

    capacities = {}
    for item in args.treat:
        stratum, _, number = item.rpartition("=")
        if not stratum or not number.isdigit():
            raise SystemExit(_usage(args, f"--treat takes STRATUM=N, e.g. 11-17=20; got {item!r}"))
        capacities[stratum] = int(number)
    method = args.method or ("stratified" if capacities else "complete")
    if method == "stratified" and not (args.strata and capacities):
        raise SystemExit(_usage(args, "stratified allocation needs --strata and a --treat for each stratum"))
    if method == "complete" and args.n_treated is None:
        raise SystemExit(_usage(args, "complete allocation needs --n-treated"))
    eligible = read_eligible(args.eligible, strata=args.strata if method == "stratified" else None)
    previous = randomise.read_allocation(args.previous) if args.previous else None
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
    path, seal = randomise.write_allocation(allocation, args.out)
    print(allocation.counts().to_string())
    print(f"\nwrote {path} and its seal {seal}")
    return 0


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
    parser.set_defaults(run=_run_verify)


def _run_verify(args) -> int:
    from . import randomise
    from .eligibility import read_eligible

    result = randomise.verify(args.allocation, [read_eligible(path) for path in args.eligible])
    print(result, file=sys.stdout if result.ok else sys.stderr)
    return 0 if result.ok else 1


def _add_analyse(commands) -> None:
    parser = commands.add_parser(
        "analyse",
        help="estimate the trial's effects on every outcome",
        description="Build each randomised person's baseline and follow-up outcomes from the "
        "records and the allocation, then estimate the effects by every method, overall and per "
        "stratum, with Holm and Benjamini-Hochberg adjusted p-values.",
        epilog="example:\n  fdkit analyse --records synthetic --allocation synthetic/allocation.csv "
        "--out results.csv --frame-out frame.csv --seed 1",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--records", type=Path, required=True, help="the records folder")
    parser.add_argument("--allocation", type=Path, required=True, help="the allocation CSV (its seal beside it)")
    parser.add_argument("--out", type=Path, required=True, help="where to write the results table (CSV)")
    parser.add_argument("--frame-out", type=Path, help="also write the per-person outcome frame (CSV)")
    parser.add_argument("--follow-up-months", type=int, default=12, help="follow-up length (default 12)")
    parser.add_argument(
        "--harm-weights", type=Path, help="CSV of offence_code,weight (default: the kit's illustrative weights)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for resampling (default 0)")
    parser.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples (default 2000)")
    parser.add_argument(
        "--permutations", type=int, default=2000, help="re-draws of the design for randomisation tests (default 2000)"
    )
    parser.add_argument(
        "--interval",
        choices=("bootstrap", "randomisation"),
        default="bootstrap",
        help="the ratio of means' interval: the stratified bootstrap (default) or the "
        "randomisation interval, better calibrated at ~150 people (notebook 06)",
    )
    parser.add_argument("--dayfirst", action="store_true", help="read day-first dates in the records")
    parser.set_defaults(run=_run_analyse)


def _run_analyse(args) -> int:
    from . import analysis, harm, outcomes, randomise
    from .records import load_records

    if args.follow_up_months < 1 or args.resamples < 100 or args.permutations < 100:
        raise SystemExit(
            _usage(args, "--follow-up-months must be at least 1, --resamples and --permutations at least 100")
        )
    records = load_records(args.records, dayfirst=args.dayfirst)
    allocation = randomise.read_allocation(args.allocation)
    weights = harm.read_weights(args.harm_weights) if args.harm_weights else None
    frame = outcomes.build_frame(records, allocation, weights=weights, follow_up_months=args.follow_up_months)
    for arm in ("treatment", "control"):
        if not (frame["arm"] == arm).any():
            raise _data_error(args.allocation, f"no one in the {arm} arm: there is nothing to compare")
    if args.frame_out:
        frame.assign(randomised_on=frame["randomised_on"].dt.strftime("%Y-%m-%d")).to_csv(
            args.frame_out, index=False, lineterminator="\n"
        )
    table = analysis.results_table(
        frame, seed=args.seed, resamples=args.resamples, permutations=args.permutations, interval=args.interval
    )
    table.to_csv(args.out, index=False, lineterminator="\n")
    shown = table[(table["subgroup"] == "all") & (table["method"] == "ratio_of_means")]
    print(
        f"{len(frame)} people ({(frame['arm'] == 'treatment').sum()} treatment), "
        f"{args.follow_up_months}-month follow-up; ratio of means, all ages:"
    )
    print(
        shown[["outcome", "mean_treated", "mean_control", "pct_reduction", "ci_low", "ci_high", "p_value"]]
        .round(3)
        .to_string(index=False)
    )
    print(
        f"\nall methods and subgroups written to {args.out}"
        + (f"; outcome frame to {args.frame_out}" if args.frame_out else "")
    )
    return 0


POWER_COLUMNS = (
    "n_treated",
    "n_control",
    "reduction",
    "method",
    "power",
    "bias",
    "rmse",
    "coverage",
    "type_s",
    "type_m",
)


def _add_power(commands) -> None:
    parser = commands.add_parser(
        "power",
        help="power, bias, coverage and type S/M of trial designs, by simulation",
        description="Simulate trials of each design from the synthetic world and diagnose the "
        "analysis. Sizes are paired element by element and split across age bands in the trial's "
        "proportions; every size is run at every reduction. With --reduction 0 the 'power' column "
        "is the type I error.",
        epilog=(
            "example:\n"
            "  fdkit power --n-treated 45 --n-control 103 --reduction 54 --sims 1000 --seed 1 --out power.csv\n"
            "  fdkit power --n-treated 45,90,180 --n-control 105,210,420 --reduction 25,54 --out curve.csv"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--n-treated", type=_int_list, required=True, help="comma-separated treated sizes")
    parser.add_argument("--n-control", type=_int_list, required=True, help="comma-separated control sizes, paired")
    parser.add_argument(
        "--reduction", type=_float_list, required=True, help="true %% reduction(s) in the outcome, comma-separated"
    )
    parser.add_argument("--out", type=Path, required=True, help="where to write the diagnosis (CSV)")
    parser.add_argument("--sims", type=int, default=1000, help="simulated trials per design (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    parser.add_argument("--outcome", default="harm_suspect", help="outcome to analyse (default harm_suspect)")
    parser.add_argument(
        "--methods",
        type=lambda t: tuple(t.split(",")),
        default=("ratio_of_means",),
        help="comma-separated: ratio_of_means,welch_t,mann_whitney (default ratio_of_means)",
    )
    parser.add_argument("--permutations", type=int, default=1000, help="randomisation re-draws (default 1000)")
    parser.set_defaults(run=_run_power)


def _run_power(args) -> int:
    from . import design, outcomes

    if len(args.n_treated) != len(args.n_control):
        raise SystemExit(_usage(args, "--n-treated and --n-control must list the same number of sizes"))
    if args.outcome not in outcomes.OUTCOME_NAMES:
        raise SystemExit(_usage(args, f"--outcome must be one of {', '.join(outcomes.OUTCOME_NAMES)}"))
    if unknown := set(args.methods) - set(design.DIAGNOSIS_METHODS):
        raise SystemExit(
            _usage(
                args, f"unknown methods {', '.join(sorted(unknown))}; choose from {', '.join(design.DIAGNOSIS_METHODS)}"
            )
        )
    if any(not 0 <= r <= 100 for r in args.reduction) or min(args.n_treated + args.n_control) < 2 or args.sims < 10:
        raise SystemExit(_usage(args, "reductions must be 0-100, sizes at least 2 and --sims at least 10"))
    if sys.stderr.isatty():
        print("building the synthetic superpopulation ...", file=sys.stderr, flush=True)
    population = design.build_superpopulation()
    table = design.power_curve(
        population,
        list(zip(args.n_treated, args.n_control)),
        args.reduction,
        sims=args.sims,
        seed=args.seed,
        progress=True,
        outcome=args.outcome,
        methods=args.methods,
        permutations=args.permutations,
    )[list(POWER_COLUMNS)]
    table.to_csv(args.out, index=False, lineterminator="\n")
    print(table.round(3).to_string(index=False))
    print(f"\n{args.sims:,} simulated trials per design; written to {args.out}")
    return 0


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
    parser.add_argument("--records", type=Path, required=True, help="the records folder")
    parser.add_argument("--allocation", type=Path, required=True, help="the allocation CSV (its seal beside it)")
    parser.add_argument("--out", type=Path, required=True, help="the HTML file to write")
    parser.add_argument(
        "--funnel",
        type=Path,
        help="the screening funnel CSV (fdkit screen --funnel-out); default: re-screen "
        "with the trial's rule on the randomisation date",
    )
    parser.add_argument(
        "--primary",
        default="harm_suspect",
        metavar="OUTCOME",
        help="the pre-specified primary outcome, as named in the trial's protocol: harm_suspect (default), "
        "knife_suspect, violence_suspect, violence_sexual_suspect, other_npi_suspect, violence_victim or knife_victim",
    )
    parser.add_argument("--follow-up-months", type=int, default=12, help="follow-up length (default 12)")
    parser.add_argument("--harm-weights", type=Path, help="CSV of offence_code,weight (default: illustrative)")
    parser.add_argument("--seed", type=int, default=1, help="seed for resampling (default 1)")
    title = parser.add_argument_group("the title block")
    title.add_argument("--unit", default="", help="the unit that ran the trial")
    title.add_argument("--date", type=_iso_date, default=None, help="the report's date, YYYY-MM-DD (default today)")
    title.add_argument("--registration", default="", help="the trial's registry and identifier")
    parser.add_argument(
        "--pdf",
        nargs="?",
        type=Path,
        const=True,
        default=None,
        metavar="FILE",
        help="also print the report to an A4 PDF with headless Chromium (default: beside the HTML)",
    )
    parser.set_defaults(run=_run_report)


def _run_report(args) -> int:
    from . import report

    if args.funnel and not args.funnel.is_file():
        raise FileNotFoundError(f"funnel file {args.funnel} does not exist")
    settings = report.ReportSettings(
        records=args.records,
        allocation=args.allocation,
        funnel=args.funnel,
        follow_up_months=args.follow_up_months,
        harm_weights=args.harm_weights,
        primary=args.primary,
        seed=args.seed,
        unit=args.unit,
        report_date=args.date or report.today(),
        registration=args.registration,
    )
    progress = None
    if sys.stderr.isatty():

        def progress(message):
            print(f"fdkit report: {message} ...", file=sys.stderr, flush=True)

    out = report.render_report(settings, args.out, progress=progress)
    print(f"wrote {out} ({out.stat().st_size / 1024:,.0f} KB, self-contained)")
    if args.pdf is not None:
        pdf = out.with_suffix(".pdf") if args.pdf is True else args.pdf
        if report.find_chromium() is None:
            print(
                f"fdkit report: no Chromium here to print with; {report.PRINT_HELP.format(html=out)}", file=sys.stderr
            )
            return 0
        report.write_pdf(out, pdf)
        print(f"wrote {pdf} (A4)")
    return 0


def _add_pseudonymise(commands) -> None:
    parser = commands.add_parser(
        "pseudonymise",
        help="replace person and crime IDs with keyed hashes (HMAC-SHA-256)",
        description="Write a copy of a records folder whose person_id and crime_id are keyed hashes, "
        "and without names or postcodes. Keep the key file private: with it the same IDs always "
        "get the same pseudonyms; without it they cannot be reversed or recomputed.",
        epilog="example:\n  fdkit pseudonymise --new-key unit.key\n"
        "  fdkit pseudonymise --records raw_extract --out pseudonymised --key-file unit.key",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--records", type=Path, help="the records folder to pseudonymise")
    parser.add_argument("--out", type=Path, help="the folder to write (must not hold records already)")
    parser.add_argument("--key-file", type=Path, help="the unit's secret key")
    parser.add_argument("--new-key", type=Path, metavar="FILE", help="create a new random key file and stop")
    parser.add_argument("--dayfirst", action="store_true", help="read day-first dates in the records")
    parser.set_defaults(run=_run_pseudonymise)


def _run_pseudonymise(args) -> int:
    from . import privacy
    from .records import load_records, write_records

    if args.new_key:
        privacy.new_key(args.new_key)
        print(f"wrote a new key to {args.new_key}; keep it private and never commit or share it")
        return 0
    if not (args.records and args.out and args.key_file):
        raise SystemExit(_usage(args, "give --records, --out and --key-file (or --new-key FILE)"))
    if (args.out / "events.csv").exists():
        raise FileExistsError(f"{args.out}/ already holds records; choose an empty folder")
    safe = privacy.pseudonymise(load_records(args.records, dayfirst=args.dayfirst), privacy.read_key(args.key_file))
    write_records(safe, args.out)
    print(f"wrote pseudonymised records to {args.out}/ ({len(safe.persons):,} persons, {len(safe.events):,} events)")
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
    from .workshop import make_workshop

    written = make_workshop(args.out, overwrite=args.force)
    print(
        f"wrote {len(written['student'])} student and {len(written['trainer'])} trainer notebooks "
        f"and the synthetic records to {args.out}/"
    )
    return 0


def _int_list(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected whole numbers separated by commas, got {text!r}") from None


def _float_list(text: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, got {text!r}") from None


def _iso_date(text: str) -> str:
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date as YYYY-MM-DD, got {text!r}") from None


def _usage(args, message: str) -> int:
    print(f"fdkit {args.command}: {message}", file=sys.stderr)
    return 2


def _data_error(path: Path, message: str) -> FdkitDataError:
    return FdkitDataError([Problem(path.name, message)], source=path)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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
        _add_randomise,
        _add_verify,
        _add_analyse,
        _add_power,
        _add_report,
        _add_pseudonymise,
        _add_workshop,
    ):
        add(commands)
    return parser


def _version() -> str:
    from . import __version__

    return __version__


def main(argv: list[str] | None = None) -> int:
    """Run the ``fdkit`` command and return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except BrokenPipeError:  # output piped into `head` and the like: stop quietly
        sys.stdout = open(os.devnull, "w")
        return 0
    except (ValueError, FileExistsError, FileNotFoundError, NotADirectoryError) as error:
        # FdkitDataError is a ValueError; the kit's functions also raise ValueError for
        # impossible requests on valid files (a capacity above a stratum's size): data problems.
        if args.debug:
            traceback.print_exc()
        print(f"fdkit {args.command}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
