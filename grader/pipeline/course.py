"""The nbgrader course on disk: where things are, and nbgrader configured to grade it.

A :class:`Course` is a folder with ``nbgrader_config.py`` (``course/`` in this repository):
instructor notebooks in ``assignments/<assignment>/``, and nbgrader's generated folders
``release/``, ``submitted/<student>/<assignment>/``, ``autograded/``, ``feedback/`` and
``gradebook.db`` beside them. ``Course.api()`` returns nbgrader's own ``NbGraderAPI``,
configured by the course's file plus what grading a class safely needs (see
:meth:`Course.config`).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

from grader.pipeline.sandbox import Limits, SandboxUnavailable, check_available
from grader.pipeline.sandbox_kernel import DEFAULT_MEMORY_MB, KERNEL_NAME, kernel_home

CONFIG_FILE = "nbgrader_config.py"

# nbgrader's sanitizing preprocessors, with test cells deleted by a student put back in place.
_SANITIZE_PREPROCESSORS = [
    "nbgrader.preprocessors.ClearOutput",
    "nbgrader.preprocessors.DeduplicateIds",
    "nbgrader.preprocessors.OverwriteKernelspec",
    "grader.pipeline.preprocessors.OverwriteCellsInPlace",
    "nbgrader.preprocessors.CheckCellMetadata",
]

# nbgrader's autograde preprocessors, with Execute swapped for one that runs a judge beside
# the kernel (and survives the kernel's death), and every test cell's output, so its score,
# set from the judge's record just before nbgrader reads the scores.
_AUTOGRADE_PREPROCESSORS = [
    "grader.judge.execute.JudgedExecute",
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "grader.judge.execute.ApplyJudgeRecord",
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]

# Seconds a gradebook writer waits for another process's lock (parallel autograde).
GRADEBOOK_BUSY_TIMEOUT = 300


class CourseError(ValueError):
    """The course folder, an assignment or a submission is not what the pipeline needs."""


#: The note every grading record carries when student code ran without the sandbox.
UNSAFE_NOTE = (
    "graded WITHOUT a sandbox (--unsafe-no-sandbox): student code ran with the grader's "
    "rights and could read or change the course, other submissions and the grader"
)


def allow_unsafe_grading(unsafe: bool) -> None:
    """Grade without the sandbox (``unsafe``) or with it, in this process and its workers."""
    if unsafe:
        os.environ["CVGRADE_SANDBOX"] = "none"
    else:
        os.environ.pop("CVGRADE_SANDBOX", None)


def sandboxed() -> bool:
    """Whether grading kernels run in the bubblewrap sandbox (the default)."""
    return os.environ.get("CVGRADE_SANDBOX", "bwrap") == "bwrap"


def require_sandbox() -> None:
    """Raise :class:`CourseError` unless the sandbox works here or unsafe grading was chosen."""
    if not sandboxed():
        return
    if os.environ.get("CVGRADE_BWRAP"):
        return  # checked already in this process tree
    try:
        os.environ["CVGRADE_BWRAP"] = check_available()
    except SandboxUnavailable as exc:
        raise CourseError(str(exc)) from None


@dataclass(frozen=True)
class Course:
    """An nbgrader course folder (one holding ``nbgrader_config.py``)."""

    root: Path

    @classmethod
    def find(cls, path: str | os.PathLike | None = None) -> Course:
        """The course at ``path``; without one, ``./course`` or the nearest folder upward.

        Raises :class:`CourseError` naming where it looked.
        """
        if path is not None:
            root = Path(path).expanduser().resolve()
            if not (root / CONFIG_FILE).is_file():
                raise CourseError(f"{root} is not a course folder: it has no {CONFIG_FILE}")
            return cls(root)
        here = Path.cwd().resolve()
        for candidate in (here / "course", here, *here.parents):
            if (candidate / CONFIG_FILE).is_file():
                return cls(candidate)
        raise CourseError(
            f"no course found: neither {here / 'course'} nor {here} or a folder above it has "
            f"{CONFIG_FILE}; pass --course PATH"
        )

    # -- layout -----------------------------------------------------------------------------

    @property
    def source_root(self) -> Path:
        return self.root / "assignments"

    @property
    def gradebook(self) -> Path:
        return self.root / "gradebook.db"

    def assignments(self) -> list[str]:
        """Assignment ids: the folders of ``assignments/`` that hold a notebook."""
        if not self.source_root.is_dir():
            return []
        return sorted(
            p.name for p in self.source_root.iterdir() if p.is_dir() and any(p.glob("*.ipynb"))
        )

    def check_assignment(self, assignment: str) -> str:
        if assignment not in self.assignments():
            known = ", ".join(self.assignments()) or "none"
            raise CourseError(f"unknown assignment {assignment!r}; the course has: {known}")
        return assignment

    def notebook_names(self, assignment: str) -> list[str]:
        """Stems of the assignment's source notebooks (nbgrader's notebook ids)."""
        return sorted(p.stem for p in (self.source_root / assignment).glob("*.ipynb"))

    def step_dir(self, step: str, student: str, assignment: str) -> Path:
        """``<root>/<step>/<student>/<assignment>`` (``release`` has no student level)."""
        if step == "release":
            return self.root / "release" / assignment
        return self.root / step / student / assignment

    def students(self, assignment: str) -> list[str]:
        """Students with a submission of ``assignment`` in ``submitted/``, sorted."""
        submitted = self.root / "submitted"
        if not submitted.is_dir():
            return []
        return sorted(
            p.name for p in submitted.iterdir() if (p / assignment).is_dir() and p.name[0] != "."
        )

    # -- nbgrader ---------------------------------------------------------------------------

    def config(self, *, timeout: int | None = None, memory_mb: int | None = None) -> Config:
        """The course's ``nbgrader_config.py`` plus what grading needs.

        - submissions run in the sandboxed kernel (``grader.pipeline.sandbox_kernel``), and its
          graded cells are scored by a judge outside it (``grader.judge``);
        - a kernel crash costs only the cells that did not run (``grader.pipeline.preprocessors``);
        - a deleted test cell is put back where it was (``grader.pipeline.preprocessors``);
        - gradebook writers wait up to ``GRADEBOOK_BUSY_TIMEOUT`` s for each other's locks;
        - ``timeout`` (seconds per cell) overrides the course's ``Execute.timeout``.
        """
        loader = PyFileConfigLoader(CONFIG_FILE, path=os.fspath(self.root))
        config = loader.load_config()
        config.CourseDirectory.root = os.fspath(self.root)
        config.CourseDirectory.db_url = (
            f"sqlite:///{self.gradebook}?timeout={GRADEBOOK_BUSY_TIMEOUT}"
        )
        config.Autograde.sanitize_preprocessors = list(_SANITIZE_PREPROCESSORS)
        config.Autograde.autograde_preprocessors = list(_AUTOGRADE_PREPROCESSORS)
        config.Execute.kernel_name = KERNEL_NAME
        config.Execute.kernel_manager_class = "grader.pipeline.sandbox_kernel.SandboxKernelManager"
        if timeout is not None:
            config.Execute.timeout = int(timeout)
        self._prepare_environment(memory_mb)
        return config

    def _prepare_environment(self, memory_mb: int | None) -> None:
        # nbgrader shells out to `alembic` (a console script beside this Python) when it
        # creates a gradebook, and the kernels find their spec through JUPYTER_PATH.
        bin_dir = os.path.dirname(sys.executable)
        path = os.environ.get("PATH", "")
        if bin_dir not in path.split(os.pathsep):
            os.environ["PATH"] = bin_dir + os.pathsep + path
        kernel_home()
        limits = Limits(memory_mb=memory_mb or DEFAULT_MEMORY_MB)
        os.environ.update(limits.to_environment())

    # -- the sandbox ------------------------------------------------------------------------

    def api(self, *, timeout: int | None = None, memory_mb: int | None = None):
        """nbgrader's ``NbGraderAPI`` for this course (its calls return dicts, never raise)."""
        from nbgrader.apps import NbGraderAPI

        return NbGraderAPI(config=self.config(timeout=timeout, memory_mb=memory_mb))
