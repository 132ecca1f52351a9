"""The nbgrader preprocessors that grade a notebook with a judge beside the kernel.

- :class:`JudgedExecute` (in place of nbgrader's ``Execute``) runs the notebook as nbgrader
  would, with a :class:`~grader.judge.session.Judge` listening: before each graded test cell
  it tells the judge which part may connect, after it that the part is over. The judge's
  socket reaches the kernel through ``CVCOURSE_JUDGE_SOCKET`` (the sandbox binds it in).
- :class:`ApplyJudgeRecord` (before nbgrader's ``SaveAutoGrades``) replaces every graded
  test cell's outputs with the judge's verdict: a passing part shows its line on stdout
  (full points), a failing one a ``GradingFailure`` error (zero), a part the judge never
  heard from an error saying so, with the cell's own error if it had one. Whatever the
  kernel printed, raised or swallowed in that cell does not count.

The record (parts, seed, notes) is kept in the autograded notebook's metadata under
``cvgrade_judge`` for the TA's report; feedback pages do not show notebook metadata.
"""

from __future__ import annotations

import os

from nbclient.util import run_sync
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Integer

from cvcourse.judge_link import SOCKET_VARIABLE
from grader.judge.session import Judge
from grader.pipeline.course import UNSAFE_NOTE, sandboxed
from grader.pipeline.preprocessors import CrashTolerantExecute

RECORD_KEY = "cvgrade_judge"


def graded_test_id(cell) -> str | None:
    """The grade id of an autograded test cell (graded, code, not a solution), else None."""
    meta = cell.get("metadata", {}).get("nbgrader", {})
    if cell.cell_type == "code" and meta.get("grade") and not meta.get("solution"):
        return meta.get("grade_id")
    return None


class JudgedExecute(CrashTolerantExecute):
    """Execute the notebook with a judge grading each test cell (see the module docstring)."""

    judge_seed = Integer(
        None,
        allow_none=True,
        help="Seed of the hidden cases (default: a new secret one per run, kept in the record)",
    ).tag(config=True)

    def preprocess(self, nb, resources=None, km=None):
        resources = resources if resources is not None else {}
        assignment = resources.get("nbgrader", {}).get("assignment")
        root = self.config.CourseDirectory.get("root") or os.getcwd()
        self._judge = Judge(
            assignment, seed=self.judge_seed, course_checks=os.path.join(root, "checks")
        )
        previous = os.environ.get(SOCKET_VARIABLE)
        os.environ[SOCKET_VARIABLE] = self._judge.path
        try:
            return super().preprocess(nb, resources, km)
        finally:
            if previous is None:
                os.environ.pop(SOCKET_VARIABLE, None)
            else:
                os.environ[SOCKET_VARIABLE] = previous
            self._judge.close()
            notes = list(self._judge.notes)
            if not sandboxed():
                notes.insert(0, UNSAFE_NOTE)
            resources[RECORD_KEY] = {
                "seed": str(self._judge.seed),
                "parts": {part: r.to_dict() for part, r in self._judge.records.items()},
                "notes": notes,
            }

    async def async_start_new_kernel_client(self):
        kc = await super().async_start_new_kernel_client()
        seal = getattr(self.km, "seal", None)
        if seal is not None:  # the kernel has bound its sockets: its folder closes
            seal()
        return kc

    # nbclient binds the sync name to its own coroutine: bind it to ours.
    start_new_kernel_client = run_sync(async_start_new_kernel_client)

    def preprocess_cell(self, cell, resources, index):
        part = graded_test_id(cell)
        if part is None:
            return super().preprocess_cell(cell, resources, index)
        if self._judge.peer_uid is None and self.km is not None:
            # Only the kernel's own user may connect: its sandbox uid, or ours.
            self._judge.peer_uid = getattr(self.km, "sandbox_uid", None) or os.getuid()
        # The judge gives up a little before nbclient interrupts the cell, so that the
        # part's message says what happened (the code did not answer in time).
        timeout = float(self.timeout or 120)
        self._judge.expect(part, max(1.0, timeout - 2.0))
        try:
            return super().preprocess_cell(cell, resources, index)
        finally:
            self._judge.finish(part)


def _stream(text: str) -> NotebookNode:
    return NotebookNode(output_type="stream", name="stdout", text=text)


def _error(message: str) -> NotebookNode:
    evalue = message
    return NotebookNode(
        output_type="error",
        ename="GradingFailure",
        evalue=evalue,
        traceback=[f"GradingFailure: {evalue}"],
    )


def _kernel_error(cell) -> str:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            ename, evalue = str(output.get("ename", ""))[:100], str(output.get("evalue", ""))
            return f"{ename}: {evalue[:500]}"
    return ""


class ApplyJudgeRecord(NbGraderPreprocessor):
    """Every graded test cell's output, and so its score, from the judge's record."""

    def preprocess(self, nb, resources):
        from grader.pipeline.autograde import execution_note

        record = resources.get(RECORD_KEY) or {"parts": {}, "notes": ["no judge ran"]}
        parts = record.get("parts", {})
        notes = record.setdefault("notes", [])
        for number, cell in enumerate(nb.cells, start=1):
            part = graded_test_id(cell)
            if part is None:
                continue
            # The verdict replaces the cell's outputs; what they said of the kernel (a
            # timeout, a death) goes to the TA's notes.
            notes += filter(None, (execution_note(number, o) for o in cell.get("outputs", [])))
            verdict = parts.get(part)
            if verdict is None:
                reason = _kernel_error(cell)
                message = "not graded: this cell never handed your code to the grader"
                if reason:
                    message += f" (the cell stopped with {reason})"
                cell.outputs = [_error(message)]
            elif verdict["passed"]:
                cell.outputs = [_stream(verdict["message"].rstrip("\n") + "\n")]
            else:
                cell.outputs = [_error(verdict["message"])]
            cell.execution_count = cell.get("execution_count")
        nb.metadata[RECORD_KEY] = record
        return nb, resources
