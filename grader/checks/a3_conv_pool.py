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

One mistake costs one cell: backward checks set their own parameters and feed their own
``dy``; the extension checks use padding 0 (so a one-sided padding is not graded twice),
compare ``dweight`` only on batches of one (so a missing sum over the batch is not graded
twice), leave the bias gradient to its own cell, and grade with the student's own
conventions where the stride-1 layer flips the kernel, leaves out the bias or forgets to
rotate the kernel in dL/dx (:class:`BaseConventions`; the stride-1 cells take those off).
The pooling cells for ties and overlapping windows compare the forward only when the plain
forward is right (test_maxpool_forward grades that).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from grader import reference
from grader.checks.harness import (
    GradingFailure,
    assert_close,
    finite_difference_note,
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
    "windows (stride < kernel) receives the sum of their gradients; add with +=, do not "
    "assign with ="
)


# ---------------------------------------------------------------------------------------------
# Shared plumbing
# ---------------------------------------------------------------------------------------------


def _pair(value) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)


def _forward(layer, what: str, case: str, x: np.ndarray, *, graded: bool = True):
    """``layer.forward(x)``, failing if the student's forward writes into ``x``.

    ``graded=False``: a backward check runs the forward only to fill the layer's cache; a
    failure then says so.
    """
    __tracebackhide__ = True
    before = x.copy()
    try:
        y = student_call(f"{what}.forward", case, layer.forward, x)
    except GradingFailure as failure:
        if graded:
            raise
        raise GradingFailure(
            f"{failure}\n  (This check grades backward; it runs forward first so that the layer "
            "caches what backward needs, but does not grade its output.)"
        ) from None
    if not np.array_equal(x, before):
        raise GradingFailure(
            f"{what}.forward changed its input x in place; a layer must leave x as it is "
            f"(copy it first if you need to modify it)\n  case: {case}"
        )
    return y


def _backward(layer, what: str, case: str, dy: np.ndarray):
    __tracebackhide__ = True
    return student_call(f"{what}.backward", case, layer.backward, dy.copy())


def _with_note(check: Callable[[], object], note: Callable[[], str]):
    """Run an ``assert_close``; on failure add the finite-difference sentence ``note()``."""
    __tracebackhide__ = True
    try:
        return check()
    except GradingFailure as failure:
        try:
            sentence = note()
        except GradingFailure:  # the layer could not even be rebuilt: say nothing more
            sentence = ""
        if not sentence:
            raise
        raise GradingFailure(f"{failure}\n  Finite differences: {sentence}.") from None


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


def _conv_forward_hint(case: ConvCase, data: ConvData) -> Callable[[np.ndarray], str | None]:
    """Recognise a flipped kernel, one-sided padding, a missing bias or ignored padding."""
    x = np.ascontiguousarray(data.x)
    ph, pw = _pair(case.padding)
    options = case.options()

    def torch_of(x_, weight, bias, **changes):
        return reference.conv2d(x_, weight, bias, **{**options, **changes})[0]

    def one_sided(actual):
        if ph == 0 and pw == 0:
            return None
        for top, bottom, left, right in (
            (0, 2 * ph, 0, 2 * pw),
            (2 * ph, 0, 2 * pw, 0),
            (0, ph, 0, pw),
            (ph, 0, pw, 0),
        ):
            padded = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
            if matches(actual, torch_of(padded, data.weight, data.bias, padding=0)):
                return ONE_SIDED
        return None

    def hint(actual):
        if matches(actual, torch_of(x, _flip(data.weight), data.bias)):
            return FLIPPED
        found = one_sided(actual)
        if found:
            return found
        if data.bias is not None and matches(actual, torch_of(x, data.weight, None)):
            return "bias not added: y[n, g] gets + b[g] at every position"
        if (ph or pw) and matches(actual, torch_of(x, data.weight, data.bias, padding=0)):
            return "padding ignored: pad x with p zeros on each side before sliding the kernel"
        if actual.shape != data.y.shape:
            return _output_size_note(case, data.y.shape)
        return None

    return hint


