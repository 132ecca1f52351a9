"""Saving and loading parameters: ``state_dict``, ``load_state_dict``, ``save``, ``load``.

These work on any object with a ``params`` mapping (a reference layer, a ``Sequential``,
or a student's own layer), with torch's names: ``"weight"``, ``"bias"``, and
``"0.weight"``, ``"3.bias"``, ... for the children of a ``Sequential``.

Files are plain ``np.savez`` archives (one array per parameter name, no pickled objects),
written atomically (:func:`cvcourse.fileio.atomic_path`): an interrupted save leaves the
previous file intact. ``np.load(path)`` reads them without cvcourse.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping

import numpy as np

from cvcourse.fileio import atomic_path

__all__ = ["load", "load_state_dict", "save", "state_dict"]

# Names np.savez takes as its own arguments, so they cannot be array names.
_RESERVED = ("file", "allow_pickle")


def _params_of(layer) -> Mapping:
    params = getattr(layer, "params", None)
    if not isinstance(params, Mapping):
        raise TypeError(
            f"expected a layer with a params dict (name -> array), got {type(layer).__name__}"
        )
    return params


def state_dict(layer) -> dict[str, np.ndarray]:
    """Copies of ``layer.params``: ``{name: array}`` (later training does not change them)."""
    return {str(name): np.array(p, copy=True) for name, p in _params_of(layer).items()}


def load_state_dict(layer, state, *, strict: bool = True) -> None:
    """Copy the arrays of ``state`` into ``layer``'s parameters, in place.

    Every name must match (``strict=True``; with ``strict=False`` missing and unexpected names
    are skipped) and every array must have its parameter's shape and be finite; values are
    cast to the parameter's dtype. Everything is checked before anything is copied, so on
    an error the layer is unchanged. Arrays are copied into the existing parameter arrays,
    so references to them (an optimizer's) stay valid.

    Raises ``ValueError`` listing every missing, unexpected or mis-shaped entry.
    """
    params = _params_of(layer)
    if not isinstance(state, Mapping):
        raise TypeError(f"state must be a dict of name -> array, got {type(state).__name__}")
    problems = []
    missing = [k for k in params if k not in state]
    unexpected = [k for k in state if k not in params]
    if strict and missing:
        problems.append(f"missing parameters: {missing}")
    if strict and unexpected:
        problems.append(f"unexpected names (no such parameter): {unexpected}")
    values = {}
    for name, p in params.items():
        if name not in state:
            continue
        value = state[name]
        if not isinstance(value, np.ndarray) or value.dtype.kind not in "fiu":
            kind = getattr(value, "dtype", type(value).__name__)
            problems.append(f"{name!r} must be an array of real numbers, got {kind}")
            continue
        if value.shape != p.shape:
            problems.append(f"{name!r} has shape {value.shape} but the parameter is {p.shape}")
            continue
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            problems.append(f"{name!r} contains NaN or inf")
            continue
        values[name] = value
    if problems:
        raise ValueError(
            f"cannot load this state into {_describe(layer)}:\n  - " + "\n  - ".join(problems)
        )
    for name, value in values.items():
        np.copyto(params[name], value, casting="unsafe")


def _describe(layer) -> str:
    text = repr(layer)
    if "\n" not in text and len(text) < 200:
        return text
    names = list(_params_of(layer))
    shown = names if len(names) <= 8 else [*names[:8], "..."]
    return f"{type(layer).__name__} (parameters {shown})"


def save(layer, path) -> None:
    """Write ``state_dict(layer)`` to ``path`` with ``np.savez``, atomically.

    The file is written exactly at ``path`` (no ``.npz`` is appended); the directory is
    created if needed. Read it back with :func:`load` (or ``np.load``).
    """
    state = state_dict(layer)
    clash = [k for k in state if k in _RESERVED]
    if clash:
        raise ValueError(f"parameter names {clash} cannot be stored by np.savez; rename them")
    path = os.fspath(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        # A file object, so that np.savez does not append ".npz" to the temporary name.
        # numpy's stubs type **kwds as possibly holding savez's own allow_pickle; the clash
        # check above rules that out
        np.savez(f, **state)  # type: ignore[arg-type]


def read_state(path) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` file written by :func:`save`, as a dict.

    Raises ``FileNotFoundError`` if there is no file, ``ValueError`` if it is not a complete
    ``.npz`` archive (truncated, corrupt, a ``.npy``, or needing pickle).
    """
    path = os.fspath(path)
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise ValueError(f"it holds a single array of shape {np.shape(data)}, not a .npz")
        with data:
            return {name: data[name] for name in data.files}
    except FileNotFoundError:
        raise
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        raise ValueError(
            f"{path} is not a readable state file written by save() (an .npz archive): "
            f"{type(exc).__name__}: {exc}. Was it copied completely?"
        ) from exc


def load(layer, path, *, strict: bool = True) -> None:
    """Load parameters saved by :func:`save` into ``layer`` (see :func:`load_state_dict`)."""
    state = read_state(path)
    try:
        load_state_dict(layer, state, strict=strict)
    except ValueError as exc:
        raise ValueError(f"{os.fspath(path)}: {exc}") from exc
