"""Set up and run a course hub: ``make hub`` (the local demo), tests/hub/ and bench/bench_hub.py.

    python deploy/jupyterhub/hubctl.py run [--dir DIR] [--port 8000] [--students 3]

Run as root (the hub starts each user's server as that user). What it does, each step
idempotent:

- creates the system users it is told of if missing (``useradd -m``; homes made 0700:
  Debian's default 0755 lets every student read every other student's notebooks), and the
  grader user ``grader-<course>``;
- copies the repository's course (sources, lectures, ``nbgrader_config.py``) into
  ``DIR/course``, owned by the grader user, mode 0700 (it holds the solutions, the
  gradebook and the receipts), and adds the hub's exchange to its ``nbgrader_config.py``;
  an existing copy is kept (it holds the gradebook);
- makes the exchange ``DIR/exchange`` (mode 1777, as nbgrader needs) and the Jupyter
  config folders every server reads (``DIR/etc/jupyter-student``, ``DIR/etc/jupyter-grader``);
- makes the TA environment (``.hub/venv-grader``: hidden checks, solutions' checks) readable
  by the grader user only;
- writes the settings ``jupyterhub_config.py`` reads (``DIR/state/settings.json``, root only)
  and a demo password (``DIR/state/password``);
- starts JupyterHub in its own session (so a Ctrl-C in the terminal reaches only this
  script), waits until it answers, prints the URL and the logins, and on Ctrl-C or SIGTERM
  stops the hub (which stops every server and service it started) and then the proxy, by
  the PIDs in ``DIR/state``.

The software (venvs, proxy) comes from ``scripts/install-hub.sh`` (``make hub`` runs it).
Only the Python standard library is used here, so any Python 3.11 runs this file.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SOFTWARE = Path(os.environ.get("CVHUB_HOME", REPO / ".hub"))
DEFAULT_DIR = SOFTWARE / "demo"
COURSE = "cvcourse"
# What of the checkout holds solutions, hidden checks or graded work: students log in to
# this machine, so none of it may be readable to other users (their servers need only .hub/).
CHECKOUT_PRIVATE = ("course", "grader", "tests", ".git", "artifacts", "build")
# nbgrader's generated folders and anything a grader run left in the repository's course:
# never copied into a hub's course.
_GENERATED = (
    "release",
    "submitted",
    "autograded",
    "feedback",
    "downloaded",
    "gradebook.db",
    "reports",
    "grading",
    "receipts",
    ".ipynb_checkpoints",
    "__pycache__",
)


class HubError(RuntimeError):
    """The hub could not be set up or did not start; the message says why."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_user(name: str) -> pwd.struct_passwd:
    """The system user ``name``, created (with a home of mode 0700) if missing."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        subprocess.run(
            ["useradd", "--create-home", "--user-group", "--shell", "/bin/bash", name],
            check=True,
            capture_output=True,
        )
        entry = pwd.getpwnam(name)
    home = Path(entry.pw_dir)
    if home.is_dir() and home.stat().st_uid == entry.pw_uid:
        os.chmod(home, 0o700)
    return entry


def _chown_tree(path: Path, uid: int, gid: int) -> None:
    os.chown(path, uid, gid)
    for parent, dirs, files in os.walk(path):
        for name in dirs + files:
            os.chown(os.path.join(parent, name), uid, gid, follow_symlinks=False)


@dataclass
class HubSettings:
    """Everything one hub needs; ``jupyterhub_config.py`` reads it as JSON."""

    dir: Path
    port: int = 8000
    ip: str = "127.0.0.1"
    course: str = COURSE
    instructors: list[str] = field(default_factory=lambda: ["instructor"])
    tas: list[str] = field(default_factory=lambda: ["ta"])
    students: list[str] = field(default_factory=lambda: [f"student{i}" for i in (1, 2, 3)])
    driver: bool = False  # a service token that tests and the benchmark drive the hub with
    receipt_interval: float = 2.0
    log_level: str = "INFO"

    @property
    def state(self) -> Path:
        return self.dir / "state"

    @property
    def course_root(self) -> Path:
        return self.dir / "course"

    @property
    def exchange(self) -> Path:
        return self.dir / "exchange"

    @property
    def url(self) -> str:
        return f"http://{self.ip}:{self.port}"

    @property
    def grader_user(self) -> str:
        return f"grader-{self.course}"

    @property
    def password_file(self) -> Path:
        return self.state / "password"

    @property
    def driver_token_file(self) -> Path:
        return self.state / "driver-token"

    @property
    def settings_file(self) -> Path:
        return self.state / "settings.json"


def close_checkout() -> None:
    """Take other users' access away from the checkout's private folders
    (:data:`CHECKOUT_PRIVATE`), saying so; the owner's and group's stay."""
    for name in CHECKOUT_PRIVATE:
        path = REPO / name
        if path.exists() and path.stat().st_mode & 0o007:
            os.chmod(path, path.stat().st_mode & ~0o007)
            print(f"hub: {path} is no longer readable by other users (students log in here)")


def setup(s: HubSettings) -> dict:
    """Users, folders, config and settings for the hub ``s`` (idempotent); the settings."""
    if os.geteuid() != 0:
        raise HubError("the hub runs as root: it starts each user's server as that user")
    for tool in ("venv/bin/jupyterhub", "venv-grader/bin/cvgrade"):
        if not (SOFTWARE / tool).exists():
            raise HubError(f"{SOFTWARE / tool} is missing: run scripts/install-hub.sh first")
    proxy = SOFTWARE / "proxy" / "node_modules" / ".bin" / "configurable-http-proxy"
    if not proxy.exists():
        raise HubError(f"{proxy} is missing: run scripts/install-hub.sh first")

    for user in [*s.instructors, *s.tas, *s.students]:
        ensure_user(user)
    close_checkout()
    grader = ensure_user(s.grader_user)

    s.dir.mkdir(parents=True, exist_ok=True)
    os.chmod(s.dir, 0o755)
    s.state.mkdir(exist_ok=True)
    os.chmod(s.state, 0o700)
    s.exchange.mkdir(exist_ok=True)
    os.chmod(s.exchange, 0o1777)

    # The TA environment holds the hidden checks: the grader user's group may read it.
    grader_venv = SOFTWARE / "venv-grader"
    os.chown(grader_venv, 0, grader.pw_gid)
    os.chmod(grader_venv, 0o750)

    if not (s.course_root / "nbgrader_config.py").exists():
        shutil.copytree(REPO / "course", s.course_root, ignore=shutil.ignore_patterns(*_GENERATED))
        with open(s.course_root / "nbgrader_config.py", "a", encoding="utf-8") as f:
            f.write(
                "\n# Added by deploy/jupyterhub/hubctl.py: the hub's exchange.\n"
                f"c.Exchange.root = {os.fspath(s.exchange)!r}\n"
                "c.Exchange.path_includes_course = True\n"
            )
        _chown_tree(s.course_root, grader.pw_uid, grader.pw_gid)
    os.chmod(s.course_root, 0o700)

    etc = s.dir / "etc"
    template = (HERE / "nbgrader_config.py").read_text(encoding="utf-8")
    for name, membership in (("jupyter-student", "hub"), ("jupyter-grader", "none")):
        folder = etc / name
        folder.mkdir(parents=True, exist_ok=True)
        text = template.replace("@COURSE@", s.course).replace("@EXCHANGE@", str(s.exchange))
        (folder / "nbgrader_config.py").write_text(text.replace("@MEMBERSHIP@", membership))
    # Students: no formgrader and no assignment-creation tools, in the server or in Lab.
    student = etc / "jupyter-student"
    (student / "jupyter_server_config.json").write_text(
        json.dumps(
            {"ServerApp": {"jpserver_extensions": {"nbgrader.server_extensions.formgrader": False}}}
        )
    )
    (student / "labconfig").mkdir(exist_ok=True)
    (student / "labconfig" / "page_config.json").write_text(
        json.dumps(
            {
                "disabledExtensions": {
                    "@jupyter/nbgrader:formgrader": True,
                    "@jupyter/nbgrader:create-assignment": True,
                }
            }
        )
    )
    shutil.copyfile(
        HERE / "grader_server_config.py", etc / "jupyter-grader" / "jupyter_server_config.py"
    )
    for path in [etc, *etc.rglob("*")]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)

    if not s.password_file.exists():
        s.password_file.write_text(secrets.token_urlsafe(9) + "\n")
    if s.driver and not s.driver_token_file.exists():
        s.driver_token_file.write_text(secrets.token_hex(32) + "\n")
    settings = {
        "course": s.course,
        "venv": os.fspath(SOFTWARE / "venv"),
        "grader_venv": os.fspath(grader_venv),
        "state_dir": os.fspath(s.state),
        "config_dir": os.fspath(etc),
        "course_root": os.fspath(s.course_root),
        "ip": s.ip,
        "port": s.port,
        "hub_port": free_port(),
        "proxy_api_port": free_port(),
        "service_port": free_port(),
        "proxy_command": os.fspath(proxy),
        "instructors": s.instructors,
        "tas": s.tas,
        "students": s.students,
        "authenticator": "dummy",
        "dummy_password_file": os.fspath(s.password_file),
        "driver_token_file": os.fspath(s.driver_token_file) if s.driver else "",
        "receipt_interval": s.receipt_interval,
        "log_level": s.log_level,
    }
    s.settings_file.write_text(json.dumps(settings, indent=1))
    return settings


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is not running.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][0] != "Z"
    except OSError:
        return False


def _stop_pid(pid: int, timeout: float) -> None:
    if not _alive(pid):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)


class Hub:
    """One running hub: ``start()`` (after :func:`setup`), ``stop()``; a context manager."""

    def __init__(self, settings: HubSettings):
        self.s = settings
        self.process: subprocess.Popen | None = None
        self.log_path = settings.state / "hub.log"

    def start(self, timeout: float = 120) -> None:
        setup(self.s)
        env = {
            "PATH": f"{SOFTWARE / 'venv' / 'bin'}:/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "HOME": "/root",
            "CVHUB_SETTINGS": os.fspath(self.s.settings_file),
        }
        log = open(self.log_path, "ab")  # noqa: SIM115 (kept open while the hub runs)
        self.process = subprocess.Popen(
            [
                os.fspath(SOFTWARE / "venv" / "bin" / "jupyterhub"),
                "-f",
                os.fspath(HERE / "jupyterhub_config.py"),
            ],
            cwd=self.s.state,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C in the terminal reaches only hubctl
        )
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise HubError(f"the hub exited ({self.process.returncode}):\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.s.url}/hub/api/", timeout=5) as reply:
                    if reply.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise HubError(f"the hub did not answer in {timeout:g} s:\n{self.log_tail()}")
            time.sleep(0.5)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """Stop the hub (it stops the servers and services it started), then the proxy."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        # The proxy outlives the hub when the hub dies hard: stop it by its PID.
        pid_file = self.s.state / "proxy.pid"
        try:
            pid = int(pid_file.read_text().strip())
        except (OSError, ValueError):
            return
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            cmdline = b""
        if b"configurable-http-proxy" in cmdline:
            _stop_pid(pid, 10)
        pid_file.unlink(missing_ok=True)

    def __enter__(self) -> Hub:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _run(args) -> int:
    students = [f"student{i}" for i in range(1, args.students + 1)]
    s = HubSettings(dir=Path(args.dir).resolve(), port=args.port, students=students)
    hub = Hub(s)
    stop_requested = []

    def on_signal(signum, frame):
        stop_requested.append(signum)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        hub.start()
    except HubError as exc:
        print(f"hubctl: {exc}", file=sys.stderr)
        hub.stop()
        return 1
    password = s.password_file.read_text().strip()
    print(f"\nThe course hub is running at {s.url}/  (log: {hub.log_path})")
    print(f"  instructors: {', '.join(s.instructors)}   TAs: {', '.join(s.tas)}")
    print(f"  students:    {', '.join(s.students)}")
    print(f"  password (every demo user, DummyAuthenticator): {password}")
    print(f"  formgrader:  {s.url}/services/{s.course}/  (instructors and TAs)")
    print("Press Ctrl-C to stop the hub and the proxy.", flush=True)
    while not stop_requested and hub.process.poll() is None:
        time.sleep(0.5)
    if not stop_requested:
        print(
            f"hubctl: the hub exited ({hub.process.returncode}):\n{hub.log_tail()}", file=sys.stderr
        )
    print("stopping the hub and the proxy ...", flush=True)
    hub.stop()
    print("stopped.")
    return 0 if stop_requested else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="set up and start the hub; Ctrl-C stops it")
    p.add_argument("--dir", default=os.fspath(DEFAULT_DIR), help="the hub's folder")
    p.add_argument("--port", type=int, default=8000, help="the public port on 127.0.0.1")
    p.add_argument("--students", type=int, default=3, help="demo students student1..N")
    args = parser.parse_args(argv)
    return _run(args)


if __name__ == "__main__":
    sys.exit(main())
