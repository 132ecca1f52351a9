"""One training epoch of the showcase CNN: cvcourse.nn against the same network in torch.

Both sides train ``cvcourse.models.lenet_digits`` (torch gets the same architecture and the
same initial weights through the state dict) with Adam on the same minibatches of the
bundled digits, in the same process: forward, cross-entropy, backward, step per batch.
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F
from tabulate import tabulate
from torch import nn as tnn

from cvcourse import nn
from cvcourse.data import DataLoader, load_digits
from cvcourse.kernels import threads as kernel_threads
from cvcourse.models import lenet_digits

LR = 3e-3
BATCH = 32


def torch_lenet() -> tnn.Sequential:
    """``lenet_digits``'s architecture in torch (same layer indices, so state dicts match)."""
    return tnn.Sequential(
        tnn.Conv2d(1, 8, 3, padding=1),
        tnn.ReLU(),
        tnn.MaxPool2d(2),
        tnn.Conv2d(8, 16, 3, padding=1),
        tnn.ReLU(),
        tnn.MaxPool2d(2),
        tnn.Flatten(),
        tnn.Linear(64, 64),
        tnn.ReLU(),
        tnn.Linear(64, 10),
    )


def _batches():
    x, y = load_digits("train")
    return [(xb, yb) for xb, yb in DataLoader(x, y, BATCH, seed=0)]


def _ours(batches):
    """A fresh ``lenet_digits`` and a function that trains it for one epoch."""
    model = lenet_digits(seed=0)
    loss, optimizer = nn.CrossEntropyLoss(), nn.Adam(model, lr=LR)

    def epoch():
        for xb, yb in batches:
            loss.forward(model.forward(xb), yb)
            model.backward(loss.backward())
            optimizer.step()

    return model, epoch


def _theirs(batches, state):
    """The torch twin, starting from ``state``, and a function that trains it for one epoch."""
    model = torch_lenet()
    model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in state.items()})
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    tensors = [(torch.from_numpy(xb), torch.from_numpy(yb)) for xb, yb in batches]

    def epoch():
        for xb, yb in tensors:
            optimizer.zero_grad()
            F.cross_entropy(model(xb), yb).backward()
            optimizer.step()

    return model, epoch


def same_training() -> float:
    """Largest parameter difference after one epoch from the same start (float32 noise ~1e-5).

    Shows that both sides do the same work before their times are compared.
    """
    batches = _batches()
    ours, our_epoch = _ours(batches)
    theirs, their_epoch = _theirs(batches, ours.state_dict())
    our_epoch()
    their_epoch()
    state = theirs.state_dict()
    return max(float(np.abs(v - state[k].numpy()).max()) for k, v in ours.state_dict().items())


def _median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up: first calls, allocator, optimizer state
    times = []
    for _ in range(repeats):
        time.sleep(0.02)  # let the other library's OpenMP threads fall asleep
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def measure(thread_counts, repeats: int = 5) -> list[dict]:
    """Median seconds per epoch for each thread count: ``[{threads, cvcourse_s, torch_s}]``."""
    batches = _batches()
    rows = []
    for n in thread_counts:
        model, ours = _ours(batches)
        _, theirs = _theirs(batches, model.state_dict())
        torch.set_num_threads(n)
        with kernel_threads(n):
            rows.append(
                {
                    "threads": n,
                    "cvcourse_s": _median_seconds(ours, repeats),
                    "torch_s": _median_seconds(theirs, repeats),
                }
            )
    return rows


def print_rows(rows: list[dict], out=print) -> None:
    """Print the rows of :func:`measure` as a small table."""
    batches = -(-1442 // BATCH)
    out(
        f"\nOne training epoch: lenet_digits on the 1442 training digits, "
        f"{batches} batches of {BATCH}, Adam"
    )
    cells = [
        [str(r["threads"]), f"{r['cvcourse_s']:.3f}", f"{r['torch_s']:.3f}"]
        + [f"{r['cvcourse_s'] / r['torch_s']:.2f}x"]
        for r in rows
    ]
    header = ["threads", "cvcourse s", "torch s", "ratio"]
    out(tabulate(cells, headers=header, tablefmt="simple", disable_numparse=True, stralign="right"))
