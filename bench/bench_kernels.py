"""Benchmark cvcourse.kernels against torch (CPU), float32, both in this one process.

Run with ``make bench`` (or ``.venv/bin/python bench/bench_kernels.py --help``). Prints:

1. one table row per (workload, op, pass, thread count): our median time, torch's median
   time, their ratio and the issue's target. Convolution rows time our ``auto`` dispatch
   and each algorithm, so the dispatch choice (marked ``*``) can be checked against them.
   Every kernel is first compared with torch; a wrong result marks its rows INCORRECT and
   makes the exit status 1.
2. the "what a student writes" anchor: a naive NumPy loop convolution, timed on a few
   images and scaled linearly to the full batch.
3. the first-call (compile) times of a fresh process, with an empty numba cache (cold) and
   with the normal cache (warm), and the time of ``import cvcourse.kernels``.

Timing: each candidate (ours, torch) is called in rounds that alternate their order, every
call timed on its own; the reported time is the median of all calls of all rounds. Torch's
backward is ``torch.autograd.grad`` on an output computed once outside the timed region,
so it does not include the forward. Pooling forwards are the default calls on both sides
(``max_pool2d(x, 2, 2)``, no indices); the max-pool backward uses indices from an untimed
forward. The ``spread`` column (interquartile range / median) shows how noisy a row was.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numba
import numpy as np
import threadpoolctl
import torch
import torch.nn.functional as F
from tabulate import tabulate

import cvcourse.kernels as K
from cvcourse.fileio import atomic_path
from cvcourse.kernels.conv import choose_algorithm, conv_geometry
from cvcourse.kernels.threads import cpu_count

# The sibling module, also when this file is imported by path (tests/test_bench_smoke.py).
sys.path.insert(0, str(Path(__file__).resolve().parent))
import training_epoch  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
DTYPE = np.float32
SEED = 0

# Largest accepted max|ours - torch| as a fraction of max|torch| (float32, sums of <= 64k
# products): a real indexing bug is off by O(1) of the scale, rounding by about 1e-6.
RTOL = 1e-4

POOL_TARGET = 0.5
FIRST_CALL_TARGET_S = 0.5
# A 1-minute load average at or above this before the run: other processes hold a core.
BUSY_LOAD = 1.0
PASSES = ("forward", "backward")
CONV_ALGORITHMS = ("direct", "gemm")
POOL_OPS = ("max_pool2d", "avg_pool2d")


@dataclasses.dataclass(frozen=True)
class ConvWorkload:
    """A 3x3, padding-1, stride-1 convolution; its output shape is also a pooling workload."""

    label: str
    x_shape: tuple[int, int, int, int]
    out_channels: int
    target: float  # largest accepted cvcourse/torch ratio, forward and backward
    quick_batch: int  # batch size under --quick

    kernel = 3
    padding = 1

    @property
    def w_shape(self) -> tuple[int, int, int, int]:
        return (self.out_channels, self.x_shape[1], self.kernel, self.kernel)

    @property
    def y_shape(self) -> tuple[int, int, int, int]:
        n, _, h, w = self.x_shape  # padding 1 keeps a 3x3 convolution's H and W
        return (n, self.out_channels, h, w)

    @property
    def conv_name(self) -> str:
        return f"{self.label} conv {_dims(self.x_shape)}->{self.out_channels} 3x3"

    @property
    def pool_name(self) -> str:
        return f"{self.label} pool {_dims(self.y_shape)} 2x2/2"

    def quick(self) -> ConvWorkload:
        return dataclasses.replace(self, x_shape=(self.quick_batch, *self.x_shape[1:]))


WORKLOADS = (
    ConvWorkload("(a)", (64, 1, 28, 28), 8, target=1.0, quick_batch=8),
    ConvWorkload("(b)", (64, 3, 32, 32), 32, target=1.0, quick_batch=8),
    ConvWorkload("(c)", (32, 64, 16, 16), 64, target=1.5, quick_batch=4),
)


@dataclasses.dataclass(frozen=True)
class Timing:
    """How long to measure: ``rounds`` alternating rounds of about ``budget_s`` per candidate."""

    rounds: int
    budget_s: float
    min_calls: int
    max_calls: int
    student_images: int  # images the naive NumPy anchor runs on
    student_repeats: int


FULL = Timing(
    rounds=7, budget_s=0.02, min_calls=3, max_calls=200, student_images=4, student_repeats=3
)
QUICK = Timing(
    rounds=2, budget_s=0.002, min_calls=1, max_calls=5, student_images=1, student_repeats=1
)


@dataclasses.dataclass
class Row:
    """One line of the table: our median time against torch's for one configuration."""

    workload: str
    op: str
    pass_: str
    threads: int
    impl: str  # "auto", "direct", "gemm" (convolution) or "numba" (pooling)
    ours_ms: float
    torch_ms: float
    spread: float  # the larger relative interquartile range of ours and torch's calls
    target: float | None  # None: measured for comparison only
    correct: bool
    auto_pick: str | None = None  # for convolution: the algorithm "auto" dispatches to

    @property
    def ratio(self) -> float:
        return self.ours_ms / self.torch_ms

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        return self.correct and self.ratio <= self.target

    def as_json(self) -> dict:
        """The row as a JSON object (``pass_`` spelled ``pass``), with its ratio and verdict."""
        record = {("pass" if k == "pass_" else k): v for k, v in dataclasses.asdict(self).items()}
        return {**record, "ratio": self.ratio, "met": self.met}