def _conv_run(Conv2d, case: ConvCase, data: ConvData):
    """Build the layer, run forward (to fill its cache) and backward on the check's dy."""
    layer = _conv_layer(Conv2d, case, data)
    _forward(layer, "Conv2d", str(case), data.x, graded=False)
    dx = _backward(layer, "Conv2d", str(case), data.dy)
    return layer, dx


def _dx_note(Conv2d, case: ConvCase, data: ConvData, dx) -> Callable[[], str]:
    def note() -> str:
        layer = _conv_layer(Conv2d, case, data)
        return finite_difference_note(
            layer.forward, np.ascontiguousarray(data.x), data.dy, dx, "dL/dx"
        )

    return note


def _param_note(Conv2d, case: ConvCase, data: ConvData, name: str, grad) -> Callable[[], str]:
    def note() -> str:
        layer = _conv_layer(Conv2d, case, data)

        def forward(value):
            layer.params[name] = value
            return layer.forward(data.x)

        start = data.weight if name == "weight" else data.bias
        return finite_difference_note(forward, start.copy(), data.dy, grad, f"dL/d{name}")

    return note


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
            hint=_conv_forward_hint(case, data),
        )
    passed(
        "Conv2d forward",
        f"matches torch on {len(BASE_CASES)} cases (batch of 1, one channel, 1x1 to 5x5 "
        "kernels, padding 0 to 2, non-square and non-contiguous input, no bias)",
    )


def conv2d_backward_input(Conv2d) -> None:
    """dL/dx of Conv2d against autograd, for the check's own weight, bias and dy."""
    __tracebackhide__ = True
    gen = rng("conv2d_backward_input")
    for case in BACKWARD_CASES:
        data = _conv_data(case, gen)
        _, dx = _conv_run(Conv2d, case, data)

        def hint(actual, data=data, case=case):
            x = np.ascontiguousarray(data.x)
            options = case.options()
            flipped = reference.conv2d(x, _flip(data.weight), data.bias, data.dy, **options)[1]
            if matches(actual, flipped):
                return (
                    "kernel not rotated: dL/dx is the full cross-correlation of dy with the "
                    "kernel rotated by 180 degrees (and in/out channels swapped)"
                )
            if actual.shape != data.dx.shape:
                return (
                    f"dL/dx has the shape of x, {data.dx.shape}: crop the padding off the "
                    "gradient of the padded input"
                )
            return None

        _with_note(
            lambda dx=dx, data=data, case=case, hint=hint: assert_close(
                dx, data.dx, what="Conv2d.backward(dy) (dL/dx)", case=str(case), hint=hint
            ),
            _dx_note(Conv2d, case, data, dx),
        )
    passed("Conv2d dL/dx", f"matches torch autograd on {len(BACKWARD_CASES)} cases")


def _per_sample_dweight(case: ConvCase, data: ConvData) -> list[np.ndarray]:
    x = np.ascontiguousarray(data.x)
    options = case.options()
    return [
        reference.conv2d(x[i : i + 1], data.weight, data.bias, data.dy[i : i + 1], **options)[2]
        for i in range(case.n)
    ]


def conv2d_backward_weight(Conv2d) -> None:
    """dL/dweight of Conv2d against autograd, for the check's own weight, bias and dy."""
    __tracebackhide__ = True
    gen = rng("conv2d_backward_weight")
    for case in BACKWARD_CASES:
        data = _conv_data(case, gen)
        layer, _ = _conv_run(Conv2d, case, data)
        dweight = get_grad(layer, "weight", "Conv2d")

        def hint(actual, case=case, data=data):
            samples = _per_sample_dweight(case, data)
            if case.n > 1:
                if matches(actual, samples[-1]):
                    return NOT_SUMMED + " (yours is the last sample's gradient alone)"
                if matches(actual, samples[0]):
                    return NOT_SUMMED + " (yours is the first sample's gradient alone)"
                if matches(actual, data.dweight / case.n):
                    return NOT_SUMMED + " (yours is their mean: the loss already divides by N)"
                if matches(actual, np.stack(samples)):
                    return NOT_SUMMED + " (yours keeps a batch axis)"
            if matches(actual, _flip(data.dweight)):
                return (
                    "weight gradient rotated by 180 degrees: dL/dK[g, c, i, j] = sum over n, h, w "
                    "of dy[n, g, h, w] * x_pad[n, c, h + i, w + j]"
                )
            return None

        _with_note(
            lambda dweight=dweight, data=data, case=case, hint=hint: assert_close(
                dweight, data.dweight, what="Conv2d.grads['weight']", case=str(case), hint=hint
            ),
            _param_note(Conv2d, case, data, "weight", dweight),
        )
    passed(
        "Conv2d dL/dweight",
        f"matches torch autograd on {len(BACKWARD_CASES)} cases (batches of 1 to 3)",
    )


