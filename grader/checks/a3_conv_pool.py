"""Hidden tests of assignment 3, convolution and pooling (``conv_pool.ipynb``).

One function per graded cell; each takes the student's class and either prints one line
(the part passed) or raises :class:`GradingFailure` naming the case, the tensor and, where
it recognises one, the mistake:

    conv2d_forward            Conv2d forward, stride 1, odd kernels, zero padding, bias
    conv2d_backward_input     dL/dx            (own weight, bias and dy)
    conv2d_backward_weight    dL/dweight       (own weight, bias and dy)
    conv2d_backward_bias      dL/dbias         (own weight, bias and dy)
    conv2d_stride             stride > 1       (forward, dx, dweight)
    conv2d_even_kernel        even kernel sizes, square or not
    conv2d_dilation           dilation > 1
    maxpool_forward           MaxPool2d forward, non-overlapping windows
    maxpool_backward          MaxPool2d backward, no ties, non-overlapping windows
    maxpool_ties              ties: torch sends dy to the first maximum (row-major)
    maxpool_overlap           stride < kernel: gradients of overlapping windows add up
    avgpool_forward           AvgPool2d forward
    avgpool_backward          AvgPool2d backward

Shapes follow torch: x ``(N, C, H, W)``, weight ``(C_out, C_in, kH, kW)``, bias ``(C_out,)``
and ``H_out = floor((H + 2p - d(kH - 1) - 1) / s) + 1``. Every case is float64 and seeded;
references come from torch (``grader.reference``), gradients from autograd.

One mistake costs one cell:

- A backward check runs the student's forward only so that the layer caches what backward
  needs (:func:`harness.forward_for_cache`): on a copy of the check's x (an in-place change
  is the forward cell's to grade), again on a contiguous copy if it raises on a
  non-contiguous x,
  and if it still raises, backward runs on whatever the layer cached before the error (the
  case in any message says so). Neither the forward's output nor its failure is graded there.
- Backward checks set their own parameters and feed their own ``dy``. The dweight and dbias
  cells also run one layer twice (forward, backward with another ``dy``, forward, backward):
  a backward that adds into ``grads`` instead of storing loses the cell of that gradient.
- The extension cells (stride, even kernels, dilation) grade each tensor (forward, dL/dx,
  dL/dweight) against torch. Where the stride-1 cell for that tensor fails because of a
  *recognised* mistake (:data:`_MISTAKES`: a flipped kernel, no bias or a bias broadcast
  against the wrong axis, one-sided or ignored padding; dL/dx of an unrotated kernel or
  not cropped; dL/dweight rotated or not summed over the batch; or a combination), that
  is, where torch with that mistake made reproduces every result of the student's
  stride-1 layer on that cell's cases (rerun with the same seeds), the extension tensor is
  graded against torch with the same mistake made. A tensor that raises is not graded in
  that case only if the mistake makes NumPy raise there too (a bias broadcast against the
  last axis), or if the stride-1 layer raises on the same computation done at stride 1
  (:func:`_stride1_raises`). The passing line says so. Anything else the stride-1
  layer does is never adopted: a layer of zeros, a constant, NaN or its input echoed back
  agrees with itself at every stride, so an extension result that matches neither torch
  nor a recognised mistake fails, and a case of which nothing could be graded fails. The
  extension cases use padding 0 (a padding mistake is graded once) and leave the bias
  gradient to its own cell.
- The pooling cells for ties and overlapping windows compare the forward only when the plain
  forward is right (test_maxpool_forward grades that); their backward runs after a forward
  for the cache, as above.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from grader import reference
from grader.checks.harness import (
    GradingFailure,
    Symptom,
    any_of,
    assert_close,
    call_unchanged,
    copy_layout,
    fd_note,
    forward_for_cache,
    get_grad,
    matches,
    non_contiguous,
    passed,
    rng,
    set_params,
    student_call,
)

__all__ = [
    "avgpool_backward",
    "avgpool_forward",
    "conv2d_backward_bias",
    "conv2d_backward_input",
    "conv2d_backward_weight",
    "conv2d_dilation",
    "conv2d_even_kernel",
    "conv2d_forward",
    "conv2d_stride",
    "maxpool_backward",
    "maxpool_forward",
    "maxpool_overlap",
    "maxpool_ties",
]

FLIPPED = (
    "kernel flipped: you computed a true convolution (kernel rotated by 180 degrees), not "
    "the cross-correlation torch computes; use K[g, c, i, j] with x_pad[n, c, h + i, w + j] "
    "as it is, without reversing i and j"
)
ONE_SIDED = (
    "padding applied on one side only: pad p zeros on both sides of each spatial axis "
    "(p rows on top and p at the bottom, p columns on the left and p on the right)"
)
NOT_SUMMED = (
    "weight gradient not summed over the batch: dL/dK adds the contributions of all N samples"
)
TIES_ALL = (
    "max-pool gradient sent to every tied element: when several elements of a window share "
    "the maximum, torch sends dy to the first of them in row-major order only"
)
OVERWRITTEN = (
    "gradient overwritten instead of accumulated: an input element that lies in several "
    "windows (stride < kernel) receives the sum of their gradients; add with += over "
    "slices (or np.add.at for an index array), do not assign with ="
)
FANCY_ADD = (
    "gradients of overlapping windows lost in a buffered fancy-index +=: with an index "
    "array that repeats an element (the maximum of several windows), dx[idx] += dy adds "
    "only once per element, because NumPy reads all of dx[idx] before writing any of it; "
    "use np.add.at(dx, idx, dy), which adds every repeat"
)
ACCUMULATED = (
    "gradient accumulated across backward calls: grads[{name!r}] holds the sum of this "
    "call's gradient and the previous call's; store the gradient of this call "
    "(grads[{name!r}] = ...) instead of adding it to the old value (+=)"
)


# ---------------------------------------------------------------------------------------------
# Shared plumbing
# ---------------------------------------------------------------------------------------------


def _pair(value) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)


def _forward(layer, what: str, case: str, x: np.ndarray):
    """``layer.forward(x)``, graded: failing if the student's forward writes into ``x``."""
    __tracebackhide__ = True
    return call_unchanged(f"{what}.forward", case, layer.forward, x, names=("x",))


def _backward(layer, what: str, case: str, dy: np.ndarray):
    __tracebackhide__ = True
    return student_call(f"{what}.backward", case, layer.backward, dy.copy())


# ---------------------------------------------------------------------------------------------
# Conv2d cases
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConvCase:
    """One convolution: x ``(n, c, h, w)``, weight ``(g, c, *kernel)``."""

    n: int
    c: int
    g: int
    h: int
    w: int
    kernel: int | tuple[int, int] = 3
    stride: int | tuple[int, int] = 1
    padding: int | tuple[int, int] = 0
    dilation: int | tuple[int, int] = 1
    bias: bool = True
    contiguous: bool = True

    def __str__(self) -> str:
        kh, kw = _pair(self.kernel)
        text = (
            f"x {(self.n, self.c, self.h, self.w)}, weight {(self.g, self.c, kh, kw)}, "
            f"{'bias' if self.bias else 'no bias'}, stride {self.stride}, padding "
            f"{self.padding}, dilation {self.dilation}"
        )
        return text if self.contiguous else text + ", x non-contiguous"

    def options(self) -> dict:
        return {"stride": self.stride, "padding": self.padding, "dilation": self.dilation}


