"""Who called what: the delegation guard, and the student's line in a traceback.

A graded part must be the student's own NumPy code. :class:`DelegationGuard` is a profile
hook that records the first call into a forbidden module (torch, scipy's filters,
cvcourse's reference kernels): ``sys.setprofile`` sees every Python call, named by the
callee's module, and every call of a C function, so an alias (``from torch import conv2d
as c``) or an import inside the function is caught as surely as a direct call.

In the grading sandbox those modules cannot even be imported; the guard is the second line,
the one that can say what was tried (and the only one when a TA grades without a sandbox).
It runs in the student's process, so it explains, and never decides alone.
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
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["DelegationGuard", "library_dirs", "student_line_of"]


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
    """A target is a dotted module prefix ("torch") or "module:qualname" for one function."""
    for target in targets:
        if ":" in target:
            target_module, target_name = target.split(":", 1)
            if module == target_module and qualname == target_name:
                return f"{module}.{qualname}"
        elif module == target or module.startswith(target + "."):
            return f"{module}.{qualname}" if qualname else module
    return None


def library_dirs(extra: Iterable[str] = ()) -> tuple[str, ...]:
    """Installed packages, the standard library, cvcourse/ and ``extra``.

    A frame in none of these is the student's (an editable install lives outside
    site-packages).
    """
    paths = sysconfig.get_paths()
    dirs = {paths["purelib"], paths["platlib"], paths["stdlib"], *extra}
    spec = importlib.util.find_spec("cvcourse")
    if spec is not None and spec.origin:
        dirs.add(os.path.dirname(spec.origin))
    return tuple(os.path.realpath(d) for d in dirs)


_LIBRARY_DIRS = library_dirs()


def _is_student_file(filename: str, dirs: Sequence[str]) -> bool:
    if filename.startswith("<") and not filename.startswith("<ipython-input"):
        return False
    real = os.path.realpath(filename)
    return not any(real.startswith(d + os.sep) for d in dirs)


def describe_frame(frame, dirs: Sequence[str] = _LIBRARY_DIRS) -> str:
    """``in f(), line n: <source>`` for the innermost frame of the student's own code."""
    while frame is not None and not _is_student_file(frame.f_code.co_filename, dirs):
        frame = frame.f_back
    if frame is None:
        return ""
    line = linecache.getline(frame.f_code.co_filename, frame.f_lineno).strip()
    return f"in {frame.f_code.co_name}(), line {frame.f_lineno}: {line}"


def student_line_of(exc: BaseException, dirs: Sequence[str] = _LIBRARY_DIRS) -> str:
    """The student's line where ``exc`` was raised, as :func:`describe_frame` gives it."""
    for summary in reversed(traceback.extract_tb(exc.__traceback__)):
        if _is_student_file(summary.filename, dirs):
            return f"in {summary.name}(), line {summary.lineno}: {(summary.line or '').strip()}"
    return ""


class DelegationGuard:
    """Records the first call into ``targets`` made while :meth:`watching` is active."""

    def __init__(self, targets: Sequence[str], dirs: Sequence[str] = _LIBRARY_DIRS):
        self.targets = tuple(targets)
        self.dirs = tuple(dirs)
        self.found: str | None = None
        self.student_line: str | None = None
        self.tampered = False

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
            self.student_line = describe_frame(caller, self.dirs) if caller is not None else None

    @contextlib.contextmanager
    def watching(self):
        """Trace calls (this thread and threads started meanwhile); note if code unhooks us."""
        previous = sys.getprofile()
        sys.setprofile(self)
        threading.setprofile(self)
        try:
            yield self
        finally:
            self.tampered = self.tampered or sys.getprofile() is not self
            sys.setprofile(previous)
            threading.setprofile(None)
