"""Drawing helpers: a pyplot-free Figure, its PNG bytes, numbered cell grids, tile mosaics.

Nothing here touches pyplot's global state: every picture is a ``matplotlib.figure.Figure``
rendered by the Agg canvas into PNG bytes, which a ``widgets.Image`` shows. That works
headless, in tests, and in exported HTML (the bytes are part of the widget state).
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

__all__ = [
    "GRID_MARGINS",
    "draw_grid",
    "label_tiles",
    "mosaic",
    "new_figure",
    "outline_block",
    "outline_cells",
    "tile_grid",
    "tile_image",
    "to_png",
]

DPI = 90


def new_figure(width: float, height: float, *, margins: dict | None = None) -> Figure:
    """A ``Figure`` of ``width`` x ``height`` inches on an Agg canvas (no pyplot).

    Without ``margins`` the layout is matplotlib's "constrained" one; with them (keyword
    arguments of ``Figure.subplots_adjust``) the axes are placed directly, which renders
    about twice as fast: the explorers of small grids, redrawn on every change, use that.
    """
    fig = Figure(figsize=(width, height), dpi=DPI, layout=None if margins else "constrained")
    FigureCanvasAgg(fig)
    if margins:
        fig.subplots_adjust(**margins)
    return fig


#: Margins for rows of numbered grids (tick labels left and below, a title above).
GRID_MARGINS = {"left": 0.03, "right": 0.99, "bottom": 0.07, "top": 0.9, "wspace": 0.12}


def to_png(fig: Figure) -> bytes:
    """The figure rendered as PNG bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def _text_colour(value: float, cmap, norm) -> str:
    """Black or white, whichever reads better on the cell colour of ``value``."""
    if cmap is None or not np.isfinite(value):
        return "black"
    r, g, b, _ = cmap(norm(value))
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"


