"""The kit's hostile-input suite: over a hundred ways to misuse the ``fdkit`` command.

Run it as a script for a one-line verdict per case (exit 0 only if every case passes)::

    .venv/bin/python tests/hostile/suite.py            # all cases
    .venv/bin/python tests/hostile/suite.py formula    # the cases whose name contains "formula"
    .venv/bin/python tests/hostile/suite.py --quick    # leave out the cases that run a whole analysis

``tests/test_hostile.py`` runs the same cases under pytest, so ``make test`` covers them.

Every case builds its own folder, runs ``fdkit.cli.main`` in process, and passes only if

- the exit code is the one expected (1 a data problem, 2 a usage error, 0 where the kit
  should cope), and the message holds the words expected;
- no traceback was printed (unless the case is a deliberate bug: exit 3);
- every file that existed before is unchanged (unless the case lets the command replace it),
  and no temporary or staging file is left behind;
- the case's own check, if any, holds (a stamped output, a missing folder, ...).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import io
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from unittest import mock

REPOSITORY = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPOSITORY / "tests"))  # the shared builders, when run as a script too
from builders import randomise_command  # noqa: E402

SHIPPED = REPOSITORY / "synthetic"
#: The longest message a case may print on stderr (a bug's traceback, exit 3, aside).
MESSAGE_BYTES = 2048

PERSONS = "person_id,date_of_birth,sex\nA,2005-01-01,M\nB,2006-03-04,F\nC,2004-07-09,M\n"
EVENTS = (
    "crime_id,person_id,offence_date,role,offence_code,knife,police_initiated\n"
    "C1,A,2022-10-01,suspect,10D/1,false,true\n"
    "C2,A,2022-06-01,suspect,8G,false,false\n"
    "C2,B,2022-06-01,victim,8G,false,false\n"
    "C3,C,2022-08-01,suspect,8G,true,false\n"
)


@dataclasses.dataclass(frozen=True)
class Case:
    """One hostile input: how to build it, what the command must do."""

    name: str
    build: Callable[[Path], list[str]]  # builds files under the folder, returns the argv
    code: int
    words: tuple[str, ...] = ()
    may_change: tuple[str, ...] = ()  # files (relative) the command may replace or create
    check: Callable[[Path, str], str | None] | None = None  # returns a failure, or None
    patch: Callable[[], contextlib.AbstractContextManager] | None = None
    slow: bool = False
    skip: str | None = None


CASES: list[Case] = []


def case(name, code, words=(), **options):
    def register(build):
        CASES.append(Case(name, build, code, tuple([words] if isinstance(words, str) else words), **options))
        return build

    return register


# --- builders ------------------------------------------------------------------------------


def records(root: Path, persons=PERSONS, events=EVENTS, engagement=None, name="rec") -> Path:
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    for file, text in (("persons.csv", persons), ("events.csv", events), ("engagement.csv", engagement)):
        if text is not None:
            (folder / file).write_text(text, encoding="utf-8")
    return folder


def trial(root: Path, edit_allocation=None, seal=True, edit_seal=None, eligible=True) -> Path:
    """The shipped eligible list, allocation and seal in ``root``; the allocation path."""
    allocation = root / "allocation.csv"
    text = (SHIPPED / "allocation.csv").read_text()
    allocation.write_text(edit_allocation(text) if edit_allocation else text)
    if seal:
        record = json.loads((SHIPPED / "allocation.seal.json").read_text())
        if edit_seal:
            record = edit_seal(record)
        (root / "allocation.seal.json").write_text(json.dumps(record, indent=2))
    if eligible:
        shutil.copy(SHIPPED / "eligible.csv", root / "eligible.csv")
    return allocation


def move_to_treatment(count):
    def edit(text):
        lines = text.splitlines()
        moved = 0
        for i, line in enumerate(lines):
            if ",control," in line and moved < count:
                lines[i] = line.replace(",control,", ",treatment,")
                moved += 1
        return "\n".join(lines) + "\n"

    return edit


def screen(root, out, *extra, folder=None):
    folder = folder or records(root)
    return ["screen", "--records", str(folder), "--reference-date", "2023-02-01", "--out", str(out), *extra]


def analyse(root, *extra, allocation=None):
    allocation = allocation or trial(root)
    return [
        "analyse",
        "--records",
        str(SHIPPED),
        "--allocation",
        str(allocation),
        "--out",
        str(root / "results.csv"),
        *extra,
    ]  # no analysis options: the shipped allocation's sealed plan decides them


def report(root, *extra, allocation=None):
    allocation = allocation or trial(root)
    return ["report", "--records", str(SHIPPED), "--allocation", str(allocation), *extra]


def randomise(root, out, *extra, eligible=None):
    if eligible is None:
        eligible = root / "eligible.csv"
        shutil.copy(SHIPPED / "eligible.csv", eligible)
    return randomise_command(eligible, out, *extra)


def key_file(root, content: bytes | str, mode=0o600, name="unit.key") -> Path:
    path = root / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    path.chmod(mode)
    return path


def pseudonymise(root, key, out=None):
    folder = records(root)
    return ["pseudonymise", "--records", str(folder), "--out", str(out or root / "safe"), "--key-file", str(key)]


def swap(text, old, new):
    assert old in text, old
    return text.replace(old, new, 1)


def file_exists(relative):
    return lambda root, output: None if (root / relative).is_file() else f"{relative} was not written"


def absent(relative):
    return lambda root, output: f"{relative} exists" if (root / relative).exists() else None


def fails_write():
    """A disk that fills up during the write (as /dev/full would)."""
    return mock.patch("fdkit.files.os.fsync", side_effect=OSError(errno.ENOSPC, "No space left on device"))


def interrupted_csv(after=1):
    """A run killed (Ctrl-C) after ``after`` CSV files were written."""
    import pandas as pd

    real = pd.DataFrame.to_csv
    calls = {"n": 0}

    def to_csv(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] > after:
            raise KeyboardInterrupt
        return real(self, *args, **kwargs)

    return mock.patch.object(pd.DataFrame, "to_csv", to_csv)


# --- A. outputs that would destroy an input ---------------------------------------------------


@case("screen --out onto the records' persons.csv", 2, "records folder")
def _(t):
    return screen(t, t / "rec" / "persons.csv")


@case("screen --out onto the records' events.csv", 2, "records folder")
def _(t):
    return screen(t, t / "rec" / "events.csv", "--force")


@case("screen --out a new file inside the records folder", 2, "reads")
def _(t):
    return screen(t, t / "rec" / "eligible.csv")


@case("screen --out and --funnel-out the same file", 2, "two outputs")
def _(t):
    return screen(t, t / "e.csv", "--funnel-out", str(t / "e.csv"))


@case("screen --out and --funnel-out the same file by two spellings", 2, "two outputs")
def _(t):
    (t / "sub").mkdir()
    return screen(t, t / "e.csv", "--funnel-out", str(t / "sub" / ".." / "e.csv"))


@case("re-screen onto the sealed eligible list", 2, "fingerprints")
def _(t):
    trial(t)
    shutil.copytree(SHIPPED, t / "rec", ignore=shutil.ignore_patterns("eligible.csv", "allocation*", "funnel.csv"))
    return screen(t, t / "eligible.csv", "--force", folder=t / "rec")


@case("screen --out onto its exclusions list", 2, "input")
def _(t):
    (t / "x.csv").write_text("person_id,reason\nA,deceased\n")
    return screen(t, t / "x.csv", "--exclusions", str(t / "x.csv"), "--force")


@case("screen --out a symlink to persons.csv", 2, "reads")
def _(t):
    folder = records(t)
    (t / "link.csv").symlink_to(folder / "persons.csv")
    return screen(t, t / "link.csv", "--force", folder=folder)


@case("screen --out through a symlinked folder into the records", 2, "reads")
def _(t):
    folder = records(t)
    (t / "dirlink").symlink_to(folder)
    return screen(t, t / "dirlink" / "new.csv", folder=folder)


@case("screen --out with .. back into the records", 2, "reads")
def _(t):
    folder = records(t)
    (t / "out").mkdir()
    return screen(t, t / "out" / ".." / "rec" / "persons.csv", "--force", folder=folder)


@case("screen --out an existing file without --force", 2, "--force")
def _(t):
    (t / "e.csv").write_text("keep me\n")
    return screen(t, t / "e.csv")


@case("screen --out an existing file with --force replaces it", 0, may_change=("e.csv",), check=file_exists("e.csv"))
def _(t):
    (t / "e.csv").write_text("old\n")
    return screen(t, t / "e.csv", "--force")


@case("screen --out a folder", 2, "is a folder")
def _(t):
    (t / "out").mkdir()
    return screen(t, t / "out")


@case("screen --out under a file", 2, "is a file")
def _(t):
    (t / "plain").write_text("x")
    return screen(t, t / "plain" / "e.csv")


@case("screen --out a device", 2, "regular file", skip=None if os.path.exists("/dev/full") else "no /dev/full")
def _(t):
    return screen(t, "/dev/full", "--force")


@case(
    "screen --out into folders that do not exist yet",
    0,
    may_change=("new/deeper/e.csv",),
    check=file_exists("new/deeper/e.csv"),
)
def _(t):
    return screen(t, t / "new" / "deeper" / "e.csv")


@case("analyse --out onto the sealed allocation", 2, ("allocation.csv",))
def _(t):
    args = analyse(t)
    args[args.index("--out") + 1] = str(t / "allocation.csv")
    return args


@case("analyse --out onto the seal", 2, "seal")
def _(t):
    args = analyse(t)
    args[args.index("--out") + 1] = str(t / "allocation.seal.json")
    return args


@case("analyse --frame-out onto the records' events.csv", 2, "reads")
def _(t):
    shutil.copytree(SHIPPED, t / "rec")
    args = analyse(t, "--frame-out", str(t / "rec" / "events.csv"), allocation=t / "rec" / "allocation.csv")
    args[args.index("--records") + 1] = str(t / "rec")
    return args


@case("analyse --out and --frame-out the same file", 2, "two outputs")
def _(t):
    return analyse(t, "--frame-out", str(t / "results.csv"))


@case("analyse --out onto its eligible list", 2, ("eligible.csv",))
def _(t):
    args = analyse(t, "--force")
    args[args.index("--out") + 1] = str(t / "eligible.csv")
    return args


@case("analyse --out onto its harm weights", 2, "input")
def _(t):
    (t / "w.csv").write_text("offence_code,weight\n8G,1\n")
    args = analyse(t, "--harm-weights", str(t / "w.csv"), "--force")
    args[args.index("--out") + 1] = str(t / "w.csv")
    return args


@case("report --out onto the sealed allocation", 2, "allocation.csv")
def _(t):
    return report(t, "--out", str(t / "allocation.csv"))


@case("report --out onto a records file", 2, "reads")
def _(t):
    return report(t, "--out", str(SHIPPED / "persons.csv"))


@case("report --out onto its funnel", 2, "input")
def _(t):
    shutil.copy(SHIPPED / "funnel.csv", t / "funnel.csv")
    return report(t, "--funnel", str(t / "funnel.csv"), "--out", str(t / "funnel.csv"), "--force")


@case("power --out onto a sealed allocation", 2, "sealed allocation")
def _(t):
    trial(t)
    return ["power", "--n-treated", "45", "--n-control", "103", "--reduction", "0", "--out", str(t / "allocation.csv")]


@case("power --out an existing file without --force", 2, "--force")
def _(t):
    (t / "p.csv").write_text("keep\n")
    return ["power", "--n-treated", "45", "--n-control", "103", "--reduction", "0", "--out", str(t / "p.csv")]


@case("randomise --out onto an existing allocation", 2, ("never overwritten", "--previous"))
def _(t):
    trial(t)
    return randomise(t, t / "allocation.csv", eligible=t / "eligible.csv")


@case("randomise --out onto its eligible list", 2, "input")
def _(t):
    return randomise(t, t / "eligible.csv")


@case("randomise --out into a records folder", 2, "records folder")
def _(t):
    records(t)
    return randomise(t, t / "rec" / "allocation.csv")


@case("randomise --out a seal file name", 2, "seal")
def _(t):
    return randomise(t, t / "old.seal.json")


@case("randomise --out beside an orphan seal", 2, "never overwritten")
def _(t):
    (t / "new.seal.json").write_text("{}")
    return randomise(t, t / "new.csv")


@case("randomise --previous and --out the same allocation", 2, "input")
def _(t):
    trial(t)
    return randomise(t, t / "allocation.csv", "--previous", str(t / "allocation.csv"), eligible=t / "eligible.csv")


@case("pseudonymise --out a folder holding engagement.csv", 2, "already holds files")
def _(t):
    (t / "safe").mkdir()
    (t / "safe" / "engagement.csv").write_text("person_id,engaged\nX,true\n")
    return pseudonymise(t, key_file(t, "0" + "7f3a9c1e5b2d8f4a6c0e9b7d3f1a5c8e" * 2))


@case("pseudonymise --out a folder holding only persons.csv", 2, "already holds files")
def _(t):
    (t / "safe").mkdir()
    (t / "safe" / "persons.csv").write_text("person_id,date_of_birth,sex\nX,2000-01-01,M\n")
    return pseudonymise(t, key_file(t, "7f3a9c1e5b2d8f4a6c0e9b7d3f1a5c8e" * 2))


@case("pseudonymise --out the records folder itself", 2, "reads")
def _(t):
    return pseudonymise(t, key_file(t, "7f3a9c1e5b2d8f4a6c0e9b7d3f1a5c8e" * 2), out=t / "rec")


@case("pseudonymise --out inside the records folder", 2, "reads")
def _(t):
    return pseudonymise(t, key_file(t, "7f3a9c1e5b2d8f4a6c0e9b7d3f1a5c8e" * 2), out=t / "rec" / "safe")


@case("pseudonymise --out the folder holding the records", 2, "reads")
def _(t):
    return pseudonymise(t, key_file(t, "7f3a9c1e5b2d8f4a6c0e9b7d3f1a5c8e" * 2), out=t)


@case("pseudonymise --new-key onto a records file", 2, "records folder")
def _(t):
    records(t)
    return ["pseudonymise", "--new-key", str(t / "rec" / "persons.csv")]


@case("pseudonymise --new-key onto an existing key", 2, "never replaced")
def _(t):
    key_file(t, "7f3a9c1e5b2d8f4a6c0e9b7d3f1a5c8e" * 2)
    return ["pseudonymise", "--new-key", str(t / "unit.key")]


@case("synth --out an existing records folder", 2, "already holds files")
def _(t):
    records(t)
    return ["synth", "--out", str(t / "rec")]


@case("synth --out a folder with a sealed allocation, even with --force", 2, "sealed allocation")
def _(t):
    (t / "mine").mkdir()
    trial(t / "mine")
    return ["synth", "--out", str(t / "mine"), "--force"]


@case("synth --out a file", 2, "is a file")
def _(t):
    (t / "plain").write_text("x")
    return ["synth", "--out", str(t / "plain")]


@case("workshop --out a folder that already holds files", 2, "already holds files")
def _(t):
    (t / "w").mkdir()
    (t / "w" / "notes.txt").write_text("mine")
    return ["workshop", "--out", str(t / "w")]


@case("workshop --out a file", 2, "is a file")
def _(t):
    (t / "w").write_text("x")
    return ["workshop", "--out", str(t / "w")]


@case("synth --out . --force in a folder of other files", 2, "did not write")
def _(t):
    (t / "thesis.docx").write_text("years of work")
    return ["synth", "--out", ".", "--force"]


@case("workshop --out a folder of other files with --force", 2, "did not write")
def _(t):
    (t / "w").mkdir()
    (t / "w" / "notes.txt").write_text("mine")
    return ["workshop", "--out", str(t / "w"), "--force"]


def fake_kit(t):
    """A stand-in for the kit's checkout, so a failing case can only harm a temporary folder."""
    (t / "kit" / "notebooks").mkdir(parents=True)
    shutil.copy(REPOSITORY / "notebooks" / "00_start_here.ipynb", t / "kit" / "notebooks")
    records(t / "kit", name="synthetic")
    return t / "kit"


