"""Hypothesis strategies and small helpers shared by the kernel tests."""

from hypothesis import strategies as st


def as_pair(value) -> tuple[int, int]:
    """An int or ``(h, w)`` argument as ``(h, w)``, the way torch reads it."""
    return (value, value) if isinstance(value, int) else tuple(value)


def int_or_pair(low: int, high: int):
    """An int in ``[low, high]`` or a pair of them: torch accepts both for window arguments."""
    one = st.integers(low, high)
    return st.one_of(one, st.tuples(one, one))
