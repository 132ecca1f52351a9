"""``pattern_matching``: finding crosses and noughts in a binary image by correlation."""

from __future__ import annotations

import numpy as np

from cvcourse._checks import as_choice

from ..kernels import conv2d
from ._base import Explorer, real_array, slider, widgets
from .drawing import GRID_MARGINS, draw_grid, new_figure, outline_block, outline_cells

__all__ = ["IMAGES", "PATTERNS", "PatternMatching", "pattern_matching"]


def _frozen(rows) -> np.ndarray:
    arr = np.array(rows, dtype=np.int64)
    arr.setflags(write=False)
    return arr


#: The binary 7x7 images to choose from. "lecture slide" is the intro lecture's example.
IMAGES = {
    "lecture slide": _frozen(
        [
            [0, 1, 1, 1, 0, 0, 0],
            [0, 0, 1, 1, 1, 0, 0],
            [0, 0, 0, 1, 1, 1, 0],
            [0, 0, 0, 1, 1, 0, 0],
            [0, 0, 1, 1, 0, 1, 0],
            [0, 1, 1, 0, 1, 0, 0],
            [1, 1, 0, 1, 0, 0, 0],
        ]
    ),
    "a cross and a nought": _frozen(
        [
            [0, 0, 0, 0, 0, 0, 0],
            [1, 0, 1, 0, 0, 0, 0],
            [0, 1, 0, 0, 1, 1, 1],
            [1, 0, 1, 0, 1, 0, 1],
            [0, 0, 0, 0, 1, 1, 1],
            [0, 0, 0, 0, 0, 0, 0],
            [0, 0, 0, 0, 0, 0, 0],
        ]
    ),
    "imperfect cross and nought": _frozen(
        [
            [0, 0, 0, 0, 0, 0, 1],
            [1, 0, 1, 0, 0, 0, 0],
            [0, 1, 0, 0, 1, 1, 1],
            [1, 0, 0, 0, 1, 0, 1],
            [0, 0, 0, 0, 1, 0, 1],
            [0, 0, 0, 0, 0, 0, 0],
            [0, 1, 0, 0, 0, 0, 0],
        ]
    ),
    "all ones": _frozen(np.ones((7, 7))),
    "blank (draw your own)": _frozen(np.zeros((7, 7))),
}
#: The 3x3 patterns: +1 where the shape has ink, -1 (or 0) where it must be empty.
PATTERNS = {
    "cross (+1/-1)": _frozen([[1, -1, 1], [-1, 1, -1], [1, -1, 1]]),
    "nought (+1/-1)": _frozen([[1, 1, 1], [1, -1, 1], [1, 1, 1]]),
    "cross (0/1)": _frozen([[1, 0, 1], [0, 1, 0], [1, 0, 1]]),
    "nought (0/1)": _frozen([[1, 1, 1], [1, 0, 1], [1, 1, 1]]),
}
EDITED = "edited"
YOUR_IMAGE = "your image"


