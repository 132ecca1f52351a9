"""Neural-network layers and losses in NumPy: the course's reference implementations.

The layer API of the course (``../shared/DESIGN.md``): ``params``/``grads`` dicts with
torch's names and shapes, ``forward(x) -> y``, ``backward(dy) -> dx`` (overwriting
``grads``). Tensors are NCHW; a conv weight is ``(out, in // groups, kH, kW)``; a linear
weight ``(out_features, in_features)`` with ``y = x @ W.T + b``; losses reduce by the mean.

Layers:      Linear, Conv2d, MaxPool2d, AvgPool2d, ReLU, Sigmoid, Flatten, Dropout, Sequential
Losses:      MSELoss, CrossEntropyLoss (and the stable softmax / log_softmax functions)
Init:        cvcourse.nn.init (kaiming_*/xavier_*, torch's fans; layers default to torch's init)
State:       state_dict, load_state_dict, save, load (np.savez files, written atomically)
Training:    SGD, Adam (torch.optim's formulas), fit / evaluate with progress bars, History,
             plot_history
"""

from . import init
from .activations import ReLU, Sigmoid
from .base import Layer
from .dropout import Dropout
from .layers import Conv2d, Flatten, Linear
from .losses import CrossEntropyLoss, Loss, MSELoss, log_softmax, softmax
from .optim import SGD, Adam, Optimizer
from .pooling import AvgPool2d, MaxPool2d
from .sequential import Sequential
from .state import load, load_state_dict, read_state, save, state_dict
from .training import Evaluation, History, evaluate, fit, plot_history

__all__ = [
    # layers
    "AvgPool2d",
    "Conv2d",
    "Dropout",
    "Flatten",
    "Layer",
    "Linear",
    "MaxPool2d",
    "ReLU",
    "Sequential",
    "Sigmoid",
    # losses
    "CrossEntropyLoss",
    "Loss",
    "MSELoss",
    "log_softmax",
    "softmax",
    # initialisation and state
    "init",
    "load",
    "load_state_dict",
    "read_state",
    "save",
    "state_dict",
    # optimizers and training
    "Adam",
    "Optimizer",
    "SGD",
    "Evaluation",
    "History",
    "evaluate",
    "fit",
    "plot_history",
]
