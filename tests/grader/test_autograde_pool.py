"""The autograde worker pool: a worker that dies costs only the task it was running.

Fast: the workers run small functions of this module instead of nbgrader. The end-to-end
case (a kernel that kills its worker) is in ``test_pipeline_hostile.py``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from grader.pipeline.autograde import failure_cause, run_pool


def _init(folder: str) -> None:
    Path(folder, f"init-{os.getpid()}").touch()


def _work(name: str, folder: str):
    # "die": kills its own worker every time; "die-once": only the first time; "raise":
    # raises; "orphan": starts a long sleep in a session of its own (as a kernel is), then
    # kills its worker; anything else returns the worker's pid.
    marker = Path(folder, f"{name}.tried")
    if name == "orphan":
        sleeper = subprocess.Popen(["sleep", "600"], start_new_session=True)
        Path(folder, f"sleeper-{sleeper.pid}").touch()
        os.kill(os.getpid(), signal.SIGKILL)
    if name == "die" or (name == "die-once" and not marker.exists()):
        marker.touch()
        os.kill(os.getpid(), signal.SIGKILL)
    if name == "raise":
        raise RuntimeError("a task that raises")
    return (name, os.getpid())


def _run(tmp_path, names, jobs):
    outcomes = {}
    run_pool(
        [(name, os.fspath(tmp_path)) for name in names],
        jobs,
        lambda task, outcome: outcomes.setdefault(task[0], outcome),
        initializer=_init,
        initargs=(os.fspath(tmp_path),),
        work=_work,
    )
    return outcomes


def test_a_dying_worker_costs_only_its_own_task_which_is_retried_once(tmp_path):
    names = ["a", "die", "b", "die-once", "c", "raise", "d"]
    outcomes = _run(tmp_path, names, jobs=2)
    assert set(outcomes) == set(names)
    for name in "abcd":
        assert outcomes[name].kind == "done" and outcomes[name].value[0] == name
        assert outcomes[name].deaths == []
    # killed on both tries: reported as died, with how each worker ended
    assert outcomes["die"].kind == "died"
    assert outcomes["die"].deaths == ["killed by SIGKILL", "killed by SIGKILL"]
    # killed once, then done in a fresh worker
    assert outcomes["die-once"].kind == "done"
    assert outcomes["die-once"].deaths == ["killed by SIGKILL"]
    assert outcomes["raise"].kind == "raised" and "a task that raises" in outcomes["raise"].value
    # each retry ran in a fresh worker (2 retries beside the 2 first workers), and no
    # worker was started needlessly: at most one per death beyond the first 2. Whether
    # the worker lost with "die"'s last try is replaced depends on whether tasks are left
    # by then, which is timing: 4 or 5 workers start.
    started = len(list(tmp_path.glob("init-*")))
    assert 2 + 2 <= started <= 2 + 3


def test_one_job_also_runs_in_a_worker_so_a_death_cannot_take_the_caller_down(tmp_path):
    outcomes = _run(tmp_path, ["die", "a"], jobs=1)
    assert outcomes["die"].kind == "died"
    assert outcomes["a"].kind == "done" and outcomes["a"].value[1] != os.getpid()


def test_no_tasks_starts_no_worker(tmp_path):
    assert _run(tmp_path, [], jobs=4) == {}
    assert not list(tmp_path.glob("init-*"))


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="subreaper is Linux-only")
def test_what_a_dead_worker_started_is_killed_not_left_running(tmp_path):
    outcomes = _run(tmp_path, ["orphan", "a"], jobs=2)
    assert outcomes["orphan"].kind == "died" and outcomes["a"].kind == "done"
    sleepers = [int(p.name.split("-")[1]) for p in tmp_path.glob("sleeper-*")]
    assert len(sleepers) == 2  # one per try
    assert not [pid for pid in sleepers if _alive(pid)]


def test_an_ungraded_submission_is_noted_with_the_cause_not_nbgraders_see_above_line():
    """nbgrader's failed autograde ends with 'NbGraderException: Please see the the above
    traceback'; the note a TA reads names the exception above it instead."""
    log = "\n".join(
        [
            "[AutogradeApp | ERROR] There was an error processing assignment: tiny",
            "Traceback (most recent call last):",
            '  File "execute.py", line 3, in preprocess_cell',
            "nbclient.exceptions.DeadKernelError: Kernel died",
            "Traceback (most recent call last):",
            "nbgrader.converters.base.NbGraderException: Please see the the above traceback "
            "for details on the specific errors on the above failures.",
        ]
    )
    assert failure_cause(log) == "nbclient.exceptions.DeadKernelError: Kernel died"
    assert failure_cause("the release is missing") == "the release is missing"
    assert failure_cause("ValueError: " + "x" * 1000) == ("ValueError: " + "x" * 1000)[:300]
