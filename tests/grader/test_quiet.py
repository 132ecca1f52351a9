"""grader.pipeline.quiet silences nbgrader's "not in session" SQLAlchemy warning, only it."""

from __future__ import annotations

import warnings

from sqlalchemy.exc import SAWarning

from grader.pipeline.quiet import quiet_nbgrader

# The warning as SQLAlchemy 2 words it for nbgrader's autograde.
NBGRADERS = (
    "Object of type <SubmittedAssignment> not in session, add operation along "
    "'Assignment.submissions' will not proceed"
)


def test_only_the_not_in_session_warning_is_silenced():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_nbgrader()
        warnings.warn(NBGRADERS, SAWarning, stacklevel=1)
        warnings.warn("Dialect sqlite+pysqlite does not support Decimal", SAWarning, stacklevel=1)
        warnings.warn(NBGRADERS, UserWarning, stacklevel=1)  # not SQLAlchemy's: shown
    assert [(w.category, str(w.message)[:20]) for w in caught] == [
        (SAWarning, "Dialect sqlite+pysql"),
        (UserWarning, "Object of type <Subm"),
    ]
