"""Grading on a Dask cluster: the same tasks as the local pool, sent to Dask workers.

The head (``cvgrade autograde --cluster ADDRESS``) submits one Dask task per submission:
:func:`grade_on_worker` with the assignment's package and the submission's files (plain
data, :mod:`grader.pipeline.worktask`). It returns plain data, which the head writes into the
course: workers never open ``gradebook.db`` and share no folder with the head.

Inside a Dask worker a task does not grade in the worker's own process: it hands the
submission to a grading process of its own (one per worker thread, started once and kept
warm, the local pool's :class:`grader.pipeline.autograde._Worker`), and waits for it up to the
task's wall-clock limit. So

- a kernel that kills its grading process costs only that submission: the task returns
  ``"died"``, the Dask worker lives on, and the head submits the submission again, away
  from that worker, once; a second death records it as ungraded (never 0);
- a submission past the limit has its grading process killed (a real cancel: a Dask
  ``cancel`` cannot stop a running thread) and is recorded as ungraded;
- a Dask worker that dies itself (its machine lost, the OOM killer, a test's kill) fails
  its task with ``KilledWorker`` at once (the head sets the scheduler's
  ``allowed-failures`` to 0 and its ``worker-saturation`` to 1, so that a worker holds only
  the tasks it is running and the retry policy is the head's alone): the head counts that
  as a death, as above.

``dask worker --preload grader.pipeline.cluster`` warms a worker when it starts (numba's kernels,
nbgrader, the judge) and refuses to join without a working sandbox (see the README,
"Grading on a cluster").
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from multiprocessing.connection import wait

from grader.pipeline.autograde import (
    PoolOutcome,
    _children,
    _kill_orphans,
    _subreaper,
    _Worker,
)
from grader.pipeline.course import CourseError
from grader.pipeline.worktask import grade_submission, warm_worker

# -- inside a Dask worker ----------------------------------------------------------------------

_LOCK = threading.Lock()
_IDLE: list[_Worker] = []
_LIVE: set[_Worker] = set()
_REAPER: dict = {}


def _take() -> _Worker:
    with _LOCK:
        while _IDLE:
            worker = _IDLE.pop()
            if worker.process.is_alive():
                return worker
            _LIVE.discard(worker)
            worker.stop()
        if not _REAPER:
            _REAPER["before"] = _children()
            _REAPER["was"] = _subreaper(True)
            atexit.register(_stop_all)
        if multiprocessing.current_process().daemon:
            raise RuntimeError(
                "this Dask worker runs as a daemonic process, which may not start grading "
                "processes: start it with DASK_DISTRIBUTED__WORKER__DAEMON=False "
                "(scripts/cluster/worker.sh does)"
            )
        worker = _Worker(multiprocessing.get_context("spawn"), warm_worker, (), grade_submission)
        _LIVE.add(worker)
        return worker


def _stop_all() -> None:
    # Before multiprocessing's own exit handler, which would wait for them; they are idle
    # (or their task is lost anyway) and hold nothing worth a clean exit.
    with _LOCK:
        for worker in list(_LIVE):
            worker.process.kill()
            worker.stop()
        _LIVE.clear()
        _IDLE.clear()


try:
    from distributed.diagnostics.plugin import WorkerPlugin
except ImportError:  # the local pool needs no Dask
    WorkerPlugin = object


class GradingProcesses(WorkerPlugin):
    """Stops a Dask worker's grading processes when the worker closes."""

    name = "cvgrade-grading-processes"

    def teardown(self, worker) -> None:
        _stop_all()


def _lose(worker: _Worker, kill: bool = False) -> None:
    if kill:
        worker.process.kill()
    worker.stop()
    with _LOCK:
        _LIVE.discard(worker)
        if _REAPER.get("was") is not None:
            _kill_orphans(_REAPER["before"] | {w.process.pid for w in _LIVE})


def grade_on_worker(task: tuple, deadline: float | None) -> tuple[str, object, str]:
    """Grade ``task`` (package, submission) in one of this worker's grading processes.

    Returns ``(kind, value, where)``: ``kind`` as :class:`grader.pipeline.autograde.PoolOutcome`'s
    (``"done"``, ``"raised"``, ``"died"``, ``"timeout"``), and the worker's address.
    """
    try:
        from distributed import get_worker

        where = get_worker().address
    except (ImportError, ValueError):
        where = f"{socket.gethostname()}:{os.getpid()}"
    worker = _take()
    worker.give(task)
    ready = wait([worker.conn, worker.process.sentinel], deadline)
    if not ready:
        _lose(worker, kill=True)
        return "timeout", deadline, where
    try:
        if not worker.conn.poll():
            raise EOFError
        kind, value = worker.conn.recv()
    except (EOFError, OSError):
        how = worker.how_it_ended()
        _lose(worker)
        return "died", how, where
    worker.task = None
    with _LOCK:
        _IDLE.append(worker)
    return kind, value, where


