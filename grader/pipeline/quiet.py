"""nbgrader's one harmless SQLAlchemy warning, silenced in one place.

nbgrader 0.9.6's gradebook writes (``update_or_create_submission``, autograde) make
SQLAlchemy warn ``Object of type <SubmittedAssignment> not in session, add operation along
'...' will not proceed``, about how nbgrader's own session handles related objects. The
grades are written all the same (the grading tests read every score back from the
gradebook), so the warning tells a TA nothing, and several per assignment bury the progress
bar. Only that message is silenced: any other SQLAlchemy warning still shows.
"""

from __future__ import annotations

import warnings

NOT_IN_SESSION = r"Object of type <\w+> not in session"


def quiet_nbgrader() -> None:
    """Ignore SQLAlchemy's "not in session" warning from nbgrader, in this process."""
    try:
        from sqlalchemy.exc import SAWarning
    except ImportError:  # no nbgrader here: nothing to silence
        return
    warnings.filterwarnings("ignore", message=NOT_IN_SESSION, category=SAWarning)
