"""Refuse to commit a lesson notebook saved without outputs: nbval checks nothing in it then.

Used by the pre-commit hook; run with the notebooks to check as arguments.
"""

import json
import sys


def main(paths: list[str]) -> int:
    bare = []
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            cells = json.load(handle)["cells"]
        code = [cell for cell in cells if cell["cell_type"] == "code" and "".join(cell["source"]).strip()]
        if code and not any(cell.get("outputs") for cell in code):
            bare.append(path)
    for path in bare:
        print(f"{path}: saved without outputs; run it top to bottom and save before committing", file=sys.stderr)
    return 1 if bare else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
