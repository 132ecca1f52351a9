"""Assignment 3, convolution and pooling: its notebook, hidden checks and planted mistakes.

Everything runs in this process (``grader.notebooks.run_in_process``), not through nbgrader
(``test_course_notebooks.py`` does that for every assignment at once):

- the source notebook runs top to bottom, every cell (public checks and demos too) without
  an error, and earns every graded cell (the authoring rules and nbgrader's own release
  are checked for every assignment in ``test_course_notebooks.py``);
- each planted mistake loses exactly its cells, and the first one names the mistake;
- a forward that delegates to torch (an alias, an import inside forward) or to
  cvcourse.kernels loses the forward cell and is told why;
- the released notebook (every solution body a NotImplementedError) earns nothing, and every
  graded cell says that the part is not implemented yet;
- the checks feed non-contiguous inputs where they say they do;
- run directly on classes (no notebook): correct layers earn every part (the instructor's
  einsum and strided-view layers, and the same computed in float32), and mistaken ones
  lose exactly their part: a forward that raises or writes into x costs only the forward
  cell, an extension is graded as torch's with the student's mistake where a stride-1 cell
  already charges a recognised one, a backward that accumulates into grads loses the cell
  of that gradient, a buffered fancy-index += is told to use np.add.at;
- degenerate layers (zeros, the input echoed back, a constant, NaN, and wrong layers
  whose stride-1 forward raises) earn no extension part: only a recognised stride-1
  mistake is adopted, never whatever the stride-1 layer happens to give;
- the finite-difference note checks every element before it says "share the mistake".
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

from grader import notebooks
from grader.checks import a3_conv_pool as checks
from grader.checks.harness import copy_layout, finite_difference_note, non_contiguous
from grader.term.planted import PlantedMistake
from grader.term.planted import a3_conv_pool as planted
from tests.grader.assignment_tools import (
    DELEGATION,
    check_verdicts,
    every_cell_graded,
    lost,
    released,
)

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "course" / "assignments" / "a3_conv_pool" / "conv_pool.ipynb"
POINTS = {
    "test_conv2d_forward": 3,
    "test_conv2d_backward_input": 3,
    "test_conv2d_backward_weight": 2,
    "test_conv2d_backward_bias": 1,
    "test_conv2d_stride": 2,
    "test_conv2d_even_kernel": 2,
    "test_conv2d_dilation": 2,
    "test_maxpool_forward": 2,
    "test_maxpool_backward": 2,
    "test_maxpool_ties": 1,
    "test_maxpool_overlap": 2,
    "test_avgpool_forward": 1,
    "test_avgpool_backward": 2,
}


@pytest.fixture(scope="module")
def nb():
    return notebooks.load(NOTEBOOK)


def _graded_only(nb):
    """Setup, solution and graded cells: what decides the grades, without demos."""
    trimmed = copy.deepcopy(nb)
    trimmed.cells = [
        c
        for c in nb.cells
        if c.cell_type == "code"
        and (
            c.id == "setup"
            or notebooks.nbgrader_meta(c).get("solution")
            or notebooks.is_test_cell(c)
        )
    ]
    return trimmed


@pytest.fixture(scope="module")
def source_run(nb):
    return notebooks.run_in_process(every_cell_graded(nb))


def test_source_notebook_runs_every_cell_and_earns_full_marks(nb, source_run):
    code_ids = [c.id for c in nb.cells if c.cell_type == "code"]
    assert list(source_run) == code_ids
    failed = {k: r.output for k, r in source_run.items() if not r.passed}
    assert failed == {}
    for grade_id in POINTS:
        assert source_run[grade_id].output.startswith("\N{CHECK MARK}"), grade_id
    assert "worked examples: OK" in source_run["check_conv2d_examples"].output
    assert "ratio:" in source_run["speed_comparison"].output


def test_graded_cells_carry_the_planned_points(nb):
    cells = notebooks.test_cells(nb)
    assert {notebooks.grade_id(c): notebooks.nbgrader_meta(c)["points"] for c in cells} == POINTS


@pytest.mark.parametrize("mistake", planted.MISTAKES, ids=lambda m: m.student)
def test_planted_mistake_costs_exactly_its_cells(nb, mistake):
    results = notebooks.run_in_process(notebooks.with_mistake(_graded_only(nb), mistake))
    lost = tuple(k for k, r in results.items() if not r.passed)
    assert lost == mistake.loses, {k: results[k].output for k in lost}
    assert mistake.diagnosis in results[mistake.loses[0]].output
    if mistake.student == "kernel-flipped":
        # The extensions are graded with the student's kernel convention, and say so.
        for part in ("test_conv2d_stride", "test_conv2d_even_kernel", "test_conv2d_dilation"):
            assert "your forward flips the kernel" in results[part].output
    if mistake.student in ("dweight-not-summed", "maxpool-overwrite", "maxpool-fancy-index"):
        assert "Finite differences: your dL/d" in results[mistake.loses[0]].output
    if mistake.student in ("maxpool-overwrite", "maxpool-fancy-index"):
        # Wrong at 21 and 11 of 252 elements: the note checks them all and says so.
        assert "also disagrees with finite differences" in results[mistake.loses[0]].output
    if mistake.student == "conv-bias-broadcast":
        # y + b raises unless W_out happens to equal C_out: recognised, and the extensions'
        # forward graded as torch's with that mistake (or not graded where it raises).
        for part in ("test_conv2d_stride", "test_conv2d_even_kernel", "test_conv2d_dilation"):
            assert "your forward adds b[g] along the last axis (y + b)" in results[part].output


TORCH_ALIAS = (
    "from torch import from_numpy as as_tensor\n"
    "from torch.nn.functional import conv2d as correlate\n",
    """
        self.cache = x
        bias = self.params.get("bias")
        y = correlate(
            as_tensor(np.ascontiguousarray(x)),
            as_tensor(self.params["weight"]),
            None if bias is None else as_tensor(bias),
            stride=self.stride, padding=self.padding, dilation=self.dilation,
        )
        return y.numpy()
