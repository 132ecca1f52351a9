"""What the tests of the four assignments share.

- :func:`convention_problems`: every way a source notebook departs from docs/authoring.md;
- :func:`released`: the student version, made by nbgrader's own ``ClearSolutions``;
- :func:`every_cell_graded`: a copy whose every code cell ``run_in_process`` reports on;
- :func:`exec_as_cell`: run code as a notebook cell would be, so the checks quote its lines;
- :func:`failed`: the cells of a ``run_in_process`` result that did not pass;
- :func:`check_verdicts` and :func:`lost`: the checks run directly on classes, and the parts
  they fail.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import io
import linecache
import re
from pathlib import Path

from grader import notebooks

COURSE = Path(__file__).resolve().parents[2] / "course"
SOLUTION_REGION = re.compile(r"^([ \t]*)### BEGIN SOLUTION\n.*?### END SOLUTION[^\n]*", re.M | re.S)
MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
CELL_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
IMPORTS_TORCH_OR_GRADER = re.compile(r"^\s*(import|from)\s+(torch|grader)\b", re.M)
# The reason a delegating part is given (grader.checks.harness).
DELEGATION = "graded parts must be computed by your own NumPy code"
# A hidden test hands the student's objects to the judge, naming the check that grades them.
CHECK_CALL = re.compile(r'hand_over\("(\w+)", [\w, ]+\)')


def _markdown_problems(cell, meta: dict, where: str) -> list[str]:
    problems = []
    # nbgrader may mark a Markdown cell read-only; it must never be graded or a solution.
    if meta and (meta.get("grade") or meta.get("solution") or meta.get("grade_id") != cell.id):
        problems.append(f"{where}: a markdown cell marked graded, solution or with another id")
    if any(marker in cell.source for marker in MARKERS):
        # nbgrader would read the line as a delimiter and refuse to release.
        problems.append(f"{where}: a markdown cell names an nbgrader marker")
    return problems


def _graded_cell_problem(cell, meta: dict, assignment: str) -> tuple[str | None, str | None]:
    """(problem, the check it calls): the comment, the markers, the import and one call."""
    lines = cell.source.splitlines()
    call = CHECK_CALL.fullmatch(lines[4]) if len(lines) == 6 else None
    ok = (
        call is not None
        and meta.get("locked") is True
        and type(meta.get("points")) is int
        and meta["points"] > 0
        and cell.id == f"test_{call.group(1)}"
        and lines[0].startswith("# Graded: ")
        and lines[1] == notebooks.HIDDEN_BEGIN
        and lines[2:4] == ["from cvcourse.judge_link import hand_over", ""]
        and lines[5] == notebooks.HIDDEN_END
    )
    if not ok:
        return f"cell {cell.id}: not a graded cell as authoring.md describes it", None
    return None, call.group(1)


def convention_problems(nb, assignment: str) -> list[str]:
    """Every way ``nb``, the source of ``assignment``, departs from docs/authoring.md."""
    problems = []
    if (nb.nbformat, nb.nbformat_minor) != (4, 5):
        problems.append(f"nbformat {nb.nbformat}.{nb.nbformat_minor}, expected 4.5")
    if nb.metadata.get("kernelspec", {}).get("name") != "python3":
        problems.append("kernelspec is not python3")
    ids = [c.get("id") for c in nb.cells]
    if len(set(ids)) != len(ids) or not all(i and CELL_ID.match(i) for i in ids):
        problems.append(f"cell ids missing, malformed or repeated: {ids}")
    code = [c for c in nb.cells if c.cell_type == "code"]
    if not code or code[0].id != "setup":
        problems.append("the first code cell is not the setup cell")
    called = []
    for c in nb.cells:
        meta = notebooks.nbgrader_meta(c)
        where = f"cell {c.get('id')}"
        if c.cell_type == "markdown":
            problems += _markdown_problems(c, meta, where)
            continue
        if c.outputs or c.execution_count is not None:
            problems.append(f"{where} has outputs")
        if any(ln.lstrip().startswith(("%", "!")) for ln in c.source.splitlines()):
            problems.append(f"{where} uses an IPython magic")
        if meta.get("schema_version") != 3 or meta.get("task") is not False:
            problems.append(f"{where}: nbgrader metadata without schema 3 / task false")
        if meta.get("grade_id") != c.id:
            problems.append(f"{where}: grade_id {meta.get('grade_id')!r} differs from the id")
        if meta.get("solution"):
            if meta.get("grade") or meta.get("locked") or not SOLUTION_REGION.search(c.source):
                problems.append(f"{where}: a solution cell must be ungraded, unlocked, marked")
        elif meta.get("grade"):
            problem, check = _graded_cell_problem(c, meta, assignment)
            problems += [problem] if problem else []
            called += [check] if check else []
            continue
        elif not meta.get("locked"):
            problems.append(f"{where}: setup and public-check cells must be locked")
        if any(marker in c.source for marker in MARKERS) and not meta.get("solution"):
            problems.append(f"{where} mentions an nbgrader marker outside its place")
        if IMPORTS_TORCH_OR_GRADER.search(c.source):
            problems.append(f"{where}: cells students run import neither torch nor grader")
    module = importlib.import_module(f"grader.checks.{assignment}")
    checks = sorted(name for name in module.__all__ if callable(getattr(module, name)))
    if sorted(called) != checks:
        problems.append(f"graded cells call {sorted(called)}, the checks are {checks}")
    folder = COURSE / "assignments" / assignment
    contents = sorted(p.name for p in folder.iterdir() if p.name != ".ipynb_checkpoints")
    if len(contents) != 1 or not contents[0].endswith(".ipynb"):
        problems.append(f"{folder} must hold its one notebook and nothing else: {contents}")
    return problems


def released(nb):
    """``nb`` as nbgrader releases it: nbgrader's own ClearSolutions (every solution region
    becomes ``raise NotImplementedError()``); hidden tests stay, as autograding restores them.
    """
    from nbgrader.preprocessors import ClearSolutions

    out, _ = ClearSolutions().preprocess(copy.deepcopy(nb), {})
    return out


def every_cell_graded(nb):
    """A copy whose every code cell ``run_in_process`` reports on (by its cell id)."""
    marked = copy.deepcopy(nb)
    for c in marked.cells:
        if c.cell_type == "code" and not notebooks.is_test_cell(c):
            c.metadata["nbgrader"] = {"grade": True, "grade_id": c.id, "solution": False}
    return marked


def exec_as_cell(source: str, name: str, namespace: dict | None = None) -> dict:
    """Run ``source`` as a notebook cell would be (so the checks quote its lines)."""
    filename = f"<ipython-input-{name}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace = {"__name__": "__main__"} if namespace is None else namespace
    exec(compile(source, filename, "exec"), namespace)
    return namespace


def failed(results) -> set[str]:
    return {grade_id for grade_id, result in results.items() if not result.passed}


def check_verdicts(checks, objects_by_part: dict) -> dict[str, str]:
    """Each check of ``checks`` run here on its object: part -> its passing line, or
    ``"FAIL: "`` + the failure's message."""
    from grader.checks.harness import GradingFailure

    verdicts = {}
    for part, obj in objects_by_part.items():
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out):
                getattr(checks, part)(obj)
        except GradingFailure as failure:
            verdicts[part] = f"FAIL: {failure}"
        else:
            verdicts[part] = out.getvalue()
    return verdicts


def lost(verdicts: dict[str, str]) -> list[str]:
    """The parts of :func:`check_verdicts` that failed, in order."""
    return [part for part, text in verdicts.items() if text.startswith("FAIL: ")]
