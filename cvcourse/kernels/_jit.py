"""The ``numba.njit`` options the kernel modules compile with, as a type.

Each kernel module names its options once (``_JIT = JitOptions(cache=True, ...)``, with the
reason for each choice beside it) and decorates with ``@njit(**_JIT)``; this type lets the
type checker match those keywords against ``njit``'s signature.
"""

from __future__ import annotations

from typing import TypedDict

__all__ = ["JitOptions"]


class JitOptions(TypedDict, total=False):
    """Keyword arguments of ``numba.njit`` used by the kernels."""

    cache: bool
    nogil: bool
    parallel: bool
    fastmath: set[str]
