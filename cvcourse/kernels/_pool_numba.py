"""Compiled numba kernels for 2-D max and average pooling, forward and backward.

These are the loops behind :mod:`cvcourse.kernels.pool`, which validates every argument
first; nothing here checks shapes. Every array is C-contiguous and 4-D (N, C, H, W), so each
kernel compiles exactly once per dtype; the parallel loop runs over the ``N*C`` planes, which
are independent (no two threads ever write the same element).

Two families:

* ``*_2x2``: the course's workhorse, a 2x2 window with stride 2, no padding, no dilation.
  The loads have the constant stride 2, which LLVM vectorises, and windows do not
  overlap, so each input belongs to at most one window: the average backward writes every
  ``dx`` once instead of zeroing and accumulating, and the max backward stores instead of
  adding.
* the general kernels: any window, stride, padding and dilation (dilation for max pooling
  only), following torch's CPU loops (``MaxPoolKernel.cpp``/``AvgPoolKernel.cpp``) term for
  term: same tap order, same accumulation order, same divisor. Results are therefore equal
  to torch's, bit for bit in the common cases.

Torch's semantics reproduced here:

* max pooling scans each window row-major and takes a tap when ``v > best or isnan(v)``,
  starting from ``best = -inf`` and the index of the window's first in-bounds tap: ties keep
  the first maximum, a NaN wins (the last NaN of the window), and an all ``-inf`` window
  points at its first in-bounds tap.
* average pooling sums in the input's dtype and divides by the window area, either counted
  with its padding (``count_include_pad``) or only over the taps inside the input.

The backward kernels never trust ``indices``: they write only through an index that is a
tap of its own window, count the others, and the caller raises on a non-zero count. So no
value of ``indices`` can make a kernel write out of bounds.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._jit import JitOptions

# cache=True everywhere: a new process loads the machine code instead of recompiling.
# No fastmath: max pooling needs NaN semantics, and average pooling keeps torch's summation
# order so that its results match torch's exactly.
_JIT = JitOptions(cache=True, parallel=True, nogil=True)
_HELPER = JitOptions(cache=True, nogil=True)


@njit(**_HELPER)
def window_bounds(n_out, size, kernel, stride, padding, dilation):
    """Per output position along one axis: first and one-past-last in-bounds tap.

    Window ``o`` starts at ``o*stride - padding`` and visits taps ``lo, lo + dilation, ...``
    below ``hi``; ``lo >= hi`` means the window lies entirely in the padding (possible only
    with dilation). These are torch's ``ih0``/``ih1`` after its ``while (ih0 < 0) ih0 += d``.
    """
    lo = np.empty(n_out, dtype=np.int64)
    hi = np.empty(n_out, dtype=np.int64)
    for o in range(n_out):
        start = o * stride - padding
        hi[o] = min(start + (kernel - 1) * dilation + 1, size)
        if start < 0:
            start += (-start + dilation - 1) // dilation * dilation
        lo[o] = start
    return lo, hi


# --------------------------------------------------------------------------------------
# max pooling
# --------------------------------------------------------------------------------------


@njit(**_JIT)
def max_pool2d_2x2(x, y, indices, with_indices):
    """2x2 window, stride 2, no padding: ``y`` and (if ``with_indices``) ``indices``.

    Without indices, ``indices`` may be any 4-D int64 array; it is not touched.
    """
    n, c, h, w = x.shape
    ho, wo = y.shape[2], y.shape[3]
    for p in prange(n * c):
        xp = x[p // c, p % c]
        yp = y[p // c, p % c]
        for oy in range(ho):
            r0 = xp[2 * oy]
            r1 = xp[2 * oy + 1]
            yr = yp[oy]
            if with_indices:
                ir = indices[p // c, p % c, oy]
                top = 2 * oy * w
                for ox in range(wo):
                    # Written as selects, not if-blocks: LLVM then emits branch-free code,
                    # about three times faster than the branches on random data.
                    best = r0[2 * ox]
                    arg = top + 2 * ox
                    v = r0[2 * ox + 1]
                    take = (v > best) | (v != v)
                    best = v if take else best
                    arg = top + 2 * ox + 1 if take else arg
                    v = r1[2 * ox]
                    take = (v > best) | (v != v)
                    best = v if take else best
                    arg = top + w + 2 * ox if take else arg
                    v = r1[2 * ox + 1]
                    take = (v > best) | (v != v)
                    yr[ox] = v if take else best
                    ir[ox] = top + w + 2 * ox + 1 if take else arg
            else:
                for ox in range(wo):
                    best = r0[2 * ox]
                    v = r0[2 * ox + 1]
                    best = v if (v > best) | (v != v) else best
                    v = r1[2 * ox]
                    best = v if (v > best) | (v != v) else best
                    v = r1[2 * ox + 1]
                    yr[ox] = v if (v > best) | (v != v) else best


@njit(**_JIT)
def max_pool2d_general(x, y, indices, kh, kw, sh, sw, ph, pw, dh, dw):
    """Any window: ``y`` and ``indices`` (flat ``ih*W + iw`` into each input plane)."""
    n, c, h, w = x.shape
    ho, wo = y.shape[2], y.shape[3]
    rlo, rhi = window_bounds(ho, h, kh, sh, ph, dh)
    clo, chi = window_bounds(wo, w, kw, sw, pw, dw)
    neg_inf = x.dtype.type(-np.inf)
    for p in prange(n * c):
        xp = x[p // c, p % c]
        yp = y[p // c, p % c]
        ip = indices[p // c, p % c]
        for oy in range(ho):
            r0, r1 = rlo[oy], rhi[oy]
            for ox in range(wo):
                c0, c1 = clo[ox], chi[ox]
                best = neg_inf
                # torch's initial index; for a window wholly in the padding it stays, and
                # then points outside the window (even outside the plane), as torch's does.
                arg = r0 * w + c0
                for ih in range(r0, r1, dh):
                    row = xp[ih]
                    for iw in range(c0, c1, dw):
                        v = row[iw]
                        if v > best or np.isnan(v):
                            best = v
                            arg = ih * w + iw
                yp[oy, ox] = best
                ip[oy, ox] = arg


@njit(**_JIT)
def max_pool2d_backward_2x2(dy, indices, dx):
    """2x2/stride-2 backward: ``dx = 0``, then ``dx.flat[indices] = dy`` per plane.

    Returns the number of indices that are not a tap of their own window. Each plane's
    indices are all checked first (a flat loop, which vectorises), and the plane is written
    only if every one is valid; with no overlap, each ``dx`` receives at most one value,
    so plain stores replace torch's ``+=``.
    """
    n, c, h, w = dx.shape
    ho, wo = dy.shape[2], dy.shape[3]
    m = ho * wo
    # flat index of each window's top-left tap, the same in every plane
    corner = np.empty(m, dtype=np.int64)
    for oy in range(ho):
        for ox in range(wo):
            corner[oy * wo + ox] = 2 * oy * w + 2 * ox
    dx_planes = dx.reshape((n * c, h * w))
    dy_planes = dy.reshape((n * c, m))
    index_planes = indices.reshape((n * c, m))
    zero = dx.dtype.type(0)
    # one count per plane: see max_pool2d_backward_general
    bad = np.zeros(n * c, dtype=np.int64)
    for p in prange(n * c):
        ip = index_planes[p]
        nbad = 0
        for q in range(m):
            off = ip[q] - corner[q]
            # w >= 2, so the four offsets are distinct
            nbad += (off != 0) & (off != 1) & (off != w) & (off != w + 1)
        bad[p] = nbad
        if nbad:
            continue  # the caller raises; this plane of dx is left unwritten
        flat = dx_planes[p]
        gp = dy_planes[p]
        for t in range(h * w):
            flat[t] = zero
        for q in range(m):
            flat[ip[q]] = gp[q]
    return bad.sum()


@njit(**_HELPER)
def _tap_table(n_out, size, lo, hi, dilation):
    """``is_tap[o, i]``: whether position ``i`` (along one axis) is a tap of window ``o``."""
    is_tap = np.zeros((n_out, size), dtype=np.bool_)
    for o in range(n_out):
        for i in range(lo[o], hi[o], dilation):
            is_tap[o, i] = True
    return is_tap


@njit(**_JIT)
def max_pool2d_backward_general(dy, indices, dx, kh, kw, sh, sw, ph, pw, dh, dw):
    """Any window: ``dx = 0``, then ``dx.flat[indices] += dy`` per plane, in torch's order.

    An index is used only if it is a tap of its own window; others are counted and the
    count returned. Windows wholly in the padding (output ``-inf``) have no tap to route
    their gradient to: it is dropped, whatever their index.
    """
    n, c, h, w = dx.shape
    ho, wo = dy.shape[2], dy.shape[3]
    plane = h * w
    rlo, rhi = window_bounds(ho, h, kh, sh, ph, dh)
    clo, chi = window_bounds(wo, w, kw, sw, pw, dw)
    row_is_tap = _tap_table(ho, h, rlo, rhi, dh)
    col_is_tap = _tap_table(wo, w, clo, chi, dw)
    # Row and column of each flat index, looked up rather than computed: an integer
    # division per output made this kernel several times slower than torch's.
    row_of = np.empty(plane, dtype=np.int32)
    col_of = np.empty(plane, dtype=np.int32)
    for ih in range(h):
        for iw in range(w):
            row_of[ih * w + iw] = ih
            col_of[ih * w + iw] = iw
    dx_planes = dx.reshape((n * c, plane))
    zero = dx.dtype.type(0)
    # one count per plane rather than a prange reduction, which numba's parfor pass
    # cannot analyse through the loop's `continue`s
    bad = np.zeros(n * c, dtype=np.int64)
    for p in prange(n * c):
        dyp = dy[p // c, p % c]
        ip = indices[p // c, p % c]
        flat = dx_planes[p]
        for t in range(plane):
            flat[t] = zero
        nbad = 0
        for oy in range(ho):
            if rlo[oy] >= rhi[oy]:
                continue
            row_ok = row_is_tap[oy]
            ir = ip[oy]
            gr = dyp[oy]
            for ox in range(wo):
                if clo[ox] >= chi[ox]:
                    continue
                k = ir[ox]
                if k < 0 or k >= plane:
                    nbad += 1
                elif row_ok[row_of[k]] and col_is_tap[ox, col_of[k]]:
                    flat[k] += gr[ox]
                else:
                    nbad += 1
        bad[p] = nbad
    return bad.sum()


# --------------------------------------------------------------------------------------
# average pooling
# --------------------------------------------------------------------------------------


@njit(**_JIT)
def avg_pool2d_2x2(x, y):
    """2x2 window, stride 2, no padding: ``y = (((a + b) + c) + d) / 4`` in torch's order."""
    n, c, h, w = x.shape
    ho, wo = y.shape[2], y.shape[3]
    quarter = x.dtype.type(0.25)  # exact: dividing by 4 and multiplying by 1/4 agree
    for p in prange(n * c):
        xp = x[p // c, p % c]
        yp = y[p // c, p % c]
        for oy in range(ho):
            r0 = xp[2 * oy]
            r1 = xp[2 * oy + 1]
            yr = yp[oy]
            for ox in range(wo):
                yr[ox] = (((r0[2 * ox] + r0[2 * ox + 1]) + r1[2 * ox]) + r1[2 * ox + 1]) * quarter


@njit(**_HELPER)
def _avg_window(o, size, kernel, stride, padding, count_include_pad):
    """Torch's window along one axis: ``(lo, hi, extent)``, clipped to the input.

    ``extent`` is the window's length for the divisor: with ``count_include_pad`` it
    includes the padding (but never runs past it), otherwise it is ``hi - lo``.
    """
    start = o * stride - padding
    end = min(start + kernel, size + padding)
    padded_extent = end - start
    lo = max(start, 0)
    hi = min(end, size)
    return lo, hi, padded_extent if count_include_pad else hi - lo


@njit(**_JIT)
def avg_pool2d_general(x, y, kh, kw, sh, sw, ph, pw, count_include_pad):
    """Any window and padding: ``y = sum(window) / divisor`` (torch's divisor)."""
    n, c, h, w = x.shape
    ho, wo = y.shape[2], y.shape[3]
    dtype = x.dtype.type
    for p in prange(n * c):
        xp = x[p // c, p % c]
        yp = y[p // c, p % c]
        for oy in range(ho):
            r0, r1, rext = _avg_window(oy, h, kh, sh, ph, count_include_pad)
            for ox in range(wo):
                c0, c1, cext = _avg_window(ox, w, kw, sw, pw, count_include_pad)
                total = dtype(0)
                for ih in range(r0, r1):
                    row = xp[ih]
                    for iw in range(c0, c1):
                        total += row[iw]
                # Windows always reach into the input here (no ceil_mode, padding <= k/2),
                # so the divisor is positive. float32 / int is computed in float64 and
                # rounded once, which equals torch's float32 division exactly (rounding
                # twice is harmless for a quotient when 53 >= 2*24 + 2 bits).
                yp[oy, ox] = total / (rext * cext)


@njit(**_JIT)
def avg_pool2d_backward_2x2(dy, dx):
    """2x2/stride-2 backward: every ``dx`` in a window is ``dy / 4``; uncovered edges are 0."""
    n, c, h, w = dx.shape
    ho, wo = dy.shape[2], dy.shape[3]
    quarter = dx.dtype.type(0.25)
    zero = dx.dtype.type(0)
    for p in prange(n * c):
        dyp = dy[p // c, p % c]
        dxp = dx[p // c, p % c]
        for oy in range(ho):
            r0 = dxp[2 * oy]
            r1 = dxp[2 * oy + 1]
            gr = dyp[oy]
            for ox in range(wo):
                g = gr[ox] * quarter
                r0[2 * ox] = g
                r0[2 * ox + 1] = g
                r1[2 * ox] = g
                r1[2 * ox + 1] = g
            if w > 2 * wo:
                r0[w - 1] = zero
                r1[w - 1] = zero
        if h > 2 * ho:
            last = dxp[h - 1]
            for iw in range(w):
                last[iw] = zero


@njit(**_JIT)
def avg_pool2d_backward_general(dy, dx, kh, kw, sh, sw, ph, pw, count_include_pad):
    """Any window: ``dx = 0``, then each window's taps ``+= dy / divisor``, in torch's order."""
    n, c, h, w = dx.shape
    ho, wo = dy.shape[2], dy.shape[3]
    dtype = dx.dtype.type
    zero = dtype(0)
    for p in prange(n * c):
        dyp = dy[p // c, p % c]
        dxp = dx[p // c, p % c]
        for ih in range(h):
            row = dxp[ih]
            for iw in range(w):
                row[iw] = zero
        for oy in range(ho):
            r0, r1, rext = _avg_window(oy, h, kh, sh, ph, count_include_pad)
            for ox in range(wo):
                c0, c1, cext = _avg_window(ox, w, kw, sw, pw, count_include_pad)
                # rounded to the dtype before accumulating, as torch's scalar_t grad_delta
                g = dtype(dyp[oy, ox] / (rext * cext))
                for ih in range(r0, r1):
                    row = dxp[ih]
                    for iw in range(c0, c1):
                        row[iw] += g
