"""The grades CSV, the terminal tables and the HTML report, on a hand-built class.

Two assignments, three students. Hand-computed (max 6 + 6 = 12):

    fc_losses  linear/2 relu/1 ce/3 | conv_pool  conv/4 pool/2 | total
    alice      2        1      3    |            4      1      | 11
    bob        2        0      1.5  |            0      2      | 5.5
    carol      2        None   0    |            (not submitted)| 2
"""

import csv
import html
import io
import os

import pytest

from grader.pipeline.export import collate, part_table, score_table, write_grades_csv
from grader.pipeline.gradebook import CellScore
from grader.pipeline.report import PASS_RATES_COLUMNS, write_report

SCRIPT = "<script>alert(1)</script>"
FC_CELLS = [("test_linear", 2), ("test_relu", 1), ("test_ce", 3)]
CONV_CELLS = [("test_conv", 4), ("test_pool", 2)]


def _rows(assignment, notebook, cells, student, scores, messages=None):
    messages = messages or {}
    return [
        CellScore(assignment, student, notebook, cell, score, float(points), messages.get(cell, ""))
        for (cell, points), score in zip(cells, scores, strict=True)
    ]


def _scores():
    fc = ("fc_losses", "fc_losses", FC_CELLS)
    conv = ("conv_pool", "conv", CONV_CELLS)
    return [
        *_rows(*fc, "alice", [2.0, 1.0, 3.0]),
        *_rows(
            *fc,
            "bob",
            [2.0, 0.0, 1.5],
            {"test_relu": "AssertionError: relu backward", "test_ce": "AssertionError: ce"},
        ),
        *_rows(*fc, "carol", [2.0, None, 0.0], {"test_ce": SCRIPT}),
        *_rows(*conv, "alice", [4.0, 1.0], {"test_pool": "AssertionError: ties"}),
        *_rows(*conv, "bob", [0.0, 2.0], {"test_conv": "AssertionError: kernel flipped"}),
    ]


NOTES = {
    ("fc_losses", "carol"): ["kernel died in cell 7", "note with <img src=x onerror=alert(2)>"],
    ("conv_pool", "bob"): [],
}


