"""What every hidden test shares.

- :func:`student_call` runs one call into student code: under the delegation guard (a
  part that reaches torch, scipy's filters or cvcourse's reference kernels earns nothing),
  with warnings recorded instead of printed (nbgrader scores a cell with anything on
  stderr as zero), and with any exception turned into a :class:`GradingFailure` that names
  the case and the student's line.
- :func:`assert_close` compares a student's array with the reference and, on failure,
  names the case, the tensor, the worst element, the errors and, where a ``hint`` can tell,
  the likely mistake.
- :func:`finite_difference_note` says whether the student's backward agrees with finite
  differences of the student's own forward: it tells "backward wrong" from "forward and
  backward share the mistake".

Every check is float64 and seeded by :func:`rng`, so a failure reproduces.
"""

from __future__ import annotations

import contextlib
import importlib.util
import linecache
import os
import sys
import sysconfig
import threading
import traceback
import types
import warnings
import zlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from cvcourse.gradcheck import numerical_gradient

__all__ = [
    "DELEGATION_TARGETS",
    "GradingFailure",
    "callable_by_students",
    "assert_close",
    "finite_difference_note",
    "get_grad",
    "non_contiguous",
    "passed",
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


def _module_of_c_function(func: Any) -> str:
    module = getattr(func, "__module__", None)
    if module:
        return module
    owner = getattr(func, "__self__", None)
    if isinstance(owner, types.ModuleType):
        return owner.__name__
    if owner is not None:
        return type(owner).__module__ or ""
    return ""


def _matches(module: str, qualname: str, targets: Sequence[str]) -> str | None:
    for target in targets:
        if ":" in target:
            target_module, target_name = target.split(":", 1)
            if module == target_module and qualname == target_name:
                return f"{module}.{qualname}"
        elif module == target or module.startswith(target + "."):
            return f"{module}.{qualname}" if qualname else module
    return None


class _DelegationGuard:
    """A profile hook that records the first call into a forbidden module.

    ``sys.setprofile`` sees every Python call ("call", named by the callee frame's module)
    and every call of a C function ("c_call"), so an alias (``from torch import conv2d as
    c``) or an import inside the function is caught as surely as a direct call.
    """

    def __init__(self, targets: Sequence[str]):
        self.targets = tuple(targets)
        self.found: str | None = None
        self.student_line: str | None = None

    def __call__(self, frame, event, arg):
        if self.found is not None:
            return
        if event == "call":
            module = frame.f_globals.get("__name__", "") or ""
            hit = _matches(module, frame.f_code.co_qualname, self.targets)
            caller = frame.f_back
        elif event == "c_call":
            hit = _matches(_module_of_c_function(arg), getattr(arg, "__name__", ""), self.targets)
            caller = frame
        else:
            return
        if hit is not None:
            self.found = hit
            self.student_line = _describe_frame(caller) if caller is not None else None


def _library_dirs() -> tuple[str, ...]:
    # Installed packages, the standard library, grader/ and cvcourse/ (an editable install
    # lives outside site-packages): a frame in none of these is the student's.
    paths = sysconfig.get_paths()
    dirs = {paths["purelib"], paths["platlib"], paths["stdlib"]}
    dirs.add(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    spec = importlib.util.find_spec("cvcourse")
    if spec is not None and spec.origin:
        dirs.add(os.path.dirname(spec.origin))
    return tuple(os.path.realpath(d) for d in dirs)


_LIBRARY_DIRS = _library_dirs()


def _is_student_file(filename: str) -> bool:
    if filename.startswith("<") and not filename.startswith("<ipython-input"):
        return False
    real = os.path.realpath(filename)
    return not any(real.startswith(d + os.sep) for d in _LIBRARY_DIRS)


def _describe_frame(frame) -> str:
    # Walk out to the innermost frame in the student's own code (a notebook cell).
    while frame is not None and not _is_student_file(frame.f_code.co_filename):
        frame = frame.f_back
    if frame is None:
        return ""
    line = linecache.getline(frame.f_code.co_filename, frame.f_lineno).strip()
    return f"in {frame.f_code.co_name}(), line {frame.f_lineno}: {line}"


def _student_line_of(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    for summary in reversed(frames):
        if _is_student_file(summary.filename):
            return f"in {summary.name}(), line {summary.lineno}: {(summary.line or '').strip()}"
    return ""


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
        return _remote_call(what, case, func, args, kwargs)
    guard = _DelegationGuard(DELEGATION_TARGETS + tuple(forbid))
    previous = sys.getprofile()
    error: Exception | None = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sys.setprofile(guard)
        threading.setprofile(guard)
        try:
            result = func(*args, **kwargs)
        except Exception as exc:  # student code: any exception is a finding, not a crash
            error = exc
        finally:
            tampered = sys.getprofile() is not guard
            sys.setprofile(previous)
            threading.setprofile(None)
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
        where = _student_line_of(error)
        if where:
            message += f"\n  {where}"
        raise GradingFailure(message) from None
    return result


def _is_remote(func) -> bool:
    from grader.judge.remote import RemoteObject

    return isinstance(func, RemoteObject)


def _remote_call(what: str, case: str, func, args, kwargs):
    """A call into the student's kernel through the judge's channel.

    The kernel is sandboxed: torch, scipy's filters and cvcourse's reference kernels are not
    importable there, so delegation shows up as the student's own ImportError.
    """
    __tracebackhide__ = True
    from grader.judge.remote import ChannelError, StudentError, ViewOutsideInput

    try:
        return func(*args, **kwargs)
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
        raise GradingFailure(f"{what} returned {error}\n  case: {case}") from None
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


def _raise_delegation(what: str, case: str, guard: _DelegationGuard):
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


def non_contiguous(x: np.ndarray) -> np.ndarray:
    """The same values as ``x`` in a non-contiguous view (every other element of a buffer)."""
    buffer = np.zeros(x.shape[:-1] + (2 * x.shape[-1],), dtype=x.dtype)
    view = buffer[..., ::2]
    view[...] = x
    assert not view.flags.c_contiguous
    return view


# ---------------------------------------------------------------------------------------------
# Comparing arrays
# ---------------------------------------------------------------------------------------------


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
    if callable(hint):
        try:
            return hint(actual)
        except Exception:  # a diagnosis must never hide the failure it explains
            return None
    return str(hint)


def assert_close(
    actual,
    expected,
    *,
    what: str,
    case: str,
    atol: float = 1e-8,
    rtol: float = 1e-6,
    hint: str | Callable[[np.ndarray], str | None] | None = None,
    reference: str = "torch",
) -> np.ndarray:
    """Fail unless ``actual`` has ``expected``'s shape and matches it element-wise.

    ``|actual - expected| <= atol + rtol * |expected|`` everywhere, NaN and inf only where
    the reference has them. ``hint`` (a string, or a function of the student's array
    returning a diagnosis or None) is added as "Likely mistake" on failure. Returns the
    student's value as an array.
    """
    __tracebackhide__ = True
    a = _as_array(actual, what, case)
    e = np.asarray(expected, dtype=np.float64)
    if a.shape != e.shape:
        message = f"{what} has shape {a.shape}, {reference} gives {e.shape}\n  case: {case}"
        diagnosis = _hint_text(hint, a)
        if diagnosis:
            message += f"\n  Likely mistake: {diagnosis}"
        raise GradingFailure(message)
    af = a.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        error = np.abs(af - e)
        same_special = (np.isnan(af) & np.isnan(e)) | (np.isinf(e) & (af == e))
        error = np.where(same_special, 0.0, error)
        error = np.where(np.isnan(error), np.inf, error)
        excess = error - (atol + rtol * np.abs(np.nan_to_num(e, nan=0.0, posinf=0.0, neginf=0.0)))
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
    diagnosis = _hint_text(hint, a)
    if diagnosis:
        lines.append(f"  Likely mistake: {diagnosis}")
    raise GradingFailure("\n".join(lines))


def matches(actual: np.ndarray, expected, atol: float = 1e-8, rtol: float = 1e-6) -> bool:
    """Whether ``actual`` equals ``expected`` within tolerance (for recognising mistakes)."""
    a = np.asarray(actual)
    e = np.asarray(expected)
    return a.shape == e.shape and bool(np.allclose(a, e, atol=atol, rtol=rtol, equal_nan=True))


# ---------------------------------------------------------------------------------------------
# Finite differences of the student's own forward
# ---------------------------------------------------------------------------------------------


def finite_difference_note(
    forward: Callable[[np.ndarray], np.ndarray],
    x: np.ndarray,
    dy: np.ndarray,
    analytic,
    name: str,
    *,
    samples: int = 24,
    seed: int = 0,
) -> str:
    """A sentence on how the student's gradient compares with finite differences.

    ``forward(x)`` is the student's forward as a function of one input (which it must not
    keep), ``analytic`` the student's gradient of ``sum(forward(x) * dy)`` for ``x``.
    Centred differences (h = 1e-6) at up to ``samples`` elements; the relative error is
    CS231n's ``|a - n| / max(|a|, |n|)``.
    """
    try:
        a = np.asarray(analytic, dtype=np.float64)
        if a.shape != x.shape:
            return ""
        picks = np.random.default_rng(seed).choice(x.size, min(samples, x.size), replace=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            numeric = numerical_gradient(forward, x.copy(), dy=dy, indices=picks)
        n, g = np.asarray(numeric).reshape(-1), a.reshape(-1)[picks]
        error = float(np.max(np.abs(n - g) / np.maximum(np.maximum(np.abs(n), np.abs(g)), 1e-12)))
    except Exception:  # the forward itself fails: the forward's own part reports that
        return ""
    if error < 1e-5:
        return (
            f"your {name} agrees with finite differences of your own forward (rel err "
            f"{error:.1e}), so forward and backward share the mistake"
        )
    return (
        f"your {name} also disagrees with finite differences of your own forward "
        f"(rel err {error:.1e})"
    )
