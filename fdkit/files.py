"""The one place the kit writes its outputs: a guard against destroying inputs, and atomic writes.

Every command builds one :class:`OutputGuard` from what it reads, then writes through it::

    outputs = OutputGuard(inputs=[args.allocation], input_folders=[args.records], force=args.force)
    outputs.claim(args.out)                      # refuse early, before any work is done
    outputs.write_csv(table, args.out)

The guard refuses (with :class:`OutputRefused`, a usage error: exit 2 on the command line) to
write to

- any file the command reads, or any file in a folder it reads (a records folder);
- any file of a records folder (a folder holding ``persons.csv`` or ``events.csv``);
- an allocation (a CSV with a ``.seal.json`` beside it), a seal, an eligible list that a seal
  in the same folder fingerprints, or the analysis plan a seal in the same folder was sealed with;
- the same path twice in one command;
- an existing file, unless ``force`` is given (an allocation and its seal never);
- a folder, or a path under a file.

Paths are compared after resolving symlinks and relative parts. Missing output folders are
created. Every file is written to a temporary file in the same folder, flushed, fsynced and
renamed into place, so a killed run leaves either the old file or the new one, never half of
one. A multi-file output is written into a staging folder beside its destination and renamed
into place whole (:meth:`OutputGuard.staged_folder`).

Nothing the kit writes to a CSV may begin a text cell with ``=``, ``+``, ``-``, ``@``, a tab or
a carriage return: spreadsheet programs run such cells as formulas (formula injection).
:meth:`OutputGuard.write_csv` refuses such a table.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any, overload

import numpy as np
import pandas as pd

from .records import FORMULA_STARTS, formula_cells_in

__all__ = [
    "FORMULA_STARTS",
    "OutputFailed",
    "OutputGuard",
    "OutputRefused",
    "atomic_write",
    "formula_cells",
    "refuse_formula_cells",
    "resolved",
    "write_csv",
]


SEAL_SUFFIX = ".seal.json"


class OutputRefused(Exception):
    """The guard will not write this output; a usage error (exit 2 on the command line)."""


class OutputFailed(OSError):
    """Writing an output failed (disk full, no permission); nothing was left half-written."""


def resolved(path: str | Path) -> Path:
    """The absolute path with ``~``, symlinks and ``..`` resolved (the file need not exist)."""
    return Path(os.path.realpath(Path(path).expanduser()))


def _identity(path: Path) -> tuple[int, int]:
    status = path.stat()
    return status.st_dev, status.st_ino


def _is_records_folder(folder: Path) -> bool:
    return any((folder / name).is_file() for name in ("persons.csv", "events.csv"))


def _seals(folder: Path) -> Iterator[tuple[str, dict]]:
    """The readable seals in ``folder``: (name, record); an unreadable one protects nothing (verify reports it)."""
    for seal in folder.glob("*" + SEAL_SUFFIX):
        try:
            record = json.loads(seal.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(record, dict):
            yield seal.name, record


def _sealed_fingerprints(folder: Path) -> dict[str, str]:
    """The eligible-list fingerprints recorded by the seals in ``folder``: sha256 -> seal name."""
    found = {}
    for name, record in _seals(folder):
        for wave in record.get("waves", []) if isinstance(record.get("waves"), list) else []:
            if isinstance(wave, dict):
                found[str(wave.get("eligible_ids_sha256"))] = name
    return found


def _sealed_plan_files(folder: Path) -> dict[str, str]:
    """The analysis plan files the seals in ``folder`` were sealed with: file name -> seal name."""
    found = {}
    for name, record in _seals(folder):
        entry = record.get("analysis_plan")
        if isinstance(entry, dict) and isinstance(entry.get("file"), str):
            found[entry["file"]] = name
    return found


def _ids_sha256(path: Path) -> str | None:
    """The fingerprint of a CSV's ``person_id`` column, as a seal records it."""
    from .randomise import ids_sha256

    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            ids = [row.get("person_id") for row in csv.DictReader(handle)]
    except (OSError, UnicodeDecodeError, csv.Error):
        return None
    present = [i for i in ids if i is not None]
    if not present or len(present) < len(ids):
        return None
    return ids_sha256([i.strip() for i in present])