""",
    "called torch",
)
TORCH_IMPORT_INSIDE = (
    "",
    """
        import torch
        import torch.nn.functional as F

        self.cache = x
        bias = self.params.get("bias")
        y = F.conv2d(
            torch.from_numpy(np.ascontiguousarray(x)),
            torch.from_numpy(self.params["weight"]),
            None if bias is None else torch.from_numpy(bias),
            stride=self.stride, padding=self.padding, dilation=self.dilation,
        )
        return y.numpy()
""",
    "called torch",
)
KERNELS = (
    "from cvcourse.kernels import conv2d as fast_conv\n",
    """
        self.cache = x
        return fast_conv(
            np.ascontiguousarray(x), self.params["weight"], self.params.get("bias"),
            self.stride, self.padding, self.dilation,
        )
""",
    "called cvcourse.kernels",
)


def _with_forward(nb, header: str, body: str):
    """The notebook with Conv2d.forward's solution body replaced by ``body``."""
    changed = copy.deepcopy(nb)
    target = notebooks.cell(changed, "conv2d_solution")
    start = target.source.index("### BEGIN SOLUTION", target.source.index("def forward"))
    end = target.source.index("### END SOLUTION", start) + len("### END SOLUTION")
    target.source = header + target.source[:start] + body.strip() + target.source[end:]
    return changed


@pytest.mark.parametrize(
    "variant",
    [TORCH_ALIAS, TORCH_IMPORT_INSIDE, KERNELS],
    ids=["torch-alias", "torch-import-inside-forward", "cvcourse-kernels"],
)
def test_delegating_forward_loses_the_forward_cell(nb, variant):
    header, body, called = variant
    changed = _with_forward(nb, header, body)
    keep = {"setup", "conv_helpers", "conv2d_solution", "check_conv2d_examples"}
    changed.cells = [c for c in changed.cells if c.id in keep or c.id == "test_conv2d_forward"]
    results = notebooks.run_in_process(every_cell_graded(changed))
    # The delegating forward computes the right values (the public check passes) ...
    assert results["check_conv2d_examples"].passed, results["check_conv2d_examples"].output
    # ... and still earns nothing.
    forward = results["test_conv2d_forward"]
    assert not forward.passed
    assert called in forward.output and DELEGATION in forward.output
    assert "in forward()" in forward.output  # names the student's line


