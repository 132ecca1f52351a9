"""``gradcheck_view``: heatmaps of a gradient check's per-element relative errors."""

from __future__ import annotations

from itertools import pairwise
from typing import Literal

import numpy as np

from ..gradcheck import GradCheckReport
from ._base import Explorer, widgets
from .drawing import mosaic, new_figure

__all__ = ["GradCheckView", "gradcheck_view"]

_ZONES = ("good", "ok", "suspicious", "wrong")
_TOP = 2.0  # the relative error |a - n| / max(|a|, |n|) never exceeds 2


class GradCheckView(Explorer):
    """One heatmap per checked tensor of a :class:`~cvcourse.gradcheck.GradCheckReport`.

    Attributes
    ----------
    tensor_select : ipywidgets.Dropdown
        Control: the report's tensor names.
    report : GradCheckReport
        The report shown.
    heatmaps : dict of str to np.ndarray
        Name -> the 2-D picture of that tensor's errors (its ``TensorCheck.error_map()``
        tiled by :func:`cvcourse.widgets.drawing.mosaic`; NaN where an element was not
        checked (grey) and in the gaps between tiles (white)).
    error_map : np.ndarray
        The selected tensor's ``error_map()``, in the tensor's own shape.
    lower : float
        The smallest error drawn; zeros and anything below are drawn at ``lower``.
    """

    def __init__(self, report: GradCheckReport):
        who = "gradcheck_view"
        if not isinstance(report, GradCheckReport):
            raise TypeError(
                f"{who}: report must be a GradCheckReport (what cvcourse.gradcheck."
                f"check_gradients returns), got {type(report).__name__}"
            )
        if len(report) == 0:
            raise ValueError(f"{who}: the report has no tensors, so there is nothing to show")
        self.report = report
        self.heatmaps = {t.name: mosaic(t.error_map()) for t in report.tensors}
        self._kinks = {t.name: mosaic(_kink_map(t)) for t in report.tensors}
        positive = [float(np.nanmin(m[m > 0])) for m in self.heatmaps.values() if np.any(m > 0)]
        self.lower = min([report.thresholds[0] / 100, *positive])
        self.tensor_select = widgets.Dropdown(
            options=report.names, value=report.names[0], description="tensor"
        )
        self.error_map = report.tensors[0].error_map()
        table = widgets.HTML(report._repr_html_())
        super().__init__([self.tensor_select], extra=[table])
        self._watch(self.tensor_select)
        self.refresh()

    def _compute(self) -> None:
        self.error_map = self.report[self.tensor_select.value].error_map()

    def _draw(self):
        import matplotlib
        from matplotlib.colors import LogNorm

        check = self.report[self.tensor_select.value]
        picture = self.heatmaps[check.name]
        rows, cols = picture.shape
        height = float(np.clip(0.5 + 0.35 * rows, 2.4, 6.5))
        width = float(np.clip(3.5 + (height - 0.8) * cols / max(rows, 1), 5.0, 11.0))
        fig = new_figure(width, height)
        ax = fig.subplots(1, 1)
        cmap = matplotlib.colormaps["RdYlGn_r"].with_extremes(bad="#dddddd")
        shown = np.where(np.isnan(picture), np.nan, np.maximum(picture, self.lower))
        aspect: Literal["equal", "auto"] = (
            "equal" if max(rows, cols) <= 8 * min(rows, cols) else "auto"
        )
        image = ax.imshow(
            shown,
            cmap=cmap,
            norm=LogNorm(self.lower, _TOP),
            interpolation="nearest",
            aspect=aspect,
        )
        gaps = np.isnan(mosaic(np.zeros(check.shape)))  # between tiles: white, not grey
        if gaps.any():
            overlay = np.zeros((*gaps.shape, 4))
            overlay[gaps] = 1.0
            ax.imshow(overlay, interpolation="nearest", aspect=aspect)
        kinks = np.argwhere(self._kinks[check.name] > 0)
        if len(kinks):
            ax.scatter(
                kinks[:, 1],
                kinks[:, 0],
                marker="x",
                color="#0c4a6e",
                s=30,
                label="kink (not counted)",
            )
            ax.legend(loc="upper right", fontsize=8, framealpha=0.8)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(
            f"{check.name} {check.shape}: relative error per element ({check.status})", fontsize=10
        )
        bar = fig.colorbar(image, ax=ax, shrink=0.9)
        bar.set_label("|a - n| / max(|a|, |n|, floor)")
        for value in self.report.thresholds:
            bar.ax.axhline(value, color="black", linewidth=1.2)
        # The thresholds as numbers on the lines, each zone's name inside its own band (a
        # label on a line, like "0.01: suspicious below", can be read as either side).
        (edges, numbers), (middles, names) = colour_bar_labels(self.report.thresholds, self.lower)
        bar.set_ticks(edges, labels=numbers)
        bar.ax.minorticks_off()
        bar.ax.yaxis.set_ticks(middles, labels=names, minor=True)
        bar.ax.tick_params(labelsize=8)
        bar.ax.tick_params(which="minor", length=0, labelsize=8, labelcolor="#333333")
        self.show_message(self._summary(check))
        return fig

    @staticmethod
    def _summary(check) -> str:
        if check.status == "skipped":
            return f"<b>{check.name}</b>: skipped ({check.hint or 'no analytic gradient'})."
        layout = {
            0: "one value",
            1: "a row",
            2: "rows x columns",
            3: "the first axis side by side",
        }.get(len(check.shape), "rows: axis 0, columns: axis 1, each tile the last two axes")
        text = (
            f"<b>{check.name}</b>: status <b>{check.status}</b>, max relative error "
            f"{check.max_error:.2e} at {check.worst_index}, {check.n_checked} of "
            f"{check.n_total} elements checked (grey: not checked). Layout: {layout}."
        )
        if check.hint:
            text += f"<br>{check.hint}"
        return text