def _bias_hint(dy: np.ndarray) -> Callable[[np.ndarray], str | None]:
    def hint(actual):
        for count in (1, 2, 3, 4):
            for axes in itertools.combinations(range(4), count):
                if axes == (0, 2, 3):
                    continue
                if matches(actual, dy.sum(axis=axes)):
                    return (
                        f"bias gradient summed over the wrong axes {axes}: dL/db[g] sums dy over "
                        "the batch and both spatial axes (0, 2, 3) and keeps the channel axis 1"
                    )
        if matches(actual, dy.mean(axis=(0, 2, 3))) or matches(
            actual, dy.sum(axis=(2, 3)).mean(axis=0)
        ):
            return "bias gradient averaged: dL/db[g] is the sum of dy over axes 0, 2 and 3"
        return None

    return hint


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
        layer, _ = _conv_run(Conv2d, case, data)
        dbias = get_grad(layer, "bias", "Conv2d")
        _with_note(
            lambda dbias=dbias, data=data, case=case: assert_close(
                dbias,
                data.dbias,
                what="Conv2d.grads['bias']",
                case=str(case),
                hint=_bias_hint(data.dy),
            ),
            _param_note(Conv2d, case, data, "bias", dbias),
        )
    passed("Conv2d dL/dbias", f"matches torch autograd on {len(cases)} cases")


# ---------------------------------------------------------------------------------------------
# Conv2d extensions: stride, even kernels, dilation
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BaseConventions:
    """What the student's stride-1 layer does where it differs from torch.

    Each of these is already taken off by its own stride-1 cell; the extension cells grade
    stride, even kernels and dilation with the student's conventions, so that one mistake
    is not paid for four times.
    """

    flips_forward: bool = False  # the forward rotates the kernel (a true convolution)
    adds_no_bias: bool = False  # the forward leaves out the bias
    dx_flipped: bool = False  # dL/dx as if the kernel were rotated (not rotated in backward)
    dweight_flipped: bool = False  # dL/dweight rotated by 180 degrees

    def describe(self) -> str:
        notes = []
        if self.flips_forward:
            notes.append("your forward flips the kernel (test_conv2d_forward takes that off)")
        if self.adds_no_bias:
            notes.append("your forward adds no bias (test_conv2d_forward takes that off)")
        if self.dx_flipped:
            notes.append(
                "your dL/dx uses the kernel unrotated (test_conv2d_backward_input takes that off)"
            )
        if self.dweight_flipped:
            notes.append("your dL/dweight is rotated (test_conv2d_backward_weight takes that off)")
        if not notes:
            return ""
        return "; graded with the conventions of your stride-1 layer: " + "; ".join(notes)


