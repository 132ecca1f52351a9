"""``pooling_explorer``: max and average pooling on a small grid, forward and backward."""

from __future__ import annotations

import numpy as np

from cvcourse._checks import as_choice, as_int

from ..kernels import avg_pool2d, avg_pool2d_backward, max_pool2d, max_pool2d_backward
from ._base import Explorer, real_array, slider, widgets
from .drawing import GRID_MARGINS, draw_grid, new_figure, outline_block, outline_cells

__all__ = ["DEFAULT_GRID", "PoolingExplorer", "pooling_explorer"]

#: The default input: 6x6 integers with ties inside most 2x2 windows.
DEFAULT_GRID = np.array(
    [
        [1, 3, 2, 2, 0, 1],
        [4, 4, 1, 0, 5, 5],
        [0, 2, 6, 1, 2, 3],
        [3, 1, 6, 2, 1, 0],
        [2, 2, 0, 1, 4, 4],
        [1, 2, 3, 0, 4, 2],
    ]
)
DEFAULT_GRID.setflags(write=False)
MODES = ("max", "avg")
UPSTREAM = ("1, 2, 3, ... (row-major)", "ones")
_WINDOW = "#1971c2"
_ROUTE = "#e8590c"


class PoolingExplorer(Explorer):
    """Pooling a small grid, and where the upstream gradient of each output goes.

    The attributes up to ``position`` are the controls; the arrays after ``x`` come from
    ``cvcourse.kernels`` and are recomputed on every change.

    Attributes
    ----------
    mode : ipywidgets.ToggleButtons
        ``"max"`` or ``"avg"``.
    kernel_size, stride, padding : ipywidgets.IntSlider
        Square windows; torch requires ``padding <= kernel_size // 2``, and the widget
        explains when it is not.
    upstream_select : ipywidgets.Dropdown
        The upstream gradient ``dL/dy``: distinct values 1, 2, 3, ... in row-major order
        (so you can tell them apart in ``dL/dx``) or ones.
    position : ipywidgets.IntSlider
        Chooses one output (row-major) whose window is outlined.
    x : np.ndarray
        The input, float64 ``(H, W)``.
    output : np.ndarray or None
        The pooled ``(H_out, W_out)``; ``None`` when the settings are invalid.
    indices : np.ndarray or None
        Max mode: flat argmax ``r * W + c`` of each window (torch's indices: the first
        maximum in row-major order on ties); ``None`` in avg mode.
    upstream : np.ndarray
        ``dL/dy``, shaped like ``output``.
    grad_input : np.ndarray
        ``dL/dx``: max mode sends each ``dy`` to its window's argmax and adds up where
        windows overlap; avg mode spreads ``dy / k^2`` over the window.
    window_cell : tuple of int or None
        ``(row, col)`` of the selected output.
    window_cells : list of tuple of int
        The input cells of its window (inside the input).
    routed_to : list of tuple of int
        The cells its gradient goes to.
    valid : bool
        ``False`` (with an explanation in ``message``) when pooling is impossible.
    """

    def __init__(self, x=None, *, mode="max", kernel_size=2, stride=2, padding=0):
        who = "pooling_explorer"
        if x is None:
            x = DEFAULT_GRID
        self.x = real_array(x, "x", who, ndim=2)
        if max(self.x.shape) > 12:
            raise ValueError(f"{who}: x must be at most 12x12 to be readable, got {self.x.shape}")
        as_choice(mode, "mode", MODES, who)
        limit = min(4, max(self.x.shape))
        kernel_size = as_int(kernel_size, "kernel_size", who, low=1, high=limit)
        stride = as_int(stride, "stride", who, low=1, high=4)
        padding = as_int(padding, "padding", who, low=0, high=2)
        self.mode = widgets.ToggleButtons(options=MODES, value=mode, description="pooling")
        self.kernel_size = slider("kernel k", kernel_size, 1, limit)
        self.stride = slider("stride s", stride, 1, 4)
        self.padding = slider("padding p", padding, 0, 2)
        self.upstream_select = widgets.Dropdown(
            options=UPSTREAM, value=UPSTREAM[0], description="dL/dy"
        )
        self.position = slider("output position", 0, 0, 0)
        self.valid = True
        self.output: np.ndarray | None = None
        self.indices: np.ndarray | None = None
        self.upstream: np.ndarray | None = None
        self.grad_input: np.ndarray | None = None
        self.window_cell: tuple[int, int] | None = None
        self.window_cells: list[tuple[int, int]] = []
        self.routed_to: list[tuple[int, int]] = []
        controls = widgets.HBox(
            [
                widgets.VBox([self.mode, self.upstream_select, self.position]),
                widgets.VBox([self.kernel_size, self.stride, self.padding]),
            ]
        )
        super().__init__([controls])
        for control in (self.kernel_size, self.stride, self.padding):
            control.observe(self._geometry_changed, names="value")
        self._watch(self.mode, self.upstream_select, self.position)
        self._geometry_changed()

    def _geometry_changed(self, change=None) -> None:
        with self.hold():
            n = self._out_hw()
            self.position.value = 0
            self.position.max = max(n[0] * n[1], 1) - 1 if n else 0
            self.position.disabled = n is None
            self._pending = True

    def _settings(self) -> tuple[int, int, int]:
        return int(self.kernel_size.value), int(self.stride.value), int(self.padding.value)

    def _problem(self) -> str | None:
        k, s, p = self._settings()
        h, w = self.x.shape
        if p > k // 2:
            return (
                f"padding p = {p} is more than half the kernel (k // 2 = {k // 2}): torch "
                "refuses it, since some windows would then lie mostly or wholly in the padding "
                "and pool nothing real. Make the padding smaller or the kernel larger."
            )
        if k > min(h, w) + 2 * p:
            return (
                f"the {k}x{k} window is larger than the padded input "
                f"({h + 2 * p}x{w + 2 * p}): there is no position for it."
            )
        return None

    def _out_hw(self) -> tuple[int, int] | None:
        if self._problem() is not None:
            return None
        k, s, p = self._settings()
        return tuple((n + 2 * p - k) // s + 1 for n in self.x.shape)

    def _compute(self) -> None:
        problem = self._problem()
        self.valid = problem is None
        if not self.valid:
            self.output = self.indices = self.upstream = self.grad_input = None
            self.window_cell, self.window_cells, self.routed_to = None, [], []
            return
        k, s, p = self._settings()
        x4 = np.ascontiguousarray(self.x[None, None])
        h, w = self.x.shape
        if self.mode.value == "max":
            y, idx = max_pool2d(x4, k, s, p, return_indices=True)
        else:
            y, idx = avg_pool2d(x4, k, s, p), None
        ho, wo = y.shape[2:]
        if self.upstream_select.value == UPSTREAM[0]:
            dy = np.arange(1.0, ho * wo + 1).reshape(1, 1, ho, wo)
        else:
            dy = np.ones((1, 1, ho, wo))
        if idx is not None:
            dx = max_pool2d_backward(dy, x4, idx, k, s, p)
        else:
            dx = avg_pool2d_backward(dy, x4.shape, k, s, p)
        self.output, self.upstream, self.grad_input = y[0, 0], dy[0, 0], dx[0, 0]
        self.indices = None if idx is None else idx[0, 0]
        oy, ox = divmod(int(self.position.value), wo)
        self.window_cell = (oy, ox)
        self.window_cells = [
            (r, c)
            for r in range(oy * s - p, oy * s - p + k)
            for c in range(ox * s - p, ox * s - p + k)
            if 0 <= r < h and 0 <= c < w
        ]
        if self.indices is not None:
            self.routed_to = [divmod(int(self.indices[oy, ox]), w)]
        else:
            self.routed_to = list(self.window_cells)

    def _fan_in(self) -> np.ndarray:
        """How many windows send gradient to each input cell."""
        k, s, p = self._settings()
        h, w = self.x.shape
        counts = np.zeros((h, w), dtype=int)
        if self.indices is not None:
            np.add.at(counts.reshape(-1), self.indices.reshape(-1), 1)
            return counts
        assert self.output is not None  # drawn only for valid settings, after _compute
        ho, wo = self.output.shape
        for oy in range(ho):
            for ox in range(wo):
                r0, c0 = oy * s - p, ox * s - p
                counts[max(r0, 0) : max(r0 + k, 0), max(c0, 0) : max(c0 + k, 0)] += 1
        return counts

    def _draw(self):
        k, s, p = self._settings()
        h, w = self.x.shape
        fig = new_figure(12.5, 4.0, margins=GRID_MARGINS)
        if not self.valid:
            self.show_message(f"<b>Invalid:</b> {self._problem()}", "warning")
            ax = fig.subplots(1, 1)
            draw_grid(ax, self.x, cmap="Blues", fmt="{:g}", title="input x")
            return fig
        # valid settings: _compute has filled these in
        assert self.output is not None and self.window_cell is not None
        assert self.upstream is not None and self.grad_input is not None
        ho, wo = self.output.shape
        axes = fig.subplots(1, 4, width_ratios=[w + 2 * p, max(wo, 2), max(wo, 2), w])
        padded = np.full((h + 2 * p, w + 2 * p), np.nan)
        padded[p : p + h, p : p + w] = self.x
        ring = np.isnan(padded)
        lo, hi = float(self.x.min()), float(self.x.max())
        draw_grid(
            axes[0],
            padded,
            cmap="Blues",
            vmin=lo,
            vmax=hi + (hi - lo) * 0.3,
            shade=ring if p else None,
            origin=(-p, -p),
            title=f"input x{' (padded)' if p else ''}",
        )
        oy, ox = self.window_cell
        outline_block(axes[0], oy * s, ox * s, k, k, _WINDOW, linewidth=3)
        ours = [(r + p, c + p) for r, c in self.routed_to]
        is_max = self.mode.value == "max"
        if is_max:
            outline_cells(axes[0], ours, _ROUTE, fill=0.45, linewidth=0)
        y_fmt = "{:g}" if is_max else "{:.3g}"
        draw_grid(
            axes[1], self.output, cmap="Blues", fmt=y_fmt, title=f"{self.mode.value}-pooled y"
        )
        draw_grid(
            axes[2],
            self.upstream,
            cmap="Oranges",
            vmin=0,
            vmax=float(self.upstream.max()) * 1.3,
            title="upstream dL/dy",
        )
        for ax in axes[1:3]:
            outline_cells(ax, [self.window_cell], _WINDOW, linewidth=3)
        draw_grid(
            axes[3],
            self.grad_input,
            cmap="Oranges",
            vmin=0,
            fmt="{:.3g}",
            vmax=max(float(self.grad_input.max()), 1e-12) * 1.3,
            title="dL/dx",
        )
        outline_cells(axes[3], self.routed_to, _ROUTE, linewidth=3)
        fan = self._fan_in()
        shared = [(int(r), int(c)) for r, c in np.argwhere(fan > 1)]
        if is_max:  # (in avg mode nearly every cell is shared when windows overlap)
            outline_cells(axes[3], shared, "#495057", linewidth=1.0, inset=0.12)
        self.show_message(self._explain(fan), "info")
        return fig

    def _explain(self, fan: np.ndarray) -> str:
        k, s, p = self._settings()
        assert self.window_cell is not None and self.upstream is not None  # as in _draw
        oy, ox = self.window_cell
        g = self.upstream[oy, ox]
        rows = f"{oy * s - p}..{oy * s - p + k - 1}"
        cols = f"{ox * s - p}..{ox * s - p + k - 1}"
        text = f"y[{oy}, {ox}] pools rows {rows}, columns {cols} (blue). "
        if self.mode.value == "max":
            r, c = self.routed_to[0]
            inside = [self.x[rc] for rc in self.window_cells]
            ties = sum(1 for v in inside if v == self.x[r, c])
            text += (
                f"Its maximum {self.x[r, c]:g} is at ({r}, {c})"
                + (
                    f", the first of {ties} tied maxima in row-major order (as torch)"
                    if ties > 1
                    else ""
                )
                + f". Backward: only that cell gets dL/dy[{oy}, {ox}] = {g:g}; the others 0."
            )
        else:
            divisor = k * k
            text += (
                f"y = (1/{divisor}) &Sigma; window (padding counts as zeros, as torch's default "
                f"count_include_pad=True). Backward: every cell of the window gets "
                f"dL/dy[{oy}, {ox}] / {divisor} = {g / divisor:.3g}."
            )
        overlap = int(np.count_nonzero(fan > 1))
        if overlap:
            text += (
                f" {overlap} input cell(s) receive gradient from more than one window"
                + (" (grey inner outline)" if self.mode.value == "max" else "")
                + ": their contributions add up."
            )
        return text


def pooling_explorer(x=None, *, mode="max", kernel_size=2, stride=2, padding=0):
    """Max and average pooling on a small grid, with the backward pass made visible.

    Forward, for a ``k x k`` window with stride ``s`` and padding ``p`` (an output of size
    ``floor((H + 2p - k) / s) + 1``)::

        max:  y[i, j] = max over the window of xpad[i*s + u, j*s + v]   (xpad: -inf padding)
        avg:  y[i, j] = (1 / k^2) * sum over the window                  (zero padding counted)

    Backward: max pooling routes each ``dL/dy[i, j]`` to the position of its window's
    maximum (on ties the first in row-major order, exactly as torch); average pooling
    spreads ``dL/dy[i, j] / k^2`` over the window. Where windows overlap (stride < kernel)
    the contributions add up. The numbers come from ``cvcourse.kernels`` (``max_pool2d``,
    ``max_pool2d_backward``, ``avg_pool2d``, ``avg_pool2d_backward``).

    Parameters
    ----------
    x : np.ndarray, optional
        The input grid, a 2-D array up to 12x12; default :data:`DEFAULT_GRID` (6x6
        integers with ties).
    mode, kernel_size, stride, padding : str, int
        Starting values of the controls (``mode`` ``"max"`` or ``"avg"``).

    Returns
    -------
    PoolingExplorer
        Controls ``mode``, ``kernel_size``, ``stride``, ``padding``, ``upstream_select``,
        ``position``; arrays ``output``, ``indices``, ``upstream``, ``grad_input``.
    """
    return PoolingExplorer(x, mode=mode, kernel_size=kernel_size, stride=stride, padding=padding)