def formula_cells(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Text cells that a spreadsheet would run as a formula, by column: row positions.

    Numbers are not text cells: ``-0.25`` in a numeric column is safe.
    """
    found = {}
    for column in frame.columns:
        values = frame[column]
        if not (pd.api.types.is_object_dtype(values.dtype) or pd.api.types.is_string_dtype(values.dtype)):
            continue
        bad = formula_cells_in(values)
        if bad.any():
            found[str(column)] = np.flatnonzero(bad)
    return found


def atomic_write(path: str | Path, write: Callable[[IO[Any]], object], *, binary: bool = False) -> Path:
    """Write a file atomically: a temporary file in the same folder, flush, fsync, rename.

    Parameters
    ----------
    path : str or pathlib.Path
        The file to write; its folder is created if missing.
    write : callable
        Called with an open handle (text, UTF-8, no newline translation; or binary).
    binary : bool
        Open the handle in binary mode.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    OutputFailed
        If the folder cannot be created or the file written (no space, no permission); the
        temporary file is removed and any earlier file at ``path`` is left as it was.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputFailed(
            error.errno, f"cannot create the folder {path.parent} for {path.name}: {error.strerror}"
        ) from None
    try:
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    except OSError as error:
        raise OutputFailed(error.errno, f"cannot write in {path.parent}: {error.strerror}") from None
    try:
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes files private; give the usual permissions
        handle: IO[Any] = (
            os.fdopen(descriptor, "wb") if binary else os.fdopen(descriptor, "w", encoding="utf-8", newline="")
        )
        with handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except OSError as error:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        reason = error.strerror or str(error)
        raise OutputFailed(
            error.errno, f"could not write {path}: {reason}; nothing was changed (check free space and permissions)"
        ) from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _sync_folder(path.parent)
    return path


def _sync_folder(folder: Path) -> None:
    """Make a rename durable (POSIX); harmless where folders cannot be opened."""
    with contextlib.suppress(OSError, AttributeError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


class OutputGuard:
    """Decide whether a command may write an output, and write it atomically.

    Parameters
    ----------
    inputs : iterable of path
        Every file the command reads (None entries are ignored).
    input_folders : iterable of path
        Every folder the command reads (a records folder); nothing inside one is written.
    force : bool
        Replace existing outputs (never an allocation or its seal).

    Examples
    --------
    >>> guard = OutputGuard(inputs=["allocation.csv"], input_folders=["synthetic"])  # doctest: +SKIP
    >>> guard.write_csv(table, "results.csv")  # doctest: +SKIP
    """

    def __init__(self, *, inputs: Iterable = (), input_folders: Iterable = (), force: bool = False):
        self.inputs = {resolved(p) for p in inputs if p is not None}
        self.input_folders = {resolved(p) for p in input_folders if p is not None}
        self.force = force
        self._claimed: dict[Path, str] = {}

    # -- deciding -------------------------------------------------------------------------

    @overload
    def claim(self, path: str | Path, *, replaceable: bool = True, new_seal: bool = False) -> Path: ...

    @overload
    def claim(self, path: None, *, replaceable: bool = True, new_seal: bool = False) -> None: ...

    def claim(self, path: str | Path | None, *, replaceable: bool = True, new_seal: bool = False) -> Path | None:
        """Check that ``path`` may be written by this command and reserve it.

        Call it for every output before doing the work, so a refusal costs nothing.

        Parameters
        ----------
        path : path or None
            None is passed through, for optional outputs.
        replaceable : bool
            False for files that are never replaced (an allocation and its seal), even with
            ``force``.
        new_seal : bool
            The path is the seal of an allocation this command creates (it must not exist).

        Returns
        -------
        pathlib.Path or None
            The resolved path.

        Raises
        ------
        OutputRefused
            Saying why, and what to do instead.
        """
        if path is None:
            return None
        target = resolved(path)
        shown = str(path)
        if target in self._claimed:
            raise OutputRefused(f"{shown} is given for two outputs of this command; give each output its own file")
        self._refuse_protected(target, shown, new_seal)
        if target.exists() and not (self.force and replaceable):
            if not replaceable:
                raise OutputRefused(f"{shown} already exists and is never replaced; choose a new file name")
            raise OutputRefused(f"{shown} already exists; choose a new file name, or pass --force to replace it")
        for parent in target.parents:
            if parent.exists():
                if not parent.is_dir():
                    raise OutputRefused(f"{shown} cannot be written: {parent} is a file, not a folder")
                break
        self._claimed[target] = shown
        return target

    def _refuse_protected(self, target: Path, shown: str, new_seal: bool = False) -> None:
        if target.is_dir():
            raise OutputRefused(f"{shown} is a folder; give a file name for this output")
        if target.exists() and not target.is_file():
            raise OutputRefused(f"{shown} is not a regular file (a device or a pipe); give a file name for this output")
        if target in self.inputs or (target.is_file() and _identity(target) in self._input_identities()):
            raise OutputRefused(
                f"{shown} is an input of this command; writing it would destroy it. Choose another file"
            )
        for folder in self.input_folders:
            if folder in target.parents:
                what = "the records folder" if _is_records_folder(folder) else "the folder"
                raise OutputRefused(
                    f"{shown} is inside {what} {folder}, which this command reads; write outputs to another folder"
                )
        if _is_records_folder(target.parent):
            raise OutputRefused(
                f"{shown} is in the records folder {target.parent}; records are never written over. "
                "Write outputs to another folder"
            )
        if target.name.endswith(SEAL_SUFFIX) and not (new_seal and not target.exists()):
            raise OutputRefused(f"{shown} is an allocation's seal; a seal is never written over")
        if target.with_name(target.stem + SEAL_SUFFIX).exists() and target.suffix == ".csv":
            raise OutputRefused(f"{shown} is a sealed allocation (its seal is beside it); it is never written over")
        if target.is_file() and (sealer := _sealed_plan_files(target.parent).get(target.name)):
            raise OutputRefused(
                f"{shown} is the analysis plan {sealer} was sealed with; a sealed plan is never written over. "
                "Write a new plan to another file"
            )
        if target.is_file():
            fingerprints = _sealed_fingerprints(target.parent)
            if fingerprints and (sha := _ids_sha256(target)) in fingerprints:
                raise OutputRefused(
                    f"{shown} is the eligible list that {fingerprints[sha]} fingerprints; fdkit verify needs it "
                    "unchanged. Write the new list to another file"
                )

    def _input_identities(self) -> set[tuple[int, int]]:
        """The (device, inode) of every input file: a hard link to an input is that input."""
        return {_identity(path) for path in self.inputs if path.is_file()}

    # -- writing --------------------------------------------------------------------------

    def _target(self, path: str | Path, replaceable: bool = True) -> Path:
        target = resolved(path)
        return target if target in self._claimed else self.claim(path, replaceable=replaceable)

    def write_bytes(self, data: bytes, path: str | Path, *, replaceable: bool = True) -> Path:
        """Write bytes to a claimed (or claimable) path, atomically."""
        atomic_write(self._target(path, replaceable), lambda handle: handle.write(data), binary=True)
        return Path(path)

    def write_text(self, text: str, path: str | Path) -> Path:
        """Write UTF-8 text to a claimed (or claimable) path, atomically."""
        atomic_write(self._target(path), lambda handle: handle.write(text))
        return Path(path)

    def write_csv(self, frame: pd.DataFrame, path: str | Path, **to_csv) -> Path:
        """Write a table as CSV (no index, ``\\n`` line ends), atomically, refusing formula cells.

        Raises
        ------
        fdkit.FdkitDataError
            If a text cell begins with a character a spreadsheet runs as a formula.
        """
        refuse_formula_cells(frame, Path(path).name)
        write_csv(frame, self._target(path), **to_csv)
        return Path(path)

    @contextlib.contextmanager
    def staged_folder(self, folder: str | Path, *, own_names: Iterable[str] = ()) -> Iterator[Path]:
        """Build a multi-file output in a staging folder, then rename it into place whole.

        The destination must not exist, or be an empty folder; with ``force`` an existing
        folder is replaced, but only if it holds nothing except ``own_names`` (what this
        command writes) and no sealed allocation: ``--force`` must never delete a user's
        other files. If the body raises, or the run is killed, the destination is untouched
        (a killed run leaves only a hidden ``.NAME.staging-*`` folder beside it).

        Yields
        ------
        pathlib.Path
            The staging folder to write into.
        """
        target = resolved(folder)
        shown = str(folder)
        if target.exists() and not target.is_dir():
            raise OutputRefused(f"{shown} is a file; give a folder for this output")
        if target in self._claimed:
            raise OutputRefused(f"{shown} is given for two outputs of this command")
        for protected in self.inputs | self.input_folders:
            if protected == target or target in protected.parents or protected in target.parents:
                raise OutputRefused(f"{shown} holds or is inside {protected}, which this command reads; choose another")
        occupied = target.is_dir() and any(target.iterdir())
        if occupied:
            if seals := sorted(p.name for p in target.glob("*" + SEAL_SUFFIX)):
                raise OutputRefused(
                    f"{shown} holds a sealed allocation ({', '.join(seals)}), which is never replaced; choose another"
                )
            if not self.force:
                raise OutputRefused(f"{shown} already holds files; choose a new or empty folder, or pass --force")
            if foreign := sorted(p.name for p in target.iterdir() if p.name not in set(own_names)):
                raise OutputRefused(
                    f"{shown} holds files this command did not write ({', '.join(foreign[:5])}), which --force "
                    "would delete; choose a new or empty folder"
                )
        self._claimed[target] = shown
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.staging-"))
        except OSError as error:
            raise OutputFailed(error.errno, f"cannot create {shown}: {error.strerror}") from None
        try:
            yield staging
            for file in staging.rglob("*"):
                if file.is_file():
                    with open(file, "rb+") as handle:
                        os.fsync(handle.fileno())
            os.chmod(staging, 0o777 & ~_umask())
            self._swap_into_place(staging, target, occupied)
        except OSError as error:
            shutil.rmtree(staging, ignore_errors=True)
            raise OutputFailed(error.errno, f"could not write {shown}: {error.strerror}; nothing was changed") from None
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    @staticmethod
    def _swap_into_place(staging: Path, target: Path, occupied: bool) -> None:
        if not occupied:
            if target.is_dir():
                target.rmdir()  # empty
            os.rename(staging, target)
        else:
            retired = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.old-"))
            os.rename(target, retired / target.name)
            os.rename(staging, target)
            shutil.rmtree(retired, ignore_errors=True)
        _sync_folder(target.parent)


def write_csv(frame: pd.DataFrame, path: str | Path, **to_csv) -> Path:
    """Write a table as CSV atomically, refusing formula cells, without the guard's checks.

    For library functions writing where their caller asked; commands use
    :meth:`OutputGuard.write_csv`.
    """
    refuse_formula_cells(frame, Path(path).name)
    options = {"index": False, "lineterminator": "\n", **to_csv}
    return atomic_write(path, lambda handle: frame.to_csv(handle, **options))


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def refuse_formula_cells(frame: pd.DataFrame, name: str) -> None:
    """Raise :class:`fdkit.FdkitDataError` if a text cell of ``frame`` would run as a formula."""
    from .records import FdkitDataError, Problem

    found = formula_cells(frame)
    if not found:
        return
    problems = [
        Problem(
            name,
            "text beginning with =, +, -, @, a tab or a carriage return, which a spreadsheet runs as a formula "
            f"(formula injection): {', '.join(repr(str(frame[column].iloc[r])) for r in rows[:5])}",
            column=column,
            lines=tuple(int(r) for r in rows[:10]),
            count=len(rows),
            unit="row",
        )
        for column, rows in found.items()
    ]
    raise FdkitDataError(problems, source=name)
