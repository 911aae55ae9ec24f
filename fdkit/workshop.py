"""Workshop copies of the notebooks: one set for students, one for the trainer.

``fdkit workshop --out DIR`` writes::

    DIR/student/   every notebook with its solution cells removed and all outputs cleared
    DIR/trainer/   every notebook complete, executed, with solutions
    DIR/synthetic/ the synthetic records the notebooks read (as ``../synthetic``)
    DIR/README.md  what is where, and how to start

ready to zip for a room without a network. Solution cells are those tagged ``solution``;
the trainer guide (``docs/trainer-guide.md``) is copied beside the trainer's notebooks.
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

from .resources import kit_path

# A checkout's top folder; installed wheels have none, so locate kit files with kit_path().
ROOT = Path(__file__).resolve().parents[1]
SOLUTION_TAG = "solution"

_README = """# fdkit workshop

- `student/`: the notebooks to hand out. Exercises have no solutions and no outputs yet.
- `trainer/`: the same notebooks, complete and executed, with solutions (cells tagged `solution`).
- `synthetic/`: the synthetic police records every notebook reads. Keep it beside the two folders.

Open a notebook with JupyterLab (`jupyter lab student/`) and run it from the top. Nothing is
downloaded: everything the notebooks need is in this folder and the fdkit package.
"""


def student_copy(document):
    """A notebook without its solution cells and with every output cleared."""
    document = copy.deepcopy(document)
    document.cells = [cell for cell in document.cells if SOLUTION_TAG not in cell.get("metadata", {}).get("tags", [])]
    for cell in document.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return document


def make_workshop(
    out: str | Path,
    *,
    notebooks: str | Path | None = None,
    synthetic: str | Path | None = None,
    overwrite: bool = False,
) -> dict[str, list[Path]]:
    """Write student and trainer copies of the notebooks plus the data they need.

    Parameters
    ----------
    out : path
        The folder to create.
    notebooks, synthetic : path, optional
        The kit's ``notebooks/`` and ``synthetic/`` folders by default.
    overwrite : bool
        Replace an existing workshop folder.

    Returns
    -------
    dict
        ``{"student": [...], "trainer": [...]}``, the notebook files written.
    """
    import nbformat

    out = Path(out)
    notebooks = Path(notebooks) if notebooks else kit_path("notebooks")
    synthetic = Path(synthetic) if synthetic else kit_path("synthetic")
    sources = sorted(notebooks.glob("[0-9][0-9]_*.ipynb"))
    if not sources or not (synthetic / "events.csv").is_file():
        raise FileNotFoundError(
            f"no notebooks in {notebooks} or no synthetic records in {synthetic}; "
            "reinstall fdkit or pass the folders explicitly"
        )
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{out}/ is not empty; choose another folder or pass --force")
        shutil.rmtree(out)
    written = {"student": [], "trainer": []}
    for kind in written:
        (out / kind).mkdir(parents=True)
    for source in sources:
        document = nbformat.read(source, as_version=4)
        for kind, version in (("trainer", document), ("student", student_copy(document))):
            target = out / kind / source.name
            nbformat.write(version, target)
            written[kind].append(target)
    shutil.copytree(synthetic, out / "synthetic")
    guide = kit_path("docs") / "trainer-guide.md"
    if guide.is_file():
        shutil.copy(guide, out / "trainer" / guide.name)
    (out / "README.md").write_text(_README, encoding="utf-8")
    return written
