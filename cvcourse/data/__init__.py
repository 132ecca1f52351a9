"""Data for the course notebooks: offline sets, loaders of the standard sets, batching.

Available offline, no network and no files needed:

    load_digits(split="train")        8x8 handwritten digits shipped here, (N, 1, 8, 8)
    load_shapes(n, size=28, ...)      drawn crosses, noughts, pluses, squares, triangles
    sample_image(name="grace_hopper") photos shipped with matplotlib (``samples``)

The standard sets, from a local folder (or ``download=True``, into ``data_home()``):

    load_mnist(root, split)           MNIST, IDX files, (N, 1, 28, 28)
    load_fashion_mnist(root, split)   Fashion-MNIST, IDX files, (N, 1, 28, 28)
    load_cifar10(root, split)         CIFAR-10, python batches or the tar.gz, (N, 3, 32, 32)

Every loader returns :class:`LabelledImages` ``(images, labels)``: NCHW float32 images in
``[0, 1]`` and int64 labels, so ``x, y = load_digits("train")``. The class names are
``DIGIT_CLASSES``, ``SHAPE_CLASSES`` (or the ``classes`` you pass), ``MNIST_CLASSES``,
``FASHION_MNIST_CLASSES``, ``CIFAR10_CLASSES``.

Training helpers:

    DataLoader(x, y, batch_size, shuffle=True, seed=0, drop_last=False)
    train_val_split(x, y, val_fraction=0.2, stratify=True, seed=0)
    normalize(x, mean=None, std=None) -> (x, mean, std);  one_hot(labels, num_classes)
    horizontal_flip, random_horizontal_flip, random_crop, gaussian_noise  (augment)

Image helpers (``samples``): ``sample_image_names``, ``rgb_to_gray``, ``to_nchw``,
``from_nchw``. Files: ``read_idx``, ``download``, ``data_home``.

Importing this package costs only numpy: file readers (gzip, zipfile, tarfile, pickle,
urllib, Pillow, matplotlib) and the downloader (pooch, requests, tqdm) are imported when they
are used. Loaders added here must keep it that way.
"""

from .augment import gaussian_noise, horizontal_flip, random_crop, random_horizontal_flip
from .cifar import CIFAR10_CLASSES, load_cifar10
from .digits import DIGIT_CLASSES, load_digits
from .download import DownloadError, RemoteFile, data_home, download
from .idx import read_idx
from .labelled import LabelledImages
from .loader import DataLoader
from .mnist import FASHION_MNIST_CLASSES, MNIST_CLASSES, load_fashion_mnist, load_mnist
from .samples import (
    LUMA_WEIGHTS,
    from_nchw,
    rgb_to_gray,
    sample_image,
    sample_image_names,
    to_nchw,
)
from .shapes import SHAPE_CLASSES, load_shapes
from .splits import split_indices, train_val_split
from .transforms import normalize, one_hot

__all__ = [
    "CIFAR10_CLASSES",
    "DIGIT_CLASSES",
    "FASHION_MNIST_CLASSES",
    "LUMA_WEIGHTS",
    "MNIST_CLASSES",
    "SHAPE_CLASSES",
    "DataLoader",
    "DownloadError",
    "LabelledImages",
    "RemoteFile",
    "data_home",
    "download",
    "from_nchw",
    "gaussian_noise",
    "horizontal_flip",
    "load_cifar10",
    "load_digits",
    "load_fashion_mnist",
    "load_mnist",
    "load_shapes",
    "normalize",
    "one_hot",
    "random_crop",
    "random_horizontal_flip",
    "read_idx",
    "rgb_to_gray",
    "sample_image",
    "sample_image_names",
    "split_indices",
    "to_nchw",
    "train_val_split",
]
