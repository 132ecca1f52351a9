"""Classic mistakes in assignment 3 (convolution and pooling), planted into its solutions.

Each edits one solution cell of ``conv_pool.ipynb`` and must cost exactly the test cells in
``loses``: the instructor solution keeps forward and backward self-contained (backward pads
the cached input again, max-pool backward has its own loop), and the checks grade each part
once (``grader.checks.a3_conv_pool``), so a mistake in one of them reaches no other part.
"""

from __future__ import annotations

from grader.term.planted import PlantedMistake

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
    PlantedMistake(
        student="conv-bias-broadcast",
        cell="conv2d_solution",
        # Raises in forward (bias (C_out,) against (N, C_out, H, W)) after caching x: only the
        # forward cell may be charged, not backward, nor stride/even/dilation.
        old='y = y + self.params["bias"][None, :, None, None]',
        new='y = y + self.params["bias"]',
        loses=("test_conv2d_forward",),
        diagnosis="raised ValueError",
    ),
    PlantedMistake(
        student="dweight-accumulated",
        cell="conv2d_solution",
        # Right on a fresh layer (grads start at zero), wrong from the second backward on.
        old='self.grads["weight"] = np.einsum',
        new='self.grads["weight"] += np.einsum',
        loses=("test_conv2d_backward_weight",),
        diagnosis="gradient accumulated across backward calls",
    ),
    PlantedMistake(
        student="maxpool-fancy-index",
        cell="maxpool_solution",
        # dx[idx] += dy with repeated indices: buffered, one add per element.
        old=(
            "        dx = np.zeros(self.cache.shape)\n"
            "        for i in range(kh):\n"
            "            for j in range(kw):\n"
            "                rows = slice(i, i + sh * (ho - 1) + 1, sh)\n"
            "                cols = slice(j, j + sw * (wo - 1) + 1, sw)\n"
            "                dx[:, :, rows, cols] += mask[..., i, j] * dy\n"
        ),
        new=(
            "        first = flat.argmax(axis=-1)\n"
            "        nn, cc, hh, ww = np.indices(first.shape)\n"
            "        dx = np.zeros(self.cache.shape)\n"
            "        dx[nn, cc, hh * sh + first // kw, ww * sw + first % kw] += dy\n"
        ),
        loses=("test_maxpool_overlap",),
        diagnosis="use np.add.at(dx, idx, dy)",
    ),
]