def kit_root_in_tmp():
    class Patch(contextlib.ContextDecorator):
        def __enter__(self):
            self.patcher = mock.patch("fdkit.resources._CHECKOUT", Path.cwd() / "kit")
            return self.patcher.__enter__()

        def __exit__(self, *exc):
            return self.patcher.__exit__(*exc)

    return Patch()


@case("workshop --out the kit's own notebooks folder with --force", 2, "reads", patch=kit_root_in_tmp)
def _(t):
    return ["workshop", "--out", str(fake_kit(t) / "notebooks"), "--force"]


@case("workshop --out the kit's checkout itself with --force", 2, "reads", patch=kit_root_in_tmp)
def _(t):
    return ["workshop", "--out", str(fake_kit(t)), "--force"]


@case("pseudonymise --out a records file", 2, "is a file")
def _(t):
    folder = records(t)
    args = pseudonymise(t, key_file(t, GOOD_KEY))
    args[args.index("--out") + 1] = str(folder / "persons.csv")
    return args


# --- B. half-written outputs -------------------------------------------------------------------


@case("screen onto a full disk", 1, "No space left", patch=fails_write, check=absent("e.csv"))
def _(t):
    return screen(t, t / "e.csv")


@case("screen onto a full disk keeps the old file", 1, "No space left", patch=fails_write)
def _(t):
    (t / "e.csv").write_text("old\n")
    return screen(t, t / "e.csv", "--force")


