"""How long a notebook takes a learner, and solutions kept out of sight until wanted.

**The time model.** A notebook's time is the sum of three parts, for a learner who knows a
little pandas:

reading
    the prose (markdown and code comments) at 200 words a minute, plus the code a learner reads
    before running it at 10 lines a minute;
running
    the measured execution time of every code cell, plus 10 seconds per code cell to run it and
    look at its output;
exercises
    for each exercise, 3 minutes to read it and think, 1 minute per line of code in its model
    answer (a learner who knows a little pandas writes and fixes about a line a minute), and
    2 minutes to write what the result means; a written exercise with no code counts 6 minutes;
    each "predict, then run" question adds 1 minute.

The total is rounded up to the next 5 minutes. Execution times come from the cell timings that
Jupyter records when a notebook is executed (``metadata.execution``), so the figure can be
recomputed from a committed notebook without running it again, or from a fresh run
(``benchmarks/bench_lesson_times.py --execute``).

**Solutions.** Cells tagged ``solution`` (model answers and their interpretation, and the answers
to "predict, then run" questions) are collapsed in JupyterLab, input and output, through the
cell metadata ``jupyter: {source_hidden: true, outputs_hidden: true}``; :func:`hide_solutions`
sets it. They are still executed and checked by nbval.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime

__all__ = [
    "SOLUTION_TAG",
    "PREDICT_MARK",
    "ANSWER_MARK",
    "INTERPRETATION_MARK",
    "LessonTime",
    "lesson_time",
    "stated_minutes",
    "hide_solutions",
    "solutions_hidden",
]

SOLUTION_TAG = "solution"
#: Every "predict, then run" question starts with this mark.
PREDICT_MARK = "**Predict, then run.**"
#: The collapsed answer to a prediction starts with this mark.
ANSWER_MARK = "**Answer to the prediction.**"
#: The words that end every model answer start with this mark.
INTERPRETATION_MARK = "**Interpretation.**"
WORDS_PER_MINUTE = 200
CODE_LINES_PER_MINUTE = 10
SECONDS_PER_CODE_CELL = 10
EXERCISE_READ_MINUTES, EXERCISE_WRITE_MINUTES, WRITTEN_EXERCISE_MINUTES = 3, 2, 6
PREDICT_MINUTES = 1

_WORD = re.compile(r"[A-Za-z0-9£%][\w'’.,%-]*")
_STATED = re.compile(r"\*\*Time needed:\*\*\s*about\s+(\d+)\s+minutes")


def _source(cell) -> str:
    source = cell["source"]
    return source if isinstance(source, str) else "".join(source)


def _tags(cell) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def _code_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def _comment_words(text: str) -> int:
    comments = [line.split("#", 1)[1] for line in text.splitlines() if line.strip().startswith("#")]
    return sum(len(_WORD.findall(c)) for c in comments if not c.strip().startswith("NBVAL"))


def _seconds(cell) -> float:
    timing = cell.get("metadata", {}).get("execution", {})
    start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
    if not (start and end):
        return 0.0
    parse = lambda stamp: datetime.fromisoformat(stamp.replace("Z", "+00:00"))  # noqa: E731
    return max(0.0, (parse(end) - parse(start)).total_seconds())


@dataclass(frozen=True)
class LessonTime:
    """A notebook's measured time, in minutes, by part."""

    words: int
    code_lines: int
    code_cells: int
    exercises: int
    predictions: int
    execution_seconds: float
    reading: float
    running: float
    exercising: float

    @property
    def total(self) -> int:
        """Reading + running + exercises, rounded up to the next 5 minutes."""
        return 5 * math.ceil((self.reading + self.running + self.exercising) / 5)


