"""Compile every kernel ahead of time: ``python -m cvcourse.kernels.warmup``.

numba compiles a kernel on its first call (about a minute for all of them) and caches the
machine code on disk (``cache=True``). ``make setup`` runs this module once, so that no
student waits for the compiler in a lecture; afterwards a new process loads the kernels
from the cache in a fraction of a second.

The calls below go through the public functions with small inputs chosen to reach every
compiled path (direct and im2col + GEMM convolution, each pooling variant), in float32 and
float64.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from . import (
    avg_pool2d,
    avg_pool2d_backward,
    col2im,
    conv2d,
    conv2d_backward,
    im2col,
    max_pool2d,
    max_pool2d_backward,
)

DTYPES = (np.float32, np.float64)


def _conv_calls(rng, dtype):
    x = rng.standard_normal((2, 4, 12, 12)).astype(dtype)
    w = rng.standard_normal((4, 2, 3, 3)).astype(dtype)
    b = rng.standard_normal(4).astype(dtype)
    for algorithm, stride in (("direct", 1), ("gemm", 2)):
        for bias in (b, None):
            y = conv2d(x, w, bias, stride, 1, 1, 2, algorithm=algorithm)
            conv2d_backward(y, x, w, stride, 1, 1, 2, bias is not None, algorithm=algorithm)
    cols = im2col(x, 3, padding=1)
    col2im(cols, (12, 12), 3, padding=1)


def _pool_calls(rng, dtype):
    x = rng.standard_normal((2, 3, 8, 8)).astype(dtype)
    for kernel, stride, padding, dilation in ((2, 2, 0, 1), (3, 1, 1, 1), (3, 2, 1, 2)):
        y, idx = max_pool2d(x, kernel, stride, padding, dilation, return_indices=True)
        max_pool2d_backward(y, x, idx, kernel, stride, padding, dilation)
    for kernel, stride, padding in ((2, 2, 0), (3, 2, 1)):
        for count_include_pad in (True, False):
            y = avg_pool2d(x, kernel, stride, padding, count_include_pad)
            avg_pool2d_backward(y, x.shape, kernel, stride, padding, count_include_pad)


STEPS = (("convolution", _conv_calls), ("pooling", _pool_calls))


def warm_up(verbose: bool = True) -> float:
    """Call every kernel once per dtype; returns the seconds it took."""
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for dtype in DTYPES:
        for name, calls in STEPS:
            step = time.perf_counter()
            if verbose:
                print(f"  compiling {name} kernels, {np.dtype(dtype).name} ...", end="", flush=True)
            calls(rng, dtype)
            if verbose:
                print(f" {time.perf_counter() - step:.1f} s", flush=True)
    return time.perf_counter() - start


def main(argv=None) -> int:
    """Command line: compile every kernel and print how long it took (``--quiet``: only that)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quiet", action="store_true", help="print only the total")
    args = parser.parse_args(argv)
    if not args.quiet:
        print("cvcourse: compiling the numba kernels (once; later runs load them from cache)")
    seconds = warm_up(verbose=not args.quiet)
    print(f"cvcourse: kernels ready in {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
