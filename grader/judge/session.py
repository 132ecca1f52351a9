"""One judge per notebook run: it listens, checks each graded part once, and keeps the record.

The executor tells the judge which graded cell is running (:meth:`Judge.expect`) and when it
has ended (:meth:`Judge.finish`). Only while a graded cell runs does the judge accept a
connection, and only one that names that cell's part, once per run; then it runs the part's
check (``grader.checks.<assignment>.<part>``) on the student's object and records points
and message. A connection at any other time, for another part, or a second time, is closed
unanswered and noted. The kernel learns nothing: the check's result goes to the record.

Cases are drawn with a per-run secret seed (``harness.judging``), which the kernel never
sees; the record keeps it so that a TA can reproduce a grade.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import secrets
import shutil
import socket
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path

from cvcourse.judge_link import send_message
from grader.checks import harness
from grader.checks.harness import GradingFailure
from grader.judge.remote import ChannelError, Connection, StudentError

# The most a record keeps of one part's message.
MAX_MESSAGE_CHARS = 8000


@dataclass
class PartRecord:
    """What the judge found for one graded cell."""

    part: str  # the cell's grade id
    passed: bool
    message: str
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


def checks_module(assignment: str, course_checks: str | os.PathLike | None = None):
    """The module of ``assignment``'s checks: ``grader.checks.<assignment>`` or, for an
    assignment of the course's own, ``<course_checks>/<assignment>.py``."""
    if not assignment or not assignment.replace("_", "").isalnum():
        return None
    try:
        return importlib.import_module(f"grader.checks.{assignment}")
    except ModuleNotFoundError:
        pass
    if course_checks is None:
        return None
    path = Path(course_checks) / f"{assignment}.py"
    if not path.is_file():
        return None
    name = f"cvgrade_course_checks.{assignment}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[name] = module
    return sys.modules[name]


def check_function(module, grade_id: str):
    """The check of cell ``grade_id`` in ``module``: the function named ``grade_id`` minus
    ``test_``, if the module exports it."""
    name = grade_id.removeprefix("test_")
    if module is None or not grade_id.startswith("test_"):
        return None
    if name not in getattr(module, "__all__", ()):
        return None
    return getattr(module, name)


def run_check(check, objects: list, *, seed: int | None, grade_id: str) -> PartRecord:
    """Run one check on ``objects`` (local objects or remote proxies); never raises."""
    started = time.monotonic()
    lines: list[str] = []
    with harness.judging(seed=seed, report=lines):
        try:
            check(*objects)
            passed, message = True, "\n".join(lines) or "passed"
        except GradingFailure as failure:
            passed, message = False, str(failure)
        except ChannelError as exc:
            passed, message = False, f"the grader could not reach your code: {exc}"
        except StudentError as exc:
            where = f"\n  {exc.where}" if exc.where else ""
            passed, message = False, f"your code raised {exc.remote_type}: {exc}{where}"
        except Exception as exc:  # a check meeting something it does not expect
            passed = False
            message = (
                f"the grader could not check this part ({type(exc).__name__}: {exc}); your "
                "code returned something the check did not expect"
            )
            traceback.print_exc()
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[:MAX_MESSAGE_CHARS] + "\n[message truncated]"
    return PartRecord(grade_id, passed, message, round(time.monotonic() - started, 3))