def _read_csv(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def test_grades_csv_columns_max_row_totals_and_empty_cells(tmp_path):
    path = write_grades_csv(_scores(), tmp_path / "grades.csv")
    assert _read_csv(path) == [
        [
            "student",
            "fc_losses/test_linear",
            "fc_losses/test_relu",
            "fc_losses/test_ce",
            "fc_losses/total",
            "fc_losses/status",
            "conv_pool/test_conv",
            "conv_pool/test_pool",
            "conv_pool/total",
            "conv_pool/status",
            "total",
        ],
        ["(max)", "2", "1", "3", "6", "", "4", "2", "6", "", "12"],
        ["alice", "2", "1", "3", "6", "graded", "4", "1", "5", "graded", "11"],
        ["bob", "2", "0", "1.5", "3.5", "graded", "0", "2", "2", "graded", "5.5"],
        # None -> empty, counts 0; conv_pool not submitted -> empty cells, total and status
        ["carol", "2", "", "0", "2", "graded", "", "", "", "", "2"],
    ]


def test_grades_csv_rerun_is_byte_identical_and_leaves_no_temporary_files(tmp_path):
    path = tmp_path / "out" / "grades.csv"
    first = write_grades_csv(_scores(), path).read_bytes()
    # input order of students must not matter either
    second = write_grades_csv(sorted(_scores(), key=lambda r: r.student), path).read_bytes()
    assert first == second
    assert os.listdir(path.parent) == ["grades.csv"]


def test_score_table_has_each_students_fractions_aligned():
    lines = score_table(_scores()).splitlines()
    assert lines[0].split() == ["student", "fc_losses", "conv_pool", "total"]
    assert lines[2].split() == ["alice", "6/6", "5/6", "11/12"]
    assert lines[3].split() == ["bob", "3.5/6", "2/6", "5.5/12"]
    assert lines[4].split() == ["carol", "2/6", "-", "2/12"]
    # right-aligned numbers: every row's total ends in the same column
    assert len({len(line) for line in [lines[0], *lines[2:]]}) == 1


def test_part_table_marks_full_zero_partial_and_ungraded():
    lines = part_table(_scores(), "fc_losses").splitlines()
    assert lines[0].split() == ["student", "linear", "relu", "ce", "total"]
    assert lines[2].split() == ["alice", "✓", "✓", "✓", "6/6"]
    assert lines[3].split() == ["bob", "✓", "✗", "1.5", "3.5/6"]
    assert lines[4].split() == ["carol", "✓", "-", "✗", "2/6"]
    assert [line.split()[0] for line in part_table(_scores(), "conv_pool").splitlines()[2:]] == [
        "alice",
        "bob",
    ]
    with pytest.raises(ValueError, match="nope.*fc_losses, conv_pool"):
        part_table(_scores(), "nope")


def test_collate_keeps_notebook_order_when_a_submission_lacks_a_cell_and_rejects_duplicates():
    first = _rows("a", "nb", [("test_x", 1), ("test_z", 1)], "s1", [1.0, 1.0])
    second = _rows("a", "nb", [("test_x", 1), ("test_y", 1), ("test_z", 1)], "s2", [1, 1, 1])
    grades = collate(first + second)
    assert [c.name for c in grades.assignments[0].cells] == ["test_x", "test_y", "test_z"]
    assert grades.assignments[0].total("s1") == 2.0
    with pytest.raises(ValueError, match="two scores for cell 'test_x'"):
        collate(first + first[:1])


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    return write_report(_scores(), NOTES, tmp_path_factory.mktemp("report") / "new")


def test_report_writes_html_pngs_and_csv(report):
    out = report.parent
    assert report == out / "report.html"
    assert sorted(os.listdir(out)) == [
        "histogram.png",
        "pass_rates.csv",
        "pass_rates.png",
        "report.html",
    ]
    for name in ("histogram.png", "pass_rates.png"):
        data = (out / name).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 1000
        assert b"tEXt" not in data and b"tIME" not in data  # no version, no date


def test_pass_rates_csv_matches_hand_computed_values(report):
    rows = _read_csv(report.parent / "pass_rates.csv")
    assert rows == [
        PASS_RATES_COLUMNS,
        ["fc_losses", "test_linear", "2", "3", "3", "0", "2", ""],
        # carol's None counts as a zero
        ["fc_losses", "test_relu", "1", "3", "1", "2", "0.333333", "AssertionError: relu backward"],
        # two messages once each: the tie goes to the alphabetically first
        ["fc_losses", "test_ce", "3", "3", "1", "1", "1.5", SCRIPT],
        ["conv_pool", "test_conv", "4", "2", "1", "1", "2", "AssertionError: kernel flipped"],
        ["conv_pool", "test_pool", "2", "2", "1", "0", "1.5", "AssertionError: ties"],
    ]


def test_report_html_escapes_student_strings_and_lists_problems(report):
    text = report.read_text(encoding="utf-8")
    assert "<script" not in text and "<img src=x" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "kernel died in cell 7" in text
    assert "&lt;img src=x onerror=alert(2)&gt;" in text
    assert 'src="histogram.png"' in text and 'src="pass_rates.png"' in text
    assert "http" not in text  # standalone: no external assets
    for expected in ("11/12", "5.5/12", "3.5/6", "0.33"):
        assert expected in text
    summary = text.split("<h2>Summary</h2>")[1].split("</table>")[0]
    # fc_losses: mean of 6, 3.5, 2 = 3.83, median 3.5; conv_pool: mean = median = 3.5
    assert '<td>fc_losses</td><td class="num">3</td>' in summary
    assert ">3.83<" in summary and ">3.5<" in summary


def test_report_rerun_gives_identical_files(report, tmp_path):
    again = write_report(_scores(), NOTES, tmp_path)
    for name in ("report.html", "histogram.png", "pass_rates.png", "pass_rates.csv"):
        assert (again.parent / name).read_bytes() == (report.parent / name).read_bytes(), name


def test_empty_input_reports_nothing_graded(tmp_path):
    path = write_report([], {}, tmp_path / "empty")
    text = path.read_text(encoding="utf-8")
    assert "Nothing graded yet" in text
    assert "<p>none</p>" in text
    assert (tmp_path / "empty" / "histogram.png").read_bytes().startswith(b"\x89PNG")
    assert _read_csv(tmp_path / "empty" / "pass_rates.csv") == [PASS_RATES_COLUMNS]
    grades = write_grades_csv([], tmp_path / "grades.csv").read_text(encoding="utf-8")
    assert list(csv.reader(io.StringIO(grades))) == [["student", "total"], ["(max)", "0"]]
    assert score_table([]) == "nothing graded yet"


# dave's fc_losses could not be graded (its worker died twice): rows with score None and a
# reason. erin's conv_pool too, and she has nothing else.
DIED = "the grading worker died on each of 2 tries (killed by SIGKILL; killed by SIGKILL)"


def _with_ungraded():
    return [
        *_scores(),
        *[
            CellScore("fc_losses", "dave", "fc_losses", cell, None, float(points), "", DIED)
            for cell, points in FC_CELLS
        ],
        *_rows("conv_pool", "conv", CONV_CELLS, "dave", [4.0, 2.0]),
        *[
            CellScore("conv_pool", "erin", "conv", cell, None, float(points), "", "not autograded")
            for cell, points in CONV_CELLS
        ],
    ]


def test_an_ungraded_submission_is_empty_and_marked_in_the_csv_never_zero(tmp_path):
    rows = {r[0]: r for r in _read_csv(write_grades_csv(_with_ungraded(), tmp_path / "g.csv"))}
    # fc_losses: three empty cells, empty total, "ungraded"; conv_pool graded; no course total
    assert rows["dave"] == ["dave", "", "", "", "", "ungraded", "4", "2", "6", "graded", ""]
    assert rows["erin"] == ["erin", "", "", "", "", "", "", "", "", "ungraded", ""]
    # the others are unchanged
    before = {r[0]: r for r in _read_csv(write_grades_csv(_scores(), tmp_path / "before.csv"))}
    for student in ("(max)", "alice", "bob", "carol"):
        assert rows[student] == before[student]


def test_tables_say_ungraded_instead_of_a_score():
    lines = score_table(_with_ungraded()).splitlines()
    assert lines[5].split() == ["dave", "ungraded", "6/6", "ungraded"]
    assert lines[6].split() == ["erin", "-", "ungraded", "ungraded"]
    parts = part_table(_with_ungraded(), "fc_losses").splitlines()
    assert parts[5].split() == ["dave", "-", "-", "-", "ungraded"]


def test_report_lists_ungraded_submissions_and_leaves_them_out_of_the_statistics(tmp_path):
    path = write_report(_with_ungraded(), NOTES, tmp_path / "with")
    text = path.read_text(encoding="utf-8")
    section = text.split("<h2>Ungraded submissions</h2>")[1].split("<h2>")[0]
    assert "<td>dave</td>" in section and html.escape(DIED) in section
    assert "<td>erin</td>" in section and "not autograded" in section
    assert "2 ungraded" in text
    # Pass rates are those of the graded submissions alone: dave's fc_losses and erin's
    # conv_pool are not zeros. dave's graded conv_pool counts.
    rates = _read_csv(tmp_path / "with" / "pass_rates.csv")
    assert (
        rates[1:4]
        == _read_csv(write_report(_scores(), {}, tmp_path / "w").parent / "pass_rates.csv")[1:4]
    )
    assert rates[4] == [
        "conv_pool",
        "test_conv",
        "4",
        "3",
        "2",
        "1",
        "2.666667",
        "AssertionError: kernel flipped",
    ]
    # The summary's fc_losses mean is still (6 + 3.5 + 2) / 3, with one ungraded beside it.
    summary = text.split("<h2>Summary</h2>")[1].split("</table>")[0]
    assert '<td>fc_losses</td><td class="num">3</td><td class="num">1</td>' in summary
    assert ">3.83<" in summary
    students = text.split("<h2>Scores per student</h2>")[1].split("</table>")[0]
    assert '<td>dave</td><td class="num">ungraded</td>' in students
