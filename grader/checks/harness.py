"""What every hidden test shares.

- :func:`student_call` runs one call into student code: under the delegation guard (a
  part that reaches torch, scipy's filters or cvcourse's reference kernels earns nothing),
  with warnings recorded instead of printed (nbgrader scores a cell with anything on
  stderr as zero), and with any exception turned into a :class:`GradingFailure` that names
  the case and the student's line.
- :func:`call_unchanged` (and :func:`assert_unchanged`) fail a call that changed its input
  in place; :func:`forward_for_cache` runs a forward only so that backward finds its cache,
  grading nothing of it.
- :func:`assert_close` compares a student's array with the reference and, on failure,
  names the case, the tensor, the worst element, the errors and, where its ``hint`` can
  tell, the likely mistake. A hint is a string or the recognised mistakes of the case,
  ``{explanation: wrong answer}`` (:func:`recognise`): the first wrong answer the student's
  reproduces is named.
- :func:`finite_difference_note` says whether the student's backward agrees with finite
  differences of the student's own forward: it tells "backward wrong" from "forward and
  backward share the mistake", and claims the latter only after checking every element
  (or, for large inputs, every element that differs from the reference plus random
  directions). :func:`fd_note` makes it ``assert_close``'s ``note``.

Every check is float64 and seeded by :func:`rng`, so a failure reproduces. A float32 result
is compared at float32 precision (:data:`FLOAT32_ATOL`, :data:`FLOAT32_RTOL`); the failure
message says so.
"""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from cvcourse.gradcheck import numerical_gradient
from cvcourse.judge_guard import DelegationGuard, library_dirs, student_line_of

__all__ = [
    "DELEGATION_TARGETS",
    "FLOAT32_ATOL",
    "FLOAT32_RTOL",
    "IN_PLACE_ADVICE",
    "GradingFailure",
    "Symptom",
    "any_of",
    "assert_close",
    "assert_unchanged",
    "call_unchanged",
    "callable_by_students",
    "copy_layout",
    "fd_note",
    "finite_difference_note",
    "forward_for_cache",
    "get_grad",
    "matches",
    "near",
    "non_contiguous",
    "passed",
    "recognise",
    "refreshed",
    "rng",
    "set_params",
    "student_call",
    "student_side_dict",
]


class GradingFailure(AssertionError):
    """One graded part is wrong; the message says which case, which tensor and why."""


# Modules whose code a graded part may not reach. A target is a dotted module prefix
# ("torch" covers torch.nn.functional) or "module:qualname" for a single function.
DELEGATION_TARGETS: tuple[str, ...] = (
    "torch",
    "scipy.signal",
    "scipy.ndimage",
    "cvcourse.kernels",
    "cvcourse.nn",
    "cvcourse.models",
    "grader",
)

_WHY_FORBIDDEN = (
    "graded parts must be computed by your own NumPy code; a part that calls torch, "
    "scipy's filters or cvcourse's reference kernels and layers earns no points"
)


# What the judge sets while it runs a check (per thread): the run's secret seed and where
# passing lines go. Outside the judge (the tests) cases are seeded by the part's name alone.
_JUDGING = threading.local()


@contextlib.contextmanager
def judging(*, seed: int | None, report: list[str]):
    """Run checks with cases drawn from ``seed`` and passing lines appended to ``report``."""
    previous = getattr(_JUDGING, "state", None)
    _JUDGING.state = (seed, report)
    try:
        yield
    finally:
        _JUDGING.state = previous


def rng(part: str, salt: int = 0) -> np.random.Generator:
    """A generator seeded by the part's name (and, in the judge, the run's secret seed).

    Outside the judge the cases are the same on every run and machine; in the judge they
    change with each run's seed, which the kernel never sees.
    """
    state = getattr(_JUDGING, "state", None)
    entropy = [zlib.crc32(part.encode()), salt]
    if state is not None and state[0] is not None:
        entropy.append(int(state[0]))
    return np.random.default_rng(entropy)


def passed(what: str, details: str) -> None:
    """The one line a passing part shows in the student's feedback (printed outside the judge)."""
    line = f"\N{CHECK MARK} {what}: {details}"
    state = getattr(_JUDGING, "state", None)
    if state is not None:
        state[1].append(line)
    else:
        print(line)


# ---------------------------------------------------------------------------------------------
# Calling student code
# ---------------------------------------------------------------------------------------------