# --- small helpers ----------------------------------------------------------------------------


def _dims(shape) -> str:
    return "x".join(str(s) for s in shape)


def _print(*args) -> None:
    print(*args, flush=True)


def _random(rng, shape) -> np.ndarray:
    return rng.standard_normal(shape, dtype=DTYPE)


def _tensor(a: np.ndarray, requires_grad: bool = False) -> torch.Tensor:
    return torch.from_numpy(a).requires_grad_(requires_grad)


def _close(ours, reference) -> bool:
    """Whether ``ours`` matches torch's ``reference`` within float32 rounding."""
    ref = reference.detach().numpy() if isinstance(reference, torch.Tensor) else reference
    ours = np.asarray(ours)
    if ours.shape != ref.shape:
        return False
    scale = max(float(np.abs(ref).max()), 1e-30)
    return float(np.abs(ours.astype(np.float64) - ref).max()) <= RTOL * scale


def _all_close(ours, references) -> bool:
    return all(_close(o, r) for o, r in zip(ours, references, strict=True))


@contextlib.contextmanager
def thread_count(n: int) -> Iterator[None]:
    """Limit torch (intra-op) and cvcourse (numba + BLAS) to ``n`` threads."""
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with K.threads(n):
            yield
    finally:
        torch.set_num_threads(previous)


# --- timing -----------------------------------------------------------------------------------


def _call_count(fn: Callable[[], object], timing: Timing) -> int:
    """Calls per round so that one round of ``fn`` takes about ``timing.budget_s``."""
    fn()  # warm: compile or load from cache, fault in the memory
    start = time.perf_counter()
    fn()
    seconds = time.perf_counter() - start
    calls = round(timing.budget_s / max(seconds, 1e-9))
    return min(max(calls, timing.min_calls), timing.max_calls)


SWITCH_PAUSE_S = 0.02


def _timed_calls(fn: Callable[[], object], calls: int) -> list[float]:
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


@dataclasses.dataclass(frozen=True)
class Stat:
    """One candidate's calls: the median and the interquartile range relative to it."""

    median_ms: float
    spread: float  # (75th - 25th percentile) / median: above ~0.3 the machine was busy

    @classmethod
    def of(cls, seconds: list[float]) -> Stat:
        if len(seconds) < 2:
            return cls(1e3 * seconds[0], 0.0)
        q1, median, q3 = statistics.quantiles(seconds, n=4)
        return cls(1e3 * statistics.median(seconds), (q3 - q1) / median)


