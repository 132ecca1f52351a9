"""pattern_matching: the intro lecture's crosses and noughts."""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np
import pytest

from cvcourse.widgets import pattern_matching
from cvcourse.widgets.matching import IMAGES, PATTERNS

# The correlation map printed on the lecture's slide (7x7 image, 3x3 cross, no padding).
SLIDE_MAP = np.array(
    [
        [-1, 2, -1, 2, -1],
        [1, 0, 1, -1, 2],
        [1, 0, 0, 3, -2],
        [-1, 1, 2, -3, 3],
        [1, 2, -3, 4, -2],
    ]
)


def correlate(image, pattern):
    h, w = image.shape
    return np.array(
        [
            [np.sum(image[r : r + 3, c : c + 3] * pattern) for c in range(w - 2)]
            for r in range(h - 2)
        ]
    )


def test_lecture_slide(ok):
    w = pattern_matching()
    ok(w)
    np.testing.assert_array_equal(w.image, IMAGES["lecture slide"])
    np.testing.assert_array_equal(w.correlation, SLIDE_MAP)
    assert w.maxima == [(4, 3)] and w.max_value == 4
    assert "(4, 3)" in w.message.value


def test_choosing_image_and_pattern(ok):
    w = pattern_matching()
    w.image_select.value = "a cross and a nought"
    w.pattern_select.value = "nought (+1/-1)"
    ok(w)
    assert w.maxima == [(2, 4)] and w.max_value == 8  # a perfect nought
    w.pattern_select.value = "cross (+1/-1)"
    assert w.maxima == [(1, 0)] and w.max_value == 5  # a perfect cross
    np.testing.assert_array_equal(w.correlation, correlate(w.image, PATTERNS["cross (+1/-1)"]))


def test_all_ties_are_marked_and_zero_one_patterns_fail_on_ink():
    w = pattern_matching(pattern="cross (0/1)")
    w.image_select.value = "all ones"
    assert len(w.maxima) == 25 and w.max_value == 5
    w.pattern_select.value = "cross (+1/-1)"
    assert w.max_value == 1  # the -1 entries penalise the ink


def test_flipping_pixels(ok):
    w = pattern_matching()
    before = (w.view.value, w.correlation.copy())
    w.set_pixel(0, 0, True)
    ok(w)
    assert w.image_select.value == "edited" and w.image[0, 0] == 1
    assert w.correlation[0, 0] == before[1][0, 0] + 1  # the cross pattern has +1 there
    assert w.view.value != before[0]
    w.pixels[1][1].value = False  # clicking a button works the same
    np.testing.assert_array_equal(w.correlation, correlate(w.image, w.pattern))
    w.image_select.value = "lecture slide"  # reloading a picture resets the pixels
    np.testing.assert_array_equal(w.correlation, SLIDE_MAP)


def test_window_products():
    w = pattern_matching()
    w.window.value = 23  # (4, 3), the maximum
    assert w.window_cell == (4, 3)
    assert w.products.sum() == w.correlation[4, 3] == 4


def test_own_image_and_errors():
    image = np.zeros((5, 6), dtype=int)
    image[1:4, 1:4] = [[1, 0, 1], [0, 1, 0], [1, 0, 1]]
    w = pattern_matching(image)
    assert w.correlation.shape == (3, 4) and w.maxima == [(1, 1)]
    assert list(w.image_select.options) == ["your image"]  # built-in ones are 7x7
    with pytest.raises(ValueError, match="binary"):
        pattern_matching(np.full((5, 5), 2))
    with pytest.raises(ValueError, match="12x12"):
        pattern_matching(np.zeros((13, 13)))
    with pytest.raises(ValueError, match="pattern"):
        pattern_matching(pattern="star")


def _html_texts(widget):
    """The text of every HTML widget inside ``widget``'s tree of boxes."""
    if isinstance(widget, widgets.HTML):
        return [widget.value]
    return [text for child in getattr(widget, "children", ()) for text in _html_texts(child)]


def test_it_names_image_pattern_and_output_as_lecture_2_does():
    # Lecture 2 writes O[i, j] = sum_{u,v} I[i + u, j + v] K[u, v]: image I, kernel K, output O.
    w = pattern_matching()
    formula = [t for t in _html_texts(w) if "&Sigma;" in t]
    assert formula and "O[i, j]" in formula[0] and "K[u, v]" in formula[0], formula
    assert not any("P[" in t or "C[" in t for t in _html_texts(w))
    titles = [ax.get_title() for ax in w._draw().axes]
    assert titles == ["image I", "pattern K", "I[window] x K, sum = -1", "output O (max 4)"]
