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
    pins.pop("python"), pins.pop("pip")
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