def colour_bar_labels(thresholds, lower: float, top: float = _TOP):
    """Where the colour bar of relative errors gets its labels, and what they say.

    Returns ``((edges, numbers), (middles, names))``: the zone boundaries ``lower``, the
    three thresholds and ``top``, labelled with their values; and one position per zone
    (the geometric middle of its band, so it sits inside the band on the log scale),
    labelled with the zone's name and range, e.g. ``"ok: 1e-7 to 1e-4"``.
    """
    bounds = [float(lower), *(float(t) for t in thresholds), float(top)]
    if len(bounds) != 5 or not all(a < b for a, b in pairwise(bounds)):
        raise ValueError(
            f"colour_bar_labels: need lower < three increasing thresholds < top, got {bounds}"
        )
    numbers = [_short(v) for v in bounds[:-1]] + [f"{_short(top)} (max)"]
    middles = [float(np.sqrt(a * b)) for a, b in pairwise(bounds)]
    good, ok, suspicious = (_short(t) for t in bounds[1:4])
    names = [
        f"good: below {good}",
        f"ok: {good} to {ok}",
        f"suspicious: {ok} to {suspicious}",
        f"wrong: {suspicious} and above",
    ]
    return (bounds, numbers), (middles, names)


def _short(value: float) -> str:
    """1e-07 -> "1e-7", 0.01 -> "1e-2", 2.0 -> "2": one significant digit."""
    if 1 <= value < 1000:
        return f"{value:.1g}"
    mantissa, exponent = f"{value:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def _kink_map(check) -> np.ndarray:
    out = np.zeros(check.shape)
    out.reshape(-1)[check.indices[check.kinks]] = 1.0
    return out


def gradcheck_view(report: GradCheckReport) -> GradCheckView:
    """Heatmaps of the per-element relative error of every tensor in a gradient check.

    For each checked element ``i`` of a tensor (an input or a parameter),
    ``cvcourse.gradcheck.check_gradients`` compared the analytic gradient ``a`` with the
    centred difference ``n = (L(x + h e_i) - L(x - h e_i)) / 2h``::

        err[i] = |a[i] - n[i]| / max(|a[i]|, |n[i]|, floor)

    The heatmap shows ``err`` on a log scale (green: good, red: wrong) with the report's
    thresholds marked on the colour bar (CS231n's: below 1e-7 good, up to 1e-4 ok, up to
    1e-2 suspicious, above that wrong). A pattern in the picture often names the bug: one
    bad row or channel, only the borders (padding), only every other element (stride).
    Unchecked elements are grey; kinks (ReLU at 0, ties in max) are crossed.

    Tensors of any rank are tiled into one picture: a matrix as is, ``(N, C, H, W)`` as
    ``N`` rows of ``C`` tiles of ``H x W``.

    Parameters
    ----------
    report : GradCheckReport
        What ``check_gradients`` returned.

    Returns
    -------
    GradCheckView
        Pick the tensor with ``tensor_select``; ``heatmaps`` holds every tensor's picture,
        ``error_map`` the selected one's errors.
    """
    return GradCheckView(report)
