"""Classic mistakes in assignment 2 (fully connected layers and losses), planted.

Each edits one solution cell of ``course/assignments/a2_fc_losses/fc_losses.ipynb`` and must
cost exactly the test cells in ``loses``; ``diagnosis`` is text of the hint the first of
them prints (the constants in ``grader.checks.a2_fc_losses``).
"""

from __future__ import annotations

from grader.term.planted import PlantedMistake

MISTAKES = [
    PlantedMistake(
        student="linear-transposed-weight",
        cell="linear",
        old='y = x @ self.params["weight"].T',
        new='y = x @ self.params["weight"]',
        loses=("test_linear_forward",),
        diagnosis="transposed linear weight",
    ),
    PlantedMistake(
        student="linear-dbias-wrong-axis",
        cell="linear",
        old='self.grads["bias"] = dy.sum(axis=0)',
        new='self.grads["bias"] = dy.sum(axis=1)',
        loses=("test_linear_backward_bias",),
        diagnosis="summed over the wrong axis",
    ),
    PlantedMistake(
        student="softmax-overflow",
        cell="softmax",
        old="np.exp(x - x.max(axis=-1, keepdims=True))",
        new="np.exp(x)",
        loses=("test_softmax_large_logits",),
        diagnosis="softmax overflow on large logits",
    ),
    PlantedMistake(
        student="loss-summed",
        cell="mse_loss",
        old="np.mean(self.diff**2)",
        new="np.sum(self.diff**2)",
        loses=("test_mse_forward",),
        diagnosis="loss summed instead of averaged",
    ),
    PlantedMistake(
        student="ce-grad-not-divided",
        cell="cross_entropy_loss",
        old="return grad / n",
        new="return grad",
        loses=("test_cross_entropy_backward",),
        diagnosis="gradient not divided by N",
    ),
    PlantedMistake(
        student="sigmoid-derivative-s",
        cell="sigmoid",
        old="dy * self.s * (1 - self.s)",
        new="dy * self.s",
        loses=("test_sigmoid",),
        diagnosis="sigmoid derivative written as s instead of s(1 - s)",
    ),
    PlantedMistake(
        student="relu-grad-at-zero",
        cell="relu",
        old="self.mask = x > 0",
        new="self.mask = x >= 0",
        loses=("test_relu",),
        diagnosis="at exactly x == 0 should be 0",
    ),
    PlantedMistake(
        student="linear-dw-accumulated",
        cell="linear",
        # Right on a fresh layer (grads start at zero), wrong from the second backward on.
        old='self.grads["weight"] = dy.T @ self.x',
        new='self.grads["weight"] += dy.T @ self.x',
        loses=("test_linear_backward_weight",),
        diagnosis="gradient accumulated across backward calls",
    ),
    PlantedMistake(
        student="softmax-backward-unstable",
        cell="softmax",
        # A stable forward, and a backward that recomputes softmax from the logits naively.
        old=(
            "        e = np.exp(x - x.max(axis=-1, keepdims=True))\n"
            "        self.s = e / e.sum(axis=-1, keepdims=True)\n"
            "        return self.s\n"
            "        ### END SOLUTION\n"
            "\n"
            "    def backward(self, dy):\n"
            "        ### BEGIN SOLUTION\n"
            "        s = self.s\n"
        ),
        new=(
            "        self.x = x\n"
            "        e = np.exp(x - x.max(axis=-1, keepdims=True))\n"
            "        self.s = e / e.sum(axis=-1, keepdims=True)\n"
            "        return self.s\n"
            "        ### END SOLUTION\n"
            "\n"
            "    def backward(self, dy):\n"
            "        ### BEGIN SOLUTION\n"
            "        e = np.exp(self.x)\n"
            "        s = e / e.sum(axis=-1, keepdims=True)\n"
        ),
        loses=("test_softmax_backward",),
        diagnosis="softmax backward overflows on large logits",
    ),
    PlantedMistake(
        student="ce-shift-in-place",
        cell="cross_entropy_loss",
        # Charged once, by the forward cell (the large-logit cell used to charge it too).
        old="shifted = logits - logits.max(axis=1, keepdims=True)",
        new="logits -= logits.max(axis=1, keepdims=True)\n        shifted = logits",
        loses=("test_cross_entropy_forward",),
        diagnosis="changed its input #1 in place",
    ),
    PlantedMistake(
        student="numgrad-flat-copy",
        cell="gradient_check",
        # Perturbs x.reshape(-1): a view for most inputs, a copy for a transposed x.
        old=(
            "    grad = np.zeros(x.shape)\n"
            "    for index in np.ndindex(x.shape):\n"
            "        original = x[index]\n"
            "        x[index] = original + h\n"
            "        f_plus = f(x)\n"
            "        x[index] = original - h\n"
            "        f_minus = f(x)\n"
            "        # Put back the stored value, not original - h + h: that may differ in the "
            "last bit.\n"
            "        x[index] = original\n"
            "        grad[index] = (f_plus - f_minus) / (2 * h)\n"
            "    return grad\n"
        ),
        new=(
            "    flat = x.reshape(-1)\n"
            "    grad = np.zeros(flat.size)\n"
            "    for i in range(flat.size):\n"
            "        original = flat[i]\n"
            "        flat[i] = original + h\n"
            "        f_plus = f(x)\n"
            "        flat[i] = original - h\n"
            "        f_minus = f(x)\n"
            "        flat[i] = original\n"
            "        grad[i] = (f_plus - f_minus) / (2 * h)\n"
            "    return grad.reshape(x.shape)\n"
        ),
        loses=("test_numerical_gradient",),
        diagnosis="x.reshape(-1) or x.ravel() made a copy",
    ),
    PlantedMistake(
        student="relative-error-float32",
        cell="gradient_check",
        old="    a = np.asarray(a, dtype=np.float64)\n    b = np.asarray(b, dtype=np.float64)",
        new="    a = np.asarray(a, dtype=np.float32)\n    b = np.asarray(b, dtype=np.float32)",
        loses=("test_relative_error",),
        diagnosis="relative_error computes in float32",
    ),
    PlantedMistake(
        student="numgrad-not-restored",
        cell="gradient_check",
        old="        x[index] = original\n",
        new="",
        loses=("test_numerical_gradient",),
        diagnosis="did not restore x",
    ),
]
