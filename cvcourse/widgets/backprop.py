"""``conv_backprop_explorer``: which inputs, outputs and kernel entries meet in conv backprop."""

from __future__ import annotations

import numpy as np

from cvcourse._checks import as_choice, as_int

from ..kernels import conv2d, conv2d_backward
from ._base import Explorer, real_array, slider, widgets
from .drawing import GRID_MARGINS, draw_grid, new_figure, outline_block, outline_cells

__all__ = ["ConvBackpropExplorer", "conv_backprop_explorer", "dilate_and_pad"]

DEFAULT_INPUT = np.array(
    [
        [1, 0, 2, 1, 0],
        [0, 3, 1, 0, 2],
        [2, 1, 0, 1, 1],
        [1, 0, 2, 3, 0],
        [0, 2, 1, 0, 1],
    ]
)
DEFAULT_KERNEL = np.array([[1, 0, -1], [2, 1, 0], [0, -1, 1]])
MODES = ("output cell", "input cell", "kernel entry")
UPSTREAM = ("1, 2, 3, ... (row-major)", "ones")
_OUT = "#1971c2"
_IN = "#e8590c"
_KER = "#2f9e44"
_MAX_TERMS = 12


def _n(value: float) -> str:
    """A number for a LaTeX product: negative ones in parentheses."""
    return f"({value:g})" if value < 0 else f"{value:g}"


def dilate_and_pad(grad_out: np.ndarray, input_hw, kernel_hw, stride: int, padding: int):
    """The upstream gradient laid out so that one correlation gives ``dL/dI``.

    ``Z`` has shape ``(H + kH - 1, W + kW - 1)``; ``dL/dO[oy, ox]`` sits at
    ``(oy*s + kH - 1 - p, ox*s + kW - 1 - p)`` (``s - 1`` zeros between neighbours, ``kH - 1 -
    p`` zeros of padding before), so that ``dL/dI = CC(Z, rot180(K))`` with no padding. For
    stride 1 this is ``dL/dO`` zero-padded by ``k - 1 - p`` on every side. Entries that
    would fall outside (``p > k - 1``: outputs that only see padding) are left out.
    """
    (h, w), (kh, kw) = input_hw, kernel_hw
    z = np.zeros((h + kh - 1, w + kw - 1))
    ho, wo = grad_out.shape
    for oy in range(ho):
        r = oy * stride + kh - 1 - padding
        for ox in range(wo):
            c = ox * stride + kw - 1 - padding
            if 0 <= r < z.shape[0] and 0 <= c < z.shape[1]:
                z[r, c] = grad_out[oy, ox]
    return z


