"""The ``Layer`` base class every reference layer derives from, and its argument checks.

The course's layer API (``../shared/DESIGN.md``)::

    class Layer:
        params: dict[str, np.ndarray]   # torch's names and shapes, e.g. "weight", "bias"
        grads:  dict[str, np.ndarray]   # same keys, filled by backward()
        def forward(self, x): ...       # returns y, caches what backward needs
        def backward(self, dy): ...     # returns dx, fills self.grads

Conventions of the reference layers built on it:

* **backward overwrites the gradients.** ``backward(dy)`` stores ``grads[name] = dL/dparam``
  for the most recent ``forward``; it does not add to what was there (the homework's style,
  unlike torch's accumulating ``.grad``). So there is nothing to zero between steps.
  ``grads`` is empty until the first ``backward``; :meth:`Layer.zero_grad` fills it with zeros.
* **dtypes.** Parameters are float32 by default (``dtype=np.float64`` for exact checks).
  Inputs may be float32 or float64; a layer computes in the wider of the input's and its
  parameters' dtypes, returns ``dx`` in the input's dtype and each gradient in its
  parameter's dtype.
* **errors.** A wrong input (not a float array, wrong rank, channels or features that do not
  match the layer) raises ``TypeError``/``ValueError`` whose message starts with the layer
  (its repr) and gives the shapes; ``backward`` before ``forward`` raises ``RuntimeError``.
* **pickling** drops the forward cache (a pickled layer needs a new ``forward`` before
  ``backward``); parameters, gradients, mode and random generators are kept.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

from cvcourse._checks import as_flag

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def as_param_dtype(dtype) -> np.dtype:
    """``dtype`` as a numpy dtype, which must be float32 or float64."""
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"dtype must be np.float32 or np.float64, got {dtype!r}") from exc
    if dt not in FLOAT_DTYPES:
        raise TypeError(f"dtype must be np.float32 or np.float64, got {dt}")
    return dt


class Layer:
    """Base class of the reference layers: parameters, gradients, mode, cache, state.

    Subclasses implement ``forward(x) -> y`` and ``backward(dy) -> dx`` and store their
    parameters in ``self.params``. ``layer(x)`` is ``layer.forward(x)``.

    Attributes
    ----------
    params : dict[str, np.ndarray]
        Torch's names and shapes.
    grads : dict[str, np.ndarray]
        The same keys once ``backward`` has run.
    training : bool
        ``True`` in training mode (the default), ``False`` after ``eval()``.
    """

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.training = True
        # what forward keeps for backward: each layer stores its own kind (an array, a tuple)
        self._cache: Any = None

    # --- the API -------------------------------------------------------------------------

    def forward(self, x):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} does not implement forward")

    def backward(self, dy):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} does not implement backward")

    def __call__(self, x):
        return self.forward(x)

    def train(self, mode: bool = True) -> Layer:
        """Set training mode (``mode=True``) or evaluation mode; returns ``self``."""
        self.training = as_flag(mode, "mode", f"{self!r}.train")
        return self

    def eval(self) -> Layer:
        """Evaluation mode (``train(False)``): dropout becomes the identity. Returns ``self``."""
        return self.train(False)

    def zero_grad(self) -> None:
        """Set every gradient to zeros of its parameter's shape and dtype.

        Rarely needed: ``backward`` overwrites the gradients rather than adding to them.
        """
        for name, p in self.params.items():
            self.grads[name] = np.zeros_like(p)

    def num_parameters(self) -> int:
        """Total number of scalar parameters."""
        return sum(int(np.size(p)) for p in self.params.values())

    # --- state (see cvcourse.nn.state) ---------------------------------------------------

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of the parameters, ``name -> array`` (see :func:`cvcourse.nn.state_dict`)."""
        from .state import state_dict

        return state_dict(self)

    def load_state_dict(self, state, *, strict: bool = True) -> Layer:
        """Copy ``state``'s arrays into the parameters, after checking names and shapes."""
        from .state import load_state_dict

        load_state_dict(self, state, strict=strict)
        return self

    def save(self, path) -> None:
        """Write the parameters to ``path`` as an ``.npz`` file, atomically."""
        from .state import save

        save(self, path)

    def load(self, path, *, strict: bool = True) -> Layer:
        """Load parameters written by :meth:`save` (checked like ``load_state_dict``)."""
        from .state import load

        load(self, path, strict=strict)
        return self

    # --- repr and pickling ---------------------------------------------------------------

    def extra_repr(self) -> str:
        """The layer's configuration, shown between the parentheses of its repr."""
        return ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_cache"] = None  # activations of the last forward: not part of the model
        return state

    # --- helpers for subclasses ----------------------------------------------------------

    def _cached(self):
        """What the last ``forward`` stored, or a ``RuntimeError`` if there was none."""
        if self._cache is None:
            raise RuntimeError(
                f"{self!r}: backward() was called before forward(); run forward(x) first "
                "(backward uses what forward cached, and a pickled or loaded layer has none)"
            )
        return self._cache

    def _input(self, x, ndim: int | None = None, layout: str = "", name: str = "x"):
        """``x`` if it is a float32/float64 array (of rank ``ndim``), else a clear error."""
        if not isinstance(x, np.ndarray):
            raise TypeError(
                f"{self!r}: {name} must be a numpy array, got {type(x).__name__} "
                "(use np.asarray(x, dtype=np.float32))"
            )
        if x.dtype not in FLOAT_DTYPES:
            raise TypeError(
                f"{self!r}: {name} must be float32 or float64, got dtype {x.dtype} with shape "
                f"{x.shape} (convert with {name}.astype(np.float32))"
            )
        if ndim is not None and x.ndim != ndim:
            layout = f" {layout}" if layout else ""
            raise ValueError(f"{self!r}: {name} must be {ndim}-D{layout}, got shape {x.shape}")
        return x

    def _upstream(self, dy, shape: tuple[int, ...]) -> np.ndarray:
        """``dy`` if it is a float array of the forward output's ``shape``."""
        dy = self._input(dy, name="dy")
        if dy.shape != tuple(shape):
            raise ValueError(
                f"{self!r}: dy has shape {dy.shape} but the output of the last forward has "
                f"shape {tuple(shape)}: dy must have the output's shape"
            )
        return dy

    @contextlib.contextmanager
    def _named_errors(self):
        """Re-raise a kernel's ``ValueError``/``TypeError`` with this layer's name in front."""
        try:
            yield
        except (ValueError, TypeError) as exc:
            if type(exc) not in (ValueError, TypeError):
                raise
            raise type(exc)(f"{self!r}: {exc}") from exc
