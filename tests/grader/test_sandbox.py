"""The grading sandbox (bubblewrap), tried directly with a probe instead of a kernel.

The probe runs where a student's kernel runs, with the same command ``launch`` builds, and
reports what it can see and do. It must find: no course, no grader, no torch, no reference
kernels, no test digits; cvcourse and numpy importable; a read-only system and venv; a
private size-limited /tmp and home; no network; under root, a uid of its own. When the
kernel ends, ``reap`` leaves nothing it started running. Without bubblewrap, grading
refuses with a message saying how to install it or how to grade without it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grader.pipeline import sandbox
from grader.pipeline.course import CourseError, require_sandbox

REPO = Path(__file__).resolve().parents[2]

PROBE = r"""
import json, os, socket, subprocess, sys
report = {}
def attempt(name, f):
    try:
        report[name] = ["ok", repr(f())[:200]]
    except BaseException as e:
        report[name] = ["blocked", f"{type(e).__name__}: {e}"[:200]]
attempt("uid", os.getuid)
attempt("course", lambda: os.listdir(REPO + "/course"))
attempt("grader source", lambda: os.listdir(REPO + "/grader"))
attempt("import grader", lambda: __import__("grader"))
attempt("import torch", lambda: __import__("torch"))
attempt("import cvcourse.kernels", lambda: __import__("cvcourse.kernels").kernels.conv2d)
attempt("import scipy.signal", lambda: __import__("scipy.signal"))
attempt("import cvcourse.gradcheck", lambda: __import__("cvcourse.gradcheck"))
attempt("train digits", lambda: __import__("cvcourse.data").data.load_digits("train")[1].shape)
attempt("test digits", lambda: __import__("cvcourse.data").data.load_digits("test")[1].shape)
CVCOURSE_DATA = os.path.dirname(__import__("cvcourse.data").data.__file__)
def read_npz_labels(path):
    import numpy
    with numpy.load(path) as npz:
        return npz["labels"].shape
attempt("digits file", lambda: read_npz_labels(CVCOURSE_DATA + "/digits.npz"))
def read_gzip(path):
    import gzip
    with gzip.open(path) as f:
        return len(f.read())
