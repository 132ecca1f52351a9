"""Preflight: nbgrader metadata rebuilt from the release, whatever a submission did to it.

Each case tampers with the tiny course's released notebook as a student could in a text
editor; nbgrader 0.9.6's sanitizer crashes on the first three ("Inconsistent checksums",
``KeyError 'grade_id'``) and the submission went ungraded. The expected result is derived
from the release itself, not from the code under test. End to end (graded through
``cvgrade``) in ``test_pipeline_hostile.py``.
"""

from __future__ import annotations

import copy

import nbformat
import pytest

from grader.notebooks import cell
from grader.pipeline.preflight import AS_SUBMITTED_SUFFIX, restore_metadata
from tests.grader.tiny_course import tiny_notebook


def _release():
    nb = tiny_notebook()
    for c in nb.cells:
        c.source = c.source.split("### BEGIN HIDDEN TESTS")[0]
        if "nbgrader" in c.metadata:
            c.metadata.nbgrader["checksum"] = f"sum-{c.id}"
            if c.metadata.nbgrader.get("locked"):
                c.metadata["editable"] = False
    return nb


def _flagged(nb):
    """The nbgrader metadata of every cell nbgrader treats specially, in order."""
    return [
        c.metadata["nbgrader"]
        for c in nb.cells
        if any(
            c.get("metadata", {}).get("nbgrader", {}).get(k)
            for k in ("grade", "solution", "locked")
        )
    ]


def _reflagged(nb):
    cell(nb, "test_triple").metadata.nbgrader["solution"] = True


def _duplicated(nb):
    copied = copy.deepcopy(cell(nb, "test_triple"))
    copied.source = "triple = lambda x: 3 * x"  # a copy placed first, with other code
    nb.cells.insert(1, copied)  # same id: nbformat would repair it with a random one


def _renamed_beside_forged(nb):
    test = cell(nb, "test_triple")
    test.metadata.nbgrader["grade_id"] = "renamed"
    forged = copy.deepcopy(test)
    forged.id = "forged"
    forged.metadata.nbgrader.update(grade_id="forged", points=100)
    forged.source = "pass"
    nb.cells.append(forged)


def _points_raised(nb):
    cell(nb, "test_double").metadata.nbgrader["points"] = 1000


def _retyped(nb):
    test = cell(nb, "test_double")
    test.cell_type = "markdown"
    del test["outputs"], test["execution_count"]


def _kernelspec(nb):
    nb.metadata["kernelspec"] = {"name": "evil", "display_name": "x", "language": "python"}


def _unlocked_and_ungraded(nb):
    meta = cell(nb, "test_double").metadata.nbgrader
    meta.update(grade=False, locked=False)
    del meta["points"]


CASES = {
    "reflagged": (_reflagged, "cell test_triple's nbgrader metadata was changed"),
    "duplicated": (_duplicated, None),
    "renamed": (_renamed_beside_forged, "cell forged claims to be a graded"),
    "points": (_points_raised, "cell test_double's nbgrader metadata was changed"),
    "retyped": (_retyped, "cell test_double's nbgrader metadata was changed"),
    "kernelspec": (_kernelspec, None),
    "unlocked": (_unlocked_and_ungraded, "cell test_double's nbgrader metadata was changed"),
}


@pytest.mark.parametrize("case", CASES)
def test_tampered_metadata_is_rebuilt_from_the_release(tmp_path, case):
    tamper, note = CASES[case]
    release = _release()
    released = tmp_path / "release.ipynb"
    nbformat.write(release, released)
    student = copy.deepcopy(release)
    tamper(student)
    submitted = tmp_path / "tiny.ipynb"
    nbformat.write(student, submitted)
    original = submitted.read_bytes()

    notes = restore_metadata(released, submitted)

    restored = nbformat.read(submitted, as_version=4)
    # Exactly the release's flagged cells, with the release's metadata, once each, in order;
    # the kernelspec is the release's.
    assert _flagged(restored) == _flagged(release)
    assert restored.metadata["kernelspec"] == release.metadata["kernelspec"]
    assert cell(restored, "test_double").cell_type == "code"
    assert cell(restored, "test_double").metadata.get("editable") is False
    assert len({c.id for c in restored.cells}) == len(restored.cells)
    # The student's file is kept as it was.
    assert (tmp_path / f"tiny.ipynb{AS_SUBMITTED_SUFFIX}").read_bytes() == original
    if note:
        assert any(note in n for n in notes), notes
    # Idempotent: a second run changes nothing and says the same.
    again = submitted.read_bytes()
    assert restore_metadata(released, submitted) == notes
    assert submitted.read_bytes() == again


def test_the_test_cell_keeps_its_place_when_a_copy_comes_first(tmp_path):
    release = _release()
    nbformat.write(release, tmp_path / "release.ipynb")
    student = copy.deepcopy(release)
    _duplicated(student)
    nbformat.write(student, tmp_path / "tiny.ipynb")
    restore_metadata(tmp_path / "release.ipynb", tmp_path / "tiny.ipynb")
    restored = nbformat.read(tmp_path / "tiny.ipynb", as_version=4)
    # The copy (other source) lost its metadata; the unchanged cell after triple_impl is
    # the graded one.
    ids = [c.get("metadata", {}).get("nbgrader", {}).get("grade_id") for c in restored.cells]
    assert ids.index("test_triple") == ids.index("triple_impl") + 1
    assert "nbgrader" not in restored.cells[1].metadata


def test_an_untouched_submission_is_left_alone(tmp_path):
    nbformat.write(_release(), tmp_path / "release.ipynb")
    nbformat.write(_release(), tmp_path / "tiny.ipynb")
    before = (tmp_path / "tiny.ipynb").read_bytes()
    assert restore_metadata(tmp_path / "release.ipynb", tmp_path / "tiny.ipynb") == []
    assert (tmp_path / "tiny.ipynb").read_bytes() == before
    assert not (tmp_path / f"tiny.ipynb{AS_SUBMITTED_SUFFIX}").exists()


def test_metadata_that_is_not_a_dict_is_dropped(tmp_path):
    release = _release()
    nbformat.write(release, tmp_path / "release.ipynb")
    student = copy.deepcopy(release)
    extra = nbformat.v4.new_code_cell("x = 1", metadata={"nbgrader": "grade everything"})
    student.cells.append(extra)
    nbformat.write(student, tmp_path / "tiny.ipynb")
    restore_metadata(tmp_path / "release.ipynb", tmp_path / "tiny.ipynb")
    restored = nbformat.read(tmp_path / "tiny.ipynb", as_version=4)
    assert "nbgrader" not in restored.cells[-1].metadata
    assert _flagged(restored) == _flagged(release)
