"""``kernel_explorer``: a photo filtered by a 3x3 kernel you pick or type in, live."""

from __future__ import annotations

import numpy as np

from cvcourse._checks import as_choice, as_flag

from ..data import from_nchw, rgb_to_gray, sample_image, sample_image_names, to_nchw
from ..filters import FILTERS, as_conv_weight
from ..kernels import conv2d
from ._base import Explorer, real_array, widgets
from .drawing import new_figure

__all__ = ["DISPLAY_MODES", "KernelExplorer", "kernel_explorer"]

CUSTOM = "custom"
YOUR_IMAGE = "your image"
#: How the output is turned into a picture (see :class:`KernelExplorer`).
DISPLAY_MODES = ("auto", "clip", "abs", "signed")
_LABELS = {
    "identity": "identity",
    "box_blur": "box blur",
    "gaussian_blur": "Gaussian blur",
    "sharpen": "sharpen",
    "sobel_top": "Sobel top",
    "sobel_bottom": "Sobel bottom",
    "sobel_left": "Sobel left",
    "sobel_right": "Sobel right",
    "outline": "outline",
    "emboss": "emboss",
}
_FORMULA = (
    r"$\mathrm{out}[y, x] = \sum_{i=0}^{2}\sum_{j=0}^{2} K[i, j]\,"
    r"\mathrm{img}[y + i - 1,\ x + j - 1]$ &nbsp; (cross-correlation, zero padding 1, "
    "the output has the input's size; a colour image is filtered channel by channel)"
)


