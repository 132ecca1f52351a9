"""read_idx and load_mnist / load_fashion_mnist on small files in the exact IDX format."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from cvcourse.data import load_fashion_mnist, load_mnist, read_idx

from .formats import idx_bytes, mnist_like, write_idx_pair

# ---------------------------------------------------------------------------------------------
# read_idx


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize(
    ("type_code", "dtype"),
    [
        (0x08, np.uint8),
        (0x09, np.int8),
        (0x0B, np.int16),
        (0x0C, np.int32),
        (0x0D, np.float32),
        (0x0E, np.float64),
    ],
)
def test_read_idx_round_trips_every_element_type(tmp_path, gz, type_code, dtype):
    rng = np.random.default_rng(0)
    array = (rng.standard_normal((3, 4, 5)) * 100).astype(dtype)
    data = idx_bytes(array, type_code)
    path = tmp_path / "a.idx"
    path.write_bytes(gzip.compress(data) if gz else data)
    out = read_idx(path)
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    np.testing.assert_array_equal(out, array)


def test_read_idx_header_is_big_endian_mnist_magic(tmp_path):
    images = np.zeros((2, 28, 28), np.uint8)
    data = idx_bytes(images)
    assert int.from_bytes(data[:4], "big") == 2051
    assert int.from_bytes(idx_bytes(np.zeros(2, np.uint8))[:4], "big") == 2049
    path = tmp_path / "x"
    path.write_bytes(data)
    assert read_idx(path, ndim=3).shape == (2, 28, 28)


def _write(tmp_path, data: bytes, name="bad-idx3-ubyte"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_read_idx_truncated_payload_names_file_shape_and_sizes(tmp_path):
    data = idx_bytes(np.zeros((3, 28, 28), np.uint8))
    path = _write(tmp_path, data[:-10])
    with pytest.raises(
        ValueError, match=r"bad-idx3-ubyte is truncated.*\(3, 28, 28\).*2368 bytes.*2358"
    ):
        read_idx(path)


def test_read_idx_trailing_bytes_are_an_error(tmp_path):
    path = _write(tmp_path, idx_bytes(np.zeros(4, np.uint8)) + b"\x00")
    with pytest.raises(ValueError, match="longer than its header says"):
        read_idx(path)


def test_read_idx_bad_magic_number_is_reported_in_hex(tmp_path):
    path = _write(tmp_path, b"\x12\x34\x08\x03" + b"\x00" * 20)
    with pytest.raises(ValueError, match=r"bad magic number 0x12340803.*2051"):
        read_idx(path)


def test_read_idx_unknown_type_code_is_bad_magic(tmp_path):
    path = _write(tmp_path, b"\x00\x00\x07\x01" + (1).to_bytes(4, "big") + b"\x00")
    with pytest.raises(ValueError, match=r"bad magic number 0x00000701"):
        read_idx(path)


def test_read_idx_wrong_number_of_dimensions(tmp_path):
    path = _write(tmp_path, idx_bytes(np.zeros(5, np.uint8)))
    with pytest.raises(
        ValueError, match=r"has 1 dimensions \(magic 0x00000801\) but 3 were expected"
    ):
        read_idx(path, ndim=3)


def test_read_idx_truncated_header_and_empty_file(tmp_path):
    with pytest.raises(ValueError, match="shorter than the 4-byte magic number"):
        read_idx(_write(tmp_path, b"\x00\x00"))
    with pytest.raises(ValueError, match="shorter than its 16-byte header"):
        read_idx(_write(tmp_path, b"\x00\x00\x08\x03" + b"\x00" * 5))


def test_read_idx_truncated_gzip_stream_names_the_file(tmp_path):
    data = gzip.compress(idx_bytes(np.arange(600, dtype=np.uint8).reshape(6, 10, 10)))
    path = _write(tmp_path, data[: len(data) // 2], "t10k-images-idx3-ubyte.gz")
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte\.gz: broken gzip stream"):
        read_idx(path)


def test_read_idx_missing_file_and_bad_path_type(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nope")
    with pytest.raises(TypeError, match="path must be a file path"):
        read_idx(3)


# ---------------------------------------------------------------------------------------------
# load_mnist / load_fashion_mnist


@pytest.mark.parametrize("loader", [load_mnist, load_fashion_mnist])
@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize(("split", "prefix"), [("train", "train"), ("test", "t10k")])
def test_mnist_loaders_read_plain_and_gzipped_files(tmp_path, loader, gz, split, prefix):
    images, labels = mnist_like(7, seed=1)
    write_idx_pair(tmp_path, prefix, images, labels, gz=gz)
    x, y = loader(tmp_path, split)
    assert x.shape == (7, 1, 28, 28) and x.dtype == np.float32
    assert y.dtype == np.int64
    np.testing.assert_array_equal(x[:, 0], images.astype(np.float32) / 255)
    np.testing.assert_array_equal(y, labels)
    assert 0.0 <= x.min() and x.max() <= 1.0


def test_mnist_uint8_option_keeps_raw_pixels(tmp_path):
    images, labels = mnist_like(3, seed=2)
    write_idx_pair(tmp_path, "train", images, labels, gz=True)
    x, _ = load_mnist(tmp_path, "train", dtype=np.uint8)
    assert x.dtype == np.uint8
    np.testing.assert_array_equal(x[:, 0], images)


def test_mnist_finds_torchvision_layout(tmp_path):
    images, labels = mnist_like(2, seed=3)
    write_idx_pair(tmp_path / "MNIST" / "raw", "t10k", images, labels, gz=False)
    write_idx_pair(tmp_path / "FashionMNIST" / "raw", "t10k", images[::-1], labels, gz=True)
    np.testing.assert_array_equal(load_mnist(tmp_path, "test").labels, labels)
    x, _ = load_fashion_mnist(tmp_path, "test", dtype=np.uint8)
    np.testing.assert_array_equal(x[:, 0], images[::-1])


def test_mnist_default_root_is_the_cache_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("CVCOURSE_DATA", str(tmp_path))
    images, labels = mnist_like(2, seed=4)
    write_idx_pair(tmp_path / "mnist", "train", images, labels, gz=True)
    assert load_mnist().images.shape == (2, 1, 28, 28)


def test_mnist_missing_files_say_where_they_looked_and_how_to_download(tmp_path):
    with pytest.raises(
        FileNotFoundError, match=r"train-images-idx3-ubyte\.gz found in .*download=True"
    ):
        load_mnist(tmp_path, "train")


def test_mnist_count_mismatch_between_images_and_labels(tmp_path):
    images, labels = mnist_like(5, seed=5)
    write_idx_pair(tmp_path, "train", images, labels[:4], gz=False)
    with pytest.raises(
        ValueError, match=r"has 5 images but .*train-labels-idx1-ubyte has 4 labels"
    ):
        load_mnist(tmp_path, "train")


def test_mnist_images_of_wrong_size_are_refused(tmp_path):
    (tmp_path / "train-images-idx3-ubyte").write_bytes(idx_bytes(np.zeros((2, 32, 32), np.uint8)))
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(2, np.uint8)))
    with pytest.raises(ValueError, match=r"shape \(2, 32, 32\), expected uint8 \(N, 28, 28\)"):
        load_mnist(tmp_path, "train")


def test_mnist_swapped_files_fail_on_the_dimension_check(tmp_path):
    images, labels = mnist_like(2, seed=6)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(idx_bytes(labels))
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(images))
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte has 1 dimensions"):
        load_mnist(tmp_path, "train")


def test_mnist_labels_out_of_range_are_refused(tmp_path):
    images, labels = mnist_like(3, seed=7)
    labels[1] = 12
    write_idx_pair(tmp_path, "train", images, labels, gz=False)
    with pytest.raises(ValueError, match=r"label 12, expected labels 0..9"):
        load_mnist(tmp_path, "train")


def test_mnist_truncated_gz_is_an_error_naming_it(tmp_path):
    images, labels = mnist_like(20, seed=8)
    img_path, _ = write_idx_pair(tmp_path, "train", images, labels, gz=True)
    img_path.write_bytes(img_path.read_bytes()[:-30])
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte\.gz: broken gzip stream"):
        load_mnist(tmp_path, "train")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"split": "val"}, ValueError, r"split must be one of 'train', 'test'"),
        ({"dtype": np.float64}, ValueError, r"dtype must be np.float32 .* or np.uint8"),
        ({"download": 1}, TypeError, r"download must be True or False"),
        ({"root": 5}, TypeError, r"root must be a folder path"),
    ],
)
def test_mnist_validates_its_arguments(tmp_path, kwargs, error, match):
    kwargs.setdefault("root", tmp_path)
    with pytest.raises(error, match=match):
        load_mnist(**kwargs)
