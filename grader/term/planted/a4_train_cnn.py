"""Classic mistakes in assignment 4 (train a CNN), planted into the instructor's solutions.

Each edits one solution cell of ``course/assignments/a4_train_cnn/train_cnn.ipynb`` and must
cost exactly the test cells in ``loses`` (see :class:`grader.term.planted.PlantedMistake`). The
notebook trains with Adam, so the SGD mistake leaves training alone, and the Adam mistakes
still train well enough to pass the held-out accuracy bar (both measured: about 98% without
bias correction, 96.9% with eps inside the square root, as much as the solution).
"""

from __future__ import annotations

from grader.term.planted import PlantedMistake

MISTAKES = [
    PlantedMistake(
        student="adam-no-bias-correction",
        cell="adam_solution",
        old="        correction1, correction2 = 1.0 - beta1**self.t, 1.0 - beta2**self.t",
        new="        correction1, correction2 = 1.0, 1.0",
        loses=("test_adam",),
        diagnosis="no bias correction",
    ),
    PlantedMistake(
        student="momentum-not-kept",
        cell="sgd_solution",
        # A fresh velocity every step: momentum silently becomes plain SGD.
        old="                    v = self.velocity[i][name]",
        new="                    v = np.zeros_like(p, dtype=np.float64)",
        loses=("test_sgd",),
        diagnosis="the velocity is not kept between steps",
    ),
    PlantedMistake(
        student="adam-eps-inside-sqrt",
        cell="adam_solution",
        old="np.sqrt(v / correction2) + self.eps)",
        new="np.sqrt(v / correction2 + self.eps))",
        loses=("test_adam",),
        diagnosis="eps is added inside the square root",
    ),
]