def test_released_notebook_earns_nothing_and_says_why(nb):
    results = notebooks.run_in_process(_graded_only(released(nb)))
    assert set(results) == set(POINTS)
    for grade_id, result in results.items():
        assert not result.passed, grade_id
        assert "(it raises NotImplementedError)" in result.output, (grade_id, result.output)
        assert "is not implemented yet" in result.output, grade_id


def _solution_classes(nb) -> dict:
    """The instructor's classes, executed as a notebook would define them."""
    namespace: dict = {"__name__": "__main__"}
    for c in nb.cells:
        if c.id == "setup" or notebooks.nbgrader_meta(c).get("solution"):
            exec(compile(c.source, f"<ipython-input-{c.id}>", "exec"), namespace)
    return namespace


NON_CONTIGUOUS = [
    ("conv2d_forward", "Conv2d"),
    ("conv2d_backward_input", "Conv2d"),
    ("conv2d_backward_weight", "Conv2d"),
    ("conv2d_backward_bias", "Conv2d"),
    ("conv2d_stride", "Conv2d"),
    ("conv2d_even_kernel", "Conv2d"),
    ("conv2d_dilation", "Conv2d"),
    ("maxpool_forward", "MaxPool2d"),
    ("maxpool_backward", "MaxPool2d"),
    ("maxpool_overlap", "MaxPool2d"),
    ("avgpool_forward", "AvgPool2d"),
    ("avgpool_backward", "AvgPool2d"),
]


@pytest.mark.parametrize(("check", "name"), NON_CONTIGUOUS, ids=[c for c, _ in NON_CONTIGUOUS])
def test_checks_feed_a_non_contiguous_input(nb, check, name, capsys):
    base = _solution_classes(nb)[name]
    seen: list[bool] = []

    class Recording(base):
        def forward(self, x):
            seen.append(bool(x.flags.c_contiguous))
            return super().forward(x)

    getattr(checks, check)(Recording)
    assert capsys.readouterr().out.startswith("\N{CHECK MARK}")
    assert False in seen, f"{check} never passes a non-contiguous x"


def test_finite_difference_note_tells_a_wrong_backward_from_a_shared_mistake():
    gen = np.random.default_rng(0)
    x, dy = gen.standard_normal((3, 4)), gen.standard_normal((3, 4))
    agrees = finite_difference_note(lambda z: z**3, x, dy, 3 * x**2 * dy, "dL/dx")
    assert "agrees with finite differences" in agrees
    wrong = finite_difference_note(lambda z: z**3, x, dy, 2 * x**2 * dy, "dL/dx")
    assert "also disagrees" in wrong
    assert finite_difference_note(lambda z: z**3, x, dy, np.ones(5), "dL/dx") == ""


# ---------------------------------------------------------------------------------------------
# The checks on classes: correct ones earn every part, each mistake costs exactly its own
# ---------------------------------------------------------------------------------------------

CHECKS = {
    "Conv2d": [
        "conv2d_forward",
        "conv2d_backward_input",
        "conv2d_backward_weight",
        "conv2d_backward_bias",
        "conv2d_stride",
        "conv2d_even_kernel",
        "conv2d_dilation",
    ],
    "MaxPool2d": ["maxpool_forward", "maxpool_backward", "maxpool_ties", "maxpool_overlap"],
    "AvgPool2d": ["avgpool_forward", "avgpool_backward"],
}


def _edited_classes(nb, edits: list[tuple[str, str, str]]) -> dict:
    """The instructor's classes with ``(cell, old, new)`` edits, each ``old`` occurring once."""
    changed = nb
    for index, (cell, old, new) in enumerate(edits):
        changed = notebooks.with_mistake(
            changed, PlantedMistake(f"edit-{index}", cell, old, new, ("unused",), "")
        )
    return _solution_classes(changed)


def _verdicts(classes: dict) -> dict[str, str]:
    """Every check run on ``classes``: part -> its passing line, or "FAIL: " + message."""
    objects = {part: classes[name] for name, parts in CHECKS.items() for part in parts}
    return check_verdicts(checks, objects)


