"""Finite-difference gradient checks for NumPy layers and functions (see :mod:`.check`)."""

from .check import (
    DEFAULT_THRESHOLDS,
    STATUSES,
    GradCheckReport,
    TensorCheck,
    check_gradients,
    classify,
    numerical_gradient,
    relative_error,
    relative_errors,
)

__all__ = [
    "DEFAULT_THRESHOLDS",
    "STATUSES",
    "GradCheckReport",
    "TensorCheck",
    "check_gradients",
    "classify",
    "numerical_gradient",
    "relative_error",
    "relative_errors",
]
