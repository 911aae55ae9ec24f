"""The three places dependencies are named must agree: pyproject.toml, constraints.txt, environment.yml."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: conda-forge names that differ from the PyPI ones.
PYPI_NAME_OF = {"python-duckdb": "duckdb"}


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pyproject_packages() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = project["dependencies"] + [s for extra in project["optional-dependencies"].values() for s in extra]
    return {normalise(re.split(r"[<>=!~\[ ;]", spec, maxsplit=1)[0]) for spec in specs}


def conda_pins() -> dict[str, str]:
    text = (ROOT / "environment.yml").read_text()
    pins = {}
    for line in text.split("dependencies:", 1)[1].splitlines():
        if match := re.fullmatch(r"\s*-\s*([A-Za-z0-9_.-]+)(?:=([^=\s#]+))?\s*(?:#.*)?", line):
            name = normalise(match[1])
            pins[PYPI_NAME_OF.get(name, name)] = match[2]
    pins.pop("python", None), pins.pop("pip")
    return pins


def constraint_pins() -> dict[str, str]:
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    return {normalise(n): v for n, v in (line.split("==") for line in lines if line and not line.startswith("#"))}


def test_environment_yml_lists_the_same_packages_as_pyproject():
    assert set(conda_pins()) == pyproject_packages()


def test_environment_yml_pins_the_versions_ci_installs():
    constraints = constraint_pins()
    assert {name: constraints.get(name) for name in conda_pins()} == conda_pins()


def test_every_dependency_is_pinned_in_constraints():
    assert pyproject_packages() <= set(constraint_pins())


def supported_pythons() -> tuple[str, list[str]]:
    """The floor of requires-python and the minor versions the classifiers promise."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    floor = re.fullmatch(r">=(\d+\.\d+)", project["requires-python"])[1]
    minors = [c.rsplit(" :: ", 1)[1] for c in project["classifiers"] if re.fullmatch(r".*Python :: 3\.\d+", c)]
    return floor, minors


def test_the_three_files_declare_the_same_python_range():
    floor, minors = supported_pythons()
    assert minors[0] == floor, "the first Python classifier is the floor of requires-python"
    conda = re.search(r"^\s*-\s*python(\S*)\s*$", (ROOT / "environment.yml").read_text(), re.MULTILINE)[1]
    newest = minors[-1].split(".")
    assert conda == f">={floor},<{newest[0]}.{int(newest[1]) + 1}", "environment.yml's python range"
    header = (ROOT / "constraints.txt").read_text().split("\n", 3)[:3]
    assert f"Resolved for Python {floor}.0, the floor" in " ".join(header), "constraints.txt names its Python"


def test_check_python_names_the_floor_and_refuses_older(tmp_path):
    import subprocess
    import sys

    ok = subprocess.run([sys.executable, str(ROOT / "tools" / "check_python.py")], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    fake = tmp_path / "old.py"  # the same script, run as if by Python 3.10
    fake.write_text(
        "import sys\nsys.version_info = (3, 10, 13)\n"
        + (ROOT / "tools" / "check_python.py")
        .read_text()
        .replace("Path(__file__)", f"Path({str(ROOT / 'tools' / 'x')!r})")
    )
    old = subprocess.run([sys.executable, str(fake)], capture_output=True, text=True)
    floor, _ = supported_pythons()
    assert old.returncode == 1 and f"fdkit needs Python {floor} or newer" in old.stderr