def measure(candidates: dict[str, Callable[[], object]], timing: Timing) -> dict[str, Stat]:
    """Median milliseconds per call (and spread) of each candidate.

    The candidates take turns: each round runs every candidate's calls, in an order rotated
    from the previous round's, so that a noisy neighbour slows them all alike. The median
    is over every call of every round. The garbage collector is off while timing.
    """
    names = list(candidates)
    calls = {name: _call_count(candidates[name], timing) for name in names}
    samples: dict[str, list[float]] = {name: [] for name in names}
    gc_enabled = gc.isenabled()
    gc.disable()
    try:
        for r in range(timing.rounds):
            shift = r % len(names)
            for name in names[shift:] + names[:shift]:
                # Two OpenMP runtimes share this process (torch's and numba's). After a call,
                # one's idle threads spin for a while and take the cores the other needs;
                # a pause before each block lets them fall asleep, so neither pays for the
                # other. (OMP_WAIT_POLICY=PASSIVE would avoid it too, but slows both.)
                time.sleep(SWITCH_PAUSE_S)
                samples[name] += _timed_calls(candidates[name], calls[name])
    finally:
        if gc_enabled:
            gc.enable()
    return {name: Stat.of(times) for name, times in samples.items()}


# --- convolution ------------------------------------------------------------------------------


@dataclasses.dataclass
class ConvCase:
    """A convolution's inputs, and the timed calls on them (torch's tensors share their memory)."""

    x: np.ndarray
    w: np.ndarray
    b: np.ndarray
    dy: np.ndarray

    @classmethod
    def random(cls, wl: ConvWorkload, rng) -> ConvCase:
        return cls(
            _random(rng, wl.x_shape),
            _random(rng, wl.w_shape),
            _random(rng, (wl.out_channels,)),
            _random(rng, wl.y_shape),
        )

    def torch_forward(self) -> Callable[[], torch.Tensor]:
        xt, wt, bt = _tensor(self.x), _tensor(self.w), _tensor(self.b)
        return lambda: F.conv2d(xt, wt, bt, 1, 1)

    def torch_backward(self) -> Callable[[], tuple[torch.Tensor, ...]]:
        """``autograd.grad`` of a conv2d output computed here, once (not in the timing)."""
        inputs = (_tensor(self.x, True), _tensor(self.w, True), _tensor(self.b, True))
        y = F.conv2d(*inputs, stride=1, padding=1)
        dy = _tensor(self.dy)
        return lambda: torch.autograd.grad(y, inputs, dy, retain_graph=True)

    def ours_forward(self, algorithm: str) -> Callable[[], np.ndarray]:
        return lambda: K.conv2d(self.x, self.w, self.b, 1, 1, algorithm=algorithm)

    def ours_backward(self, algorithm: str) -> Callable[[], tuple]:
        return lambda: K.conv2d_backward(
            self.dy, self.x, self.w, 1, 1, 1, 1, True, algorithm=algorithm
        )


def _conv_impls(case: ConvCase, pass_: str) -> dict[str, Callable[[], object]]:
    """Our callables for ``pass_``: ``auto`` and every algorithm, keyed by name."""
    make = case.ours_forward if pass_ == "forward" else case.ours_backward
    return {impl: make(impl) for impl in ("auto", *CONV_ALGORITHMS)}


def _torch_conv(case: ConvCase, pass_: str) -> Callable[[], object]:
    return case.torch_forward() if pass_ == "forward" else case.torch_backward()


def check_conv(name: str, case: ConvCase) -> dict[tuple[str, str], bool]:
    """Compare every (impl, pass) with torch once; report and return which ones match."""
    verdicts = {}
    for pass_ in PASSES:
        reference = _torch_conv(case, pass_)()
        for impl, ours in _conv_impls(case, pass_).items():
            result = ours()
            ok = _close(result, reference) if pass_ == "forward" else _all_close(result, reference)
            verdicts[impl, pass_] = ok
            if not ok:
                _print(f"  INCORRECT: {name}: conv2d {pass_} ({impl}) does not match torch")
    return verdicts


def auto_choice(wl: ConvWorkload) -> str:
    geom = conv_geometry(wl.x_shape, wl.w_shape, 1, wl.padding, 1, 1)
    return choose_algorithm(geom)


