"""cvcourse.data (sample images, NCHW helpers) and cvcourse.filters (the lectures' kernels).

Filters are applied with ``torch.nn.functional.conv2d`` (cross-correlation), the reference
the course's own kernels are checked against. Reading errors are provoked on hand-made files
in a temporary folder that stands in for matplotlib's ``sample_data``.
"""

from __future__ import annotations

import gzip
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import cvcourse.data.samples as samples
from cvcourse.data import (
    LUMA_WEIGHTS,
    from_nchw,
    rgb_to_gray,
    sample_image,
    sample_image_names,
    to_nchw,
)
from cvcourse.filters import (
    FILTERS,
    as_conv_weight,
    filter_names,
    gaussian_kernel,
    get_filter,
)

# ---------------------------------------------------------------------------------------------
# Helpers


def correlate(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Filter one (H, W) image with torch's conv2d (cross-correlation), zero padding k // 2."""
    kh, kw = kernel.shape
    # np.array copies: FILTERS' arrays are read-only, which torch.from_numpy warns about.
    x = torch.from_numpy(np.array(image, dtype=np.float64)[None, None])
    w = torch.from_numpy(np.array(kernel, dtype=np.float64)[None, None])
    return F.conv2d(x, w, padding=(kh // 2, kw // 2))[0, 0].numpy()


@pytest.fixture
def sample_dir(tmp_path, monkeypatch):
    """An empty folder that sample_image reads instead of matplotlib's sample_data."""
    monkeypatch.setattr(samples, "_sample_data_dir", lambda: tmp_path)
    return tmp_path


# ---------------------------------------------------------------------------------------------
# sample_image

EXPECTED_SHAPES = {
    "grace_hopper": (600, 512, 3),
    "present": (128, 128, 3),
    "matplotlib_logo": (130, 542, 3),
    "mri": (256, 256),
}


def test_sample_image_names_lists_every_bundled_image():
    assert sample_image_names() == list(EXPECTED_SHAPES)


@pytest.mark.parametrize("name", list(EXPECTED_SHAPES))
def test_sample_image_has_documented_shape_dtype_and_range(name):
    image = sample_image(name)
    assert image.shape == EXPECTED_SHAPES[name]
    assert image.dtype == np.float32
    assert image.flags.c_contiguous and image.flags.writeable
    assert 0.0 <= image.min() < image.max() <= 1.0


@pytest.mark.parametrize("name", list(EXPECTED_SHAPES))
def test_sample_image_gray_is_hw_float32_in_unit_range(name):
    image = sample_image(name, gray=True)
    assert image.shape == EXPECTED_SHAPES[name][:2]
    assert image.dtype == np.float32
    assert 0.0 <= image.min() < image.max() <= 1.0


def test_sample_image_default_is_grace_hopper_photo():
    np.testing.assert_array_equal(sample_image(), sample_image("grace_hopper"))


def test_sample_image_gray_is_luma_of_the_rgb_image():
    rgb = sample_image("present").astype(np.float64)
    expected = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
    np.testing.assert_allclose(sample_image("present", gray=True), expected, atol=1e-6)


def test_sample_image_returns_a_fresh_array_each_call():
    first = sample_image("mri")
    first[:] = -1.0
    assert sample_image("mri").min() >= 0.0


def test_rgb_to_gray_matches_bt601_weights_on_hand_made_pixels():
    pixels = np.array(
        [[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
         [[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [0.2, 0.4, 0.6]]],
        dtype=np.float32,
    )  # fmt: skip
    expected = [[0.299, 0.587, 0.114], [1.0, 0.0, 0.299 * 0.2 + 0.587 * 0.4 + 0.114 * 0.6]]
    gray = rgb_to_gray(pixels)
    assert gray.shape == (2, 3) and gray.dtype == np.float32
    np.testing.assert_allclose(gray, expected, atol=1e-7)
    assert LUMA_WEIGHTS == (0.299, 0.587, 0.114)


def test_rgb_to_gray_rejects_non_rgb_shapes():
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        rgb_to_gray(np.zeros((4, 4, 4)))
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        rgb_to_gray(np.zeros((4, 4)))


def test_sample_image_reads_hand_made_png_and_applies_luma_weights(sample_dir):
    pixels = np.array([[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [51, 102, 153]]], np.uint8)
    Image.fromarray(pixels, "RGB").save(sample_dir / "Minduka_Present_Blue_Pack.png")
    rgb = sample_image("present")
    np.testing.assert_allclose(rgb, pixels / 255.0, atol=1e-7)
    expected = [[0.299, 0.587], [0.114, 0.299 * 0.2 + 0.587 * 0.4 + 0.114 * 0.6]]
    np.testing.assert_allclose(sample_image("present", gray=True), expected, atol=1e-6)


def test_rgba_sample_is_composited_over_white(sample_dir):
    # transparent black, opaque black, half-transparent red (alpha 102 / 255 = 0.4)
    pixels = np.array([[[0, 0, 0, 0], [0, 0, 0, 255], [255, 0, 0, 102]]], np.uint8)
    Image.fromarray(pixels, "RGBA").save(sample_dir / "logo2.png")
    image = sample_image("matplotlib_logo")
    assert image.shape == (1, 3, 3)
    np.testing.assert_allclose(image, [[[1, 1, 1], [0, 0, 0], [1.0, 0.6, 0.6]]], atol=1e-6)


def test_mri_sample_is_little_endian_uint16_over_65535(sample_dir):
    values = np.arange(256 * 256, dtype=np.uint32).reshape(256, 256) % 65536
    with gzip.open(sample_dir / "s1045.ima.gz", "wb") as f:
        f.write(values.astype("<u2").tobytes())
    np.testing.assert_allclose(sample_image("mri"), values / 65535.0, rtol=1e-6)


def test_mri_sample_matches_matplotlib_example_decoding():
    # matplotlib's MRI examples: np.frombuffer(..., np.uint16) on a little-endian machine.
    from matplotlib import cbook

    with cbook.get_sample_data("s1045.ima.gz") as f:
        raw = np.frombuffer(f.read(), "<u2").reshape(256, 256)
    np.testing.assert_allclose(sample_image("mri"), raw / (2**16 - 1), rtol=1e-6)


def test_sample_image_unknown_name_error_lists_valid_names():
    with pytest.raises(ValueError, match="unknown sample image 'lena'") as info:
        sample_image("lena")
    for name in sample_image_names():
        assert name in str(info.value)


def test_sample_image_missing_file_error_names_the_file(sample_dir):
    with pytest.raises(FileNotFoundError, match="grace_hopper.jpg"):
        sample_image("grace_hopper")


@pytest.mark.parametrize(
    "name, filename, content",
    [
        ("grace_hopper", "grace_hopper.jpg", b"this is not a jpeg"),
        ("mri", "s1045.ima.gz", b"not gzip either"),
    ],
)
def test_sample_image_corrupt_file_error_names_the_file(sample_dir, name, filename, content):
    (sample_dir / filename).write_bytes(content)
    with pytest.raises(OSError, match=filename.replace(".", r"\.")):
        sample_image(name)


def test_sample_image_truncated_png_error_names_the_file(sample_dir):
    Image.fromarray(np.full((64, 64, 4), 200, np.uint8)).save(sample_dir / "logo2.png")
    data = (sample_dir / "logo2.png").read_bytes()
    (sample_dir / "logo2.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(OSError, match=r"logo2\.png"):
        sample_image("matplotlib_logo")


def test_mri_sample_of_wrong_size_error_names_the_file(sample_dir):
    with gzip.open(sample_dir / "s1045.ima.gz", "wb") as f:
        f.write(b"\x00" * 100)
    with pytest.raises(OSError, match=r"s1045\.ima\.gz.*131072 bytes"):
        sample_image("mri")


def test_importing_data_and_filters_loads_no_heavy_module():
    code = (
        "import sys, cvcourse, cvcourse.data, cvcourse.filters; "
        "print(sorted(m for m in ('torch', 'scipy', 'matplotlib', 'PIL') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------------------------------------
# to_nchw / from_nchw


def test_to_nchw_puts_channels_first_in_a_batch_of_one():
    rng = np.random.default_rng(0)
    rgb = rng.random((5, 7, 3), dtype=np.float32)
    batch = to_nchw(rgb)
    assert batch.shape == (1, 3, 5, 7) and batch.dtype == np.float32
    assert batch.flags.c_contiguous
    for c in range(3):
        np.testing.assert_array_equal(batch[0, c], rgb[..., c])
    gray = rng.random((5, 7))
    assert to_nchw(gray).shape == (1, 1, 5, 7)
    np.testing.assert_array_equal(to_nchw(gray)[0, 0], gray)


@pytest.mark.parametrize("shape", [(5, 7), (5, 7, 3), (4, 6, 4), (3, 2, 2)])
def test_from_nchw_round_trips_to_nchw(shape):
    image = np.random.default_rng(1).random(shape)
    back = from_nchw(to_nchw(image))
    assert back.shape == image.shape
    np.testing.assert_array_equal(back, image)


def test_from_nchw_squeeze_false_keeps_single_channel_axis():
    image = np.ones((5, 7, 1))
    assert from_nchw(to_nchw(image)).shape == (5, 7)
    assert from_nchw(to_nchw(image), squeeze=False).shape == (5, 7, 1)


def test_from_nchw_accepts_a_torch_tensor_that_requires_grad():
    x = torch.rand(1, 3, 4, 5, dtype=torch.float64, requires_grad=True)
    out = from_nchw(x * 2)
    assert out.shape == (4, 5, 3)
    np.testing.assert_allclose(out, 2 * x.detach().numpy()[0].transpose(1, 2, 0))


@pytest.mark.parametrize(
    "bad, error, match",
    [
        (np.zeros(5), ValueError, r"\(H, W\) or \(H, W, C\)"),
        (np.zeros((1, 3, 4, 4)), ValueError, "already a batch"),
        (np.zeros((0, 4)), ValueError, "non-empty"),
        (np.zeros((3, 32, 32)), ValueError, "channels-first"),
        (np.array([["a", "b"]]), TypeError, "real numbers"),
    ],
)
def test_to_nchw_rejects_bad_input(bad, error, match):
    with pytest.raises(error, match=match):
        to_nchw(bad)


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.zeros((3, 4, 4)), r"\(1, C, H, W\)"),
        (np.zeros((2, 3, 4, 4)), "exactly one image"),
        (np.zeros((1, 0, 4, 4)), "non-empty"),
    ],
)
def test_from_nchw_rejects_bad_input(bad, match):
    with pytest.raises(ValueError, match=match):
        from_nchw(bad)


# ---------------------------------------------------------------------------------------------
# FILTERS

# The lecture's values (setosa.io "Image Kernels"), written out independently of the module.
LECTURE_FILTERS = {
    "identity": [[0, 0, 0], [0, 1, 0], [0, 0, 0]],
    "box_blur": np.ones((3, 3)) / 9,
    "gaussian_blur": np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]]) / 16,
    "sharpen": [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
    "sobel_top": [[1, 2, 1], [0, 0, 0], [-1, -2, -1]],
    "sobel_bottom": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
    "sobel_left": [[1, 0, -1], [2, 0, -2], [1, 0, -1]],
    "sobel_right": [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
    "outline": [[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]],
    "emboss": [[-2, -1, 0], [-1, 1, 1], [0, 1, 2]],
}
SUM_ONE = ["identity", "box_blur", "gaussian_blur", "sharpen", "emboss"]
SUM_ZERO = ["sobel_top", "sobel_bottom", "sobel_left", "sobel_right", "outline"]


def test_filter_names_are_the_lecture_filters():
    assert filter_names() == list(LECTURE_FILTERS)
    assert sorted(SUM_ONE + SUM_ZERO) == sorted(filter_names())


@pytest.mark.parametrize("name", list(LECTURE_FILTERS))
def test_filter_has_lecture_values_as_read_only_float64(name):
    kernel = FILTERS[name]
    assert kernel.shape == (3, 3) and kernel.dtype == np.float64
    assert not kernel.flags.writeable
    np.testing.assert_allclose(kernel, LECTURE_FILTERS[name], rtol=0, atol=1e-15)
    with pytest.raises(ValueError, match="read-only"):
        kernel[1, 1] = 0.0


def test_filters_registry_cannot_be_modified():
    with pytest.raises(TypeError):
        FILTERS["mine"] = np.eye(3)  # type: ignore[index]


@pytest.mark.parametrize("name", SUM_ONE)
def test_blur_sharpen_emboss_identity_filters_sum_to_one(name):
    assert FILTERS[name].sum() == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("name", SUM_ZERO)
def test_edge_filters_sum_to_zero(name):
    assert FILTERS[name].sum() == pytest.approx(0.0, abs=1e-12)


def test_identity_filter_leaves_image_unchanged_under_torch_conv2d():
    image = np.random.default_rng(2).random((9, 11))
    np.testing.assert_array_equal(correlate(image, FILTERS["identity"]), image)


@pytest.mark.parametrize("name", ["box_blur", "gaussian_blur", "sharpen", "emboss"])
def test_filters_summing_to_one_keep_a_flat_image_inside_the_border(name):
    out = correlate(np.full((8, 8), 0.3), FILTERS[name])
    np.testing.assert_allclose(out[1:-1, 1:-1], 0.3, atol=1e-12)


def test_sobel_top_responds_positively_where_the_top_half_is_bright():
    image = np.zeros((8, 8))
    image[:4] = 1.0  # top half bright
    out = correlate(image, FILTERS["sobel_top"])
    interior = out[:, 1:-1]  # away from the zero-padded left/right borders
    np.testing.assert_allclose(interior[3:5], 4.0)  # the two rows at the edge: 1 + 2 + 1
    np.testing.assert_allclose(interior[1:3], 0.0)  # flat bright region
    np.testing.assert_allclose(interior[5:7], 0.0)  # flat dark region
    np.testing.assert_allclose(correlate(image, FILTERS["sobel_bottom"]), -out)


@pytest.mark.parametrize(
    "bright_side, name",
    [("top", "sobel_top"), ("bottom", "sobel_bottom"), ("left", "sobel_left"),
     ("right", "sobel_right")],
)  # fmt: skip
def test_sobel_filter_named_for_a_side_is_positive_where_that_side_is_brighter(bright_side, name):
    image = np.zeros((8, 8))
    half = {"top": np.s_[:4, :], "bottom": np.s_[4:, :], "left": np.s_[:, :4],
            "right": np.s_[:, 4:]}[bright_side]  # fmt: skip
    image[half] = 1.0
    out = correlate(image, FILTERS[name])[1:-1, 1:-1]  # inside the zero-padded border
    assert out.max() == pytest.approx(4.0) and out.min() == pytest.approx(0.0)


# ---------------------------------------------------------------------------------------------
# get_filter


def test_get_filter_returns_a_fresh_writable_copy_in_the_requested_dtype():
    kernel = get_filter("sharpen", dtype=np.float32)
    assert kernel.dtype == np.float32 and kernel.flags.writeable
    kernel[1, 1] = 0.0
    assert FILTERS["sharpen"][1, 1] == 5.0
    assert get_filter("sharpen")[1, 1] == 5.0
    assert get_filter("box_blur").dtype == np.float64


def test_get_filter_unknown_name_error_lists_valid_names():
    with pytest.raises(ValueError, match="unknown filter 'sobel'") as info:
        get_filter("sobel")
    for name in filter_names():
        assert name in str(info.value)


def test_get_filter_rejects_integer_dtype():
    with pytest.raises(TypeError, match="floating"):
        get_filter("box_blur", dtype=np.int64)


# ---------------------------------------------------------------------------------------------
# gaussian_kernel


def test_gaussian_kernel_matches_hand_computed_3x3_for_sigma_1():
    # g = exp(-(di^2 + dj^2) / 2): centre 1, edges e^-1/2, corners e^-1; total (1 + 2 e^-1/2)^2
    edge, corner = math.exp(-0.5), math.exp(-1.0)
    total = (1 + 2 * edge) ** 2
    expected = np.array([[corner, edge, corner], [edge, 1.0, edge], [corner, edge, corner]])
    kernel = gaussian_kernel(3, 1.0)
    np.testing.assert_allclose(kernel, expected / total, rtol=1e-14)
    np.testing.assert_allclose(kernel[1], [0.1238414, 0.2041800, 0.1238414], atol=1e-7)
    assert kernel[0, 0] == pytest.approx(0.0751136, abs=1e-7)


def test_gaussian_kernel_with_half_weight_sigma_is_the_gaussian_blur_filter():
    # exp(-1 / (2 sigma^2)) = 1/2  <=>  sigma = 1 / sqrt(2 ln 2)
    sigma = 1 / math.sqrt(2 * math.log(2))
    np.testing.assert_allclose(gaussian_kernel(3, sigma), FILTERS["gaussian_blur"], atol=1e-15)


@pytest.mark.parametrize("size, sigma", [(1, 0.5), (5, 1.0), (7, 2.5), (9, 0.3)])
def test_gaussian_kernel_sums_to_one_is_symmetric_and_peaks_at_the_centre(size, sigma):
    kernel = gaussian_kernel(size, sigma)
    assert kernel.shape == (size, size) and kernel.dtype == np.float64
    assert kernel.sum() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(kernel, kernel.T)
    np.testing.assert_allclose(kernel, kernel[::-1, ::-1])
    assert kernel.argmax() == (size * size) // 2


def test_gaussian_kernel_honours_dtype():
    assert gaussian_kernel(5, 1.0, dtype=np.float32).dtype == np.float32


@pytest.mark.parametrize(
    "size, sigma, error, match",
    [
        (4, 1.0, ValueError, "odd"),
        (0, 1.0, ValueError, "odd and positive"),
        (-3, 1.0, ValueError, "odd and positive"),
        (3.0, 1.0, TypeError, "size must be an int"),
        (True, 1.0, TypeError, "size must be an int"),
        (3, 0.0, ValueError, "sigma must be finite and > 0"),
        (3, -1.0, ValueError, "sigma must be finite and > 0"),
        (3, float("nan"), ValueError, "sigma must be finite and > 0"),
        (3, float("inf"), ValueError, "sigma must be finite and > 0"),
        (3, "1", TypeError, "sigma must be a real number"),
    ],
)
def test_gaussian_kernel_rejects_bad_size_or_sigma(size, sigma, error, match):
    with pytest.raises(error, match=match):
        gaussian_kernel(size, sigma)


# ---------------------------------------------------------------------------------------------
# as_conv_weight


def test_as_conv_weight_shapes_for_both_forms():
    kernel = np.arange(15.0).reshape(3, 5)
    dense = as_conv_weight(kernel, channels=4)
    assert dense.shape == (4, 4, 3, 5) and dense.dtype == np.float64
    for o in range(4):
        for i in range(4):
            np.testing.assert_array_equal(dense[o, i], kernel if o == i else 0.0)
    depthwise = as_conv_weight(kernel, channels=4, depthwise=True)
    assert depthwise.shape == (4, 1, 3, 5)
    np.testing.assert_array_equal(depthwise[:, 0], np.broadcast_to(kernel, (4, 3, 5)))
    assert as_conv_weight(kernel).shape == (1, 1, 3, 5)


@pytest.mark.parametrize("depthwise", [False, True])
@pytest.mark.parametrize("kernel_name", ["emboss", "sobel_left", "random 3x5"])
def test_as_conv_weight_with_torch_conv2d_equals_filtering_each_channel(depthwise, kernel_name):
    rng = np.random.default_rng(3)
    kernel = rng.standard_normal((3, 5)) if kernel_name == "random 3x5" else FILTERS[kernel_name]
    image = rng.random((2, 3, 9, 10))  # two RGB images
    weight = as_conv_weight(kernel, channels=3, depthwise=depthwise)
    groups = 3 if depthwise else 1  # as documented
    padding = (kernel.shape[0] // 2, kernel.shape[1] // 2)
    out = F.conv2d(torch.from_numpy(image), torch.from_numpy(weight), padding=padding,
                   groups=groups).numpy()  # fmt: skip
    assert out.shape == image.shape
    for n in range(2):
        for c in range(3):
            np.testing.assert_allclose(out[n, c], correlate(image[n, c], kernel), atol=1e-12)


def test_as_conv_weight_accepts_a_filter_name_and_keeps_float32():
    weight = as_conv_weight("gaussian_blur", channels=3, depthwise=True)
    np.testing.assert_array_equal(weight[2, 0], FILTERS["gaussian_blur"])
    assert as_conv_weight(get_filter("sharpen", np.float32), channels=2).dtype == np.float32
    assert as_conv_weight(np.eye(3, dtype=np.int64)).dtype == np.float64
    assert as_conv_weight(np.eye(3), dtype=np.float32).dtype == np.float32


def test_blurring_a_sample_photo_with_as_conv_weight_keeps_shape_and_range():
    photo = sample_image("present")
    weight = as_conv_weight("gaussian_blur", channels=3, depthwise=True).astype(np.float32)
    out = F.conv2d(torch.from_numpy(to_nchw(photo)), torch.from_numpy(weight), padding=1, groups=3)
    blurred = from_nchw(out)
    assert blurred.shape == photo.shape and blurred.dtype == np.float32
    assert blurred.min() >= 0.0 and blurred.max() <= 1.0 + 1e-6


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(kernel=np.ones(3)), ValueError, "2-D"),
        (dict(kernel=np.ones((1, 3, 3))), ValueError, "2-D"),
        (dict(kernel=np.ones((0, 3))), ValueError, "empty"),
        (dict(kernel=[[1.0, float("nan")]]), ValueError, "finite"),
        (dict(kernel=[["a"]]), TypeError, "real numbers"),
        (dict(kernel="sobel"), ValueError, "unknown filter"),
        (dict(kernel=np.ones((3, 3)), channels=0), ValueError, "channels must be positive"),
        (dict(kernel=np.ones((3, 3)), channels=-2), ValueError, "channels must be positive"),
        (dict(kernel=np.ones((3, 3)), channels=2.0), TypeError, "channels must be an int"),
        (dict(kernel=np.ones((3, 3)), channels=True), TypeError, "channels must be an int"),
        (dict(kernel=np.ones((3, 3)), depthwise="yes"), TypeError, "depthwise"),
        (dict(kernel=np.ones((3, 3)), dtype=np.int32), TypeError, "floating"),
    ],
)
def test_as_conv_weight_rejects_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        as_conv_weight(**kwargs)