FLOAT32 = [
    # The layers computed in float32 from start to end: float32 arrays in, float32 out.
    (
        "conv2d_solution",
        'self.cache = x\n        weight = self.params["weight"]',
        'x = x.astype(np.float32)\n        self.cache = x\n        weight = self.params["weight"]'
        ".astype(np.float32)",
    ),
    (
        "conv2d_solution",
        'y = y + self.params["bias"][None, :, None, None]',
        'y = y + self.params["bias"][None, :, None, None].astype(np.float32)',
    ),
    (
        "conv2d_solution",
        'kernel = self.params["weight"]',
        'kernel = self.params["weight"].astype(np.float32)\n        dy = dy.astype(np.float32)',
    ),
    (
        "conv2d_solution",
        "dy_up = np.zeros((n, g, (ho - 1) * sh + 1, (wo - 1) * sw + 1))",
        "dy_up = np.zeros((n, g, (ho - 1) * sh + 1, (wo - 1) * sw + 1), np.float32)",
    ),
    (
        "maxpool_solution",
        "self.cache = x\n        return sliding",
        "x = x.astype(np.float32)\n        self.cache = x\n        return sliding",
    ),
    (
        "maxpool_solution",
        "dx = np.zeros(self.cache.shape)",
        "dx = np.zeros(self.cache.shape, np.float32)\n        dy = dy.astype(np.float32)",
    ),
    (
        "avgpool_solution",
        "self.cache = x\n        return sliding",
        "x = x.astype(np.float32)\n        self.cache = x\n        return sliding",
    ),
    (
        "avgpool_solution",
        "dx = np.zeros(self.cache.shape)",
        "dx = np.zeros(self.cache.shape, np.float32)\n        share = share.astype(np.float32)",
    ),
]


def test_correct_layers_earn_every_part_in_float64_and_in_float32(nb):
    # The instructor's layers (einsum over strided views of x) and the same in float32.
    assert lost(_verdicts(_solution_classes(nb))) == []
    classes = _edited_classes(nb, FLOAT32)
    layer = classes["Conv2d"](2, 3, 3)
    assert layer.forward(np.ones((1, 2, 5, 5))).dtype == np.float32
    assert lost(_verdicts(classes)) == []


def test_a_wrong_float32_layer_fails_and_is_told_about_float32(nb):
    flipped = (
        "conv2d_solution",
        'y = np.einsum("nchwij,gcij->nghw", windows, weight, optimize=True)',
        'y = np.einsum("nchwij,gcij->nghw", windows, weight[:, :, ::-1, ::-1], optimize=True)',
    )
    verdicts = _verdicts(_edited_classes(nb, [*FLOAT32, flipped]))
    assert lost(verdicts) == ["conv2d_forward"]
    message = verdicts["conv2d_forward"]
    assert "your output is float32; the checks compare in float64 at rtol 1e-6" in message
    assert "rounding is not the reason" in message and checks.FLIPPED in message


RAISES_AFTER_CACHING = (
    "conv2d_solution",
    "        return y\n        ### END SOLUTION",
    '        raise RuntimeError("unfinished")\n        ### END SOLUTION',
)


def test_a_forward_that_raises_costs_the_forward_cell_only(nb):
    verdicts = _verdicts(_edited_classes(nb, [RAISES_AFTER_CACHING]))
    assert lost(verdicts) == ["conv2d_forward"]
    for part in ("conv2d_stride", "conv2d_even_kernel", "conv2d_dilation"):
        assert "forward not graded where your stride-1 layer raises" in verdicts[part]
        assert "test_conv2d_forward takes that off" in verdicts[part]


def test_a_forward_that_raises_on_non_contiguous_x_costs_the_forward_cell_only(nb):
    picky = (
        "conv2d_solution",
        "        self.cache = x\n        weight",
        "        if not x.flags.c_contiguous:\n"
        '            raise ValueError("x must be contiguous")\n'
        "        self.cache = x\n        weight",
    )
    verdicts = _verdicts(_edited_classes(nb, [picky]))
    assert lost(verdicts) == ["conv2d_forward"]
    # The extensions' non-contiguous cases fail in the same way as the stride-1 forward.
    assert "forward not graded where your stride-1 layer raises" in verdicts["conv2d_stride"]