@case("analyse onto a full disk", 1, "No space left", patch=fails_write, check=absent("results.csv"))
def _(t):
    return analyse(t, "--frame-out", str(t / "frame.csv"))  # the frame is written first: no long analysis


@case(
    "pseudonymise killed mid-write leaves no output folder",
    130,
    "interrupted",
    patch=lambda: interrupted_csv(after=1),
    check=absent("safe"),
)
def _(t):
    return pseudonymise(t, key_file(t, "7f3a9c1e5b2d8f4a6c0e9b7d3f1a5c8e" * 2))


@case(
    "pseudonymise killed mid-write leaves an existing empty folder empty",
    130,
    "interrupted",
    patch=lambda: interrupted_csv(after=1),
    check=lambda t, o: None if not any((t / "safe").iterdir()) else "safe/ is not empty",
)
def _(t):
    (t / "safe").mkdir()
    return pseudonymise(t, key_file(t, "7f3a9c1e5b2d8f4a6c0e9b7d3f1a5c8e" * 2))


@case(
    "screen killed between the eligible list and the funnel",
    130,
    "interrupted",
    patch=lambda: interrupted_csv(after=0),
    check=absent("e.csv"),
)
def _(t):
    return screen(t, t / "e.csv", "--funnel-out", str(t / "f.csv"))


@case(
    "synth killed mid-write leaves no folder", 130, "interrupted", patch=interrupted_csv, check=absent("s"), slow=True
)
def _(t):
    return ["synth", "--out", str(t / "s")]


# --- C. a tampered allocation --------------------------------------------------------------------


def unsealed_outputs(t, output):
    import pandas as pd

    if not output.startswith("UNSEALED ALLOCATION"):
        return "the summary does not begin UNSEALED ALLOCATION"
    if set(pd.read_csv(t / "results.csv")["allocation"]) != {"UNSEALED ALLOCATION"}:
        return "results.csv has no UNSEALED ALLOCATION column"
    return None


def forge_sha(record, allocation_text):
    record["allocation_sha256"] = hashlib.sha256(allocation_text.encode()).hexdigest()
    return record


@case("analyse an allocation with 10 people moved to treatment", 1, ("cannot be trusted", "--unsealed"))
def _(t):
    return analyse(t, allocation=trial(t, move_to_treatment(10)))


@case("analyse a tampered allocation whose seal hash was forged too", 1, "cannot be trusted")
def _(t):
    edited = move_to_treatment(10)((SHIPPED / "allocation.csv").read_text())
    return analyse(t, allocation=trial(t, lambda text: edited, edit_seal=lambda r: forge_sha(r, edited)))


@case("analyse an allocation with one person moved", 1, "does not hold|cannot be trusted".split("|")[1])
def _(t):
    return analyse(t, allocation=trial(t, move_to_treatment(1)))


@case("report a tampered allocation", 1, "cannot be trusted")
def _(t):
    return report(t, "--out", str(t / "r.html"), allocation=trial(t, move_to_treatment(10)))


@case(
    "analyse --unsealed a tampered allocation stamps every output",
    0,
    "UNSEALED ALLOCATION",
    may_change=("results.csv", "frame.csv"),
    check=unsealed_outputs,
    slow=True,
)
def _(t):
    return analyse(t, "--unsealed", "--frame-out", str(t / "frame.csv"), allocation=trial(t, move_to_treatment(10)))


@case(
    "analyse --unsealed a stratum whose people are all in one arm",
    0,
    "no separate estimate for 11-17",
    may_change=("results.csv",),
    slow=True,
)
def _(t):
    def all_control_under_18(text):
        return (
            "\n".join(
                line.replace(",treatment,", ",control,") if ",11-17," in line else line for line in text.splitlines()
            )
            + "\n"
        )

    return analyse(t, "--unsealed", allocation=trial(t, all_control_under_18))


@case("analyse an allocation without its seal", 1, "seal")
def _(t):
    return analyse(t, allocation=trial(t, seal=False))


@case(
    "analyse --unsealed an allocation without its seal",
    0,
    "UNSEALED ALLOCATION",
    may_change=("results.csv",),
    check=unsealed_outputs,
    slow=True,
)
def _(t):
    return analyse(t, "--unsealed", allocation=trial(t, seal=False))


@case("analyse with no eligible list to verify against", 1, "--eligible")
def _(t):
    return analyse(t, allocation=trial(t, eligible=False))


@case("analyse --eligible a different list", 1, "not the one sealed")
def _(t):
    lines = (SHIPPED / "eligible.csv").read_text().splitlines()
    (t / "other.csv").write_text("\n".join(lines[:-3]) + "\n")
    return analyse(t, "--eligible", str(t / "other.csv"))


@case("analyse after the eligible list beside it was edited", 1, "not the one sealed")
def _(t):
    allocation = trial(t)
    lines = (t / "eligible.csv").read_text().splitlines()
    (t / "eligible.csv").write_text("\n".join(lines[:-1]) + "\n")
    return analyse(t, allocation=allocation)


@case("analyse with the seed changed in the seal", 1, "cannot be trusted")
def _(t):
    def edit(record):
        record["waves"][0]["seed"] += 1
        return record

    return analyse(t, allocation=trial(t, edit_seal=edit))


@case("analyse with a capacity changed in the seal", 1, "cannot be trusted")
def _(t):
    def edit(record):
        record["waves"][0]["capacities"]["11-17"] = 21
        return record

    return analyse(t, allocation=trial(t, edit_seal=edit))


def seal_field(name, value):
    def edit(record):
        record["waves"][0][name] = value
        return record

    return edit


for _field, _value in (
    ("seed", "abc"),
    ("seed", -5),
    ("seed", 1.5),
    ("seed", True),
    ("method", "coin"),
    ("capacities", {"11-17": "x", "18-25": 25}),
    ("capacities", [20, 25]),
    ("probability", "half"),
    ("wave", None),
):
    CASES.append(
        Case(
            f"verify a seal whose {_field} is {_value!r}",
            (
                lambda f, v: (
                    lambda t: [
                        "verify",
                        "--eligible",
                        str(t / "eligible.csv"),
                        str(trial(t, edit_seal=seal_field(f, v))),
                    ]
                )
            )(_field, _value),
            1,
            ("seal is not readable",),
        )
    )


@case("analyse a seal whose seed is 'abc'", 1, "seal is not readable")
def _(t):
    return analyse(t, allocation=trial(t, edit_seal=seal_field("seed", "abc")))