def _base_conventions(Conv2d) -> BaseConventions:
    """Probe the student's layer on a plain case: stride 1, padding 0, 3x3, batch of one."""
    case = ConvCase(1, 2, 2, 6, 5, kernel=3)
    data = _conv_data(case, rng("conv2d_convention"))
    flipped = reference.conv2d(data.x, _flip(data.weight), data.bias, data.dy)
    try:
        layer = _conv_layer(Conv2d, case, data)
        y = student_call("Conv2d.forward", str(case), layer.forward, data.x)
    except GradingFailure:
        return BaseConventions()
    forward = {}
    for flip, bias in itertools.product((False, True), (True, False)):
        weight = _flip(data.weight) if flip else data.weight
        if matches(y, reference.conv2d(data.x, weight, data.bias if bias else None)[0]):
            forward = {"flips_forward": flip, "adds_no_bias": not bias}
            break
    try:
        dx = student_call("Conv2d.backward", str(case), layer.backward, data.dy.copy())
        dweight = layer.grads["weight"]
    except (GradingFailure, AttributeError, KeyError, TypeError):
        return BaseConventions(**forward)
    return BaseConventions(
        **forward,
        dx_flipped=not matches(dx, data.dx) and matches(dx, flipped[1]),
        dweight_flipped=not matches(dweight, data.dweight)
        and matches(dweight, _flip(data.dweight)),
    )


def _extension(Conv2d, part: str, title: str, cases: tuple[ConvCase, ...], details: str) -> None:
    """Forward, dL/dx and (on batches of one) dL/dweight of every case against torch."""
    __tracebackhide__ = True
    base = _base_conventions(Conv2d)
    gen = rng(part)
    for case in cases:
        assert _pair(case.padding) == (0, 0), "extension cases use padding 0"
        data = _conv_data(case, gen)
        x = np.ascontiguousarray(data.x)
        # The same case with the kernel rotated: what a forward that flips the kernel, or
        # a dL/dx that forgets to rotate it, computes.
        conv = reference.conv2d(x, _flip(data.weight), data.bias, data.dy, **case.options())
        layer = _conv_layer(Conv2d, case, data)
        y = _forward(layer, "Conv2d", str(case), data.x)
        expected_y = data.y
        if base.flips_forward or base.adds_no_bias:
            weight = _flip(data.weight) if base.flips_forward else data.weight
            bias = None if base.adds_no_bias else data.bias
            expected_y = reference.conv2d(x, weight, bias, **case.options())[0]

        def hint(actual, case=case, data=data, conv=conv):
            if not base.flips_forward and matches(actual, conv[0]):
                return FLIPPED
            if actual.shape != data.y.shape:
                return _output_size_note(case, data.y.shape)
            return None

        assert_close(
            y,
            expected_y,
            what="Conv2d.forward(x)",
            case=str(case)
            + (" (with your stride-1 conventions)" if expected_y is not data.y else ""),
            hint=hint,
        )
        dx = _backward(layer, "Conv2d", str(case), data.dy)
        if not (base.dx_flipped and matches(dx, conv[1])):
            _with_note(
                lambda dx=dx, data=data, case=case: assert_close(
                    dx, data.dx, what="Conv2d.backward(dy) (dL/dx)", case=str(case)
                ),
                _dx_note(Conv2d, case, data, dx),
            )
        if case.n == 1:
            dweight = get_grad(layer, "weight", "Conv2d")
            if not (base.dweight_flipped and matches(dweight, _flip(data.dweight))):
                _with_note(
                    lambda dweight=dweight, data=data, case=case: assert_close(
                        dweight, data.dweight, what="Conv2d.grads['weight']", case=str(case)
                    ),
                    _param_note(Conv2d, case, data, "weight", dweight),
                )
    passed(
        title,
        f"forward and gradients match torch on {len(cases)} cases ({details}){base.describe()}",
    )


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


def _overwrite_hint(case: PoolCase, x: np.ndarray, expected: np.ndarray, y_shape):
    """Right wherever one window covers an element, wrong where several do: overwritten."""
    coverage = _coverage(case, x, y_shape)
    once, shared = coverage <= 1, coverage > 1

    def hint(actual):
        if actual.shape != expected.shape or not shared.any():
            return None
        if matches(actual[once], expected[once]) and not matches(actual[shared], expected[shared]):
            return OVERWRITTEN
        return None

    return hint


def _pool_output_note(case: PoolCase, expected_shape) -> str:
    return (
        "the output size is floor((H - k) / s) + 1 per axis, with the stride defaulting to the "
        f"kernel size: here {tuple(expected_shape[2:])} for H, W = {case.h}, {case.w}"
    )


