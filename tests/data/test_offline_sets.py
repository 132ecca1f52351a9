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


def test_digits_load_where_neither_scikit_learn_nor_scipy_can_be_imported():
    # a student install has neither: the digits come from cvcourse/data/digits.npz
    import subprocess
    import sys

    code = (
        "import sys; sys.modules.update(sklearn=None, scipy=None)\n"
        "from cvcourse.data import load_digits; print(load_digits('all').labels.shape)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["(1797,)"]


# What load_digits returned when it read scikit-learn's digits.csv.gz itself (commit 8cff3ab):
# SHA-256 of the images (float32) and labels (int64), little-endian, per split.
_PREVIOUS_LOADER = {
    "train": (
        "ea11aa32432684bead025c6d3bd7c228dcef76c2d8e33930cd2115979c3c4e1e",
        "9313721fa010b4068efd8523f8b0ad55e16fe55564ccc54da13abb96858f7b54",
    ),
    "test": (
        "1f96ea88bb77d575e408b4c50bda78b6b40c349e7e86d5d4e0b2435d91c458ba",
        "ee6ec0ae7823271abdaa9092fefe38ec720e2d13d041a0541dbd4099bda0fc56",
    ),
    "all": (
        "9f578524b6cec1fc800cc52dfc87ebe56264983d490aa72a4bd928ba2570ec77",
        "a3c91c262eddcf7ba8f0e37507c30284493c9b20412ffe4af30d536401f7ba21",
    ),
}


@pytest.mark.parametrize("split", ["train", "test", "all"])
def test_digits_are_exactly_what_the_previous_loader_returned(split):
    import hashlib

    x, y = load_digits(split)
    digests = tuple(
        hashlib.sha256(a.astype(a.dtype.newbyteorder("<")).tobytes()).hexdigest() for a in (x, y)
    )
    assert digests == _PREVIOUS_LOADER[split]


def test_digits_split_follows_the_rule_on_scikit_learns_copy():
    # the rule, spelt out independently: within each class, in file order, every fifth digit
    # (ranks 4, 9, ...) is a test digit
    from sklearn.datasets import load_digits as sk_load_digits

    sk = sk_load_digits()
    seen = [0] * 10
    test = []
    for label in sk.target:
        test.append(seen[label] % 5 == 4)
        seen[label] += 1
    test = np.array(test)
    for split, keep in (("train", ~test), ("test", test)):
        x, y = load_digits(split)
        np.testing.assert_array_equal(x[:, 0] * 16, sk.images[keep])
        np.testing.assert_array_equal(y, sk.target[keep])


def test_the_bundled_file_is_what_the_script_makes_from_scikit_learns_csv(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "scripts" / "make_digits.py"
    out = tmp_path / "digits.npz"
    cmd = [sys.executable, str(script), "--output", str(out)]
    subprocess.run(cmd, capture_output=True, text=True, check=True)
    with np.load(out) as made, np.load(digits_module._digits_file()) as bundled:
        assert sorted(made.files) == sorted(bundled.files) == ["labels", "pixels"]
        for name in made.files:
            assert made[name].dtype == bundled[name].dtype == np.uint8
            np.testing.assert_array_equal(made[name], bundled[name])
    assert out.stat().st_size < 64 * 1024  # small enough to ship in the wheel


@pytest.fixture
def digits_file(tmp_path, monkeypatch):
    """A path load_digits reads instead of the bundled file (its cache cleared around)."""
    path = tmp_path / "digits.npz"
    digits_module._read_all.cache_clear()
    monkeypatch.setattr(digits_module, "_digits_file", lambda: path)
    yield path
    digits_module._read_all.cache_clear()


_BUNDLED = digits_module._digits_file()


def _bundled_arrays():
    with np.load(_BUNDLED) as npz:
        return npz["pixels"], npz["labels"]


def _truncated(path):
    path.write_bytes(_BUNDLED.read_bytes()[:20_000])


def _garbage(path):
    path.write_bytes(b"not a zip file at all")


def _wrong_arrays(path):
    pixels, labels = _bundled_arrays()
    np.savez(path, images=pixels, labels=labels)


def _wrong_dtype(path):
    pixels, labels = _bundled_arrays()
    np.savez(path, pixels=pixels.astype(np.float64), labels=labels)


def _too_few(path):
    pixels, labels = _bundled_arrays()
    np.savez(path, pixels=pixels[:-1], labels=labels[:-1])


def _out_of_range(path):
    pixels, labels = _bundled_arrays()
    np.savez(path, pixels=pixels + 1, labels=labels)


def _pickled(path):
    pixels, labels = _bundled_arrays()
    np.savez(path, pixels=pixels, labels=labels.astype(object))


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        (_truncated, r"cannot read .*digits\.npz.*reinstalling cvcourse restores it"),
        (_garbage, r"cannot read .*it is not a zip archive"),
        (_wrong_arrays, r"holds the arrays \['images', 'labels'\], expected \['labels', 'pix"),
        (_wrong_dtype, r"pixels of dtype float64 .* expected uint8 pixels"),
        (_too_few, r"shape \(1796, 8, 8\) .* expected 1797 digits"),
        (_out_of_range, r"values outside pixels 0\.\.16"),
        (_pickled, r"cannot read .*allow_pickle"),
    ],
)
def test_a_damaged_digits_file_is_refused_with_a_clear_error(digits_file, damage, match):
    damage(digits_file)
    with pytest.raises(ValueError, match=match):
        load_digits()


def test_a_missing_digits_file_says_the_installation_is_broken(tmp_path, monkeypatch):
    monkeypatch.setattr(digits_module, "__file__", str(tmp_path / "digits.py"))
    with pytest.raises(FileNotFoundError, match=r"digits\.npz not found .*\(reinstalling cvcourse"):
        digits_module._digits_file()


def test_written_digits_round_trip_and_are_reproducible(tmp_path):
    pixels, labels = _bundled_arrays()
    a = digits_module.write_digits_file(tmp_path / "a.npz", pixels[:7], labels[:7].astype(int))
    b = digits_module.write_digits_file(tmp_path / "b.npz", pixels[:7], labels[:7])
    assert a.read_bytes() == b.read_bytes()  # fixed entry dates: same digits, same bytes
    with np.load(a) as npz:
        np.testing.assert_array_equal(npz["pixels"], pixels[:7])
        assert npz["labels"].dtype == np.uint8
        np.testing.assert_array_equal(npz["labels"], labels[:7])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npz", "b.npz"]  # no temporaries


@pytest.mark.parametrize(
    ("pixels", "labels", "match"),
    [
        (np.zeros((2, 8, 8)), np.zeros(2, int), "expected uint8 pixels and integer labels"),
        (np.zeros((2, 8, 8), np.uint8), np.zeros(3, int), r"expected N digits"),
        (np.zeros((2, 8, 8), np.uint8), np.array([0, 10]), "labels 0..9"),
        (np.full((2, 8, 8), 17, np.uint8), np.zeros(2, int), "pixels 0..16"),
    ],
)
def test_writing_digits_validates_them(tmp_path, pixels, labels, match):
    with pytest.raises(ValueError, match=match):
        digits_module.write_digits_file(tmp_path / "d.npz", pixels, labels)
    assert list(tmp_path.iterdir()) == []


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