@case("verify a seal whose waves are not a list", 1, "seal is not readable")
def _(t):
    return ["verify", "--eligible", str(t / "eligible.csv"), str(trial(t, edit_seal=lambda r: {**r, "waves": 5}))]


@case("verify a seal that is JSON null", 1, "seal is not readable")
def _(t):
    return ["verify", "--eligible", str(t / "eligible.csv"), str(trial(t, edit_seal=lambda r: None))]


@case("verify a seal without waves", 1, "seal is not readable")
def _(t):
    return ["verify", "--eligible", str(t / "eligible.csv"), str(trial(t, edit_seal=lambda r: {}))]


@case("a sealed, untouched allocation is analysed", 0, "ratio of means", may_change=("results.csv",), slow=True)
def _(t):
    return analyse(t)


@case(
    "report --unsealed a tampered allocation puts a banner on top",
    0,
    "UNSEALED ALLOCATION",
    may_change=("r.html",),
    check=lambda t, o: (
        None if "UNSEALED ALLOCATION" in (t / "r.html").read_text()[:20000] else "no banner near the top of the report"
    ),
    slow=True,
)
def _(t):
    return report(t, "--unsealed", "--out", str(t / "r.html"), allocation=trial(t, move_to_treatment(10)))


@case("report --unsealed an allocation without its seal", 1, "needs one even with --unsealed")
def _(t):
    return report(t, "--unsealed", "--out", str(t / "r.html"), allocation=trial(t, seal=False))


# --- D. implausible records ------------------------------------------------------------------------


def validate(t, persons=PERSONS, events=EVENTS, engagement=None, *extra):
    return ["validate", str(records(t, persons, events, engagement)), *extra]


@case("an event dated 2099", 1, ("2099-01-01", "extract date"))
def _(t):
    return validate(t, events=swap(EVENTS, "2022-10-01", "2099-01-01"))


@case("a date of birth in 2031", 1, ("2031-01-01", "dates of birth after"))
def _(t):
    return validate(t, persons=swap(PERSONS, "2005-01-01", "2031-01-01"))


@case("a person aged over 110", 1, ("over 110", "1890-01-01"))
def _(t):
    return validate(t, persons=swap(PERSONS, "2005-01-01", "1890-01-01"))


@case("one crime_id with two dates", 1, ("C2", "different offence dates"))
def _(t):
    return validate(t, events=swap(EVENTS, "C2,B,2022-06-01", "C2,B,2022-06-02"))


@case("one crime_id with two codes", 1, ("C2", "different offence codes"))
def _(t):
    return validate(t, events=swap(EVENTS, "C2,B,2022-06-01,victim,8G", "C2,B,2022-06-01,victim,10D/1"))


@case("an event after a given --extract-date", 1, ("2022-09-01", "2022-10-01"))
def _(t):
    return validate(t, PERSONS, EVENTS, None, "--extract-date", "2022-09-01")


@case("a future event within a later --extract-date is accepted", 0, "persons")
def _(t):
    return validate(t, PERSONS, swap(EVENTS, "2022-10-01", "2030-01-01"), None, "--extract-date", "2031-01-01")


@case("screen with the dates in the future is refused at load", 1, "extract date")
def _(t):
    return screen(t, t / "e.csv", folder=records(t, events=swap(EVENTS, "2022-10-01", "2099-01-01")))


for _option, _value in (
    ("--knife-window-months", "-12"),
    ("--knife-window-months", "0"),
    ("--other-window-months", "-1"),
    ("--min-age", "-3"),
    ("--max-age", "0"),
):
    CASES.append(
        Case(
            f"screen {_option} {_value}",
            (lambda o, v: lambda t: screen(t, t / "e.csv", o, v))(_option, _value),
            2,
            ("at least 1",),
        )
    )

for _command, _option, _value, _words in (
    ("analyse", "--follow-up-months", "0", "at least 1"),
    ("analyse", "--follow-up-months", "-6", "at least 1"),
    ("analyse", "--seed", "-1", "seed"),
    ("report", "--follow-up-months", "-1", "at least 1"),
    ("report", "--seed", "-2", "seed"),
    ("randomise", "--seed", "-5", "seed"),
    ("randomise", "--seed", "x", "seed"),
    ("power", "--seed", "-1", "seed"),
    ("synth", "--seed", "-1", "seed"),
):

    def _build(t, command=_command, option=_option, value=_value):
        if command == "analyse":
            return analyse(t, option, value)
        if command == "report":
            return report(t, "--out", str(t / "r.html"), option, value)
        if command == "randomise":
            args = randomise(t, t / "a.csv")
            args[args.index("--seed") + 1] = value
            return args
        if command == "power":
            return [
                "power",
                "--n-treated",
                "45",
                "--n-control",
                "103",
                "--reduction",
                "0",
                "--out",
                "p.csv",
                option,
                value,
            ]
        return ["synth", "--out", str(t / "s"), option, value]

    CASES.append(Case(f"{_command} {_option} {_value}", _build, 2, (_words,)))


@case("randomise --n-treated -3", 2, "negative")
def _(t):
    args = randomise(t, t / "a.csv")
    return [a for a in args if a not in ("--strata", "age_band", "--treat", "11-17=20", "18-25=25")] + [
        "--n-treated",
        "-3",
    ]


@case("randomise --probability 1.5", 2, "between 0 and 1")
def _(t):
    return [
        a for a in randomise(t, t / "a.csv") if a not in ("--strata", "age_band", "--treat", "11-17=20", "18-25=25")
    ] + [
        "--method",
        "simple",
        "--probability",
        "1.5",
    ]


@case("screen --reference-date 2023-02-30", 2, "YYYY-MM-DD")
def _(t):
    args = screen(t, t / "e.csv")
    args[args.index("--reference-date") + 1] = "2023-02-30"
    return args


# --- E. spreadsheet formula injection ----------------------------------------------------------------

for _id in ('=HYPERLINK("http://x","y")', "+cmd|' /C calc'!A0", "@SUM(1+1)", "-2+3", "=1+1"):
    CASES.append(
        Case(
            f"a person_id {_id!r}",
            (
                lambda i: (
                    lambda t: validate(
                        t,
                        persons=swap(PERSONS, "\nB,", f'\n"{i.replace(chr(34), chr(34) * 2)}",'),
                        events=swap(EVENTS, ",B,", f',"{i.replace(chr(34), chr(34) * 2)}",'),
                    )
                )
            )(_id),
            1,
            ("formula injection", "pseudonymise"),
        )
    )


@case("a crime_id '=1+1'", 1, "formula injection")
def _(t):
    return validate(t, events=EVENTS.replace("C3,", "=1+1,"))


@case("an engagement person_id '@x'", 1, "formula injection")
def _(t):
    return validate(t, engagement="person_id,engaged\nA,true\n@x,false\n")


@case("an eligible list with a person_id '=cmd'", 1, "formula injection")
def _(t):
    (t / "el.csv").write_text("person_id,age_band\n=cmd,11-17\nB,18-25\n")
    return randomise(t, t / "a.csv", eligible=t / "el.csv")


@case("an eligible list with a stratum '=cmd'", 1, "formula injection")
def _(t):
    text = (SHIPPED / "eligible.csv").read_text().replace(",11-17,", ",=cmd,")
    (t / "el.csv").write_text(text)
    return randomise(t, t / "a.csv", eligible=t / "el.csv")


@case("an allocation with a stratum '@SUM(1)'", 1, "formula injection")
def _(t):
    return ["verify", "--eligible", str(t / "eligible.csv"), str(trial(t, lambda x: x.replace(",11-17,", ",@SUM(1),")))]


@case("an allocation with a person_id '+1'", 1, "formula injection")
def _(t):
    return analyse(t, "--unsealed", allocation=trial(t, lambda x: x.replace("\nP", "\n+", 1)))


@case("no cell the kit writes begins with a formula character", 0, may_change=("e.csv", "f.csv"))
def _(t):
    return screen(t, t / "e.csv", "--funnel-out", str(t / "f.csv"))


# --- F. weak pseudonymisation keys ---------------------------------------------------------------------

