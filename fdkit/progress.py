"""Progress on long work: a tqdm bar on stderr when stderr is a terminal, silence otherwise.

Every command reports progress through :func:`bar`, so that a person at a terminal sees
what a long command is doing while pipes, files, notebooks and CI logs get nothing extra
(their stdout is the same as without progress).

Long functions take an optional ``progress`` callable and know nothing about terminals;
the command passes one made here. :func:`stepper` makes one for work in named steps
(``progress("reading events.csv")``), and ``bar.update`` counts work with a known total.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from tqdm import tqdm

__all__ = ["bar", "shown", "stepper"]


def shown() -> bool:
    """Whether progress is shown: only when stderr is a terminal."""
    stream = sys.stderr
    return stream is not None and hasattr(stream, "isatty") and stream.isatty()


def bar(total: int | None, description: str, unit: str = "step") -> tqdm:
    """A progress bar on stderr, disabled (silent) unless stderr is a terminal.

    Parameters
    ----------
    total : int or None
        How many units of work there are (None when unknown).
    description : str
        What is being done, shown before the bar.
    unit : str
        What is counted.

    Returns
    -------
    tqdm.tqdm
        Use it as a context manager and call ``update(n)``; the bar is removed when done.

    Examples
    --------
    >>> with bar(3, "simulating") as progress:  # silent here: stderr is not a terminal
    ...     for _ in range(3):
    ...         progress.update(1)
    """
    return tqdm(
        total=total,
        desc=description,
        unit=unit,
        file=sys.stderr,
        disable=not shown(),
        leave=False,
        dynamic_ncols=True,
    )


def stepper(progress: tqdm) -> Callable[[str], None]:
    """A callable for functions that report named steps: each call ends a step and names the next."""
    started = False

    def step(label: str) -> None:
        nonlocal started
        if started:
            progress.update(1)
        started = True
        progress.set_postfix_str(label, refresh=True)

    return step