# grader/ and cvcourse/ are library code: a frame in neither (nor in installed packages or
# the standard library) is the student's.
_LIBRARY_DIRS = library_dirs([os.path.dirname(os.path.dirname(os.path.abspath(__file__)))])


def student_call(
    what: str,
    case: str,
    func: Callable,
    *args,
    forbid: Iterable[str] = (),
    warnings_out: list[str] | None = None,
    **kwargs,
):
    """Call ``func(*args, **kwargs)``, student code, and return its result.

    ``what`` names the call in messages ("Conv2d.forward"), ``case`` the inputs. The call
    may not reach :data:`DELEGATION_TARGETS` (nor the extra targets in ``forbid``).
    Warnings it raises are recorded (into ``warnings_out`` if given), never printed.
    """
    __tracebackhide__ = True
    if _is_remote(func):
        return _remote_call(what, case, func, args, kwargs, DELEGATION_TARGETS + tuple(forbid))
    guard = DelegationGuard(DELEGATION_TARGETS + tuple(forbid), _LIBRARY_DIRS)
    error: Exception | None = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with guard.watching():
            try:
                result = func(*args, **kwargs)
            except Exception as exc:  # student code: any exception is a finding, not a crash
                error = exc
    tampered = guard.tampered
    if warnings_out is not None:
        warnings_out.extend(f"{w.category.__name__}: {w.message}" for w in caught)
    if guard.found:
        _raise_delegation(what, case, guard)
    if tampered:
        raise GradingFailure(
            f"{what} switched off the grader's call tracing (sys.setprofile): the grader "
            "cannot tell whether the work is your own, so this part earns no points."
        )
    if isinstance(error, NotImplementedError):
        raise GradingFailure(_not_implemented(what, case))
    if error is not None:
        message = f"{what} raised {type(error).__name__}: {error}\n  case: {case}"
        where = student_line_of(error, _LIBRARY_DIRS)
        if where:
            message += f"\n  {where}"
        raise GradingFailure(message) from None
    return result


def _is_remote(func) -> bool:
    from grader.judge.remote import RemoteObject

    return isinstance(func, RemoteObject)


def _remote_call(what: str, case: str, func, args, kwargs, forbid: tuple[str, ...]):
    """A call into the student's kernel through the judge's channel.

    The kernel is sandboxed: torch, scipy's filters and cvcourse's reference kernels are not
    importable there, so delegation shows up as the student's own ImportError.
    """
    __tracebackhide__ = True
    from grader.judge.remote import ChannelError, Delegated, StudentError, ViewOutsideInput

    connection = object.__getattribute__(func, "_connection")
    try:
        return connection.call(object.__getattribute__(func, "_ref"), args, kwargs, forbid)
    except Delegated as found:
        if found.call:
            message = f"{what} called {found.call}: {_WHY_FORBIDDEN}.\n  case: {case}"
            if found.where:
                message += f"\n  {found.where}"
            raise GradingFailure(message) from None
        raise GradingFailure(
            f"{what} switched off the grader's call tracing (sys.setprofile): the grader "
            "cannot tell whether the work is your own, so this part earns no points."
        ) from None
    except StudentError as error:
        kind, where = error.remote_type, error.where
        if kind == "NotImplementedError":
            raise GradingFailure(_not_implemented(what, case)) from None
        message = f"{what} raised {kind}: {error}\n  case: {case}"
        if kind in ("ModuleNotFoundError", "ImportError"):
            message += f"\n  ({_WHY_FORBIDDEN}; they are not available while grading)"
        if where:
            message += f"\n  {where}"
        raise GradingFailure(message) from None
    except ViewOutsideInput as error:
        raise GradingFailure(
            f"{what} returned {error}\n  case: {case}\n  Likely mistake: as_strided does not "
            "check its arguments; every stride must come from x.strides."
        ) from None
    except ChannelError as error:
        raise GradingFailure(
            f"{what}: the grader could not reach your code ({error})\n  case: {case}"
        ) from None


def _not_implemented(what: str, case: str) -> str:
    return (
        f"{what} is not implemented yet (it raises NotImplementedError): replace the "
        "raise NotImplementedError() in its solution cell with your code, run that cell, "
        f"then this one.\n  case: {case}"
    )