WEAK_KEYS = {
    "32 x 'a'": "a" * 32,
    "a sequence": "abcdefghijklmnopqrstuvwxyz012345",
    "repeated 'password'": "password" * 4,
    "digits in order": "0123456789" * 4,
    "a keyboard walk": "qwertyuiopasdfghjklzxcvbnm123456",
    "a repeated block": "abc123xyz!" * 4,
    "words and digits": "Password1Password1Password1Password1",
    "a short key": "k3y",
    "two characters alternating": "ab" * 20,
    "police words": "thamesvalleypolicekniferime2023x",
}
for _label, _key in WEAK_KEYS.items():
    CASES.append(
        Case(
            f"a weak key: {_label}",
            (lambda k: lambda t: pseudonymise(t, key_file(t, k)))(_key),
            1,
            ("unit.key", "new-key"),
            check=absent("safe"),
        )
    )

GOOD_KEY = "7f3a9c1e5b2d8f4a6c0e9b7d3f1a5c8e" + "04d2b6f8a1c3e5079b2d4f6a8c0e1357"


@case("a world-readable key file", 1, ("chmod 600", "--insecure-key-file"), check=absent("safe"))
def _(t):
    return pseudonymise(t, key_file(t, GOOD_KEY, mode=0o644))


@case("a group-readable key file", 1, "its group", check=absent("safe"))
def _(t):
    return pseudonymise(t, key_file(t, GOOD_KEY, mode=0o640))


@case(
    "a world-readable key file with --insecure-key-file",
    0,
    "pseudonymised",
    may_change=("safe/persons.csv", "safe/events.csv"),
)
def _(t):
    return pseudonymise(t, key_file(t, GOOD_KEY, mode=0o644)) + ["--insecure-key-file"]


@case(
    "32 random bytes as a binary key",
    0,
    "pseudonymised",
    may_change=("safe/persons.csv", "safe/events.csv"),
)
def _(t):
    return pseudonymise(t, key_file(t, bytes.fromhex(GOOD_KEY) + b"\xff"))


@case("a key file that does not exist", 1, "new-key")
def _(t):
    return pseudonymise(t, t / "nokey")


@case("a key file that is a folder", 1, "does not exist")
def _(t):
    (t / "k").mkdir()
    return pseudonymise(t, t / "k")


@case(
    "a key made with --new-key is accepted",
    0,
    "pseudonymised",
    may_change=("safe/persons.csv", "safe/events.csv"),
)
def _(t):
    from fdkit.privacy import new_key

    return pseudonymise(t, new_key(t / "unit.key"))


# --- G. no tracebacks for what a user can cause --------------------------------------------------------


@case("a cell over 131,072 characters with another problem", 1, ("persons.csv", "not allowed"))
def _(t):
    return validate(t, persons=PERSONS.replace(",M\n", ",Q\n", 1) + "D,2001-01-01," + "M" * 140_000 + "\n")


@case("report --funnel given the eligible list", 1, ("eligible.csv", "step"))
def _(t):
    return report(t, "--funnel", str(t / "eligible.csv"), "--out", str(t / "r.html"))


@case("report --funnel that does not exist", 1, "nofunnel.csv")
def _(t):
    return report(t, "--funnel", str(t / "nofunnel.csv"), "--out", str(t / "r.html"))


@case("analyse --allocation that is a folder", 1, "folder")
def _(t):
    (t / "adir").mkdir()
    return analyse(t, allocation=t / "adir")


@case("randomise --eligible that does not exist", 1, "file not found")
def _(t):
    return randomise(t, t / "a.csv", eligible=t / "none.csv")


@case("validate a file instead of a folder", 1, "not a folder")
def _(t):
    (t / "f").write_text("x")
    return ["validate", str(t / "f")]


@case("validate a persons.csv that is a folder", 1, "a folder, not a file")
def _(t):
    folder = records(t, persons=None)
    (folder / "persons.csv").mkdir()
    return ["validate", str(folder)]


@case(
    "an unreadable input file",
    1,
    ("persons.csv", "ermission"),
    skip="root can read any file" if hasattr(os, "geteuid") and os.geteuid() == 0 else None,
)
def _(t):
    folder = records(t)
    (folder / "persons.csv").chmod(0)
    return ["validate", str(folder)]


def unreadable(name):
    import pandas as pd

    real = pd.read_csv

    def read_csv(path, *args, **kwargs):
        if Path(path).name == name:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real(path, *args, **kwargs)

    real_open = Path.open

    def open_(self, *args, **kwargs):  # the fast reader opens the file itself first
        if self.name == name:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    patches = contextlib.ExitStack()
    patches.enter_context(mock.patch("pandas.read_csv", read_csv))
    patches.enter_context(mock.patch.object(Path, "open", open_))
    return patches


@case(
    "an input the system will not let us read",
    1,
    ("persons.csv", "Permission denied", "permissions"),
    patch=lambda: unreadable("persons.csv"),
)
def _(t):
    return validate(t)


@case(
    "a read-only output folder",
    1,
    "ermission",
    skip="root can write anywhere" if hasattr(os, "geteuid") and os.geteuid() == 0 else None,
)
def _(t):
    (t / "ro").mkdir()
    (t / "ro").chmod(0o500)
    return screen(t, t / "ro" / "e.csv")


@case(
    "a write refused by the system",
    1,
    ("Permission denied", "e.csv"),
    patch=lambda: mock.patch("fdkit.files.os.replace", side_effect=PermissionError(errno.EACCES, "Permission denied")),
    check=absent("e.csv"),
)
def _(t):
    return screen(t, t / "e.csv")


@case(
    "a bug (an unexpected exception) is exit 3 with the traceback",
    3,
    ("this is a bug in fdkit", "Traceback"),
    patch=lambda: mock.patch("fdkit.records.summarise", side_effect=RuntimeError("boom")),
)
def _(t):
    return validate(t)


@case(
    "a ValueError from a bug is not mistaken for bad data",
    3,
    ("this is a bug in fdkit", "Traceback"),
    patch=lambda: mock.patch("fdkit.records.summarise", side_effect=ValueError("internal")),
)
def _(t):
    return validate(t)


@case("--debug shows the traceback of a data problem", 1, ("Traceback", "2099"))
def _(t):
    return ["--debug", *validate(t, events=swap(EVENTS, "2022-10-01", "2099-01-01"))]


# --- H. rows merged silently ------------------------------------------------------------------------------


def many_events(count=50):
    rows = [EVENTS.splitlines()[0]]
    for i in range(count):
        rows.append(f"K{i},A,2022-0{1 + i % 9}-01,suspect,8G,false,false")
    return rows


@case("a stray quote opening on line 5 and closing on line 40", 1, ("opens on line 5", "closes on line 40"))
def _(t):
    rows = many_events()
    rows[4] = rows[4].replace(",8G,", ',"8G,')  # line 5
    rows[39] = rows[39].replace(",8G,", ',8G",')  # line 40
    return validate(t, events="\n".join(rows) + "\n")


@case("a quote that never closes", 1, "events.csv")
def _(t):
    rows = many_events()
    rows[4] = rows[4].replace(",8G,", ',"8G,')
    return validate(t, events="\n".join(rows) + "\n")


@case("a line break inside a quoted person_id", 1, ("line break", "persons.csv"))
def _(t):
    return validate(t, persons=PERSONS.replace("\nC,", '\n"C\nX",'))


# --- I. issue 23: text and values as outside users write them ------------------------------------------------
#
# Every text a user or the data can put into a figure or the report, holding what matplotlib's
# mathtext and HTML treat specially; values a million characters long; placeholder dates of
# birth; a code map listing one code in two cases; outputs that cannot be written.


def odd_text(field: str) -> str:
    r"""A text holding mathtext that does not parse, \ { } % _, and HTML, marked with its field."""
    return f'$\\frac{{{field}}}$ \\ {{}} % _ <x23 f="{field}"> & \''


def escaped_everywhere(*fields: str) -> Callable[[Path, str], str | None]:
    """The report holds each field's text escaped, and none of them raw."""
    import html

    def check(root, output):
        page = (root / "r.html").read_text(encoding="utf-8")
        if "<x23" in page:
            return "a field reached the page unescaped"
        missing = [field for field in fields if html.escape(odd_text(field), quote=True) not in page]
        return f"not in the page, escaped: {', '.join(missing)}" if missing else None

    return check


