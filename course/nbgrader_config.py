"""nbgrader's configuration for the cvcourse course (read by nbgrader and by ``cvgrade``).

Every setting here closes a way nbgrader 0.9 silently mis-grades (see NBGRADER-NOTES.md in
the course's design notes); ``cvgrade`` adds only what is specific to grading a class in
parallel (the sandboxed kernel, a busy timeout on the gradebook, kernel-crash recovery).
"""

import os

c = get_config()  # noqa: F821 (nbgrader's config loader provides get_config)

_here = os.path.dirname(os.path.abspath(__file__))

c.CourseDirectory.root = _here
c.CourseDirectory.course_id = "cvcourse"
# The instructor's notebooks live in assignments/<assignment>/, not nbgrader's source/.
c.CourseDirectory.source_directory = "assignments"
# A submitted .py file is copied beside the notebook and would shadow imports (a student's
# own numpy.py): never copy one.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "*.py"]

# A deleted test cell would otherwise stay "needs manual grading" forever: put it back.
c.OverwriteCells.add_missing_cells = True

# Feedback shows each graded cell's output (our diagnosis) but never the hidden tests: not
# in the source, and not in the traceback of a failing one. Outputs and Markdown are
# sanitized (no script, event handler or javascript: link reaches the page).
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.ClearHiddenTests",
    "grader.pipeline.preprocessors.HideTestTracebacks",
    "grader.pipeline.preprocessors.SanitizeOutputs",
    "nbgrader.preprocessors.GetGrades",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]

# Per-cell timeout: a cell that loops forever costs this, then the rest of the notebook runs.
c.Execute.timeout = 120

# Validate (the notebook toolbar's button, `nbgrader validate`): after release a graded cell
# holds only comments (its hidden tests are removed), so checking graded cells alone passes an
# untouched notebook. Check every code cell instead: the public checks beside each part then
# report the parts that raise, fail an assertion or write to stderr, by cell and error.
c.Validator.validate_all = True