def draw_grid(
    ax,
    values: np.ndarray,
    *,
    title: str = "",
    cmap="Greys",
    vmin: float | None = None,
    vmax: float | None = None,
    fmt: str = "{:g}",
    numbers: bool = True,
    skip_zeros: bool = False,
    shade=None,
    origin: tuple[int, int] = (0, 0),
    labels: bool = True,
) -> None:
    """Draw a small 2-D array as a grid of coloured cells with their values written in.

    ``shade`` (a boolean array of ``values``' shape) hatches cells, e.g. the zero padding.
    ``numbers`` writes each value in its cell (``skip_zeros``: except the zeros).
    ``origin`` is the (row, col) label of the top-left cell (``(-p, -p)`` for an input
    padded by ``p``, so the tick labels are the unpadded indices). NaN cells are blank.
    """
    values = np.asarray(values, dtype=float)
    rows, cols = values.shape
    finite = values[np.isfinite(values)]
    lo = vmin if vmin is not None else (float(finite.min()) if finite.size else 0.0)
    hi = vmax if vmax is not None else (float(finite.max()) if finite.size else 1.0)
    if hi <= lo:
        lo, hi = lo - 1.0, hi + 1.0
    norm = Normalize(lo, hi)
    colormap = None
    if cmap is not None:
        import matplotlib

        colormap = matplotlib.colormaps[cmap] if isinstance(cmap, str) else cmap
        colormap = colormap.with_extremes(bad="white")
        ax.imshow(np.ma.masked_invalid(values), cmap=colormap, norm=norm, interpolation="nearest")
    else:
        ax.imshow(np.zeros((rows, cols)), cmap="Greys", vmin=0, vmax=1)
    ax.set_xlim(-0.5, cols - 0.5)
    ax.set_ylim(rows - 0.5, -0.5)
    ax.set_xticks(np.arange(cols + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(rows + 1) - 0.5, minor=True)
    ax.grid(which="minor", color="#888888", linewidth=0.6)
    ax.tick_params(which="minor", length=0)
    if labels and max(rows, cols) <= 16:
        ax.set_xticks(np.arange(cols), [str(c + origin[1]) for c in range(cols)])
        ax.set_yticks(np.arange(rows), [str(r + origin[0]) for r in range(rows)])
        ax.tick_params(which="major", length=0, labelsize=7)
    else:
        ax.set_xticks([])
        ax.set_yticks([])
    if shade is not None:
        for r, c in zip(*np.nonzero(np.asarray(shade)), strict=True):
            ax.add_patch(
                Rectangle(
                    (c - 0.5, r - 0.5),
                    1,
                    1,
                    facecolor="#e8e8e8",
                    edgecolor="#bbbbbb",
                    hatch="///",
                    linewidth=0,
                    zorder=1,
                )
            )
    if numbers and rows * cols <= 400:
        size = 9 if max(rows, cols) <= 8 else 7
        for r in range(rows):
            for c in range(cols):
                v = values[r, c]
                if np.isfinite(v) and not (skip_zeros and v == 0):
                    ax.text(
                        c,
                        r,
                        fmt.format(v),
                        ha="center",
                        va="center",
                        fontsize=size,
                        color=_text_colour(v, colormap, norm),
                        zorder=3,
                    )
    if title:
        ax.set_title(title, fontsize=10)


def outline_cells(
    ax,
    cells: Iterable[tuple[int, int]],
    colour: str,
    *,
    fill: float = 0.0,
    linewidth: float = 2.5,
    inset: float = 0.0,
) -> None:
    """Draw a coloured square around each ``(row, col)`` (optionally filled, ``fill`` alpha)."""
    for r, c in cells:
        size = 1 - 2 * inset
        if linewidth > 0:
            ax.add_patch(
                Rectangle(
                    (c - 0.5 + inset, r - 0.5 + inset),
                    size,
                    size,
                    fill=False,
                    edgecolor=colour,
                    linewidth=linewidth,
                    zorder=4,
                )
            )
        if fill:
            ax.add_patch(
                Rectangle(
                    (c - 0.5, r - 0.5),
                    1,
                    1,
                    facecolor=colour,
                    alpha=fill,
                    linewidth=0,
                    zorder=2,
                )
            )


def outline_block(
    ax,
    row: int,
    col: int,
    height: int,
    width: int,
    colour: str,
    *,
    linewidth: float = 2.5,
    linestyle: str = "-",
) -> None:
    """Draw one rectangle around the ``height`` x ``width`` block of cells at ``(row, col)``."""
    ax.add_patch(
        Rectangle(
            (col - 0.5, row - 0.5),
            width,
            height,
            fill=False,
            edgecolor=colour,
            linewidth=linewidth,
            linestyle=linestyle,
            zorder=5,
        )
    )


def mosaic(array: np.ndarray, gap: float = np.nan) -> np.ndarray:
    """Tile an array of any rank as one 2-D picture (``gap`` between the tiles).

    rank 0 -> ``(1, 1)``; 1 -> ``(1, n)``; 2 -> itself; 3 ``(A, H, W)`` -> ``A`` tiles side
    by side; 4 ``(A, B, H, W)`` -> ``A`` rows of ``B`` tiles; higher ranks fold their leading
    axes into ``A``. One-cell gaps filled with ``gap`` (NaN: blank) separate the tiles.
    """
    array = np.asarray(array, dtype=float)
    if array.ndim <= 2:
        return np.atleast_2d(array) if array.ndim else array.reshape(1, 1)
    if array.ndim == 3:
        array = array[None]
    elif array.ndim > 4:
        array = array.reshape(-1, *array.shape[-3:])
    a, b, h, w = array.shape
    out = np.full((a * (h + 1) - 1, b * (w + 1) - 1), gap)
    for i in range(a):
        for j in range(b):
            out[i * (h + 1) : i * (h + 1) + h, j * (w + 1) : j * (w + 1) + w] = array[i, j]
    return out


def tile_grid(count: int, columns: int | None = None) -> tuple[int, int]:
    """A near-square ``(rows, columns)`` arrangement for ``count`` tiles."""
    if columns is None:
        columns = max(1, math.ceil(math.sqrt(count)))
    columns = min(columns, count) if count else 1
    return max(1, math.ceil(count / columns)), columns


def tile_image(tiles: Sequence[np.ndarray], rows: int, cols: int, gap=np.nan) -> np.ndarray:
    """Lay equally shaped tiles (2-D, or 3-D RGB) row by row on a ``rows x cols`` grid.

    Tiles are separated by one cell of ``gap``; unused places are ``gap`` too. Returns
    ``(rows * (h + 1) - 1, cols * (w + 1) - 1[, 3])``.
    """
    h, w = tiles[0].shape[:2]
    extra = tiles[0].shape[2:]
    out = np.full((rows * (h + 1) - 1, cols * (w + 1) - 1, *extra), gap, dtype=float)
    for index, tile in enumerate(tiles[: rows * cols]):
        r, c = divmod(index, cols)
        out[r * (h + 1) : r * (h + 1) + h, c * (w + 1) : c * (w + 1) + w] = tile
    return out


def label_tiles(ax, tile_hw, rows: int, cols: int, row_labels=None, col_labels=None) -> None:
    """Put tick labels at the centres of the tiles drawn by :func:`tile_image`."""
    h, w = tile_hw
    ax.set_xticks([c * (w + 1) + (w - 1) / 2 for c in range(cols)] if col_labels else [])
    ax.set_yticks([r * (h + 1) + (h - 1) / 2 for r in range(rows)] if row_labels else [])
    if col_labels:
        ax.set_xticklabels(col_labels[:cols], fontsize=7)
    if row_labels:
        ax.set_yticklabels(row_labels[:rows], fontsize=7)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