class ConvBackpropExplorer(Explorer):
    """The forward and backward pass of a single-channel convolution, cell by cell.

    ``O = CC(I_pad, K)`` (stride ``s``, zero padding ``p``), with upstream gradient
    ``G = dL/dO``::

        O[oy, ox]      = sum_{u, v} K[u, v] I_pad[oy*s + u, ox*s + v]
        dL/dK[u, v]    = sum_{oy, ox} G[oy, ox] I_pad[oy*s + u, ox*s + v]     = CC(I_pad, G)
        dL/dI[i, j]    = sum G[oy, ox] K[i + p - oy*s, j + p - ox*s]         = CC(Z, rot180 K)

    the last sum over the outputs whose window covers ``(i, j)``. ``Z`` (see
    :func:`dilate_and_pad`) is ``G`` with ``s - 1`` zeros between its entries, padded so that
    a plain correlation gives ``dL/dI``; for stride 1 it is ``G`` zero-padded by ``k - 1 - p``.
    For stride ``s > 1`` the ``G`` in ``CC(I_pad, G)`` is spread out the same way.

    The attributes up to ``upstream_select`` are the controls; the selections after the
    arrays are recomputed on every change.

    Attributes
    ----------
    mode : ipywidgets.ToggleButtons
        ``"output cell"``, ``"input cell"`` or ``"kernel entry"``.
    out_row, out_col, in_row, in_col, k_row, k_col : ipywidgets.IntSlider
        Pairs (``out_*``, ``in_*``, ``k_*``) choosing the cell for each mode (only the
        current mode's pair is shown).
    stride, padding : ipywidgets.IntSlider
        The convolution's stride and zero padding.
    upstream_select : ipywidgets.Dropdown
        ``G`` as distinct values 1, 2, 3, ... or ones.
    input, kernel, output, upstream : np.ndarray
        From ``cvcourse.kernels.conv2d`` / ``conv2d_backward``, float64.
    grad_input, grad_kernel, rotated_kernel, upstream_full : np.ndarray
        The same (``upstream_full`` is ``Z``).
    receptive_field : list of tuple of int
        Input cells ``(i, j)`` inside the image that output ``(out_row, out_col)`` reads
        (padding cells left out).
    contributions : list
        For input cell ``(in_row, in_col)``, the list of ``((oy, ox), (u, v))``: every
        output its value reaches and the kernel entry used.
    kernel_pairs : list
        For kernel entry ``(k_row, k_col)``, the list of ``((oy, ox), (i, j))``: each
        output and the input cell (padded coordinates minus ``p``; outside the image it is
        padding, 0) that entry multiplied.
    valid : bool
        ``False`` when the kernel does not fit the padded input (see ``message``).
    """

    def __init__(self, x=None, kernel=None, *, stride: int = 1, padding: int = 0, mode=MODES[0]):
        who = "conv_backprop_explorer"
        self.input = real_array(DEFAULT_INPUT if x is None else x, "x", who, ndim=2)
        self.kernel = real_array(
            DEFAULT_KERNEL if kernel is None else kernel, "kernel", who, ndim=2
        )
        if max(self.input.shape) > 8:
            raise ValueError(f"{who}: x must be at most 8x8 to be readable, got {self.input.shape}")
        if max(self.kernel.shape) > 5:
            raise ValueError(f"{who}: kernel must be at most 5x5, got {self.kernel.shape}")
        stride = as_int(stride, "stride", who, low=1, high=3)
        padding = as_int(padding, "padding", who, low=0, high=2)
        as_choice(mode, "mode", MODES, who)
        h, w = self.input.shape
        kh, kw = self.kernel.shape
        self.mode = widgets.ToggleButtons(options=MODES, value=mode, description="choose")
        self.stride = slider("stride s", stride, 1, 3)
        self.padding = slider("padding p", padding, 0, 2)
        self.upstream_select = widgets.Dropdown(
            options=UPSTREAM, value=UPSTREAM[0], description="dL/dO"
        )
        self.out_row, self.out_col = slider("output row", 0, 0, 0), slider("output col", 0, 0, 0)
        self.in_row, self.in_col = (
            slider("input row", 0, 0, h - 1),
            slider("input col", 0, 0, w - 1),
        )
        self.k_row, self.k_col = (
            slider("kernel row", 0, 0, kh - 1),
            slider("kernel col", 0, 0, kw - 1),
        )
        self._pairs = {
            MODES[0]: widgets.HBox([self.out_row, self.out_col]),
            MODES[1]: widgets.HBox([self.in_row, self.in_col]),
            MODES[2]: widgets.HBox([self.k_row, self.k_col]),
        }
        self.explanation = widgets.HTMLMath()
        self.valid = True
        self.rotated_kernel = self.kernel[::-1, ::-1].copy()
        # computed by _compute; None while the kernel does not fit the padded input
        self.output: np.ndarray | None = None
        self.upstream: np.ndarray | None = None
        self.grad_input: np.ndarray | None = None
        self.grad_kernel: np.ndarray | None = None
        self.upstream_full: np.ndarray | None = None
        self.receptive_field: list[tuple[int, int]] = []
        self.contributions: list[tuple[tuple[int, int], tuple[int, int]]] = []
        self.kernel_pairs: list[tuple[tuple[int, int], tuple[int, int]]] = []
        controls = widgets.VBox(
            [
                widgets.HBox([self.mode, self.upstream_select]),
                widgets.HBox([self.stride, self.padding]),
                *self._pairs.values(),
            ]
        )
        super().__init__([controls, self.explanation])
        for control in (self.stride, self.padding):
            control.observe(self._geometry_changed, names="value")
        self._watch(self.mode, self.upstream_select, self.in_row, self.in_col)
        self._watch(self.out_row, self.out_col, self.k_row, self.k_col)
        self._geometry_changed()

    # --- geometry -----------------------------------------------------------------------------

    def _settings(self) -> tuple[int, int]:
        return int(self.stride.value), int(self.padding.value)

    def _out_hw(self) -> tuple[int, int] | None:
        s, p = self._settings()
        (h, w), (kh, kw) = self.input.shape, self.kernel.shape
        if kh > h + 2 * p or kw > w + 2 * p:
            return None
        return (h + 2 * p - kh) // s + 1, (w + 2 * p - kw) // s + 1

    def _geometry_changed(self, change=None) -> None:
        with self.hold():
            hw = self._out_hw() or (1, 1)
            for control, n in ((self.out_row, hw[0]), (self.out_col, hw[1])):
                control.value = min(control.value, n - 1)
                control.max = n - 1
            self._pending = True

    # --- compute ------------------------------------------------------------------------------

    def _compute(self) -> None:
        for mode, box in self._pairs.items():
            box.layout.display = "" if mode == self.mode.value else "none"
        hw = self._out_hw()
        self.valid = hw is not None
        if hw is None:
            self.output = self.upstream = self.grad_input = self.grad_kernel = None
            self.upstream_full = None
            self.receptive_field, self.contributions, self.kernel_pairs = [], [], []
            return
        s, p = self._settings()
        (h, w), (kh, kw) = self.input.shape, self.kernel.shape
        x4 = np.ascontiguousarray(self.input[None, None])
        k4 = np.ascontiguousarray(self.kernel[None, None])
        out = conv2d(x4, k4, stride=s, padding=p)
        ho, wo = hw
        if self.upstream_select.value == UPSTREAM[0]:
            g = np.arange(1.0, ho * wo + 1).reshape(1, 1, ho, wo)
        else:
            g = np.ones((1, 1, ho, wo))
        dx, dk, _ = conv2d_backward(g, x4, k4, stride=s, padding=p, bias=False)
        self.output, self.upstream = out[0, 0], g[0, 0]
        self.grad_input, self.grad_kernel = dx[0, 0], dk[0, 0]
        self.upstream_full = dilate_and_pad(self.upstream, (h, w), (kh, kw), s, p)

        oy, ox = int(self.out_row.value), int(self.out_col.value)
        self.receptive_field = [
            (oy * s - p + u, ox * s - p + v)
            for u in range(kh)
            for v in range(kw)
            if 0 <= oy * s - p + u < h and 0 <= ox * s - p + v < w
        ]
        i, j = int(self.in_row.value), int(self.in_col.value)
        self.contributions = [
            ((a, b), (i + p - a * s, j + p - b * s))
            for a in range(ho)
            for b in range(wo)
            if 0 <= i + p - a * s < kh and 0 <= j + p - b * s < kw
        ]
        u, v = int(self.k_row.value), int(self.k_col.value)
        self.kernel_pairs = [
            ((a, b), (a * s + u - p, b * s + v - p)) for a in range(ho) for b in range(wo)
        ]

    # --- explanation --------------------------------------------------------------------------

    def _value(self, r: int, c: int) -> float:
        h, w = self.input.shape
        return float(self.input[r, c]) if 0 <= r < h and 0 <= c < w else 0.0

    @staticmethod
    def _sum(symbols: list[str], numbers: list[str], total: float) -> str:
        """``lhs = rhs = total`` as rows of an aligned block, five terms to a row."""
        if len(symbols) > _MAX_TERMS:
            symbols = [*symbols[:_MAX_TERMS], r"\dots"]
            numbers = [*numbers[:_MAX_TERMS], r"\dots"]

        def rows(terms: list[str]) -> str:
            if not terms:
                return "0"
            chunks = [" + ".join(terms[i : i + 5]) for i in range(0, len(terms), 5)]
            return r" \\ &\quad + ".join(chunks)

        return rf"{rows(symbols)} \\ &= {rows(numbers)} \\ &= {total:g}"

    def _explain(self) -> str:
        s, p = self._settings()
        # only called for valid settings, once _compute has filled the arrays in
        assert self.output is not None and self.upstream is not None
        assert self.grad_input is not None and self.grad_kernel is not None
        mode = self.mode.value
        if mode == MODES[0]:
            oy, ox = int(self.out_row.value), int(self.out_col.value)
            kh, kw = self.kernel.shape
            terms = [(u, v) for u in range(kh) for v in range(kw)]
            sym = [rf"K_{{{u}{v}}} I_{{{oy * s + u - p},{ox * s + v - p}}}" for u, v in terms]
            num = [
                f"{_n(self.kernel[u, v])}\\cdot{_n(self._value(oy * s + u - p, ox * s + v - p))}"
                for u, v in terms
            ]
            body = self._sum(sym, num, float(self.output[oy, ox]))
            head = (
                f"Output ({oy}, {ox}) reads the {kh}x{kw} input window at rows "
                f"{oy * s - p}..{oy * s - p + kh - 1}, columns {ox * s - p}..{ox * s - p + kw - 1}"
                " (blue; outside the image is zero padding). In the backward pass its gradient "
                f"G[{oy}, {ox}] = {self.upstream[oy, ox]:g} goes back along the same lines: "
                f"G&middot;K to dL/dI on that window, G&middot;window to every entry of dL/dK."
            )
            return f"{head}$$\\begin{{aligned}}O[{oy},{ox}] &= {body}\\end{{aligned}}$$"
        if mode == MODES[1]:
            i, j = int(self.in_row.value), int(self.in_col.value)
            sym = [rf"G_{{{a}{b}}} K_{{{u}{v}}}" for (a, b), (u, v) in self.contributions]
            num = [
                f"{_n(self.upstream[a, b])}\\cdot{_n(self.kernel[u, v])}"
                for (a, b), (u, v) in self.contributions
            ]
            body = self._sum(sym, num, float(self.grad_input[i, j]))
            head = (
                f"Input ({i}, {j}) is read by {len(self.contributions)} output(s) (orange), each "
                "through a different kernel entry: the entries meet the upstream gradient in "
                "reverse order, which is the correlation of the dilated, padded G (bottom left) "
                "with the kernel rotated by 180&deg;: dL/dI = CC(Z, rot180 K)."
            )
            return f"{head}$$\\begin{{aligned}}\\frac{{\\partial L}}{{\\partial I}}[{i},{j}] &= {body}\\end{{aligned}}$$"  # noqa: E501
        u, v = int(self.k_row.value), int(self.k_col.value)
        sym = [rf"G_{{{a}{b}}} I_{{{r},{c}}}" for (a, b), (r, c) in self.kernel_pairs]
        num = [
            f"{_n(self.upstream[a, b])}\\cdot{_n(self._value(r, c))}"
            for (a, b), (r, c) in self.kernel_pairs
        ]
        body = self._sum(sym, num, float(self.grad_kernel[u, v]))
        head = (
            f"Kernel entry ({u}, {v}) multiplied one input cell per output (green, every "
            f"{s} cell(s) apart, shifted by ({u}, {v})): its gradient is the correlation of "
            "the input with G, dL/dK = CC(I_pad, G)"
            + (f" (with G's entries spread {s} apart, as in Z)." if s > 1 else ".")
        )
        return f"{head}$$\\begin{{aligned}}\\frac{{\\partial L}}{{\\partial K}}[{u},{v}] &= {body}\\end{{aligned}}$$"  # noqa: E501

    # --- draw ---------------------------------------------------------------------------------

    def _draw(self):
        s, p = self._settings()
        (h, w), (kh, kw) = self.input.shape, self.kernel.shape
        fig = new_figure(
            12.5, 6.6, margins={**GRID_MARGINS, "top": 0.95, "bottom": 0.04, "hspace": 0.2}
        )
        if not self.valid:
            self.explanation.value = ""
            self.show_message(
                f"<b>Invalid:</b> the {kh}x{kw} kernel is larger than the padded input "
                f"({h + 2 * p}x{w + 2 * p}): there is no output. Increase the padding.",
                "warning",
            )
            draw_grid(fig.subplots(1, 1), self.input, cmap="Blues", title="input I")
            return fig
        self.show_message("")
        assert self.output is not None and self.upstream is not None  # valid, computed
        assert self.upstream_full is not None
        assert self.grad_input is not None and self.grad_kernel is not None
        self.explanation.value = self._explain()
        axes = fig.subplots(2, 4)
        padded = np.full((h + 2 * p, w + 2 * p), np.nan)
        padded[p : p + h, p : p + w] = self.input
        draw_grid(
            axes[0, 0],
            np.nan_to_num(padded),
            cmap="Blues",
            origin=(-p, -p),
            shade=np.isnan(padded) if p else None,
            title="input I (padded)",
        )
        div = dict(
            cmap="RdBu_r",
            vmin=-np.abs(self.kernel).max() * 1.6,
            vmax=np.abs(self.kernel).max() * 1.6,
        )
        draw_grid(axes[0, 1], self.kernel, title="kernel K", **div)
        draw_grid(axes[0, 2], self.output, cmap="Purples", title=f"output O (stride {s})")
        draw_grid(
            axes[0, 3],
            self.upstream,
            cmap="Oranges",
            vmin=0,
            vmax=self.upstream.max() * 1.3,
            title="upstream G = dL/dO",
        )
        z = self.upstream_full
        draw_grid(
            axes[1, 0],
            z,
            cmap="Oranges",
            vmin=0,
            vmax=z.max() * 1.3,
            origin=(-(kh - 1), -(kw - 1)),
            skip_zeros=True,
            title="Z: G dilated + padded",
        )
        draw_grid(axes[1, 1], self.rotated_kernel, title="rot180 K", **div)
        draw_grid(
            axes[1, 2],
            self.grad_input,
            cmap="PuOr_r",
            title="dL/dI = CC(Z, rot180 K)",
            vmin=-np.abs(self.grad_input).max() * 1.3 - 1e-12,
            vmax=np.abs(self.grad_input).max() * 1.3 + 1e-12,
        )
        draw_grid(
            axes[1, 3],
            self.grad_kernel,
            cmap="PuOr_r",
            title="dL/dK = CC(I_pad, G" + (" dilated)" if s > 1 else ")"),
            vmin=-np.abs(self.grad_kernel).max() * 1.3 - 1e-12,
            vmax=np.abs(self.grad_kernel).max() * 1.3 + 1e-12,
        )
        mode = self.mode.value
        if mode == MODES[0]:
            oy, ox = int(self.out_row.value), int(self.out_col.value)
            outline_block(axes[0, 0], oy * s, ox * s, kh, kw, _OUT)
            outline_block(axes[0, 1], 0, 0, kh, kw, _OUT)
            outline_cells(axes[0, 2], [(oy, ox)], _OUT)
            outline_cells(axes[0, 3], [(oy, ox)], _OUT)
            outline_cells(axes[1, 2], self.receptive_field, _OUT, linewidth=1.5, inset=0.06)
            outline_block(axes[1, 3], 0, 0, kh, kw, _OUT, linewidth=1.5)
        elif mode == MODES[1]:
            i, j = int(self.in_row.value), int(self.in_col.value)
            outline_cells(axes[0, 0], [(i + p, j + p)], _IN, fill=0.4)
            outline_cells(axes[0, 1], [uv for _, uv in self.contributions], _IN)
            outline_cells(axes[0, 2], [o for o, _ in self.contributions], _IN)
            outline_cells(axes[0, 3], [o for o, _ in self.contributions], _IN)
            outline_block(axes[1, 0], i, j, kh, kw, _IN)
            outline_block(axes[1, 1], 0, 0, kh, kw, _IN)
            outline_cells(axes[1, 2], [(i, j)], _IN)
        else:
            u, v = int(self.k_row.value), int(self.k_col.value)
            outline_cells(axes[0, 1], [(u, v)], _KER)
            outline_cells(axes[0, 0], [(r + p, c + p) for _, (r, c) in self.kernel_pairs], _KER)
            ho, wo = self.upstream.shape
            outline_block(axes[0, 3], 0, 0, ho, wo, _KER)
            outline_cells(axes[1, 3], [(u, v)], _KER)
        return fig