def _raise_delegation(what: str, case: str, guard: DelegationGuard):
    __tracebackhide__ = True
    message = f"{what} called {guard.found}: {_WHY_FORBIDDEN}.\n  case: {case}"
    if guard.student_line:
        message += f"\n  {guard.student_line}"
    raise GradingFailure(message)


def callable_by_students(function: Callable) -> Callable:
    """Mark ``function`` (one of the checks') as one student code may call: ``f`` of
    ``numerical_gradient``. In the judge, student code calls it through the channel with
    its arguments by value; nothing unmarked is ever handed to student code."""
    function.__judge_callable__ = True
    return function


def student_side_dict(near, items: dict) -> dict:
    """A dict living where the student's object ``near`` lives, holding copies of ``items``.

    Student code may change its arrays in place (an optimizer's ``p -= lr * g``); in the
    judge the dict is in the kernel, and :func:`refreshed` reads it again.
    """
    if _is_remote(near):
        return object.__getattribute__(near, "_connection").new_dict(items)
    return {name: np.array(value, copy=True) for name, value in items.items()}


def refreshed(d: dict) -> dict:
    """``d`` as it is now: a dict of the kernel's is read again, a local one is itself."""
    from grader.judge.remote import RemoteDict

    return d._connection.fetch(d) if isinstance(d, RemoteDict) else d


# ---------------------------------------------------------------------------------------------
# Parameters and gradients of a student layer
# ---------------------------------------------------------------------------------------------


def set_params(layer, what: str, **arrays: np.ndarray) -> None:
    """Overwrite ``layer.params[name]`` with float64 copies of the given arrays."""
    __tracebackhide__ = True
    params = getattr(layer, "params", None)
    if not isinstance(params, dict):
        raise GradingFailure(
            f"{what} has no `params` dict: keep the attributes the skeleton defines "
            "(params and grads, dicts of arrays with torch's names and shapes)."
        )
    for name, value in arrays.items():
        if name not in params:
            raise GradingFailure(
                f"{what}.params has no entry {name!r} (it has {sorted(params)}): keep torch's "
                "names as the skeleton does."
            )
        old = np.shape(params[name])
        if old != np.shape(value):
            raise GradingFailure(
                f"{what}.params[{name!r}] has shape {old}, torch's layout is {np.shape(value)}."
            )
        params[name] = np.array(value, dtype=np.float64, copy=True)


def get_grad(layer, name: str, what: str):
    """``layer.grads[name]`` after backward, with a clear failure if it is missing."""
    __tracebackhide__ = True
    grads = getattr(layer, "grads", None)
    if not isinstance(grads, dict) or name not in grads or grads[name] is None:
        raise GradingFailure(
            f"{what}.backward did not fill grads[{name!r}]: backward must store the gradient "
            "of every parameter under the parameter's name."
        )
    return grads[name]


def non_contiguous(x: np.ndarray, layout: str = "strided") -> np.ndarray:
    """The same values as ``x`` in memory that is not C-contiguous.

    ``layout="strided"``: every other element of a larger buffer (``buffer[..., ::2]``);
    ``x.reshape(-1)`` of that is still a view, as the gaps are regular. ``"transposed"``:
    the axes stored in reverse order (the transpose of a C-contiguous array, Fortran
    order), whose ``reshape(-1)`` and ``ravel()`` are copies: code that flattens ``x`` and
    writes into the flat array does not change ``x``.
    """
    if layout == "transposed":
        view = np.asfortranarray(x)
        assert x.ndim < 2 or min(x.shape) < 2 or not view.flags.c_contiguous
        return view
    if layout != "strided":
        raise ValueError(f"unknown layout {layout!r}")
    buffer = np.zeros(x.shape[:-1] + (2 * x.shape[-1],), dtype=x.dtype)
    view = buffer[..., ::2]
    view[...] = x
    assert not view.flags.c_contiguous
    return view


def copy_layout(x: np.ndarray) -> np.ndarray:
    """A copy of ``x`` with the same strides (a non-contiguous test input stays one).

    Student code gets such copies where a check runs it only for what it caches: whatever
    it does to its argument then leaves the check's own data alone.
    """
    x = np.asarray(x)
    if x.size == 0 or x.flags.c_contiguous or x.flags.f_contiguous:
        return x.copy(order="K")
    if any(s <= 0 or s % x.itemsize for s in x.strides):
        return x.copy()
    span = sum((n - 1) * s for n, s in zip(x.shape, x.strides, strict=True)) // x.itemsize + 1
    out = np.lib.stride_tricks.as_strided(np.zeros(span, x.dtype), x.shape, x.strides)
    out[...] = x
    return out


