"""A tour of the library: ``python -m cvcourse.demo`` (``make demo`` runs the grading term).

1. Filters: a real photo (Grace Hopper, shipped with matplotlib) convolved with the
   lectures' classic 3x3 filters in one ``conv2d`` call, cross-checked against a plain
   NumPy computation, and saved as a grid of images.
2. Gradients: ``conv2d``, ``max_pool2d`` and ``avg_pool2d`` backward passes checked by
   centred finite differences (``cvcourse.gradcheck``), with their reports.
3. Training: a LeNet-style CNN built from ``cvcourse.nn`` learns the bundled 8x8 digits
   (UCI's set, shipped in the package), with a progress bar; the test accuracy is printed
   and the loss and accuracy curves are saved.

The benchmark against torch is ``make bench`` (``bench/bench_kernels.py``); it needs torch,
which this module does not.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from tabulate import tabulate

from .data import DataLoader, load_digits, sample_image, to_nchw
from .fileio import atomic_path
from .filters import FILTERS
from .gradcheck import check_gradients
from .kernels import (
    avg_pool2d,
    avg_pool2d_backward,
    conv2d,
    conv2d_backward,
    max_pool2d,
    max_pool2d_backward,
)
from .models import lenet_digits
from .nn import Adam, CrossEntropyLoss, fit, plot_history

DEFAULT_OUTPUT = Path("artifacts") / "demo"
# Filters whose output still looks like a photo (shown in grey); the rest detect edges.
IMAGE_LIKE = {"identity", "box_blur", "gaussian_blur", "sharpen", "emboss"}


def _heading(text: str) -> None:
    print(f"\n== {text} " + "=" * max(0, 70 - len(text)), flush=True)


def filter_bank(dtype=np.float32) -> tuple[list[str], np.ndarray]:
    """All lecture filters as one conv weight ``(F, 1, 3, 3)``, with their names."""
    names = list(FILTERS)
    return names, np.stack([FILTERS[name] for name in names])[:, None].astype(dtype)


def correlate_numpy(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Reference: ``out[i, j] = sum_{u, v} pad(image)[i + u, j + v] * kernel[u, v]`` (padding 1)."""
    padded = np.pad(image, 1)
    height, width = image.shape
    out = np.zeros((height, width), dtype=np.float64)
    for u in range(3):
        for v in range(3):
            out += kernel[u, v] * padded[u : u + height, v : v + width]
    return out


def run_filters(output_dir: Path) -> Path:
    """Filter the photo with each kernel, check against NumPy, save the grid; return its path."""
    _heading("1. The lectures' filters on a photo (cvcourse.kernels.conv2d)")
    image = sample_image("grace_hopper", gray=True)
    names, weight = filter_bank()
    start = time.perf_counter()
    responses = conv2d(to_nchw(image), weight, padding=1)[0]
    seconds = time.perf_counter() - start
    print(
        f"photo {image.shape[0]}x{image.shape[1]} grey, {len(names)} filters "
        f"in one conv2d call: {seconds * 1e3:.1f} ms"
    )
    rows = [
        [name, response.min(), response.max(), response.mean()]
        + [f"{np.abs(response - correlate_numpy(image, kernel)).max():.1e}"]
        for name, response, kernel in zip(names, responses, weight[:, 0], strict=True)
    ]
    header = ["filter", "min", "max", "mean", "max |conv2d - numpy|"]
    print(tabulate(rows, headers=header, floatfmt=".3f", disable_numparse=[4]))
    path = output_dir / "filters.png"
    _save_grid(image, names, responses, path)
    print(f"saved {path}")
    return path


def _save_grid(image, names, responses, path: Path) -> None:
    from matplotlib.figure import Figure  # no pyplot: works headless, no global state

    cols = 4
    rows = -(-(len(names) + 1) // cols)
    fig = Figure(figsize=(3 * cols, 3.3 * rows), layout="constrained")
    axes = fig.subplots(rows, cols).ravel()
    panels: list[tuple[str, np.ndarray, str, tuple[float, float]]] = [
        ("original", image, "gray", (0, 1))
    ]
    for name, response in zip(names, responses, strict=True):
        if name in IMAGE_LIKE:
            low, high = np.percentile(response, [1, 99])
            panels.append((name, response, "gray", (float(low), float(high))))
        else:  # edge detectors respond with both signs: a diverging map shows which
            bound = float(np.percentile(np.abs(response), 99)) or 1.0
            panels.append((name, response, "RdBu_r", (-bound, bound)))
    for ax, (title, data, cmap, (low, high)) in zip(axes, panels, strict=False):
        ax.imshow(data, cmap=cmap, vmin=low, vmax=high)
        ax.set_title(title)
    for ax in axes:
        ax.set_axis_off()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=80)


