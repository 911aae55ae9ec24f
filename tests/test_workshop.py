"""Workshop copies: students get no solutions and no outputs, and their notebooks still run."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from fdkit.cli import main
from fdkit.report import execute_notebook
from fdkit.workshop import make_workshop

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))


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
        assert (
            json.loads((workshop / "trainer" / source.name).read_text())["cells"]
            == json.loads(source.read_text())["cells"]
        )


def test_no_student_copy_holds_a_solution_or_an_output(workshop):
    for path in (workshop / "student").glob("*.ipynb"):
        for cell in json.loads(path.read_text())["cells"]:
            assert "solution" not in cell.get("metadata", {}).get("tags", []), path.name
            if cell["cell_type"] == "code":
                assert cell["outputs"] == [] and cell["execution_count"] is None, path.name


@pytest.mark.parametrize("name", [p.name for p in NOTEBOOKS])
def test_student_copies_still_run(workshop, name):
    document = nbformat.read(workshop / "student" / name, as_version=4)
    execute_notebook(document, workshop / "student", timeout=300)
    errors = [o for c in document.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors


def test_the_command_refuses_a_non_empty_folder(workshop, capsys):
    # An output the kit will not write over is a usage error (exit 2), as for every command.
    assert main(["workshop", "--out", str(workshop)]) == 2
    assert "already holds files" in capsys.readouterr().err