#: What a failure for an input changed in place suggests, in every check.
IN_PLACE_ADVICE = (
    "writing into an argument (x[mask] = ..., x -= ..., out=x) changes the caller's array; "
    "compute on a new array or a copy (x.copy()), so that the caller's data stays as it was"
)


def _fingerprint(value) -> tuple:
    """Shape, dtype and bytes of ``value``: equal exactly when nothing about it changed."""
    a = np.asarray(value)
    return a.shape, a.dtype.str, np.ascontiguousarray(a).tobytes()


def assert_unchanged(before, after, what: str, case: str, *, name: str = "x") -> None:
    """Fail unless ``after``, an argument student code was given, equals ``before``, the
    copy taken before the call (shape, dtype and every byte, so NaN and -0.0 count too)."""
    __tracebackhide__ = True
    if _fingerprint(before) != _fingerprint(after):
        raise GradingFailure(
            f"{what} changed its input {name} in place\n  case: {case}\n"
            f"  Likely mistake: {IN_PLACE_ADVICE}"
        )


def call_unchanged(what: str, case: str, func: Callable, *inputs, names=None, **kwargs):
    """:func:`student_call` that also fails if the call changed one of ``inputs`` in place.

    ``names`` name the inputs in that failure (default ``#1``, ``#2``, ... by position).
    """
    __tracebackhide__ = True
    names = names or [f"#{i}" for i in range(1, len(inputs) + 1)]
    before = [np.array(x, copy=True) for x in inputs]
    result = student_call(what, case, func, *inputs, **kwargs)
    for old, x, name in zip(before, inputs, names, strict=True):
        assert_unchanged(old, x, what, case, name=name)
    return result


def forward_for_cache(what: str, case: str, forward: Callable, *inputs) -> str:
    """Run the student's ``forward(*inputs)`` only so that backward finds its cache.

    A backward check grades nothing of the forward (its own cell does): neither its value,
    nor its failure, nor a change it makes to its input. So array inputs are handed over as
    copies with the same layout (:func:`copy_layout`); if forward raises and an input is
    not C-contiguous, it runs again on contiguous copies; if it still raises, backward runs
    on whatever the layer cached before the error. Returns ``""`` or a note saying what
    happened, to add to the case in messages. ``what`` names the layer ("Conv2d").
    """
    __tracebackhide__ = True
    given = tuple(copy_layout(x) if isinstance(x, np.ndarray) else x for x in inputs)
    try:
        student_call(f"{what}.forward", case, forward, *given)
        return ""
    except GradingFailure as failure:
        first = str(failure).splitlines()[0]
    arrays = [x for x in inputs if isinstance(x, np.ndarray)]
    if any(not x.flags.c_contiguous for x in arrays):
        given = tuple(np.ascontiguousarray(x) if isinstance(x, np.ndarray) else x for x in inputs)
        try:
            student_call(f"{what}.forward", case, forward, *given)
        except GradingFailure:
            pass
        else:
            return (
                f" [note: your forward failed on this non-contiguous input ({first}), so "
                "backward ran after a forward on a contiguous copy; the forward's own test "
                "grades it]"
            )
    return (
        f" [note: forward raised here ({first}); this test grades backward only, so backward "
        "ran on what forward had cached before the error]"
    )


# ---------------------------------------------------------------------------------------------
# Comparing arrays
# ---------------------------------------------------------------------------------------------

#: How much a float32 result may differ from the float64 reference beyond ``atol`` and
#: ``rtol``: ``FLOAT32_ATOL + FLOAT32_RTOL * (|reference| + max |reference|)``. float32 keeps
#: about seven significant digits and a sum of many products loses one or two more (a
#: correct float32 Conv2d is off by up to 3e-7 of its largest value); the inputs the checks
#: feed are of order 1, so their float32 rounding alone moves a result by ~1e-7 even where
#: the result is tiny (diag(s) - s s^T near s = 1). Every mistake the checks recognise is
#: off by far more.
FLOAT32_RTOL = 1e-5
FLOAT32_ATOL = 1e-6


def _format(value: float) -> str:
    return f"{value:g}".replace("e-0", "e-").replace("e+0", "e")


