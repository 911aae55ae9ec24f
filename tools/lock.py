"""Re-pin every dependency in constraints.txt for the oldest Python that fdkit supports.

``make lock`` runs this. pip resolves the project's dependencies (with the ``test``, ``bench`` and ``dev``
extras) as if it ran on the floor of ``requires-python`` in pyproject.toml, so no pin can need a
newer interpreter than the one the README promises. A pin whose wheel needs, say, Python 3.11.5
would otherwise break installs on Debian 12's Python 3.11.2. The resolution asks for wheels only,
for this machine's platform, and installs nothing.

Afterwards, update environment.yml to the new versions: tests/test_environment.py checks that
pyproject.toml, constraints.txt and environment.yml agree, including on the Python range.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEADER = """\
# Exact versions that `make` installs (pip install -c constraints.txt -e .[test]), pinned so that
# the committed notebook outputs reproduce. Resolved for Python {floor}, the floor of
# requires-python, so every pin installs on every supported Python. Regenerate with `make lock`
# (tools/lock.py), then update environment.yml to match (tests/test_environment.py checks them).
"""


def python_floor(requires_python: str) -> str:
    """The lowest version a ``>=X.Y[.Z]`` specifier admits, as ``X.Y.Z``.

    Examples
    --------
    >>> python_floor(">=3.11")
    '3.11.0'
    >>> python_floor(">=3.11.2,<3.14")
    '3.11.2'
    """
    match = re.search(r">=\s*(\d+)\.(\d+)(?:\.(\d+))?", requires_python)
    if match is None:
        raise ValueError(f"requires-python {requires_python!r} has no '>=' lower bound")
    major, minor, micro = match.group(1), match.group(2), match.group(3) or "0"
    return f"{major}.{minor}.{micro}"


def resolve(floor: str) -> dict[str, str]:
    """Ask pip which versions it would install on Python ``floor``; returns name -> version."""
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "report.json"
        subprocess.run(
            [
                sys.executable, "-m", "pip", "install", "--quiet", "--dry-run", "--ignore-installed",
                "--python-version", floor, "--only-binary=:all:", "--report", str(report),
                f"{ROOT}[test,bench,dev]",
            ],
            check=True,
        )  # fmt: skip
        installs = json.loads(report.read_text())["install"]
    pins = {item["metadata"]["name"]: item["metadata"]["version"] for item in installs}
    pins.pop("fdkit", None)
    return pins


def main() -> int:
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    floor = python_floor(requires)
    pins = resolve(floor)
    lines = [f"{name}=={version}" for name, version in sorted(pins.items(), key=lambda kv: kv[0].lower())]
    target = ROOT / "constraints.txt"
    staged = target.with_suffix(".new")
    staged.write_text(HEADER.format(floor=floor) + "\n".join(lines) + "\n")
    staged.replace(target)
    print(f"constraints.txt: {len(lines)} pins resolved for Python {floor}; now update environment.yml")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