@dataclass
class ConvData:
    x: np.ndarray
    weight: np.ndarray
    bias: np.ndarray | None
    dy: np.ndarray
    y: np.ndarray  # torch's forward
    dx: np.ndarray  # torch's gradients for dy
    dweight: np.ndarray
    dbias: np.ndarray | None


def _conv_data(case: ConvCase, gen: np.random.Generator, x=None) -> ConvData:
    kh, kw = _pair(case.kernel)
    if x is None:
        x = gen.standard_normal((case.n, case.c, case.h, case.w))
    weight = gen.standard_normal((case.g, case.c, kh, kw)) / np.sqrt(case.c * kh * kw)
    bias = gen.standard_normal(case.g) if case.bias else None
    y = reference.conv2d(x, weight, bias, **case.options())[0]
    dy = gen.standard_normal(y.shape)
    _, dx, dweight, dbias = reference.conv2d(x, weight, bias, dy, **case.options())
    if not case.contiguous:
        x = non_contiguous(x)
    return ConvData(x, weight, bias, dy, y, dx, dweight, dbias)


def _conv_layer(Conv2d, case: ConvCase, data: ConvData):
    """The student's layer for ``case``, with the check's own weight and bias."""
    __tracebackhide__ = True
    kernel = case.kernel
    layer = student_call(
        "Conv2d(...)",
        str(case),
        Conv2d,
        case.c,
        case.g,
        kernel,
        bias=case.bias,
        **case.options(),
    )
    arrays = {"weight": data.weight}
    if case.bias:
        arrays["bias"] = data.bias
    set_params(layer, "Conv2d", **arrays)
    return layer


