"""Neural-network layers and losses in NumPy: the course's reference implementations.

The layer API of the course (``../shared/DESIGN.md``): ``params``/``grads`` dicts with
torch's names and shapes, ``forward(x) -> y``, ``backward(dy) -> dx`` (overwriting
``grads``). Tensors are NCHW; a conv weight is ``(out, in // groups, kH, kW)``; a linear
weight ``(out_features, in_features)`` with ``y = x @ W.T + b``; losses reduce by the mean.

Layers:      Linear, Conv2d, MaxPool2d, AvgPool2d, Flatten, Dropout, Sequential
Activations: ReLU, LeakyReLU, Sigmoid, Tanh, ELU, SELU, GELU
Losses:      MSELoss, CrossEntropyLoss (and the stable softmax / log_softmax functions),
             MultiMarginLoss (the multiclass hinge / SVM loss)
Init:        cvcourse.nn.init (kaiming_*/xavier_*, torch's fans; layers default to torch's init)
State:       state_dict, load_state_dict, save, load (np.savez files, written atomically)
Training:    SGD, Adam (torch.optim's formulas; frozen= parameters and lr_scale= per layer
             for transfer learning), fit / evaluate with progress bars, History, plot_history
"""

from . import init
from .activations import ELU, GELU, SELU, LeakyReLU, ReLU, Sigmoid, Tanh
from .base import Layer
from .dropout import Dropout
from .layers import Conv2d, Flatten, Linear
from .losses import CrossEntropyLoss, Loss, MSELoss, MultiMarginLoss, log_softmax, softmax
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
    "ELU",
    "Flatten",
    "GELU",
    "Layer",
    "LeakyReLU",
    "Linear",
    "MaxPool2d",
    "ReLU",
    "SELU",
    "Sequential",
    "Sigmoid",
    "Tanh",
    # losses
    "CrossEntropyLoss",
    "Loss",
    "MSELoss",
    "MultiMarginLoss",
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