def lesson_time(document) -> LessonTime:
    """Measure one notebook (an ``nbformat`` node or the parsed JSON) by the module's model.

    A code cell tagged ``solution`` counts as one exercise. A markdown cell tagged ``solution``
    that does not follow another solution cell is a written exercise's model answer, unless it
    starts with :data:`ANSWER_MARK` or :data:`INTERPRETATION_MARK`.
    """
    cells = document["cells"]
    words = code_lines = code_cells = exercises = predictions = 0
    seconds = exercise_minutes = 0.0
    previous = None
    for cell in cells:
        text = _source(cell)
        if cell["cell_type"] == "markdown":
            words += len(_WORD.findall(re.sub(r"\(([^)]*\.(?:ipynb|md))\)|<[^>]+>", " ", text)))
            if PREDICT_MARK in text:
                predictions += 1
            elif SOLUTION_TAG in _tags(cell) and not (previous and SOLUTION_TAG in _tags(previous)):
                if not text.startswith((INTERPRETATION_MARK, ANSWER_MARK)):
                    exercises += 1
                    exercise_minutes += WRITTEN_EXERCISE_MINUTES
        elif cell["cell_type"] == "code":
            code_cells += 1
            lines = _code_lines(text)
            words += _comment_words(text)
            seconds += _seconds(cell)
            if SOLUTION_TAG in _tags(cell):
                exercises += 1
                exercise_minutes += EXERCISE_READ_MINUTES + len(lines) + EXERCISE_WRITE_MINUTES
            else:
                code_lines += len(lines)
        previous = cell
    return LessonTime(
        words=words,
        code_lines=code_lines,
        code_cells=code_cells,
        exercises=exercises,
        predictions=predictions,
        execution_seconds=seconds,
        reading=words / WORDS_PER_MINUTE + code_lines / CODE_LINES_PER_MINUTE,
        running=(seconds + SECONDS_PER_CODE_CELL * code_cells) / 60,
        exercising=exercise_minutes + PREDICT_MINUTES * predictions,
    )


def stated_minutes(document) -> int | None:
    """The time a notebook states in its opening (``**Time needed:** about N minutes``)."""
    for cell in document["cells"]:
        if cell["cell_type"] == "markdown":
            found = _STATED.search(_source(cell))
            if found:
                return int(found.group(1))
    return None


def hide_solutions(document):
    """Collapse every ``solution`` cell's input and output in JupyterLab (changes ``document``)."""
    for cell in document["cells"]:
        if SOLUTION_TAG in _tags(cell):
            jupyter = cell.setdefault("metadata", {}).setdefault("jupyter", {})
            jupyter["source_hidden"] = True
            if cell["cell_type"] == "code":
                jupyter["outputs_hidden"] = True
    return document


def solutions_hidden(document) -> bool:
    """True when every ``solution`` cell is collapsed (code: input and output)."""
    for cell in document["cells"]:
        if SOLUTION_TAG in _tags(cell):
            jupyter = cell.get("metadata", {}).get("jupyter", {})
            if not jupyter.get("source_hidden"):
                return False
            if cell["cell_type"] == "code" and not jupyter.get("outputs_hidden"):
                return False
    return True


def main(argv: list[str] | None = None) -> int:
    """``python -m fdkit.lessons NOTEBOOK...``: collapse solutions and set each stated time in place.

    Prints each notebook's measured time. ``--check`` changes nothing and exits 1 if a notebook's
    solutions are not collapsed or its stated time is not the measured one.
    """
    import argparse

    import nbformat

    parser = argparse.ArgumentParser(prog="python -m fdkit.lessons", description=(main.__doc__ or "").splitlines()[0])
    parser.add_argument("notebooks", nargs="+")
    parser.add_argument("--check", action="store_true", help="report only; exit 1 if anything would change")
    args = parser.parse_args(argv)
    stale = 0
    for path in args.notebooks:
        document = nbformat.read(path, as_version=4)
        time = lesson_time(document)
        stated = stated_minutes(document)
        ok = solutions_hidden(document) and stated == time.total
        print(f"{path}: measured {time.total} min, stated {stated}, solutions {'collapsed' if ok else 'to fix'}")
        if args.check:
            stale += not ok
            continue
        hide_solutions(document)
        for cell in document.cells:
            if cell.cell_type == "markdown" and _STATED.search(cell.source):
                cell.source = _STATED.sub(f"**Time needed:** about {time.total} minutes", cell.source, count=1)
                break
        nbformat.write(document, path)
    return 1 if stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