def _as_array(value, what: str, case: str) -> np.ndarray:
    __tracebackhide__ = True
    if value is None:
        raise GradingFailure(f"{what} is None (did the function forget to return?)\n  case: {case}")
    try:
        array = np.asarray(value)
    except Exception as exc:  # a list of mixed shapes, an object without __array__
        raise GradingFailure(
            f"{what} is not an array ({type(value).__name__}: {exc})\n  case: {case}"
        ) from None
    if array.dtype == object or not (
        np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_
    ):
        raise GradingFailure(f"{what} has dtype {array.dtype}, expected numbers\n  case: {case}")
    return array


def _hint_text(hint, actual: np.ndarray) -> str | None:
    if hint is None:
        return None
    if isinstance(hint, Mapping):
        return recognise(hint, actual)
    return str(hint)


def _note_text(note: Callable[[], str] | None) -> str:
    if note is None:
        return ""
    try:
        return note() or ""
    except Exception:  # a note must never hide the failure it explains
        return ""


def _is_float32(a: np.ndarray, float32: bool | None) -> bool:
    return bool(a.dtype == np.float32) if float32 is None else bool(float32)


def _errors(af: np.ndarray, e: np.ndarray, atol: float, rtol: float, low: float):
    """Per element: the error (0 where both are the same NaN or inf) and how far it exceeds
    what is allowed: ``atol + rtol |e|``, plus ``FLOAT32_ATOL + low * (|e| + max |e|)`` for
    float32 (``low`` is its float32 rtol, 0 for a float64 result)."""
    with np.errstate(invalid="ignore", over="ignore"):
        error = np.abs(af - e)
        same_special = (np.isnan(af) & np.isnan(e)) | (np.isinf(e) & (af == e))
        error = np.where(same_special, 0.0, error)
        error = np.where(np.isnan(error), np.inf, error)
        size = np.abs(np.nan_to_num(e, nan=0.0, posinf=0.0, neginf=0.0))
        allowed = atol + rtol * size
        if low:
            allowed = allowed + FLOAT32_ATOL + low * (size + (np.max(size) if size.size else 0.0))
        return error, error - allowed


def _precision_note(
    a: np.ndarray,
    af: np.ndarray,
    e: np.ndarray,
    error: np.ndarray,
    *,
    float32: bool,
    float32_rtol: float,
    rtol: float,
    reference: str,
) -> str | None:
    """Why the comparison may be about precision: the student's dtype, or float32-sized errors."""
    rule = f"the checks compare in float64 at rtol {_format(rtol)}"
    if a.dtype == np.float32 or (float32 and a.dtype.kind == "f"):
        what = "your output is float32"
        if a.dtype != np.float32:
            what = "your code computes in float32"
        if not float32_rtol:
            return f"{what}; {rule} here (no allowance for float32 rounding in this test)"
        return (
            f"{what}; {rule}, and accept a float32 result that is within float32 rounding "
            f"of {reference} (an extra {_format(FLOAT32_ATOL)} + {_format(float32_rtol)} * "
            f"(|{reference}| + its largest "
            "|value|)); yours is further off than that, so rounding is not the reason"
        )
    if a.dtype.kind == "f" and a.dtype != np.float64:
        return (
            f"your output is {a.dtype}; {rule}, which {a.dtype} cannot reach (it keeps "
            f"{np.finfo(a.dtype).precision} significant digits): compute in float64"
        )
    if a.dtype.kind in "iub":
        return f"your output has integer dtype {a.dtype}; {rule}: compute in float64"
    size = np.abs(np.nan_to_num(e, nan=0.0, posinf=0.0, neginf=0.0))
    scale = float(np.max(size)) if size.size else 0.0
    if np.all(np.isfinite(af)) and np.all(error <= 1e-4 * (size + scale) + 1e-12):
        return (
            "every difference is as small as float32 rounding: if part of your computation "
            f"runs in float32 (np.float32, astype), {rule}; compute in float64 (a float32 "
            "output array would be compared at float32 precision)"
        )
    return None


