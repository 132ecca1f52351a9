"""The TA's grading pipeline, step by step, on top of nbgrader.

course.py          the course folder and nbgrader's API, configured for safe grading
steps.py           release, feedback, export, report: the steps ``cvgrade`` runs
collect.py         a folder or LMS zip into ``submitted/``
exchange.py        nbgrader's exchange: release, collect by receipts, feedback
preflight.py       unreadable notebooks, metadata rebuilt, modified test cells
autograde.py       what to grade, workers of its own, a record per submission
worktask.py        one submission graded by a worker, plain data in and out
cluster.py         the same tasks on a Dask cluster
sandbox.py, sandbox_kernel.py   the bubblewrap sandbox and the grading kernel
preprocessors.py   fixes to nbgrader 0.9.6's execution, feedback and sanitizing
gradebook.py       the head's writes of what workers return; per-cell scores
export.py, report.py   grades.csv and the grade report
quiet.py           nbgrader's one harmless SQLAlchemy warning, silenced
"""
