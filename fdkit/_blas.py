"""Run re-draw arithmetic on one BLAS thread.

Randomisation inference multiplies a (re-draws x people) matrix of assignments by a few
columns: thousands of small products. OpenBLAS spreads each across every core, and on
matrices this small the threads' start-up costs more than they save: the robust Poisson
score test took 8.3 ms per interval step with two threads and 1.6 ms with one on a 2-core
machine (``benchmarks/bench_analyse.py`` times the whole command). Results do not depend on
the thread count (``tests/test_deterministic.py``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

__all__ = ["one_blas_thread"]

_P = ParamSpec("_P")
_R = TypeVar("_R")
_controller = None


def one_blas_thread(function: Callable[_P, _R]) -> Callable[_P, _R]:
    """Decorate ``function`` to run with BLAS limited to one thread, restoring the limit after.

    Examples
    --------
    >>> import numpy as np
    >>> one_blas_thread(np.dot)(np.ones(3), np.ones(3))
    np.float64(3.0)
    """

    @functools.wraps(function)
    def limited(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        global _controller
        if _controller is None:  # made on first use, once numpy's BLAS is loaded
            from threadpoolctl import ThreadpoolController

            _controller = ThreadpoolController()
        with _controller.limit(limits=1, user_api="blas"):
            return function(*args, **kwargs)

    return limited