def assert_close(
    actual,
    expected,
    *,
    what: str,
    case: str,
    atol: float = 1e-8,
    rtol: float = 1e-6,
    hint: str | Mapping[str, object] | None = None,
    note: Callable[[], str] | None = None,
    reference: str = "torch",
    float32: bool | None = None,
    float32_rtol: float = FLOAT32_RTOL,
) -> np.ndarray:
    """Fail unless ``actual`` has ``expected``'s shape and matches it element-wise.

    ``|actual - expected| <= atol + rtol * |expected|`` everywhere, NaN and inf only where
    the reference has them. A float32 result (``float32=None``: ``actual``'s dtype decides;
    True: the student's code computes in float32 even if this value is float64) may also
    differ by float32 rounding, ``float32_rtol * (|expected| + max |expected|)``.

    On failure the message says when the dtype may be the reason, adds ``hint`` as "Likely
    mistake" (a string, or recognised mistakes ``{explanation: wrong answer}`` for
    :func:`recognise`) and the sentence ``note()`` returns as "Finite differences" (see
    :func:`fd_note`; called only on failure, so it may run student code). Returns the
    student's value as an array.
    """
    __tracebackhide__ = True
    a = _as_array(actual, what, case)
    e = np.asarray(expected, dtype=np.float64)
    if a.shape != e.shape:
        message = f"{what} has shape {a.shape}, {reference} gives {e.shape}\n  case: {case}"
        raise GradingFailure(_explained(message, hint, note, a))
    af = a.astype(np.float64)
    low = float32_rtol if _is_float32(a, float32) else 0.0
    error, excess = _errors(af, e, atol, rtol, low)
    bad = excess > 0
    if not bad.any():
        return a
    worst = np.unravel_index(int(np.argmax(excess)), e.shape) if e.ndim else ()
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        scale = np.maximum(np.abs(af), np.abs(e))
        relative = np.where(error == 0, 0.0, error / np.where(scale > 0, scale, 1.0))
    index = ", ".join(str(int(i)) for i in worst)
    lines = [
        f"{what} does not match {reference}",
        f"  case: {case}",
        f"  worst element [{index}]: yours {af[worst]:.6g}, {reference} {e[worst]:.6g}",
        f"  max abs error {np.max(error):.3g}, max rel error {np.max(relative):.3g}; "
        f"{int(bad.sum())} of {bad.size} elements off (atol {atol:g}, rtol {rtol:g})",
    ]
    if not np.all(np.isfinite(af[np.isfinite(e)])):
        lines.append("  your result has NaN or inf where the reference is finite")
    precision = _precision_note(
        a,
        af,
        e,
        error,
        float32=_is_float32(a, float32),
        float32_rtol=float32_rtol,
        rtol=rtol,
        reference=reference,
    )
    if precision:
        lines.append(f"  Precision: {precision}")
    raise GradingFailure(_explained("\n".join(lines), hint, note, a))


def _explained(message: str, hint, note, actual: np.ndarray) -> str:
    """``message`` with the hint's diagnosis and the note's sentence, where they have one."""
    diagnosis = _hint_text(hint, actual)
    if diagnosis:
        message += f"\n  Likely mistake: {diagnosis}"
    sentence = _note_text(note)
    if sentence:
        message += f"\n  Finite differences: {sentence}."
    return message


def matches(
    actual,
    expected,
    atol: float = 1e-8,
    rtol: float = 1e-6,
    *,
    float32: bool | None = None,
) -> bool:
    """Whether ``actual`` equals ``expected`` within tolerance (for recognising mistakes).

    The rule of :func:`assert_close`: a float32 ``actual`` may also differ by float32
    rounding. A scalar ``expected`` stands for every element.
    """
    a = np.asarray(actual)
    try:
        e = np.asarray(expected, dtype=np.float64)
        af = a.astype(np.float64)
    except (TypeError, ValueError):
        return False
    if e.ndim == 0 and a.ndim > 0:
        e = np.broadcast_to(e, a.shape)
    if a.shape != e.shape:
        return False
    low = FLOAT32_RTOL if _is_float32(a, float32) else 0.0
    return not bool(np.any(_errors(af, e, atol, rtol, low)[1] > 0))


# ---------------------------------------------------------------------------------------------
# Recognised mistakes
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Symptom:
    """A mistake recognised by a property of the student's answer rather than by one value:
    ``test(actual)`` is true where the answer shows it (NaN where exp overflowed, the shape
    of a gradient that was not summed)."""

    test: Callable[[np.ndarray], bool]


def near(wrong, *, atol: float = 1e-8, rtol: float = 1e-6) -> Symptom:
    """The wrong answer ``wrong`` (a value, or a function computing it) at other tolerances."""
    return Symptom(lambda actual: matches(actual, _evaluate(wrong), atol=atol, rtol=rtol))


