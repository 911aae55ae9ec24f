"""Workshop packs: students get no solutions and no outputs, their notebooks still run, and the
pack holds everything a session needs (handout, model answers, slides, protocol, HTML exports)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest

from fdkit.cli import main
from fdkit.lessons import hide_solutions
from fdkit.report import execute_notebook
from fdkit.workshop import make_workshop

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.fixture(scope="module")
def workshop(tmp_path_factory):
    out = tmp_path_factory.mktemp("room") / "workshop"
    make_workshop(out)
    return out


def test_every_notebook_is_copied_for_both_audiences_with_the_data(workshop):
    names = [p.name for p in NOTEBOOKS]
    assert sorted(p.name for p in (workshop / "student").glob("*.ipynb")) == names
    assert sorted(p.name for p in (workshop / "trainer").glob("*.ipynb")) == names
    assert (workshop / "synthetic" / "events.csv").read_bytes() == (
        NOTEBOOKS[0].parents[1] / "synthetic" / "events.csv"
    ).read_bytes()
    for source in NOTEBOOKS:
        # trainer copies are the committed notebooks with every solution collapsed
        assert (
            json.loads((workshop / "trainer" / source.name).read_text())["cells"]
            == hide_solutions(json.loads(source.read_text()))["cells"]
        )


def test_no_student_copy_holds_a_solution_or_an_output(workshop):
    for path in (workshop / "student").glob("*.ipynb"):
        for cell in json.loads(path.read_text())["cells"]:
            assert "solution" not in cell.get("metadata", {}).get("tags", []), path.name
            if cell["cell_type"] == "code":
                assert cell["outputs"] == [] and cell["execution_count"] is None, path.name


@pytest.mark.slow  # runs every student notebook through a kernel
@pytest.mark.parametrize("name", [p.name for p in NOTEBOOKS])
def test_student_copies_still_run(workshop, name):
    document = nbformat.read(workshop / "student" / name, as_version=4)
    execute_notebook(document, workshop / "student", timeout=300)
    errors = [o for c in document.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors


def test_the_command_refuses_a_non_empty_folder(workshop, capsys):
    assert main(["workshop", "--out", str(workshop)]) == 2  # the output guard: a usage error
    assert "already holds files" in capsys.readouterr().err


def words(text):
    return len(re.findall(r"[A-Za-z0-9%£][\w'%.-]*", text))


def test_the_pack_holds_every_document_a_session_needs(workshop):
    expected = [
        "README.md",
        "student/README.md",
        "student/glossary.md",
        "student/handout.md",
        "student/handout.html",
        "student/protocol-template.md",
        "trainer/glossary.md",
        "trainer/trainer-guide.md",
        "trainer/model-answers.md",
        "trainer/slides.html",
    ]
    missing = [name for name in expected if not (workshop / name).is_file()]
    assert not missing
    assert (workshop / "student/protocol-template.md").read_bytes() == (ROOT / "docs/protocol-template.md").read_bytes()
    for kind in ("student", "trainer"):
        exports = sorted(p.stem for p in (workshop / kind / "html").glob("*.html"))
        assert exports == [p.stem for p in NOTEBOOKS], kind


def test_html_exports_show_the_trainer_everything_and_the_student_no_solutions(workshop):
    source = nbformat.read(NOTEBOOKS[0], as_version=4)
    solution = next(c for c in source.cells if "solution" in c.metadata.get("tags", []) and c.cell_type == "code")
    output = "".join(o.get("text", "") for o in solution.outputs).strip().splitlines()[0]
    trainer = (workshop / "trainer/html" / f"{NOTEBOOKS[0].stem}.html").read_text(encoding="utf-8")
    student = (workshop / "student/html" / f"{NOTEBOOKS[0].stem}.html").read_text(encoding="utf-8")
    assert output in trainer and output not in student
    assert "Interpretation." in trainer and "Interpretation." not in student
    for page in (workshop / "student/html").glob("*.html"):
        assert not re.search(r'src="https?://', page.read_text(encoding="utf-8")), (
            f"{page.name} loads from the internet"
        )


def test_the_student_readme_never_mentions_the_trainers_folder(workshop):
    readme = (workshop / "student/README.md").read_text(encoding="utf-8")
    assert "trainer" not in readme.lower() and "00_start_here.ipynb" in readme


def test_the_handout_fits_two_pages_and_covers_what_it_promises(workshop):
    handout = (workshop / "student/handout.md").read_text(encoding="utf-8")
    # two A4 pages at the print stylesheet's 9.5 pt hold about 1,300 words of mixed prose and tables
    assert words(handout) <= 1300, words(handout)
    for heading in ("eligibility rule", "% reduction", "p-value", "confidence interval", "command line", "Glossary"):
        assert re.search(rf"^## .*{re.escape(heading)}", handout, re.IGNORECASE | re.MULTILINE), heading
    page = (workshop / "student/handout.html").read_text(encoding="utf-8")
    assert "@page" in page and "<script" not in page and "http" not in page.split("<body>")[0]
    assert "¶" not in page


def test_the_slides_are_one_self_contained_file_with_an_opening_and_a_wrap_up(workshop):
    page = (workshop / "trainer/slides.html").read_text(encoding="utf-8")
    sections = re.findall(r"<section id=\"slide-\d+\">", page)
    assert len(sections) >= 8
    assert "<script" not in page and "src=" not in page
    assert "Opening" in page and "Wrap-up" in page


def test_there_is_a_model_answer_for_every_discussion_question_in_the_guide():
    guide = (ROOT / "docs/trainer-guide.md").read_text(encoding="utf-8")
    answers = (ROOT / "docs/model-answers.md").read_text(encoding="utf-8")
    section = guide.split("## Notebook by notebook", 1)[1].split("\n---", 1)[0]
    for notebook in re.split(r"^### ", section, flags=re.MULTILINE)[1:]:
        title = notebook.splitlines()[0].strip()
        questions = [line for line in notebook.splitlines() if line.startswith("- ")]
        block = answers.split(f"## {title}", 1)
        assert len(block) == 2, f"no model answers for {title}"
        given = re.findall(r"^\*\*.+?\*\*", block[1].split("\n## ", 1)[0], flags=re.MULTILINE | re.DOTALL)
        assert len(given) == len(questions), f"{title}: {len(questions)} questions, {len(given)} answers"


PLAN_ROW = re.compile(r"^\|\s*(\d{1,2}:\d{2})\s*\|([^|]*)\|([^|]*)\|([^|]*)\|$")


def plans():
    """The guide's plans: {heading: [(start minutes, session, what, slot minutes or None)]}."""
    guide = (ROOT / "docs/trainer-guide.md").read_text(encoding="utf-8")
    found = {}
    for block in re.split(r"^## ", guide, flags=re.MULTILINE)[1:]:
        heading = block.splitlines()[0]
        rows = []
        for line in block.splitlines():
            match = PLAN_ROW.match(line)
            if match:
                hours, minutes = map(int, match.group(1).split(":"))
                slot = re.findall(r"(\d+)\s*$", match.group(4).strip())
                rows.append(
                    (60 * hours + minutes, match.group(2).strip(), match.group(3), int(slot[0]) if slot else None)
                )
        if rows:
            found[heading] = rows
    return found