def run_gradient_checks(seed: int = 0) -> bool:
    """Check every kernel's backward pass by finite differences; returns whether all passed."""
    _heading("2. Gradient checks by centred finite differences (cvcourse.gradcheck)")
    rng = np.random.default_rng(seed)
    conv_args = dict(stride=2, padding=1, dilation=(1, 2), groups=2)
    x = rng.standard_normal((2, 4, 9, 10))
    weight = rng.standard_normal((6, 2, 3, 3))
    bias = rng.standard_normal(6)
    pool_x = rng.permutation(2 * 3 * 8 * 8).reshape(2, 3, 8, 8) / 10.0  # distinct: no ties
    pool_args = dict(kernel_size=3, stride=2, padding=1)  # overlapping windows

    def conv_grads(dy, x, weight, bias):
        return conv2d_backward(dy, x, weight, **conv_args)

    def max_grads(dy, x):
        _, indices = max_pool2d(x, return_indices=True, **pool_args)
        return max_pool2d_backward(dy, x, indices, **pool_args)

    # (title, function, inputs, its analytic gradients, input names)
    checks: list[
        tuple[str, Callable[..., Any], tuple[np.ndarray, ...], Callable[..., Any], tuple[str, ...]]
    ] = [
        (
            "conv2d, stride 2, padding 1, dilation (1, 2), 2 groups",
            lambda x, w, b: conv2d(x, w, b, **conv_args),
            (x, weight, bias),
            conv_grads,
            ("x", "weight", "bias"),
        ),
        (
            "max_pool2d, 3x3 windows, stride 2 (overlapping), padding 1",
            lambda x: max_pool2d(x, **pool_args),
            (pool_x,),
            max_grads,
            ("x",),
        ),
        (
            "avg_pool2d, 3x3 windows, stride 2, padding 1",
            lambda x: avg_pool2d(x, **pool_args),
            (pool_x,),
            lambda dy, x: avg_pool2d_backward(dy, x.shape, **pool_args),
            ("x",),
        ),
    ]
    all_passed = True
    for title, fn, inputs, grad_fn, names in checks:
        report = check_gradients(fn, *inputs, grad_fn=grad_fn, names=names, seed=seed)
        print(f"\n{title}\n{report!r}")
        all_passed &= report.passed
    return all_passed


# The showcase's training recipe: Adam, 15 epochs of batches of 32 (about 2 s on 2 cores).
TRAINING = dict(lr=3e-3, epochs=15, batch_size=32, seed=0)


def train_digits(progress: bool = True, **overrides):
    """Train ``lenet_digits`` on the bundled digits; returns ``(model, history)``.

    ``history.val_accuracy[-1]`` is the accuracy on the fixed test split (355 digits).
    """
    recipe = {**TRAINING, **overrides}
    x_train, y_train = load_digits("train")
    x_test, y_test = load_digits("test")
    model = lenet_digits(seed=recipe["seed"])
    history = fit(
        model,
        CrossEntropyLoss(),
        Adam(model, lr=recipe["lr"]),
        DataLoader(x_train, y_train, recipe["batch_size"], seed=recipe["seed"]),
        DataLoader(x_test, y_test, 512, shuffle=False),
        epochs=recipe["epochs"],
        progress=progress,
    )
    return model, history


def run_training(output_dir: Path) -> float:
    """Train the digits CNN, print its accuracy, save its curves; returns the test accuracy."""
    _heading("3. A LeNet-style CNN from cvcourse.nn learns the 8x8 digits")
    start = time.perf_counter()
    model, history = train_digits()
    seconds = time.perf_counter() - start
    accuracy = history.val_accuracy[-1]
    print(model)
    print(
        f"{len(history)} epochs in {seconds:.1f} s: test accuracy {accuracy:.1%} "
        f"(train loss {history.train_loss[-1]:.3f})"
    )
    path = output_dir / "digits_training.png"
    with atomic_path(path) as tmp:
        plot_history(history).savefig(tmp, dpi=80)
    print(f"saved {path}")
    return accuracy


def main(argv=None) -> int:
    """Command line: filters, gradient checks, training; exit status 1 if a check failed."""
    parser = argparse.ArgumentParser(description="The cvcourse library's showcase.")
    parser.add_argument(
        "--output", type=Path, default=DEFAULT_OUTPUT, help="folder for the figures"
    )
    args = parser.parse_args(argv)
    run_filters(args.output)
    passed = run_gradient_checks()
    print("\nall gradient checks passed" if passed else "\nSOME GRADIENT CHECKS FAILED")
    run_training(args.output)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
