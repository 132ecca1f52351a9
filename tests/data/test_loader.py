"""DataLoader: batching, shuffling per epoch, determinism, drop_last, len, validation."""

from __future__ import annotations

import numpy as np
import pytest

from cvcourse.data import DataLoader


def _data(n=10):
    x = np.arange(n * 2 * 3 * 3, dtype=np.float32).reshape(n, 2, 3, 3)
    y = np.arange(n) % 3
    return x, y


@pytest.mark.parametrize(
    ("n", "batch_size", "drop_last", "expected_len", "last"),
    [
        (10, 3, False, 4, 1),
        (10, 3, True, 3, 3),
        (9, 3, False, 3, 3),
        (9, 3, True, 3, 3),
        (5, 8, False, 1, 5),
        (1, 1, False, 1, 1),
    ],
)
def test_len_and_batch_sizes(n, batch_size, drop_last, expected_len, last):
    x, y = _data(n)
    loader = DataLoader(x, y, batch_size, drop_last=drop_last)
    batches = list(loader)
    assert len(loader) == len(batches) == expected_len
    assert [len(b.labels) for b in batches[:-1]] == [batch_size] * (expected_len - 1)
    assert len(batches[-1].images) == last


def test_without_shuffle_batches_are_in_order_and_cover_everything():
    x, y = _data(10)
    batches = list(DataLoader(x, y, 4, shuffle=False))
    np.testing.assert_array_equal(np.concatenate([b.images for b in batches]), x)
    np.testing.assert_array_equal(np.concatenate([b.labels for b in batches]), y)
    assert batches[0].labels.dtype == np.int64


def test_each_epoch_is_a_permutation_and_pairs_stay_together():
    x, y = _data(10)
    loader = DataLoader(x, y, 3, seed=1)
    for _ in range(3):
        xs, ys = zip(*loader, strict=True)
        xs, ys = np.concatenate(xs), np.concatenate(ys)
        ids = (xs[:, 0, 0, 0] // 18).astype(int)  # sample index encoded in x
        assert sorted(ids) == list(range(10))
        np.testing.assert_array_equal(ys, y[ids])


def test_shuffle_is_deterministic_per_seed_and_reshuffles_each_epoch():
    x, y = _data(50)

    def epochs(seed, k=3):
        loader = DataLoader(x, y, 7, seed=seed)
        return [np.concatenate([b.labels for b in loader]) for _ in range(k)]

    a, b, c = epochs(5), epochs(5), epochs(6)
    for ea, eb in zip(a, b, strict=True):
        np.testing.assert_array_equal(ea, eb)
    orders = [tuple(DataLoader(x, y, 7, seed=5).order(e)) for e in range(3)]
    assert len(set(orders)) == 3  # a new order every epoch
    assert not all(np.array_equal(ea, ec) for ea, ec in zip(a, c, strict=True))


def test_epoch_counter_and_set_epoch_replay_an_epoch():
    x, y = _data(20)
    loader = DataLoader(x, y, 6, seed=3)
    first = [b.labels for b in loader]
    second = [b.labels for b in loader]
    assert loader.epoch == 2
    loader.set_epoch(0)
    again = [b.labels for b in loader]
    for f, g in zip(first, again, strict=True):
        np.testing.assert_array_equal(f, g)
    assert any(not np.array_equal(f, s) for f, s in zip(first, second, strict=True))


def test_batches_are_copies_not_views_of_the_dataset():
    x, y = _data(6)
    before = x.copy()
    for xb, _ in DataLoader(x, y, 2, shuffle=False):
        xb[:] = -1
    np.testing.assert_array_equal(x, before)


def test_y_none_yields_x_batches_only():
    x, _ = _data(5)
    batches = list(DataLoader(x, None, 2, shuffle=False))
    assert [b.shape[0] for b in batches] == [2, 2, 1]
    assert isinstance(batches[0], np.ndarray)


def test_seed_none_picks_and_records_a_seed():
    x, y = _data(5)
    loader = DataLoader(x, y, 2, seed=None)
    assert isinstance(loader.seed, int) and loader.seed >= 0
    assert "batch_size=2" in repr(loader)


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        ((np.zeros((4, 1)), np.zeros(3, int), 2), {}, ValueError, r"y has 3 labels but x has 4"),
        ((np.zeros((4, 1)), np.zeros(4, int), 0), {}, ValueError, r"batch_size must be >= 1"),
        ((np.zeros((4, 1)), np.zeros(4, int), 2.0), {}, TypeError, r"batch_size must be an int"),
        (
            (np.zeros((4, 1)), np.zeros(4, int), 5),
            {"drop_last": True},
            ValueError,
            "no batch at all",
        ),
        (
            (np.zeros((4, 1)), np.zeros(4, int), 2),
            {"shuffle": "yes"},
            TypeError,
            "shuffle must be True",
        ),
        ((np.zeros((4, 1)), np.zeros(4, int), 2), {"seed": -1}, ValueError, "seed must be >= 0"),
        ((np.zeros((0, 1)), None, 2), {}, ValueError, "x must be a non-empty"),
        ((np.zeros((4, 1)), np.zeros((4, 1), int), 2), {}, ValueError, "y must be a 1-D"),
        ((np.zeros((4, 1)), [0.5, 1, 2, 3], 2), {}, TypeError, "integer class indices"),
        ((np.array(["a", "b"]), None, 2), {}, TypeError, "x must hold real numbers"),
    ],
)
def test_dataloader_validates_its_arguments(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        DataLoader(*args, **kwargs)
