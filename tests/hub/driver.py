"""Drive a running course hub through its REST API, as its real users (tests/hub, bench).

The hub is started by ``deploy/jupyterhub/hubctl.py`` with a driver service token. The
driver only starts servers and issues each user a token of their own; every step of the
course is then a request made with that user's token, so the hub's roles decide what
each user may reach:

- a student's nbgrader Assignments endpoints, ``/user/<name>/assignments/<action>``, and
  Jupyter's contents API on their own server;
- an instructor's or TA's terminal in the formgrader service, ``/services/<course>/``,
  where ``cvgrade`` runs as the grader user.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import re
import sys
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[2]
HUBCTL = REPO / "deploy" / "jupyterhub" / "hubctl.py"


def load_hubctl():
    """deploy/jupyterhub/hubctl.py as a module (it is a script, not a package)."""
    if "cvcourse_hubctl" in sys.modules:
        return sys.modules["cvcourse_hubctl"]
    spec = importlib.util.spec_from_file_location("cvcourse_hubctl", HUBCTL)
    module = importlib.util.module_from_spec(spec)
    sys.modules["cvcourse_hubctl"] = module
    spec.loader.exec_module(module)
    return module


class HubClient:
    """The driver's view of a hub at ``url`` (service token ``token``)."""

    def __init__(self, url: str, token: str):
        self.url = url.rstrip("/")
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"token {token}"

    def api(self, method: str, path: str, **kw) -> requests.Response:
        return self.http.request(method, f"{self.url}/hub/api{path}", timeout=60, **kw)

    def user(self, name: str) -> UserSession:
        """A session acting as ``name``, with a fresh token of theirs."""
        reply = self.api("POST", f"/users/{name}/tokens", json={"note": "cvcourse hub test"})
        reply.raise_for_status()
        return UserSession(self, name, reply.json()["token"])

    def start_server(self, name: str, timeout: float = 180) -> float:
        """Start ``name``'s server; seconds until the hub reports it ready."""
        began = time.monotonic()
        reply = self.api("POST", f"/users/{name}/server")
        if reply.status_code not in (201, 202, 400):  # 400: already running
            raise RuntimeError(f"starting {name}'s server: {reply.status_code} {reply.text}")
        while time.monotonic() - began < timeout:
            model = self.api("GET", f"/users/{name}").json()
            server = model.get("servers", {}).get("")
            if server and server.get("ready"):
                return time.monotonic() - began
            time.sleep(0.25)
        raise RuntimeError(f"{name}'s server was not ready in {timeout:g} s")

    def stop_server(self, name: str, timeout: float = 60) -> None:
        self.api("DELETE", f"/users/{name}/server")
        began = time.monotonic()
        while time.monotonic() - began < timeout:
            if not self.api("GET", f"/users/{name}").json().get("servers"):
                return
            time.sleep(0.25)

    def server_pid(self, name: str) -> int | None:
        model = self.api("GET", f"/users/{name}").json()
        state = (model.get("servers", {}).get("") or {}).get("state") or {}
        return state.get("pid")