def conv_backprop_explorer(
    x=None, kernel=None, *, stride: int = 1, padding: int = 0, mode: str = MODES[0]
) -> ConvBackpropExplorer:
    """Follow one cell through the forward and backward pass of a convolution.

    A single-channel cross-correlation ``O = CC(I_pad, K)`` with stride ``s`` and zero
    padding ``p``, an upstream gradient ``G = dL/dO``, and the two gradients, computed by
    ``cvcourse.kernels.conv2d_backward``::

        dL/dK = CC(I_pad, G)                  (stride 1; in general G's entries s apart)
        dL/dI = CC(Z, rot180 K)               (Z: G dilated by s, padded by k - 1 - p)

    Three ways to look (``mode``):

    * **output cell**: its receptive field in the input (the ``k x k`` window it reads) and
      the sum that gives its value;
    * **input cell**: which outputs its value reaches and through which kernel entries; the
      sum of ``G * K`` over them is ``dL/dI`` there (the rotated kernel, aligned on ``Z``);
    * **kernel entry**: the input cell it met at every output; ``sum G * I`` is ``dL/dK``.

    Parameters
    ----------
    x : np.ndarray, optional
        The input, a 2-D array up to 8x8 (default: 5x5 small integers).
    kernel : np.ndarray, optional
        A 2-D kernel up to 5x5 (default: a 3x3 kernel without symmetry, so that the
        rotation shows).
    stride, padding, mode : int, int, str
        Starting values of the controls (``stride`` 1..3, ``padding`` 0..2).

    Returns
    -------
    ConvBackpropExplorer
        Sliders ``out_row``/``out_col``, ``in_row``/``in_col``, ``k_row``/``k_col``,
        ``stride``, ``padding``; arrays ``output``, ``grad_input``, ``grad_kernel``; lists
        ``receptive_field``, ``contributions``, ``kernel_pairs``.
    """
    return ConvBackpropExplorer(x, kernel, stride=stride, padding=padding, mode=mode)
