"""One course hub for the tests of tests/hub/, started by deploy/jupyterhub/hubctl.py.

It runs on a free port of 127.0.0.1 with its own folder under /tmp (course copy, exchange,
state), the demo's users (instructor, ta, student1..3) and student4 for the browser test.
The hub's software (scripts/install-hub.sh) is built if missing. The tests skip, saying
why, only where this machine cannot run a hub at all: not root (the hub starts each
server as its user), no npm (the proxy comes from npm), or no user namespaces (the
grader's sandbox needs them).
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.hub.driver import REPO, HubClient, load_hubctl

COURSE = "cvcourse"
STUDENTS = ["student1", "student2", "student3", "student4"]
STAFF = ["instructor", "ta"]


def _cannot_run_a_hub() -> str | None:
    if os.geteuid() != 0:
        return "needs root: the hub starts each user's server as that user"
    if (
        shutil.which("npm") is None
        and not (REPO / ".hub/proxy/node_modules/.bin/configurable-http-proxy").exists()
    ):
        return "npm is unavailable: the hub's proxy (configurable-http-proxy) comes from npm"
    if shutil.which("bwrap") is None:
        return "bubblewrap is missing (scripts/install-sandbox.sh): grading needs its sandbox"
    probe = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "bwrap",
         "--unshare-user", "--unshare-net", "--ro-bind", "/", "/", "true"],
        capture_output=True, text=True,
    )  # fmt: skip
    if probe.returncode != 0:
        return f"user namespaces are unavailable to unprivileged users: {probe.stderr.strip()}"
    return None


def _processes_of(uids: set[int]) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid in uids:
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


@pytest.fixture(scope="session")
def hub():
    """A running hub: (HubSettings, HubClient, Hub); stopped, with every server, at the end."""
    reason = _cannot_run_a_hub()
    if reason:
        pytest.skip(reason)
    install = subprocess.run(
        ["bash", str(REPO / "scripts" / "install-hub.sh")], capture_output=True, text=True
    )
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    hubctl = load_hubctl()
    base = Path(tempfile.mkdtemp(prefix="cvcourse-hub-", dir="/tmp"))
    os.chmod(base, 0o755)
    settings = hubctl.HubSettings(
        dir=base / "hub", port=hubctl.free_port(), students=STUDENTS, driver=True,
        receipt_interval=1.0,
    )  # fmt: skip
    # Users persist between runs; what an earlier run left in their homes must not.
    for user in STUDENTS + STAFF:
        try:
            home = Path(pwd.getpwnam(user).pw_dir)
        except KeyError:
            continue
        shutil.rmtree(home / COURSE, ignore_errors=True)
        shutil.rmtree(home / ".local/share/jupyter/nbgrader_cache", ignore_errors=True)
    hub = hubctl.Hub(settings)
    hub.start()
    client = HubClient(settings.url, settings.driver_token_file.read_text().strip())
    try:
        yield settings, client, hub
    finally:
        hub.stop()
        uids = {pwd.getpwnam(u).pw_uid for u in [*STUDENTS, *STAFF, settings.grader_user]}
        # The hub stops every server and service it started; anything left is killed by PID
        # and fails the run, so a leak is seen.
        left = _processes_of(uids)
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.5)
        shutil.rmtree(base, ignore_errors=True)
        assert not left, f"processes left after the hub stopped: {left}"


ASSIGNMENT = "a3_conv_pool"
NOTEBOOK = "conv_pool.ipynb"
PLANTED = "kernel-flipped"  # grader/term/planted/a3_conv_pool.py
# What each student of the cycle submits.
ROLES = {"student1": "solution", "student2": PLANTED, "student3": "blank"}


@pytest.fixture(scope="session")
def cycle(hub):
    """The whole course cycle through the hub, as its users; (settings, client, Cycle)."""
    from tests.hub.driver import fillings, run_cycle

    settings, client, _ = hub
    receipts = settings.course_root / "receipts" / ASSIGNMENT

    def receipts_seen(n: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while len(list(receipts.glob("*/receipt.json"))) < n:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the receipt watcher took fewer than {n} receipts")
            time.sleep(0.2)

    done = run_cycle(
        client,
        course=COURSE,
        course_root=str(settings.course_root),
        assignment=ASSIGNMENT,
        notebook=NOTEBOOK,
        fillings=fillings(REPO / "course" / "assignments" / ASSIGNMENT / NOTEBOOK, ROLES),
        receipts_seen=receipts_seen,
    )
    done.receipts = [json.loads(p.read_text()) for p in receipts.glob("*/receipt.json")]
    print("hub cycle, seconds per step:", {k: round(v, 1) for k, v in done.seconds.items()})
    return settings, client, done
