"""Every notebook is a lesson: committed with outputs, objectives, key points and exercises."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def cells(path):
    return json.loads(path.read_text())["cells"]


def text(cell):
    return "".join(cell["source"])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_a_complete_lesson(path):
    notebook = cells(path)
    first_code = next(i for i, c in enumerate(notebook) if c["cell_type"] == "code")
    opening = "\n".join(text(c) for c in notebook[:first_code])
    assert opening.startswith("# ") and "What you will learn" in opening and "Time needed" in opening
    assert "Prerequisites" in opening
    markdown = "\n".join(text(c) for c in notebook if c["cell_type"] == "markdown")
    assert "## Key points" in markdown and "## Exercises" in markdown
    solutions = [c for c in notebook if "solution" in c.get("metadata", {}).get("tags", [])]
    assert len(solutions) >= 2, "at least two exercises with solutions"
    code = [c for c in notebook if c["cell_type"] == "code"]
    assert all(c.get("outputs") for c in solutions), "solutions are executed"
    assert sum(bool(c.get("outputs")) for c in code) >= len(code) // 2, "committed with outputs"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_uses_the_kits_plotting_theme(path):
    source = "\n".join(text(c) for c in cells(path) if c["cell_type"] == "code")
    if "plt." in source or ".plot(" in source:
        assert "use_theme()" in source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_holds_no_absolute_paths_or_errors(path):
    for cell in cells(path):
        assert "/work/" not in text(cell) and "/home/" not in text(cell)
        for output in cell.get("outputs", []):
            assert output.get("output_type") != "error"
