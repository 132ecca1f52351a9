"""The hidden tests of the course's assignments: one module per assignment.

Each graded test cell of an assignment notebook calls exactly one function of its
assignment's module, passing the student's class or function::

    from grader.checks import a3_conv_pool as checks
    checks.conv2d_forward(Conv2d)

A check prints one line when the part passes and raises :class:`GradingFailure` (an
``AssertionError``, so nbgrader scores the cell zero) with a diagnosis when it does not.
``harness`` holds what the checks share: calling student code under the delegation guard,
comparing arrays with a message that names the case, tensor and worst element and the
first recognised mistake (``{explanation: wrong answer}``) the student's answer
reproduces, and finite differences of the student's own forward. Torch is reached only
through ``grader.reference``; ``fixtures`` holds the code the checks hand to student code.
"""

from grader.checks.harness import GradingFailure

__all__ = ["GradingFailure"]