class PatternMatching(Explorer):
    """A binary image, a 3x3 pattern, and their correlation map with its maxima marked.

    The attributes up to ``window`` are the controls; the others are recomputed on every
    change.

    Attributes
    ----------
    image_select : ipywidgets.Dropdown
        :data:`IMAGES` (plus ``"your image"`` if one was given, and ``"edited"`` once a
        pixel has been clicked).
    pixels : list of list of ipywidgets.ToggleButton
        Rows of buttons, one per pixel; clicking flips it.
    pattern_select : ipywidgets.Dropdown
        :data:`PATTERNS`.
    window : ipywidgets.IntSlider
        Chooses the window shown as an elementwise product (row-major index into the
        correlation map).
    image : np.ndarray
        The current binary image, int64 ``(H, W)``.
    pattern : np.ndarray
        The current pattern, int64 ``(3, 3)``.
    correlation : np.ndarray
        ``(H - 2, W - 2)`` float64, the output ``O[i, j] = sum_{u,v} I[i+u, j+v] K[u, v]``
        (image ``I``, pattern ``K``).
    maxima : list of tuple of int
        The ``(row, col)`` cells of ``correlation`` holding its maximum (all ties).
    max_value : float
        That maximum.
    window_cell : tuple of int
        ``(row, col)`` of the window selected by ``window``.
    products : np.ndarray
        ``image[window] * pattern``, whose sum is ``correlation[window_cell]``.
    """

    def __init__(self, image=None, *, pattern: str = "cross (+1/-1)"):
        who = "pattern_matching"
        self._images = dict(IMAGES)
        default = "lecture slide"
        if image is not None:
            arr = real_array(image, "image", who, ndim=2, min_size=3)
            if max(arr.shape) > 12:
                raise ValueError(f"{who}: image must be at most 12x12, got shape {arr.shape}")
            if not np.all((arr == 0) | (arr == 1)):
                raise ValueError(f"{who}: image must be binary (only 0 and 1), shape {arr.shape}")
            same = {k: v for k, v in IMAGES.items() if v.shape == arr.shape}
            self._images = {YOUR_IMAGE: arr.astype(np.int64), **same}
            default = YOUR_IMAGE
        as_choice(pattern, "pattern", list(PATTERNS), who)
        start = self._images[default]
        self.image_select = widgets.Dropdown(
            options=list(self._images), value=default, description="image"
        )
        self.pattern_select = widgets.Dropdown(
            options=list(PATTERNS), value=pattern, description="pattern"
        )
        self.pixels = [
            [
                widgets.ToggleButton(
                    value=bool(start[r, c]), layout={"width": "28px", "height": "28px"}
                )
                for c in range(start.shape[1])
            ]
            for r in range(start.shape[0])
        ]
        grid = widgets.GridBox(
            [button for row in self.pixels for button in row],
            layout={
                "grid_template_columns": f"repeat({start.shape[1]}, 30px)",
                "grid_gap": "1px",
            },
        )
        n_windows = (start.shape[0] - 2) * (start.shape[1] - 2)
        self.window = slider("window", 0, 0, n_windows - 1)
        self.image = np.array(start)
        self.pattern = np.array(PATTERNS[pattern])
        self.correlation = np.zeros((start.shape[0] - 2, start.shape[1] - 2))
        self.maxima: list[tuple[int, int]] = []
        self.max_value = 0.0
        self.window_cell = (0, 0)
        self.products = np.zeros((3, 3))
        self._filling = False
        controls = widgets.HBox(
            [
                widgets.VBox(
                    [
                        self.image_select,
                        self.pattern_select,
                        self.window,
                        widgets.HTML(
                            "O[i, j] = &Sigma;<sub>u,v</sub> I[i + u, j + v] &middot; K[u, v]"
                            "<br>(slide the pattern over the image; no padding)"
                        ),
                    ]
                ),
                widgets.VBox([widgets.HTML("<b>click pixels to flip them</b>"), grid]),
            ]
        )
        super().__init__([controls])
        self.image_select.observe(self._image_changed, names="value")
        for row in self.pixels:
            for button in row:
                button.observe(self._pixel_changed, names="value")
        self._watch(self.pattern_select, self.window)
        with self.hold():
            self._image_changed({"new": default})

    def _image_changed(self, change) -> None:
        if change["new"] == EDITED:
            return
        picture = self._images[change["new"]]
        with self.hold():
            self._filling = True
            try:
                for r, row in enumerate(self.pixels):
                    for c, button in enumerate(row):
                        button.value = bool(picture[r, c])
                        button.button_style = "info" if picture[r, c] else ""
            finally:
                self._filling = False
            self._pending = True

    def _pixel_changed(self, change) -> None:
        change["owner"].button_style = "info" if change["new"] else ""
        with self.hold():
            if not self._filling and self.image_select.value != EDITED:
                if EDITED not in self.image_select.options:
                    self.image_select.options = [*self.image_select.options, EDITED]
                self._filling = True  # selecting "edited" must not reload a picture
                try:
                    self.image_select.value = EDITED
                finally:
                    self._filling = False
            self._pending = True

    def set_pixel(self, row: int, col: int, value: bool) -> None:
        """Set one pixel (as clicking its button would)."""
        self.pixels[row][col].value = bool(value)

    def _compute(self) -> None:
        image = np.array([[int(b.value) for b in row] for row in self.pixels], dtype=np.int64)
        pattern = np.array(PATTERNS[self.pattern_select.value])
        corr = conv2d(image[None, None].astype(np.float64), pattern[None, None].astype(float))
        self.image, self.pattern = image, pattern
        self.correlation = corr[0, 0]
        self.max_value = float(self.correlation.max())
        self.maxima = [(int(r), int(c)) for r, c in np.argwhere(self.correlation == self.max_value)]
        cols = self.correlation.shape[1]
        self.window_cell = divmod(int(self.window.value), cols)
        r, c = self.window_cell
        self.products = image[r : r + 3, c : c + 3] * pattern

    def _draw(self):
        fig = new_figure(12.5, 3.6, margins=GRID_MARGINS)
        axes = fig.subplots(1, 4, width_ratios=[7, 3.6, 3.6, 5])
        r, c = self.window_cell
        draw_grid(
            axes[0], self.image, cmap="Greys", vmin=0, vmax=1.3, numbers=False, title="image I"
        )
        for mr, mc in self.maxima:
            outline_block(axes[0], mr, mc, 3, 3, "#e8590c", linewidth=3)
        window = [(r + i, c + j) for i in range(3) for j in range(3)]
        outline_cells(axes[0], window, "#1971c2", fill=0.25, linewidth=0)
        draw_grid(
            axes[1],
            self.pattern,
            cmap="RdBu_r",
            vmin=-1.6,
            vmax=1.6,
            fmt="{:+.0f}",
            title="pattern K",
            labels=False,
        )
        draw_grid(
            axes[2],
            self.products,
            cmap="RdBu_r",
            vmin=-1.6,
            vmax=1.6,
            fmt="{:g}",
            title=f"I[window] x K, sum = {self.products.sum():g}",
            labels=False,
        )
        draw_grid(
            axes[3],
            self.correlation,
            cmap="viridis",
            fmt="{:.0f}",
            title=f"output O (max {self.max_value:g})",
        )
        outline_cells(axes[3], self.maxima, "#e8590c", linewidth=3)
        outline_cells(axes[3], [self.window_cell], "#1971c2", linewidth=2, inset=0.12)
        where = ", ".join(str(m) for m in self.maxima)
        name = self.pattern_select.value
        shape = name.split(" ")[0]
        note = (
            " With a 0/1 pattern, a window full of ink scores as high as a perfect match: "
            "the -1 entries are what penalise ink where the shape must be empty."
            if "0/1" in name
            else ""
        )
        self.show_message(
            f"The {shape} pattern matches best at window{'s' * (len(self.maxima) > 1)} "
            f"{where} (top-left corner, orange), with score {self.max_value:g} "
            f"(a perfect {shape} scores {int(np.clip(self.pattern, 0, None).sum())}). "
            f"The blue window ({r}, {c}) scores {self.correlation[r, c]:g}.{note}"
        )
        return fig