class KernelExplorer(Explorer):
    """A photo and the same photo cross-correlated with a 3x3 kernel, side by side.

    The attributes up to ``display_mode`` are the controls (set their ``.value`` from
    Python to drive the widget); the arrays after them are recomputed on every change.

    Attributes
    ----------
    image_select : ipywidgets.Dropdown
        The sample images (and ``"your image"`` if one was given).
    gray : ipywidgets.Checkbox
        Convert a colour image to grey first (BT.601 luma).
    filter_select : ipywidgets.Dropdown
        The lectures' filters (names of ``cvcourse.filters.FILTERS``) and ``"custom"``.
        Choosing a filter fills the grid.
    cells : list of list of ipywidgets.FloatText
        3x3, the kernel ``K[i][j]``. Editing one switches ``filter_select`` to ``"custom"``.
    display_mode : ipywidgets.Dropdown
        :data:`DISPLAY_MODES`: ``"clip"`` shows ``out`` clipped to [0, 1]; ``"abs"`` shows
        ``|out| / max|out|``; ``"signed"`` maps 0 to mid-grey (grey images: a
        blue-white-red map); ``"auto"`` clips kernels summing to 1 (they keep brightness)
        and shows ``|out|`` for the others (edge detectors).
    input : np.ndarray
        The image being filtered, float32, ``(H, W)`` or ``(H, W, 3)``.
    output : np.ndarray
        ``cvcourse.kernels.conv2d`` of it with :attr:`kernel`, padding 1, same shape.
    shown : np.ndarray
        The output as displayed (values in [0, 1]).
    kernel : np.ndarray
        (property) the grid's values as a float64 ``(3, 3)`` array.
    """

    def __init__(self, image=None, *, filter: str = "sharpen", gray: bool = True):
        who = "kernel_explorer"
        names = sample_image_names()
        self._own_image: np.ndarray | None = None
        default = "grace_hopper"
        if isinstance(image, str):
            default = as_choice(image, "image", names, who)
        elif image is not None:
            arr = real_array(image, "image", who, ndim=(2, 3), min_size=3)
            if np.asarray(image).dtype == np.uint8:
                arr = arr / 255.0  # 8-bit pixels, as Pillow loads them
            if arr.ndim == 3 and arr.shape[2] != 3:
                raise ValueError(
                    f"{who}: image must be (H, W) grey or (H, W, 3) RGB, channels last; got "
                    f"shape {arr.shape}"
                )
            self._own_image = arr.astype(np.float32)
            names = [YOUR_IMAGE, *names]
            default = YOUR_IMAGE
        as_choice(filter, "filter", [*FILTERS, CUSTOM], who)
        gray = as_flag(gray, "gray", who)

        self.image_select = widgets.Dropdown(options=names, value=default, description="image")
        self.gray = widgets.Checkbox(value=bool(gray), description="grey", indent=False)
        options = [(label, name) for name, label in _LABELS.items() if name in FILTERS]
        options += [(name, name) for name in FILTERS if name not in _LABELS]
        self.filter_select = widgets.Dropdown(
            options=[*options, (CUSTOM, CUSTOM)], value=filter, description="filter"
        )
        self.display_mode = widgets.Dropdown(
            options=DISPLAY_MODES, value="auto", description="show"
        )
        start = FILTERS[filter] if filter != CUSTOM else FILTERS["identity"]
        self.cells = [
            [
                widgets.FloatText(value=float(start[i, j]), step=0.1, layout={"width": "80px"})
                for j in range(3)
            ]
            for i in range(3)
        ]
        grid = widgets.GridBox(
            [cell for row in self.cells for cell in row],
            layout={"grid_template_columns": "repeat(3, 84px)", "grid_gap": "2px"},
        )
        self.input = np.zeros((3, 3), np.float32)
        self.output = np.zeros((3, 3), np.float32)
        self.shown = np.zeros((3, 3))
        self._images: dict[tuple[str, bool], np.ndarray] = {}
        self._filling = False

        controls = widgets.HBox(
            [
                widgets.VBox([self.image_select, self.gray, self.filter_select, self.display_mode]),
                widgets.VBox([widgets.HTML("<b>kernel K</b>"), grid]),
            ]
        )
        super().__init__([controls, widgets.HTMLMath(_FORMULA)])
        self.filter_select.observe(self._filter_changed, names="value")
        for row in self.cells:
            for cell in row:
                cell.observe(self._cell_changed, names="value")
        self._watch(self.image_select, self.gray, self.display_mode)
        self.refresh()

    # --- kernel ---------------------------------------------------------------------------

    @property
    def kernel(self) -> np.ndarray:
        """The current kernel, from the grid, as a float64 ``(3, 3)`` array."""
        return np.array([[cell.value for cell in row] for row in self.cells], dtype=np.float64)

    def set_kernel(self, kernel) -> None:
        """Type a whole ``(3, 3)`` kernel into the grid (the filter becomes ``"custom"``)."""
        k = real_array(kernel, "kernel", "KernelExplorer.set_kernel", ndim=2)
        if k.shape != (3, 3):
            raise ValueError(f"KernelExplorer.set_kernel: kernel must be 3x3, got {k.shape}")
        with self.hold():
            for i in range(3):
                for j in range(3):
                    self.cells[i][j].value = float(k[i, j])
            self.filter_select.value = CUSTOM

    def _filter_changed(self, change) -> None:
        if change["new"] == CUSTOM:
            return  # keep whatever is in the grid
        with self.hold():
            self._filling = True
            try:
                for i in range(3):
                    for j in range(3):
                        self.cells[i][j].value = float(FILTERS[change["new"]][i, j])
            finally:
                self._filling = False
            self._pending = True

    def _cell_changed(self, change) -> None:
        with self.hold():
            if not self._filling and self.filter_select.value != CUSTOM:
                self.filter_select.value = CUSTOM
            self._pending = True

    # --- compute and draw -----------------------------------------------------------------

    def _image(self) -> np.ndarray:
        key = (self.image_select.value, bool(self.gray.value))
        if key not in self._images:
            name, gray = key
            img = self._own_image if name == YOUR_IMAGE else sample_image(name)
            assert img is not None  # "your image" is offered only when one was given
            if gray and img.ndim == 3:
                img = rgb_to_gray(img)
            self._images[key] = np.ascontiguousarray(img, dtype=np.float32)
        return self._images[key]

    def _compute(self) -> None:
        img = self._image()
        kernel = self.kernel.astype(np.float32)
        if not np.all(np.isfinite(kernel)):
            raise ValueError("the kernel contains NaN or inf")
        channels = 1 if img.ndim == 2 else img.shape[2]
        weight = as_conv_weight(kernel, channels=channels, depthwise=True, dtype=np.float32)
        out = conv2d(to_nchw(img), weight, padding=1, groups=channels)
        self.input = img
        self.output = from_nchw(out)
        self.shown = self._shown(self.output, float(kernel.sum()))

    def _mode(self, total: float) -> str:
        mode = self.display_mode.value
        if mode == "auto":
            mode = "clip" if abs(total - 1.0) < 1e-6 else "abs"
        return mode

    def _shown(self, out: np.ndarray, total: float) -> np.ndarray:
        mode = self._mode(total)
        if mode == "clip":
            return np.clip(out, 0.0, 1.0)
        peak = float(np.max(np.abs(out))) or 1.0
        if mode == "abs":
            return np.abs(out) / peak
        return 0.5 + out / (2 * peak)

    def _draw(self):
        img, out = self.input, self.output
        total = float(self.kernel.sum())
        mode = self._mode(total)
        h, w = img.shape[:2]
        fig = new_figure(10, float(np.clip(5.0 * h / w, 2.5, 6.0)) + 0.4)
        left, right = fig.subplots(1, 2)
        grey = img.ndim == 2
        left.imshow(img, cmap="gray" if grey else None, vmin=0, vmax=1)
        left.set_title(f"input {h}x{w}" + (" (grey)" if grey else " (RGB)"), fontsize=10)
        cmap = ("RdBu_r" if mode == "signed" else "gray") if grey else None
        right.imshow(self.shown, cmap=cmap, vmin=0, vmax=1)
        shown_as = {
            "clip": "clipped to [0, 1]",
            "abs": "|out| / max|out|",
            "signed": "0 at mid-grey",
        }[mode]
        right.set_title(f"output, {shown_as}", fontsize=10)
        for ax in (left, right):
            ax.set_axis_off()
        name = self.filter_select.value
        effect = (
            "sums to 1: flat regions keep their brightness"
            if abs(total - 1) < 1e-6
            else "sums to 0: flat regions become 0, only changes respond"
            if abs(total) < 1e-6
            else "changes the overall brightness by this factor"
        )
        self.show_message(
            f"filter <b>{_LABELS.get(name, name)}</b>; kernel sum = {total:.4g} ({effect}); "
            f"output range [{float(out.min()):.3g}, {float(out.max()):.3g}]"
        )
        return fig