def conv_rows(wl: ConvWorkload, case: ConvCase, verdicts, pass_: str, n: int, timing: Timing):
    """Time auto, each algorithm and torch for one pass on ``n`` threads; one Row per impl."""
    candidates = {**_conv_impls(case, pass_), "torch": _torch_conv(case, pass_)}
    with thread_count(n):
        ms = measure(candidates, timing)
    pick = auto_choice(wl)
    return [
        Row(
            workload=wl.conv_name,
            op="conv2d",
            pass_=pass_,
            threads=n,
            impl=impl,
            ours_ms=ms[impl].median_ms,
            torch_ms=ms["torch"].median_ms,
            spread=max(ms[impl].spread, ms["torch"].spread),
            target=wl.target if impl == "auto" else None,
            correct=verdicts[impl, pass_],
            auto_pick=pick,
        )
        for impl in ("auto", *CONV_ALGORITHMS)
    ]


# --- pooling ----------------------------------------------------------------------------------


@dataclasses.dataclass
class PoolCase:
    """A 2x2, stride-2 pooling of a convolution's output shape."""

    x: np.ndarray
    dy: np.ndarray

    kernel = 2
    stride = 2

    @classmethod
    def random(cls, wl: ConvWorkload, rng) -> PoolCase:
        n, c, h, w = wl.y_shape
        return cls(_random(rng, wl.y_shape), _random(rng, (n, c, h // 2, w // 2)))

    def ours(self, op: str, pass_: str) -> Callable[[], object]:
        """Our ``op`` (``max_pool2d``/``avg_pool2d``) for ``pass_``, as called in training."""
        k, s = self.kernel, self.stride
        if op == "max_pool2d":
            if pass_ == "forward":
                return lambda: K.max_pool2d(self.x, k, s)
            _, indices = K.max_pool2d(self.x, k, s, return_indices=True)
            return lambda: K.max_pool2d_backward(self.dy, self.x, indices, k, s)
        if pass_ == "forward":
            return lambda: K.avg_pool2d(self.x, k, s)
        return lambda: K.avg_pool2d_backward(self.dy, self.x.shape, k, s)

    def torch(self, op: str, pass_: str) -> Callable[[], object]:
        """Torch's ``op`` for ``pass_``; the backward's forward runs here, untimed."""
        pool = getattr(F, op)
        if pass_ == "forward":
            xt = _tensor(self.x)
            return lambda: pool(xt, self.kernel, self.stride)
        xt = _tensor(self.x, True)
        y = pool(xt, self.kernel, self.stride)
        dy = _tensor(self.dy)
        return lambda: torch.autograd.grad(y, (xt,), dy, retain_graph=True)[0]


def check_pool(name: str, case: PoolCase) -> dict[tuple[str, str], bool]:
    """Compare both pools, both passes (and max pooling's indices) with torch once."""
    verdicts = {}
    for op in POOL_OPS:
        for pass_ in PASSES:
            verdicts[op, pass_] = _close(case.ours(op, pass_)(), case.torch(op, pass_)())
    _, ours_idx = K.max_pool2d(case.x, case.kernel, case.stride, return_indices=True)
    _, torch_idx = F.max_pool2d(_tensor(case.x), case.kernel, case.stride, return_indices=True)
    same_indices = np.array_equal(ours_idx, torch_idx.numpy())
    verdicts["max_pool2d", "forward"] &= same_indices
    for (op, pass_), ok in verdicts.items():
        if not ok:
            _print(f"  INCORRECT: {name}: {op} {pass_} does not match torch")
    return verdicts


def pool_row(
    wl: ConvWorkload, case: PoolCase, verdicts, op: str, pass_: str, n: int, timing: Timing
) -> Row:
    """Time our ``op`` against torch's for one pass on ``n`` threads."""
    with thread_count(n):
        ms = measure({"ours": case.ours(op, pass_), "torch": case.torch(op, pass_)}, timing)
    return Row(
        workload=wl.pool_name,
        op=op,
        pass_=pass_,
        threads=n,
        impl="numba",
        ours_ms=ms["ours"].median_ms,
        torch_ms=ms["torch"].median_ms,
        spread=max(ms["ours"].spread, ms["torch"].spread),
        target=POOL_TARGET,
        correct=verdicts[op, pass_],
    )


# --- the table --------------------------------------------------------------------------------

# (header, alignment) of each column
COLUMNS = (
    ("workload", "left"),
    ("op", "left"),
    ("pass", "left"),
    ("thr", "right"),
    ("impl", "left"),
    ("cvcourse ms", "right"),
    ("torch ms", "right"),
    ("spread", "right"),
    ("ratio", "right"),
    ("target", "right"),
    ("met?", "left"),
)


def _table(header, rows, align) -> str:
    """The one way this benchmark prints a table (cells already formatted as text)."""
    return tabulate(rows, headers=header, tablefmt="simple", colalign=align, disable_numparse=True)


def _impl_label(row: Row) -> str:
    if row.op != "conv2d":
        return row.impl
    if row.impl == "auto":
        return f"auto ({row.auto_pick})"
    return f"{row.impl} *" if row.impl == row.auto_pick else row.impl


def _met_label(row: Row) -> str:
    if not row.correct:
        return "INCORRECT"
    if row.met is None:
        return ""
    return "yes" if row.met else "NO"


def row_cells(row: Row) -> list[str]:
    """One row of the table, as text in the order of :data:`COLUMNS`."""
    target = "" if row.target is None else f"<={row.target:.1f}x"
    return [
        row.workload,
        row.op,
        row.pass_,
        str(row.threads),
        _impl_label(row),
        f"{row.ours_ms:.3f}",
        f"{row.torch_ms:.3f}",
        f"{100 * row.spread:.0f}%",
        f"{row.ratio:.2f}x",
        target,
        _met_label(row),
    ]


def format_table(rows: list[Row]) -> str:
    """The table of every measured row."""
    header = [name for name, _ in COLUMNS]
    return _table(header, [row_cells(row) for row in rows], [align for _, align in COLUMNS])


def _progress(row: Row) -> None:
    # The table is printed once every row is measured (its columns fit the widest cell);
    # meanwhile each row is reported on stderr as soon as it is measured.
    print("measured: " + "  ".join(c for c in row_cells(row) if c), file=sys.stderr, flush=True)


def run_table(workloads, threads: list[int], only: str | None, timing: Timing) -> list[Row]:
    """Check, then time, every workload; print the table (and each row on stderr as soon
    as it is measured)."""
    rng = np.random.default_rng(SEED)
    rows: list[Row] = []
    if only == "train":
        return rows
    for wl in workloads:
        if only in (None, "conv"):
            case = ConvCase.random(wl, rng)
            verdicts = check_conv(wl.conv_name, case)
            for pass_ in PASSES:
                for n in threads:
                    for row in conv_rows(wl, case, verdicts, pass_, n, timing):
                        rows.append(row)
                        _progress(row)
        if only in (None, "pool"):
            case = PoolCase.random(wl, rng)
            verdicts = check_pool(wl.pool_name, case)
            for op in POOL_OPS:
                for pass_ in PASSES:
                    for n in threads:
                        row = pool_row(wl, case, verdicts, op, pass_, n, timing)
                        rows.append(row)
                        _progress(row)
    _print(format_table(rows))
    return rows


# --- what a student writes --------------------------------------------------------------------


def student_conv2d_forward(x, w, b, pad):
    """A first, loop-by-loop convolution: one np.sum per output element."""
    num_images, _, height, width = x.shape
    num_filters, _, kh, kw = w.shape
    out_h = height + 2 * pad - kh + 1
    out_w = width + 2 * pad - kw + 1
    x_padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out = np.zeros((num_images, num_filters, out_h, out_w), dtype=x.dtype)
    for n in range(num_images):
        for f in range(num_filters):
            for i in range(out_h):
                for j in range(out_w):
                    window = x_padded[n, :, i : i + kh, j : j + kw]
                    out[n, f, i, j] = np.sum(window * w[f]) + b[f]
    return out


def student_conv2d_backward(dout, x, w, pad):
    """The matching backward: every output sends its gradient back to its window."""
    num_images, _, height, width = x.shape
    num_filters, _, kh, kw = w.shape
    _, _, out_h, out_w = dout.shape
    x_padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dx_padded = np.zeros_like(x_padded)
    dw = np.zeros_like(w)
    db = np.zeros(num_filters, dtype=x.dtype)
    for n in range(num_images):
        for f in range(num_filters):
            for i in range(out_h):
                for j in range(out_w):
                    g = dout[n, f, i, j]
                    dw[f] += g * x_padded[n, :, i : i + kh, j : j + kw]
                    dx_padded[n, :, i : i + kh, j : j + kw] += g * w[f]
                    db[f] += g
    dx = dx_padded[:, :, pad : pad + height, pad : pad + width]
    return dx, dw, db


def _student_case(case: ConvCase, images: int) -> ConvCase:
    return ConvCase(case.x[:images], case.w, case.b, np.ascontiguousarray(case.dy[:images]))


def _median_seconds(fn: Callable[[], object], repeats: int) -> float:
    return statistics.median(_timed_calls(fn, repeats))


def student_anchor(wl: ConvWorkload, timing: Timing) -> dict:
    """Time the naive NumPy loops on a few images (scaled to the batch) vs cvcourse and torch.

    The loops' cost is linear in the images, so scaling is exact up to noise. cvcourse and
    torch run on the full batch, 1 thread each (NumPy's elementwise loops are single-threaded).
    """
    case = ConvCase.random(wl, np.random.default_rng(SEED))
    small = _student_case(case, timing.student_images)
    student = {
        "forward": lambda: student_conv2d_forward(small.x, small.w, small.b, wl.padding),
        "backward": lambda: student_conv2d_backward(small.dy, small.x, small.w, wl.padding),
    }
    scale = wl.x_shape[0] / timing.student_images
    result = {"workload": wl.conv_name, "images_timed": timing.student_images, "passes": {}}
    for pass_ in PASSES:
        reference = _torch_conv(small, pass_)()
        answer = student[pass_]()
        correct = _close(answer, reference) if pass_ == "forward" else _all_close(answer, reference)
        student_ms = 1e3 * scale * _median_seconds(student[pass_], timing.student_repeats)
        with thread_count(1):
            ms = measure(
                {"cvcourse": _conv_impls(case, pass_)["auto"], "torch": _torch_conv(case, pass_)},
                timing,
            )
        result["passes"][pass_] = {
            "student_ms": student_ms,
            "cvcourse_ms": ms["cvcourse"].median_ms,
            "torch_ms": ms["torch"].median_ms,
            "student_correct": correct,
        }
    return result


def print_student(anchor: dict) -> None:
    _print(
        f"\nWhat a student writes: naive NumPy loops (np.sum per output), {anchor['workload']},"
        f" 1 thread;\nloops timed on {anchor['images_timed']} image(s) and scaled linearly "
        "to the full batch."
    )
    header = ["pass", "student ms", "cvcourse ms", "torch ms", "student/torch"]
    header += ["student/cvcourse", "matches torch?"]
    rows = []
    for pass_, r in anchor["passes"].items():
        student, ours, theirs = r["student_ms"], r["cvcourse_ms"], r["torch_ms"]
        rows.append(
            [
                pass_,
                f"{student:.1f}",
                f"{ours:.3f}",
                f"{theirs:.3f}",
                f"{student / theirs:.0f}x",
                f"{student / ours:.0f}x",
                "yes" if r["student_correct"] else "NO",
            ]
        )
    _print(_table(header, rows, ["left", *["right"] * 5, "left"]))


# --- first call in a fresh process ------------------------------------------------------------

# Run by a fresh interpreter: times `import cvcourse.kernels`, then the first call of each
# kernel family on a small float32 input, and prints the seconds as one JSON line.
FIRST_CALL_SCRIPT = """
import json, time
start = time.perf_counter()
import cvcourse.kernels as K
seconds = {"import": time.perf_counter() - start}
import numpy as np
rng = np.random.default_rng(0)
x = rng.standard_normal((2, 3, 12, 12), dtype=np.float32)
w = rng.standard_normal((4, 3, 3, 3), dtype=np.float32)
b = rng.standard_normal(4, dtype=np.float32)
p = rng.standard_normal((2, 4, 12, 12), dtype=np.float32)

def conv(algorithm):
    y = K.conv2d(x, w, b, 1, 1, algorithm=algorithm)
    K.conv2d_backward(y, x, w, 1, 1, 1, 1, True, algorithm=algorithm)

def max_pool():
    y, idx = K.max_pool2d(p, 2, 2, return_indices=True)
    K.max_pool2d_backward(y, p, idx, 2, 2)

def avg_pool():
    y = K.avg_pool2d(p, 2, 2)
    K.avg_pool2d_backward(y, p.shape, 2, 2)

calls = {
    "conv2d direct fwd+bwd": lambda: conv("direct"),
    "conv2d gemm fwd+bwd": lambda: conv("gemm"),
    "max_pool2d fwd+bwd": max_pool,
    "avg_pool2d fwd+bwd": avg_pool,
}
for name, call in calls.items():
    start = time.perf_counter()
    call()
    seconds[name] = time.perf_counter() - start
print(json.dumps(seconds))
"""


def first_calls(cache_dir: str | None) -> dict[str, float]:
    """Seconds of the import and of each first call in a fresh interpreter.

    ``cache_dir`` becomes ``NUMBA_CACHE_DIR`` (an empty one forces compilation); ``None``
    keeps the normal cache (the ``__pycache__`` next to the kernels' sources).
    """
    env = dict(os.environ)
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = cache_dir
    proc = subprocess.run(
        [sys.executable, "-c", FIRST_CALL_SCRIPT],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"first-call subprocess failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure_first_calls() -> dict:
    """Cold (empty cache) and warm (cache hit) first calls, each in a fresh process.

    The warm run is preceded by an untimed one, which refreshes the cache if the kernels'
    sources changed since it was written.
    """
    _print(
        "\nFirst calls in a fresh process: compiling with an empty numba cache (about a minute) ..."
    )
    with tempfile.TemporaryDirectory(prefix="cvcourse-numba-cold-") as empty:
        cold = first_calls(empty)
    first_calls(None)
    warm = first_calls(None)
    return {"cold_s": cold, "warm_s": warm}


def _first_call_total(seconds: dict[str, float]) -> float:
    return sum(v for k, v in seconds.items() if k != "import")


def print_first_calls(startup: dict) -> None:
    cold, warm = startup["cold_s"], startup["warm_s"]
    _print("(cold: empty NUMBA_CACHE_DIR; warm: cache hit)")
    rows = []
    for name in cold:
        label = "import cvcourse.kernels" if name == "import" else f"first {name}"
        rows.append([label, f"{cold[name]:.2f}", f"{warm[name]:.3f}"])
    total = _first_call_total(warm)
    rows.append(["first calls, total", f"{_first_call_total(cold):.2f}", f"{total:.3f}"])
    _print(_table(["", "cold s", "warm s"], rows, ["left", "right", "right"]))
    verdict = "yes" if total < FIRST_CALL_TARGET_S else "NO"
    _print(f"target warm < {FIRST_CALL_TARGET_S} s: {verdict}")


# --- summary, JSON, command line --------------------------------------------------------------


def summarize(rows: list[Row], startup: dict | None) -> dict:
    targeted = [row for row in rows if row.target is not None]
    met = sum(bool(row.met) for row in targeted)
    total = len(targeted)
    if startup is not None:
        total += 1
        met += _first_call_total(startup["warm_s"]) < FIRST_CALL_TARGET_S
    return {"targets": total, "met": int(met), "all_correct": all(row.correct for row in rows)}


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def print_summary(summary: dict) -> None:
    _print(
        f"\nSummary: {summary['met']} of {summary['targets']} targets met "
        f"(conv <=1.0x torch on (a), (b) and <=1.5x on (c); pooling <={POOL_TARGET}x; "
        f"cached first calls < {FIRST_CALL_TARGET_S} s)."
    )
    if not summary["all_correct"]:
        _print("Some kernels do NOT match torch (rows marked INCORRECT): their times mean nothing.")


def environment() -> dict:
    blas = [
        f"{i['internal_api']} {i.get('version')}"
        for i in threadpoolctl.threadpool_info()
        if i["user_api"] == "blas"
    ]
    return {
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "numba": numba.__version__,
        "torch": torch.__version__,
        "numpy_blas": ", ".join(blas) or "?",
        "cpus": cpu_count(),
    }


def write_json(path: Path, document: dict) -> None:
    """Write ``document`` to ``path`` atomically (``cvcourse.fileio.atomic_path``)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(document, indent=2))


def _thread_list(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected e.g. 1,2, got {text!r}") from exc
    limit = numba.config.NUMBA_NUM_THREADS
    if not counts or not all(1 <= n <= limit for n in counts):
        raise argparse.ArgumentTypeError(f"thread counts must be between 1 and {limit}")
    return counts


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small batches, few repetitions (a smoke test, not a measurement)",
    )
    parser.add_argument(
        "--threads",
        type=_thread_list,
        default=[1, 2],
        metavar="N[,N...]",
        help="thread counts to measure (default: 1,2)",
    )
    parser.add_argument(
        "--only", choices=("conv", "pool", "train"), help="measure only these kernels / training"
    )
    parser.add_argument(
        "--no-cold", action="store_true", help="skip the first-call timings in fresh processes"
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results here")
    return parser.parse_args(argv)


def print_header(env: dict, quick: bool, load: float) -> None:
    kind = "quick run: small batches, few repetitions" if quick else "full run"
    _print(f"cvcourse.kernels vs torch, float32, median time per call ({kind}).")
    _print(
        f"python {env['python']}, numpy {env['numpy']} ({env['numpy_blas']}), "
        f"numba {env['numba']}, torch {env['torch']}, {env['cpus']} CPUs, "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}."
    )
    _print(
        "ratio = cvcourse/torch (lower is better); conv impl '*' = the algorithm auto picks;\n"
        "spread = interquartile range / median of the calls (large: the machine was busy)."
    )
    _print(f"load average before the run: {load} (1 min), on {env['cpus']} CPUs")
    if load >= BUSY_LOAD:
        _print(
            "WARNING: the machine is busy: multi-threaded kernels wait for a free core (times\n"
            "in multiples of the scheduler's slice, ~4-8 ms); rerun on an idle machine."
        )
    _print()


def run_training_epoch(threads: list[int], timing: Timing) -> dict:
    """One epoch of the showcase CNN, cvcourse vs torch (``training_epoch.py``)."""
    difference = training_epoch.same_training()
    rows = training_epoch.measure(threads, repeats=max(1, timing.rounds))
    training_epoch.print_rows(rows, out=_print)
    same = difference < 1e-3
    _print(
        f"same training: parameters after one epoch differ by {difference:.1e} (float32), "
        + ("as expected" if same else "INCORRECT: the two sides do not train alike")
    )
    return {"rows": rows, "max_parameter_difference": difference, "same_training": same}


def run(args: argparse.Namespace) -> dict:
    """Measure everything ``args`` asks for, printing as it goes; return the JSON document."""
    timing = QUICK if args.quick else FULL
    workloads = [wl.quick() for wl in WORKLOADS] if args.quick else list(WORKLOADS)
    env = environment()
    load_before = _load()
    print_header(env, args.quick, load_before)
    rows = run_table(workloads, args.threads, args.only, timing)
    anchor = None
    if args.only in (None, "conv"):
        anchor = student_anchor(workloads[0], timing)
        print_student(anchor)
    training = None
    if args.only in (None, "train"):
        training = run_training_epoch(args.threads, timing)
    startup = None
    if not args.no_cold:
        startup = measure_first_calls()
        print_first_calls(startup)
    summary = summarize(rows, startup)
    print_summary(summary)
    load_after = _load()
    _print(f"load average after the run: {load_after} (1 min)")
    return {
        "environment": env,
        "load_average": {"before": load_before, "after": load_after},
        "quick": args.quick,
        "threads": args.threads,
        "rows": [row.as_json() for row in rows],
        "student": anchor,
        "training_epoch": training,
        "first_calls": startup,
        "summary": summary,
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    document = run(args)
    if args.json is not None:
        write_json(args.json, document)
    training = document["training_epoch"]
    trained_alike = training is None or training["same_training"]
    return 0 if document["summary"]["all_correct"] and trained_alike else 1


if __name__ == "__main__":
    sys.exit(main())
