"""``check_gradients``: compare a layer's or a function's gradients with finite differences.

It runs the layer or function, then checks tensor by tensor.

The steps, for ``L = sum(forward(x) * dy)`` with a seeded random ``dy``:

1. validate the arguments, copy the inputs to float64 (``_arguments``);
2. for a layer, snapshot it (:mod:`.state`) and swap float32 parameters for float64 copies;
3. run ``forward`` twice (it must be deterministic and leave its input alone), then
   ``backward(dy)`` for the analytic gradients;
4. per input and parameter: sample elements, take centred differences (:mod:`.numerics`),
   compare, excuse kinks and judge (:mod:`.policy`) into a :class:`~.report.TensorCheck`;
5. restore the layer, also when a step raises, and return a :class:`~.report.GradCheckReport`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from . import _arguments as arguments
from . import policy, state
from .numerics import as_tuple, central_differences, relative_errors, same_bits
from .policy import DEFAULT_THRESHOLDS, Settings
from .report import GradCheckReport, TensorCheck

__all__ = ["check_gradients"]


def _as_gradients(result, inputs: Sequence[np.ndarray], names: Sequence[str], who: str):
    """Normalise what backward/grad_fn returned to one float64 array (or None) per input."""
    k = len(inputs)
    if result is None:
        items = [None] * k
    elif k == 1 and not isinstance(result, (tuple, list)):
        items = [result]
    elif isinstance(result, (tuple, list)) and len(result) == k:
        items = list(result)
    else:
        got = f"a {type(result).__name__}"
        if isinstance(result, (tuple, list)):
            got += f" of length {len(result)}"
        raise ValueError(
            f"{who} must return one gradient per input ({k}: {', '.join(names)}), got {got}"
        )
    grads: list[np.ndarray | None] = []
    for g, x, name in zip(items, inputs, names, strict=True):
        if g is None:
            grads.append(None)
            continue
        arr = arguments.real_array(g, f"the gradient of {name} returned by {who}")
        if arr.shape != x.shape:
            raise ValueError(
                f"{who} returned a gradient of shape {arr.shape} for {name}, which has "
                f"shape {x.shape}: the gradient must have the shape of what it is for"
            )
        grads.append(arr.astype(np.float64, copy=True))
    return grads


def _check_layer(layer, xs, originals, dy, settings, names, rng):
    missing = [a for a in ("forward", "backward", "params", "grads") if not hasattr(layer, a)]
    if missing:
        raise TypeError(
            f"layer must follow the course's Layer API (forward, backward, params, grads); "
            f"{type(layer).__name__} has no {', '.join(missing)} (a layer without "
            "parameters sets params = {} and grads = {})"
        )
    for attr in ("forward", "backward"):
        if not callable(getattr(layer, attr)):
            raise TypeError(f"layer.{attr} must be a method, got {type(getattr(layer, attr))}")
    for attr in ("params", "grads"):
        if not isinstance(getattr(layer, attr), Mapping):
            raise TypeError(
                f"layer.{attr} must be a dict of arrays, got {type(getattr(layer, attr))}"
            )
    for key, p in layer.params.items():
        if not isinstance(key, str):
            raise TypeError(f"layer.params keys must be strings, got {key!r}")
        arguments.float_array(p, f"layer.params[{key!r}]")
        if key in names:
            raise ValueError(f"parameter {key!r} has the name of an input; pass names=...")

    forward = layer.forward
    notes = []
    saved = state.snapshot(layer)
    try:
        # Parameters are perturbed in place, so the forward sees them however it reads
        # them. float64 ones are the layer's own arrays (restored bitwise afterwards);
        # others are replaced in the dict by float64 copies for the duration of the check.
        params = layer.params
        work = {}
        dtypes = {key: str(p.dtype) for key, p in params.items()}
        converted = []
        for key in list(params):
            p = params[key]
            if p.dtype == np.float64 and p.flags.writeable:
                work[key] = p
            else:
                work[key] = p.astype(np.float64)
                params[key] = work[key]
                converted.append(f"{key} ({p.dtype})")
        if converted:
            notes.append(
                f"parameters {', '.join(converted)} were checked on float64 copies "
                "(finite differences in float32 carry ~1e-3 error); the layer keeps its own "
                "arrays"
            )

        def run(inputs) -> np.ndarray:
            return arguments.output(forward(*inputs), "layer.forward(x)")

        def backward(dy64, inputs):
            grads = _as_gradients(layer.backward(dy64), inputs, names, "layer.backward(dy)")
            param_grads = {}
            current = layer.grads  # read after backward: it may have rebound self.grads
            if not isinstance(current, Mapping):
                raise TypeError(f"layer.grads must be a dict of arrays, got {type(current)}")
            for key, p in work.items():
                if key not in current:
                    raise ValueError(
                        f"after backward, layer.grads has no entry {key!r} (params has "
                        f"{sorted(work)}, grads has {sorted(current)})"
                    )
                g = arguments.real_array(current[key], f"layer.grads[{key!r}]")
                if g.shape != p.shape:
                    raise ValueError(
                        f"layer.grads[{key!r}] has shape {g.shape} but layer.params[{key!r}] "
                        f"has shape {p.shape}: a gradient has its parameter's shape (a "
                        "missing sum over the batch axis gives an extra leading dimension)"
                    )
                param_grads[key] = g.astype(np.float64, copy=True)
            extra = sorted(set(current) - set(work))
            if extra:
                notes.append(f"layer.grads has entries without a parameter: {extra}")
            return grads, param_grads

        input_dtypes = [str(x.dtype) for x in originals]
        return _run_check(
            run, backward, xs, input_dtypes, work, dy, settings, names, rng, notes, dtypes
        )
    finally:
        state.restore(saved)


def _run_check(run, backward, xs, dtypes, params, dy, settings, names, rng, notes, pdtypes=None):
    """The shared body: forward, backward, then finite differences for each tensor.

    ``xs`` are the float64 working copies of the inputs (perturbed in place), ``params``
    the float64 parameter arrays the forward reads; ``dtypes``/``pdtypes`` the original
    dtypes, for the report.
    """
    pristine = [x.copy() for x in xs]
    y = run(xs)
    for name, x, x0 in zip(names, xs, pristine, strict=True):
        if not same_bits(x, x0):
            raise ValueError(
                f"forward modified its input {name} in place; finite differences need an "
                "unchanged input (copy it first, e.g. x = x.copy() or np.maximum(x, 0))"
            )
    if not np.all(np.isfinite(y)):
        # Differences of NaN/inf mean nothing (and the rounding floor derived from L would be
        # NaN): say what is wrong with the forward instead.
        bad = int(y.size - np.count_nonzero(np.isfinite(y)))
        raise ValueError(
            f"forward returned NaN or inf in {bad} of {y.size} outputs at the original input: "
            "finite differences cannot check it (look for a division by zero, a log of 0, "
            "an overflow in exp)"
        )
    # Dropout in training mode or random noise would make every difference meaningless.
    again = run(xs)
    scale = float(np.max(np.abs(y))) if y.size else 0.0
    if again.shape != y.shape or not np.allclose(
        again, y, rtol=1e-10, atol=1e-12 * scale, equal_nan=True
    ):
        raise ValueError(
            "forward is not deterministic: two calls on the same input gave different "
            "outputs (dropout in training mode? random noise?); make it deterministic "
            "for the check"
        )
    if dy is None:
        # Random rather than ones, so that errors that cancel in a plain sum (a transpose,
        # a mixed-up axis) still show. A scalar output (a loss) gets dy = 1.
        dy64 = np.ones(()) if y.ndim == 0 else rng.standard_normal(y.shape)
    else:
        dy64 = arguments.upstream(dy, y.shape, "dy", "the forward output")
    input_grads, param_grads = backward(float(dy64) if y.ndim == 0 else dy64.copy(), xs)

    def objective() -> float:
        out = run(xs)
        if out.shape != y.shape:
            raise ValueError(
                f"forward returned shape {out.shape} for a perturbed input but {y.shape} "
                "at the original one"
            )
        return float(np.sum(out * dy64))

    f0 = objective()
    settings.set_noise(f0, y * dy64)

    results = []
    for name, x, g, dtype in zip(names, xs, input_grads, dtypes, strict=True):
        if g is None:
            results.append(_skipped(name, x, dtype, "no analytic gradient (None): not checked"))
        else:
            results.append(_check_tensor(name, "input", x, g, objective, f0, dtype, settings))
    for key, p in params.items():
        dtype = (pdtypes or {}).get(key, str(p.dtype))
        results.append(
            _check_tensor(key, "param", p, param_grads[key], objective, f0, dtype, settings)
        )
    if not any(r.status != "skipped" for r in results):
        notes.append("no gradient was returned, so nothing was checked")
    return results, notes


def check_gradients(
    layer_or_fn,
    *inputs: np.ndarray,
    grad_fn: Callable | None = None,
    dy=None,
    seed: int | None = 0,
    max_samples: int | None = 200,
    h: float = 1e-6,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    detect_kinks: bool = True,
    names: Sequence[str] | None = None,
) -> GradCheckReport:
    """Check analytic gradients against centred finite differences.

    Two forms::

        check_gradients(layer, x)                      # a course Layer
        check_gradients(f, x, w, grad_fn=grad_f)       # a function and its gradient

    **Layer** (``forward(*inputs) -> y``, ``backward(dy) -> dx`` filling ``grads``, and
    ``params``/``grads`` dicts with the same keys and shapes): the check draws ``dy``
    (seeded standard normal of ``y``'s shape), runs ``forward`` then ``backward(dy)`` for the
    analytic ``dx`` and ``grads``, and differentiates ``L = sum(forward(x) * dy)`` numerically
    with respect to every input and every entry of ``params`` (perturbed in place, so
    ``forward`` must read ``self.params[...]``). ``backward`` may return ``None`` for an
    input (reported as "skipped") and a layer may have no parameters (``params == {}``).
    With several inputs ``backward`` returns a tuple, one gradient (or ``None``) per input.

    **Function** ``f(*inputs) -> y`` (array or scalar) with ``grad_fn(dy, *inputs)``
    returning the gradient of ``sum(f(*inputs) * dy)`` for each input: one array for one
    input, else a tuple (``None`` entries are skipped). A scalar ``f`` (a loss) gets
    ``dy = 1.0``. Extra non-float arguments such as labels go into a closure::

        check_gradients(lambda s: softmax_loss(s, y)[0], scores,
                        grad_fn=lambda dy, s: dy * softmax_loss(s, y)[1])

    Everything runs in float64 on copies of the inputs (float32 ones are noted in the
    report); the layer is restored exactly afterwards (parameters bitwise, dtypes, grads,
    caches and any other attributes), also when the check raises.

    Parameters
    ----------
    layer_or_fn : Layer or callable
    *inputs : np.ndarray, floating dtype
        The point to check at. Use random inputs away from kinks (ReLU at 0, ties in max).
    grad_fn : callable, only with a function
    dy : array of the output's shape, optional
        Upstream gradient; random (seeded) by default.
    seed : int or None
        Seeds ``dy`` and the sampling: the same seed gives the same check.
    max_samples : int or None
        At most this many elements per tensor are checked (chosen at random, always
        including the one with the largest analytic gradient); ``None`` checks all.
    h : float > 0
        Finite-difference step.
    thresholds : (good, ok, suspicious)
        Upper bounds of the relative error for each status; a tensor passes below ``ok``.
        Defaults to CS231n's (1e-7, 1e-4, 1e-2); :mod:`cvcourse.gradcheck.policy` has the
        policy.
    detect_kinks : bool
        Excuse elements whose finite differences straddle a kink (status "kink").
    names : sequence of str, optional
        Names of the inputs in the report (default "x", or "x0", "x1", ...).

    Returns
    -------
    GradCheckReport
        Truthy when the check passed; prints as a table, renders as HTML in Jupyter.
    """
    if not inputs:
        raise TypeError("check_gradients needs at least one input array after the layer/f")
    for i, x in enumerate(inputs):
        arguments.float_array(x, "x" if len(inputs) == 1 else f"inputs[{i}]")
    h = arguments.step(h)
    thresholds = arguments.thresholds(thresholds)
    seed, max_samples, detect_kinks = arguments.options(seed, max_samples, detect_kinks)
    names = arguments.input_names(names, len(inputs))

    rng = np.random.default_rng(seed)
    settings = Settings(
        h=h, thresholds=thresholds, max_samples=max_samples, detect_kinks=detect_kinks, rng=rng
    )
    # Copies in float64: the user's arrays are never touched.
    xs = [np.array(x, dtype=np.float64, copy=True) for x in inputs]
    notes = []
    low = [n for n, x in zip(names, inputs, strict=True) if x.dtype != np.float64]
    if low:
        notes.append(f"inputs {', '.join(low)} were checked as float64 copies")

    is_layer = hasattr(layer_or_fn, "forward") or hasattr(layer_or_fn, "backward")
    if is_layer:
        if grad_fn is not None:
            raise TypeError(
                "grad_fn is only for functions: a layer's gradients come from its backward"
            )
        results, more = _check_layer(layer_or_fn, xs, inputs, dy, settings, names, rng)
    else:
        if not callable(layer_or_fn):
            raise TypeError(
                "check_gradients expects a Layer (forward/backward/params/grads) or a "
                f"function, got {type(layer_or_fn).__name__}"
            )
        if grad_fn is None:
            raise TypeError(
                "check_gradients(f, *inputs) needs grad_fn=: a function grad_fn(dy, *inputs) "
                "returning the gradient of sum(f(*inputs) * dy) for each input"
            )
        if not callable(grad_fn):
            raise TypeError(f"grad_fn must be callable, got {type(grad_fn).__name__}")
        f = layer_or_fn

        def run(inputs_) -> np.ndarray:
            return arguments.output(f(*inputs_), "f(*inputs)")

        def backward(dy64, inputs_):
            copies = [x.copy() for x in inputs_]  # grad_fn must not disturb the point
            return _as_gradients(grad_fn(dy64, *copies), inputs_, names, "grad_fn"), {}

        dtypes = [str(x.dtype) for x in inputs]
        results, more = _run_check(run, backward, xs, dtypes, {}, dy, settings, names, rng, [])
    return GradCheckReport(
        tensors=tuple(results),
        thresholds=thresholds,
        h=h,
        seed=seed,
        notes=tuple(notes + more),
    )


def _check_tensor(name, role, x, analytic, objective, f0, dtype, settings) -> TensorCheck:
    """Compare ``analytic`` with finite differences of ``objective`` perturbing ``x``."""
    flat = policy.sample(analytic, settings)
    diffs = central_differences(objective, x, flat, settings.h)
    a = analytic.reshape(-1)[flat]
    n = diffs.values
    floor = settings.floor
    errors = relative_errors(a, n, floor)
    if len(flat) == 0:
        return TensorCheck(
            name=name, shape=tuple(x.shape), dtype=dtype, status="good", max_error=0.0,
            max_abs_error=0.0, worst_index=None, worst_analytic=math.nan,
            worst_numerical=math.nan, n_checked=0, n_total=0, n_kinks=0, floor=floor,
            indices=flat, errors=errors, analytic=a, numerical=n,
            kinks=np.zeros(0, dtype=bool), hint="empty tensor: nothing to compare",
        )  # fmt: skip
    kinks = policy.find_kinks(objective, x, flat, a, diffs, f0, settings, errors)
    worst, considered = policy.worst_element(errors, kinks)
    abs_errors = np.abs(a - n)[considered]
    status, hint = policy.verdict(
        name, role, x.shape, flat, a, n, errors, kinks, floor, settings.thresholds
    )
    return TensorCheck(
        name=name,
        shape=tuple(x.shape),
        dtype=dtype,
        status=status,
        max_error=float(errors[worst]),
        max_abs_error=float("nan") if np.isnan(abs_errors).any() else float(abs_errors.max()),
        worst_index=as_tuple(np.unravel_index(int(flat[worst]), x.shape)),
        worst_analytic=float(a[worst]),
        worst_numerical=float(n[worst]),
        n_checked=len(flat),
        n_total=int(x.size),
        n_kinks=int(kinks.sum()),
        floor=floor,
        indices=flat,
        errors=errors,
        analytic=a,
        numerical=n,
        kinks=kinks,
        hint=hint,
    )


def _skipped(name: str, x: np.ndarray, dtype: str, why: str) -> TensorCheck:
    """A tensor without an analytic gradient: reported, not checked."""
    empty = np.empty(0)
    return TensorCheck(
        name=name, shape=tuple(x.shape), dtype=dtype, status="skipped", max_error=math.nan,
        max_abs_error=math.nan, worst_index=None, worst_analytic=math.nan,
        worst_numerical=math.nan, n_checked=0, n_total=int(x.size), n_kinks=0, floor=math.nan,
        indices=np.empty(0, dtype=np.intp), errors=empty, analytic=empty, numerical=empty,
        kinks=np.empty(0, dtype=bool), hint=why,
    )  # fmt: skip