def kernel_explorer(image=None, *, filter: str = "sharpen", gray: bool = True) -> KernelExplorer:
    """Filter a photo with a 3x3 kernel and see the input and the output side by side, live.

    Pick a sample photo (``cvcourse.data.sample_image``: grace_hopper, present,
    matplotlib_logo, mri) or pass your own ``image`` (``(H, W)`` or ``(H, W, 3)``, values
    in [0, 1]; a sample's name also works), pick one of the lectures' filters (identity,
    box blur, Gaussian blur, sharpen, Sobel top/bottom/left/right, outline, emboss; see
    ``cvcourse.filters``) or type the nine numbers of your own kernel. The output is the
    cross-correlation with zero padding 1, computed by ``cvcourse.kernels.conv2d``::

        out[y, x] = sum_{i, j} K[i, j] * img[y + i - 1, x + j - 1]

    Kernels summing to 1 (blurs, sharpen, emboss) keep a flat region's brightness and are
    shown clipped to [0, 1]; kernels summing to 0 (Sobel, outline) answer only to change and
    are shown as ``|out|`` scaled to its maximum (change ``display_mode`` to compare).

    Parameters
    ----------
    image : str or np.ndarray, optional
        ``None`` (the sample photos), a sample's name, or your own image array (floats in
        [0, 1], or uint8, which is divided by 255).
    filter : str
        The filter selected at the start (a name of ``FILTERS`` or ``"custom"``).
    gray : bool
        Start with colour images converted to grey.

    Returns
    -------
    KernelExplorer
        Its attributes ``filter_select``, ``cells``, ``input``, ``output``, ``kernel`` let a
        notebook or a test drive and read it.
    """
    return KernelExplorer(image, filter=filter, gray=gray)