def any_of(*wrong) -> Symptom:
    """Any one of several wrong answers (values, functions or symptoms) one mistake gives."""
    return Symptom(lambda actual: any(_reproduces(actual, w) for w in wrong))


def recognise(mistakes: Mapping[str, object], actual) -> str | None:
    """The explanation of the first recognised mistake that ``actual`` reproduces.

    ``mistakes`` maps an explanation to the wrong answer that mistake gives: a value
    (compared by :func:`matches`), a function computing it (for answers that are costly,
    or that cannot be computed for every case: one that raises does not apply), a
    :class:`Symptom`, or None (the mistake cannot show in this case). They are tried in
    order. :func:`assert_close` takes such a dict as its ``hint``.
    """
    a = np.asarray(actual)
    for explanation, wrong in mistakes.items():
        if _reproduces(a, wrong):
            return explanation
    return None


def _evaluate(wrong):
    return wrong() if callable(wrong) else wrong


def _reproduces(actual: np.ndarray, wrong) -> bool:
    try:
        if wrong is None:
            return False
        if isinstance(wrong, Symptom):
            return bool(wrong.test(actual))
        return matches(actual, _evaluate(wrong))
    except Exception:  # this wrong answer does not exist for this case
        return False


# ---------------------------------------------------------------------------------------------
# Finite differences of the student's own forward
# ---------------------------------------------------------------------------------------------

#: Up to this many elements, :func:`finite_difference_note` differentiates every one.
FD_ALL_ELEMENTS = 512
#: Beyond it: every element where the gradient differs from the reference (up to this
#: many), 24 others, and directional derivatives along random directions.
FD_MAX_ELEMENTS = 512
FD_DIRECTIONS = 3
_FD_STEP = 1e-6


def _fd_errors(numeric: np.ndarray, analytic: np.ndarray, scale: float) -> np.ndarray:
    # CS231n's |a - n| / max(|a|, |n|), with the denominator floored at a tenth of the
    # gradient's largest value: finite differences of a float64 forward are good to ~1e-8
    # absolute, which is no disagreement at an element that is (nearly) zero.
    floor = max(0.1 * scale, 1e-12) if np.isfinite(scale) else 1e-12
    with np.errstate(invalid="ignore", over="ignore"):
        errors = np.abs(numeric - analytic) / np.maximum(
            np.maximum(np.abs(numeric), np.abs(analytic)), floor
        )
    # NaN or inf on either side: agreement only where both are the same infinity.
    return np.where(np.isfinite(errors), errors, np.where(numeric == analytic, 0.0, np.inf))


def finite_difference_note(
    forward: Callable[[np.ndarray], np.ndarray],
    x: np.ndarray,
    dy: np.ndarray,
    analytic,
    name: str,
    *,
    expected=None,
    all_elements: int = FD_ALL_ELEMENTS,
    seed: int = 0,
) -> str:
    """A sentence on how the student's gradient compares with finite differences.

    ``forward(x)`` is the student's forward as a function of one input (which it must not
    keep), ``analytic`` the student's gradient of ``sum(forward(x) * dy)`` for ``x`` and
    ``expected`` (optional) the reference gradient. Centred differences (h = 1e-6) at every
    element when ``x`` has at most ``all_elements``; otherwise at every element where
    ``analytic`` differs from ``expected``, at 24 others and along random directions (a
    directional derivative sees every element, so a wrong block cannot hide between the
    sampled ones). It says "share the mistake" only when every one of these agrees, and
    says what it checked; it says nothing when the forward fails or is not float64 (finite
    differences of float32 are too coarse to tell).
    """
    try:
        a = np.asarray(analytic, dtype=np.float64)
        x0 = np.array(x, dtype=np.float64, copy=True)
        if a.shape != x0.shape:
            return ""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            y0 = np.asarray(forward(x0.copy()))
            if y0.dtype != np.float64:
                return (
                    f"not used: your forward returns {y0.dtype}, too coarse for finite "
                    "differences to tell a wrong backward from a shared mistake"
                )
            if x0.size <= all_elements:
                picks = np.arange(x0.size)
                covered = f"at all {x0.size} elements"
                directions = 0
            else:
                picks, covered = _fd_picks(a, expected, x0.size, seed)
                directions = FD_DIRECTIONS
            numeric = numerical_gradient(forward, x0.copy(), dy=dy, indices=picks, h=_FD_STEP)
            n, g = np.asarray(numeric, dtype=np.float64).reshape(-1), a.reshape(-1)[picks]
            finite = np.concatenate([g[np.isfinite(g)], n[np.isfinite(n)]])
            scale = float(np.max(np.abs(finite), initial=0.0))
            errors = _fd_errors(n, g, scale)
            worst = int(np.argmax(errors)) if errors.size else 0
            error = float(errors[worst]) if errors.size else 0.0
            where = np.unravel_index(int(picks[worst]), x0.shape) if errors.size else ()
            direction_error = _fd_directions(forward, x0, dy, a, directions, seed)
    except Exception:  # the forward itself fails: the forward's own part reports that
        return ""
    if error >= 1e-5:
        index = ", ".join(str(int(i)) for i in where)
        return (
            f"your {name} also disagrees with finite differences of your own forward "
            f"(rel err {error:.1e} at element [{index}])"
        )
    if direction_error >= 1e-5:
        return (
            f"your {name} also disagrees with finite differences of your own forward along "
            f"a random direction (rel err {direction_error:.1e}), though not at the "
            f"{picks.size} elements sampled"
        )
    if directions:
        covered += f" and along {directions} random directions"
    return (
        f"your {name} agrees with finite differences of your own forward {covered} (rel err "
        f"{max(error, direction_error):.1e}), so forward and backward share the mistake"
    )


