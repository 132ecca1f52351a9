"""load_digits and load_shapes: the data sets that need no network and no files."""

from __future__ import annotations

import numpy as np
import pytest

from cvcourse.data import DIGIT_CLASSES, SHAPE_CLASSES, LabelledImages, load_digits, load_shapes
from cvcourse.data import digits as digits_module

# ---------------------------------------------------------------------------------------------
# digits


@pytest.mark.parametrize(("split", "n"), [("train", 1442), ("test", 355), ("all", 1797)])
def test_digits_shapes_dtypes_and_range(split, n):
    x, y = load_digits(split)
    assert x.shape == (n, 1, 8, 8) and x.dtype == np.float32 and x.flags.c_contiguous
    assert y.shape == (n,) and y.dtype == np.int64
    assert x.min() == 0.0 and x.max() == 1.0
    assert set(np.unique(y)) == set(range(10)) and len(DIGIT_CLASSES) == 10


def test_digits_values_are_ink_counts_over_16():
    x, _ = load_digits("all")
    assert np.array_equal(x * 16, np.round(x * 16))


def test_digits_match_scikit_learn_exactly():
    from sklearn.datasets import load_digits as sk_load_digits

    sk = sk_load_digits()
    x, y = load_digits("all")
    np.testing.assert_array_equal(x[:, 0] * 16, sk.images)
    np.testing.assert_array_equal(y, sk.target)


def test_digits_split_is_a_stratified_partition_of_all():
    x_all, y_all = load_digits("all")
    x_tr, y_tr = load_digits("train")
    x_te, y_te = load_digits("test")
    assert len(y_tr) + len(y_te) == len(y_all)
    counts_all, counts_te = np.bincount(y_all), np.bincount(y_te)
    np.testing.assert_array_equal(counts_te, counts_all // 5)  # every fifth of each class
    # the two parts together are exactly the whole set
    rows = {r.tobytes() for r in np.concatenate([x_tr, x_te]).reshape(1797, -1)}
    assert rows == {r.tobytes() for r in x_all.reshape(1797, -1)}


def test_digits_are_deterministic_and_returned_as_fresh_copies():
    a = load_digits("train")
    a.images[:] = -1
    b = load_digits("train")
    assert b.images.min() == 0.0
    assert isinstance(b, LabelledImages)


def test_digits_rejects_unknown_split():
    with pytest.raises(ValueError, match=r"split must be one of 'train', 'test', 'all'"):
        load_digits("validation")


def test_digits_loading_does_not_import_sklearn(tmp_path):
    import subprocess
    import sys

    code = (
        "import sys; from cvcourse.data import load_digits; load_digits(); "
        "print('sklearn' in sys.modules, 'scipy' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_digits_without_scikit_learn_says_what_to_install(monkeypatch):
    import importlib.util

    digits_module._read_all.cache_clear()
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "sklearn" else real(name, *a)
    )
    try:
        with pytest.raises(ModuleNotFoundError, match="pip install 'scikit-learn"):
            load_digits()
    finally:
        digits_module._read_all.cache_clear()


# ---------------------------------------------------------------------------------------------
# shapes


def test_shapes_are_binary_nchw_float32_with_int64_labels():
    x, y = load_shapes(50, size=20, seed=3)
    assert x.shape == (50, 1, 20, 20) and x.dtype == np.float32
    assert y.shape == (50,) and y.dtype == np.int64
    assert set(np.unique(x)) == {0.0, 1.0}
    assert y.min() >= 0 and y.max() < len(SHAPE_CLASSES)


def test_shapes_are_deterministic_for_a_seed_and_differ_between_seeds():
    a, b, c = (load_shapes(30, seed=s, noise=0.05) for s in (7, 7, 8))
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert not np.array_equal(a.images, c.images)


def test_shapes_labels_are_balanced_and_index_the_classes_given():
    classes = ("cross", "nought")
    x, y = load_shapes(101, classes=classes, seed=0)
    assert sorted(np.bincount(y)) == [50, 51]


def test_every_shape_image_has_ink_inside_the_image():
    x, _ = load_shapes(200, size=12, seed=1)
    ink = x.sum(axis=(1, 2, 3))
    assert ink.min() >= 4


def test_shapes_are_distinguishable_by_their_drawing():
    # one class at a time: the mean image of each class differs from every other class's
    means = [load_shapes(40, classes=(c,), seed=2).images.mean(0) for c in SHAPE_CLASSES]
    for i in range(len(means)):
        for j in range(i + 1, len(means)):
            assert np.abs(means[i] - means[j]).max() > 0.1
    # a nought has an empty centre; a plus and a cross are centred on ink
    nought = load_shapes(1, size=40, classes=("nought",), seed=5).images[0, 0]
    ys, xs = np.nonzero(nought)
    cy, cx = int(round(ys.mean())), int(round(xs.mean()))
    assert nought[cy, cx] == 0


def test_shapes_noise_flips_about_the_requested_fraction_of_pixels():
    clean = load_shapes(200, size=16, seed=4)
    noisy = load_shapes(200, size=16, seed=4, noise=0.1)
    # same shapes (same draws before the noise), then 10% of the pixels flipped
    np.testing.assert_array_equal(clean.labels, noisy.labels)
    flipped = np.mean(clean.images != noisy.images)
    assert 0.09 < flipped < 0.11


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n": 0}, ValueError, r"n must be >= 1"),
        ({"n": 2.5}, TypeError, r"n must be an int"),
        ({"n": 5, "size": 6}, ValueError, r"size must be >= 10"),
        ({"n": 5, "classes": ("cross", "star")}, ValueError, r"unknown shape.*'star'"),
        ({"n": 5, "classes": "cross"}, TypeError, r"classes must be a sequence"),
        ({"n": 5, "classes": ("cross", "cross")}, ValueError, r"each once"),
        ({"n": 5, "noise": 1.5}, ValueError, r"noise must be in \[0.0, 1.0\]"),
        ({"n": 5, "seed": "a"}, TypeError, r"seed must be a numpy.random.Generator"),
    ],
)
def test_shapes_validate_their_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        load_shapes(**kwargs)