def funnel_with(root: Path, description: str | None = None, reason: str | None = None, name="funnel.csv") -> Path:
    """The shipped funnel with an odd description or reason on its last step.

    A step with a description and no reason is drawn in the CONSORT box by its description.
    """
    import csv as csv_module

    rows = list(csv_module.reader(io.StringIO((SHIPPED / "funnel.csv").read_text(encoding="utf-8"), newline="")))
    rows[-1][1] = description or rows[-1][1]
    rows[-1][4] = ("" if description else rows[-1][4]) if reason is None else reason
    path = root / name
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv_module.writer(handle, lineterminator="\n").writerows(rows)
    return path


def sealed_trial_with_stratum(root: Path, stratum: str, folder: str = "trial", name: str = "allocation.csv") -> Path:
    """The shipped cohort randomised afresh, its 11-17 band renamed ``stratum``: a sealed allocation."""
    import pandas as pd

    from fdkit import randomise as randomisation

    eligible = pd.read_csv(SHIPPED / "eligible.csv", dtype=str, keep_default_na=False)
    eligible["age_band"] = eligible["age_band"].replace("11-17", stratum)
    (root / folder).mkdir()
    eligible.to_csv(root / folder / "eligible.csv", index=False)
    allocation = randomisation.allocate(
        eligible,
        seed=20230201,
        randomised_on="2023-02-01",
        strata="age_band",
        capacities={stratum: 20, "18-25": 25},
        sealed_at="2023-02-01T09:00:00+00:00",
    )
    path, _ = randomisation.write_allocation(allocation, root / folder / name)
    return path


def records_copy(root: Path, name: str) -> Path:
    folder = root / name
    folder.mkdir()
    for file in ("persons.csv", "events.csv", "engagement.csv"):
        shutil.copy(SHIPPED / file, folder / file)
    return folder


@case(
    "report with $...{...}$, \\, {}, % and _ in a funnel reason",
    0,
    "wrote",
    may_change=("r.html",),
    check=escaped_everywhere("reason"),
)
def _(t):
    """The crash an outside user found: the reason reaches the CONSORT diagram's mathtext."""
    return report(t, "--funnel", funnel_with(t, reason=odd_text("reason")), "--out", t / "r.html")


@case(
    "report with $...{...}$, \\, {}, % and _ in a funnel description",
    0,
    "wrote",
    may_change=("r.html",),
    check=escaped_everywhere("description"),
)
def _(t):
    return report(t, "--funnel", funnel_with(t, description=odd_text("description")), "--out", t / "r.html")


@case(
    "report with $...{...}$, \\, {}, %, _ and HTML in the unit and registration",
    0,
    "wrote",
    may_change=("r.html",),
    check=escaped_everywhere("unit", "registration"),
)
def _(t):
    return report(t, "--unit", odd_text("unit"), "--registration", odd_text("registration"), "--out", t / "r.html")


@case(
    "report of a sealed trial whose stratum, folders and files all hold odd text",
    0,
    "wrote",
    may_change=("r.html",),
    check=escaped_everywhere(
        "stratum", "records", "allocation", "funnel file", "reason", "weights", "unit", "registration"
    ),
)
def _(t):
    """Issue 23, item 5: the page's escaping of every user-text field, on a trial that passes its seal check."""
    allocation = sealed_trial_with_stratum(
        t, odd_text("stratum"), folder="trial $x$", name=odd_text("allocation") + ".csv"
    )
    folder = records_copy(t, odd_text("records"))
    weights = t / (odd_text("weights") + ".csv")
    shutil.copy(REPOSITORY / "fdkit" / "data" / "harm_weights.csv", weights)
    funnel = funnel_with(t, reason=odd_text("reason"), name=odd_text("funnel file") + ".csv")
    return [
        "report",
        "--records",
        folder,
        "--allocation",
        allocation,
        "--funnel",
        funnel,
        "--harm-weights",
        weights,
        "--unit",
        odd_text("unit"),
        "--registration",
        odd_text("registration"),
        "--date",
        "2024-03-01",
        "--out",
        t / "r.html",
    ]


@case("verify a sealed allocation whose stratum holds odd text", 0, "holds")
def _(t):
    allocation = sealed_trial_with_stratum(t, odd_text("stratum"))
    return ["verify", "--eligible", allocation.parent / "eligible.csv", allocation]


BIG = "Q" * 1_000_000  # a person ID of a million characters


def big_eligible(t, column="person_id"):
    text = (SHIPPED / "eligible.csv").read_text()
    if column == "person_id":
        text = text.replace("\nP001236,", f"\n{BIG},").replace("\nP001384,", f"\n{BIG},")
    else:
        text = text.replace(",11-17,", f",{BIG},", 1)
    (t / "el.csv").write_text(text)
    return t / "el.csv"


for _name, _build in {
    "an events person_id not in persons.csv": lambda t: validate(t, events=EVENTS.replace(",B,", f",{BIG},")),
    "a repeated person_id": lambda t: validate(t, persons=PERSONS + f"{BIG},2001-01-01,M\n{BIG},2001-01-01,M\n"),
    "a person_id that is a formula": lambda t: validate(t, persons=PERSONS + f"={BIG},2001-01-01,M\n"),
    "a date of birth": lambda t: validate(t, persons=PERSONS.replace("2005-01-01", BIG)),
    "a sex": lambda t: validate(t, persons=PERSONS.replace(",M\n", f",{BIG}\n", 1)),
    "an offence code": lambda t: validate(t, events=EVENTS.replace("10D/1", BIG)),
    "a role": lambda t: validate(t, events=EVENTS.replace("suspect", BIG, 1)),
    "a knife flag": lambda t: validate(t, events=EVENTS.replace("false", BIG, 1)),
    "a column name": lambda t: validate(t, persons=PERSONS.replace("sex", BIG)),
    "an engagement person_id": lambda t: validate(t, engagement=f"person_id,engaged\n{BIG},true\n"),
    "a repeated eligible person_id": lambda t: randomise(t, t / "a.csv", eligible=big_eligible(t)),
    "an eligible stratum": lambda t: randomise(t, t / "a.csv", eligible=big_eligible(t, "age_band")),
    "an allocated person_id": lambda t: analyse(t, allocation=trial(t, lambda x: x.replace("\nP", f"\n{BIG}", 1))),
    "an exclusions person_id": lambda t: screen(
        t, t / "e.csv", "--exclusions", (t / "x.csv").write_text(f"person_id,reason\n{BIG},x\n") and t / "x.csv"
    ),
    "a --treat stratum": lambda t: randomise(t, t / "a.csv") + ["--treat", BIG[:100_000] + "=3"],
    "a --primary outcome": lambda t: report(t, "--out", t / "r.html", "--primary", BIG[:100_000]),
    "a --reference-date": lambda t: [*screen(t, t / "e.csv")[:4], BIG[:100_000], "--out", t / "e.csv"],
    "a --method choice": lambda t: randomise(t, t / "a.csv") + ["--method", BIG[:100_000]],
    "an unknown option": lambda t: validate(t) + ["--" + BIG[:100_000]],
}.items():
    _usage_error = _name.startswith(("a --primary", "a --reference", "a --method", "an unknown option"))
    CASES.append(Case(f"a value of a million characters in {_name}", _build, 2 if _usage_error else 1, "characters)"))


def refused_in_folder():
    """The system refuses to create any file in the output's folder."""
    return mock.patch("fdkit.files.tempfile.mkstemp", side_effect=PermissionError(errno.EACCES, "Permission denied"))


@case(
    "an output the system will not create names the file asked for",
    1,
    ("out/e.csv", "Permission denied"),
    patch=refused_in_folder,
    check=absent("out/e.csv"),
)
def _(t):
    return screen(t, t / "out" / "e.csv")