def dask_setup(worker=None) -> None:
    """``dask worker --preload grader.pipeline.cluster``: check the sandbox and compile numba's
    kernels (from the on-disk cache when ``make setup`` or an earlier worker compiled them)
    before the worker takes a task."""
    from cvcourse.kernels import warmup
    from grader.pipeline.course import require_sandbox, sandboxed

    if sandboxed():
        require_sandbox()  # raises: a worker without bubblewrap must not join
    warmup.warm_up(verbose=False)


# -- on the head -------------------------------------------------------------------------------

#: Scheduler settings grading relies on (see the module docstring).
SCHEDULER_CONFIG = {
    "distributed.scheduler.allowed-failures": 0,
    "distributed.scheduler.worker-saturation": 1.0,
}


def local_cluster(workers: int, **kwargs):
    """A Dask ``LocalCluster`` of ``workers`` single-threaded worker processes, set up as
    grading needs (the scheduler settings above; workers that may start processes)."""
    import dask
    from distributed import LocalCluster

    # Set for the rest of this process, not in a with-block: a nanny reads "daemon" again
    # each time it restarts a worker that died.
    dask.config.set({**SCHEDULER_CONFIG, "distributed.worker.daemon": False})
    return LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        **kwargs,
    )


def _tune_scheduler(client) -> None:
    # A function defined here is pickled by value: the scheduler need not import grader.
    def tune(dask_scheduler=None):
        dask_scheduler.allowed_failures = 0
        dask_scheduler.WORKER_SATURATION = 1.0
        return True

    client.run_on_scheduler(tune)


def run_on_cluster(
    tasks: Iterable[tuple],
    cluster,
    on_done: Callable[[tuple, PoolOutcome], None],
    *,
    jobs: int = 1,
    deadline: float | None = None,
    resources: dict[str, float] | None = None,
    retries: int = 1,
) -> None:
    """Grade ``tasks`` on a Dask cluster; ``on_done(task, outcome)`` in this process as
    each ends, with the local pool's outcomes and retry policy (:func:`run_pool`).

    ``cluster`` is a scheduler address (``tcp://host:8786``), ``"local"`` (a
    :func:`local_cluster` of ``jobs`` workers, closed at the end) or a
    ``distributed.Client``.
    """
    from distributed import Client, as_completed
    from distributed.client import FutureCancelledError
    from distributed.scheduler import KilledWorker

    tasks = list(tasks)
    if not tasks:
        return
    own_cluster = own_client = None
    if isinstance(cluster, Client):
        client = cluster
    else:
        if cluster == "local":
            own_cluster = local_cluster(jobs)
            cluster = own_cluster
        try:
            client = own_client = Client(cluster, timeout="60s")
        except (OSError, TimeoutError) as exc:
            raise CourseError(f"cannot reach the Dask scheduler at {cluster}: {exc}") from None
    try:
        _tune_scheduler(client)
        client.register_plugin(GradingProcesses())
        futures = {}
        deaths: dict[int, list[str]] = {}
        running = as_completed()

        def submit(index: int, avoid: str | None = None) -> None:
            student = tasks[index][1].student
            workers = None
            if avoid is not None:
                others = [a for a in client.scheduler_info(n_workers=-1)["workers"] if a != avoid]
                workers = others or None
            future = client.submit(
                grade_on_worker,
                tasks[index],
                deadline,
                key=f"cvgrade-{student}-{uuid.uuid4().hex[:8]}",
                pure=False,
                resources=resources or None,
                workers=workers,
                allow_other_workers=workers is not None,
            )
            futures[future.key] = index
            running.add(future)

        waiting = list(range(len(tasks)))[::-1]
        retry: list[tuple[int, str | None]] = []

        def top_up() -> None:
            # Never more tasks out than worker threads: a task waiting in a worker's queue
            # would be charged with that worker's death.
            threads = sum(
                w["nthreads"] for w in client.scheduler_info(n_workers=-1)["workers"].values()
            )
            while (retry or waiting) and running.count() < max(1, threads):
                if retry:
                    submit(*retry.pop(0))
                else:
                    submit(waiting.pop())

        top_up()
        while running.count() or retry or waiting:
            if not running.count():
                time.sleep(1.0)  # no worker yet: wait for one to join
                top_up()
                continue
            future = next(running)
            index = futures.pop(future.key)
            try:
                kind, value, where = future.result()
            except KilledWorker as exc:
                last = getattr(exc, "last_worker", None)
                where = getattr(last, "address", None)
                kind, value = "died", f"the Dask worker {where} was lost"
            except FutureCancelledError as exc:
                kind, value, where = "died", f"cancelled by the scheduler ({exc})", None
            except Exception as exc:
                kind, value, where = "raised", f"{type(exc).__name__}: {exc}", None
            future.release()
            if kind == "died":
                deaths.setdefault(index, []).append(f"{value} on {where}" if where else value)
                if len(deaths[index]) <= retries:
                    retry.append((index, where))
                else:
                    on_done(tasks[index], PoolOutcome("died", value, deaths[index]))
            else:
                on_done(tasks[index], PoolOutcome(kind, value, deaths.get(index, [])))
            top_up()
    finally:
        if own_client is not None:
            own_client.close()
        if own_cluster is not None:
            own_cluster.close()