class Judge:
    """Listens on a Unix socket in a folder of its own; see the module docstring."""

    def __init__(
        self,
        assignment: str,
        *,
        seed: int | None = None,
        course_checks: str | os.PathLike | None = None,
        peer_uid: int | None = None,
    ):
        self.assignment = assignment
        self.checks = checks_module(assignment, course_checks)
        self.seed = secrets.randbits(63) if seed is None else int(seed)
        self.peer_uid = peer_uid
        self.records: dict[str, PartRecord] = {}
        self.notes: list[str] = []
        self.folder = tempfile.mkdtemp(prefix="cvgrade-judge-")
        os.chmod(self.folder, 0o711)  # the sandboxed kernel may reach the socket, not list
        self.path = os.path.join(self.folder, "judge.sock")
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(self.path)
        os.chmod(self.path, 0o666)
        self._server.listen(8)
        self._lock = threading.Lock()
        self._expected: tuple[str, float] | None = None
        self._active: Connection | None = None
        self._idle = threading.Event()
        self._idle.set()
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._accept_loop, name="judge", daemon=True)
        self._thread.start()

    # -- the executor's side --------------------------------------------------------------------

    def expect(self, grade_id: str, seconds: float) -> None:
        """Graded cell ``grade_id`` starts now and may take ``seconds``."""
        with self._lock:
            self._expected = (grade_id, time.monotonic() + seconds)

    def finish(self, grade_id: str, grace: float = 2.0) -> None:
        """The cell has ended: let a running check end, then refuse further connections."""
        with self._lock:
            self._expected = None
        if not self._idle.wait(grace):
            # The cell returned while its check still waits on the kernel (a thread, say):
            # hang up, so the check fails with "could not reach your code" and is recorded.
            active = self._active
            if active is not None:
                active.close()
            self._idle.wait(10.0)

    def close(self) -> None:
        """Stop listening and remove the folder."""
        self._closing.set()
        try:
            self._server.close()
        finally:
            active = self._active
            if active is not None:
                active.close()
            self._thread.join(timeout=10.0)
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> Judge:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the kernel's side ----------------------------------------------------------------------

    def _accept_loop(self) -> None:
        self._server.settimeout(0.2)  # to notice close() soon
        while not self._closing.is_set():
            try:
                sock, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            sock.settimeout(None)
            self._idle.clear()
            try:
                self._handle(sock)
                # Whatever happened, the kernel hears only that this part is over.
                sock.settimeout(1.0)
                send_message(sock, {"kind": "done"})
            except Exception as exc:  # a broken connection must never stop the judge
                if not isinstance(exc, ChannelError):
                    self.notes.append(f"judge: a connection failed: {type(exc).__name__}: {exc}")
            finally:
                self._active = None
                try:
                    sock.close()
                except OSError:
                    pass
                self._idle.set()

    def _peer_is_allowed(self, sock: socket.socket) -> bool:
        if self.peer_uid is None:
            return True
        import struct

        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        _, uid, _ = struct.unpack("3i", creds)
        return uid == self.peer_uid

    def _handle(self, sock: socket.socket) -> None:
        with self._lock:
            expected = self._expected
        allowed = self._peer_is_allowed(sock)
        # The hello is read in every case (a refusal with it unread would reset the
        # connection under the kernel), but within seconds when the answer is no.
        grace = time.monotonic() + 5.0
        deadline = expected[1] if expected and allowed else grace
        connection = Connection(sock, deadline)
        self._active = connection
        try:
            header, blobs = connection.receive()
        except ChannelError as exc:
            where = expected[0] if expected else "outside any graded cell"
            self.notes.append(f"{where}: the kernel connected but sent no part ({exc})")
            return
        if expected is None:
            self.notes.append("a connection to the judge outside any graded cell was refused")
            return
        if not allowed:
            self.notes.append("a connection to the judge from another user was refused")
            return
        grade_id = expected[0]
        part = header.get("part")
        if header.get("kind") != "hello" or not isinstance(part, str):
            self.notes.append(f"{grade_id}: the kernel broke the protocol (no hello)")
            return
        if f"test_{part}" != grade_id:
            self.notes.append(f"{grade_id}: the kernel asked to be graded for {part[:80]!r}")
            return
        if grade_id in self.records:
            self.notes.append(f"{grade_id}: the kernel asked again; each part is graded once")
            return
        check = check_function(self.checks, grade_id)
        if check is None:
            self.notes.append(f"{grade_id}: no check of that name in {self.assignment}")
            return
        try:
            connection._blobs_in = blobs
            objects = _decode_root(connection, header.get("roots"), blobs)
        except ChannelError as exc:
            self.records[grade_id] = PartRecord(
                grade_id, False, f"the grader could not reach your code: {exc}", 0.0
            )
            return
        self.records[grade_id] = run_check(check, objects, seed=self.seed, grade_id=grade_id)


def _decode_root(connection: Connection, node, blobs):
    from cvcourse.judge_link import decode

    objects = decode(node, blobs, connection.resolver())
    if not isinstance(objects, list) or len(objects) > 8:
        raise ChannelError("the kernel handed over something other than a list of objects")
    return objects
