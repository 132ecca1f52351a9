"""kernel_explorer: the output is the image cross-correlated with the grid's kernel."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cvcourse.data import rgb_to_gray, sample_image
from cvcourse.filters import FILTERS
from cvcourse.kernels import conv2d
from cvcourse.widgets import KernelExplorer, kernel_explorer


def reference(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """conv2d with padding 1, channel by channel, as an independent computation."""
    planes = image[..., None] if image.ndim == 2 else image
    out = [
        conv2d(
            np.ascontiguousarray(planes[None, None, :, :, c], dtype=np.float32),
            kernel[None, None].astype(np.float32),
            padding=1,
        )[0, 0]
        for c in range(planes.shape[2])
    ]
    return out[0] if image.ndim == 2 else np.stack(out, axis=-1)


@pytest.fixture
def small():
    return kernel_explorer("present")  # 128 x 128: fast


def test_default_shows_the_photo_sharpened(ok):
    w = kernel_explorer()
    ok(w)
    assert isinstance(w, KernelExplorer)
    assert w.image_select.value == "grace_hopper" and w.filter_select.value == "sharpen"
    gray = rgb_to_gray(sample_image("grace_hopper"))
    np.testing.assert_allclose(w.input, gray, rtol=1e-6)
    np.testing.assert_allclose(w.output, reference(gray, FILTERS["sharpen"]), atol=1e-5)


@pytest.mark.parametrize("name", ["sobel_top", "emboss"])  # not symmetric: flips show
def test_choosing_a_filter_fills_the_grid_and_updates_the_output(small, ok, name):
    before = small.view.value
    small.filter_select.value = name
    ok(small)
    np.testing.assert_array_equal(small.kernel, FILTERS[name])
    np.testing.assert_allclose(small.output, reference(small.input, FILTERS[name]), atol=1e-5)
    assert small.view.value != before
    # torch agrees too (cross-correlation, not convolution: Sobel would flip sign otherwise)
    expected = F.conv2d(
        torch.from_numpy(small.input)[None, None],
        torch.from_numpy(np.array(FILTERS[name], dtype=np.float32))[None, None],
        padding=1,
    )[0, 0].numpy()
    np.testing.assert_allclose(small.output, expected, atol=1e-5)


def test_editing_a_cell_switches_to_custom_and_recomputes(small, ok):
    small.filter_select.value = "identity"
    small.cells[0][2].value = -1.0
    ok(small)
    assert small.filter_select.value == "custom"
    kernel = np.array(FILTERS["identity"])
    kernel[0, 2] = -1.0
    np.testing.assert_array_equal(small.kernel, kernel)
    np.testing.assert_allclose(small.output, reference(small.input, kernel), atol=1e-5)
    # choosing "custom" keeps the grid; choosing a filter again overwrites it
    small.filter_select.value = "custom"
    np.testing.assert_array_equal(small.kernel, kernel)
    small.filter_select.value = "box_blur"
    np.testing.assert_allclose(small.kernel, np.full((3, 3), 1 / 9))


def test_set_kernel_and_colour_images(small, ok):
    kernel = np.arange(9.0).reshape(3, 3) / 36
    small.set_kernel(kernel)
    assert small.filter_select.value == "custom"
    small.gray.value = False
    ok(small)
    assert small.input.shape == (128, 128, 3) and small.output.shape == (128, 128, 3)
    np.testing.assert_allclose(small.output, reference(small.input, kernel), atol=1e-5)
    with pytest.raises(ValueError, match="3x3"):
        small.set_kernel(np.ones((2, 2)))


def test_display_modes(small, ok):
    small.filter_select.value = "sobel_left"
    assert small.shown.min() >= 0 and small.shown.max() == pytest.approx(1.0)
    np.testing.assert_allclose(small.shown, np.abs(small.output) / np.abs(small.output).max())
    small.display_mode.value = "signed"
    ok(small)
    assert small.shown.min() >= 0 and small.shown.max() <= 1
    small.display_mode.value = "clip"
    np.testing.assert_allclose(small.shown, np.clip(small.output, 0, 1))


def test_own_image():
    image = np.zeros((9, 12))
    image[:, 6:] = 1.0
    w = kernel_explorer(image, filter="sobel_right")
    assert w.image_select.value == "your image"
    # a vertical edge dark -> bright: the right Sobel responds positively at the edge
    assert w.output[4, 5] == pytest.approx(4.0) and w.output[4, 6] == pytest.approx(4.0)
    assert w.output[4, 2] == 0
    eight_bit = kernel_explorer((image * 255).astype(np.uint8), filter="identity")
    np.testing.assert_allclose(eight_bit.input, image)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"image": np.zeros((2, 2))}, ValueError, r"at least 3 .* shape \(2, 2\)"),
        ({"image": np.zeros((4, 4, 2))}, ValueError, r"\(4, 4, 2\)"),
        ({"image": "nope"}, ValueError, "grace_hopper"),
        ({"image": np.full((4, 4), np.nan)}, ValueError, "finite"),
        ({"filter": "blur"}, ValueError, "sobel_top"),
        ({"gray": 1}, TypeError, "gray"),
    ],
)
def test_invalid_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        kernel_explorer(**kwargs)
