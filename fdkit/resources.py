"""Where the kit's own folders are: inside an installed wheel, or beside the package in a checkout.

The wheel carries the kit's notebooks, synthetic records and docs as package data under
``fdkit/_kit/`` (see ``[tool.setuptools]`` in ``pyproject.toml``), reached through
:mod:`importlib.resources`; a checkout (or an editable install) has them at the top of the
repository. :func:`kit_path` finds either, so ``fdkit workshop`` and ``fdkit report`` work
after ``pip install fdkit`` outside any checkout.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["KIT_FOLDERS", "kit_path"]

#: The repository's folders that ship inside the wheel.
KIT_FOLDERS = ("notebooks", "synthetic", "docs")

_CHECKOUT = Path(__file__).resolve().parents[1]


def kit_path(name: str) -> Path:
    """The kit's folder ``name`` (one of :data:`KIT_FOLDERS`), or a file inside one.

    Parameters
    ----------
    name : str
        ``"notebooks"``, ``"synthetic"``, ``"docs"``, or a path inside one of them
        (``"docs/trainer-guide.md"``).

    Raises
    ------
    FileNotFoundError
        If neither the installed package nor a checkout holds it.
    """
    if name.split("/")[0] not in KIT_FOLDERS:
        raise ValueError(f"{name!r} is not one of the kit's folders ({', '.join(KIT_FOLDERS)})")
    packaged = resources.files("fdkit").joinpath("_kit", *name.split("/"))
    # An installed wheel is unpacked on disk, so its resources are ordinary paths.
    candidates = [Path(str(packaged)), _CHECKOUT / name]
    for candidate in candidates:
        if candidate.exists():
            return candidate
    raise FileNotFoundError(
        f"the kit's {name} is neither in the installed package ({candidates[0]}) nor in a checkout "
        f"({candidates[1]}); reinstall fdkit (pip install fdkit) or run from a checkout"
    )
