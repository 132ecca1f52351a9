"""The course's side of nbgrader's exchange: release, receipts, collect and feedback.

Students on a JupyterHub fetch and submit through nbgrader's filesystem exchange
(``Exchange.path_includes_course``)::

    <root>/<course_id>/outbound/<assignment>/               what ``release --exchange`` puts out
    <root>/<course_id>/inbound/<student>+<assignment>+<timestamp>+<random>/
                                                            one folder per submission
    <root>/<course_id>/feedback/<md5(secret + notebook)>.html   what ``feedback --release`` returns

Everything in an inbound folder is the student's: its name says which student it is for
(``nbgrader submit --student`` lets anyone write any name, nbgrader #1097), its
``timestamp.txt`` says when (writable by its owner at any time, #1104), and its owner can
rewrite the notebook after submitting. So the grader side takes a **receipt** of every
submission as soon as it sees it (``cvgrade receipts --watch``, run as the grader's user, as
a hub service): its own clock's time, the uploader (the owner of the folder, which only the
kernel sets), and a copy of each notebook with its sha256, kept under the course's
``receipts/`` folder where students cannot reach. :func:`collect_from_exchange` grades the
receipted copies, takes each student's newest by receipt time, writes that time as the
submission's ``timestamp.txt``, and flags what a receipt contradicts:

- a folder named for another student than its uploader: not collected (a classmate must not
  be able to replace someone's work); flagged for both;
- a notebook changed after its receipt: the receipted copy is graded; flagged;
- files not owned by the uploader, links, non-regular or oversized files: not copied; flagged;
- a submission first seen by ``collect`` itself (no watcher was running): its receipt time is
  the collect's, later than the real submission; flagged, so the TA can judge lateness.

Flags are kept in ``receipts/<assignment>/flags.json`` and appear in ``cvgrade report``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import pwd
import re
import stat
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from cvcourse.fileio import atomic_path
from grader.pipeline.collect import TIMESTAMP_FORMAT
from grader.pipeline.course import Course, CourseError

# nbgrader's default exchange root, used when neither the course config nor --exchange-root
# says otherwise.
DEFAULT_EXCHANGE_ROOT = "/srv/nbgrader/exchange"
# A notebook bigger than this is not copied into a receipt (a submission is a few MB at most;
# this keeps a flood from filling the grader's disk).
MAX_NOTEBOOK_BYTES = 64 * 2**20
RECEIPTS = "receipts"
FLAGS_FILE = "flags.json"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
# nbgrader submit's last step makes the folder 0777 "so the instructor can delete it": a
# folder with any other mode is still being written.
_FINISHED_MODE = 0o777
# The files nbgrader writes beside the notebooks, kept with the receipt (small text only).
_SIDE_FILES = ("timestamp.txt", "submission_secret.txt")
_SIDE_FILE_BYTES = 4096


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Exchange:
    """Where one course's exchange lives: ``<root>/<course_id>/{inbound,outbound,feedback}``."""

    root: Path
    course_id: str

    @classmethod
    def of(cls, course: Course, root: str | os.PathLike | None = None) -> Exchange:
        """The course's exchange: ``root`` if given, else the course config's
        ``Exchange.root`` (nbgrader's default ``/srv/nbgrader/exchange`` if unset)."""
        config = course.config()
        if root is None:
            root = config.Exchange.get("root") or DEFAULT_EXCHANGE_ROOT
        course_id = config.CourseDirectory.get("course_id") or ""
        if not _ID.match(course_id):
            raise CourseError(
                f"the course has no usable CourseDirectory.course_id ({course_id!r}): the "
                "exchange needs one"
            )
        return cls(Path(root).expanduser(), course_id)

    @property
    def inbound(self) -> Path:
        return self.root / self.course_id / "inbound"

    def configure(self, config) -> None:
        """Point an nbgrader ``Config`` at this exchange."""
        config.Exchange.root = os.fspath(self.root)
        config.Exchange.path_includes_course = True
        config.CourseDirectory.course_id = self.course_id


