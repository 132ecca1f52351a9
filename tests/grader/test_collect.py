"""``collect``: every source layout a TA meets ends up as nbgrader's submitted/ layout."""

from __future__ import annotations

import os
import zipfile

import pytest

from grader.pipeline.collect import collect
from grader.pipeline.course import Course, CourseError
from tests.grader.tiny_course import make_tiny_course


@pytest.fixture
def course(tmp_path):
    return Course(make_tiny_course(tmp_path / "course"))


def _submitted(course, student):
    return (course.root / "submitted" / student / "tiny" / "tiny.ipynb").read_text()


def test_a_folder_with_one_subfolder_per_student(course, tmp_path):
    for student in ("Ada", "bob"):
        (tmp_path / "in" / student).mkdir(parents=True)
        (tmp_path / "in" / student / "my work.ipynb").write_text(f'{{"by": "{student}"}}')
    result = collect(course, "tiny", tmp_path / "in")
    assert result.students == ["ada", "bob"]  # ids are lower-cased
    assert _submitted(course, "ada") == '{"by": "Ada"}'
    stamp = (course.root / "submitted" / "bob" / "tiny" / "timestamp.txt").read_text()
    assert stamp.endswith("UTC")


def test_a_flat_folder_keeps_the_newest_file_per_student(course, tmp_path):
    folder = tmp_path / "flat"
    folder.mkdir()
    (folder / "carol_11_21_tiny.ipynb").write_text("old")
    (folder / "carol_LATE_11_22_tiny.ipynb").write_text("new")
    (folder / "dave.ipynb").write_text("dave's")
    os.utime(folder / "carol_11_21_tiny.ipynb", (1_000_000, 1_000_000))
    result = collect(course, "tiny", folder)
    assert result.students == ["carol", "dave"]
    assert _submitted(course, "carol") == "new"
    assert any("newer than carol_11_21_tiny.ipynb" in note for note in result.notes)


def test_a_canvas_zip_and_a_custom_pattern(course, tmp_path):
    archive = tmp_path / "canvas.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("erin_31_41_tiny.ipynb", "erin's")
        zf.writestr("__MACOSX/._erin_31_41_tiny.ipynb", "junk")
        zf.writestr("README.txt", "not a notebook")
    assert collect(course, "tiny", archive).students == ["erin"]
    moodle = tmp_path / "moodle.zip"
    with zipfile.ZipFile(moodle, "w") as zf:
        zf.writestr("Frank Smith_123_assignsubmission_file_tiny.ipynb", "frank's")
    result = collect(course, "tiny", moodle, pattern=r"^(?P<student>\w+) \w+_\d+_.*\.ipynb$")
    assert result.students == ["frank"] and _submitted(course, "frank") == "frank's"


def test_collecting_again_gives_the_same_files(course, tmp_path):
    (tmp_path / "in" / "gus").mkdir(parents=True)
    (tmp_path / "in" / "gus" / "a.ipynb").write_text("gus's")
    collect(course, "tiny", tmp_path / "in")
    first = {p: p.read_bytes() for p in (course.root / "submitted").rglob("*") if p.is_file()}
    collect(course, "tiny", tmp_path / "in")
    second = {p: p.read_bytes() for p in (course.root / "submitted").rglob("*") if p.is_file()}
    assert first == second


def test_bad_sources_are_explained(course, tmp_path):
    with pytest.raises(CourseError, match="neither a folder nor a .zip"):
        collect(course, "tiny", tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CourseError, match="no notebooks found"):
        collect(course, "tiny", tmp_path / "empty")
    (tmp_path / "broken.zip").write_bytes(b"not a zip")
    with pytest.raises(CourseError, match="not a readable zip"):
        collect(course, "tiny", tmp_path / "broken.zip")
    with pytest.raises(CourseError, match="not a valid regular expression"):
        collect(course, "tiny", tmp_path / "empty", pattern="(")
    with pytest.raises(CourseError, match="unknown assignment 'nope'"):
        collect(course, "nope", tmp_path / "empty")
