"""Classic mistakes in assignment 3 (convolution and pooling), planted into its solutions.

Each edits one line of one solution cell of ``conv_pool.ipynb`` and must cost exactly the
test cells in ``loses``: the instructor solution keeps forward and backward self-contained
(backward pads the cached input again, max-pool backward has its own loop), so a mistake in
one of them reaches no other part.
"""

from __future__ import annotations

from grader.planted import PlantedMistake

MISTAKES = [
    PlantedMistake(
        student="kernel-flipped",
        cell="conv2d_solution",
        old='weight = self.params["weight"]',
        new='weight = self.params["weight"][:, :, ::-1, ::-1]',
        loses=("test_conv2d_forward",),
        diagnosis="kernel flipped",
    ),
    PlantedMistake(
        student="padding-one-side",
        cell="conv2d_solution",
        old="x_pad = pad2d(x, self.padding)",
        new=(
            "x_pad = np.pad(x, ((0, 0), (0, 0), (0, 2 * self.padding[0]), "
            "(0, 2 * self.padding[1])))"
        ),
        loses=("test_conv2d_forward",),
        diagnosis="padding applied on one side only",
    ),
    PlantedMistake(
        student="dweight-not-summed",
        cell="conv2d_solution",
        old='np.einsum("nchwij,nghw->gcij", windows, dy, optimize=True)',
        new='np.einsum("nchwij,nghw->ngcij", windows, dy, optimize=True)[-1]',
        loses=("test_conv2d_backward_weight",),
        diagnosis="weight gradient not summed over the batch",
    ),
    PlantedMistake(
        student="dbias-wrong-axes",
        cell="conv2d_solution",
        old="dy.sum(axis=(0, 2, 3))",
        new="dy.sum(axis=(1, 2, 3))",
        loses=("test_conv2d_backward_bias",),
        diagnosis="bias gradient summed over the wrong axes",
    ),
    PlantedMistake(
        student="maxpool-ties-all",
        cell="maxpool_solution",
        old="mask = np.arange(kh * kw) == flat.argmax(axis=-1)[..., None]",
        new="mask = flat == flat.max(axis=-1, keepdims=True)",
        loses=("test_maxpool_ties",),
        diagnosis="max-pool gradient sent to every tied element",
    ),
    PlantedMistake(
        student="maxpool-overwrite",
        cell="maxpool_solution",
        old="dx[:, :, rows, cols] += mask[..., i, j] * dy",
        new="dx[:, :, rows, cols] = mask[..., i, j] * dy",
        loses=("test_maxpool_overlap",),
        diagnosis="gradient overwritten instead of accumulated",
    ),
]
