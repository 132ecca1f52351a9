"""MNIST and Fashion-MNIST from their IDX files in a local folder (or downloaded).

    load_mnist(root=None, split="train", download=False, dtype=np.float32)
    load_fashion_mnist(root=None, split="train", download=False, dtype=np.float32)
        -> LabelledImages(images (N, 1, 28, 28), labels (N,) int64)

Both sets are 60000 training and 10000 test images of 28x28 grey pixels, 10 classes, in
four files with the canonical names

    train-images-idx3-ubyte   train-labels-idx1-ubyte   (split="train")
    t10k-images-idx3-ubyte    t10k-labels-idx1-ubyte    (split="test")

each either plain or gzipped (``.gz`` appended, as published). They are looked for in
``root`` itself, then in ``root/raw`` and ``root/MNIST/raw`` / ``root/FashionMNIST/raw``
(torchvision's layout, so a folder torchvision downloaded works as is). ``root=None``
means ``data_home() / "mnist"`` (or ``"fashion_mnist"``), see
:mod:`cvcourse.data.download`. With ``download=True`` the missing ``.gz`` files are
downloaded into ``root`` and checked against their published SHA-256.

Images are float32 ``pixel / 255`` in ``[0, 1]`` (``dtype=np.uint8`` keeps the raw 0..255),
white digit on black as stored; labels are int64 in 0..9 (names: :data:`MNIST_CLASSES`,
:data:`FASHION_MNIST_CLASSES`).

Sources and checksums (size in bytes, SHA-256; the MD5s the authors publish are kept in
``_MNIST_FILES`` / ``_FASHION_FILES`` too):

* MNIST (LeCun, Cortes, Burges; http://yann.lecun.com/exdb/mnist/). That page has refused
  downloads (HTTP 403) since 2023, so the PyTorch mirror
  (https://ossci-datasets.s3.amazonaws.com/mnist/) and the Google mirror TensorFlow uses
  (https://storage.googleapis.com/cvdf-datasets/mnist/) are tried first, the original last.
  The checksum guarantees that every mirror gives the original bytes.
* Fashion-MNIST (Xiao, Rasul, Vollgraf; Zalando Research):
  http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/, the official address, then
  the files in the official GitHub repository (zalandoresearch/fashion-mnist, data/fashion).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._validate import as_choice, as_dir, as_flag, as_image_dtype
from .download import RemoteFile, data_home, fetch
from .idx import read_idx
from .labelled import LabelledImages

__all__ = ["FASHION_MNIST_CLASSES", "MNIST_CLASSES", "load_fashion_mnist", "load_mnist"]

#: Class names of MNIST: label ``k`` is the digit ``k``.
MNIST_CLASSES: tuple[str, ...] = tuple(str(k) for k in range(10))

#: Class names of Fashion-MNIST, by label (from the dataset's README).
FASHION_MNIST_CLASSES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

_MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
_FASHION_MIRRORS = (
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
)


def _remote(name, mirrors, size, sha256, md5) -> RemoteFile:
    filename = name + ".gz"
    return RemoteFile(filename, tuple(m + filename for m in mirrors), sha256, size, md5)


# fmt: off
_MNIST_FILES = {
    "train-images-idx3-ubyte": _remote(
        "train-images-idx3-ubyte", _MNIST_MIRRORS, 9_912_422,
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
    "train-labels-idx1-ubyte": _remote(
        "train-labels-idx1-ubyte", _MNIST_MIRRORS, 28_881,
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "d53e105ee54ea40749a09fcbcd1e9432"),
    "t10k-images-idx3-ubyte": _remote(
        "t10k-images-idx3-ubyte", _MNIST_MIRRORS, 1_648_877,
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "9fb629c4189551a2d022fa330f9573f3"),
    "t10k-labels-idx1-ubyte": _remote(
        "t10k-labels-idx1-ubyte", _MNIST_MIRRORS, 4_542,
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        "ec29112dd5afa0611ce80d1b7f02629c"),
}
_FASHION_FILES = {
    "train-images-idx3-ubyte": _remote(
        "train-images-idx3-ubyte", _FASHION_MIRRORS, 26_421_880,
        "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
    "train-labels-idx1-ubyte": _remote(
        "train-labels-idx1-ubyte", _FASHION_MIRRORS, 29_515,
        "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "25c81989df183df01b3e8a0aad5dffbe"),
    "t10k-images-idx3-ubyte": _remote(
        "t10k-images-idx3-ubyte", _FASHION_MIRRORS, 4_422_102,
        "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "bef4ecab320f06d8554ea6380940ec79"),
    "t10k-labels-idx1-ubyte": _remote(
        "t10k-labels-idx1-ubyte", _FASHION_MIRRORS, 5_148,
        "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        "bb300cfdad3c16e7a12a480ee83cd310"),
}
# fmt: on

_SPLIT_PREFIX = {"train": "train", "test": "t10k"}
_IMAGE_HW = (28, 28)


def _find(folders: list[Path], name: str) -> Path | None:
    """The first of ``folder/name`` or ``folder/name.gz`` that exists, over ``folders``."""
    for folder in folders:
        for candidate in (folder / name, folder / (name + ".gz")):
            if candidate.is_file():
                return candidate
    return None


def _load_idx_pair(
    dataset: str,
    torchvision_name: str,
    files: dict[str, RemoteFile],
    root,
    split: str,
    download: bool,
    dtype,
    progress: bool,
) -> LabelledImages:
    """Shared body of :func:`load_mnist` and :func:`load_fashion_mnist`."""
    split = as_choice(split, "split", ("train", "test"))
    download = as_flag(download, "download")
    dtype = as_image_dtype(dtype)
    root = data_home() / dataset if root is None else as_dir(root)
    folders = [root, root / "raw", root / torchvision_name / "raw"]
    prefix = _SPLIT_PREFIX[split]
    names = (f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte")

    paths = []
    for name in names:
        path = _find(folders, name)
        if path is None and download:
            path = fetch(files[name], root, progress=progress)
        if path is None:
            raise FileNotFoundError(
                f"{dataset}: neither {name} nor {name}.gz found in "
                + ", ".join(str(f) for f in folders)
                + "; pass download=True to download it, or root= the folder that holds it"
            )
        paths.append(path)

    images = read_idx(paths[0], ndim=3)
    labels = read_idx(paths[1], ndim=1)
    if images.dtype != np.uint8 or tuple(images.shape[1:]) != _IMAGE_HW:
        raise ValueError(
            f"{dataset}: {paths[0]} holds {images.dtype} images of shape {images.shape}, "
            f"expected uint8 (N, 28, 28)"
        )
    if labels.dtype != np.uint8:
        raise ValueError(f"{dataset}: {paths[1]} holds {labels.dtype} labels, expected uint8")
    if images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"{dataset}: {paths[0]} has {images.shape[0]} images but {paths[1]} has "
            f"{labels.shape[0]} labels; the files do not belong together"
        )
    if labels.size and labels.max() > 9:
        raise ValueError(f"{dataset}: {paths[1]} has label {labels.max()}, expected labels 0..9")
    images = images[:, None]
    if dtype == np.float32:
        images = images.astype(np.float32) / np.float32(255.0)
    return LabelledImages(np.ascontiguousarray(images), labels.astype(np.int64))


def load_mnist(
    root=None,
    split: str = "train",
    *,
    download: bool = False,
    dtype=np.float32,
    progress: bool = True,
) -> LabelledImages:
    """MNIST handwritten digits from the IDX files in ``root`` (module docstring).

    Parameters
    ----------
    root:
        Folder with the four files (plain or ``.gz``); ``None`` for ``data_home()/mnist``.
    split:
        ``"train"`` (60000 images) or ``"test"`` (10000).
    download:
        Download missing files into ``root`` (checked against their SHA-256).
    dtype:
        ``np.float32`` (``pixel / 255`` in ``[0, 1]``) or ``np.uint8`` (raw 0..255).
    progress:
        Show a progress bar while downloading.

    Returns
    -------
    :class:`LabelledImages` ``(images (N, 1, 28, 28), labels (N,) int64 in 0..9)``.

    Raises
    ------
    FileNotFoundError
        A file is missing and ``download`` is false (the message lists where it looked).
    ValueError
        A file is truncated or not what it should be (the message names it).
    DownloadError
        ``download=True`` and no mirror delivered the file.
    """
    return _load_idx_pair("mnist", "MNIST", _MNIST_FILES, root, split, download, dtype, progress)


def load_fashion_mnist(
    root=None,
    split: str = "train",
    *,
    download: bool = False,
    dtype=np.float32,
    progress: bool = True,
) -> LabelledImages:
    """Fashion-MNIST (Zalando's clothing images) from the IDX files in ``root``.

    Same files, shapes, arguments and errors as :func:`load_mnist`; ``root=None`` means
    ``data_home()/fashion_mnist``. Class names: :data:`FASHION_MNIST_CLASSES`.
    """
    return _load_idx_pair(
        "fashion_mnist", "FashionMNIST", _FASHION_FILES, root, split, download, dtype, progress
    )