attempt("sklearn digits", lambda: read_gzip(SKLEARN_DIGITS))
attempt("write venv", lambda: open(sys.prefix + "/evil.pth", "w").write("x"))
CVCOURSE = os.path.dirname(__import__("cvcourse").__file__)
attempt("write cvcourse", lambda: open(CVCOURSE + "/x.py", "w"))
attempt("write home", lambda: open(os.path.expanduser("~/notes.txt"), "w").write("x"))
attempt("flood tmp", lambda: open("/tmp/flood", "wb").write(b"x" * (80 * 2**20)))
attempt("tcp", lambda: socket.create_connection(("127.0.0.1", 22), timeout=2))
attempt("sleeper", lambda: subprocess.Popen(["sleep", "600"], start_new_session=True).pid)
attempt("tmp listing", lambda: os.listdir("/tmp"))
print(json.dumps(report))
"""


def _sklearn_digits() -> str:
    """``SKLEARN_DIGITS = <path>`` for the probe: scikit-learn's copy of the digits, found
    without importing it (a path that does not exist where it is not installed)."""
    spec = importlib.util.find_spec("sklearn")
    folder = list(spec.submodule_search_locations)[0] if spec else "/nonexistent/sklearn"
    return f"SKLEARN_DIGITS = {os.path.join(folder, 'datasets/data/digits.csv.gz')!r}\n"


@pytest.fixture(scope="module")
def probe_report(tmp_path_factory):
    if sandbox.bwrap_path() is None:
        pytest.fail("bubblewrap is missing: run bash scripts/install-sandbox.sh")
    root = tmp_path_factory.mktemp("sandbox")
    stubs = sandbox.make_stubs(root / "hidden")
    kernel_dir = Path(sandbox.new_kernel_dir())
    submission = root / "submission"
    submission.mkdir()
    (submission / "notebook.ipynb").write_text("{}")
    uid = sandbox.UID_BASE + os.getpid() if os.geteuid() == 0 else None
    if uid is not None:
        os.chown(kernel_dir, uid, uid)
    limits = sandbox.Limits(tmpfs_mb=64)
    cmd = sandbox.bwrap_command(
        sandbox.bwrap_path(),
        kernel_dir=os.fspath(kernel_dir),
        submission=os.fspath(submission),
        judge_socket=None,
        stubs={k: v for k, v in stubs.items()},
        limits=limits,
        uid=uid,
        inner=[sys.executable, "-c", f"REPO = {os.fspath(REPO)!r}\n{_sklearn_digits()}" + PROBE],
    )
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    yield report, uid
    sandbox.reap(uid=uid, cgroup=None, kernel_dir=os.fspath(kernel_dir))


def _blocked(report, name, *words):
    status, detail = report[name]
    assert status == "blocked", f"{name}: {detail}"
    for word in words:
        assert word in detail, f"{name}: {detail}"


def test_the_course_and_the_grader_are_not_there(probe_report):
    report, _ = probe_report
    _blocked(report, "course", "FileNotFoundError")
    _blocked(report, "grader source", "FileNotFoundError")
    _blocked(report, "import grader", "ModuleNotFoundError")


def test_the_references_cannot_be_imported_and_say_why(probe_report):
    report, _ = probe_report
    for name in ("import torch", "import cvcourse.kernels"):
        _blocked(report, name, "not available while your assignment is graded")
    # SciPy is no dependency of cvcourse: where it is installed its filters are stubbed, where
    # it is not the import fails anyway
    if importlib.util.find_spec("scipy") is not None:
        _blocked(report, "import scipy.signal", "not available while your assignment is graded")
    else:
        _blocked(report, "import scipy.signal", "No module named 'scipy'")


def test_the_student_library_and_training_digits_are_there_but_not_the_test_digits(probe_report):
    report, _ = probe_report
    assert report["import cvcourse.gradcheck"][0] == "ok"
    assert report["train digits"] == ["ok", "(1442,)"]
    _blocked(report, "test digits", "held out while your notebook is graded")
    # nor can the file be read around load_digits: it holds the training digits only
    assert report["digits file"] == ["ok", "(1442,)"]


def test_scikit_learns_copy_of_the_digits_is_empty(probe_report):
    report, _ = probe_report
    if importlib.util.find_spec("sklearn") is None:
        _blocked(report, "sklearn digits", "FileNotFoundError")
    else:
        assert report["sklearn digits"] == ["ok", "0"]


def test_the_system_is_read_only_and_home_and_tmp_are_private_and_bounded(probe_report):
    report, _ = probe_report
    _blocked(report, "write venv")
    _blocked(report, "write cvcourse")
    assert report["write home"][0] == "ok"
    _blocked(report, "flood tmp", "No space left on device")  # 80 MiB into a 64 MiB tmpfs
    assert report["tmp listing"][0] == "ok" and "cvgrade" not in report["tmp listing"][1]


def test_there_is_no_network(probe_report):
    report, _ = probe_report
    _blocked(report, "tcp")


def test_under_root_the_kernel_runs_as_a_uid_of_its_own_and_nothing_survives_reap(probe_report):
    report, uid = probe_report
    if uid is None:
        pytest.skip("not root: the kernel runs as the grader's own user in a user namespace")
    assert report["uid"] == ["ok", str(uid)]
    assert report["sleeper"][0] == "ok"
    sandbox.reap(uid=uid, cgroup=None, kernel_dir=None)
    time.sleep(0.2)
    survivors = [p.name for p in Path("/proc").iterdir() if p.name.isdigit() and _owner(p) == uid]
    assert survivors == []


def _owner(proc: Path) -> int | None:
    try:
        return proc.stat().st_uid
    except OSError:
        return None


def test_without_bubblewrap_grading_refuses_and_says_how_to_proceed(monkeypatch):
    monkeypatch.setattr(sandbox, "bwrap_path", lambda: None)
    monkeypatch.delenv("CVGRADE_BWRAP", raising=False)
    monkeypatch.delenv("CVGRADE_SANDBOX", raising=False)
    with pytest.raises(CourseError) as refused:
        require_sandbox()
    message = str(refused.value)
    assert "apt-get install bubblewrap" in message and "--unsafe-no-sandbox" in message


def test_cvgrade_autograde_refuses_on_a_machine_without_bubblewrap(tmp_path):
    from tests.grader.tiny_course import make_tiny_course, submit, tiny_notebook

    root = make_tiny_course(tmp_path / "course")
    submit(root, "alice", tiny_notebook())
    env = {k: v for k, v in os.environ.items() if not k.startswith("CVGRADE_")}
    env["PATH"] = os.path.dirname(sys.executable)  # no /usr/bin: no bwrap
    done = subprocess.run(
        [sys.executable, "-m", "grader.cli", "--course", os.fspath(root), "autograde", "tiny"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
    )
    assert done.returncode == 2
    assert "bubblewrap (bwrap) is not installed" in done.stderr
    assert not (root / "autograded").exists()


def test_stubs_are_made_whether_or_not_scipy_is_installed(tmp_path, monkeypatch):
    """With SciPy (and scikit-learn) nowhere to be found, make_stubs still hides torch and
    the reference kernels and holds out the test digits; it makes no SciPy stand-in, as
    ``import scipy.signal`` fails anyway."""
    real_package_path = sandbox._package_path
    absent = ("scipy", "sklearn")
    monkeypatch.setattr(
        sandbox,
        "_package_path",
        lambda name: None if name.split(".")[0] in absent else real_package_path(name),
    )
    empty_site = tmp_path / "site-packages"
    empty_site.mkdir()
    monkeypatch.setattr(sandbox, "_own_site_dirs", lambda: [os.fspath(empty_site)])
    monkeypatch.setattr(sandbox, "foreign_site_dirs", lambda: [])
    stubs = sandbox.make_stubs(tmp_path / "hidden")
    names = sorted(os.path.basename(os.fspath(stub)) for stub in stubs.values())
    assert not [n for n in names if "scipy" in n or "digits.csv" in n], names
    assert any(n.endswith("-torch") for n in names), names
    assert any(n.endswith("-cvcourse_kernels") for n in names), names
    assert "training-digits.npz" in names


def test_no_stubs_and_no_kernel_when_the_test_digits_cannot_be_held_out(tmp_path, monkeypatch):
    """A damaged digits file must stop the sandbox, not let a kernel start with the test
    split in view (make_stubs used to skip the hold-out silently)."""
    from cvcourse.data import digits

    damaged = tmp_path / "digits.npz"
    damaged.write_bytes(b"not an npz")
    monkeypatch.setattr(digits, "_digits_file", lambda: damaged)
    # the digits are read once per process (a failed read is not cached): read this file
    digits._read_all.cache_clear()
    with pytest.raises(sandbox.SandboxUnavailable, match="test split"):
        sandbox.make_stubs(tmp_path / "hidden")
