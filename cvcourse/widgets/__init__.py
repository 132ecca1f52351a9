"""Interactive visual tools for the course notebooks (ipywidgets 8 + matplotlib, JupyterLab 4).

Each function returns a widget (a ``VBox`` subclass) to display as a cell's last value::

    from cvcourse.widgets import kernel_explorer
    kernel_explorer()

    kernel_explorer(image=None)        a photo filtered by a 3x3 kernel: pick or type it
    conv_arithmetic()                  output size from size, kernel, stride, padding, dilation
    pattern_matching()                 crosses and noughts found by correlation (intro lecture)
    pooling_explorer()                 max/avg pooling and where the gradient goes
    conv_backprop_explorer()           receptive fields; dL/dK = CC(I, G), dL/dI = CC(G, rot K)
    gradcheck_view(report)             per-element relative errors of a gradient check
    training_monitor()                 live loss/accuracy curves: fit(..., callback=monitor)
    show_filters(weight)               a conv layer's filters as images
    show_feature_maps(model, x)        every conv layer's activations for one input

Every widget exposes its controls and its computed arrays as attributes (see each class),
so a notebook or a test can set ``widget.<control>.value`` from Python and read the result.
Pictures are ``matplotlib.figure.Figure`` objects rendered to PNG (Agg) into a
``widgets.Image`` (``widget.view``): no pyplot state, works headless and in exported HTML.
The numbers come from ``cvcourse.kernels`` and ``cvcourse.filters``; nothing imports torch.

ipywidgets is imported here only (``import cvcourse`` does not import it); it comes with
``pip install 'cvcourse[course]'``.
"""

from .arithmetic import ConvArithmetic, conv_arithmetic, output_size
from .backprop import ConvBackpropExplorer, conv_backprop_explorer
from .errors import GradCheckView, gradcheck_view
from .features import FeatureMaps, FilterGrid, show_feature_maps, show_filters
from .kernel import KernelExplorer, kernel_explorer
from .matching import PatternMatching, pattern_matching
from .monitor import TrainingMonitor, training_monitor
from .pooling import PoolingExplorer, pooling_explorer

__all__ = [
    "ConvArithmetic",
    "ConvBackpropExplorer",
    "FeatureMaps",
    "FilterGrid",
    "GradCheckView",
    "KernelExplorer",
    "PatternMatching",
    "PoolingExplorer",
    "TrainingMonitor",
    "conv_arithmetic",
    "conv_backprop_explorer",
    "gradcheck_view",
    "kernel_explorer",
    "output_size",
    "pattern_matching",
    "pooling_explorer",
    "show_feature_maps",
    "show_filters",
    "training_monitor",
]
