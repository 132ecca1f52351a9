"""numba kernels for 2-D convolution and pooling, forward and backward.

Names and semantics follow ``torch.nn.functional`` (NCHW, cross-correlation, torch's output
sizes, padding, max-pool tie-breaking and avg-pool divisors), for float32 and float64:

    conv2d, conv2d_backward             convolution (direct or im2col + GEMM, chosen per shape)
    max_pool2d, max_pool2d_backward     max pooling, with torch's flat argmax indices
    avg_pool2d, avg_pool2d_backward     average pooling
    im2col, col2im                      convolution as a matrix product (F.unfold / F.fold)
    threads                             context manager: how many threads the kernels use

Every function validates its arguments before any compiled code runs; the kernels are
compiled on first use and cached on disk (``python -m cvcourse.kernels.warmup`` compiles
them all ahead of time).
"""

from .columns import col2im, im2col
from .conv import conv2d, conv2d_backward
from .pool import avg_pool2d, avg_pool2d_backward, max_pool2d, max_pool2d_backward
from .threads import threads

__all__ = [
    "avg_pool2d",
    "avg_pool2d_backward",
    "col2im",
    "conv2d",
    "conv2d_backward",
    "im2col",
    "max_pool2d",
    "max_pool2d_backward",
    "threads",
]
