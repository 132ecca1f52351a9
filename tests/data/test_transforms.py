"""normalize, one_hot, train_val_split and the augmentations."""

from __future__ import annotations

import numpy as np
import pytest

from cvcourse.data import (
    gaussian_noise,
    horizontal_flip,
    normalize,
    one_hot,
    random_crop,
    random_horizontal_flip,
    train_val_split,
)


def _batch(n=6, c=3, h=5, w=7, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).random((n, c, h, w)).astype(dtype)


# ---------------------------------------------------------------------------------------------
# normalize


def test_normalize_gives_zero_mean_unit_std_per_channel_and_returns_the_stats():
    x = _batch() * np.array([1, 5, 10], np.float32)[None, :, None, None] + 3
    out, mean, std = normalize(x)
    assert out.shape == x.shape and out.dtype == np.float32
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(out.std(axis=(0, 2, 3)), 1, atol=1e-5)
    np.testing.assert_allclose(mean, x.astype(np.float64).mean(axis=(0, 2, 3)))
    assert mean.shape == std.shape == (3,)


def test_normalize_applies_given_stats_unchanged_to_other_data():
    train, test = _batch(seed=1), _batch(seed=2)
    _, mean, std = normalize(train)
    out, m2, s2 = normalize(test, mean, std)
    np.testing.assert_allclose(out, (test - mean[:, None, None]) / std[:, None, None], rtol=1e-6)
    assert m2 is not mean and np.array_equal(m2, mean) and np.array_equal(s2, std)


def test_normalize_constant_channel_does_not_divide_by_zero():
    x = _batch()
    x[:, 1] = 0.5
    out, _, std = normalize(x)
    assert np.isfinite(out).all() and std[1] == pytest.approx(1e-7)
    np.testing.assert_array_equal(out[:, 1], 0)


@pytest.mark.parametrize(
    ("x", "kwargs", "error", "match"),
    [
        (np.zeros((2, 3, 4)), {}, ValueError, r"x must be a 4-D \(N, C, H, W\) batch"),
        (np.zeros((2, 3, 4, 4), np.uint8), {}, TypeError, "x must be floating point"),
        (np.ones((2, 3, 4, 4)), {"mean": [0, 0, 0]}, ValueError, "pass both mean and std"),
        (np.ones((2, 3, 4, 4)), {"mean": [0, 0], "std": [1, 1]}, ValueError, r"shape \(3,\)"),
        (np.ones((2, 3, 4, 4)), {"mean": 0, "std": [1, 0, 1]}, ValueError, "std must be positive"),
        (np.full((1, 1, 2, 2), np.nan), {}, ValueError, "NaN or infinity"),
    ],
)
def test_normalize_validates(x, kwargs, error, match):
    with pytest.raises(error, match=match):
        normalize(x, **kwargs)


# ---------------------------------------------------------------------------------------------
# one_hot


def test_one_hot_rows_have_a_single_one_at_the_label():
    labels = np.array([2, 0, 1, 2])
    out = one_hot(labels, 4)
    assert out.shape == (4, 4) and out.dtype == np.float32
    np.testing.assert_array_equal(out.argmax(1), labels)
    np.testing.assert_array_equal(out.sum(1), 1)
    assert one_hot(labels).shape == (4, 3)


def test_one_hot_validates():
    with pytest.raises(ValueError, match=r"class 3 but num_classes=3"):
        one_hot([0, 3], 3)
    with pytest.raises(ValueError, match="class indices >= 0"):
        one_hot([-1, 0])
    with pytest.raises(ValueError, match="1-D"):
        one_hot([[0, 1]])


# ---------------------------------------------------------------------------------------------
# train_val_split


def test_stratified_split_keeps_each_class_share_and_partitions_the_data():
    y = np.repeat(np.arange(4), [40, 20, 10, 30])
    x = np.arange(100, dtype=np.float32).reshape(100, 1, 1, 1)
    (x_tr, y_tr), (x_val, y_val) = train_val_split(x, y, 0.2, seed=0)
    np.testing.assert_array_equal(np.bincount(y_val), [8, 4, 2, 6])
    np.testing.assert_array_equal(np.bincount(y_tr), [32, 16, 8, 24])
    ids = np.concatenate([x_tr, x_val]).ravel().astype(int)
    assert sorted(ids) == list(range(100))
    np.testing.assert_array_equal(y[x_val.ravel().astype(int)], y_val)


def test_split_is_deterministic_per_seed_and_unstratified_size_is_rounded():
    y = np.arange(50) % 5
    x = np.arange(50)[:, None]
    a = train_val_split(x, y, 0.3, stratify=False, seed=4)
    b = train_val_split(x, y, 0.3, stratify=False, seed=4)
    c = train_val_split(x, y, 0.3, stratify=False, seed=5)
    assert len(a[1].labels) == 15
    np.testing.assert_array_equal(a[1].images, b[1].images)
    assert not np.array_equal(a[1].images, c[1].images)