@dataclass
class Receipt:
    """What the grader side saw of one inbound submission folder, when it first saw it.

    ``received_at``: the receipt writer's clock (UTC, ISO 8601); ``named``: the student the
    folder's name claims; ``uploader``: the owner of the folder (a user name, or ``uid N``);
    ``claimed_timestamp``: the folder's ``timestamp.txt`` (the student's word only);
    ``notebooks``: notebook file name -> sha256 of the copy kept; ``problems``: files not
    copied and why.
    """

    folder: str
    named: str
    assignment: str
    uploader: str
    received_at: str
    claimed_timestamp: str
    notebooks: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    taken_by: str = "watcher"

    @property
    def received(self) -> dt.datetime:
        return dt.datetime.fromisoformat(self.received_at)


def parse_folder_name(name: str) -> tuple[str, str] | None:
    """``(student, assignment)`` from ``student+assignment+timestamp[+random]``, or None
    when the name is not one nbgrader writes with usable ids."""
    parts = name.split("+")
    if len(parts) not in (3, 4):
        return None
    student, assignment = parts[0], parts[1]
    if not (_ID.match(student) and _ID.match(assignment)):
        return None
    return student, assignment


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def _read_own_regular_file(folder_fd: int, name: str, owner: int, limit: int) -> bytes:
    """The bytes of ``name`` in the open folder, only if it is a regular file owned by
    ``owner`` and at most ``limit`` bytes; raises ValueError saying why not.

    Opened without following links and without blocking (a FIFO would hang the watcher),
    then checked on the open file, so nothing can be swapped in between.
    """
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=folder_fd)
    except OSError as exc:
        raise ValueError(f"cannot be opened ({exc.strerror})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError("is not a regular file")
        if info.st_uid != owner:
            raise ValueError(f"belongs to {_user_name(info.st_uid)}, not the uploader")
        if info.st_size > limit:
            raise ValueError(f"is larger than {limit} bytes")
        chunks, total = [], 0
        while chunk := os.read(fd, 1 << 20):
            total += len(chunk)
            if total > limit:
                raise ValueError(f"is larger than {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


class Receipts:
    """The receipts of one course, under ``<course>/receipts/<assignment>/<folder>/``.

    Each receipt folder holds ``receipt.json`` and the copies it names. The folder is the
    grader's (mode 0700): students never see it.
    """

    def __init__(self, course: Course, exchange: Exchange):
        self.course = course
        self.exchange = exchange
        self.root = course.root / RECEIPTS

    def folder(self, assignment: str, submission: str) -> Path:
        return self.root / assignment / submission

    def load(self, assignment: str) -> list[Receipt]:
        """Every receipt taken for ``assignment``, oldest first."""
        found = []
        for path in sorted((self.root / assignment).glob("*/receipt.json")):
            found.append(Receipt(**json.loads(path.read_text(encoding="utf-8"))))
        return sorted(found, key=lambda r: (r.received_at, r.folder))

    def take(
        self, *, taken_by: str = "watcher", log: Callable[[str], None] = print
    ) -> list[Receipt]:
        """A receipt for every finished inbound submission that has none yet; the new ones.

        Never raises for one submission's sake: a folder that cannot be read is logged and
        tried again next time.
        """
        inbound = self.exchange.inbound
        if not inbound.is_dir():
            return []
        known = set(self.course.assignments())
        taken = []
        for entry in sorted(os.scandir(inbound), key=lambda e: e.name):
            parsed = parse_folder_name(entry.name)
            if parsed is None or parsed[1] not in known:
                continue
            if (self.folder(parsed[1], entry.name) / "receipt.json").exists():
                continue
            try:
                receipt = self._take_one(entry, *parsed, taken_by)
            except OSError as exc:
                log(f"receipts: {entry.name}: {exc}; tried again later")
                continue
            if receipt is not None:
                taken.append(receipt)
                log(
                    f"receipts: {receipt.named}/{receipt.assignment} from {receipt.uploader} "
                    f"at {receipt.received_at}"
                )
        return taken

    def _take_one(self, entry: os.DirEntry, named: str, assignment: str, taken_by: str):
        received = _now()
        info = entry.stat(follow_symlinks=False)
        if not stat.S_ISDIR(info.st_mode) or stat.S_IMODE(info.st_mode) != _FINISHED_MODE:
            return None  # not a folder, or nbgrader is still writing it
        folder_fd = os.open(entry.path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:
            owner = os.fstat(folder_fd).st_uid
            receipt = Receipt(
                folder=entry.name,
                named=named,
                assignment=assignment,
                uploader=_user_name(owner),
                received_at=received.isoformat(),
                claimed_timestamp="",
                taken_by=taken_by,
            )
            copies: dict[str, bytes] = {}
            for name in sorted(os.listdir(folder_fd)):
                if name.endswith(".ipynb"):
                    limit = MAX_NOTEBOOK_BYTES
                elif name in _SIDE_FILES:
                    limit = _SIDE_FILE_BYTES
                else:
                    continue
                try:
                    copies[name] = _read_own_regular_file(folder_fd, name, owner, limit)
                except ValueError as why:
                    receipt.problems.append(f"{name} {why}: not kept")
        finally:
            os.close(folder_fd)
        claimed = copies.pop("timestamp.txt", b"")
        receipt.claimed_timestamp = claimed.decode("utf-8", "replace").strip()[:100]
        destination = self.folder(assignment, entry.name)
        self._private(destination)
        for name, data in copies.items():
            with atomic_path(destination / name) as tmp:
                tmp.write_bytes(data)
            if name.endswith(".ipynb"):
                receipt.notebooks[name] = hashlib.sha256(data).hexdigest()
        # receipt.json last: its presence means the copies are complete.
        with atomic_path(destination / "receipt.json") as tmp:
            tmp.write_text(json.dumps(asdict(receipt), indent=1), encoding="utf-8")
        return receipt

    def _private(self, folder: Path) -> None:
        for path in (self.root, folder.parent, folder):
            path.mkdir(exist_ok=True)
            os.chmod(path, 0o700)

    def watch(
        self,
        interval: float = 2.0,
        *,
        stop: Callable[[], bool] = lambda: False,
        log: Callable[[str], None] = print,
    ) -> None:
        """Take receipts every ``interval`` seconds until ``stop()`` is true."""
        log(f"receipts: watching {self.exchange.inbound} every {interval:g} s")
        while not stop():
            self.take(log=log)
            time.sleep(interval)


@dataclass
class ExchangeCollectResult:
    """Students collected, and the flags raised (student -> notes)."""

    students: list[str] = field(default_factory=list)
    flags: dict[str, list[str]] = field(default_factory=dict)

    def flag(self, student: str, note: str) -> None:
        self.flags.setdefault(student, []).append(note)


def collect_from_exchange(
    course: Course,
    assignment: str,
    exchange: Exchange,
    *,
    on_behalf: frozenset[str] = frozenset(),
    log: Callable[[str], None] = print,
) -> ExchangeCollectResult:
    """Collect ``assignment`` from the exchange's receipts into ``submitted/``.

    Receipts are taken first for what the watcher has not seen. Each student's newest
    receipt (by receipt time) is collected: its kept notebook copy and
    ``submission_secret.txt`` (nbgrader's feedback needs it), with the receipt time as
    ``timestamp.txt``. ``on_behalf``: users allowed to submit under another name (the
    grader's own user, a TA uploading for a student). Flags go to ``flags.json``.
    """
    course.check_assignment(assignment)
    names = course.notebook_names(assignment)
    receipts = Receipts(course, exchange)
    receipts.take(taken_by="collect", log=log)
    result = ExchangeCollectResult()
    newest: dict[str, Receipt] = {}
    for receipt in receipts.load(assignment):
        if receipt.uploader != receipt.named and receipt.uploader not in on_behalf:
            result.flag(
                receipt.named,
                f"a submission under this name was uploaded by {receipt.uploader} "
                f"({receipt.received_at}): not collected",
            )
            result.flag(
                receipt.uploader,
                f"uploaded a submission under {receipt.named}'s name ({receipt.received_at})",
            )
            continue
        newest[receipt.named] = receipt  # receipts come oldest first
    for student in sorted(newest):
        receipt = newest[student]
        kept = receipts.folder(assignment, receipt.folder)
        for problem in receipt.problems:
            result.flag(student, f"{receipt.folder}: {problem}")
        missing = [n for n in names if f"{n}.ipynb" not in receipt.notebooks]
        if missing:
            result.flag(student, f"{receipt.folder}: no {', '.join(missing)}.ipynb to grade")
            continue
        if receipt.taken_by != "watcher":
            result.flag(
                student,
                f"receipt taken by collect at {receipt.received_at} (no receipt watcher saw "
                f"it earlier); the student's own timestamp says {receipt.claimed_timestamp!r}",
            )
        _flag_changes(result, student, exchange, receipt)
        folder = course.step_dir("submitted", student, assignment)
        folder.mkdir(parents=True, exist_ok=True)
        for name in names:
            data = (kept / f"{name}.ipynb").read_bytes()
            with atomic_path(folder / f"{name}.ipynb") as tmp:
                tmp.write_bytes(data)
        secret = kept / "submission_secret.txt"
        if secret.is_file():
            with atomic_path(folder / "submission_secret.txt") as tmp:
                tmp.write_bytes(secret.read_bytes())
        with atomic_path(folder / "timestamp.txt") as tmp:
            tmp.write_text(receipt.received.strftime(TIMESTAMP_FORMAT))
        result.students.append(student)
    _save_flags(receipts.root / assignment, result.flags)
    return result


def _flag_changes(result, student: str, exchange: Exchange, receipt: Receipt) -> None:
    # The inbound folder as it is now, against what the receipt kept.
    folder = exchange.inbound / receipt.folder
    for name, digest in receipt.notebooks.items():
        try:
            now = hashlib.sha256((folder / name).read_bytes()).hexdigest()
        except OSError:
            result.flag(student, f"{receipt.folder}/{name} was removed after its receipt")
            continue
        if now != digest:
            result.flag(
                student,
                f"{receipt.folder}/{name} changed after its receipt ({receipt.received_at}): "
                "the receipted copy is graded",
            )


def _save_flags(folder: Path, flags: dict[str, list[str]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / FLAGS_FILE) as tmp:
        tmp.write_text(json.dumps(flags, indent=1, sort_keys=True), encoding="utf-8")


def load_flags(course: Course, assignment: str) -> dict[str, list[str]]:
    """The flags of the last exchange collect of ``assignment`` (student -> notes)."""
    path = course.root / RECEIPTS / assignment / FLAGS_FILE
    if not path.is_file():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def _api(course: Course, exchange: Exchange):
    from nbgrader.apps import NbGraderAPI

    config = course.config()
    exchange.configure(config)
    # Re-releasing replaces the outbound copy (students who fetched keep theirs).
    config.ExchangeReleaseAssignment.force = True
    return NbGraderAPI(config=config)


def release_to_exchange(course: Course, assignment: str, exchange: Exchange) -> Path:
    """Put the released ``assignment`` into the exchange's outbound folder (nbgrader's
    ``release_assignment``, replacing an earlier release); returns that folder."""
    course.check_assignment(assignment)
    if not course.step_dir("release", "", assignment).is_dir():
        raise CourseError(f"{assignment} is not released yet: run cvgrade release {assignment}")
    _ensure_exchange(exchange)
    result = _api(course, exchange).release_assignment(assignment)
    if not result["success"]:
        raise CourseError(
            f"nbgrader could not release {assignment} to the exchange:\n{result['log']}"
        )
    return exchange.root / exchange.course_id / "outbound" / assignment


def release_feedback(course: Course, assignment: str, exchange: Exchange) -> int:
    """Return the generated feedback of ``assignment`` to the students through the exchange
    (nbgrader's ``release_feedback``); returns how many feedback files were released."""
    course.check_assignment(assignment)
    files = list((course.root / "feedback").glob(f"*/{assignment}/*.html"))
    if not files:
        raise CourseError(f"no feedback for {assignment}: run cvgrade feedback {assignment} first")
    result = _api(course, exchange).release_feedback(assignment)
    if not result["success"]:
        raise CourseError(f"nbgrader could not release feedback:\n{result['log']}")
    return len(files)


def _ensure_exchange(exchange: Exchange) -> None:
    # nbgrader requires the root world-writable (students create their inbound folders
    # through it) and creates the course's folders itself.
    if not exchange.root.is_dir():
        raise CourseError(
            f"the exchange {exchange.root} does not exist: create it with mode 1777 "
            "(see the README, 'Running the course on JupyterHub')"
        )