@case(
    "an allocation the system will not create names the file asked for",
    1,
    ("new/a.csv", "Permission denied"),
    patch=lambda: mock.patch(
        "fdkit.randomise.tempfile.mkstemp", side_effect=PermissionError(errno.EACCES, "Permission denied", "/x/.tmp")
    ),
    check=absent("new/a.csv"),
)
def _(t):
    return randomise(t, t / "new" / "a.csv")


@case("an output file name too long for the system", 1, ("File name too long", "characters)"))
def _(t):
    return screen(t, t / ("e" * 300 + ".csv"))


@case("an output path of 5,000 characters", 1, "characters)")
def _(t):
    return screen(t, t / "/".join(["d" * 200] * 25) / "e.csv")


PLACEHOLDERS = PERSONS + "D,1900-01-01,M\nE,0001-01-01,F\nF,9999-12-31,M\n"
PLACEHOLDER_EVENTS = EVENTS + "C9,D,2022-09-01,suspect,10D/1,false,false\nC8,D,2022-05-01,suspect,8G,false,false\n"


@case("placeholder dates of birth validate with a warning and the count", 0, ("warning: 3 people", "1900-01-01"))
def _(t):
    return validate(t, persons=PLACEHOLDERS, events=PLACEHOLDER_EVENTS)


def funnel_counts_unknown_births(root, output):
    import pandas as pd

    funnel = pd.read_csv(root / "f.csv", keep_default_na=False).set_index("reason")
    if "date of birth unknown" not in funnel.index:
        return "no 'date of birth unknown' step in the funnel"
    return None if funnel.loc["date of birth unknown", "excluded"] == 3 else "the funnel does not count all 3"


@case(
    "placeholder dates of birth screen with those people counted in the funnel",
    0,
    "date of birth unknown",
    may_change=("e.csv", "f.csv"),
    check=funnel_counts_unknown_births,
)
def _(t):
    return screen(t, t / "e.csv", "--funnel-out", t / "f.csv", folder=records(t, PLACEHOLDERS, PLACEHOLDER_EVENTS))


@case("a date of birth of 1890-01-01 beside placeholders is still an error", 1, ("over 110", "1890-01-01"))
def _(t):
    return validate(t, persons=PLACEHOLDERS + "G,1890-01-01,F\n", events=PLACEHOLDER_EVENTS)


def code_map_export(t, rows: str) -> list[str]:
    """A small flat export whose code map is ``rows``; the import command."""
    from fdkit import importer

    raw = t / "raw"
    raw.mkdir()
    header = "Occurrence Ref,Offence Date,Home Office Offence Code,Weapon,Proactive,Occurrence Status,Nominal ID"
    (raw / "crime_involvements.csv").write_text(
        f"{header},Involvement\nC1,01/06/2022,8G,,N,Recorded,N1,Suspect\nC2,02/06/2022,8g,,N,Recorded,N1,Victim\n"
    )
    (raw / "nominals.csv").write_text("Nominal ID,DOB,Gender\nN1,01/02/2005,Male\n")
    (raw / "code_map.csv").write_text("local_code,offence_code\n" + rows)
    (raw / "mapping.toml").write_text(importer.template())
    return ["import", "--mapping", raw / "mapping.toml", "--out", t / "records", raw]


@case(
    "a code map listing 8G and 8g, both onto 8G, imports and counts the fold",
    0,
    ("code map row repeated", "'8g' (1)"),
    may_change=tuple(f"records/{name}" for name in ("persons.csv", "events.csv", "import_ledger.csv", "extract.json")),
)
def _(t):
    return code_map_export(t, "8G,8G\n8g,8G\n")


@case("a code map mapping 8G and 8g onto different codes names both lines", 1, ("lines 2, 3", "'8g' onto '10D/1'"))
def _(t):
    return code_map_export(t, "8G,8G\n8g,10D/1\n")


# --- I. the analysis plan (issue 21) ---------------------------------------------------------------------


def sealed_trial(root: Path, plan_text: str | None = None) -> Path:
    """The shipped trial, its sealed plan and plan file in ``root``; or, given ``plan_text``, sealed anew with it."""
    from fdkit import plan as plans
    from fdkit import randomise as randomising

    if plan_text is None:
        allocation = trial(root)
        shutil.copy(SHIPPED / "analysis-plan.toml", root / "analysis-plan.toml")
        return allocation
    shutil.copy(SHIPPED / "eligible.csv", root / "eligible.csv")
    (root / "analysis-plan.toml").write_text(plan_text)
    plan = plans.read_plan(root / "analysis-plan.toml")
    plans.write_plan(plan, root / "analysis-plan.toml")  # as fdkit plan writes it: every fingerprint filled in
    randomising.write_allocation(
        randomising.read_allocation(SHIPPED / "allocation.csv"), root / "allocation.csv", plan=plan
    )
    return root / "allocation.csv"


def weights_file(root: Path) -> Path:
    from fdkit import harm

    path = root / "weights.csv"
    path.write_text(harm.illustrative_weights()[["offence_code", "weight"]].to_csv(index=False, lineterminator="\n"))
    return path


def plan_file(root: Path, text: str) -> Path:
    path = root / "analysis-plan.toml"
    path.write_text(text)
    return path


@case("plan --check a plan that is not TOML", 1, ("analysis-plan.toml", "not a readable TOML file"))
def _(t):
    return ["plan", "--check", str(plan_file(t, 'primary_outcome = "harm_suspect\nfollow_up_months = 12\n'))]


@case("randomise --plan a plan that is not TOML", 1, "not a readable TOML file", may_change=())
def _(t):
    return [*randomise(t, t / "allocation.csv"), "--plan", str(plan_file(t, "primary_outcome = [\n"))]


@case("plan --check a plan naming an unknown outcome", 1, ("line 2", "secondary_outcomes: unknown outcome 'knives'"))
def _(t):
    return ["plan", "--check", str(plan_file(t, 'primary_outcome = "harm_suspect"\nsecondary_outcomes = ["knives"]\n'))]


@case("plan --check a follow-up window of 0 months", 1, "follow_up_months: must be a whole number from 1 to 120; got 0")
def _(t):
    return ["plan", "--check", str(plan_file(t, 'primary_outcome = "harm_suspect"\nfollow_up_months = 0\n'))]


@case("plan --check a baseline given as text", 1, "baseline_months: must be a whole number")
def _(t):
    return ["plan", "--check", str(plan_file(t, 'primary_outcome = "harm_suspect"\nbaseline_months = "24"\n'))]


@case("plan --check a misspelt field", 1, "follow_up: a field an analysis plan does not have (did you mean")
def _(t):
    return ["plan", "--check", str(plan_file(t, 'primary_outcome = "harm_suspect"\nfollow_up = 12\n'))]


@case("fdkit plan --follow-up-months 0", 2, "--follow-up-months (follow_up_months", may_change=())
def _(t):
    return ["plan", "--out", str(t / "analysis-plan.toml"), "--follow-up-months", "0"]


@case("a plan swapped after sealing stops the analysis", 1, ("cannot be trusted", "follow_up_months is 6"))
def _(t):
    allocation = sealed_trial(t)
    plan = t / "analysis-plan.toml"
    plan.write_text(plan.read_text().replace("follow_up_months = 12", "follow_up_months = 6"))
    return analyse(t, allocation=allocation)


@case("verify a plan swapped after sealing", 1, "analysis-plan.toml has changed since it was sealed")
def _(t):
    allocation = sealed_trial(t)
    plan = t / "analysis-plan.toml"
    plan.write_text(plan.read_text().replace("cace = true", "cace = false"))
    return ["verify", "--eligible", str(t / "eligible.csv"), str(allocation)]


@case("the plan text edited inside the seal", 1, "its fingerprint differs")
def _(t):
    def edit(record):
        record["analysis_plan"]["text"] = [
            line.replace("seed = 0", "seed = 7") for line in record["analysis_plan"]["text"]
        ]
        return record

    return analyse(t, allocation=trial(t, edit_seal=edit))