def _flip(weight: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(weight[:, :, ::-1, ::-1])


def _output_size_note(case: ConvCase, expected_shape) -> str:
    return (
        "the output size is floor((H + 2p - d(k - 1) - 1) / s) + 1 per axis, here "
        f"{tuple(expected_shape[2:])} for H, W = {case.h}, {case.w}"
    )


def _conv_forward_mistakes(case: ConvCase, data: ConvData) -> dict:
    """A flipped kernel, one-sided padding, a missing bias, ignored padding, a wrong size."""
    x = np.ascontiguousarray(data.x)
    ph, pw = _pair(case.padding)
    options = case.options()

    def torch_of(x_, weight, bias, **changes):
        return lambda: reference.conv2d(x_, weight, bias, **{**options, **changes})[0]

    def padded(top, bottom, left, right):
        x_ = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
        return torch_of(x_, data.weight, data.bias, padding=0)

    sides = ((0, 2 * ph, 0, 2 * pw), (2 * ph, 0, 2 * pw, 0), (0, ph, 0, pw), (ph, 0, pw, 0))
    return {
        FLIPPED: torch_of(x, _flip(data.weight), data.bias),
        ONE_SIDED: any_of(*(padded(*p) for p in sides)) if ph or pw else None,
        "bias not added: y[n, g] gets + b[g] at every position": (
            torch_of(x, data.weight, None) if data.bias is not None else None
        ),
        "padding ignored: pad x with p zeros on each side before sliding the kernel": (
            torch_of(x, data.weight, data.bias, padding=0) if ph or pw else None
        ),
        _output_size_note(case, data.y.shape): Symptom(lambda a: a.shape != data.y.shape),
    }


def _conv_run(Conv2d, case: ConvCase, data: ConvData):
    """Build the layer, run forward (for its cache only) and backward on the check's dy.

    Returns ``(layer, dx, note)``; ``note`` says if forward failed
    (:func:`harness.forward_for_cache`).
    """
    __tracebackhide__ = True
    layer = _conv_layer(Conv2d, case, data)
    note = forward_for_cache("Conv2d", str(case), layer.forward, data.x)
    dx = _backward(layer, "Conv2d", str(case) + note, data.dy)
    return layer, dx, note


def _dx_note(Conv2d, case: ConvCase, data: ConvData, dx) -> Callable[[], str]:
    """``assert_close``'s note for dL/dx: finite differences of a fresh layer's forward."""
    return fd_note(
        lambda: _conv_layer(Conv2d, case, data).forward,
        np.ascontiguousarray(data.x),
        data.dy,
        dx,
        "dL/dx",
        expected=data.dx,
    )


def _param_note(Conv2d, case: ConvCase, data: ConvData, name: str, grad) -> Callable[[], str]:
    """``assert_close``'s note for dL/d``name``: finite differences in that parameter."""

    def build():
        layer = _conv_layer(Conv2d, case, data)

        def forward(value):
            layer.params[name] = value
            return layer.forward(data.x)

        return forward

    start = data.weight if name == "weight" else data.bias
    expected = data.dweight if name == "weight" else data.dbias
    return fd_note(build, start.copy(), data.dy, grad, f"dL/d{name}", expected=expected)


# The base part: stride 1, dilation 1, odd kernels, zero padding. Edge cases: batch of 1,
# one channel, non-square and non-contiguous input, 1x1 and 5x5 kernels, padding 0, "same"
# padding and more than "same", no bias.
BASE_CASES = (
    ConvCase(2, 3, 4, 7, 9, kernel=3, padding=1),
    ConvCase(1, 1, 1, 5, 6, kernel=3, padding=0),
    ConvCase(3, 2, 3, 8, 6, kernel=5, padding=2, contiguous=False),
    ConvCase(2, 4, 2, 5, 5, kernel=1, padding=0),
    ConvCase(2, 3, 2, 4, 7, kernel=3, padding=2),
    ConvCase(2, 2, 3, 6, 5, kernel=3, padding=1, bias=False),
)
BACKWARD_CASES = (
    ConvCase(2, 3, 4, 7, 9, kernel=3, padding=1),
    ConvCase(1, 1, 1, 5, 6, kernel=3, padding=1),
    ConvCase(3, 2, 3, 8, 6, kernel=5, padding=2, contiguous=False),
    ConvCase(2, 3, 2, 4, 7, kernel=3, padding=2),
    ConvCase(2, 4, 2, 5, 5, kernel=1, padding=0),
)


def conv2d_forward(Conv2d) -> None:
    """Conv2d forward against ``F.conv2d`` on :data:`BASE_CASES`."""
    __tracebackhide__ = True
    gen = rng("conv2d_forward")
    for case in BASE_CASES:
        data = _conv_data(case, gen)
        layer = _conv_layer(Conv2d, case, data)
        y = _forward(layer, "Conv2d", str(case), data.x)
        assert_close(
            y,
            data.y,
            what="Conv2d.forward(x)",
            case=str(case),
            hint=_conv_forward_mistakes(case, data),
        )
    passed(
        "Conv2d forward",
        f"matches torch on {len(BASE_CASES)} cases (batch of 1, one channel, 1x1 to 5x5 "
        "kernels, padding 0 to 2, non-square and non-contiguous input, no bias)",
    )


def _dx_mistakes(case: ConvCase, data: ConvData) -> dict:
    """dL/dx of the unrotated kernel, or of the padded input (not cropped)."""

    def unrotated():
        x = np.ascontiguousarray(data.x)
        return reference.conv2d(x, _flip(data.weight), data.bias, data.dy, **case.options())[1]

    return {
        "kernel not rotated: dL/dx is the full cross-correlation of dy with the kernel "
        "rotated by 180 degrees (and in/out channels swapped)": unrotated,
        f"dL/dx has the shape of x, {data.dx.shape}: crop the padding off the gradient of "
        "the padded input": Symptom(lambda a: a.shape != data.dx.shape),
    }


def conv2d_backward_input(Conv2d) -> None:
    """dL/dx of Conv2d against autograd, for the check's own weight, bias and dy."""
    __tracebackhide__ = True
    gen = rng("conv2d_backward_input")
    for case in BACKWARD_CASES:
        data = _conv_data(case, gen)
        _, dx, note = _conv_run(Conv2d, case, data)
        assert_close(
            dx,
            data.dx,
            what="Conv2d.backward(dy) (dL/dx)",
            case=str(case) + note,
            hint=_dx_mistakes(case, data),
            note=_dx_note(Conv2d, case, data, dx),
        )
    passed("Conv2d dL/dx", f"matches torch autograd on {len(BACKWARD_CASES)} cases")


def _per_sample_dweight(case: ConvCase, data: ConvData) -> list[np.ndarray]:
    x = np.ascontiguousarray(data.x)
    options = case.options()
    return [
        reference.conv2d(x[i : i + 1], data.weight, data.bias, data.dy[i : i + 1], **options)[2]
        for i in range(case.n)
    ]


def _dweight_mistakes(case: ConvCase, data: ConvData) -> dict:
    """dL/dweight not summed over the batch (one sample's, the mean, a batch axis), rotated."""
    # The per-sample gradients: computed once, and only if the comparison fails.
    samples = functools.cache(lambda: _per_sample_dweight(case, data))
    batched = case.n > 1
    return {
        NOT_SUMMED + " (yours is the last sample's gradient alone)": (
            (lambda: samples()[-1]) if batched else None
        ),
        NOT_SUMMED + " (yours is the first sample's gradient alone)": (
            (lambda: samples()[0]) if batched else None
        ),
        NOT_SUMMED + " (yours is their mean: the loss already divides by N)": (
            data.dweight / case.n if batched else None
        ),
        NOT_SUMMED + " (yours keeps a batch axis)": (
            (lambda: np.stack(samples())) if batched else None
        ),
        "weight gradient rotated by 180 degrees: dL/dK[g, c, i, j] = sum over n, h, w of "
        "dy[n, g, h, w] * x_pad[n, c, h + i, w + j]": _flip(data.dweight),
    }


def conv2d_backward_weight(Conv2d) -> None:
    """dL/dweight of Conv2d against autograd, for the check's own weight, bias and dy."""
    __tracebackhide__ = True
    gen = rng("conv2d_backward_weight")
    for case in BACKWARD_CASES:
        data = _conv_data(case, gen)
        layer, _, note = _conv_run(Conv2d, case, data)
        dweight = get_grad(layer, "weight", "Conv2d")
        assert_close(
            dweight,
            data.dweight,
            what="Conv2d.grads['weight']",
            case=str(case) + note,
            hint=_dweight_mistakes(case, data),
            note=_param_note(Conv2d, case, data, "weight", dweight),
        )
    _backward_twice(Conv2d, "weight", gen)
    passed(
        "Conv2d dL/dweight",
        f"matches torch autograd on {len(BACKWARD_CASES)} cases (batches of 1 to 3) and after "
        "a second backward on the same layer",
    )


def _bias_mistakes(dy: np.ndarray) -> dict:
    """dL/db summed over any other set of axes, or averaged."""
    wrong_axes = {
        f"bias gradient summed over the wrong axes {axes}: dL/db[g] sums dy over the batch "
        "and both spatial axes (0, 2, 3) and keeps the channel axis 1": (
            lambda axes=axes: dy.sum(axis=axes)
        )
        for count in (1, 2, 3, 4)
        for axes in itertools.combinations(range(4), count)
        if axes != (0, 2, 3)
    }
    return {
        **wrong_axes,
        "bias gradient averaged: dL/db[g] is the sum of dy over axes 0, 2 and 3": any_of(
            lambda: dy.mean(axis=(0, 2, 3)), lambda: dy.sum(axis=(2, 3)).mean(axis=0)
        ),
    }


def conv2d_backward_bias(Conv2d) -> None:
    """dL/dbias of Conv2d against autograd, for the check's own weight, bias and dy."""
    __tracebackhide__ = True
    gen = rng("conv2d_backward_bias")
    cases = (
        ConvCase(2, 3, 4, 7, 9, kernel=3, padding=1),
        ConvCase(3, 2, 3, 6, 8, kernel=3, padding=0, contiguous=False),
        ConvCase(1, 1, 2, 5, 5, kernel=3, padding=1),
    )
    for case in cases:
        data = _conv_data(case, gen)
        layer, _, note = _conv_run(Conv2d, case, data)
        dbias = get_grad(layer, "bias", "Conv2d")
        assert_close(
            dbias,
            data.dbias,
            what="Conv2d.grads['bias']",
            case=str(case) + note,
            hint=_bias_mistakes(data.dy),
            note=_param_note(Conv2d, case, data, "bias", dbias),
        )
    _backward_twice(Conv2d, "bias", gen)
    passed(
        "Conv2d dL/dbias",
        f"matches torch autograd on {len(cases)} cases and after a second backward on the "
        "same layer",
    )


# One layer run twice: a backward that adds into grads (+=) instead of storing is right the
# first time (grads start at zero) and wrong the second.
TWICE_CASE = ConvCase(2, 2, 3, 6, 5, kernel=3, padding=1)


def _backward_twice(Conv2d, name: str, gen: np.random.Generator) -> None:
    """``grads[name]`` after forward, backward (another dy), forward, backward on one layer."""
    __tracebackhide__ = True
    case = TWICE_CASE
    data = _conv_data(case, gen)
    earlier_dy = gen.standard_normal(data.dy.shape)
    index = 2 if name == "weight" else 3
    earlier = reference.conv2d(data.x, data.weight, data.bias, earlier_dy, **case.options())[index]
    expected = data.dweight if name == "weight" else data.dbias
    label = (
        f"{case}; one layer run twice: forward, backward with another dy, forward, backward "
        "with this dy"
    )
    layer = _conv_layer(Conv2d, case, data)
    for dy in (earlier_dy, data.dy):
        note = forward_for_cache("Conv2d", label, layer.forward, data.x)
        _backward(layer, "Conv2d", label + note, dy)
    grad = get_grad(layer, name, "Conv2d")
    mistakes = {
        ACCUMULATED.format(name=name): expected + earlier,
        "the second backward left the first call's gradient in grads": earlier,
    }
    assert_close(
        grad,
        expected,
        what=f"Conv2d.grads[{name!r}] after the second backward",
        case=label,
        hint=mistakes,
    )


# ---------------------------------------------------------------------------------------------
# Conv2d extensions: stride, even kernels, dilation
# ---------------------------------------------------------------------------------------------


class _Raised:
    """Marks a computation that raised: the student's, or one a recognised mistake breaks."""

    def __repr__(self) -> str:
        return "RAISED"


RAISED = _Raised()

# Forward paddings a stride-1 mistake may use: on both sides (torch), none at all, or on
# one side only, as multiples of p (top, bottom, left, right); as _conv_forward_hint.
_PADDINGS: tuple[str | tuple[int, int, int, int], ...] = (
    "both",
    "ignored",
    (0, 2, 0, 2),
    (2, 0, 2, 0),
    (0, 1, 0, 1),
    (1, 0, 1, 0),
)
# Where a forward adds b[g]: on the channel axis (torch), not at all, or broadcast by NumPy
# against the last axis (y + b) or the rows (y + b[:, None]): those raise unless the sizes
# happen to agree.
_BIAS_SHAPES = {"added": (1, -1, 1, 1), "last axis": (-1,), "rows": (-1, 1)}


@dataclass(frozen=True)
class _Mistake:
    """A recognised way for one tensor of the stride-1 layer to differ from torch.

    :meth:`predict` is torch's result for a case with the mistake made (:data:`RAISED` where
    the mistake makes NumPy raise). The plain fields (no flip, bias added, padding on both
    sides, dL/dx cropped, dL/dweight summed) are torch itself. Only a mistake that explains
    every stride-1 result of the student for that tensor is adopted (:func:`_recognise`).
    """

    key: str  # "y", "dx" or "dweight"
    flip: bool = False  # y, dx: computed with the kernel rotated; dweight: the result rotated
    bias: str = "added"  # y: a key of _BIAS_SHAPES or "none"
    padding: str | tuple[int, int, int, int] = "both"  # y: one of _PADDINGS
    cropped: bool = True  # dx: the padding cropped off
    batch: str = "sum"  # dweight: "sum", "last", "first", "mean" or "stack" (over the batch)

    @property
    def adopted(self) -> bool:
        """Whether it changes the result of a padding-0 case (every extension case)."""
        return self.flip or self.bias != "added" or self.batch != "sum"

    @property
    def can_raise(self) -> bool:
        return self.bias in ("last axis", "rows")

    def how(self) -> str:
        if self.key == "y":
            parts = ["flips the kernel"] if self.flip else []
            parts += {
                "added": [],
                "none": ["adds no bias"],
                "last axis": ["adds b[g] along the last axis (y + b), not the channels"],
                "rows": ["adds b[g] along the rows (y + b[:, None]), not the channels"],
            }[self.bias]
            if self.padding == "ignored":
                parts.append("ignores the padding")
            elif self.padding != "both":
                parts.append("pads on one side only")
            return "your forward " + " and ".join(parts)
        if self.key == "dx":
            parts = ["is that of a flipped kernel"] if self.flip else []
            parts += [] if self.cropped else ["keeps the padding (not cropped to x)"]
            return "your dL/dx " + " and ".join(parts)
        parts = ["is rotated by 180 degrees"] if self.flip else []
        parts += {
            "sum": [],
            "last": ["is the last sample's alone (not summed over the batch)"],
            "first": ["is the first sample's alone (not summed over the batch)"],
            "mean": ["is averaged over the batch, not summed"],
            "stack": ["keeps a batch axis (not summed over the batch)"],
        }[self.batch]
        return "your dL/dweight " + " and ".join(parts)

    def predict(self, case: ConvCase, data: ConvData, memo: dict | None = None):
        """Torch's ``self.key`` for ``case`` with this mistake made, or :data:`RAISED`."""
        memo = {} if memo is None else memo
        x = np.ascontiguousarray(data.x)
        options = case.options()
        weight = _flip(data.weight) if self.flip and self.key != "dweight" else data.weight
        if self.key == "y":
            if self.padding != "both":
                ph, pw = _pair(case.padding)
                top, bottom, left, right = (
                    (0, 0, 0, 0) if self.padding == "ignored" else self.padding
                )
                x = np.pad(x, ((0, 0), (0, 0), (top * ph, bottom * ph), (left * pw, right * pw)))
                options["padding"] = 0
            token = (id(data), "y", self.flip, self.padding)
            if token not in memo:
                memo[token] = reference.conv2d(x, weight, None, **options)[0]
            y = memo[token]
            if data.bias is None or self.bias == "none":
                return y
            try:
                return y + data.bias.reshape(_BIAS_SHAPES[self.bias])
            except ValueError:
                return RAISED
        if self.key == "dx":
            if not self.cropped:
                ph, pw = _pair(case.padding)
                x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
                options["padding"] = 0
            token = (id(data), "dx", self.flip, self.cropped)
            if token not in memo:
                memo[token] = reference.conv2d(x, weight, None, data.dy, **options)[1]
            return memo[token]
        if self.batch in ("sum", "mean"):
            dweight = data.dweight / (case.n if self.batch == "mean" else 1)
        else:
            token = (id(data), "samples")
            if token not in memo:
                memo[token] = [
                    reference.conv2d(x[i : i + 1], weight, None, data.dy[i : i + 1], **options)[2]
                    for i in range(case.n)
                ]
            samples = memo[token]
            pick = {"last": lambda: samples[-1], "first": lambda: samples[0]}
            dweight = pick[self.batch]() if self.batch in pick else np.stack(samples)
        return np.ascontiguousarray(dweight[..., ::-1, ::-1]) if self.flip else dweight


# Every recognised mistake (and combination) per tensor, torch's own convention first.
_MISTAKES = {
    "y": tuple(
        _Mistake("y", flip=flip, bias=bias, padding=padding)
        for flip, bias, padding in itertools.product(
            (False, True), ("added", "none", "last axis", "rows"), _PADDINGS
        )
    ),
    "dx": tuple(
        _Mistake("dx", flip=flip, cropped=cropped)
        for flip, cropped in itertools.product((False, True), (True, False))
    ),
    "dweight": tuple(
        _Mistake("dweight", flip=flip, batch=batch)
        for flip, batch in itertools.product(
            (False, True), ("sum", "last", "first", "mean", "stack")
        )
    ),
}


@dataclass
class _Stride1Failure:
    """How the student's stride-1 layer fails one tensor's cell."""

    mistake: _Mistake | None  # explains every stride-1 result; None: no recognised one does
    raises: bool  # raises on a case that the mistake does not explain


def _recognise(key: str, observed: list) -> _Stride1Failure | None:
    """The recognised mistake behind the stride-1 results ``observed`` for tensor ``key``.

    ``observed``: ``(case, data, value or RAISED)`` for each case of the stride-1 cell.
    None if every value matches torch. Otherwise the first mistake of :data:`_MISTAKES`
    that predicts every value and every raise; failing that, the first that cannot raise
    and predicts every value, the raises being the layer's own (``raises``). A degenerate
    layer (zeros, a constant, its input, NaN) matches none of them.
    """
    raised = any(value is RAISED for _, _, value in observed)
    if all(value is RAISED for _, _, value in observed):
        return _Stride1Failure(None, raises=True)
    memo: dict = {}
    fallback = None
    for mistake in _MISTAKES[key]:
        unexplained = False
        for case, data, value in observed:
            predicted = mistake.predict(case, data, memo)
            if value is RAISED:
                unexplained = unexplained or predicted is not RAISED
            elif predicted is RAISED or not matches(value, predicted):
                break
        else:
            if not unexplained:
                return None if mistake == _MISTAKES[key][0] else _Stride1Failure(mistake, False)
            if fallback is None and not mistake.can_raise:
                fallback = mistake
    return _Stride1Failure(fallback, raises=raised)


def _stride1_failures(Conv2d) -> dict[str, _Stride1Failure | None]:
    """Which stride-1 cells the layer fails, and why: their cases rerun (same seeds, data).

    Tensor (``"y"``, ``"dx"``, ``"dweight"``) -> how it fails, or None where the cell passes.
    """
    observed: dict[str, list] = {"y": [], "dx": [], "dweight": []}
    gen = rng("conv2d_forward")
    for case in BASE_CASES:
        data = _conv_data(case, gen)
        try:
            layer = _conv_layer(Conv2d, case, data)
            y = student_call("Conv2d.forward", str(case), layer.forward, copy_layout(data.x))
        except GradingFailure:
            y = RAISED
        observed["y"].append((case, data, y))
    for part, key in (("conv2d_backward_input", "dx"), ("conv2d_backward_weight", "dweight")):
        gen = rng(part)
        for case in BACKWARD_CASES:
            data = _conv_data(case, gen)
            try:
                layer, dx, _ = _conv_run(Conv2d, case, data)
                value = dx if key == "dx" else get_grad(layer, "weight", "Conv2d")
            except GradingFailure:
                value = RAISED
            observed[key].append((case, data, value))
    return {key: _recognise(key, values) for key, values in observed.items()}


def _stride1_raises(Conv2d, case: ConvCase, data: ConvData) -> set[str]:
    """The tensors the student's own stride-1 layer raises on for ``case``'s computation.

    The same convolution as stride 1, dilation 1, an odd kernel and padding 0: the kernel
    dilated (zeros between its taps) and, if even, given a zero row or column at the bottom
    or right (x gets one too); ``dy`` spread out with zeros between. Only whether each of
    forward, backward (dL/dx) and ``grads["weight"]`` raises is used, never their values.
    """
    kh, kw = _pair(case.kernel)
    (sh, sw), (dh, dw) = _pair(case.stride), _pair(case.dilation)
    ekh, ekw = dh * (kh - 1) + 1, dw * (kw - 1) + 1  # the dilated kernel
    oh, ow = ekh + 1 - ekh % 2, ekw + 1 - ekw % 2  # made odd
    weight = np.zeros(data.weight.shape[:2] + (oh, ow))
    weight[:, :, 0:ekh:dh, 0:ekw:dw] = data.weight
    x = data.x
    if (oh, ow) != (ekh, ekw):
        x = np.pad(np.ascontiguousarray(x), ((0, 0), (0, 0), (0, oh - ekh), (0, ow - ekw)))
        if not data.x.flags.c_contiguous:
            x = non_contiguous(x)  # the same layout as the case's own x
    dy = np.zeros((case.n, case.g, x.shape[2] - oh + 1, x.shape[3] - ow + 1))
    dy[:, :, ::sh, ::sw] = data.dy
    twin = ConvCase(
        case.n,
        case.c,
        case.g,
        x.shape[2],
        x.shape[3],
        kernel=oh if oh == ow else (oh, ow),
        bias=case.bias,
        contiguous=bool(x.flags.c_contiguous),
    )
    twin_data = ConvData(x, weight, data.bias, dy, data.y, data.dx, data.dweight, data.dbias)
    try:
        layer = _conv_layer(Conv2d, twin, twin_data)
    except GradingFailure:
        return {"y", "dx", "dweight"}
    raised = set()
    y = _attempt(student_call, "Conv2d.forward", str(twin), layer.forward, copy_layout(x))
    if isinstance(y, GradingFailure):
        raised.add("y")
        _refill_cache(layer, str(twin), x)
    if isinstance(_attempt(_backward, layer, "Conv2d", str(twin), dy), GradingFailure):
        return raised | {"dx", "dweight"}  # a backward that raised filled no grads
    if isinstance(_attempt(get_grad, layer, "weight", "Conv2d"), GradingFailure):
        raised.add("dweight")
    return raised


# The stride-1 cell that grades each tensor, and how messages name it.
_STRIDE1_CELLS = {
    "y": ("test_conv2d_forward", "forward"),
    "dx": ("test_conv2d_backward_input", "dL/dx"),
    "dweight": ("test_conv2d_backward_weight", "dL/dweight"),
}


class _ExtensionGrading:
    """Grades one extension cell's tensors against torch or, where a stride-1 cell already
    charges a recognised mistake of the student's layer for that tensor, against torch with
    that mistake made."""

    def __init__(self, Conv2d):
        self.Conv2d = Conv2d
        self._failures: dict[str, _Stride1Failure | None] | None = None
        self.own: dict[str, _Mistake] = {}  # graded against torch with the mistake made
        self.explained: dict[str, _Mistake] = {}  # not graded: raised as the mistake does
        self.skipped: set[str] = set()  # not graded: raised as the stride-1 layer does

    def failures(self) -> dict[str, _Stride1Failure | None]:
        if self._failures is None:
            self._failures = _stride1_failures(self.Conv2d)
        return self._failures

    def grade(
        self,
        key: str,
        value,
        case: ConvCase,
        data: ConvData,
        stride1_raises: Callable[[], set[str]],
        check,
    ) -> bool:
        """``value`` (an array, or the GradingFailure its call raised) for tensor ``key``.

        ``stride1_raises()`` is :func:`_stride1_raises` of the case; ``check()`` raises the
        failure against torch. Returns whether the tensor was graded (and passed); False: it
        raised, as the stride-1 layer does (or as its recognised mistake makes it), and is
        not graded in this case.
        """
        __tracebackhide__ = True
        failed = isinstance(value, GradingFailure)
        expected = {"y": data.y, "dx": data.dx, "dweight": data.dweight}[key]
        if not failed and matches(value, expected):
            return True
        failure = self.failures()[key]
        if failure is None:  # the stride-1 cell passes: what is wrong is the extension's
            self._fail(value, check)
            return True
        mistake = failure.mistake
        if mistake is not None and mistake.adopted:
            predicted = mistake.predict(case, data)
            if predicted is RAISED and failed:
                self.explained[key] = mistake
                return False
            if predicted is not RAISED and not failed and matches(value, predicted):
                self.own[key] = mistake
                return True
        if failed and failure.raises and key in stride1_raises():
            self.skipped.add(key)
            return False
        cell, name = _STRIDE1_CELLS[key]
        if mistake is not None and mistake.adopted:
            why = (
                f"your stride-1 layer has a mistake {cell} takes off ({mistake.how()}), "
                "but this result matches neither torch nor torch with that mistake"
            )
        else:
            why = (
                f"your stride-1 {name} also differs from torch ({cell} takes that off), but "
                "not by a mistake these checks recognise, so this part compares with torch"
            )
        self._fail(value, check, why)
        return True

    @staticmethod
    def _fail(value, check, why: str = ""):
        __tracebackhide__ = True
        try:
            if isinstance(value, GradingFailure):
                raise value
            check()
        except GradingFailure as failure:
            if not why:
                raise
            raise GradingFailure(f"{failure}\n  ({why[0].upper()}{why[1:]}.)") from None

    def describe(self) -> str:
        notes = []
        for key in ("y", "dx", "dweight"):
            cell, name = _STRIDE1_CELLS[key]
            if key in self.own:
                notes.append(
                    f"{name} graded as torch's with the mistake of your stride-1 layer "
                    f"({self.own[key].how()}; {cell} takes that off)"
                )
            if key in self.explained:
                notes.append(
                    f"{name} not graded where that mistake makes NumPy raise "
                    f"({self.explained[key].how()}; {cell} takes that off)"
                )
            if key in self.skipped:
                notes.append(
                    f"{name} not graded where your stride-1 layer raises on the same "
                    f"computation (your stride-1 {name} raises; {cell} takes that off)"
                )
        return "; " + "; ".join(notes) if notes else ""


def _extension(Conv2d, part: str, title: str, cases: tuple[ConvCase, ...], details: str) -> None:
    """Forward, dL/dx and dL/dweight of every case against torch (see the module docstring)."""
    __tracebackhide__ = True
    grading = _ExtensionGrading(Conv2d)
    gen = rng(part)
    for case in cases:
        assert _pair(case.padding) == (0, 0), "extension cases use padding 0"
        data = _conv_data(case, gen)
        x = np.ascontiguousarray(data.x)
        # The same case with the kernel rotated: what a forward that flips the kernel, or
        # a dL/dx that forgets to rotate it, computes.
        conv = reference.conv2d(x, _flip(data.weight), data.bias, data.dy, **case.options())
        raises: list[set[str]] = []

        def stride1_raises(case=case, data=data, raises=raises) -> set[str]:
            if not raises:
                raises.append(_stride1_raises(Conv2d, case, data))
            return raises[0]

        forward_mistakes, dx_mistakes = _extension_mistakes(case, data, conv)
        layer = _conv_layer(Conv2d, case, data)
        y = _attempt(student_call, "Conv2d.forward", str(case), layer.forward, copy_layout(data.x))
        graded = grading.grade(
            "y",
            y,
            case,
            data,
            stride1_raises,
            lambda y=y, data=data, case=case, hint=forward_mistakes: assert_close(
                y, data.y, what="Conv2d.forward(x)", case=str(case), hint=hint
            ),
        )
        if isinstance(y, GradingFailure):  # ungraded here: backward needs only the cache
            _refill_cache(layer, str(case), data.x)
        dx = _attempt(_backward, layer, "Conv2d", str(case), data.dy)
        graded |= grading.grade(
            "dx",
            dx,
            case,
            data,
            stride1_raises,
            lambda dx=dx, data=data, case=case, hint=dx_mistakes: assert_close(
                dx,
                data.dx,
                what="Conv2d.backward(dy) (dL/dx)",
                case=str(case),
                hint=hint,
                note=_dx_note(Conv2d, case, data, dx),
            ),
        )
        # A backward that raised filled no grads: what they hold is not graded as its result.
        dweight = (
            dx if isinstance(dx, GradingFailure) else _attempt(get_grad, layer, "weight", "Conv2d")
        )
        graded |= grading.grade(
            "dweight",
            dweight,
            case,
            data,
            stride1_raises,
            lambda dweight=dweight, data=data, case=case: assert_close(
                dweight,
                data.dweight,
                what="Conv2d.grads['weight']",
                case=str(case),
                note=_param_note(Conv2d, case, data, "weight", dweight),
            ),
        )
        if not graded:
            # Nothing of this case could be graded: the part cannot be earned without it.
            first = next(v for v in (y, dx, dweight) if isinstance(v, GradingFailure))
            raise GradingFailure(
                f"{first}\n  (Nothing of this case can be graded: your layer raises for the "
                "forward, dL/dx and dL/dweight, as your stride-1 layer does on the same "
                "computation.)"
            )
    passed(
        title,
        f"forward and gradients match torch on {len(cases)} cases ({details}){grading.describe()}",
    )


def _extension_mistakes(case: ConvCase, data: ConvData, conv) -> tuple[dict, dict]:
    """The recognised mistakes of an extension case's forward and dL/dx; ``conv``: torch's
    ``(y, dx, ...)`` for the case with the kernel rotated."""
    forward = {
        FLIPPED: conv[0],
        _output_size_note(case, data.y.shape): Symptom(lambda a: a.shape != data.y.shape),
    }
    dx = {
        "kernel not rotated: dL/dx is the full cross-correlation of the spread-out dy with "
        "the kernel rotated by 180 degrees (and in/out channels swapped)": conv[1],
        f"dL/dx has the shape of x, {data.dx.shape}": Symptom(lambda a: a.shape != data.dx.shape),
    }
    return forward, dx


def _refill_cache(layer, case: str, x: np.ndarray) -> None:
    """After a forward that raised on a non-contiguous ``x``: forward on a contiguous copy,
    so that backward finds its cache (as :func:`harness.forward_for_cache` does)."""
    if not x.flags.c_contiguous:
        _attempt(student_call, "Conv2d.forward", case, layer.forward, np.ascontiguousarray(x))


def _attempt(call: Callable, *args):
    """``call(*args)``, or the GradingFailure it raised (the caller grades either)."""
    try:
        return call(*args)
    except GradingFailure as failure:
        return failure


STRIDE_CASES = (
    ConvCase(2, 2, 3, 9, 8, kernel=3, stride=2),
    ConvCase(1, 3, 2, 10, 11, kernel=3, stride=3),
    ConvCase(2, 1, 2, 7, 12, kernel=5, stride=(2, 3), contiguous=False),
    ConvCase(1, 2, 2, 5, 6, kernel=1, stride=2),
)
EVEN_CASES = (
    ConvCase(2, 2, 3, 6, 7, kernel=2),
    ConvCase(1, 3, 2, 8, 5, kernel=4),
    ConvCase(1, 2, 2, 5, 7, kernel=(2, 3)),
    ConvCase(2, 1, 1, 4, 4, kernel=4, contiguous=False),
)
DILATION_CASES = (
    ConvCase(2, 2, 3, 9, 10, kernel=3, dilation=2),
    ConvCase(1, 3, 2, 11, 8, kernel=3, dilation=(3, 2)),
    ConvCase(1, 2, 1, 6, 9, kernel=3, dilation=(1, 3), contiguous=False),
)


def conv2d_stride(Conv2d) -> None:
    """Stride > 1 (padding 0, odd kernels): forward, dL/dx, dL/dweight against torch."""
    __tracebackhide__ = True
    _extension(
        Conv2d,
        "conv2d_stride",
        "Conv2d stride",
        STRIDE_CASES,
        "strides 2, 3 and (2, 3), rows and columns the last window does not reach",
    )


def conv2d_even_kernel(Conv2d) -> None:
    """Even kernel sizes (2, 4, 2x3; stride 1, padding 0) against torch."""
    __tracebackhide__ = True
    _extension(
        Conv2d,
        "conv2d_even_kernel",
        "Conv2d even kernels",
        EVEN_CASES,
        "2x2, 4x4 and 2x3 kernels, a kernel as large as the input",
    )


def conv2d_dilation(Conv2d) -> None:
    """Dilation > 1 (stride 1, padding 0, odd kernels) against torch."""
    __tracebackhide__ = True
    _extension(
        Conv2d,
        "conv2d_dilation",
        "Conv2d dilation",
        DILATION_CASES,
        "dilation 2, (3, 2) and (1, 3)",
    )


# ---------------------------------------------------------------------------------------------
# Pooling
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PoolCase:
    """One pooling: x ``(n, c, h, w)``; ``stride=None`` means the kernel size (torch)."""

    n: int
    c: int
    h: int
    w: int
    kernel: int | tuple[int, int]
    stride: int | tuple[int, int] | None = None
    contiguous: bool = True
    values: str = "normal"  # "normal" (no ties), "ints" (many ties) or "zeros"

    def __str__(self) -> str:
        text = f"x {(self.n, self.c, self.h, self.w)}, kernel_size {self.kernel}, "
        text += f"stride {self.stride}" if self.stride is not None else "stride None"
        if self.values == "ints":
            text += ", integer values with ties"
        elif self.values == "zeros":
            text += ", all zeros (every element ties)"
        return text if self.contiguous else text + ", x non-contiguous"

    def x(self, gen: np.random.Generator) -> np.ndarray:
        shape = (self.n, self.c, self.h, self.w)
        if self.values == "ints":
            return gen.integers(0, 3, shape).astype(np.float64)
        if self.values == "zeros":
            return np.zeros(shape)
        return gen.standard_normal(shape)

    def geometry(self):
        kernel = _pair(self.kernel)
        return kernel, kernel if self.stride is None else _pair(self.stride)


def _pool_layer(cls, name: str, case: PoolCase):
    __tracebackhide__ = True
    return student_call(f"{name}(...)", str(case), cls, case.kernel, stride=case.stride)


def _windows(x: np.ndarray, case: PoolCase) -> np.ndarray:
    """The check's own view of every window: ``(N, C, H_out, W_out, kH, kW)``."""
    (kh, kw), (sh, sw) = case.geometry()
    view = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))
    return view[:, :, ::sh, ::sw]


