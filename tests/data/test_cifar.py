"""load_cifar10 on small pickled batches: folder, archive, and every kind of corruption."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from cvcourse.data import CIFAR10_CLASSES, load_cifar10

from .formats import cifar_batch, write_cifar_archive, write_cifar_folder


def _expected(contents, names):
    data = np.concatenate([contents[n][0] for n in names]).reshape(-1, 3, 32, 32)
    labels = np.concatenate([contents[n][1] for n in names])
    return data, labels


TRAIN = [f"data_batch_{k}" for k in range(1, 6)]


@pytest.mark.parametrize("layout", ["batches_folder", "parent_folder"])
def test_cifar_reads_extracted_folder(tmp_path, layout):
    folder = tmp_path / "cifar-10-batches-py"
    contents = write_cifar_folder(folder, n=3)
    root = folder if layout == "batches_folder" else tmp_path
    x, y = load_cifar10(root, "train")
    data, labels = _expected(contents, TRAIN)
    assert x.shape == (15, 3, 32, 32) and x.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_array_equal(x, data.astype(np.float32) / 255)
    np.testing.assert_array_equal(y, labels)
    x_test, y_test = load_cifar10(root, "test", dtype=np.uint8)
    np.testing.assert_array_equal(x_test, contents["test_batch"][0].reshape(-1, 3, 32, 32))
    assert len(CIFAR10_CLASSES) == 10


def test_cifar_data_rows_are_red_green_blue_planes(tmp_path):
    raw = {b"data": np.zeros((1, 3072), np.uint8), b"labels": [3]}
    raw[b"data"][0, 1024 + 32 * 5 + 7] = 200  # green plane, row 5, column 7
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    (folder / "test_batch").write_bytes(pickle.dumps(raw))
    x, y = load_cifar10(tmp_path, "test", dtype=np.uint8)
    assert x[0, 1, 5, 7] == 200 and x.sum() == 200 and y.tolist() == [3]


@pytest.mark.parametrize("point_at", ["folder", "archive"])
def test_cifar_reads_the_tar_gz_without_extracting(tmp_path, point_at):
    archive = tmp_path / "cifar-10-python.tar.gz"
    contents = write_cifar_archive(archive, n=2)
    root = tmp_path if point_at == "folder" else archive
    x, y = load_cifar10(root, "train")
    data, labels = _expected(contents, TRAIN)
    np.testing.assert_array_equal(x, data.astype(np.float32) / 255)
    np.testing.assert_array_equal(y, labels)
    assert not (tmp_path / "cifar-10-batches-py").exists()


def test_cifar_missing_data_says_how_to_get_it(tmp_path):
    with pytest.raises(
        FileNotFoundError, match=r"no data_batch_1 .*cifar-10-python\.tar\.gz.*download=True"
    ):
        load_cifar10(tmp_path, "train")


def test_cifar_folder_missing_some_batches_lists_them(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar_folder(folder, n=1)
    (folder / "data_batch_4").unlink()
    with pytest.raises(FileNotFoundError, match=r"lacks data_batch_4"):
        load_cifar10(tmp_path, "train")


def _write_test_batch(tmp_path, raw: bytes):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir(exist_ok=True)
    (folder / "test_batch").write_bytes(raw)


def test_cifar_truncated_batch_names_the_file(tmp_path):
    raw, _, _ = cifar_batch(3, seed=0)
    _write_test_batch(tmp_path, raw[: len(raw) // 2])
    with pytest.raises(ValueError, match=r"test_batch cannot be unpickled.*truncated"):
        load_cifar10(tmp_path, "test")


def test_cifar_wrong_keys_are_listed(tmp_path):
    raw, _, _ = cifar_batch(3, seed=0, label_key=b"fine_labels")
    _write_test_batch(tmp_path, raw)
    with pytest.raises(
        ValueError, match=r"test_batch has keys .*b'fine_labels'.*expected b'data' and b'labels'"
    ):
        load_cifar10(tmp_path, "test")


def test_cifar_non_dict_pickle_is_refused(tmp_path):
    _write_test_batch(tmp_path, pickle.dumps([1, 2, 3]))
    with pytest.raises(ValueError, match=r"holds a list, expected a dict"):
        load_cifar10(tmp_path, "test")


@pytest.mark.parametrize(
    ("data", "labels", "match"),
    [
        (
            np.zeros((2, 3000), np.uint8),
            [0, 1],
            r"b'data' is uint8 of shape \(2, 3000\), expected uint8 \(n, 3072\)",
        ),
        (np.zeros((2, 3072), np.float32), [0, 1], r"b'data' is float32"),
        (np.zeros((2, 3072), np.uint8), [0], r"has 2 images but 1 labels"),
        (np.zeros((2, 3072), np.uint8), [0, 10], r"labels from 0 to 10, expected 0..9"),
        (np.zeros((2, 3072), np.uint8), ["a", "b"], r"b'labels' is <U1 .* expected a list of ints"),
    ],
)
def test_cifar_wrong_sizes_and_types_are_refused(tmp_path, data, labels, match):
    _write_test_batch(tmp_path, pickle.dumps({b"data": data, b"labels": labels}))
    with pytest.raises(ValueError, match=match):
        load_cifar10(tmp_path, "test")


def test_cifar_pickle_that_would_run_code_is_refused_not_executed(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    _write_test_batch(tmp_path, pickle.dumps({b"data": Evil(), b"labels": []}))
    with pytest.raises(ValueError, match=r"refusing to load global builtins\.print"):
        load_cifar10(tmp_path, "test")


def test_cifar_truncated_archive_names_it(tmp_path):
    archive = tmp_path / "cifar-10-python.tar.gz"
    write_cifar_archive(archive, n=50)
    archive.write_bytes(archive.read_bytes()[:-2000])
    with pytest.raises(
        ValueError, match=r"cifar-10-python\.tar\.gz cannot be read.*truncated or corrupt"
    ):
        load_cifar10(tmp_path, "train")


def test_cifar_archive_that_is_not_a_tar_is_an_error(tmp_path):
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(b"this is not an archive" * 10)
    with pytest.raises(ValueError, match=r"cannot be read"):
        load_cifar10(tmp_path, "test")


def test_cifar_archive_without_the_batches_lists_the_missing_members(tmp_path):
    raw, _, _ = cifar_batch(1, seed=0)
    write_cifar_archive(tmp_path / "cifar-10-python.tar.gz", members={"data_batch_1": raw})
    with pytest.raises(ValueError, match=r"lacks cifar-10-batches-py/test_batch"):
        load_cifar10(tmp_path, "test")


def test_cifar_validates_split_and_dtype(tmp_path):
    with pytest.raises(ValueError, match="split must be one of"):
        load_cifar10(tmp_path, "all")
    with pytest.raises(ValueError, match="dtype must be"):
        load_cifar10(tmp_path, "test", dtype=np.int64)


def test_cifar_reads_batches_pickled_by_old_numpy(tmp_path):
    # The published batches (Python 2, numpy 1.x) name numpy.core.multiarray._reconstruct;
    # numpy 2 writes numpy._core. Rewrite the global's module name to the old one.
    raw = pickle.dumps({b"data": np.full((2, 3072), 7, np.uint8), b"labels": [4, 2]}, protocol=2)
    assert b"cnumpy._core.multiarray\n_reconstruct" in raw
    raw = raw.replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")
    _write_test_batch(tmp_path, raw)
    x, y = load_cifar10(tmp_path, "test", dtype=np.uint8)
    assert x.shape == (2, 3, 32, 32) and (x == 7).all() and y.tolist() == [4, 2]
