"""Workshop packs: the notebooks for students and for the trainer, and everything a session needs.

``fdkit workshop --out DIR`` writes::

    DIR/README.md                  for the trainer: what is where, and what to hand out
    DIR/student/                   every notebook with its solution cells removed and outputs cleared
    DIR/student/README.md          how to start (it does not mention the trainer's folder)
    DIR/student/html/              HTML exports of the student notebooks, to read without Python
    DIR/student/glossary.md        glossary and references (linked from notebook 00)
    DIR/student/handout.md, .html  the 2-page printable handout
    DIR/student/protocol-template.md  the Crim-PORT protocol template the wrap-up uses
    DIR/trainer/                   every notebook complete and executed, solutions collapsed
    DIR/trainer/html/              HTML exports of the trainer notebooks, outputs and solutions shown
    DIR/trainer/trainer-guide.md   plans, goals, discussion questions, where learners get stuck
    DIR/trainer/model-answers.md   model answers to every discussion question
    DIR/trainer/slides.html        opening and wrap-up slides (one HTML file, no toolchain)
    DIR/synthetic/                 the synthetic records the notebooks read (as ``../synthetic``)

ready to zip for a room without a network: hand out ``student/`` and ``synthetic/``. Solution
cells are those tagged ``solution``.
"""

from __future__ import annotations

import copy
import html
import re
import shutil
from pathlib import Path

from .lessons import SOLUTION_TAG, hide_solutions
from .resources import kit_path

__all__ = ["SOLUTION_TAG", "make_workshop", "markdown_page", "slides_page", "student_copy"]

ROOT = Path(__file__).resolve().parents[1]

_README = """# fdkit workshop pack (trainer's copy)

- `student/`: what to hand out, with `synthetic/`. Notebooks without solutions or outputs, their
  HTML exports (`student/html/`), the glossary, the printable handout (`handout.html`), the
  protocol template, and a README for students.
- `trainer/`: the notebooks complete and executed, solutions collapsed (click a bar with three dots
  to open one); their HTML exports with everything shown (`trainer/html/`); `trainer-guide.md`
  (session plans from measured times, goals, where learners get stuck); `model-answers.md`; and
  `slides.html`, the opening and wrap-up slides (open in any browser; print one slide per page).
- `synthetic/`: the synthetic police records every notebook reads. Keep it beside `student/`.

Hand out `student/` and `synthetic/` only, for example:

    zip -r student-pack.zip student synthetic

Print `student/handout.html` (two A4 pages) for each participant.
"""

_STUDENT_README = """# fdkit workshop

Welcome. This folder holds the workshop's notebooks and everything you need to follow them.

- Start with `00_start_here.ipynb`. Open it in JupyterLab (`jupyter lab .` from this folder) and
  run it from the top; each notebook ends with a link to the next.
- Each notebook ends with exercises; try them, and bring your answers to the discussion.
- Questions marked **Predict, then run** ask you to guess before you run a cell.
- `glossary.md`: the words the notebooks use, and every source they cite.
- `handout.html`: two printable pages with the eligibility rule, the % reduction, the p-value and
  the interval in plain words, the command line, and a glossary.
- `protocol-template.md`: the protocol a unit fills in before running its own trial.
- `html/`: the notebooks as web pages, to read on a machine without Python.

The notebooks read the synthetic police records in `../synthetic`: keep that folder beside this
one. Every record is invented; numbers you compute are exercises, not findings. Nothing is
downloaded.
"""

_PAGE = """<!DOCTYPE html>
<html lang="en-GB">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font-family: "Helvetica Neue", Arial, sans-serif; font-size: 10.5pt; line-height: 1.35;
       max-width: 48em; margin: 1.5em auto; padding: 0 1em; color: #1a1a1a; }}
h1 {{ font-size: 16pt; margin: 0 0 0.4em; }} h2 {{ font-size: 12pt; margin: 0.9em 0 0.3em; }}
p, ul, ol {{ margin: 0.3em 0; }} li {{ margin: 0.1em 0; }}
table {{ border-collapse: collapse; width: 100%; font-size: 9.5pt; }}
th, td {{ border: 1px solid #bbb; padding: 2px 5px; text-align: left; vertical-align: top; }}
pre {{ background: #f4f4f4; padding: 0.4em; font-size: 8.5pt; white-space: pre-wrap; }}
code {{ font-size: 0.95em; }} blockquote {{ margin: 0.5em 0; padding: 0.3em 0.8em; background: #eef3f8; }}
@page {{ size: A4; margin: 14mm; }}
@media print {{ body {{ margin: 0; max-width: none; font-size: 9.5pt; }} h2 {{ break-after: avoid; }}
               table, pre, blockquote {{ break-inside: avoid; }} }}
</style>
</head>
<body>
{body}
</body>
</html>
"""

