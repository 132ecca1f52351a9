"""Looking at a submission before nbgrader grades it, and at what grading did to it.

- An unreadable notebook (not JSON, not a notebook, no cells) would make nbgrader fail the
  whole submission. It is set aside as ``<name>.ipynb.unreadable`` (kept, never deleted)
  and the blank released notebook is graded in its place: zero for every cell, and a note.
- Test cells that a student modified or deleted are restored by nbgrader (checksums,
  ``add_missing_cells``); the note says so, so that a TA can follow up.
- Code that reaches for the grader's machinery (``sys.setprofile``, ``import grader``,
  ``sys.modules``, ``builtins``) is flagged for a human to read; the checks themselves
  refuse to credit a part whose tracing was switched off.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import nbformat

from grader.notebooks import grade_id, is_test_cell, nbgrader_meta

UNREADABLE_SUFFIX = ".unreadable"

_SUSPICIOUS = [
    (re.compile(r"\bsys\.setprofile\b|\bsys\.settrace\b|threading\.setprofile"), "tracing hooks"),
    (re.compile(r"^\s*(from|import)\s+grader\b", re.M), "imports the grader"),
    (re.compile(r"\bsys\.modules\b"), "edits sys.modules"),
    (re.compile(r"\b(__builtins__|builtins)\b"), "touches builtins"),
    (re.compile(r"\bos\._exit\b|\bsignal\.\w+\(|\bctypes\b"), "process-level calls"),
]


def _problem_with(path: Path) -> str | None:
    """Why ``path`` cannot be graded as a notebook, or None if it can."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        return "is not text (UTF-8)"
    except json.JSONDecodeError as exc:
        return f"is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
    if not isinstance(raw, dict) or not isinstance(raw.get("cells"), list):
        return "is JSON but not a notebook (no list of cells)"
    try:
        nbformat.reads(json.dumps(raw), as_version=4)
    except Exception as exc:
        return f"is not a readable notebook ({type(exc).__name__}: {str(exc)[:120]})"
    return None


def prepare_notebooks(
    submission_dir: Path, notebook_names: list[str], release_dir: Path
) -> list[str]:
    """Make every expected notebook gradable; returns a note for each change.

    - unreadable: kept as ``<name>.ipynb.unreadable``; the blank released notebook takes its
      place, so nbgrader grades it (zero for every cell) instead of failing;
    - missing, with exactly one other notebook in the folder: that one is graded (copied to
      the expected name, the original kept);
    - missing: the blank released notebook is graded (zero).

    Idempotent: a notebook set aside on an earlier run is reported again, not moved twice.
    """
    notes = []
    for name in notebook_names:
        path = submission_dir / f"{name}.ipynb"
        aside = path.with_name(path.name + UNREADABLE_SUFFIX)
        blank = release_dir / f"{name}.ipynb"
        if path.exists():
            problem = _problem_with(path)
            if problem is None:
                if aside.exists() and blank.exists() and path.read_bytes() == blank.read_bytes():
                    notes.append(
                        f"{path.name} {_problem_with(aside) or 'was unreadable'}: kept "
                        f"as {aside.name}, graded as blank (0)"
                    )
                continue
            path.replace(aside)
            shutil.copyfile(blank, path)
            notes.append(f"{path.name} {problem}: kept as {aside.name}, graded as blank (0)")
            continue
        others = sorted(p for p in submission_dir.glob("*.ipynb") if p.stem not in notebook_names)
        if len(notebook_names) == 1 and len(others) == 1 and _problem_with(others[0]) is None:
            shutil.copyfile(others[0], path)
            notes.append(f"{path.name} is missing; graded {others[0].name} in its place")
        else:
            shutil.copyfile(blank, path)
            found = f" (found: {', '.join(p.name for p in others)})" if others else ""
            notes.append(f"{path.name} is missing from the submission{found}: graded as blank (0)")
    return notes


def _cells_by_id(nb) -> dict[str, str]:
    return {grade_id(c): c.source for c in nb.cells if grade_id(c)}


def review_notes(released: Path, submitted: Path) -> list[str]:
    """Notes on one submitted notebook compared with its released version."""
    if not (released.exists() and submitted.exists()):
        return []
    try:
        release_nb = nbformat.read(released, as_version=4)
        student_nb = nbformat.read(submitted, as_version=4)
    except Exception:
        return []
    notes = []
    student_cells = _cells_by_id(student_nb)
    for cell in release_nb.cells:
        name = grade_id(cell)
        if not is_test_cell(cell) and not nbgrader_meta(cell).get("locked"):
            continue
        if name not in student_cells:
            notes.append(f"{submitted.name}: cell {name} was deleted; nbgrader put it back")
        elif student_cells[name].strip() != cell.source.strip():
            notes.append(f"{submitted.name}: cell {name} was modified; nbgrader restored it")
    flagged = set()
    for cell in student_nb.cells:
        if cell.cell_type != "code" or nbgrader_meta(cell).get("locked"):
            continue
        for pattern, what in _SUSPICIOUS:
            if what not in flagged and pattern.search(cell.source):
                flagged.add(what)
                notes.append(f"{submitted.name}: code for a human to read ({what})")
    return notes
