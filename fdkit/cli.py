"""The ``fdkit`` command: a thin layer over the package's functions.

Exit codes: 0 success, 1 a data problem (a short message naming the file, column and rows;
``--debug`` adds the traceback), 2 a usage error.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

from .records import FdkitDataError

EPILOG = """\
examples:
  fdkit synth --out my_records          write the kit's synthetic police records
  fdkit validate synthetic              check a records folder and summarise it

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
    parser.add_argument(
        "--scenario", type=Path, default=None, help="scenario TOML file (default: the kit's)"
    )
    parser.add_argument("--seed", type=int, default=None, help="overrides the scenario's seed")
    parser.add_argument(
        "--force", action="store_true", help="write into --out even if it already has files"
    )
    parser.set_defaults(run=_run_synth)


def _run_synth(args) -> int:
    from . import synth

    scenario = synth.load_scenario(args.scenario)
    written = synth.write_synthetic(args.out, scenario, seed=args.seed, overwrite=args.force)
    print(written.describe())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fdkit",
        description="Teach and replicate the Milton Keynes Focused Deterrence trial.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"fdkit {_version()}")
    parser.add_argument(
        "--debug", action="store_true", help="show a traceback when a command fails"
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for add in (_add_validate, _add_synth):
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
    except FdkitDataError as error:
        if args.debug:
            traceback.print_exc()
        print(f"fdkit {args.run.__name__.removeprefix('_run_')}: {error}", file=sys.stderr)
        return 1
    except (FileExistsError, FileNotFoundError, NotADirectoryError) as error:
        if args.debug:
            traceback.print_exc()
        print(f"fdkit: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