def test_the_guide_has_a_three_hour_a_half_day_and_a_full_day_plan_that_add_up():
    found = plans()
    lengths = {"3-hour": 180, "Half-day": 210, "Full-day": 450}
    for prefix, length in lengths.items():
        heading = next(h for h in found if h.startswith(prefix))
        rows = found[heading]
        for (start, session, _, slot), (following, *_rest) in zip(rows, rows[1:]):
            assert slot is not None and start + slot == following, f"{heading}: {session} runs {slot} min"
        assert rows[-1][0] - rows[0][0] <= length, heading


def test_every_plan_slot_holds_the_measured_time_with_slack():
    """A slot where the room reads and runs a whole notebook holds its measured reading + running + 15%."""
    from fdkit.lessons import lesson_time

    measured = {path.name[:2]: lesson_time(nbformat.read(path, as_version=4)) for path in NOTEBOOKS}
    checked = 0
    for rows in plans().values():
        for _, session, what, slot in rows:
            number = re.match(r"(\d\d) ", session)
            if number and "read and run" in what and "section" not in session:
                time = measured[number.group(1)]
                assert slot >= 1.15 * (time.reading + time.running) - 0.5, f"{session}: {slot} min"
                checked += 1
    assert checked >= 12


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs a headless Chromium to print")
def test_the_handout_prints_on_two_a4_pages(workshop, tmp_path):
    pdf = tmp_path / "handout.pdf"
    subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--print-to-pdf={pdf}",
            "--no-pdf-header-footer",
            (workshop / "student/handout.html").as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert len(re.findall(rb"/Type\s*/Page[^s]", pdf.read_bytes())) == 2
