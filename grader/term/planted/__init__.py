"""The simulated class's classic mistakes, planted into the instructor's solutions.

Each assignment has a module here with ``MISTAKES``, a list of :class:`PlantedMistake`.
``make demo`` (and the tests) build one submission per mistake by editing one solution cell
of the assignment's source notebook, grade it with the real pipeline and require that it
loses exactly the points of the test cells in ``loses``, with ``diagnosis`` in its feedback.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class PlantedMistake:
    """One classic mistake, as an edit of one solution cell.

    student: the simulated student's id, e.g. ``"kernel-flipped"``.
    cell: ``grade_id`` of the solution cell to edit.
    old, new: ``old`` must occur exactly once in that cell's source; it becomes ``new``.
    loses: ``grade_id`` of every test cell that must score zero (all others full marks).
    diagnosis: text that the feedback for the first cell in ``loses`` must contain.
    """

    student: str
    cell: str
    old: str
    new: str
    loses: tuple[str, ...]
    diagnosis: str


# Assignment id (the folder under course/assignments) -> module of this package.
ASSIGNMENT_MODULES = {
    "a1_numpy": "grader.term.planted.a1_numpy",
    "a2_fc_losses": "grader.term.planted.a2_fc_losses",
    "a3_conv_pool": "grader.term.planted.a3_conv_pool",
    "a4_train_cnn": "grader.term.planted.a4_train_cnn",
}


def mistakes_for(assignment: str) -> list[PlantedMistake]:
    """The planted mistakes of one assignment (an empty list if it has none)."""
    module = ASSIGNMENT_MODULES.get(assignment)
    if module is None:
        return []
    return list(importlib.import_module(module).MISTAKES)
