"""What every widget of the package shares: the ipywidgets import, the base class, checks.

Every explorer is a :class:`Explorer`, a ``VBox`` whose picture is a ``widgets.Image``
(``.view``, PNG bytes drawn with a ``matplotlib.figure.Figure``, never pyplot) above an
``HTML`` line (``.message``) for explanations. A subclass builds its controls, lists them
in the box, and implements ``_compute()`` (the numbers) and ``_draw()`` (the picture).
Changing any control calls :meth:`Explorer.refresh`, which recomputes and redraws; several
changes made inside ``with explorer.hold():`` are refreshed once, at the end.

Displayed, an explorer's output holds its current picture as ``image/png`` beside the widget
view, so a notebook executed and saved without a running widget manager (nbconvert, a release
of the lectures, a reader with scripts blocked) still shows what the widget drew.

An exception raised while refreshing never escapes into the notebook's event loop (where
JupyterLab would hide it in the log console): it is shown in ``.message`` and kept in
``.last_error`` (``None`` after a successful refresh), which the tests check.
"""

from __future__ import annotations

import base64
import contextlib
import html

import numpy as np

try:
    import ipywidgets as widgets
except ImportError as exc:  # pragma: no cover - the course environment has it
    raise ImportError(
        "cvcourse.widgets needs ipywidgets (>= 8): pip install 'cvcourse[course]' "
        "or pip install ipywidgets"
    ) from exc

from .drawing import to_png

__all__ = ["Explorer", "widgets"]

_MESSAGE_STYLE = "font-size: 0.95em; line-height: 1.4"


class Explorer(widgets.VBox):
    """Base class: a box of controls, a picture (``.view``) and a message (``.message``).

    Attributes
    ----------
    view : widgets.Image
        Holds the current picture as PNG (``bytes(view.value)``; ipywidgets keeps it as a
        memoryview).
    message : widgets.HTML
        The current explanation or warning.
    last_error : BaseException or None
        The exception of the last failed refresh, or ``None``.
    """

    def __init__(self, controls, *, extra=()):
        # scaled down (never up) to the notebook's width, keeping the aspect ratio
        self.view = widgets.Image(format="png", layout={"max_width": "100%", "height": "auto"})
        self.message = widgets.HTML()
        self.last_error: BaseException | None = None
        self._holding = 0
        self._pending = False
        super().__init__(children=[*controls, self.message, self.view, *extra])

    def _repr_mimebundle_(self, **kwargs):
        """The widget view, plus the current picture as ``image/png`` when there is one."""
        bundle = super()._repr_mimebundle_(**kwargs)
        png = bytes(self.view.value)
        if bundle is not None and png:
            bundle["image/png"] = base64.b64encode(png).decode("ascii")
        return bundle

    # --- refresh machinery -------------------------------------------------------------------

    @contextlib.contextmanager
    def hold(self):
        """Defer refreshing until the block ends (then refresh once if anything changed)."""
        self._holding += 1
        try:
            yield self
        finally:
            self._holding -= 1
            if self._holding == 0 and self._pending:
                self.refresh()

    def _on_change(self, change=None) -> None:
        self.refresh()

    def _watch(self, *controls, name: str = "value") -> None:
        for control in controls:
            control.observe(self._on_change, names=name)

    def refresh(self) -> None:
        """Recompute the arrays and redraw the picture from the controls' current values."""
        if self._holding:
            self._pending = True
            return
        self._pending = False
        try:
            self._compute()
            fig = self._draw()
            if fig is not None:
                self.view.value = to_png(fig)
            self.last_error = None
        except Exception as exc:  # shown in the widget, kept for inspection
            self.last_error = exc
            self.show_message(
                f"<b>Could not update:</b> {html.escape(type(exc).__name__)}: "
                f"{html.escape(str(exc))}",
                kind="error",
            )

    def _compute(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _draw(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def show_message(self, text: str, kind: str = "info") -> None:
        """Show ``text`` (HTML) under the controls; ``kind`` is info, warning or error."""
        colour = {"info": "inherit", "warning": "#8a6d00", "error": "#a4262c"}[kind]
        self.message.value = (
            f"<div style='{_MESSAGE_STYLE}; color: {colour}'>{text}</div>" if text else ""
        )


# --- argument checks of widget inputs (ints, flags, choices: cvcourse._checks) ----------------


def real_array(value, name: str, who: str, *, ndim=None, min_size: int = 1) -> np.ndarray:
    """``value`` as a finite float64 array of rank ``ndim`` (an int or a tuple of ints)."""
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{who}: {name} must be an array of numbers, got {type(value).__name__}")
    try:
        arr = np.asarray(value)
    except Exception as exc:  # ragged nested lists
        raise TypeError(
            f"{who}: {name} must be an array of numbers, got {type(value).__name__}"
        ) from exc
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{who}: {name} must hold real numbers, got dtype {arr.dtype}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in allowed:
            ranks = " or ".join(f"{r}-D" for r in allowed)
            raise ValueError(f"{who}: {name} must be {ranks}, got shape {arr.shape}")
    if arr.ndim and min(arr.shape) < min_size:
        raise ValueError(
            f"{who}: {name} must be at least {min_size} along every axis, got shape {arr.shape}"
        )
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{who}: {name} must be finite (it contains NaN or inf)")
    return arr


def slider(description: str, value: int, low: int, high: int, **kwargs) -> widgets.IntSlider:
    """An ``IntSlider`` with the package's look (description wide enough to read)."""
    return widgets.IntSlider(
        value=value,
        min=low,
        max=high,
        description=description,
        style={"description_width": "initial"},
        **kwargs,
    )