def _max_forward_hint(case: PoolCase, x: np.ndarray, expected: np.ndarray):
    def hint(actual):
        if actual.shape != expected.shape:
            return _pool_output_note(case, expected.shape)
        if matches(actual, _windows(x, case).mean(axis=(4, 5))):
            return "you averaged each window; max pooling takes its largest element"
        return None

    return hint


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


def _max_backward_hint(case: PoolCase, x: np.ndarray, dy: np.ndarray, expected, y_shape):
    overwrite = _overwrite_hint(case, x, expected, y_shape)

    def hint(actual):
        routes = _max_routes(case, x, dy)
        if matches(actual, routes["everywhere"]) and not matches(actual, expected):
            return (
                "dy sent to every element of the window: only the maximum influenced the "
                "output, so only it gets dy"
            )
        if matches(actual, routes["all"]):
            return TIES_ALL
        if matches(actual, routes["last"]):
            return (
                "max-pool gradient sent to the last maximum of a window: torch sends it to the "
                "first one in row-major order (np.argmax does the same)"
            )
        if matches(actual, routes["split"]):
            return (
                "max-pool gradient split among tied elements: torch sends all of dy to the "
                "first maximum in row-major order"
            )
        return overwrite(actual)

    return hint


def _max_case(MaxPool2d, case: PoolCase, gen, *, check_forward: bool, check_backward: bool):
    __tracebackhide__ = True
    x = case.x(gen)
    probe = reference.max_pool2d(x, kernel_size=case.kernel, stride=case.stride)[0]
    dy = gen.standard_normal(probe.shape)
    expected_y, _, expected_dx = reference.max_pool2d(
        x, dy, kernel_size=case.kernel, stride=case.stride
    )
    given = x if case.contiguous else non_contiguous(x)
    layer = _pool_layer(MaxPool2d, "MaxPool2d", case)
    y = _forward(layer, "MaxPool2d", str(case), given, graded=check_forward)
    if check_forward:
        assert_close(
            y,
            expected_y,
            what="MaxPool2d.forward(x)",
            case=str(case),
            hint=_max_forward_hint(case, x, expected_y),
        )
    if not check_backward:
        return
    dx = _backward(layer, "MaxPool2d", str(case), dy)
    hint = _max_backward_hint(case, x, dy, expected_dx, expected_y.shape)

    def note() -> str:
        if case.values != "normal":
            return ""  # at a tie the max has a kink: finite differences say nothing useful
        fresh = _pool_layer(MaxPool2d, "MaxPool2d", case)
        return finite_difference_note(fresh.forward, x, dy, dx, "dL/dx")

    _with_note(
        lambda: assert_close(
            dx, expected_dx, what="MaxPool2d.backward(dy)", case=str(case), hint=hint
        ),
        note,
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
        _max_case(MaxPool2d, case, gen, check_forward=True, check_backward=False)
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
    y = _forward(layer, "AvgPool2d", str(case), given, graded=not backward)
    kh, kw = case.geometry()[0]
    if not backward:

        def forward_hint(actual):
            if actual.shape != expected_y.shape:
                return _pool_output_note(case, expected_y.shape)
            if matches(actual, expected_y * (kh * kw)):
                return "you summed each window; the average divides the sum by kH * kW"
            return None

        assert_close(y, expected_y, what="AvgPool2d.forward(x)", case=str(case), hint=forward_hint)
        return
    dx = _backward(layer, "AvgPool2d", str(case), dy)
    overwrite = _overwrite_hint(case, x, expected_dx, expected_y.shape)

    def hint(actual):
        if matches(actual, expected_dx * (kh * kw)):
            return (
                "dy not divided by the window size: each of the kH * kW elements of a window "
                "gets dy / (kH * kW)"
            )
        return overwrite(actual)

    def note() -> str:
        fresh = _pool_layer(AvgPool2d, "AvgPool2d", case)
        return finite_difference_note(fresh.forward, x, dy, dx, "dL/dx")

    _with_note(
        lambda: assert_close(
            dx, expected_dx, what="AvgPool2d.backward(dy)", case=str(case), hint=hint
        ),
        note,
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
