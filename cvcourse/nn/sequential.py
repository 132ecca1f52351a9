"""``Sequential``: layers applied in order, backpropagated in reverse."""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping

import numpy as np

from cvcourse._checks import as_flag

from .base import Layer

__all__ = ["Sequential"]


def _arrays(layer, attr: str) -> Mapping:
    value = getattr(layer, attr, None)
    return value if isinstance(value, Mapping) else {}


class _Prefixed(MutableMapping):
    """A live view of the children's ``params`` (or ``grads``) under ``"<index>.<name>"``.

    Reading returns the children's own arrays (so in-place updates reach them); assigning
    ``view["0.weight"] = array`` replaces the child's entry. Keys cannot be added or removed
    here: parameters belong to the child layers.
    """

    def __init__(self, owner: Sequential, attr: str):
        self._owner = owner
        self._attr = attr

    def _locate(self, key):
        """The child layer and its parameter name for ``key = "<index>.<name>"``."""
        if isinstance(key, str):
            index, _, name = key.partition(".")
            if index.isdigit() and int(index) < len(self._owner.layers):
                layer = self._owner.layers[int(index)]
                if name in _arrays(layer, "params"):
                    return layer, name
        raise KeyError(key)

    def __getitem__(self, key):
        layer, name = self._locate(key)
        return _arrays(layer, self._attr)[name]

    def __setitem__(self, key, value):
        try:
            layer, name = self._locate(key)
        except KeyError:
            raise KeyError(
                f"{key!r} is not a parameter of this Sequential (it has "
                f"{list(self._owner.params)}); parameters are added by the child layers"
            ) from None
        getattr(layer, self._attr)[name] = value

    def __delitem__(self, key):
        raise TypeError(f"cannot delete {key!r}: parameters belong to the child layers")

    def __iter__(self):
        for i, layer in enumerate(self._owner.layers):
            params = _arrays(layer, "params")
            for name in _arrays(layer, self._attr):
                if name in params:  # grads without a parameter are not part of the model
                    yield f"{i}.{name}"

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __repr__(self) -> str:
        items = ", ".join(f"{k!r}: array{np.shape(v)}" for k, v in self.items())
        return "{" + items + "}"


def _count(layer) -> int:
    return sum(int(np.size(p)) for p in _arrays(layer, "params").values())


class Sequential(Layer):
    """A chain of layers: ``forward`` runs them in order, ``backward`` in reverse.

    ::

        model = Sequential(Conv2d(1, 8, 3, padding=1), ReLU(), MaxPool2d(2),
                           Flatten(), Linear(8 * 14 * 14, 10))
        scores = model.forward(x)              # (N, 10)
        dx = model.backward(dscores)           # fills every child's grads

    ``params`` and ``grads`` are live views of the children's, named like torch's
    ``state_dict``: ``"0.weight"``, ``"0.bias"``, ``"4.weight"``, ... (nested Sequentials give
    ``"1.0.weight"``). They read and write the children's own arrays, so an optimizer can
    update ``model.params`` in place. ``train()``/``eval()`` reach every child.

    Any object with ``forward``/``backward`` (and optionally ``params``/``grads``, ``train``
    or ``training``) can be a child, in particular a student's own layers.
    """

    def __init__(self, *layers):
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        for i, layer in enumerate(layers):
            self._check_child(layer, i)
        self.layers = list(layers)
        self.training = True
        self._cache = None

    @staticmethod
    def _check_child(layer, index) -> None:
        for method in ("forward", "backward"):
            if not callable(getattr(layer, method, None)):
                raise TypeError(
                    f"Sequential: layer {index} ({type(layer).__name__}) has no {method}() "
                    "method; every layer needs forward(x) and backward(dy)"
                )

    # --- params and grads: live views ------------------------------------------------------

    # Layer's params and grads are plain dicts; a Sequential's are read-only attributes whose
    # values are live views of its children's dicts, hence the two overrides.
    @property
    def params(self) -> MutableMapping:  # type: ignore[override]
        return _Prefixed(self, "params")

    @property
    def grads(self) -> MutableMapping:  # type: ignore[override]
        return _Prefixed(self, "grads")

    # --- container protocol ------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)

    def __getitem__(self, index):
        """``model[i]`` is the i-th layer; ``model[a:b]`` a Sequential sharing those layers."""
        if isinstance(index, slice):
            return Sequential(*self.layers[index])
        return self.layers[index]

    def append(self, layer) -> Sequential:
        """Add ``layer`` at the end; returns ``self``."""
        self._check_child(layer, len(self.layers))
        self.layers.append(layer)
        return self

    # --- modes -------------------------------------------------------------------------------

    def train(self, mode: bool = True) -> Sequential:
        """Training (``mode=True``) or evaluation mode, for this and every child."""
        mode = as_flag(mode, "mode", "Sequential.train")
        self.training = mode
        for layer in self.layers:
            if callable(getattr(layer, "train", None)):
                layer.train(mode)
            elif hasattr(layer, "training"):
                layer.training = mode
        return self

    def zero_grad(self) -> None:
        for layer in self.layers:
            if callable(getattr(layer, "zero_grad", None)):
                layer.zero_grad()

    def num_parameters(self) -> int:
        return sum(_count(layer) for layer in self.layers)

    # --- forward / backward ------------------------------------------------------------------

    def _rethrow(self, exc, index, layer, what, shape):
        if type(exc) not in (ValueError, TypeError):
            raise exc
        raise type(exc)(
            f"in Sequential layer ({index}) {type(layer).__name__}.{what}(input of shape "
            f"{shape}): {exc}"
        ) from exc

    def forward(self, x):
        """``y = layers[-1](... layers[1](layers[0](x)))``; each layer caches its input."""
        self._cache = None
        for i, layer in enumerate(self.layers):
            try:
                out = layer.forward(x)
            except (ValueError, TypeError) as exc:
                self._rethrow(exc, i, layer, "forward", np.shape(x))
            x = out
        self._cache = True
        return x

    def backward(self, dy):
        """``dx``: ``dy`` passed back through the layers in reverse order.

        Each child's ``backward`` fills (overwrites) its ``grads``.
        """
        if self._cache is None:
            raise RuntimeError(
                f"Sequential ({len(self)} layers): backward() was called before forward(); "
                "run forward(x) first"
            )
        for i in reversed(range(len(self.layers))):
            layer = self.layers[i]
            try:
                out = layer.backward(dy)
            except (ValueError, TypeError) as exc:
                self._rethrow(exc, i, layer, "backward", np.shape(dy))
            dy = out
        return dy

    # --- repr --------------------------------------------------------------------------------

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}("]
        for i, layer in enumerate(self.layers):
            text = repr(layer).replace("\n", "\n  ")
            count = _count(layer)
            nested = isinstance(layer, Sequential)
            suffix = f"  # {count:,} parameters" if count and not nested else ""
            lines.append(f"  ({i}): {text}{suffix}")
        lines.append(f")  # {self.num_parameters():,} parameters in total")
        return "\n".join(lines) if self.layers else "Sequential()  # 0 parameters"