@case("a plan whose weights file changed after sealing", 1, ("harm_weights", "weights.csv has changed"))
def _(t):
    weights = weights_file(t)
    allocation = sealed_trial(t, 'primary_outcome = "harm_suspect"\nharm_weights = "weights.csv"\n')
    weights.write_text(weights.read_text().replace("\n1,5475.0\n", "\n1,10.0\n"))
    return analyse(t, allocation=allocation)


@case(
    "analyse --unsealed with a plan whose weights file changed",
    1,
    ("harm_weights: weights.csv has changed since the plan was sealed", "--deviate"),
)
def _(t):
    weights = weights_file(t)
    allocation = sealed_trial(t, 'primary_outcome = "harm_suspect"\nharm_weights = "weights.csv"\n')
    weights.write_text(weights.read_text().replace("\n1,5475.0\n", "\n1,10.0\n"))
    return analyse(t, "--unsealed", allocation=allocation)


@case("a plan whose weights file is not beside the allocation", 1, ("harm_weights", "--harm-weights FILE"))
def _(t):
    weights_file(t)
    allocation = sealed_trial(t, 'primary_outcome = "harm_suspect"\nharm_weights = "weights.csv"\n')
    (t / "weights.csv").unlink()
    return analyse(t, allocation=allocation)


@case("analyse a 6-month window the plan does not name", 2, ("follow_up_months = 6, but the plan's is 12", "--deviate"))
def _(t):
    return analyse(t, "--follow-up-months", "6", allocation=sealed_trial(t))


@case(
    "report another primary outcome than the plan's",
    2,
    "primary_outcome = knife_suspect, but the plan's is harm_suspect",
)
def _(t):
    return report(t, "--primary", "knife_suspect", "--out", str(t / "r.html"), allocation=sealed_trial(t))


@case("report with a report.toml naming an unknown item", 1, ("report.toml", "fundng"))
def _(t):
    allocation = sealed_trial(t)
    (t / "report.toml").write_text('fundng = "the council"\n')
    return report(t, "--out", str(t / "r.html"), allocation=allocation)


@case("write a plan over the one an allocation was sealed with", 2, "a sealed plan is never written over")
def _(t):
    sealed_trial(t)
    return ["plan", "--out", str(t / "analysis-plan.toml"), "--force"]


@case("randomise --plan whose subgroups are not strata", 1, "subgroups: '11-15' is not a stratum", may_change=())
def _(t):
    plan = plan_file(t, 'primary_outcome = "harm_suspect"\nsubgroups = ["11-15"]\n')
    return [*randomise(t, t / "allocation.csv"), "--plan", str(plan)]


@case("randomise --plan whose weights changed since it was written", 1, "weights.csv has changed")
def _(t):
    weights = weights_file(t)
    from fdkit import harm

    sha = harm.weights_sha256(harm.read_weights(weights))
    plan = plan_file(
        t, f'primary_outcome = "harm_suspect"\nharm_weights = "weights.csv"\nharm_weights_sha256 = "{sha}"\n'
    )
    weights.write_text(weights.read_text().replace("\n8G,", "\n8G,1"))
    return [*randomise(t, t / "allocation.csv"), "--plan", str(plan)]


@case("a later wave with a different plan", 2, "a sealed plan is never changed")
def _(t):
    allocation = sealed_trial(t)
    other = t / "other.toml"
    other.write_text((t / "analysis-plan.toml").read_text().replace("seed = 0", "seed = 9"))
    return [*randomise(t, t / "wave2.csv"), "--previous", str(allocation), "--plan", str(other)]


# --- running -----------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Verdict:
    name: str
    ok: bool
    detail: str
    skipped: bool = False
    seconds: float = 0.0

    def __str__(self) -> str:
        label = "SKIP" if self.skipped else ("PASS" if self.ok else "FAIL")
        return f"{label}  {self.name} ({self.seconds:.1f} s): {self.detail}"


def _snapshot(root: Path) -> dict[str, str]:
    found = {}
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            found[path.relative_to(root).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def run_case(item: Case, base: Path | None = None) -> Verdict:
    """Run one case in a fresh folder and judge it."""
    from fdkit.cli import main

    if item.skip:
        return Verdict(item.name, True, item.skip, skipped=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=base) as folder:
        root = Path(folder)
        previous = Path.cwd()
        os.chdir(root)
        try:
            argv = item.build(root)
            before = _snapshot(root)
            out, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                with item.patch() if item.patch else contextlib.nullcontext():
                    try:
                        code = main([str(a) for a in argv])
                    except SystemExit as stop:  # argparse's usage errors
                        code = stop.code if isinstance(stop.code, int) else 1
            output = out.getvalue() + err.getvalue()
            after = _snapshot(root)
            problems = []
            if code != item.code:
                problems.append(f"exit {code}, expected {item.code}")
            problems += [f"no {word!r} in the message" for word in item.words if word not in output]
            if "Traceback" in output and item.code != 3 and "--debug" not in argv:
                problems.append("a traceback was printed")
            if (size := len(err.getvalue().encode())) > MESSAGE_BYTES and item.code != 3:
                problems.append(f"a message of {size:,} bytes (at most {MESSAGE_BYTES:,})")
            changed = [name for name, digest in before.items() if after.get(name) != digest]
            changed = [name for name in changed if name not in item.may_change]
            if changed:
                problems.append(f"changed or removed: {', '.join(changed[:5])}")
            leftovers = [n for n in after if ".partial" in n or ".staging-" in n or ".old-" in n]
            leftovers += [p.name for p in root.iterdir() if ".staging-" in p.name or ".old-" in p.name]
            if leftovers:
                problems.append(f"left behind: {', '.join(leftovers[:5])}")
            written = [n for n in after if n.endswith(".csv") and n not in before]
            problems += _formula_cells(root, written)
            if item.check and not problems:
                if failure := item.check(root, out.getvalue()):
                    problems.append(failure)
        except Exception as error:  # the suite itself must say what went wrong, case by case
            problems, code, output = [f"the case raised {error!r}"], None, ""
        finally:
            os.chdir(previous)
    first_line = next((line for line in output.splitlines() if line.strip()), "")[:110]
    seconds = time.perf_counter() - started
    if problems:
        return Verdict(item.name, False, "; ".join(problems) + f" | {first_line}", seconds=seconds)
    return Verdict(item.name, True, f"exit {code}: {first_line}", seconds=seconds)


def _formula_cells(root: Path, written: list[str]) -> list[str]:
    import pandas as pd

    from fdkit.files import formula_cells

    problems = []
    for name in written:
        try:
            frame = pd.read_csv(root / name, dtype=str, keep_default_na=False)
        except Exception:  # not a table the kit wrote
            continue
        numeric = frame.apply(lambda column: pd.to_numeric(column, errors="coerce").notna() | column.eq(""))
        if cells := formula_cells(frame.where(~numeric, "")):
            problems.append(f"{name} has formula cells in {', '.join(cells)}")
    return problems


def shipped_fingerprint() -> dict[str, str]:
    return _snapshot(SHIPPED)


def main(argv: list[str] | None = None) -> int:
    """Run the cases (those whose name contains any argument), print verdicts, return 0 if all pass.

    ``--quick`` leaves out the cases marked slow (those that run a whole analysis or synth).
    """
    wanted = list(argv if argv is not None else sys.argv[1:])
    quick = "--quick" in wanted
    wanted = [w for w in wanted if w != "--quick"]
    chosen = [c for c in CASES if not wanted or any(w.lower() in c.name.lower() for w in wanted)]
    chosen = [c for c in chosen if not (quick and c.slow)]
    shipped = shipped_fingerprint()
    verdicts = []
    for item in chosen:
        verdict = run_case(item)
        verdicts.append(verdict)
        print(verdict, flush=True)
    if shipped_fingerprint() != shipped:
        verdicts.append(Verdict("the shipped synthetic folder", False, "was changed by the suite"))
        print(verdicts[-1])
    failed = [v for v in verdicts if not v.ok]
    skipped = sum(v.skipped for v in verdicts)
    print(
        f"\n{len(verdicts)} hostile cases: {len(verdicts) - len(failed) - skipped} passed, "
        f"{len(failed)} failed, {skipped} skipped"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPOSITORY))
    sys.exit(main())
