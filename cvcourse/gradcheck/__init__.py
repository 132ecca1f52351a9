"""Finite-difference gradient checks for NumPy layers and functions.

A backward pass is checked against centred finite differences of ``L = sum(f(x) * dy)``::

    check_gradients(layer, x)                      # a course Layer
    check_gradients(f, x, w, grad_fn=grad_f)       # a function and its gradient

returns a :class:`GradCheckReport` (one :class:`TensorCheck` per input and parameter) that
is truthy when the check passed, prints as a table and renders as coloured HTML in Jupyter.
Everything is computed in float64: float32 inputs and parameters are checked on float64
copies (float32 finite differences carry ~1e-3 relative error) and the report notes it.
The layer is left as it was found: parameters, gradients, caches and other attributes.

Which module does what:

- :mod:`.numerics`: ``numerical_gradient`` (centred differences, the formula a student
  writes next to CS231n's ``eval_numerical_gradient``) and ``relative_error(s)``
  (``|a - n| / max(|a|, |n|, floor)``).
- :mod:`.policy`: the checking policy: ``DEFAULT_THRESHOLDS`` (CS231n's 1e-7/1e-4/1e-2),
  ``STATUSES`` and ``classify``, which elements are sampled, the rounding floor and the
  kink test, and the one-line diagnosis of a failing tensor.
- :mod:`.check`: ``check_gradients``, running a layer or a function through those steps.
- :mod:`.state`: snapshot and restore of a layer (and the layers nested in it).
- :mod:`.report`: ``TensorCheck`` and ``GradCheckReport``; the text table (``tabulate``)
  and the HTML table (the Jinja2 template ``templates/report.html.j2``).
- ``_arguments``: the argument checks, built on :mod:`cvcourse._checks`.
"""

from .check import check_gradients
from .numerics import numerical_gradient, relative_error, relative_errors
from .policy import DEFAULT_THRESHOLDS, STATUSES, classify
from .report import GradCheckReport, TensorCheck

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