def pattern_matching(image=None, *, pattern: str = "cross (+1/-1)") -> PatternMatching:
    """Find crosses and noughts in a binary image by sliding a 3x3 pattern over it.

    The intro lecture's intuition for convolution: for every 3x3 window of the image ``I``,
    multiply it elementwise with the pattern ``K`` and add everything up (the lecture's names:
    image ``I``, pattern ``K``, output ``O``),

        O[i, j] = sum_{u, v} I[i + u, j + v] * K[u, v]        (cross-correlation, no padding)

    The larger ``O[i, j]``, the more the window looks like the pattern; the maxima (marked
    in orange, all of them when tied) are where the shape is. With ``+1`` for ink and
    ``-1`` for must-be-empty, a perfect cross scores 5 and a perfect nought 8; the
    ``0/1`` patterns show why the ``-1`` entries matter. On the lecture's 7x7 slide the
    cross pattern gives the 5x5 map of the slide, largest (4) at row 4, column 3.

    Click pixels to flip them; the map follows. ``window`` picks a window whose elementwise
    product with the pattern is shown.

    Parameters
    ----------
    image : np.ndarray, optional
        ``None`` (the built-in 7x7 images, :data:`IMAGES`), or your own binary 2-D array
        (0 and 1 only, 3x3 to 12x12; offered with the built-in ones of its shape).
    pattern : str
        The starting pattern, a key of :data:`PATTERNS`.

    Returns
    -------
    PatternMatching
        Controls ``image_select``, ``pattern_select``, ``pixels``, ``window``; arrays
        ``image``, ``correlation``, ``maxima``, ``max_value``.
    """
    return PatternMatching(image, pattern=pattern)
