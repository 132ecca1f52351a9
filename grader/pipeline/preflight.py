"""Looking at a submission before nbgrader grades it, and at what grading did to it.

- An unreadable notebook (not JSON, not a notebook, no cells) would make nbgrader fail the
  whole submission. It is set aside as ``<name>.ipynb.unreadable`` (kept, never deleted)
  and the blank released notebook is graded in its place: zero for every cell, and a note.
- nbgrader's metadata (which cells are tests, their points and grade ids, locked and
  solution flags) and the kernelspec are rebuilt from the released notebook, whatever the
  submission did to them (:func:`restore_metadata`): a test cell re-flagged as a solution,
  duplicated, or renamed beside a forged 100-point cell would crash nbgrader's sanitizer and
  leave the whole submission ungraded. A graded cell the release does not have earns
  nothing. The student's file is kept as ``<name>.ipynb.as-submitted``.
- Test cells that a student modified or deleted are restored by nbgrader (checksums,
  ``add_missing_cells``); the note says so, so that a TA can follow up.
- Code that reaches for the grader's machinery (``sys.setprofile``, ``import grader``,
  ``sys.modules``, ``builtins``) is flagged for a human to read; the checks themselves
  refuse to credit a part whose tracing was switched off.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import warnings
from pathlib import Path

import nbformat

from cvcourse.fileio import atomic_path
from grader.notebooks import grade_id, is_test_cell, nbgrader_meta

UNREADABLE_SUFFIX = ".unreadable"
AS_SUBMITTED_SUFFIX = ".as-submitted"

# Cell metadata that nbgrader (or the notebook UI, for locked cells) reads: taken from the
# release for every cell the release flags, removed from any other cell.
_RESTORED_KEYS = ("nbgrader", "deletable", "editable")

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


def _meta_of(cell) -> dict | None:
    # The cell's nbgrader metadata if it is a dict (a submission can put anything there).
    metadata = cell.get("metadata")
    found = metadata.get("nbgrader") if isinstance(metadata, dict) else None
    return found if isinstance(found, dict) else None


def _flagged(meta: dict | None) -> bool:
    # A cell nbgrader treats specially (graded, solution, locked or task).
    return bool(meta) and any(meta.get(key) for key in ("grade", "solution", "locked", "task"))


def _read_deduplicated(path: Path) -> nbformat.NotebookNode:
    # nbformat repairs duplicate cell ids with random ones; here they get a stable suffix, so
    # that restoring the same submission twice gives the same file.
    raw = json.loads(path.read_text(encoding="utf-8"))
    seen: set[str] = set()
    for cell in raw.get("cells", []):
        cell_id = cell.get("id") if isinstance(cell, dict) else None
        if not isinstance(cell_id, str):
            continue
        new_id, number = cell_id, 1
        while new_id in seen:
            number += 1
            suffix = f"-{number}"
            new_id = cell_id[: 64 - len(suffix)] + suffix
        cell["id"] = new_id
        seen.add(new_id)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nbformat's validation warnings: not the TA's concern
        return nbformat.reads(json.dumps(raw), as_version=4)


def _set_cell_type(cell, cell_type: str) -> None:
    if cell.cell_type == cell_type:
        return
    cell.cell_type = cell_type
    cell.pop("attachments", None)
    if cell_type == "code":
        cell.outputs = []
        cell.execution_count = None
    else:
        cell.pop("outputs", None)
        cell.pop("execution_count", None)


def _match(release_nb, student_nb) -> dict[int, int]:
    """``student cell index -> release cell index`` for the release's nbgrader cells.

    A submission cell is a release cell's copy if it has the release cell's id or grade id;
    each release cell gets at most one copy, each submission cell at most one release cell.
    Pairs are taken best first: the most of id, grade id and source in common, then the
    closest to the release cell's place in the notebook (a duplicated test cell pasted at the
    top does not take the graded place of the one left where it was).
    """
    pairs = []
    r_count, s_count = len(release_nb.cells) or 1, len(student_nb.cells) or 1
    for r_index, r_cell in enumerate(release_nb.cells):
        r_meta = _meta_of(r_cell)
        if not _flagged(r_meta):
            continue
        for s_index, s_cell in enumerate(student_nb.cells):
            s_meta = _meta_of(s_cell) or {}
            same_id = bool(r_cell.get("id")) and s_cell.get("id") == r_cell.get("id")
            same_name = s_meta.get("grade_id") == r_meta.get("grade_id")
            if not (same_id or same_name):
                continue
            same_source = s_cell.get("source") == r_cell.get("source")
            distance = abs(s_index / s_count - r_index / r_count)
            pairs.append((-(same_id + same_name + same_source), distance, s_index, r_index))
    matched: dict[int, int] = {}
    taken: set[int] = set()
    for *_, s_index, r_index in sorted(pairs):
        if s_index not in matched and r_index not in taken:
            matched[s_index] = r_index
            taken.add(r_index)
    return matched


def _describe(meta: dict | None) -> str:
    if not meta:
        return "none"
    keys = ("grade_id", "grade", "solution", "locked", "points")
    return ", ".join(f"{key}={meta[key]!r}" for key in keys if key in meta) or "none"


def _restore(release_nb, student_nb, notebook: str) -> tuple[bool, list[str]]:
    """Rebuild ``student_nb``'s nbgrader metadata from ``release_nb``, in place.

    Returns whether anything changed, and a note for each change a TA should know about.
    """
    changed = False
    notes = []
    matched = _match(release_nb, student_nb)
    for s_index, cell in enumerate(student_nb.cells):
        meta = _meta_of(cell)
        if s_index in matched:
            source = release_nb.cells[matched[s_index]]
            wanted = {
                k: copy.deepcopy(source.metadata[k]) for k in _RESTORED_KEYS if k in source.metadata
            }
            current = {k: cell.metadata.get(k) for k in _RESTORED_KEYS if k in cell.metadata}
            name = _meta_of(source)["grade_id"]
            if current != wanted or cell.cell_type != source.cell_type:
                if _essentials(meta) != _essentials(_meta_of(source)) or (
                    cell.cell_type != source.cell_type
                ):
                    notes.append(
                        f"{notebook}: cell {name}'s nbgrader metadata was changed "
                        f"({_describe(meta)}); restored from the release"
                    )
                for key in _RESTORED_KEYS:
                    cell.metadata.pop(key, None)
                cell.metadata.update(wanted)
                _set_cell_type(cell, source.cell_type)
                changed = True
        elif "nbgrader" in cell.get("metadata", {}):
            if meta and (meta.get("grade") or meta.get("locked") or "points" in meta):
                label = meta.get("grade_id") or cell.get("id") or f"#{s_index + 1}"
                notes.append(
                    f"{notebook}: cell {label} claims to be a graded or read-only cell the "
                    f"release does not have ({_describe(meta)}); it earns nothing"
                )
            del cell.metadata["nbgrader"]
            changed = True
    kernelspec = release_nb.metadata.get("kernelspec")
    if kernelspec is not None and student_nb.metadata.get("kernelspec") != kernelspec:
        student_nb.metadata["kernelspec"] = copy.deepcopy(kernelspec)
        changed = True
    return changed, notes


def _essentials(meta: dict | None) -> tuple:
    # What decides grading; other keys (checksum, schema_version) change without a student.
    meta = meta or {}
    points = meta.get("points") if meta.get("grade") else None
    return (
        meta.get("grade_id"),
        bool(meta.get("grade")),
        bool(meta.get("solution")),
        bool(meta.get("locked")),
        bool(meta.get("task")),
        points,
    )


def restore_metadata(released: Path, submitted: Path) -> list[str]:
    """Give ``submitted`` the nbgrader metadata and kernelspec of ``released``; notes.

    Every cell the release flags (test, solution, read-only) gets the release's metadata on
    its copy in the submission (found by cell id or grade id); nbgrader metadata on any
    other cell (a forged graded cell, a second copy of a test) is removed, so it earns
    nothing. If anything changed, the student's file is kept as
    ``<name>.ipynb.as-submitted`` and the restored notebook takes its place. Idempotent: a
    second run finds nothing to change and reports the notes of the kept file again.
    Nothing is done to a file that is missing or unreadable (``prepare_notebooks`` runs
    first).
    """
    aside = submitted.with_name(submitted.name + AS_SUBMITTED_SUFFIX)
    try:
        release_nb = nbformat.read(released, as_version=4)
        student_nb = _read_deduplicated(submitted)
    except Exception:
        return []
    changed, notes = _restore(release_nb, student_nb, submitted.name)
    if changed:
        shutil.copyfile(submitted, aside)
        with atomic_path(submitted) as tmp:
            Path(tmp).write_text(nbformat.writes(student_nb), encoding="utf-8")
        return notes
    if aside.exists():
        try:
            kept = _read_deduplicated(aside)
        except Exception:
            return []
        changed, notes = _restore(release_nb, kept, submitted.name)
        if changed and nbformat.writes(kept) == submitted.read_text(encoding="utf-8"):
            return notes
    return []


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