def _scatter(case: PoolCase, shape, per_window: np.ndarray) -> np.ndarray:
    """Add ``per_window`` ``(N, C, H_out, W_out, kH, kW)`` back onto the input positions."""
    (kh, kw), (sh, sw) = case.geometry()
    ho, wo = per_window.shape[2:4]
    out = np.zeros(shape)
    for i in range(kh):
        for j in range(kw):
            out[:, :, i : i + sh * (ho - 1) + 1 : sh, j : j + sw * (wo - 1) + 1 : sw] += per_window[
                ..., i, j
            ]
    return out


def _coverage(case: PoolCase, x: np.ndarray, y_shape) -> np.ndarray:
    """How many windows contain each input element."""
    kh, kw = case.geometry()[0]
    return _scatter(case, x.shape, np.ones(tuple(y_shape) + (kh, kw)))


def _overwritten(case: PoolCase, x: np.ndarray, expected: np.ndarray, y_shape) -> Symptom:
    """Right wherever one window covers an element, wrong where several do: overwritten."""
    coverage = _coverage(case, x, y_shape)
    once, shared = coverage <= 1, coverage > 1

    def test(actual):
        return (
            actual.shape == expected.shape
            and shared.any()
            and matches(actual[once], expected[once])
            and not matches(actual[shared], expected[shared])
        )

    return Symptom(test)