class UserSession:
    """Requests made as one hub user, with that user's own token."""

    def __init__(self, hub: HubClient, name: str, token: str):
        self.hub = hub
        self.name = name
        self.token = token
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"token {token}"

    def get(self, path: str, **kw) -> requests.Response:
        return self.http.get(f"{self.hub.url}{path}", timeout=120, **kw)

    def post(self, path: str, **kw) -> requests.Response:
        return self.http.post(f"{self.hub.url}{path}", timeout=300, **kw)

    def put(self, path: str, **kw) -> requests.Response:
        return self.http.put(f"{self.hub.url}{path}", timeout=120, **kw)

    # -- a student's own server -----------------------------------------------------------
    def assignments(self, action: str, course: str, assignment: str) -> list | dict:
        """nbgrader's Assignments tab: ``fetch``, ``submit`` or ``fetch_feedback``."""
        reply = self.post(
            f"/user/{self.name}/assignments/{action}",
            params={"course_id": course, "assignment_id": assignment},
        )
        reply.raise_for_status()
        result = reply.json()
        if isinstance(result, dict) and result.get("success") is False:
            raise RuntimeError(f"{self.name}: {action} failed: {result.get('value')}")
        return result

    def contents(self, path: str, server: str | None = None) -> requests.Response:
        base = server or f"/user/{self.name}"
        return self.get(f"{base}/api/contents/{path}", params={"content": "1"})

    def read_notebook(self, path: str) -> dict:
        reply = self.contents(path)
        reply.raise_for_status()
        return reply.json()["content"]

    def write_notebook(self, path: str, notebook: dict) -> None:
        reply = self.put(
            f"/user/{self.name}/api/contents/{path}",
            json={"type": "notebook", "format": "json", "content": notebook},
        )
        reply.raise_for_status()

    # -- a terminal of the formgrader service ------------------------------------------------
    def terminal(self, service: str, command: str, timeout: float = 900) -> tuple[int, str]:
        """Run ``command`` in a new terminal of ``service`` (as its user); exit code, output."""
        base = f"/services/{service}"
        reply = self.post(f"{base}/api/terminals")
        reply.raise_for_status()
        name = reply.json()["name"]
        try:
            return asyncio.run(
                self._run_in_terminal(f"{base}/terminals/websocket/{name}", command, timeout)
            )
        finally:
            self.http.delete(f"{self.hub.url}{base}/api/terminals/{name}", timeout=60)

    async def _run_in_terminal(self, path: str, command: str, timeout: float) -> tuple[int, str]:
        from tornado.httpclient import HTTPRequest
        from tornado.websocket import websocket_connect

        url = self.hub.url.replace("http://", "ws://", 1) + path
        request = HTTPRequest(url, headers={"Authorization": f"token {self.token}"})
        ws = await websocket_connect(request)
        done = re.compile(r"__CVHUB_EXIT_(\d+)__")
        # The echo of the command line shows "$?", never digits: only the real exit matches.
        await ws.write_message(json.dumps(["stdin", f"{command}; echo __CVHUB_EXIT_$?__\r"]))
        output: list[str] = []
        deadline = time.monotonic() + timeout
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{command!r} did not finish:\n{''.join(output)[-3000:]}")
                message = await asyncio.wait_for(ws.read_message(), left)
                if message is None:
                    raise RuntimeError(f"the terminal closed:\n{''.join(output)[-3000:]}")
                kind, *data = json.loads(message)
                if kind == "stdout":
                    output.append(data[0])
                    found = done.search("".join(output[-3:]))
                    if found:
                        return int(found.group(1)), "".join(output)
        finally:
            ws.close()


# -- the whole course cycle ---------------------------------------------------------------


