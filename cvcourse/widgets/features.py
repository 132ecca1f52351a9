"""``show_filters`` and ``show_feature_maps``: what a CNN's layers hold and compute."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from cvcourse._checks import as_int

from ._base import Explorer, widgets
from .drawing import label_tiles, new_figure, tile_grid, tile_image

__all__ = ["FeatureMaps", "FilterGrid", "show_feature_maps", "show_filters"]

SCALES = ("per tile", "shared")


def _weight_of(obj):
    params = getattr(obj, "params", None)
    if isinstance(params, Mapping) and "weight" in params:
        weight = np.asarray(params["weight"])
        if weight.ndim == 4:
            return weight
    return None


def _as_weight(weight, who: str) -> np.ndarray:
    """A conv weight from an array, a conv layer or a model (its first conv layer)."""
    if not isinstance(weight, np.ndarray):
        found = _weight_of(weight)
        if found is None and hasattr(weight, "layers"):
            found = next((w for w in map(_weight_of, weight.layers) if w is not None), None)
        if found is None and not isinstance(weight, (list, tuple)):
            raise TypeError(
                f"{who}: weight must be a conv weight array (out, in, kH, kW), a Conv2d layer "
                f"or a model containing one, got {type(weight).__name__}"
            )
        weight = found if found is not None else np.asarray(weight)
    if weight.dtype.kind not in "biuf":
        raise TypeError(f"{who}: weight must hold real numbers, got dtype {weight.dtype}")
    if weight.ndim != 4:
        raise ValueError(
            f"{who}: weight must be 4-D (out_channels, in_channels, kH, kW), got shape "
            f"{weight.shape}"
        )
    if 0 in weight.shape:
        raise ValueError(f"{who}: weight must not be empty, got shape {weight.shape}")
    weight = weight.astype(np.float64)
    if not np.all(np.isfinite(weight)):
        raise ValueError(f"{who}: weight must be finite (it contains NaN or inf)")
    return weight


def _scale(tile: np.ndarray, peak: float) -> np.ndarray:
    return tile / peak if peak > 0 else tile


class FilterGrid(Explorer):
    """First-layer filters as a grid of small images.

    Attributes
    ----------
    scale : ipywidgets.ToggleButtons
        Control: ``"per tile"`` (each filter scaled to its own largest ``|w|``) or
        ``"shared"`` (one scale for all, to compare magnitudes).
    as_rgb : ipywidgets.Checkbox
        Control (enabled for 3 input channels): one colour image per filter,
        ``0.5 + w / (2 max|w|)`` per channel, instead of one tile per channel.
    weight : np.ndarray
        The weight shown, float64 ``(out, in, kH, kW)`` (the first ``max_filters``).
    grid_shape : tuple of int
        ``(rows, columns)`` of tiles.
    tiles : int
        Their number.
    picture : np.ndarray
        The tiled image drawn (scaled to [-1, 1]; NaN between tiles; RGB: 3-D).
    """

    def __init__(self, weight, *, max_filters: int = 64, max_channels: int = 16):
        who = "show_filters"
        weight = _as_weight(weight, who)
        max_filters = as_int(max_filters, "max_filters", who, low=1)
        max_channels = as_int(max_channels, "max_channels", who, low=1)
        self.full_shape = weight.shape
        self.weight = weight[:max_filters, :max_channels]
        self.scale = widgets.ToggleButtons(options=SCALES, value=SCALES[0], description="scale")
        rgb = weight.shape[1] == 3
        self.as_rgb = widgets.Checkbox(value=rgb, description="RGB", disabled=not rgb)
        self.grid_shape = (1, 1)
        self.tiles = 0
        self.picture = np.zeros((1, 1))
        super().__init__([widgets.HBox([self.scale, self.as_rgb])])
        self._watch(self.scale, self.as_rgb)
        self.refresh()

    def _compute(self) -> None:
        out, cin = self.weight.shape[:2]
        if cin == 1 or self.as_rgb.value:
            self.grid_shape = tile_grid(out)
            self.tiles = out
        else:
            self.grid_shape = (out, cin)
            self.tiles = out * cin

    def _draw(self):
        rows, cols = self.grid_shape
        out, cin, kh, kw = self.weight.shape
        shared = self.scale.value == "shared"
        peak_all = float(np.abs(self.weight).max())
        peaks = [peak_all if shared else float(np.abs(w).max()) for w in self.weight]
        per_filter = cin == 1 or self.as_rgb.value
        if self.as_rgb.value:
            tiles = [
                np.clip(0.5 + _scale(w, peak).transpose(1, 2, 0) / 2, 0, 1)
                for w, peak in zip(self.weight, peaks, strict=True)
            ]
            self.picture = tile_image(tiles, rows, cols, gap=1.0)
        elif per_filter:
            tiles = [_scale(w[0], peak) for w, peak in zip(self.weight, peaks, strict=True)]
            self.picture = tile_image(tiles, rows, cols)
        else:
            tiles = [_scale(self.weight[o, c], peaks[o]) for o in range(out) for c in range(cin)]
            self.picture = tile_image(tiles, rows, cols)
        fig = _tile_figure(rows, cols)
        ax = fig.subplots(1, 1)
        ax.imshow(self.picture, cmap=_cmap("RdBu_r"), vmin=-1, vmax=1, interpolation="nearest")
        if per_filter:
            label_tiles(ax, (kh, kw), rows, cols)
            for index in range(out):
                r, c = divmod(index, cols)
                ax.text(
                    c * (kw + 1) - 0.5,
                    r * (kh + 1) - 0.5,
                    str(index),
                    fontsize=6,
                    va="bottom",
                    ha="left",
                    color="#555555",
                )
        else:
            label_tiles(
                ax,
                (kh, kw),
                rows,
                cols,
                [f"out {o}" for o in range(out)],
                [f"in {c}" for c in range(cin)],
            )
            ax.xaxis.tick_top()
        shown = f"{out} of {self.full_shape[0]} filters"
        if self.full_shape[1] > cin:
            shown += f", {cin} of {self.full_shape[1]} input channels"
        layout = "one tile per filter" if per_filter else "rows: filters, columns: input channels"
        self.show_message(
            f"weight {self.full_shape} (out, in, kH, kW): {shown}; {layout}. Blue negative, "
            "red positive, white 0"
            + ("; RGB: grey is 0" if self.as_rgb.value else "")
            + (". One scale for all" if shared else ". Each filter scaled to its own max |w|")
            + "."
        )
        return fig


def _cmap(name: str):
    import matplotlib

    return matplotlib.colormaps[name].with_extremes(bad="white")


def _tile_figure(rows: int, cols: int):
    tile = float(np.clip(10.0 / max(rows, cols), 0.3, 1.2))  # inches per tile
    return new_figure(
        float(np.clip(0.9 + tile * cols, 3.0, 12.0)), float(np.clip(0.6 + tile * rows, 1.5, 14))
    )


def show_filters(weight, *, max_filters: int = 64, max_channels: int = 16) -> FilterGrid:
    """Show a convolution's filters ``(out_channels, in_channels, kH, kW)`` as small images.

    The filter ``o`` is what output channel ``o`` looks for: its response at a position is
    the correlation ``sum_{c, u, v} w[o, c, u, v] x[c, y + u, x + v]``, largest where the
    input looks like the filter. Trained first-layer filters tend to become edge, colour
    and blob detectors (compare with the hand-made Sobel filters of ``cvcourse.filters``).

    Filters with one input channel (or three, shown as colour images with ``as_rgb``) are
    laid out in a near-square grid, one tile each; otherwise rows are filters and columns
    input channels. Blue is negative, red positive, white 0 (``0.5`` grey in RGB).

    Parameters
    ----------
    weight : np.ndarray, Conv2d or model
        The weight array, a ``Conv2d`` layer (its ``params["weight"]``) or a model (its
        first layer with a 4-D weight).
    max_filters, max_channels : int
        Show at most this many filters and input channels.

    Returns
    -------
    FilterGrid
        Controls ``scale``, ``as_rgb``; ``grid_shape``, ``tiles``.
    """
    return FilterGrid(weight, max_filters=max_filters, max_channels=max_channels)


# --- feature maps ------------------------------------------------------------------------------


def _input(x, dtype, who: str) -> np.ndarray:
    if isinstance(x, (str, bytes)) or not hasattr(x, "__len__") and not hasattr(x, "shape"):
        raise TypeError(f"{who}: x must be an array (one image), got {type(x).__name__}")
    arr = np.asarray(x)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{who}: x must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim == 2:
        arr = arr[None, None]
    elif arr.ndim == 3:
        arr = arr[None]
    elif arr.ndim != 4 or arr.shape[0] != 1:
        raise ValueError(
            f"{who}: x must be one image, (H, W), (C, H, W) or (1, C, H, W); got shape "
            f"{arr.shape} (pass x[i:i + 1] to pick one example of a batch)"
        )
    if 0 in arr.shape:
        raise ValueError(f"{who}: x must not be empty, got shape {arr.shape}")
    arr = np.ascontiguousarray(arr, dtype=dtype)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{who}: x must be finite (it contains NaN or inf)")
    return arr


def _param_dtype(layers) -> np.dtype:
    for layer in layers:
        params = getattr(layer, "params", None)
        if isinstance(params, Mapping):
            for value in params.values():
                if isinstance(value, np.ndarray) and value.dtype.kind == "f":
                    return value.dtype
    return np.dtype(np.float32)


class FeatureMaps(Explorer):
    """The activations of a model's layers for one input, one tile per channel.

    Attributes
    ----------
    layer_select : ipywidgets.Dropdown
        Control: the layers whose output is an image batch ``(1, C, H, W)`` (and
        ``"input"``), labelled ``"<index>: <Layer> (C, H, W)"``.
    scale : ipywidgets.ToggleButtons
        Control: ``"per tile"`` (each map scaled to its own min..max) or ``"shared"`` (one
        scale for the layer).
    activations : dict of str to np.ndarray
        Label -> float array ``(C, H, W)``, every image-shaped output.
    outputs : list
        Every layer's output shape, in order (also the flat ones).
    current : np.ndarray
        The selected layer's ``(C, H, W)`` maps (the first ``max_channels``).
    grid_shape : tuple of int
        ``(rows, columns)`` of tiles.
    picture : np.ndarray
        The tiled image drawn (each tile scaled to [0, 1]; NaN between tiles).
    """

    def __init__(self, model, x, *, max_channels: int = 32):
        who = "show_feature_maps"
        if not callable(getattr(model, "forward", None)):
            raise TypeError(
                f"{who}: model must have a forward(x) method (a cvcourse.nn model), got "
                f"{type(model).__name__}"
            )
        self.max_channels = as_int(max_channels, "max_channels", who, low=1)
        layers = list(model.layers) if hasattr(model, "layers") else [model]
        x = _input(x, _param_dtype(layers), who)
        self.activations: dict[str, np.ndarray] = {"input": x[0].astype(np.float64)}
        self.outputs: list[tuple[int, ...]] = []
        before = getattr(model, "training", None)
        if callable(getattr(model, "eval", None)):
            model.eval()
        try:
            out = x
            for index, layer in enumerate(layers):
                try:
                    out = layer.forward(out)
                except (TypeError, ValueError) as exc:
                    raise type(exc)(
                        f"{who}: layer {index} ({type(layer).__name__}) failed on an input of "
                        f"shape {np.shape(out)}: {exc}"
                    ) from exc
                shape = tuple(np.shape(out))
                self.outputs.append(shape)
                if len(shape) == 4:
                    label = f"{index}: {type(layer).__name__} {shape[1:]}"
                    self.activations[label] = np.asarray(out, dtype=np.float64)[0]
        finally:
            if isinstance(before, (bool, np.bool_)) and callable(getattr(model, "train", None)):
                model.train(bool(before))
        labels = list(self.activations)
        default = labels[1] if len(labels) > 1 else labels[0]
        self.layer_select = widgets.Dropdown(options=labels, value=default, description="layer")
        self.scale = widgets.ToggleButtons(options=SCALES, value=SCALES[0], description="scale")
        self.current = self.activations[default][: self.max_channels]
        self.grid_shape = (1, 1)
        self.picture = np.zeros((1, 1))
        super().__init__([widgets.HBox([self.layer_select, self.scale])])
        self._watch(self.layer_select, self.scale)
        self.refresh()

    def _compute(self) -> None:
        self.current = self.activations[self.layer_select.value][: self.max_channels]
        self.grid_shape = tile_grid(self.current.shape[0])

    def _draw(self):
        rows, cols = self.grid_shape
        maps = self.current
        shared = self.scale.value == "shared"
        lo, hi = float(maps.min()), float(maps.max())
        tiles = []
        for m in maps:
            a, b = (lo, hi) if shared else (float(m.min()), float(m.max()))
            tiles.append((m - a) / (b - a) if b > a else np.zeros_like(m))
        self.picture = tile_image(tiles, rows, cols)
        fig = _tile_figure(rows, cols)
        ax = fig.subplots(1, 1)
        ax.imshow(self.picture, cmap=_cmap("viridis"), vmin=0, vmax=1, interpolation="nearest")
        h, w = maps.shape[1:]
        label_tiles(ax, (h, w), rows, cols)
        for index in range(maps.shape[0]):
            r, c = divmod(index, cols)
            ax.text(
                c * (w + 1) - 0.5,
                r * (h + 1) - 0.5,
                str(index),
                fontsize=6,
                va="bottom",
                ha="left",
                color="#555555",
            )
        total = self.activations[self.layer_select.value].shape[0]
        shown = f"{maps.shape[0]} of {total}" if total > maps.shape[0] else f"all {total}"
        flat = [s for s in self.outputs if len(s) != 4]
        self.show_message(
            f"<b>{self.layer_select.value}</b>: {shown} channels, each {h}x{w}, values "
            f"{lo:.3g}..{hi:.3g} (yellow high, purple low"
            + (", one scale for all" if shared else ", each map scaled to its own range")
            + ")."
            + (f" Layers with flat outputs ({len(flat)}) are not shown." if flat else "")
        )
        return fig


def show_feature_maps(model, x, *, max_channels: int = 32) -> FeatureMaps:
    """Show what every convolutional layer of a model computes for one input image.

    ``model`` is run on ``x`` layer by layer (``model.layers``, e.g. a
    ``cvcourse.nn.Sequential``; in evaluation mode, restored afterwards), and every output
    of shape ``(1, C, H, W)`` is kept: channel ``c`` of a conv layer is the map of where
    its filter ``c`` responds (``y[c] = b[c] + sum_{c', u, v} w[c, c', u, v] x[c', i+u, j+v]``),
    after ReLU only the positive part, after pooling a coarser grid. Deeper layers have
    more channels, smaller maps and more abstract patterns.

    Note: this runs ``forward`` on the model, which replaces its layers' cached inputs;
    call it between training steps, not between a ``forward`` and its ``backward``.

    Parameters
    ----------
    model : object
        A model with ``forward`` (and ``layers`` to see inside; otherwise only its output
        is shown).
    x : np.ndarray
        One image, ``(H, W)``, ``(C, H, W)`` or ``(1, C, H, W)`` (cast to the model's
        parameter dtype).
    max_channels : int
        Show at most this many channels per layer.

    Returns
    -------
    FeatureMaps
        Controls ``layer_select``, ``scale``; ``activations``, ``current``, ``grid_shape``.
    """
    return FeatureMaps(model, x, max_channels=max_channels)