def _pool_output_note(case: PoolCase, expected_shape) -> str:
    return (
        "the output size is floor((H - k) / s) + 1 per axis, with the stride defaulting to the "
        f"kernel size: here {tuple(expected_shape[2:])} for H, W = {case.h}, {case.w}"
    )


def _max_forward_mistakes(case: PoolCase, x: np.ndarray, expected: np.ndarray) -> dict:
    return {
        _pool_output_note(case, expected.shape): Symptom(lambda a: a.shape != expected.shape),
        "you averaged each window; max pooling takes its largest element": (
            lambda: _windows(x, case).mean(axis=(4, 5))
        ),
    }


def _max_routes(case: PoolCase, x: np.ndarray, dy: np.ndarray) -> dict[str, np.ndarray]:
    """dx under the wrong tie rules: every tied element, the last maximum, an even split."""
    windows = _windows(x, case)
    tied = windows == windows.max(axis=(4, 5), keepdims=True)
    kh, kw = case.geometry()[0]
    flat = tied.reshape(tied.shape[:4] + (kh * kw,))
    last = (kh * kw - 1) - flat[..., ::-1].argmax(axis=-1)
    last_mask = (np.arange(kh * kw) == last[..., None]).reshape(tied.shape)
    count = tied.sum(axis=(4, 5), keepdims=True)
    grad = dy[..., None, None]
    return {
        "all": _scatter(case, x.shape, tied * grad),
        "last": _scatter(case, x.shape, last_mask * grad),
        "split": _scatter(case, x.shape, tied * grad / count),
        "everywhere": _scatter(case, x.shape, np.broadcast_to(grad, windows.shape)),
    }