class Cycle:
    """What one run of the course cycle did: seconds per step, spawn seconds per user, the
    ``cvgrade`` outputs and each student's feedback page."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self.spawn: dict[str, float] = {}
        self.outputs: dict[str, str] = {}
        self.feedback: dict[str, str] = {}
        # The grader-side receipts as they stood when the cycle ended (later tests, such as
        # the browser one, submit more).
        self.receipts: list[dict] = []

    def timed(self, step: str):
        cycle = self

        class _Timer:
            def __enter__(self):
                self.began = time.monotonic()

            def __exit__(self, *exc):
                cycle.seconds[step] = cycle.seconds.get(step, 0.0) + time.monotonic() - self.began

        return _Timer()


def cvgrade_in_service(user: UserSession, course: str, course_root: str, args: str) -> str:
    """``cvgrade --course <root> <args>`` in a terminal of the formgrader service, as
    ``user``; its output (raises if it fails)."""
    code, output = user.terminal(course, f"cvgrade --course {course_root} {args}")
    if code != 0:
        raise RuntimeError(f"cvgrade {args} failed ({code}) as {user.name}:\n{output[-4000:]}")
    return output


def run_cycle(
    client: HubClient,
    *,
    course: str,
    course_root: str,
    assignment: str,
    notebook: str,
    fillings: dict,
    instructor: str = "instructor",
    ta: str = "ta",
    receipts_seen=None,
    jobs: int = 1,
) -> Cycle:
    """Release -> each student starts a server, fetches, fills (``fillings[student](nb)``
    gives the notebook to submit) and submits -> the TA collects, autogrades and releases
    feedback -> each student fetches their feedback. ``receipts_seen(n)`` (optional) is
    called to wait until the grader's watcher has receipted ``n`` submissions."""
    cycle = Cycle()
    students = list(fillings)
    with cycle.timed("release"):
        teacher = client.user(instructor)
        cycle.outputs["release"] = cvgrade_in_service(
            teacher, course, course_root, f"release {assignment} --exchange"
        )
    sessions = {}
    for student in students:
        with cycle.timed("spawn"):
            cycle.spawn[student] = client.start_server(student)
        sessions[student] = client.user(student)
    path = f"{course}/{assignment}/{notebook}"
    for student in students:
        s = sessions[student]
        with cycle.timed("fetch"):
            s.assignments("fetch", course, assignment)
        with cycle.timed("fill"):
            s.write_notebook(path, fillings[student](s.read_notebook(path)))
        with cycle.timed("submit"):
            s.assignments("submit", course, assignment)
    if receipts_seen is not None:
        with cycle.timed("receipts"):
            receipts_seen(len(students))
    grader = client.user(ta)
    with cycle.timed("collect"):
        cycle.outputs["collect"] = cvgrade_in_service(
            grader, course, course_root, f"collect {assignment} --exchange"
        )
    with cycle.timed("autograde"):
        cycle.outputs["autograde"] = cvgrade_in_service(
            grader, course, course_root, f"autograde {assignment} --jobs {jobs}"
        )
    with cycle.timed("feedback"):
        cycle.outputs["feedback"] = cvgrade_in_service(
            grader, course, course_root, f"feedback {assignment} --release"
        )
    for student in students:
        s = sessions[student]
        with cycle.timed("fetch_feedback"):
            s.assignments("fetch_feedback", course, assignment)
            listing = s.contents(f"{course}/{assignment}/feedback").json()["content"]
            pages = []
            for folder in listing:
                for item in s.contents(folder["path"]).json()["content"]:
                    if item["name"].endswith(".html"):
                        pages.append(s.contents(item["path"]).json()["content"])
            if len(pages) != 1:
                raise RuntimeError(f"{student} fetched {len(pages)} feedback pages, not 1")
            cycle.feedback[student] = pages[0]
    return cycle


def fillings(source_path: Path, roles: dict[str, str]) -> dict:
    """student -> function turning the fetched notebook (a dict) into what that student
    submits. A role is ``"solution"`` (the instructor's solution cells), ``"blank"`` (the
    notebook as fetched) or the name of a planted mistake of the assignment
    (grader/term/planted/)."""
    import nbformat

    from grader.notebooks import load, with_mistake
    from grader.term.planted import mistakes_for
    from grader.term.simulate import student_version

    source = load(source_path)
    assignment = source_path.parent.name
    mistakes = {m.student: m for m in mistakes_for(assignment)}

    def solution(fetched):
        return student_version(source, nbformat.from_dict(fetched))

    def make(role: str):
        if role == "solution":
            return solution
        if role == "blank":
            return lambda fetched: fetched
        mistake = mistakes[role]
        return lambda fetched: with_mistake(solution(fetched), mistake)

    return {student: make(role) for student, role in roles.items()}


def server_memory_mib(pid: int) -> float:
    """Resident memory of a server and its children (MiB), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(") ", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        todo.extend(children.get(current, []))
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024