def fd_note(
    build: Callable[[], Callable[[np.ndarray], np.ndarray]],
    x: np.ndarray,
    dy,
    analytic,
    name: str,
    *,
    expected=None,
) -> Callable[[], str]:
    """A ``note`` for :func:`assert_close`: :func:`finite_difference_note` of the forward
    that ``build()`` returns (a fresh layer's, so that the graded layer keeps its state).

    Nothing runs unless the comparison fails; a forward that cannot be built says nothing.
    """

    def note() -> str:
        try:
            forward = build()
        except GradingFailure:
            return ""
        return finite_difference_note(forward, x, dy, analytic, name, expected=expected)

    return note


def _fd_picks(a: np.ndarray, expected, size: int, seed: int) -> tuple[np.ndarray, str]:
    gen = np.random.default_rng(seed)
    wrong = np.zeros(0, dtype=np.int64)
    if expected is not None and np.shape(expected) == a.shape:
        off = ~np.isclose(a, np.asarray(expected, dtype=np.float64), rtol=1e-6, atol=1e-8)
        wrong = np.flatnonzero(off)
        if wrong.size > FD_MAX_ELEMENTS:
            wrong = np.sort(gen.choice(wrong, FD_MAX_ELEMENTS, replace=False))
    others = np.setdiff1d(np.arange(size), wrong)
    others = gen.choice(others, min(24, others.size), replace=False)
    picks = np.union1d(wrong, others).astype(np.int64)
    if wrong.size:
        return picks, (
            f"at the {wrong.size} elements checked where it differs from the reference, "
            f"{others.size} others"
        )
    return picks, f"at {picks.size} sampled elements"


def _fd_directions(forward, x0: np.ndarray, dy, a: np.ndarray, count: int, seed: int) -> float:
    """The worst relative error of directional derivatives along ``count`` random unit vectors."""
    if not count:
        return 0.0
    gen = np.random.default_rng([seed, 1])
    weights = np.ones(np.shape(forward(x0.copy()))) if dy is None else np.asarray(dy)
    worst = 0.0
    for _ in range(count):
        v = gen.standard_normal(x0.shape)
        v /= np.linalg.norm(v)
        plus = float(np.sum(np.asarray(forward(x0 + _FD_STEP * v), dtype=np.float64) * weights))
        minus = float(np.sum(np.asarray(forward(x0 - _FD_STEP * v), dtype=np.float64) * weights))
        numeric, analytic = (plus - minus) / (2 * _FD_STEP), float(np.sum(a * v))
        floor = max(0.1 * float(np.linalg.norm(a)) / np.sqrt(x0.size), 1e-12)
        with np.errstate(invalid="ignore", over="ignore"):
            error = abs(numeric - analytic) / max(abs(numeric), abs(analytic), floor)
        worst = max(worst, error if np.isfinite(error) else np.inf)
    return worst
