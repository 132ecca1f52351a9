"""``conv_arithmetic``: input size, kernel, stride, padding, dilation -> the output size."""

from __future__ import annotations

import numpy as np

from cvcourse._checks import as_int

from ._base import Explorer, slider, widgets
from .drawing import GRID_MARGINS, draw_grid, new_figure, outline_block, outline_cells

__all__ = ["ConvArithmetic", "conv_arithmetic", "output_size"]

_LIMITS = {
    "size": (1, 10),
    "kernel_size": (1, 7),
    "stride": (1, 4),
    "padding": (0, 4),
    "dilation": (1, 4),
}
_TAP = "#d9480f"
_DONE = "#74c0fc"


def output_size(size: int, kernel_size: int, stride: int, padding: int, dilation: int) -> int:
    """``floor((H + 2p - d(k - 1) - 1) / s) + 1``; 0 or less means no kernel position fits."""
    return (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1


class ConvArithmetic(Explorer):
    """Where a kernel lands on a (padded) input, position by position, and the output size.

    The controls are the sliders; every other attribute is recomputed on every change.

    Attributes
    ----------
    size, kernel_size, stride, padding, dilation : ipywidgets.IntSlider
        Controls (H = W = ``size``).
    position : ipywidgets.IntSlider
        Control over the output positions ``0 .. H_out * W_out - 1`` in row-major order;
        ``play``, a ``Play`` widget linked to it, steps through them.
    valid : bool
        ``False`` when the (dilated) kernel is larger than the padded input.
    out_size : int or None
        ``H_out`` (== ``W_out``), or ``None`` when not valid.
    output_cell : tuple of int or None
        ``(row, col)`` of the current output position, or ``None``.
    taps : list of tuple of int
        The input cells ``(row, col)`` the kernel reads at that position, in input
        coordinates (``-padding .. size + padding - 1``; outside ``0 .. size - 1`` is
        padding), row-major over the kernel entries ``(u, v)``.
    unused : int
        Rows (== columns) of the padded input no position covers.
    formula : ipywidgets.HTMLMath
        The formula, its numbers and the result.
    """

    def __init__(self, size=5, kernel_size=3, stride=2, padding=1, dilation=1):
        who = "conv_arithmetic"
        values = {
            name: as_int(value, name, who, low=lo, high=hi)
            for (name, (lo, hi)), value in zip(
                _LIMITS.items(), (size, kernel_size, stride, padding, dilation), strict=True
            )
        }
        labels = {
            "size": "input H = W",
            "kernel_size": "kernel k",
            "stride": "stride s",
            "padding": "padding p",
            "dilation": "dilation d",
        }
        for name, (lo, hi) in _LIMITS.items():
            setattr(self, name, slider(labels[name], values[name], lo, hi))
        self.play = widgets.Play(value=0, min=0, max=0, interval=900, description="play")
        self.position = slider("output position", 0, 0, 0)
        widgets.link((self.play, "value"), (self.position, "value"))
        self.formula = widgets.HTMLMath()
        self.valid = True
        self.out_size: int | None = None
        self.output_cell: tuple[int, int] | None = None
        self.taps: list[tuple[int, int]] = []
        self.unused = 0
        geometry = [getattr(self, name) for name in _LIMITS]
        controls = widgets.HBox(
            [
                widgets.VBox(geometry[:3]),
                widgets.VBox([*geometry[3:], widgets.HBox([self.play, self.position])]),
            ]
        )
        super().__init__([controls, self.formula])
        for control in geometry:
            control.observe(self._geometry_changed, names="value")
        self._watch(self.position)
        with self.hold():
            self._update_positions()
            self._pending = True

    def _geometry_changed(self, change) -> None:
        with self.hold():
            self._update_positions()
            self._pending = True

    def _numbers(self) -> tuple[int, int, int, int, int]:
        size, kernel, stride, padding, dilation = (
            int(getattr(self, name).value) for name in _LIMITS
        )
        return size, kernel, stride, padding, dilation

    def _update_positions(self) -> None:
        n = output_size(*self._numbers())
        count = n * n if n > 0 else 1
        for control in (self.position, self.play):
            control.value = 0
            control.max = count - 1
        self.position.disabled = self.play.disabled = n <= 0

    def _compute(self) -> None:
        h, k, s, p, d = self._numbers()
        n = output_size(h, k, s, p, d)
        span = d * (k - 1) + 1
        self.valid = span <= h + 2 * p
        if not self.valid:
            self.out_size = self.output_cell = None
            self.taps = []
            self.unused = 0
            return
        self.out_size = n
        i, j = divmod(int(self.position.value), n)
        self.output_cell = (i, j)
        self.taps = [(i * s + u * d - p, j * s + v * d - p) for u in range(k) for v in range(k)]
        self.unused = (h + 2 * p - span) % s

    def _formula(self) -> str:
        h, k, s, p, d = self._numbers()
        top = h + 2 * p - d * (k - 1) - 1
        n = output_size(h, k, s, p, d)
        return (
            r"$$H_{out} = \left\lfloor \frac{H + 2p - d\,(k - 1) - 1}{s} \right\rfloor + 1"
            rf" = \left\lfloor \frac{{{h} + 2\cdot {p} - {d}\cdot({k} - 1) - 1}}{{{s}}}"
            rf" \right\rfloor + 1 = \left\lfloor \frac{{{top}}}{{{s}}} \right\rfloor + 1"
            rf" = {top // s} + 1 = {n}$$"
            "<div style='text-align:center'>(the same for the width; here W = H)</div>"
        )

    def _explain(self) -> tuple[str, str]:
        h, k, s, p, d = self._numbers()
        span = d * (k - 1) + 1
        if not self.valid:
            return (
                f"<b>Invalid:</b> the kernel spans d(k - 1) + 1 = {d}&middot;({k} - 1) + 1 = "
                f"<b>{span}</b> cells, but the padded input has only H + 2p = {h} + 2&middot;"
                f"{p} = <b>{h + 2 * p}</b>. No position of the kernel fits, so the output "
                "would be empty (torch raises an error). Make the input or the padding "
                "larger, or the kernel or the dilation smaller.",
                "warning",
            )
        assert self.output_cell is not None  # valid: set by _compute
        i, j = self.output_cell
        rows = f"{i * s - p}..{i * s - p + span - 1}"
        cols = f"{j * s - p}..{j * s - p + span - 1}"
        notes = [
            f"Output ({i}, {j}) reads input rows {rows} and columns {cols} (step d = {d}): "
            f"row i&middot;s + u&middot;d - p for kernel row u = 0..{k - 1}."
        ]
        if self.unused:
            notes.append(
                f"The stride does not divide evenly: the last {self.unused} row(s) and "
                "column(s) of the padded input are never covered (the floor in the formula)."
            )
        if p >= span:
            notes.append(
                f"The padding ({p}) is at least the kernel's span ({span}): the corner outputs "
                "see only zeros (they equal the bias)."
            )
        return " ".join(notes), "info"

    def _draw(self):
        h, k, s, p, d = self._numbers()
        self.formula.value = self._formula()
        text, kind = self._explain()
        self.show_message(text, kind)
        size = h + 2 * p
        fig = new_figure(9.5, 4.4, margins=GRID_MARGINS)
        ratios = [size, max(self.out_size or 1, 0.4 * size)]
        left, right = fig.subplots(1, 2, width_ratios=ratios)
        pad_mask = np.ones((size, size), dtype=bool)
        pad_mask[p : p + h, p : p + h] = False
        draw_grid(
            left,
            np.zeros((size, size)),
            cmap=None,
            numbers=False,
            shade=pad_mask,
            origin=(-p, -p),
            title=f"input {h}x{h} padded by {p} (hatched): {size}x{size}",
        )
        if not self.valid:
            right.text(
                0.5,
                0.5,
                "no output:\nkernel larger than\nthe padded input",
                ha="center",
                va="center",
                fontsize=12,
                color="#a4262c",
            )
            right.set_axis_off()
            return fig
        n = self.out_size
        assert n is not None and self.output_cell is not None  # valid: set by _compute
        cells = [(r + p, c + p) for r, c in self.taps]
        outline_cells(left, cells, _TAP, fill=0.55, linewidth=1.5)
        for index, (r, c) in enumerate(cells):
            u, v = divmod(index, k)
            left.text(c, r, f"{u}{v}", ha="center", va="center", fontsize=7, zorder=5)
        top, first = cells[0]
        span = d * (k - 1) + 1  # the receptive field's extent
        outline_block(left, top, first, span, span, _TAP, linewidth=1.5, linestyle="--")
        i, j = self.output_cell
        done = np.zeros((n, n))
        done.reshape(-1)[: i * n + j] = 1
        draw_grid(
            right,
            done,
            cmap=None,
            numbers=False,
            title=f"output {n}x{n}: position {i * n + j + 1} of {n * n}",
        )
        finished = [divmod(q, n) for q in range(i * n + j)]
        outline_cells(right, finished, _DONE, fill=0.5, linewidth=0)
        outline_cells(right, [(i, j)], _TAP, fill=0.55)
        return fig


def conv_arithmetic(size=5, kernel_size=3, stride=2, padding=1, dilation=1) -> ConvArithmetic:
    """Convolution arithmetic: how size, kernel, stride, padding, dilation give the output size.

    Shows the input with its zero padding (hatched), the cells the kernel reads at one
    output position (entry ``(u, v)`` reads padded cell ``(i*s + u*d, j*s + v*d)``), the
    output grid filling up position by position (press play or drag the slider), and the
    formula with the numbers filled in::

        H_out = floor((H + 2p - d(k - 1) - 1) / s) + 1

    The kernel covers ``d(k - 1) + 1`` cells. When that is more than the padded input
    ``H + 2p``, no position fits: the widget says so instead of drawing an output. It also
    points out the rows a stride leaves uncovered and outputs that only see padding.

    Parameters
    ----------
    size, kernel_size, stride, padding, dilation : int
        The sliders' starting values: ``size`` H = W in 1..10, ``kernel_size`` 1..7,
        ``stride`` 1..4, ``padding`` 0..4, ``dilation`` 1..4. The default (5, 3, 2, 1, 1)
        gives a 3x3 output.

    Returns
    -------
    ConvArithmetic
        Sliders ``size``, ``kernel_size``, ``stride``, ``padding``, ``dilation``,
        ``position``; state ``valid``, ``out_size``, ``taps``.
    """
    return ConvArithmetic(size, kernel_size, stride, padding, dilation)
