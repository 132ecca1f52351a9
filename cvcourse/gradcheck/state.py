"""Leave a layer as the check found it: snapshot and restore of nested layers' state.

The check perturbs parameters in place, swaps float32 parameters for float64 copies, and
runs ``forward``/``backward``, which rebind caches and gradients and may update buffers in
place (running statistics). :func:`snapshot` records, for the layer and every layer nested
in it (a ``Sequential``'s children): its attribute dict, every dict and list it holds
(shallow copies) and every array (a copy of the data). :func:`restore` puts each back *in
the same objects*: ``layer.params["weight"]`` is the same array as before, with the same
bits.

Why not ``copy.deepcopy(layer)``: restoring from a deep copy rebinds every attribute to a
new object, so a parameter array that an optimizer (or the student) holds would no longer be
the layer's, and a layer holding something deepcopy cannot copy (a module, a lock) could
not be checked at all. Only the structures a layer is made of (attributes, dicts, lists,
tuples, arrays) are walked; anything else is kept by reference, as it was.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Snapshot:
    """``(object, saved copy)`` pairs: attribute dicts of layers, dicts, lists, and arrays."""

    containers: list[tuple[dict | list, dict | list]] = field(default_factory=list)
    arrays: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)


def _is_layer(value) -> bool:
    return hasattr(value, "__dict__") and callable(getattr(value, "forward", None))


def snapshot(layer) -> Snapshot:
    """Record everything a check could change on ``layer`` and the layers nested in it."""
    snap = Snapshot()
    seen: set[int] = set()

    def visit(value) -> None:
        if id(value) in seen:
            return
        seen.add(id(value))
        if isinstance(value, np.ndarray):
            snap.arrays.append((value, value.copy()))
            return
        if isinstance(value, dict):
            snap.containers.append((value, dict(value)))
            children = list(value.values())
        elif isinstance(value, list):
            snap.containers.append((value, list(value)))
            children = list(value)
        elif isinstance(value, tuple):
            children = list(value)
        elif _is_layer(value) or value is layer:
            attrs = vars(value) if hasattr(value, "__dict__") else {}
            if hasattr(value, "__dict__"):
                snap.containers.append((attrs, dict(attrs)))
            # params/grads may be properties (views over children) rather than attributes.
            children = [*attrs.values(), getattr(value, "params", None)]
            children.append(getattr(value, "grads", None))
        else:
            return
        for child in children:
            visit(child)

    visit(layer)
    return snap


def restore(snap: Snapshot) -> None:
    """Put back what :func:`snapshot` recorded, in the same objects."""
    for container, saved in snap.containers:
        if isinstance(container, dict) and isinstance(saved, dict):
            container.clear()
            container.update(saved)
        elif isinstance(container, list):
            container[:] = saved
    for arr, array_saved in snap.arrays:
        # Written back unconditionally: forward may have updated e.g. running statistics
        # in place, and the perturbed float64 parameters are restored bitwise this way.
        if arr.flags.writeable and arr.shape == array_saved.shape:
            np.copyto(arr, array_saved)