def test_split_that_leaves_a_part_empty_is_refused():
    with pytest.raises(ValueError, match="both parts must be non-empty"):
        train_val_split(np.zeros((10, 1)), np.arange(10) % 2, 0.01)
    with pytest.raises(ValueError, match="val_fraction must be in"):
        train_val_split(np.zeros((10, 1)), np.arange(10) % 2, 1.5)
    with pytest.raises(ValueError, match="y has 9 labels but x has 10"):
        train_val_split(np.zeros((10, 1)), np.arange(9), 0.2)


# ---------------------------------------------------------------------------------------------
# augmentations


def test_horizontal_flip_mirrors_columns_and_twice_is_identity():
    x = _batch()
    flipped = horizontal_flip(x)
    np.testing.assert_array_equal(flipped[..., 0], x[..., -1])
    np.testing.assert_array_equal(horizontal_flip(flipped), x)


def test_random_horizontal_flip_flips_whole_images_with_probability_p():
    x = _batch(n=400, c=1, h=2, w=3)
    out = random_horizontal_flip(x, p=0.3, rng=np.random.default_rng(0))
    same = np.all(out == x, axis=(1, 2, 3))
    mirrored = np.all(out == x[..., ::-1], axis=(1, 2, 3))
    assert np.all(same | mirrored)
    assert 0.22 < mirrored.mean() < 0.38
    np.testing.assert_array_equal(random_horizontal_flip(x, p=0.0, rng=1), x)
    np.testing.assert_array_equal(random_horizontal_flip(x, p=1.0, rng=1), x[..., ::-1])


def test_augmentations_are_deterministic_for_a_seed_and_leave_x_untouched():
    x = _batch()
    before = x.copy()
    for fn in (
        lambda r: random_horizontal_flip(x, rng=r),
        lambda r: random_crop(x, padding=2, rng=r),
        lambda r: gaussian_noise(x, 0.1, rng=r),
    ):
        np.testing.assert_array_equal(fn(np.random.default_rng(3)), fn(np.random.default_rng(3)))
        np.testing.assert_array_equal(fn(7), fn(7))
    np.testing.assert_array_equal(x, before)


def test_random_crop_keeps_the_shape_and_takes_a_window_of_the_zero_padded_image():
    x = _batch(n=30, c=2, h=6, w=5) + 1  # strictly positive, so padding zeros show
    out = random_crop(x, padding=2, rng=np.random.default_rng(0))
    assert out.shape == x.shape and out.dtype == x.dtype
    padded = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)))
    offsets = set()
    for n in range(len(x)):
        hits = [
            (i, j)
            for i in range(5)
            for j in range(5)
            if np.array_equal(out[n], padded[n, :, i : i + 6, j : j + 5])
        ]
        assert hits, f"image {n} is not a window of its padded image"
        offsets.update(hits)
    assert len(offsets) > 5  # windows really move
    assert (out == 0).any()  # some padding zeros come in


def test_random_crop_with_size_and_without_padding():
    x = _batch(n=4, h=8, w=8)
    out = random_crop(x, size=(3, 5), padding=0, rng=0)
    assert out.shape == (4, 3, 3, 5)
    assert random_crop(x, size=8, padding=0, rng=0).tolist() == x.tolist()
    with pytest.raises(
        ValueError, match=r"crop size \(9, 9\) is larger than the padded images \(8, 8\)"
    ):
        random_crop(x, size=9, padding=0)
    with pytest.raises(ValueError, match="padding must be >= 0"):
        random_crop(x, padding=-1)


def test_gaussian_noise_has_the_requested_std_and_keeps_dtype():
    x = np.zeros((20, 3, 32, 32), np.float32)
    out = gaussian_noise(x, 0.25, rng=np.random.default_rng(0))
    assert out.dtype == np.float32
    assert out.std() == pytest.approx(0.25, rel=0.02)
    assert abs(out.mean()) < 0.01
    clipped = gaussian_noise(x + 0.5, 1.0, rng=0, clip=(0, 1))
    assert clipped.min() == 0 and clipped.max() == 1
    np.testing.assert_array_equal(gaussian_noise(x, 0.0, rng=0), x)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: horizontal_flip(np.zeros((3, 4))), ValueError, r"x must be a 4-D"),
        (lambda: random_horizontal_flip(np.zeros((1, 1, 2, 2)), p=2), ValueError, r"p must be in"),
        (
            lambda: random_horizontal_flip(np.zeros((1, 1, 2, 2)), rng="x"),
            TypeError,
            r"rng must be",
        ),
        (lambda: gaussian_noise(np.zeros((1, 1, 2, 2)), -1.0), ValueError, r"std must be in"),
        (lambda: gaussian_noise(np.zeros((1, 1, 2, 2), int), 1.0), TypeError, r"floating point"),
        (
            lambda: gaussian_noise(np.zeros((1, 1, 2, 2)), 1.0, clip=(1, 0)),
            ValueError,
            "low <= high",
        ),
        (lambda: random_crop(np.zeros((0, 1, 2, 2))), ValueError, "must not be empty"),
    ],
)
def test_augmentations_validate(call, error, match):
    with pytest.raises(error, match=match):
        call()