def test_a_forward_that_clobbers_x_costs_the_forward_cell_only(nb):
    clobbers = (
        "conv2d_solution",
        "        return y\n        ### END SOLUTION",
        "        self.cache = x.copy()\n        x[...] = 0.0\n        return y\n"
        "        ### END SOLUTION",
    )
    verdicts = _verdicts(_edited_classes(nb, [clobbers]))
    assert lost(verdicts) == ["conv2d_forward"]
    assert "changed its input x in place" in verdicts["conv2d_forward"]


def test_an_extension_is_graded_with_the_recognised_stride1_mistake(nb):
    # Forward adds no bias and dL/dweight is rotated: each costs its stride-1 cell, and the
    # extensions, implemented consistently, lose nothing for them ...
    no_bias = (
        "conv2d_solution",
        'y = y + self.params["bias"][None, :, None, None]',
        "y = y + 0.0",
    )
    rotated = (
        "conv2d_solution",
        'np.einsum("nchwij,nghw->gcij", windows, dy, optimize=True)',
        'np.einsum("nchwij,nghw->gcij", windows, dy, optimize=True)[:, :, ::-1, ::-1]',
    )
    verdicts = _verdicts(_edited_classes(nb, [no_bias, rotated]))
    assert lost(verdicts) == ["conv2d_forward", "conv2d_backward_weight"]
    for part in ("conv2d_stride", "conv2d_even_kernel", "conv2d_dilation"):
        assert "forward graded as torch's with the mistake of your stride-1 layer" in verdicts[part]
        assert "your forward adds no bias" in verdicts[part]
        assert "dL/dweight graded as torch's with the mistake of your stride-1" in verdicts[part]
        assert "your dL/dweight is rotated by 180 degrees" in verdicts[part]
    # ... while an extension that is wrong on its own still fails: stride ignored.
    ignores_stride = (
        "conv2d_solution",
        "windows = sliding_windows(x_pad, self.kernel_size, self.stride, self.dilation)\n"
        "        y =",
        "windows = sliding_windows(x_pad, self.kernel_size, (1, 1), self.dilation)\n        y =",
    )
    verdicts = _verdicts(_edited_classes(nb, [no_bias, rotated, ignores_stride]))
    assert lost(verdicts) == ["conv2d_forward", "conv2d_backward_weight", "conv2d_stride"]
    assert "Conv2d.forward(x) has shape" in verdicts["conv2d_stride"]


def _pair(value) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)


def _degenerate(values: str, like: np.ndarray, shape, source=None) -> np.ndarray:
    """A result of ``shape`` that computes nothing: zeros, a constant, NaN, or ``source``
    echoed back (its channels repeated, cropped or padded with zeros to ``shape``)."""
    if values == "zeros":
        return np.zeros(shape)
    if values == "constant":
        return np.full(shape, 0.5)
    if values == "nan":
        return np.full(shape, np.nan)
    source = like if source is None else source
    out = np.zeros(shape)
    h, w = min(shape[2], source.shape[2]), min(shape[3], source.shape[3])
    channels = np.arange(shape[1]) % source.shape[1]
    out[:, :, :h, :w] = source[:, channels, :h, :w]
    return out


