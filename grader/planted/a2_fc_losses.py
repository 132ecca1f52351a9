"""Classic mistakes in assignment 2 (fully connected layers and losses), planted.

Each edits one solution cell of ``course/assignments/a2_fc_losses/fc_losses.ipynb`` and must
cost exactly the test cells in ``loses``; ``diagnosis`` is text of the hint the first of
them prints (the constants in ``grader.checks.a2_fc_losses``).
"""

from __future__ import annotations

from grader.planted import PlantedMistake

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
        student="numgrad-not-restored",
        cell="gradient_check",
        old="        x[index] = original\n",
        new="",
        loses=("test_numerical_gradient",),
        diagnosis="did not restore x",
    ),
]
