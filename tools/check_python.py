"""Stop early, with advice, when `make` is run with a Python that fdkit does not support.

Run by the Makefile before it creates the virtual environment, with the interpreter it would use
(``make PYTHON=...``). It reads the supported range from pyproject.toml, so the message names the
real floor, and it uses only the standard library of any Python 3.
"""

import re
import sys
from pathlib import Path

TESTED = ((3, 11), (3, 12), (3, 13))  # the versions CI installs and tests (.ci/run)


def main() -> int:
    text = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    floor_text = re.search(r'requires-python\s*=\s*">=\s*([0-9.]+)', text).group(1)
    floor = tuple(int(part) for part in floor_text.split("."))
    found = ".".join(str(part) for part in sys.version_info[:3])
    if sys.version_info[: len(floor)] < floor:
        print(
            f"fdkit needs Python {floor_text} or newer, but {sys.executable} is Python {found}.\n"
            "Install a newer Python (from python.org, your package manager such as "
            "'apt install python3.11', or pyenv), then run make with it, e.g. "
            "'make test PYTHON=python3.11'.",
            file=sys.stderr,
        )
        return 1
    if sys.version_info[:2] not in TESTED:
        tested = ", ".join(f"{major}.{minor}" for major, minor in TESTED)
        print(f"note: Python {found} is newer than those fdkit is tested on ({tested}).", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
