"""Optimizers: ``SGD`` (with momentum, Nesterov, weight decay) and ``Adam``, torch's formulas.

An optimizer updates a model's parameters **in place** from its gradients (the course's
layer API: ``model.params`` and ``model.grads``, two dicts with the same keys)::

    opt = SGD(model, lr=0.1, momentum=0.9)
    for x, y in loader:
        scores = model.forward(x)
        value = loss.forward(scores, y)
        model.backward(loss.backward())      # fills model.grads
        opt.step()                           # params -= lr * (update), in place

The arrays in ``model.params`` stay the same objects (``p -= ...``), so every layer keeps
referencing its own, updated, parameters. The update of each parameter follows
``torch.optim.SGD`` / ``torch.optim.Adam`` (defaults: no ``maximize``, no AMSGrad) exactly,
operation for operation; the tests compare both step by step in float64.

Optimizer state (momentum buffers, Adam's moments) lives in ``opt.state[key]``, per
parameter key (``"0.weight"`` for a ``Sequential``), created at the first ``step``.

Transfer learning (lecture 7) needs two more things, both named by parameter keys or by
layer prefixes (``"0"`` names ``"0.weight"`` and ``"0.bias"``; ``"1.0"`` a nested layer)::

    opt = Adam(model, lr=3e-3, frozen=["0", "3"])          # train only the other layers
    opt = Adam(model, lr=3e-3, lr_scale={"0": 0.1, "3": 0.1})  # layers 0, 3 at lr * 0.1
    opt.unfreeze("3")                                      # gradual unfreezing, later

A frozen parameter is skipped by ``step`` (it needs no gradient and gets no state), as a
torch parameter outside the optimizer. A scaled one is updated with ``lr * scale``, as a
torch parameter group with that learning rate; changing ``opt.lr`` (a schedule) scales
every group alike.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator, Mapping

import numpy as np

__all__ = ["SGD", "Adam", "Optimizer"]

_FLOAT_KINDS = "f"


def _real(value, name: str, who: str) -> float:
    """``value`` as a finite float (bools and non-numbers rejected)."""
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{who}: {name} must be a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{who}: {name} must be finite, got {value!r}")
    return value


def _matches(key: str, name: str) -> bool:
    """``name`` is the parameter key itself or a layer prefix of it (``"0"`` of ``"0.bias"``)."""
    return key == name or key.startswith(name + ".")


def _params_and_grads(owner, who: str, where: str):
    params = getattr(owner, "params", None)
    grads = getattr(owner, "grads", None)
    if not isinstance(params, Mapping) or not isinstance(grads, Mapping):
        raise TypeError(
            f"{who}: {where} must have `params` and `grads` dicts (the course's layer API: "
            f"model.params / model.grads), got {type(owner).__name__} "
            f"with params={type(params).__name__}, grads={type(grads).__name__}"
        )
    return params, grads


class Optimizer:
    """Base class: finds the parameters, checks them against the gradients, keeps state.

    Parameters
    ----------
    model : object with ``params``/``grads`` dicts, or a list/tuple of them
        What to optimise. Either one object with ``params`` and ``grads`` dicts (a layer, a
        ``Sequential``, a student's model), whose keys are used as they are; or a list/tuple
        of such objects (separate layers), whose keys become ``"<index>.<name>"`` as in a
        ``Sequential``.
    frozen : str or sequence of str, optional
        Parameters ``step`` leaves unchanged: keys or layer prefixes (``"0"`` freezes
        ``"0.weight"`` and ``"0.bias"``). Each name must match a parameter, and at least one
        parameter must stay trainable.
    lr_scale : dict of str to float, optional
        ``{key or layer prefix: factor}``; those parameters are updated with
        ``lr * factor`` (factor > 0; to keep a parameter fixed, freeze it). Where several
        names match a key, the longest (most specific) one wins.

    Frozen keys and scales are resolved against the model's keys when the optimizer is
    created (and by :meth:`freeze` / :meth:`unfreeze`).

    Subclasses implement ``_update(key, param, grad, state, lr)``, which must modify
    ``param`` in place using the learning rate ``lr`` of that parameter.
    """

    def __init__(self, model, *, frozen=(), lr_scale=None) -> None:
        who = type(self).__name__
        if isinstance(model, (list, tuple)):
            if not model:
                raise ValueError(f"{who}: got an empty list of layers; nothing to optimise")
            owners = []
            for i, layer in enumerate(model):
                _params_and_grads(layer, who, f"layer {i} of the list")
                owners.append((f"{i}.", layer))
        else:
            _params_and_grads(model, who, "model")
            owners = [("", model)]
        self._owners = owners
        self.state: dict[str, dict] = {}
        entries = list(self._entries())
        if not entries:
            raise ValueError(
                f"{who}: the model has no parameters (its params dict is empty); "
                "nothing to optimise"
            )
        for key, p in entries:
            self._check_param(key, p)
        self._frozen: set[str] = set()
        self._scales: dict[str, float] = {}
        self._resolve_scales(lr_scale)
        if isinstance(frozen, str):
            frozen = [frozen]
        if not isinstance(frozen, (list, tuple, set, frozenset)):
            raise TypeError(
                f"{who}: frozen must be a list of parameter keys or layer prefixes, got "
                f"{type(frozen).__name__}"
            )
        if frozen:
            self.freeze(*frozen)

    # --- what subclasses provide ---------------------------------------------------------

    def _update(
        self, key: str, param: np.ndarray, grad: np.ndarray, state: dict, lr: float
    ) -> None:
        raise NotImplementedError  # pragma: no cover - abstract

    def _hyperparameters(self) -> str:
        return ""  # pragma: no cover - overridden

    # --- the API ---------------------------------------------------------------------------

    @property
    def lr(self) -> float:
        """The learning rate (may be changed between steps, e.g. by a schedule; > 0)."""
        return self._lr

    @lr.setter
    def lr(self, value) -> None:
        value = _real(value, "lr", type(self).__name__)
        if value <= 0:
            raise ValueError(f"{type(self).__name__}: lr must be > 0, got {value!r}")
        self._lr = value

    def parameters(self) -> dict[str, np.ndarray]:
        """``key -> parameter array`` (the model's own arrays, not copies)."""
        return dict(self._entries())

    @property
    def frozen(self) -> tuple[str, ...]:
        """The keys of the frozen parameters, sorted."""
        return tuple(sorted(self._frozen))

    @property
    def lr_scale(self) -> dict[str, float]:
        """``key -> factor`` for the parameters whose learning rate is ``lr * factor``."""
        return dict(self._scales)

    def lr_of(self, key: str) -> float:
        """The learning rate the next ``step`` uses for parameter ``key`` (``lr * scale``)."""
        if key not in self.parameters():
            raise KeyError(f"{key!r} is not a parameter key; the keys are {list(self._keys())}")
        return self.lr * self._scales.get(key, 1.0)

    def freeze(self, *names: str) -> None:
        """Stop updating the parameters named by ``names`` (keys or layer prefixes)."""
        keys = self._select(names, "freeze")
        if not set(self._keys()) - (self._frozen | keys):
            raise ValueError(
                f"{type(self).__name__}: freezing {list(names)} would freeze every parameter; "
                "nothing would be trained"
            )
        self._frozen |= keys

    def unfreeze(self, *names: str) -> None:
        """Update the parameters named by ``names`` again (their state is kept)."""
        self._frozen -= self._select(names, "unfreeze")

    def step(self) -> None:
        """Update every parameter in place from its gradient.

        Everything is checked first (every parameter has a gradient of its shape, finite;
        parameters are writable float arrays), so on an error no parameter has changed.
        A gradient is used in its parameter's dtype (a float64 gradient of a float32
        parameter is cast; the state is kept in the parameter's dtype).

        Raises
        ------
        ValueError
            A gradient is missing, has the wrong shape or holds NaN/inf, or a parameter
            changed shape since the optimizer's state was created.
        TypeError
            A parameter or gradient is not a float array.
        """
        checked = [(key, p, self._check_grad(key, p, g)) for key, p, g in self._pairs()]
        for key, p, g in checked:
            lr = self.lr * self._scales.get(key, 1.0)
            self._update(key, p, g, self.state.setdefault(key, {}), lr)

    def zero_grad(self) -> None:
        """Set every gradient to zero (in place where the gradient array exists).

        The course's layers *overwrite* their gradients in ``backward``, so this is only
        needed for layers that accumulate them (``grads[k] += ...``), as torch does.
        """
        for _, owner in self._owners:
            params, grads = _params_and_grads(owner, type(self).__name__, "model")
            for name, p in params.items():
                g = grads.get(name)
                if (
                    isinstance(g, np.ndarray)
                    and g.shape == np.shape(p)
                    and g.flags.writeable
                    and g.dtype.kind == "f"
                ):
                    g.fill(0)
                else:
                    grads[name] = np.zeros_like(p)

    def __repr__(self) -> str:
        extra = ""
        if self._frozen:
            extra += f", frozen={list(self.frozen)}"
        if self._scales:
            extra += f", lr_scale={self._scales}"
        return f"{type(self).__name__}({self._hyperparameters()}{extra})"

    # --- helpers ---------------------------------------------------------------------------

    def _entries(self) -> Iterator[tuple[str, np.ndarray]]:
        """``(key, param)`` for every parameter, read from the model now."""
        for prefix, owner in self._owners:
            params, _ = _params_and_grads(owner, type(self).__name__, "model")
            for name, p in params.items():
                yield prefix + name, p

    def _keys(self) -> list[str]:
        return [key for key, _ in self._entries()]

    def _select(self, names, what: str) -> set[str]:
        """The parameter keys named by ``names`` (keys or layer prefixes); each must match."""
        who = type(self).__name__
        keys = self._keys()
        selected = set()
        for name in names:
            if not isinstance(name, str):
                raise TypeError(
                    f"{who}: {what} takes parameter keys or layer prefixes (str), got {name!r}"
                )
            matched = {k for k in keys if _matches(k, name)}
            if not matched:
                raise ValueError(
                    f"{who}: {what}: {name!r} names no parameter; the keys are {keys} (a layer "
                    "prefix such as '0' names '0.weight' and '0.bias')"
                )
            selected |= matched
        return selected

    def _resolve_scales(self, lr_scale) -> None:
        who = type(self).__name__
        if lr_scale is None:
            return
        if not isinstance(lr_scale, Mapping):
            raise TypeError(
                f"{who}: lr_scale must be a dict {{key or layer prefix: factor}}, got "
                f"{type(lr_scale).__name__}"
            )
        factors = {}
        for name, factor in lr_scale.items():
            self._select([name], "lr_scale")  # a str that names a parameter
            factor = _real(factor, f"lr_scale[{name!r}]", who)
            if factor <= 0:
                raise ValueError(
                    f"{who}: lr_scale[{name!r}] must be > 0, got {factor!r} (to keep "
                    "parameters fixed, freeze them: frozen=[...])"
                )
            factors[name] = factor
        for key in self._keys():
            names = [n for n in factors if _matches(key, n)]
            if names:
                self._scales[key] = factors[max(names, key=len)]

    def _pairs(self) -> list[tuple[str, np.ndarray, object]]:
        """``(key, param, grad)`` for every trainable parameter.

        Errors list every missing gradient (frozen parameters need none).
        """
        who = type(self).__name__
        pairs, missing, extra = [], [], []
        for prefix, owner in self._owners:
            params, grads = _params_and_grads(owner, who, "model")
            for name, p in params.items():
                if prefix + name in self._frozen:
                    continue
                if name not in grads:
                    missing.append(prefix + name)
                else:
                    pairs.append((prefix + name, p, grads[name]))
            extra += [prefix + name for name in grads if name not in params]
        if missing:
            raise ValueError(
                f"{who}.step(): no gradient for {missing}. Run the forward pass, "
                "loss.backward() and model.backward(dscores) before step() (backward fills "
                "model.grads)"
            )
        if extra:
            raise ValueError(
                f"{who}.step(): grads has keys that are not parameters: {extra} (the params "
                f"keys are {self._keys()}); grads must have the same keys as params"
            )
        return pairs

    def _check_param(self, key: str, p) -> np.ndarray:
        who = type(self).__name__
        if not isinstance(p, np.ndarray) or p.dtype.kind not in _FLOAT_KINDS:
            kind = getattr(p, "dtype", type(p).__name__)
            raise TypeError(
                f"{who}: parameter {key!r} must be a float numpy array, got {kind} (the "
                "optimizer updates the array in place)"
            )
        if not p.flags.writeable:
            raise ValueError(
                f"{who}: parameter {key!r} {p.shape} is read-only; the optimizer updates "
                "parameters in place (store a writable array, e.g. p.copy())"
            )
        return p

    def _check_grad(self, key: str, p, g) -> np.ndarray:
        who = type(self).__name__
        p = self._check_param(key, p)
        if not isinstance(g, np.ndarray):
            raise TypeError(
                f"{who}.step(): gradient {key!r} must be a numpy array, got {type(g).__name__}"
            )
        if g.dtype.kind not in "fiu":
            raise TypeError(
                f"{who}.step(): gradient {key!r} must hold real numbers, got dtype {g.dtype}"
            )
        if g.shape != p.shape:
            raise ValueError(
                f"{who}.step(): gradient {key!r} has shape {g.shape} but the parameter has "
                f"shape {p.shape}; a gradient must have its parameter's shape"
            )
        if not np.isfinite(g).all():
            bad = int(np.size(g) - np.count_nonzero(np.isfinite(g)))
            raise ValueError(
                f"{who}.step(): gradient {key!r} {g.shape} contains {bad} NaN/inf value(s); "
                "the training has diverged (try a smaller lr) or backward has a bug"
            )
        for name, buf in self.state.get(key, {}).items():
            if isinstance(buf, np.ndarray) and buf.shape != p.shape:
                raise ValueError(
                    f"{who}.step(): parameter {key!r} now has shape {p.shape} but its "
                    f"optimizer state {name!r} has shape {buf.shape}; create a new optimizer "
                    "after changing the model"
                )
        return np.asarray(g, dtype=p.dtype)


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, Nesterov momentum and weight decay.

    Exactly ``torch.optim.SGD``. For each parameter ``p`` with gradient ``g``, at step ``t``::

        g = g + weight_decay * p                        (if weight_decay != 0)
        if momentum != 0:
            b = g                                       (first step: t = 1)
            b = momentum * b + (1 - dampening) * g      (later steps)
            g = g + momentum * b    if nesterov  else  g = b
        p = p - lr * g                                  (in place)

    Note torch's convention: the first step sets the buffer to ``g`` (no dampening), and the
    learning rate multiplies the whole buffer (not ``v = momentum v - lr g``).

    Parameters
    ----------
    model : object with ``params``/``grads`` dicts, or a list of them
        What to optimise (see :class:`Optimizer`).
    lr : float
        Learning rate, > 0.
    momentum : float
        Momentum factor, >= 0 (0: plain SGD).
    dampening : float
        Dampening of the momentum, in [0, 1].
    weight_decay : float
        L2 penalty ``(weight_decay / 2) ||p||^2`` added to the loss, >= 0.
    nesterov : bool
        Nesterov momentum; needs ``momentum > 0`` and ``dampening == 0``.
    frozen, lr_scale : optional
        Parameters not to update, and learning rates per layer (see :class:`Optimizer`).

    State per key: ``"momentum_buffer"`` (with momentum only).
    """

    def __init__(
        self,
        model,
        lr: float,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        *,
        frozen=(),
        lr_scale=None,
    ) -> None:
        self.lr = lr
        self.momentum = _real(momentum, "momentum", "SGD")
        self.dampening = _real(dampening, "dampening", "SGD")
        self.weight_decay = _real(weight_decay, "weight_decay", "SGD")
        if not isinstance(nesterov, (bool, np.bool_)):
            raise TypeError(f"SGD: nesterov must be True or False, got {nesterov!r}")
        self.nesterov = bool(nesterov)
        if self.momentum < 0:
            raise ValueError(f"SGD: momentum must be >= 0, got {momentum!r}")
        if not 0 <= self.dampening <= 1:
            raise ValueError(f"SGD: dampening must be in [0, 1], got {dampening!r}")
        if self.weight_decay < 0:
            raise ValueError(f"SGD: weight_decay must be >= 0, got {weight_decay!r}")
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError(
                "SGD: Nesterov momentum requires momentum > 0 and dampening = 0, got "
                f"momentum={momentum!r}, dampening={dampening!r}"
            )
        super().__init__(model, frozen=frozen, lr_scale=lr_scale)

    def _hyperparameters(self) -> str:
        return (
            f"lr={self.lr}, momentum={self.momentum}, dampening={self.dampening}, "
            f"weight_decay={self.weight_decay}, nesterov={self.nesterov}"
        )

    def _update(self, key, p, g, state, lr) -> None:
        if self.weight_decay != 0:
            g = g + self.weight_decay * p
        if self.momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                # a copy, and an array even for 0-d parameters (g + wd * p is then a scalar)
                buf = state["momentum_buffer"] = np.array(g, dtype=p.dtype)
            else:
                buf *= self.momentum
                buf += (1 - self.dampening) * g
            g = g + self.momentum * buf if self.nesterov else buf
        p -= lr * g


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015), exactly ``torch.optim.Adam`` with its defaults (no AMSGrad).

    For each parameter ``p`` with gradient ``g``, at step ``t = 1, 2, ...`` (counted per
    parameter), with ``m = v = 0`` before the first step::

        g = g + weight_decay * p                   (if weight_decay != 0; L2, not AdamW)
        m = beta1 * m + (1 - beta1) * g            (first moment)
        v = beta2 * v + (1 - beta2) * g * g        (second moment)
        m_hat = m / (1 - beta1^t),  v_hat = v / (1 - beta2^t)      (bias correction)
        p = p - lr * m_hat / (sqrt(v_hat) + eps)   (in place)

    computed in torch's order: ``denom = sqrt(v) / sqrt(1 - beta2^t) + eps``, then
    ``p -= (lr / (1 - beta1^t)) * m / denom`` (``eps`` is added after the bias correction of
    ``sqrt(v)``, and ``m`` is updated as torch's ``lerp``).

    Parameters
    ----------
    model : object with ``params``/``grads`` dicts, or a list of them
        What to optimise (see :class:`Optimizer`).
    lr : float
        Learning rate, > 0 (default 1e-3).
    betas : tuple of float
        ``(beta1, beta2)``, each in [0, 1) (default (0.9, 0.999)).
    eps : float
        Added to the denominator, >= 0 (default 1e-8).
    weight_decay : float
        L2 penalty coefficient, >= 0 (default 0).
    frozen, lr_scale : optional
        Parameters not to update, and learning rates per layer (see :class:`Optimizer`).

    State per key: ``"step"`` (int), ``"exp_avg"`` (``m``), ``"exp_avg_sq"`` (``v``).
    """

    def __init__(
        self,
        model,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        *,
        frozen=(),
        lr_scale=None,
    ) -> None:
        self.lr = lr
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"Adam: betas must be a pair (beta1, beta2), got {betas!r}")
        beta1 = _real(betas[0], "betas[0]", "Adam")
        beta2 = _real(betas[1], "betas[1]", "Adam")
        for i, beta in enumerate((beta1, beta2)):
            if not 0 <= beta < 1:
                raise ValueError(f"Adam: betas[{i}] must be in [0, 1), got {betas[i]!r}")
        self.betas = (beta1, beta2)
        self.eps = _real(eps, "eps", "Adam")
        if self.eps < 0:
            raise ValueError(f"Adam: eps must be >= 0, got {eps!r}")
        self.weight_decay = _real(weight_decay, "weight_decay", "Adam")
        if self.weight_decay < 0:
            raise ValueError(f"Adam: weight_decay must be >= 0, got {weight_decay!r}")
        super().__init__(model, frozen=frozen, lr_scale=lr_scale)

    def _hyperparameters(self) -> str:
        return f"lr={self.lr}, betas={self.betas}, eps={self.eps}, weight_decay={self.weight_decay}"

    def _update(self, key, p, g, state, lr) -> None:
        beta1, beta2 = self.betas
        if not state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(p)
            state["exp_avg_sq"] = np.zeros_like(p)
        state["step"] += 1
        t = state["step"]
        m, v = state["exp_avg"], state["exp_avg_sq"]
        if self.weight_decay != 0:
            g = g + self.weight_decay * p
        # m = beta1 m + (1 - beta1) g, as torch's m.lerp_(g, 1 - beta1)
        weight = 1 - beta1
        if weight < 0.5:
            m += weight * (g - m)
        else:
            m[...] = g - (g - m) * (1 - weight)
        v *= beta2
        v += (1 - beta2) * g * g
        bias_correction1 = 1 - beta1**t
        bias_correction2 = 1 - beta2**t
        step_size = lr / bias_correction1
        denom = np.sqrt(v) / bias_correction2**0.5 + self.eps
        p -= step_size * m / denom