def _fancy_indexed(case: PoolCase, x: np.ndarray, dy: np.ndarray, expected) -> Symptom:
    """Recognise ``dx[idx] += dy`` with an index array that repeats elements (buffered).

    Each window's dy goes to its first maximum; an element that is the maximum of several
    windows should get the sum of their dy, and a buffered ``+=`` leaves it exactly one of
    them (which one depends on the order of the index array, so any one is recognised).
    """
    (kh, kw), (sh, sw) = case.geometry()
    windows = _windows(x, case)
    first = windows.reshape(windows.shape[:4] + (kh * kw,)).argmax(axis=-1)
    n, c, h, w = np.indices(first.shape)
    where = (n, c, h * sh + first // kw, w * sw + first % kw)
    count = np.zeros(x.shape, dtype=np.int64)
    np.add.at(count, where, 1)
    shared = count > 1

    def test(actual):
        if actual.shape != x.shape or not shared.any():
            return False
        one_of_them = np.zeros(x.shape, dtype=bool)
        np.logical_or.at(one_of_them, where, np.isclose(actual[where], dy, rtol=1e-6, atol=1e-8))
        return bool(
            one_of_them[count > 0].all()
            and matches(actual[count == 0], 0.0)
            and not matches(actual[shared], expected[shared])
        )

    return Symptom(test)


def _max_backward_mistakes(case: PoolCase, x: np.ndarray, dy: np.ndarray, expected, y_shape):
    # dx under the wrong routing rules: computed once, and only if the comparison fails.
    routes = functools.cache(lambda: _max_routes(case, x, dy))
    return {
        "dy sent to every element of the window: only the maximum influenced the output, so "
        "only it gets dy": Symptom(
            lambda a: matches(a, routes()["everywhere"]) and not matches(a, expected)
        ),
        TIES_ALL: lambda: routes()["all"],
        "max-pool gradient sent to the last maximum of a window: torch sends it to the first "
        "one in row-major order (np.argmax does the same)": lambda: routes()["last"],
        "max-pool gradient split among tied elements: torch sends all of dy to the first "
        "maximum in row-major order": lambda: routes()["split"],
        FANCY_ADD: _fancy_indexed(case, x, dy, expected),
        OVERWRITTEN: _overwritten(case, x, expected, y_shape),
    }


def _max_case(
    MaxPool2d,
    case: PoolCase,
    gen,
    *,
    check_forward: bool,
    check_backward: bool,
    own_forward_cell: bool = False,
):
    """One max-pool case: the forward compared if ``check_forward`` (and checked for writing
    into x only in ``own_forward_cell``, test_maxpool_forward), else run for the cache only;
    then the backward, if ``check_backward``."""
    __tracebackhide__ = True
    x = case.x(gen)
    probe = reference.max_pool2d(x, kernel_size=case.kernel, stride=case.stride)[0]
    dy = gen.standard_normal(probe.shape)
    expected_y, _, expected_dx = reference.max_pool2d(
        x, dy, kernel_size=case.kernel, stride=case.stride
    )
    given = x if case.contiguous else non_contiguous(x)
    layer = _pool_layer(MaxPool2d, "MaxPool2d", case)
    note = ""
    if own_forward_cell:
        y = _forward(layer, "MaxPool2d", str(case), given)
    elif check_forward:
        y = student_call("MaxPool2d.forward", str(case), layer.forward, copy_layout(given))
    else:
        note = forward_for_cache("MaxPool2d", str(case), layer.forward, given)
    if check_forward:
        assert_close(
            y,
            expected_y,
            what="MaxPool2d.forward(x)",
            case=str(case),
            hint=_max_forward_mistakes(case, x, expected_y),
        )
    if not check_backward:
        return
    dx = _backward(layer, "MaxPool2d", str(case) + note, dy)
    assert_close(
        dx,
        expected_dx,
        what="MaxPool2d.backward(dy)",
        case=str(case) + note,
        hint=_max_backward_mistakes(case, x, dy, expected_dx, expected_y.shape),
        # At a tie the max has a kink: finite differences say nothing useful there.
        note=fd_note(
            lambda: _pool_layer(MaxPool2d, "MaxPool2d", case).forward,
            x,
            dy,
            dx,
            "dL/dx",
            expected=expected_dx,
        )
        if case.values == "normal"
        else None,
    )


MAX_FORWARD_CASES = (
    PoolCase(2, 3, 8, 6, kernel=2),
    PoolCase(1, 1, 7, 10, kernel=3),
    PoolCase(2, 2, 9, 8, kernel=(3, 2), contiguous=False),
    PoolCase(2, 2, 7, 7, kernel=2, stride=3),
)
MAX_BACKWARD_CASES = (
    PoolCase(2, 3, 8, 6, kernel=2),
    PoolCase(1, 1, 7, 10, kernel=3),
    PoolCase(2, 2, 9, 8, kernel=(3, 2), contiguous=False),
    PoolCase(1, 2, 7, 7, kernel=2, stride=3),
)
TIE_CASES = (
    PoolCase(2, 2, 6, 8, kernel=2, values="ints"),
    PoolCase(1, 1, 6, 9, kernel=3, values="zeros"),
    PoolCase(2, 1, 4, 9, kernel=(2, 3), values="ints"),
)
OVERLAP_CASES = (
    PoolCase(2, 2, 7, 9, kernel=3, stride=2),
    PoolCase(1, 3, 6, 6, kernel=3, stride=1),
    PoolCase(2, 1, 8, 7, kernel=(3, 2), stride=(2, 1), contiguous=False),
)


def maxpool_forward(MaxPool2d) -> None:
    """MaxPool2d forward against ``F.max_pool2d`` (windows that do not overlap)."""
    __tracebackhide__ = True
    gen = rng("maxpool_forward")
    for case in MAX_FORWARD_CASES:
        _max_case(
            MaxPool2d, case, gen, check_forward=True, check_backward=False, own_forward_cell=True
        )
    passed(
        "MaxPool2d forward",
        f"matches torch on {len(MAX_FORWARD_CASES)} cases (2x2, 3x3 and 3x2 windows, stride "
        "None and 3, leftover rows, batch of 1, non-contiguous input)",
    )


def maxpool_backward(MaxPool2d) -> None:
    """MaxPool2d dL/dx against autograd: no ties, windows that do not overlap."""
    __tracebackhide__ = True
    gen = rng("maxpool_backward")
    for case in MAX_BACKWARD_CASES:
        _max_case(MaxPool2d, case, gen, check_forward=False, check_backward=True)
    passed("MaxPool2d dL/dx", f"matches torch autograd on {len(MAX_BACKWARD_CASES)} cases")


def _maxpool_forward_ok(MaxPool2d) -> bool:
    """Whether the plain forward (2x2 windows side by side) matches torch.

    test_maxpool_forward grades the forward; the ties and overlap cells compare their own
    forward outputs only when this holds, so a wrong forward is not paid for three times.
    """
    case = PoolCase(1, 2, 4, 6, kernel=2)
    x = case.x(rng("maxpool_probe"))
    try:
        layer = _pool_layer(MaxPool2d, "MaxPool2d", case)
        y = student_call("MaxPool2d.forward", str(case), layer.forward, x)
    except GradingFailure:
        return False
    return matches(y, reference.max_pool2d(x, kernel_size=2)[0])


FORWARD_NOT_COMPARED = (
    "; the forward is not compared here: your plain forward differs from torch, which "
    "test_maxpool_forward takes off"
)


def maxpool_ties(MaxPool2d) -> None:
    """Ties in a window: torch sends dy to the first maximum in row-major order."""
    __tracebackhide__ = True
    forward_ok = _maxpool_forward_ok(MaxPool2d)
    gen = rng("maxpool_ties")
    for case in TIE_CASES:
        _max_case(MaxPool2d, case, gen, check_forward=forward_ok, check_backward=True)
    passed(
        "MaxPool2d ties",
        f"dy goes to the first maximum of each window, as in torch ({len(TIE_CASES)} cases)"
        + ("" if forward_ok else FORWARD_NOT_COMPARED),
    )


def maxpool_overlap(MaxPool2d) -> None:
    """Overlapping windows (stride < kernel): forward, and dL/dx summed over windows."""
    __tracebackhide__ = True
    forward_ok = _maxpool_forward_ok(MaxPool2d)
    gen = rng("maxpool_overlap")
    for case in OVERLAP_CASES:
        _max_case(MaxPool2d, case, gen, check_forward=forward_ok, check_backward=True)
    passed(
        "MaxPool2d overlapping windows",
        f"forward and accumulated gradients match torch on {len(OVERLAP_CASES)} cases"
        + ("" if forward_ok else FORWARD_NOT_COMPARED),
    )


AVG_CASES = (
    PoolCase(2, 3, 6, 8, kernel=2),
    PoolCase(1, 1, 7, 8, kernel=3),
    PoolCase(2, 2, 7, 9, kernel=3, stride=2, contiguous=False),
    PoolCase(2, 1, 5, 9, kernel=(2, 3), stride=(1, 2)),
)


def _avg_case(AvgPool2d, case: PoolCase, gen, *, backward: bool) -> None:
    __tracebackhide__ = True
    x = case.x(gen)
    probe = reference.avg_pool2d(x, kernel_size=case.kernel, stride=case.stride)[0]
    dy = gen.standard_normal(probe.shape)
    expected_y, expected_dx = reference.avg_pool2d(
        x, dy, kernel_size=case.kernel, stride=case.stride
    )
    given = x if case.contiguous else non_contiguous(x)
    layer = _pool_layer(AvgPool2d, "AvgPool2d", case)
    kh, kw = case.geometry()[0]
    if not backward:
        y = _forward(layer, "AvgPool2d", str(case), given)
        mistakes = {
            _pool_output_note(case, expected_y.shape): Symptom(
                lambda a: a.shape != expected_y.shape
            ),
            "you summed each window; the average divides the sum by kH * kW": (
                expected_y * (kh * kw)
            ),
        }
        assert_close(y, expected_y, what="AvgPool2d.forward(x)", case=str(case), hint=mistakes)
        return
    note = forward_for_cache("AvgPool2d", str(case), layer.forward, given)
    dx = _backward(layer, "AvgPool2d", str(case) + note, dy)
    mistakes = {
        "dy not divided by the window size: each of the kH * kW elements of a window gets "
        "dy / (kH * kW)": expected_dx * (kh * kw),
        OVERWRITTEN: _overwritten(case, x, expected_dx, expected_y.shape),
    }
    assert_close(
        dx,
        expected_dx,
        what="AvgPool2d.backward(dy)",
        case=str(case) + note,
        hint=mistakes,
        note=fd_note(
            lambda: _pool_layer(AvgPool2d, "AvgPool2d", case).forward,
            x,
            dy,
            dx,
            "dL/dx",
            expected=expected_dx,
        ),
    )


def avgpool_forward(AvgPool2d) -> None:
    """AvgPool2d forward against ``F.avg_pool2d`` (also overlapping windows)."""
    __tracebackhide__ = True
    gen = rng("avgpool_forward")
    for case in AVG_CASES:
        _avg_case(AvgPool2d, case, gen, backward=False)
    passed("AvgPool2d forward", f"matches torch on {len(AVG_CASES)} cases")


def avgpool_backward(AvgPool2d) -> None:
    """AvgPool2d dL/dx against autograd (also overlapping windows)."""
    __tracebackhide__ = True
    gen = rng("avgpool_backward")
    for case in AVG_CASES:
        _avg_case(AvgPool2d, case, gen, backward=True)
    passed("AvgPool2d dL/dx", f"matches torch autograd on {len(AVG_CASES)} cases")
