"""How many threads the kernels use: numba's parallel loops and the BLAS behind im2col + GEMM.

Both pools must be limited together, or a "1-thread" measurement still multiplies matrices
on every core.
"""

from __future__ import annotations

import contextlib
import os

import numba
from threadpoolctl import threadpool_limits

from cvcourse._checks import as_int


def max_threads() -> int:
    """The most threads numba may use in this process (``NUMBA_NUM_THREADS``)."""
    # numba.config fills its settings in through globals(), so the checker cannot see them
    return numba.config.NUMBA_NUM_THREADS  # type: ignore[attr-defined]


def _check_count(n) -> int:
    n = as_int(n, "n")
    if not 1 <= n <= max_threads():
        raise ValueError(f"n must be between 1 and {max_threads()} (NUMBA_NUM_THREADS), got {n}")
    return n


@contextlib.contextmanager
def threads(n: int):
    """Run the enclosed kernels on ``n`` threads (numba and BLAS), then restore the previous counts.

    >>> with threads(1):
    ...     y = conv2d(x, w)          # doctest: +SKIP
    """
    n = _check_count(n)
    previous = numba.get_num_threads()
    numba.set_num_threads(n)
    try:
        with threadpool_limits(limits=n, user_api="blas"):
            yield
    finally:
        numba.set_num_threads(previous)


def cpu_count() -> int:
    """Cores this process may run on (respects CPU affinity, unlike ``os.cpu_count``)."""
    return len(os.sched_getaffinity(0))
