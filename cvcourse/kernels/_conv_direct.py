"""Direct stride-1 convolution kernels over the padded row pitch.

The idea that makes these fast in numba: zero-pad the input once to ``(Hp, Wp)``; then an
output plane computed *with the padded row pitch* ``Wp`` is a sum of shifted copies of the
flattened padded input,

    out_p[i] = sum_{c, ky, kx} w[g, c, ky, kx] * xpad[c].flat[i + ky*dh*Wp + kx*dw],

for ``i`` in ``[0, L)``, ``L = (Ho - 1)*Wp + Wo``. Element ``i`` is the output at row
``i // Wp``, column ``i % Wp``; the columns ``Wo..Wp-1`` of each row are junk and are dropped
(or, for gradients, zeroed). Every kernel tap is then one long contiguous multiply-add that
LLVM vectorises, instead of many short rows. The largest index read is
``(Ho - 1)*Wp + Wo - 1 + (kh - 1)*dh*Wp + (kw - 1)*dw = Hp*Wp - 1``: always in bounds.

The loops run over ``Lr``, ``L`` rounded up to a multiple of ``LOOP_MULTIPLE``: LLVM
vectorises and unrolls them 4 x 8 wide, and would otherwise finish each one with up to 31
scalar iterations, which for rows of a few hundred elements doubled the time. The caller
gives the padded input enough extra zero rows at the bottom (``extra_rows``) that the longer
reads stay inside each plane: ``maxoff + Lr <= Hp' * Wp``.

Inner loops index 1-D slices with a ``range`` counter, so numba can prove the index is
non-negative and drops its wrap-around check (which would block SIMD). Taps are fused three
at a time to cut the loads and stores of the accumulator.

These kernels only handle stride 1; ``conv.py`` dispatches the rest to im2col + GEMM.
All arrays are C-contiguous; shapes are checked by the caller (``conv.py``).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._jit import JitOptions

# Compiled once per dtype and cached on disk (cache=True), so a new process does not recompile.
# fastmath "reassoc"/"contract" lets LLVM vectorise the dot products and fuse multiply-adds;
# NaN and Inf semantics are kept (no "nnan"/"ninf").
_FAST = {"reassoc", "contract"}
_JIT = JitOptions(cache=True, nogil=True, fastmath=_FAST)
# The kernels with a prange over (image, output-channel block) work items.
_PARALLEL = JitOptions(cache=True, nogil=True, fastmath=_FAST, parallel=True)

LOOP_MULTIPLE = 32


@njit(**_JIT)
def loop_length(ho: int, wo: int, wp: int) -> int:
    """``Lr``: the pitched output length ``(ho - 1)*wp + wo`` rounded up to ``LOOP_MULTIPLE``."""
    length = (ho - 1) * wp + wo
    return -(-length // LOOP_MULTIPLE) * LOOP_MULTIPLE


def extra_rows(ho: int, wo: int, wp: int) -> int:
    """Zero rows to add below a padded plane so that reads of ``loop_length`` stay inside it."""
    overhang = loop_length(ho, wo, wp) - ((ho - 1) * wp + wo)
    return -(-overhang // wp)


@njit(**_JIT)
def _accumulate_taps(acc, xflat, offsets, weights, count):
    """``acc[i] += sum_{t < count} weights[t] * xflat[offsets[t] + i]`` for ``i < len(acc)``."""
    length = acc.shape[0]
    t = 0
    while t + 3 <= count:
        s0 = xflat[offsets[t] : offsets[t] + length]
        s1 = xflat[offsets[t + 1] : offsets[t + 1] + length]
        s2 = xflat[offsets[t + 2] : offsets[t + 2] + length]
        w0, w1, w2 = weights[t], weights[t + 1], weights[t + 2]
        for i in range(length):
            acc[i] += w0 * s0[i] + w1 * s1[i] + w2 * s2[i]
        t += 3
    while t < count:
        s0 = xflat[offsets[t] : offsets[t] + length]
        w0 = weights[t]
        for i in range(length):
            acc[i] += w0 * s0[i]
        t += 1


@njit(**_JIT)
def _tap_offsets(cin_per_group, kh, kw, dh, dw, hp, wp):
    """Flat offset of every tap ``(c, ky, kx)`` in a padded group of ``cin_per_group`` planes."""
    offsets = np.empty(cin_per_group * kh * kw, dtype=np.int64)
    t = 0
    for c in range(cin_per_group):
        for ky in range(kh):
            for kx in range(kw):
                offsets[t] = c * hp * wp + ky * dh * wp + kx * dw
                t += 1
    return offsets


@njit(**_JIT)
def _accumulate_taps4(acc, xflat, offsets, w4, count):
    """Four output channels at once: ``acc[j, i] += sum_t w4[j, t] * xflat[offsets[t] + i]``.

    Each load of the input feeds four multiply-adds, which is what lifts the kernel from
    load-bound towards the FMA ports' limit.
    """
    length = acc.shape[1]
    a0, a1, a2, a3 = acc[0], acc[1], acc[2], acc[3]
    t = 0
    while t + 4 <= count:
        s0 = xflat[offsets[t] : offsets[t] + length]
        s1 = xflat[offsets[t + 1] : offsets[t + 1] + length]
        s2 = xflat[offsets[t + 2] : offsets[t + 2] + length]
        s3 = xflat[offsets[t + 3] : offsets[t + 3] + length]
        # 16 weights in scalars: loop-invariant, so they stay in registers.
        w00, w01, w02, w03 = w4[0, t], w4[0, t + 1], w4[0, t + 2], w4[0, t + 3]
        w10, w11, w12, w13 = w4[1, t], w4[1, t + 1], w4[1, t + 2], w4[1, t + 3]
        w20, w21, w22, w23 = w4[2, t], w4[2, t + 1], w4[2, t + 2], w4[2, t + 3]
        w30, w31, w32, w33 = w4[3, t], w4[3, t + 1], w4[3, t + 2], w4[3, t + 3]
        for i in range(length):
            p, q, r, z = s0[i], s1[i], s2[i], s3[i]
            a0[i] += w00 * p + w01 * q + w02 * r + w03 * z
            a1[i] += w10 * p + w11 * q + w12 * r + w13 * z
            a2[i] += w20 * p + w21 * q + w22 * r + w23 * z
            a3[i] += w30 * p + w31 * q + w32 * r + w33 * z
        t += 4
    while t + 2 <= count:
        s0 = xflat[offsets[t] : offsets[t] + length]
        s1 = xflat[offsets[t + 1] : offsets[t + 1] + length]
        u0, u1, u2, u3 = w4[0, t], w4[1, t], w4[2, t], w4[3, t]
        v0, v1, v2, v3 = w4[0, t + 1], w4[1, t + 1], w4[2, t + 1], w4[3, t + 1]
        for i in range(length):
            p, q = s0[i], s1[i]
            a0[i] += u0 * p + v0 * q
            a1[i] += u1 * p + v1 * q
            a2[i] += u2 * p + v2 * q
            a3[i] += u3 * p + v3 * q
        t += 2
    if t < count:
        s0 = xflat[offsets[t] : offsets[t] + length]
        u0, u1, u2, u3 = w4[0, t], w4[1, t], w4[2, t], w4[3, t]
        for i in range(length):
            p = s0[i]
            a0[i] += u0 * p
            a1[i] += u1 * p
            a2[i] += u2 * p
            a3[i] += u3 * p


@njit(**_PARALLEL)
def conv2d_forward(xpad, weight, bias, has_bias, ho, wo, dh, dw, groups):
    """Stride-1 forward.

    ``weight (G, C/groups, kh, kw)``; ``xpad (N, C, Hp', Wp)`` already padded, with
    ``extra_rows(ho, wo, Wp)`` zero rows below the ``Hp = ho + dh*(kh-1)`` rows.

    Returns ``y (N, G, ho, wo)``.
    Work items are (image, block of up to four output channels of one group).
    """
    n, c, hp, wp = xpad.shape
    g_out, cin_g, kh, kw = weight.shape
    length = loop_length(ho, wo, wp)
    gout_g = g_out // groups
    blocks_per_group = (gout_g + 3) // 4
    blocks = groups * blocks_per_group
    offsets = _tap_offsets(cin_g, kh, kw, dh, dw, hp, wp)
    taps = cin_g * kh * kw
    wflat = weight.reshape(g_out, taps)
    xall = xpad.reshape(n, c * hp * wp)
    y = np.empty((n, g_out, ho, wo), dtype=xpad.dtype)
    zero = xpad.dtype.type(0)
    for item in prange(n * blocks):
        b, blk = item // blocks, item % blocks
        grp = blk // blocks_per_group
        g0 = grp * gout_g + (blk % blocks_per_group) * 4
        g1 = min(g0 + 4, (grp + 1) * gout_g)
        xgroup = xall[b, grp * cin_g * hp * wp :]
        acc = np.zeros((4, length), dtype=xpad.dtype)
        if g1 - g0 == 4:
            _accumulate_taps4(acc, xgroup, offsets, wflat[g0:g1], taps)
        else:  # measured: one channel at a time beats a 4-block padded with zero weights
            for j in range(g1 - g0):
                _accumulate_taps(acc[j], xgroup, offsets, wflat[g0 + j], taps)
        for j in range(g1 - g0):
            shift = bias[g0 + j] if has_bias else zero
            for r in range(ho):
                row = acc[j, r * wp : r * wp + wo]
                out = y[b, g0 + j, r]
                for col in range(wo):
                    out[col] = row[col] + shift
    return y


@njit(**_PARALLEL)
def pitched_grad(dy, wp):
    """Lay ``dy (N, G, Ho, Wo)`` out with row pitch ``wp``, junk zero: ``(N, G, Lr)``.

    Also returns ``dbias[g] = sum_{n, oy, ox} dy[n, g, oy, ox]``, summed while ``dy`` is read
    anyway (numpy's strided ``dy.sum(axis=(0, 2, 3))`` costs as much as the whole copy).
    """
    n, g_out, ho, wo = dy.shape
    length = loop_length(ho, wo, wp)
    out = np.zeros((n, g_out, length), dtype=dy.dtype)
    partial = np.empty((n, g_out), dtype=dy.dtype)
    for item in prange(n * g_out):
        b, g = item // g_out, item % g_out
        total = dy.dtype.type(0)
        for r in range(ho):
            src = dy[b, g, r]
            dst = out[b, g, r * wp : r * wp + wo]
            for col in range(wo):
                dst[col] = src[col]
                total += src[col]
        partial[b, g] = total
    return out, partial.sum(axis=0)


@njit(**_JIT)
def _tap_offset(t, kw, dh, dw, wp):
    """Flat offset of tap ``t = ky*kw + kx`` in a padded plane of row pitch ``wp``."""
    return (t // kw) * dh * wp + (t % kw) * dw


@njit(**_JIT)
def _dots_4x3(d0, d1, d2, d3, s0, s1, s2, out):
    """Twelve dot products sharing their loads: ``out[j, k] += d_j . s_k`` (j < 4, k < 3).

    Seven loads feed twelve multiply-adds, and the twelve accumulators stay in registers.
    Three taps per pass fit the common 3x3 and 5x5 kernels with little or no waste.
    """
    zero = d0.dtype.type(0)
    t00 = t01 = t02 = t10 = t11 = t12 = zero
    t20 = t21 = t22 = t30 = t31 = t32 = zero
    for i in range(d0.shape[0]):
        a, b, c, d = d0[i], d1[i], d2[i], d3[i]
        p, q, r = s0[i], s1[i], s2[i]
        t00 += a * p
        t01 += a * q
        t02 += a * r
        t10 += b * p
        t11 += b * q
        t12 += b * r
        t20 += c * p
        t21 += c * q
        t22 += c * r
        t30 += d * p
        t31 += d * q
        t32 += d * r
    out[0, 0] += t00
    out[0, 1] += t01
    out[0, 2] += t02
    out[1, 0] += t10
    out[1, 1] += t11
    out[1, 2] += t12
    out[2, 0] += t20
    out[2, 1] += t21
    out[2, 2] += t22
    out[3, 0] += t30
    out[3, 1] += t31
    out[3, 2] += t32


@njit(**_PARALLEL)
def conv2d_grad_weight(xpad, dyp, kh, kw, dh, dw, groups):
    """``dW[g, c, ky, kx] = sum_{n, i} dyp[n, g, i] * xpad[n, c].flat[i + ky*dh*Wp + kx*dw]``.

    ``dyp`` is the pitched upstream gradient from ``pitched_grad`` (junk columns zero, so
    they add nothing). Returns ``(G, C/groups, kh, kw)``, summed over the batch.

    Work items are (block of four output channels of one group, input channel); each pass
    computes four output channels against three taps (``_dots_4x3``). A block short of four
    channels is completed with rows of zeros, and the last taps are repeated to fill a pass:
    both go to spare rows/columns of the accumulator that are never read.
    """
    n, c, hp, wp = xpad.shape
    g_out, length = dyp.shape[1], dyp.shape[2]
    cin_g = c // groups
    gout_g = g_out // groups
    blocks_per_group = (gout_g + 3) // 4
    taps = kh * kw
    dweight = np.zeros((g_out, cin_g, taps), dtype=xpad.dtype)
    xall = xpad.reshape(n, c * hp * wp)
    zeros = np.zeros(length, dtype=xpad.dtype)
    for item in prange(groups * blocks_per_group * cin_g):
        block, ci = item // cin_g, item % cin_g
        grp = block // blocks_per_group
        g0 = grp * gout_g + (block % blocks_per_group) * 4
        rows = min(4, (grp + 1) * gout_g - g0)
        plane = (grp * cin_g + ci) * hp * wp
        out = np.zeros((4, taps + 2), dtype=xpad.dtype)
        for image in range(n):
            d0 = dyp[image, g0]
            d1 = dyp[image, g0 + 1] if rows > 1 else zeros
            d2 = dyp[image, g0 + 2] if rows > 2 else zeros
            d3 = dyp[image, g0 + 3] if rows > 3 else zeros
            x = xall[image]
            for t0 in range(0, taps, 3):
                o0 = plane + _tap_offset(min(t0, taps - 1), kw, dh, dw, wp)
                o1 = plane + _tap_offset(min(t0 + 1, taps - 1), kw, dh, dw, wp)
                o2 = plane + _tap_offset(min(t0 + 2, taps - 1), kw, dh, dw, wp)
                _dots_4x3(
                    d0,
                    d1,
                    d2,
                    d3,
                    x[o0 : o0 + length],
                    x[o1 : o1 + length],
                    x[o2 : o2 + length],
                    out[:, t0 : t0 + 3],
                )
        for j in range(rows):
            dweight[g0 + j, ci] = out[j, :taps]
    return dweight.reshape(g_out, cin_g, kh, kw)