_SLIDES = """<!DOCTYPE html>
<html lang="en-GB">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
html {{ scroll-snap-type: y mandatory; }}
body {{ margin: 0; font-family: "Helvetica Neue", Arial, sans-serif; color: #1a1a1a; background: #ddd; }}
section {{ position: relative; box-sizing: border-box; height: 100vh; scroll-snap-align: start; padding: 6vh 8vw;
          background: white; border-bottom: 4px solid #ddd; font-size: 2.6vh; line-height: 1.45;
          display: flex; flex-direction: column; justify-content: center; }}
section h1 {{ font-size: 6vh; margin: 0 0 2vh; }} section h2 {{ font-size: 4.4vh; margin: 0 0 2vh; color: #1f4e79; }}
section h3 {{ font-size: 3.2vh; font-weight: normal; }}
blockquote {{ margin: 1vh 0; padding: 1vh 2vw; background: #eef3f8; border-left: 6px solid #1f4e79; }}
footer {{ position: absolute; right: 3vw; bottom: 2vh; font-size: 1.6vh; color: #777; }}
@page {{ size: A4 landscape; margin: 0; }}
@media print {{ body {{ background: white; }} section {{ height: 100vh; break-after: page; border: none; }} }}
</style>
</head>
<body>
{body}
</body>
</html>
"""


def _write_text(path: Path, text: str) -> None:
    """Write a text file atomically, through :func:`fdkit.files.atomic_write`."""
    from .files import atomic_write

    atomic_write(path, lambda handle: handle.write(text))


def _markdown_to_html(text: str) -> str:
    from nbconvert.filters import markdown2html

    # Jupyter's renderer adds a visible pilcrow link to every heading; printed pages don't need it.
    return re.sub(r'<a class="anchor-link"[^>]*>.*?</a>', "", markdown2html(text))


def markdown_page(text: str, title: str) -> str:
    """A Markdown document as one self-contained, printable HTML page (A4, no scripts)."""
    return _PAGE.format(title=html.escape(title), body=_markdown_to_html(text))


def slides_page(text: str, title: str) -> str:
    """Markdown slides separated by lines of ``---`` as one HTML file, a slide per screen and page.

    The file needs no toolchain and no scripts: scroll (or press Page Down) to move between slides,
    and print it for one slide per landscape page.
    """
    slides = [part.strip() for part in re.split(r"^---\s*$", text, flags=re.MULTILINE) if part.strip()]
    body = "\n".join(
        f'<section id="slide-{n}">{_markdown_to_html(slide)}<footer>{n} / {len(slides)}</footer></section>'
        for n, slide in enumerate(slides, start=1)
    )
    return _SLIDES.format(title=html.escape(title), body=body)


def _notebook_html(document) -> str:
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab")
    # Collapsed solutions would be hidden in the export too; a page is read, not clicked, so show all.
    document = copy.deepcopy(document)
    for cell in document.cells:
        cell.get("metadata", {}).pop("jupyter", None)
    body, _ = exporter.from_notebook_node(document)
    # The template loads MathJax and require.js from the internet; a room without a network can't,
    # and nothing the kit writes should reach out. Formulas then show as their TeX source.
    return re.sub(r'<script[^>]*\ssrc="https?://[^"]*"[^>]*>\s*</script>', "", body)


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
    written: dict[str, list[Path]] = {"student": [], "trainer": []}
    for kind in written:
        (out / kind).mkdir(parents=True)
    for source in sources:
        document = hide_solutions(nbformat.read(source, as_version=4))
        for kind, version in (("trainer", document), ("student", student_copy(document))):
            target = out / kind / source.name
            text = nbformat.writes(version)
            _write_text(target, text if text.endswith("\n") else text + "\n")
            _write_text(out / kind / "html" / f"{source.stem}.html", _notebook_html(version))
            written[kind].append(target)
    shutil.copytree(synthetic, out / "synthetic")
    _write_pack_documents(out, notebooks)
    return written


def _write_pack_documents(out: Path, notebooks: Path) -> None:
    """The pack's documents: guide, model answers, slides, handout, glossary, protocol, READMEs."""
    docs = kit_path("docs")

    def read(path: Path) -> str:
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing from the kit; reinstall fdkit or run from a checkout")
        return path.read_text(encoding="utf-8")

    handout = read(docs / "handout.md")
    glossary = read(notebooks / "glossary.md")
    _write_text(out / "README.md", _README)
    _write_text(out / "student" / "README.md", _STUDENT_README)
    _write_text(out / "student" / "handout.md", handout)
    _write_text(out / "student" / "handout.html", markdown_page(handout, "fdkit workshop handout"))
    _write_text(out / "student" / "protocol-template.md", read(docs / "protocol-template.md"))
    for kind in ("student", "trainer"):
        _write_text(out / kind / "glossary.md", glossary)
    _write_text(out / "trainer" / "trainer-guide.md", read(docs / "trainer-guide.md"))
    _write_text(out / "trainer" / "model-answers.md", read(docs / "model-answers.md"))
    _write_text(out / "trainer" / "slides.html", slides_page(read(docs / "slides.md"), "fdkit workshop"))
