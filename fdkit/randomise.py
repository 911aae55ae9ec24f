"""Random allocation with a sealed, re-derivable record.

Three methods, as in randomizr:

``simple``
    An independent coin flip for each person (``probability`` of treatment).
``complete``
    Exactly ``n_treated`` of the N eligible people are treated.
``stratified``
    Exactly ``capacities[s]`` people are treated in each stratum ``s``; everyone else
    eligible is control. The Milton Keynes trial: 20 treated aged 11-17 and 25 aged 18-25.

**The result depends only on the seed and the set of eligible people** (their IDs and
strata), never on the order of the rows: IDs are sorted before any random draw, and each
stratum draws from its own stream derived from the seed, the wave and the stratum's name.

**Waves.** Trials that recruit over time randomise each new batch as a wave. A later wave
never re-randomises anyone already allocated: they are set aside (and counted) first.

**The seal.** :func:`write_allocation` writes the allocation CSV and, beside it,
``<name>.seal.json`` holding everything needed to re-derive it (method, seed, capacities,
the date), the SHA-256 of the sorted eligible IDs, the SHA-256 of the allocation file and the
fdkit version. :func:`verify` re-runs the allocation from the seal and the eligible list and
reports every difference. Writing never replaces an existing allocation.

**The analysis plan.** An allocation may be sealed with an analysis plan (:mod:`fdkit.plan`):
the seal then holds the plan's fingerprint and its full text, with the wave and time it was
sealed at. :func:`verify` checks that the sealed text still has its fingerprint and that the
plan file beside the allocation (``analysis-plan.toml``) is still that plan, field by field;
:func:`sealed_plan` reads it back, or gives None for an allocation sealed without one. A later
wave keeps the plan sealed with the first; a sealed plan is never replaced.

**One declared assignment design, used three ways** (randomizr's ``declare_ra`` /
``conduct_ra`` / ``obtain_permutation_matrix``): an :class:`AssignmentDesign` lists the blocks
(wave x stratum) and how many people each treats. :func:`allocate` conducts it to make the
sealed allocation, :mod:`fdkit.analysis` asks it for re-draws of the design (randomisation
inference re-draws within wave x stratum, exactly as the allocation was drawn), and
:mod:`fdkit.design` conducts it for every simulated trial.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .records import FdkitDataError, Problem, at_file_lines, formula_problems, read_table

if TYPE_CHECKING:
    from .plan import Plan

__all__ = [
    "ALLOCATION_COLUMNS",
    "ARMS",
    "Allocation",
    "AssignmentDesign",
    "METHODS",
    "SealedPlan",
    "Verification",
    "Wave",
    "allocate",
    "ids_sha256",
    "read_allocation",
    "seal_path",
    "sealed_plan",
    "verify",
    "write_allocation",
]

METHODS = ("simple", "complete", "stratified")
ARMS = ("treatment", "control")
ALLOCATION_COLUMNS = ("person_id", "stratum", "arm", "wave", "randomised_on")
NO_STRATUM = "all"


@dataclass(frozen=True)
class Wave:
    """How one wave was randomised: everything :func:`verify` needs to redo it."""

    wave: int
    method: str
    seed: int
    randomised_on: str
    strata: str | None = None
    capacities: Mapping[str, int] | None = None
    n_treated: int | None = None
    probability: float | None = None
    eligible_count: int = 0
    eligible_ids_sha256: str = ""
    already_allocated: int = 0
    sealed_at: str = ""

    def to_dict(self) -> dict:
        return {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class Allocation:
    """An allocation: one row per randomised person, and the waves that made it.

    Attributes
    ----------
    table : pandas.DataFrame
        ``person_id``, ``stratum``, ``arm`` (``treatment``/``control``), ``wave`` and
        ``randomised_on``, sorted by wave then ``person_id``.
    waves : tuple of Wave
    """

    table: pd.DataFrame
    waves: tuple[Wave, ...] = field(default=())

    def counts(self) -> pd.DataFrame:
        """People per stratum and arm (and per wave when there are several)."""
        keys = ["wave", "stratum"] if len(self.waves) > 1 else ["stratum"]
        return (
            self.table.groupby(keys + ["arm"])
            .size()
            .unstack("arm", fill_value=0)
            .reindex(columns=list(ARMS), fill_value=0)
        )

    def _repr_html_(self) -> str:
        return f"<p><b>Allocation</b> of {len(self.table)} people</p>" + self.counts().to_html()

    def __repr__(self) -> str:
        arms = self.table["arm"].value_counts()
        return (
            f"Allocation({len(self.table)} people: {arms.get('treatment', 0)} treatment, "
            f"{arms.get('control', 0)} control, {len(self.waves)} wave(s))"
        )


# ----------------------------------------------------------------------- allocating


def allocate(
    eligible: pd.DataFrame,
    *,
    seed: int,
    randomised_on: date | str,
    method: str = "stratified",
    strata: str | None = None,
    capacities: Mapping[str, int] | None = None,
    n_treated: int | None = None,
    probability: float = 0.5,
    previous: Allocation | None = None,
    sealed_at: str | None = None,
) -> Allocation:
    """Randomise eligible people to treatment or control.

    Parameters
    ----------
    eligible : pandas.DataFrame
        One row per eligible person, with ``person_id`` and (for stratified allocation)
        the ``strata`` column.
    seed : int
        The only source of randomness.
    randomised_on : date-like
        The date of randomisation (the start of each person's follow-up).
    method : {"stratified", "complete", "simple"}
    strata : str, optional
        Column of ``eligible`` holding each person's stratum (stratified only).
    capacities : mapping of str to int, optional
        Treated places per stratum (stratified only); every stratum present must be listed.
    n_treated : int, optional
        Treated places in all (complete only).
    probability : float, default 0.5
        Chance of treatment for each person (simple only).
    previous : Allocation, optional
        Earlier waves. People already allocated are set aside and the new wave is added
        to them; no one is randomised twice.
    sealed_at : str, optional
        Timestamp to record in the seal (ISO 8601); the current time by default.

    Returns
    -------
    Allocation

    Raises
    ------
    ValueError
        For duplicate or blank IDs, capacities above a stratum's size, strata with no
        capacity or capacities for strata nobody is in, or an unknown method.

    Examples
    --------
    >>> people = pd.DataFrame({"person_id": [f"P{i}" for i in range(10)],
    ...                        "age_band": ["11-17"] * 4 + ["18-25"] * 6})
    >>> result = allocate(people, seed=1, randomised_on="2023-02-01", strata="age_band",
    ...                   capacities={"11-17": 2, "18-25": 3})
    >>> result.counts()
    arm     treatment  control
    stratum
    11-17           2        2
    18-25           3        3
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    people = _eligible_people(eligible, strata if method == "stratified" else None)
    wave_number, already = 1, 0
    if previous is not None:
        wave_number = max(w.wave for w in previous.waves) + 1
        done = people["person_id"].isin(previous.table["person_id"])
        already = int(done.sum())
        people = people[~done]
    day = pd.Timestamp(randomised_on).date().isoformat()
    wave = Wave(
        wave=wave_number,
        method=method,
        seed=int(seed),
        randomised_on=day,
        strata=strata if method == "stratified" else None,
        capacities=dict(capacities) if method == "stratified" and capacities is not None else None,
        n_treated=n_treated if method == "complete" else None,
        probability=probability if method == "simple" else None,
        eligible_count=len(people),
        eligible_ids_sha256=ids_sha256(people["person_id"]),
        already_allocated=already,
        sealed_at=sealed_at or datetime.now(UTC).isoformat(timespec="seconds"),
    )
    treated = _draw(people, wave)
    table = pd.DataFrame(
        {
            "person_id": people["person_id"].to_numpy(),
            "stratum": people["stratum"].to_numpy(),
            "arm": np.where(treated, "treatment", "control"),
            "wave": wave_number,
            "randomised_on": pd.Timestamp(day),
        }
    ).astype({"person_id": "str", "stratum": "str", "arm": "str"})
    waves: tuple[Wave, ...] = (wave,)
    if previous is not None:
        table = pd.concat([previous.table, table], ignore_index=True)
        waves = (*previous.waves, wave)
    table["randomised_on"] = table["randomised_on"].astype("datetime64[us]")
    return Allocation(table=table.sort_values(["wave", "person_id"], ignore_index=True), waves=waves)


def _eligible_people(eligible: pd.DataFrame, strata: str | None) -> pd.DataFrame:
    """Check IDs (and strata) and return them sorted by ID, so row order cannot matter."""
    if "person_id" not in eligible:
        raise ValueError("the eligible list has no person_id column")
    ids = eligible["person_id"].astype("str")
    if (blank := ids.isna() | (ids.str.strip() == "")).any():
        raise ValueError(f"the eligible list has {int(blank.sum())} blank person_id values")
    if (repeated := ids[ids.duplicated()]).any():
        shown = ", ".join(sorted(set(repeated))[:10])
        raise ValueError(f"the eligible list repeats {repeated.nunique()} person_id values: {shown}")
    if strata is None:
        stratum = pd.Series(NO_STRATUM, index=eligible.index, dtype="str")
    else:
        if strata not in eligible:
            raise ValueError(f"the eligible list has no {strata!r} column to stratify by")
        stratum = eligible[strata].astype("str")
        if (missing := stratum.isna() | (stratum.str.strip() == "")).any():
            raise ValueError(f"{int(missing.sum())} eligible people have no {strata!r} value")
    people = pd.DataFrame({"person_id": ids, "stratum": stratum})
    return people.sort_values("person_id", ignore_index=True)


def _draw(people: pd.DataFrame, wave: Wave) -> np.ndarray:
    """Treatment indicator for each (sorted) person."""
    if wave.method == "simple":
        if wave.probability is None or not 0.0 <= wave.probability <= 1.0:
            raise ValueError(f"probability must lie between 0 and 1; got {wave.probability}")
        return _stream(wave.seed, wave.wave).random(len(people)) < wave.probability
    if wave.method == "complete":
        if wave.n_treated is None or not 0 <= wave.n_treated <= len(people):
            raise ValueError(
                f"n_treated must be between 0 and the {len(people)} people to randomise; got {wave.n_treated}"
            )
        declared = AssignmentDesign.declare(np.full(len(people), NO_STRATUM), {NO_STRATUM: wave.n_treated})
        return declared.conduct(seed=wave.seed, wave=wave.wave, named_streams=False)
    sizes = people["stratum"].value_counts()
    _check_capacities(sizes, wave.capacities, wave.strata)
    assert wave.capacities is not None  # _check_capacities raised otherwise
    declared = AssignmentDesign.declare(people["stratum"].to_numpy(dtype=str), wave.capacities)
    return declared.conduct(seed=wave.seed, wave=wave.wave)


@dataclass(frozen=True, eq=False)
class AssignmentDesign:
    """A declared assignment: blocks of people, and how many in each block are treated.

    The blocks are the cells the allocation was drawn in: stratum x wave. Every block treats
    exactly its declared count, each subset of that size being equally likely (complete
    randomisation within blocks). The same object conducts the sealed allocation
    (:meth:`conduct`), gives the re-draws of randomisation inference
    (:meth:`permutation_matrix`) and is conducted again for every simulated trial.

    Attributes
    ----------
    blocks : ndarray of int, shape (n,)
        Each person's block code.
    block_names : tuple of str
        The name of each block code (``"<stratum>"`` or ``"wave <w> / <stratum>"``).
    n_treated : ndarray of int
        Treated places in each block.

    Examples
    --------
    >>> declared = AssignmentDesign.declare(["a", "a", "a", "b", "b"], {"a": 1, "b": 1})
    >>> declared.permutation_matrix(3, np.random.default_rng(0)).sum(axis=1)
    array([2, 2, 2])
    """

    blocks: np.ndarray
    block_names: tuple[str, ...]
    n_treated: np.ndarray

    @classmethod
    def declare(cls, strata, capacities: Mapping[Any, int], waves=None) -> AssignmentDesign:
        """Declare a design from each person's stratum (and wave) and treated places per block.

        Parameters
        ----------
        strata : array-like of str, shape (n,)
        capacities : mapping
            Treated places per stratum, or per ``(wave, stratum)`` pair when ``waves`` is given.
        waves : array-like of int, optional
        """
        strata = np.asarray(strata, dtype=str)
        if waves is None:
            names, blocks = np.unique(strata, return_inverse=True)
            labels = tuple(str(name) for name in names)
            n_treated = np.array([int(capacities[name]) for name in labels], dtype=np.int64)
        else:
            waves = np.asarray(waves, dtype=np.int64)
            pairs = sorted(set(zip(waves.tolist(), strata.tolist())))
            code = {pair: number for number, pair in enumerate(pairs)}
            blocks = np.array([code[pair] for pair in zip(waves.tolist(), strata.tolist())], dtype=np.int64)
            labels = tuple(f"wave {w} / {s}" for w, s in pairs)
            n_treated = np.array([int(capacities[pair]) for pair in pairs], dtype=np.int64)
        sizes = np.bincount(blocks, minlength=len(labels))
        if ((n_treated < 0) | (n_treated > sizes)).any():
            bad = [f"{label} ({t} of {s})" for label, t, s in zip(labels, n_treated, sizes) if not 0 <= t <= s]
            raise ValueError(f"treated places outside 0 to the block's size: {', '.join(bad)}")
        return cls(np.asarray(blocks, dtype=np.int64), labels, n_treated)

    @classmethod
    def from_assignment(cls, treated, strata, waves=None) -> AssignmentDesign:
        """The design an observed assignment was drawn from: each block keeps its treated count."""
        treated = np.asarray(treated, dtype=bool)
        strata = np.asarray(strata).astype(str)
        keys = list(zip(np.asarray(waves, dtype=np.int64).tolist(), strata.tolist())) if waves is not None else None
        capacities: dict = {}
        for index, key in enumerate(keys if keys is not None else strata.tolist()):
            capacities[key] = capacities.get(key, 0) + int(treated[index])
        return cls.declare(strata, capacities, waves)

    @property
    def size(self) -> int:
        return int(self.blocks.size)

    def conduct(self, seed: int, wave: int = 1, *, named_streams: bool = True) -> np.ndarray:
        """Draw one assignment, reproducibly: the sealed allocation's algorithm.

        Each block shuffles its members (in the given order, which :func:`allocate` makes
        the sorted IDs) with its own stream derived from the seed, the wave and the block's
        name, and treats the first ``n_treated``. With ``named_streams=False`` (one block
        only) the stream depends on the seed and wave alone, as for complete randomisation.
        """
        treated = np.zeros(self.size, dtype=bool)
        for code, name in enumerate(self.block_names):
            members = np.flatnonzero(self.blocks == code)
            rng = _stream(seed, wave, name) if named_streams else _stream(seed, wave)
            order = rng.permutation(members.size)
            treated[members[order[: self.n_treated[code]]]] = True
        return treated

    def permutation_matrix(self, count: int, rng: np.random.Generator) -> np.ndarray:
        """``count`` independent re-draws of the design: a (count, n) boolean matrix.

        Each row treats exactly ``n_treated`` people in every block, every subset equally
        likely (random keys, the smallest ``n_treated`` per block treated).
        """
        draws = np.zeros((count, self.size), dtype=bool)
        for code in range(len(self.block_names)):
            members = np.flatnonzero(self.blocks == code)
            k = int(self.n_treated[code])
            if k == 0:
                continue
            keys = rng.random((count, members.size))
            chosen = np.argpartition(keys, k - 1, axis=1)[:, :k]
            draws[np.repeat(np.arange(count), k), members[chosen.ravel()]] = True
        return draws


def _check_capacities(sizes: pd.Series, capacities: Mapping[str, int] | None, strata: str | None) -> None:
    if not capacities:
        raise ValueError("stratified allocation needs capacities: treated places per stratum")
    problems = []
    if unknown := sorted(set(capacities) - set(sizes.index)):
        problems.append(
            f"capacities name strata no eligible person is in: {', '.join(unknown)} "
            f"(strata present: {', '.join(sorted(sizes.index))})"
        )
    if unlisted := sorted(set(sizes.index) - set(capacities)):
        problems.append(
            f"strata with eligible people but no capacity: {', '.join(unlisted)} "
            "(give them a capacity, 0 for all control)"
        )
    for stratum, capacity in sorted(capacities.items()):
        if stratum in sizes and not 0 <= capacity <= sizes[stratum]:
            problems.append(f"stratum {stratum} has {sizes[stratum]} eligible people but a capacity of {capacity}")
    if problems:
        raise ValueError(f"cannot stratify by {strata!r}: " + "; ".join(problems))


def _stream(seed: int, wave: int, stratum: str | None = None) -> np.random.Generator:
    """A random stream for one wave (and stratum), independent of every other."""
    key = [int(seed), int(wave)]
    if stratum is not None:
        key.append(int.from_bytes(hashlib.sha256(stratum.encode()).digest()[:8], "big"))
    return np.random.default_rng(np.random.SeedSequence(key))


def ids_sha256(ids: Sequence[str] | pd.Series) -> str:
    """SHA-256 of the sorted IDs, one per line: the fingerprint of an eligible list."""
    text = "".join(f"{i}\n" for i in sorted(map(str, ids)))
    return hashlib.sha256(text.encode()).hexdigest()


# ----------------------------------------------------------------- sealing and files


def seal_path(path: str | Path) -> Path:
    """Where the seal of an allocation file lives: ``allocation.csv`` → ``allocation.seal.json``."""
    path = Path(path)
    return path.with_name(path.stem + ".seal.json")


def write_allocation(
    allocation: Allocation,
    path: str | Path,
    *,
    offence_lookup: str | None = None,
    plan: Plan | SealedPlan | None = None,
) -> tuple[Path, Path]:
    """Write the allocation CSV and its seal, refusing to replace an existing allocation.

    Both files are first written under temporary names in the same folder and then linked
    into place, so a crash never leaves a half-written allocation, and an allocation that
    appeared meanwhile is never replaced. ``offence_lookup`` (a unit lookup's
    :func:`fdkit.offences.describe_lookup`, with its fingerprint) records in the seal which
    lookup classified the offences the eligible list was screened by. ``plan`` is sealed with
    the allocation: a :class:`~fdkit.plan.Plan` is sealed with its last wave; a
    :class:`SealedPlan` (an earlier wave's) is carried over as it was sealed.

    Returns
    -------
    (pathlib.Path, pathlib.Path)
        The allocation file and its seal.

    Raises
    ------
    FileExistsError
        If either file exists; the message says how to add a wave instead.
    """
    from . import __version__

    path = Path(path)
    seal = seal_path(path)
    for existing in (path, seal):
        if existing.exists():
            raise FileExistsError(_refusal(existing, path))
    table = allocation.table.assign(randomised_on=allocation.table["randomised_on"].dt.strftime("%Y-%m-%d"))
    csv_bytes = table.loc[:, list(ALLOCATION_COLUMNS)].to_csv(index=False, lineterminator="\n").encode()
    record: dict[str, Any] = {
        "allocation_file": path.name,
        "allocation_sha256": hashlib.sha256(csv_bytes).hexdigest(),
        "fdkit_version": __version__,
        "waves": [w.to_dict() for w in allocation.waves],
    }
    if offence_lookup is not None:
        record["offence_lookup"] = offence_lookup
    if plan is not None:
        record["analysis_plan"] = _plan_record(plan, allocation.waves[-1])
    seal_bytes = (json.dumps(record, indent=2, sort_keys=True) + "\n").encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    _create_exclusively(path, csv_bytes)
    try:
        _create_exclusively(seal, seal_bytes)
    except BaseException:
        path.unlink()
        raise
    return path, seal


@dataclass(frozen=True)
class SealedPlan:
    """The analysis plan an allocation was sealed with.

    Attributes
    ----------
    plan : fdkit.plan.Plan
    sha256 : str
        Its fingerprint (:func:`fdkit.plan.fingerprint`).
    text : str
        Its full text, as sealed.
    wave : int
        The wave it was sealed with.
    sealed_at : str
        When (ISO 8601, the wave's ``sealed_at``).
    file : str
        The plan file's name when it was sealed (``analysis-plan.toml``).
    """

    plan: Plan
    sha256: str
    text: str
    wave: int
    sealed_at: str
    file: str

    @property
    def date(self) -> str:
        """The day it was sealed, ``YYYY-MM-DD``."""
        return self.sealed_at[:10]

    def __str__(self) -> str:
        return f"the analysis plan {self.file} sealed on {self.date} with wave {self.wave} (SHA-256 {self.sha256[:16]})"


def _plan_record(plan: Plan | SealedPlan, wave: Wave) -> dict:
    if isinstance(plan, SealedPlan):
        return {
            "file": plan.file,
            "sha256": plan.sha256,
            "text": plan.text.splitlines(),
            "wave": plan.wave,
            "sealed_at": plan.sealed_at,
        }
    from .plan import PLAN_FILE

    return {
        "file": PLAN_FILE,
        "sha256": plan.sha256,
        "text": plan.to_toml(comments=False).splitlines(),
        "wave": wave.wave,
        "sealed_at": wave.sealed_at,
    }


def sealed_plan(path: str | Path) -> SealedPlan | None:
    """The analysis plan an allocation was sealed with, or None if it was sealed without one.

    The plan is read from the seal's own copy (not from the file beside the allocation, which
    :func:`verify` compares with it).

    Raises
    ------
    fdkit.FdkitDataError
        If the seal is missing or unreadable, or its plan cannot be read or no longer has the
        fingerprint it was sealed with.
    """
    seal = seal_path(path)
    try:
        record = json.loads(seal.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FdkitDataError([Problem(seal.name, "the seal is missing")], source=seal) from None
    except ValueError as error:
        raise FdkitDataError([Problem(seal.name, f"the seal is not readable ({error})")], source=seal) from None
    found, problem = _sealed_plan(record)
    if problem:
        raise FdkitDataError([Problem(seal.name, problem)], source=seal)
    return found


def _sealed_plan(record: dict) -> tuple[SealedPlan | None, str | None]:
    """The sealed plan of a seal's record (or None), and what is wrong with it (or None)."""
    from .plan import fingerprint, parse_plan

    entry = record.get("analysis_plan") if isinstance(record, dict) else None
    if entry is None:
        return None, None
    try:
        text = "\n".join(entry["text"]) + "\n"
        sealed = SealedPlan(
            plan=parse_plan(text, source=str(entry["file"])),
            sha256=str(entry["sha256"]),
            text=text,
            wave=int(entry["wave"]),
            sealed_at=str(entry["sealed_at"]),
            file=str(entry["file"]),
        )
    except (KeyError, TypeError, ValueError) as error:  # FdkitDataError is a ValueError
        return None, f"the analysis plan in the seal cannot be read ({str(error).splitlines()[-1].lstrip('- ')})"
    if fingerprint(sealed.plan) != sealed.sha256:
        return sealed, "the analysis plan in the seal has changed since it was sealed (its fingerprint differs)"
    waves = {w.get("wave"): w for w in record.get("waves", []) if isinstance(w, dict)}
    if sealed.wave not in waves or waves[sealed.wave].get("sealed_at") != sealed.sealed_at:
        return (
            sealed,
            f"the analysis plan's seal names wave {sealed.wave} at {sealed.sealed_at}, which the seal does not hold",
        )
    return sealed, None


def _plan_mismatches(path: Path, record: dict, plan_file: Path | None) -> list[str]:
    """How the sealed plan, and the plan file beside the allocation, differ from what was sealed."""
    from .plan import check_files, differences, read_plan

    sealed, unreadable = _sealed_plan(record)
    if unreadable:
        return [unreadable]
    if sealed is None:
        return [f"{plan_file.name} was given, but {path.name} was sealed without an analysis plan"] if plan_file else []
    beside = plan_file or path.parent / sealed.file
    notes = []
    if beside.is_file():
        try:
            found = read_plan(beside)
        except FdkitDataError as error:
            return [f"{beside.name} is not the plan that was sealed: it cannot be read ({error.problems[0]})"]
        for difference in differences(sealed.plan, found):
            notes.append(
                f"{beside.name} has changed since it was sealed: {difference.field} is "
                f"{_plain(difference.second)}, the seal gives {_plain(difference.first)}"
            )
    elif plan_file is not None:
        notes.append(f"{plan_file} is not there to compare with the sealed plan")
    for changed in check_files(sealed.plan, path.parent):
        if "is not in" not in changed.message:  # a table kept elsewhere is given at analysis, and checked then
            notes.append(f"the sealed plan's {changed.message}")
    return notes


def _plain(value) -> str:
    from .plan import _toml_value

    text = _toml_value(value)
    return text if len(text) <= 60 else text[:59] + "…"


def _refusal(existing: Path, path: Path) -> str:
    return (
        f"{existing} already exists and an allocation is never overwritten. To randomise people "
        f"recruited since, add a wave: fdkit randomise --previous {path} --out "
        f"{path.with_name(path.stem + '-wave2' + path.suffix)} ..."
    )


def _create_exclusively(path: Path, content: bytes) -> None:
    """Write a file that must not exist yet, atomically: temporary file, then a hard link."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temporary, 0o666 & ~umask)  # mkstemp makes files private; give the usual permissions
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(temporary, path)  # fails if path exists, unlike a rename
        except FileExistsError:
            raise FileExistsError(_refusal(path, path)) from None
    finally:
        os.unlink(temporary)


def read_allocation(path: str | Path) -> Allocation:
    """Read an allocation file and its seal.

    Raises
    ------
    fdkit.FdkitDataError
        If the file breaks the allocation format (columns, arms, waves, dates, duplicate
        people) or its seal is missing or unreadable.
    """
    path = Path(path)
    table = _allocation_table(path)
    if problems := formula_problems(table, ("person_id", "stratum"), path.name):
        raise FdkitDataError(at_file_lines(problems, path.parent), source=path)
    seal = seal_path(path)
    if not seal.is_file():
        raise FdkitDataError(
            [
                Problem(
                    seal.name, f"the seal of {path.name} is missing; an allocation without its seal cannot be verified"
                )
            ],
            source=path,
        )
    try:
        record = json.loads(seal.read_text(encoding="utf-8"))
        waves_sealed = tuple(Wave(**w) for w in record["waves"])
        _check_seal_types(waves_sealed)
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise FdkitDataError([Problem(seal.name, f"the seal is not readable ({error})")], source=seal) from None
    return Allocation(table=table, waves=waves_sealed)


def _allocation_table(path: Path) -> pd.DataFrame:
    """An allocation file's rows, checked against the format, waves as integers, sorted by wave and person."""
    table = read_table(
        path,
        required=ALLOCATION_COLUMNS,
        dates=("randomised_on",),
        unique=("person_id",),
        choices={"arm": ARMS},
        not_blank=("person_id", "stratum", "wave"),
    )
    waves = pd.to_numeric(table["wave"], errors="coerce")
    if (bad := waves.isna() | (waves < 1) | (waves % 1 != 0)).any():
        shown = table.loc[bad, "wave"].head(10)
        problem = Problem(
            path.name,
            f"wave numbers must be whole numbers from 1: {', '.join(map(repr, shown))}",
            column="wave",
            lines=tuple(np.flatnonzero(bad)[:10]),
            values=tuple(shown),
            count=int(bad.sum()),
            unit="row",
        )
        raise FdkitDataError(at_file_lines([problem], path.parent), source=path)
    table["wave"] = waves.astype("int64")
    table = table.loc[:, list(ALLOCATION_COLUMNS)].astype({"person_id": "str", "stratum": "str", "arm": "str"})
    return table.sort_values(["wave", "person_id"], ignore_index=True)


# ------------------------------------------------------------------------ verifying


@dataclass(frozen=True)
class Verification:
    """What :func:`verify` found: ``ok`` and, if not, every mismatch in words."""

    ok: bool
    mismatches: tuple[str, ...] = ()
    plan: SealedPlan | None = None

    def __str__(self) -> str:
        if self.ok:
            text = "the seal holds: the allocation is exactly what its seal and eligible list produce"
            if self.plan is not None:
                text += f"; {self.plan} is unchanged"
            return text
        return "the seal does not hold:\n" + "\n".join(f"- {m}" for m in self.mismatches)


def verify(
    path: str | Path, eligible: pd.DataFrame | Sequence[pd.DataFrame], *, plan: str | Path | None = None
) -> Verification:
    """Re-derive an allocation from its seal and eligible list(s) and compare.

    Parameters
    ----------
    path : str or pathlib.Path
        The allocation CSV (its seal must be beside it).
    eligible : pandas.DataFrame or sequence of DataFrame
        The eligible list used for each wave, in wave order (one frame for a single wave).
    plan : path, optional
        A plan file to compare with the sealed plan; by default the one the seal names, beside
        the allocation, if it is there.

    Returns
    -------
    Verification
        Mismatches include any change to the sealed plan: to its text in the seal, to any field
        of the plan file, or to a weights or lookup file it pins that is beside the allocation.
    """
    path = Path(path)
    allocation = read_allocation(path)
    record = json.loads(seal_path(path).read_text(encoding="utf-8"))
    mismatches = []
    if hashlib.sha256(path.read_bytes()).hexdigest() != record.get("allocation_sha256"):
        mismatches.append(f"{path.name} has changed since it was sealed (its SHA-256 differs)")
    lists = [eligible] if isinstance(eligible, pd.DataFrame) else list(eligible)
    if len(lists) != len(allocation.waves):
        return Verification(
            False,
            (
                *mismatches,
                f"the seal records {len(allocation.waves)} wave(s) but {len(lists)} eligible list(s) were given",
            ),
        )
    redone = None
    for wave, people in zip(allocation.waves, lists):
        redone = allocate(
            people,
            seed=wave.seed,
            randomised_on=wave.randomised_on,
            method=wave.method,
            strata=wave.strata,
            capacities=wave.capacities,
            n_treated=wave.n_treated,
            probability=wave.probability if wave.probability is not None else 0.5,
            previous=redone,
            sealed_at=wave.sealed_at,
        )
        if redone.waves[-1].eligible_ids_sha256 != wave.eligible_ids_sha256:
            mismatches.append(
                f"wave {wave.wave}: the eligible list is not the one sealed "
                f"({redone.waves[-1].eligible_count} people to randomise, "
                f"{wave.eligible_count} sealed)"
            )
    if redone is None:
        raise ValueError(f"{path.name}: its seal records no waves to re-derive")
    mismatches.extend(_differences(redone.table, allocation.table))
    mismatches.extend(_plan_mismatches(path, record, Path(plan) if plan is not None else None))
    return Verification(not mismatches, tuple(mismatches), _sealed_plan(record)[0])


def _differences(expected: pd.DataFrame, found: pd.DataFrame, shown: int = 10) -> list[str]:
    merged = expected.merge(found, on="person_id", how="outer", suffixes=("_expected", "_found"), indicator=True)
    notes = []
    for side, words in (
        ("left_only", "should be in the allocation but {} not"),
        ("right_only", "{} in the allocation but should not be"),
    ):
        ids = merged.loc[merged["_merge"] == side, "person_id"].tolist()
        if ids:
            verb = "is" if len(ids) == 1 else "are"
            notes.append(
                f"{len(ids)} {'person' if len(ids) == 1 else 'people'} {words.format(verb)}: {', '.join(ids[:shown])}"
            )
    both = merged[merged["_merge"] == "both"]
    for column in ("arm", "stratum", "wave", "randomised_on"):
        differ = both[both[f"{column}_expected"] != both[f"{column}_found"]]
        for _, row in differ.head(shown).iterrows():
            expected_value, found_value = row[f"{column}_expected"], row[f"{column}_found"]
            if column == "randomised_on":
                expected_value, found_value = f"{expected_value:%Y-%m-%d}", f"{found_value:%Y-%m-%d}"
            notes.append(f"{row['person_id']}: {column} is {found_value!s}, the seal gives {expected_value!s}")
        if len(differ) > shown:
            notes.append(f"... and {len(differ) - shown} more people whose {column} differs")
    return notes


# ------------------------------------------------------------- trusting an allocation

UNSEALED = "UNSEALED ALLOCATION"

_SEAL_TYPES: dict[str, type | tuple[type, ...]] = {
    "wave": int,
    "method": str,
    "seed": int,
    "randomised_on": str,
    "strata": (str, type(None)),
    "capacities": (dict, type(None)),
    "n_treated": (int, type(None)),
    "probability": (int, float, type(None)),
    "eligible_count": int,
    "eligible_ids_sha256": str,
    "already_allocated": int,
    "sealed_at": str,
}


def _check_seal_types(waves: Sequence[Wave]) -> None:
    """Raise TypeError naming the first field of a seal that has the wrong kind of value."""
    for wave in waves:
        for name, kinds in _SEAL_TYPES.items():
            value = getattr(wave, name)
            if isinstance(value, bool) or not isinstance(value, kinds):
                raise TypeError(f"wave {wave.wave!r}: {name} is {value!r}, which is not a {_kind_name(kinds)}")
        if wave.method not in METHODS or wave.seed < 0:
            raise TypeError(f"wave {wave.wave}: method {wave.method!r} and seed {wave.seed} are not a valid design")
        for stratum, places in (wave.capacities or {}).items():
            if isinstance(places, bool) or not isinstance(places, int) or places < 0:
                raise TypeError(f"wave {wave.wave}: the capacity of {stratum!r} is {places!r}, not a whole number")


def _kind_name(kinds) -> str:
    kinds = kinds if isinstance(kinds, tuple) else (kinds,)
    names = {int: "whole number", float: "number", str: "text", dict: "mapping", type(None): "null"}
    return " or ".join(dict.fromkeys(names[k] for k in kinds))


@dataclass(frozen=True)
class SealCheck:
    """What :func:`check_sealed` found before an analysis.

    Attributes
    ----------
    allocation : Allocation
        The allocation read.
    verification : Verification
        The seal check; ``verification.ok`` is False when the analysis runs unsealed.
    """

    allocation: Allocation
    verification: Verification
    plan: SealedPlan | None = None

    @property
    def sealed(self) -> bool:
        return self.verification.ok


def check_sealed(
    path: str | Path, eligible: Sequence[str | Path] | None = None, *, unsealed: bool = False
) -> SealCheck:
    """Read an allocation for analysis, trusting it only if :func:`verify` holds.

    Parameters
    ----------
    path : str or pathlib.Path
        The allocation CSV.
    eligible : sequence of path, optional
        The eligible list of each wave, in order. By default ``eligible.csv`` beside the
        allocation, if there is one.
    unsealed : bool
        Go on when the seal does not hold (or is missing, or there is no eligible list to
        check against); the result then says so, and every output must be stamped
        :data:`UNSEALED`.

    Returns
    -------
    SealCheck
        With the analysis plan sealed with the allocation, if any (its seal's own copy: the
        plan an analysis must follow).

    Raises
    ------
    fdkit.FdkitDataError
        If the allocation or its seal cannot be read, or the seal does not hold and
        ``unsealed`` is False: every mismatch is listed.
    """
    from .eligibility import read_eligible

    path = Path(path)
    if eligible is None or len(eligible) == 0:
        beside = path.parent / "eligible.csv"
        eligible = [beside] if beside.is_file() else []
    if unsealed and not seal_path(path).is_file():
        allocation = _read_without_seal(path)
        return SealCheck(allocation, Verification(False, (f"{path.name} has no seal",)))
    allocation = read_allocation(path)
    if eligible:
        verification = verify(path, [read_eligible(p) for p in eligible])
    else:
        verification = Verification(False, ("no eligible list was given to check the seal against",))
    if not verification.ok and not unsealed:
        how = (
            "give each wave's eligible list with --eligible (as for fdkit verify)"
            if not eligible
            else "run fdkit verify to see the differences and use the allocation that was sealed"
        )
        message = (
            "the allocation cannot be trusted for analysis: "
            + "; ".join(verification.mismatches)
            + f". {how[0].upper() + how[1:]}; or pass --unsealed to analyse it anyway, and every output "
            f"will say {UNSEALED}"
        )
        raise FdkitDataError([Problem(path.name, message)], source=path)
    plan, problem = _sealed_plan(json.loads(seal_path(path).read_text(encoding="utf-8")))
    return SealCheck(allocation, verification, None if problem else plan)


def _read_without_seal(path: Path) -> Allocation:
    """The allocation table alone, for an analysis the user has accepted as unsealed."""
    return Allocation(table=_allocation_table(path), waves=())
