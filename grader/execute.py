"""Executing a submission so that a crashing kernel costs only what did not run.

nbgrader's ``Execute`` preprocessor lets a dead kernel (``os._exit``, a segfault, the
memory limit) abort the whole notebook: no autograded file, every grade None. Here the cell
that killed the kernel gets an error output saying so, every later code cell gets a
"not run" error (so its test scores zero), and the cells that ran keep their outputs and
their grades.
"""

from __future__ import annotations

from nbclient.exceptions import DeadKernelError
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import Execute


def _error_output(ename: str, evalue: str) -> NotebookNode:
    return NotebookNode(
        output_type="error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"]
    )


class CrashTolerantExecute(Execute):
    """nbgrader's ``Execute``, surviving the death of the kernel (see module docstring)."""

    def preprocess(self, nb, resources=None, km=None):
        self._dead_at: int | None = None
        return super().preprocess(nb, resources, km)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code":
            return cell, resources
        if self._dead_at is not None:
            cell.outputs = [
                _error_output(
                    "KernelDied",
                    f"not run: the kernel died in cell {self._dead_at + 1} and the grader does "
                    "not re-run earlier cells",
                )
            ]
            return cell, resources
        try:
            return super().preprocess_cell(cell, resources, index)
        except DeadKernelError as exc:
            self._dead_at = index
            self.log.warning("Kernel died in cell %d: %s", index + 1, exc)
            cell.outputs.append(
                _error_output(
                    "KernelDied",
                    "the kernel died while running this cell (it crashed, called os._exit, or "
                    f"went over the grader's memory limit): {exc}",
                )
            )
            return cell, resources
