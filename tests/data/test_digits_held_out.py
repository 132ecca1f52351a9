"""The digits as the grading sandbox shows them: the training split only.

``write_training_digits`` writes the bundled file without its test digits; with
``CVCOURSE_DIGITS_HELD_OUT=1`` (set by the sandbox) ``load_digits("train")`` returns the
same digits as on the full file, and the test split is refused with a message that says why.
"""

from __future__ import annotations

import numpy as np
import pytest

from cvcourse.data import digits, load_digits


@pytest.fixture
def held_out(tmp_path, monkeypatch):
    path = digits.write_training_digits(tmp_path / "digits.npz")
    digits._read_all.cache_clear()
    monkeypatch.setattr(digits, "_digits_file", lambda: path)
    monkeypatch.setenv(digits.HELD_OUT_VARIABLE, "1")
    yield path
    digits._read_all.cache_clear()


def test_the_training_file_holds_exactly_the_training_rows_of_the_bundled_file(tmp_path):
    full_x, full_y = load_digits("train")
    path = digits.write_training_digits(tmp_path / "digits.npz")
    with np.load(path) as npz:
        pixels, labels = npz["pixels"], npz["labels"]
    assert pixels.shape == (1442, 8, 8) and labels.shape == (1442,)
    np.testing.assert_array_equal(labels, full_y)
    np.testing.assert_array_equal(pixels / 16.0, full_x[:, 0])


def test_held_out_train_split_is_the_usual_one(held_out):
    x, y = load_digits("train")
    digits._read_all.cache_clear()
    assert x.shape == (1442, 1, 8, 8) and y.shape == (1442,)
    assert np.bincount(y).min() > 100  # every class is there


@pytest.mark.parametrize("split", ["test", "all"])
def test_held_out_test_digits_are_refused_with_the_reason(held_out, split):
    with pytest.raises(digits.HeldOutError, match="held out while your notebook is graded"):
        load_digits(split)


def test_the_full_file_is_refused_when_held_out_mode_expects_the_training_file(monkeypatch):
    digits._read_all.cache_clear()
    monkeypatch.setenv(digits.HELD_OUT_VARIABLE, "1")
    try:
        with pytest.raises(ValueError, match=r"shape \(1797, 8, 8\) .* expected 1442 digits"):
            load_digits("train")
    finally:
        digits._read_all.cache_clear()
