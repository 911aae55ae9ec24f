"""The hostile-input suite (tests/hostile/suite.py) under pytest: one test per case."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_SPEC = importlib.util.spec_from_file_location("hostile_suite", Path(__file__).parent / "hostile" / "suite.py")
suite = importlib.util.module_from_spec(_SPEC)
sys.modules["hostile_suite"] = suite  # dataclasses look their module up there
_SPEC.loader.exec_module(suite)


def test_the_suite_has_at_least_100_cases_with_distinct_names():
    names = [case.name for case in suite.CASES]
    assert len(names) >= 100
    assert len(set(names)) == len(names)


@pytest.fixture(scope="module")
def shipped_untouched():
    before = suite.shipped_fingerprint()
    yield
    assert suite.shipped_fingerprint() == before, "the hostile suite changed the shipped synthetic folder"


@pytest.mark.parametrize(
    "case",
    [pytest.param(case, id=case.name, marks=[pytest.mark.slow] if case.slow else []) for case in suite.CASES],
)
def test_hostile_case(case, tmp_path, shipped_untouched):
    if case.skip:
        pytest.skip(case.skip)
    verdict = suite.run_case(case, base=tmp_path)
    assert verdict.ok, str(verdict)
