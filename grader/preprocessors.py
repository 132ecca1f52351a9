"""Our nbgrader preprocessors: three places where nbgrader 0.9.6 mis-grades or leaks.

- :class:`CrashTolerantExecute` (autograde): nbgrader's ``Execute`` lets a dead kernel
  (``os._exit``, a segfault, the memory limit) abort the whole notebook: no autograded file,
  every grade None. Here the cell that killed the kernel gets an error output saying so,
  every later code cell a "not run" error (its test scores zero), and the cells that ran
  keep their outputs and grades.
- :class:`OverwriteCellsInPlace` (autograde): ``add_missing_grade_cells`` re-inserts a
  deleted test cell after the source cell that preceded it, but finds that cell only if it
  is a grade or solution cell: after a read-only cell (our public checks) it raises
  ``KeyError`` and the submission fails to grade. Here the deleted cell goes after the
  nearest earlier source cell the submission still has.
- :class:`HideTestTracebacks` (feedback): ``ClearHiddenTests`` removes the hidden tests
  from a cell's source, but the traceback of a failing hidden test quotes its lines. Here a
  test cell's error keeps only its name and message (the check's diagnosis).
"""

from __future__ import annotations

from nbclient.exceptions import DeadKernelError
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import Execute, NbGraderPreprocessor, OverwriteCells


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


def _positions(nb) -> dict[str, int]:
    positions = {}
    for index, cell in enumerate(nb.cells):
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if grade_id:
            positions[grade_id] = index
    return positions


class OverwriteCellsInPlace(OverwriteCells):
    """nbgrader's ``OverwriteCells``, re-inserting deleted test cells in their place."""

    def add_missing_grade_cells(self, nb, resources):
        source_nb = self.gradebook.find_notebook(self.notebook_id, self.assignment_id)
        source_cells = list(source_nb.source_cells)
        source_ids = [cell.name for cell in source_cells]
        solution_ids = {cell.name for cell in source_nb.solution_cells}
        for grade_cell in source_nb.grade_cells:
            present = _positions(nb)
            if grade_cell.name in present or grade_cell.name not in source_ids:
                continue
            self.log.warning(
                "Missing grade cell %s encountered, adding to notebook", grade_cell.name
            )
            index = source_ids.index(grade_cell.name)
            restored = self.missing_cell_transform(
                source_cells[index],
                grade_cell.max_score,
                is_solution=grade_cell.name in solution_ids,
            )
            insert_at = 0
            for earlier in reversed(source_ids[:index]):
                if earlier in present:
                    insert_at = present[earlier] + 1
                    break
            nb.cells.insert(insert_at, restored)
        return nb, resources


class HideTestTracebacks(NbGraderPreprocessor):
    """Feedback: a test cell's error output shows ``ename: evalue`` and no source lines."""

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("grade"):
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    output.traceback = [f"{output.get('ename', '')}: {output.get('evalue', '')}"]
        return cell, resources