def _degenerate_layers(values: str) -> dict:
    """Conv2d, MaxPool2d and AvgPool2d with the right constructors and shapes, whose
    forward, backward and grads are all ``_degenerate(values, ...)``."""

    class Conv2d:
        def __init__(
            self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
            bias=True, rng=None,
        ):  # fmt: skip
            self.out_channels = out_channels
            self.kernel_size, self.stride = _pair(kernel_size), _pair(stride)
            self.padding, self.dilation = _pair(padding), _pair(dilation)
            self.params = {"weight": np.zeros((out_channels, in_channels, *self.kernel_size))}
            if bias:
                self.params["bias"] = np.zeros(out_channels)
            self.grads = {name: np.zeros_like(v) for name, v in self.params.items()}
            self.cache = None

        def forward(self, x):
            self.cache = np.array(x)
            (kh, kw), (sh, sw) = self.kernel_size, self.stride
            (ph, pw), (dh, dw) = self.padding, self.dilation
            n, _, h, w = x.shape
            ho = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
            wo = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
            return _degenerate(values, self.cache, (n, self.out_channels, ho, wo))

        def backward(self, dy):
            for name, value in self.params.items():  # an echo hands back the parameter
                shape = value.shape if value.ndim == 4 else (1, 1, 1, value.size)
                self.grads[name] = _degenerate(values, value.reshape(shape), shape).reshape(
                    value.shape
                )
            return _degenerate(values, self.cache, self.cache.shape, dy)

    class Pool:
        def __init__(self, kernel_size, stride=None):
            self.kernel_size = _pair(kernel_size)
            self.stride = self.kernel_size if stride is None else _pair(stride)
            self.cache = None

        def forward(self, x):
            self.cache = np.array(x)
            (kh, kw), (sh, sw) = self.kernel_size, self.stride
            n, c, h, w = x.shape
            shape = (n, c, (h - kh) // sh + 1, (w - kw) // sw + 1)
            return _degenerate(values, self.cache, shape)

        def backward(self, dy):
            return _degenerate(values, self.cache, self.cache.shape, dy)

    return {"Conv2d": Conv2d, "MaxPool2d": Pool, "AvgPool2d": Pool}


@pytest.mark.parametrize("values", ["zeros", "echo", "constant", "nan"])
def test_a_degenerate_layer_earns_no_part(values):
    # Right shapes, nothing computed: its stride-1 results are no recognised mistake, so
    # the extensions (stride, even kernels, dilation) compare with torch and fail too.
    verdicts = _verdicts(_degenerate_layers(values))
    assert lost(verdicts) == list(verdicts), {
        p: v for p, v in verdicts.items() if p not in lost(verdicts)
    }
    for part in ("conv2d_stride", "conv2d_even_kernel", "conv2d_dilation"):
        assert "Conv2d.forward(x) does not match torch" in verdicts[part]
        assert "not by a mistake these checks recognise" in verdicts[part]


def test_a_wrong_extension_is_not_excused_by_a_stride1_forward_that_raises(nb):
    # The stride-1 forward raises (test_conv2d_forward takes that off) and the extensions'
    # forward returns zeros, while backward is right: the zeros are compared with torch.
    base = _solution_classes(nb)["Conv2d"]

    class Conv2d(base):
        def forward(self, x):
            self.cache = x
            odd = all(k % 2 for k in self.kernel_size)
            if odd and self.stride == (1, 1) and self.dilation == (1, 1):
                raise NotImplementedError("stride 1 comes later")
            return np.zeros_like(super().forward(x))

    verdicts = _verdicts({**_solution_classes(nb), "Conv2d": Conv2d})
    assert lost(verdicts) == [
        "conv2d_forward",
        "conv2d_stride",
        "conv2d_even_kernel",
        "conv2d_dilation",
    ]
    assert "Conv2d.forward(x) does not match torch" in verdicts["conv2d_dilation"]


@pytest.mark.parametrize("name", ["weight", "bias"])
def test_a_backward_that_accumulates_into_grads_loses_that_gradients_cell(nb, name):
    old = {
        "weight": 'self.grads["weight"] = np.einsum',
        "bias": 'self.grads["bias"] = dy.sum(axis=(0, 2, 3))',
    }[name]
    verdicts = _verdicts(_edited_classes(nb, [("conv2d_solution", old, old.replace("=", "+=", 1))]))
    assert lost(verdicts) == [f"conv2d_backward_{name}"]
    message = verdicts[f"conv2d_backward_{name}"]
    assert "after the second backward" in message
    assert "gradient accumulated across backward calls" in message


def test_a_buffered_fancy_index_add_is_told_to_use_np_add_at(nb):
    mistake = next(m for m in planted.MISTAKES if m.student == "maxpool-fancy-index")
    verdicts = _verdicts(_edited_classes(nb, [(mistake.cell, mistake.old, mistake.new)]))
    assert lost(verdicts) == ["maxpool_overlap"]
    message = verdicts["maxpool_overlap"]
    assert "np.add.at(dx, idx, dy)" in message and "add with +=" not in message
    # An assignment in the loop over offsets is still told to add instead.
    overwrite = next(m for m in planted.MISTAKES if m.student == "maxpool-overwrite")
    verdicts = _verdicts(_edited_classes(nb, [(overwrite.cell, overwrite.old, overwrite.new)]))
    assert checks.OVERWRITTEN in verdicts["maxpool_overlap"]
    assert checks.FANCY_ADD not in verdicts["maxpool_overlap"]


# ---------------------------------------------------------------------------------------------
# The finite-difference note and the layouts the checks feed
# ---------------------------------------------------------------------------------------------


def test_finite_difference_note_finds_one_wrong_element_that_sampling_would_miss():
    gen = np.random.default_rng(1)
    x, dy = gen.standard_normal((3, 8, 16)), gen.standard_normal((3, 8, 16))
    right = 3 * x**2 * dy
    # The note used to differentiate 24 random elements (seed 0): pick one it never saw.
    sampled = set(np.random.default_rng(0).choice(x.size, 24, replace=False).tolist())
    wrong_at = next(i for i in range(x.size) if i not in sampled)
    wrong = right.copy()
    wrong.reshape(-1)[wrong_at] += 1.0
    note = finite_difference_note(lambda z: z**3, x, dy, wrong, "dL/dx", expected=right)
    where = ", ".join(str(int(i)) for i in np.unravel_index(wrong_at, x.shape))
    assert "also disagrees" in note and f"at element [{where}]" in note

    # A forward and backward that share a mistake in one block agree at every element.
    def block_forward(z):
        out = z**3
        out[0, :2] = 2 * z[0, :2] ** 3
        return out

    shared = right.copy()
    shared[0, :2] *= 2
    note = finite_difference_note(block_forward, x, dy, shared, "dL/dx", expected=right)
    assert f"agrees with finite differences of your own forward at all {x.size} elements" in note
    assert "share the mistake" in note


def test_finite_difference_note_beyond_its_element_limit_still_sees_a_wrong_block():
    gen = np.random.default_rng(2)
    x, dy = gen.standard_normal((4, 50)), gen.standard_normal((4, 50))
    right = 3 * x**2 * dy
    wrong = right.copy()
    wrong[3, 40:43] = 0.0
    # With the reference: every element that differs from it is differentiated.
    note = finite_difference_note(
        lambda z: z**3, x, dy, wrong, "dL/dx", expected=right, all_elements=50
    )
    assert "also disagrees" in note and "at element [3, 4" in note
    # Without it: 24 sampled elements may all be right, the random directions are not.
    note = finite_difference_note(lambda z: z**3, x, dy, wrong, "dL/dx", all_elements=50)
    assert "also disagrees" in note
    note = finite_difference_note(lambda z: z**3, x, dy, right, "dL/dx", all_elements=50)
    assert "at 24 sampled elements and along 3 random directions" in note


def test_finite_difference_note_says_nothing_of_a_float32_forward():
    x = np.random.default_rng(3).standard_normal((2, 3))
    note = finite_difference_note(
        lambda z: (z**3).astype(np.float32), x, np.ones_like(x), 3 * x**2, "dL/dx"
    )
    assert "your forward returns float32" in note and "agrees" not in note


def test_layouts_the_checks_feed():
    x = np.arange(24.0).reshape(2, 3, 4)
    strided = non_contiguous(x)
    transposed = non_contiguous(x, "transposed")
    for view in (strided, transposed):
        assert np.array_equal(view, x) and not view.flags.c_contiguous
    # A regular gap keeps reshape(-1) a view; only the transposed layout makes it a copy.
    assert np.shares_memory(strided.reshape(-1), strided)
    assert not np.shares_memory(transposed.reshape(-1), transposed)
    for view in (strided, transposed):
        copy = copy_layout(view)
        assert copy.strides == view.strides and np.array_equal(copy, view)
        assert not np.shares_memory(copy, view)
