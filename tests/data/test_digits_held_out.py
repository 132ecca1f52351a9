"""The digits as the grading sandbox shows them: the training split only.

``write_training_digits`` writes the bundled file without its test digits; with
``CVCOURSE_DIGITS_HELD_OUT=1`` (set by the sandbox) ``load_digits("train")`` returns the
same digits as on the full file, and the test split is refused with a message that says why.
"""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from cvcourse.data import digits, load_digits


@pytest.fixture
def held_out(tmp_path, monkeypatch):
    path = digits.write_training_digits(tmp_path / "digits.csv.gz")
    digits._read_all.cache_clear()
    monkeypatch.setattr(digits, "_digits_file", lambda: path)
    monkeypatch.setenv(digits.HELD_OUT_VARIABLE, "1")
    yield path
    digits._read_all.cache_clear()


def test_the_training_file_holds_exactly_the_training_rows_of_the_bundled_file(tmp_path):
    full_x, full_y = load_digits("train")
    path = digits.write_training_digits(tmp_path / "digits.csv.gz")
    with gzip.open(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",")
    assert table.shape == (1442, 65)
    np.testing.assert_array_equal(table[:, 64], full_y)
    np.testing.assert_array_equal(table[:, :64] / 16.0, full_x.reshape(1442, 64))


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
        with pytest.raises(ValueError, match=r"expected \(1442, 65\)"):
            load_digits("train")
    finally:
        digits._read_all.cache_clear()
