"""The hostile-submission suite: a class of attackers graded through ``cvgrade`` with the
sandbox, beside honest submissions that must keep full marks.

Every attack of ``hostile_submissions.ATTACKS`` (module patching, IPython hooks, delegation,
reading and writing what is hidden, kernel injection, lingering processes, floods, crashes,
judge-protocol abuse, metadata tampering) is one submission. In a scratch course holding
assignment 3 and the tiny assignment, they are graded in three batches of the real
pipeline, ``cvgrade autograde --jobs 2 --timeout 20``:

- batch A, ``tiny``: the pipeline attacks, with two victims graded after them;
- batch B, ``a3_conv_pool``: the attacks on the checks, with four correct submissions (which
  are also later victims of batch A's persistence attempts);
- batch C, ``tiny`` again, the two victims only, in a fresh ``cvgrade``: whatever batch A
  managed to leave behind (a changed config, checks, gradebook, venv) would act now.

The tests then compare each submission's per-cell scores in the gradebook with the grade a
secure grader gives, read what the probing attacks reported from their autograded
notebooks, look for anything they started or wrote that outlived grading, and check that
an LMS zip with path-traversal names puts nothing outside ``submitted/``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest

from grader.notebooks import load, points
from grader.pipeline import sandbox
from grader.pipeline.autograde import GradingRecord
from grader.pipeline.course import Course
from grader.pipeline.gradebook import cell_scores
from grader.pipeline.sandbox_kernel import kernel_home
from tests.grader.hostile_submissions import (
    A3,
    ATTACKS,
    CORRECT,
    HONEST_LOOPS_AVGPOOL,
    HONEST_LOOPS_CONV,
    HONEST_LOOPS_HELPERS,
    HONEST_LOOPS_MAXPOOL,
    PERSIST_TARGETS,
    REPORT_PREFIX,
    SECRET_VARIABLE,
    TINY,
    ZIP_ENTRIES,
    ZIP_STUDENTS,
    Attack,
    Context,
    delegating_cell,
)
from tests.grader.tiny_course import make_tiny_course

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
CVGRADE = [sys.executable, "-m", "grader.cli"]
JOBS, TIMEOUT, MEMORY_MB = 2, 20, 2048
GRADING = ["--jobs", str(JOBS), "--timeout", str(TIMEOUT), "--memory-mb", str(MEMORY_MB)]
LIMITS = sandbox.Limits(memory_mb=MEMORY_MB)
MiB = 2**20
VICTIMS = ("zz-victim", "zz-victim-blank")


@dataclass
class Run:
    """Everything the tests look at, gathered once."""

    course: Course
    ctx: Context
    base: Path
    full: dict[str, dict[str, float]]
    scores: dict[tuple[str, str, str], float | None] = field(default_factory=dict)
    messages: dict[tuple[str, str, str], str] = field(default_factory=dict)
    ungraded: dict[tuple[str, str], str] = field(default_factory=dict)
    records: dict[tuple[str, str], GradingRecord] = field(default_factory=dict)
    commands: dict[str, subprocess.CompletedProcess] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    survivors: dict[str, list[str]] = field(default_factory=dict)
    hashes_before: dict[str, str] = field(default_factory=dict)
    victims_later: dict[tuple[str, str], float | None] = field(default_factory=dict)

    def observed(self, attack: Attack) -> dict[str, float | None]:
        return {
            c: self.scores.get((attack.assignment, attack.student, c))
            for c in self.full[attack.assignment]
        }

    def autograded(self, assignment: str, student: str) -> nbformat.NotebookNode:
        (path,) = self.course.step_dir("autograded", student, assignment).glob("*.ipynb")
        return nbformat.read(path, as_version=4)

    def judge_messages(self, assignment: str, student: str) -> dict[str, str]:
        try:
            record = self.autograded(assignment, student).metadata.get("cvgrade_judge", {})
        except (ValueError, OSError):  # no autograded notebook
            return {}
        return {part: r.get("message", "") for part, r in record.get("parts", {}).items()}

    def reports(self, assignment: str, student: str) -> dict[str, dict]:
        found = {}
        for c in self.autograded(assignment, student).cells:
            for output in c.get("outputs", []):
                if output.get("output_type") != "stream":
                    continue
                for line in output.get("text", "").splitlines():
                    if line.startswith(REPORT_PREFIX):
                        report = json.loads(line[len(REPORT_PREFIX) :])
                        found[report["probe"]] = report
        return found

    def report(self, assignment: str, student: str, probe: str) -> dict:
        found = self.reports(assignment, student)
        assert probe in found, (
            f"{student} printed no {probe!r} report (its cell did not run to the end): "
            f"{getattr(self.records.get((assignment, student)), 'notes', None)}"
        )
        return found[probe]


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------


def _cvgrade(run: Run, name: str, *args: str, env: dict) -> None:
    started = time.perf_counter()
    run.commands[name] = subprocess.run(
        [*CVGRADE, "--course", str(run.course.root), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
    )
    run.seconds[name] = time.perf_counter() - started
    log = run.base / (re.sub(r"\W+", "-", name).strip("-") + ".log")
    command = run.commands[name]
    log.write_text(f"{command.args}\n{command.stdout}\n--- stderr ---\n{command.stderr}")


def _sha(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        return f"unreadable: {type(exc).__name__}"


def protected_files(run: Run) -> list[Path]:
    """Files no submission may change (the writers and persisters try)."""
    root, repo, cv = run.course.root, REPO, run.ctx.cvcourse
    return [
        root / "nbgrader_config.py",
        root / "checks" / "tiny.py",
        root / "assignments" / TINY / "tiny.ipynb",
        root / "release" / TINY / "tiny.ipynb",
        root / "assignments" / A3 / "conv_pool.ipynb",
        root / "release" / A3 / "conv_pool.ipynb",
        root / "submitted" / "zz-victim" / TINY / "tiny.ipynb",
        cv / "judge_link.py",
        repo / "grader" / "checks" / "harness.py",
        repo / "course" / "nbgrader_config.py",
        Path(run.ctx.kernel_home) / "kernels" / "cvcourse-grader" / "kernel.json",
    ]


def created_paths(ctx: Context) -> list[Path]:
    """Files outside the sandbox the persistence attack tries to create (host paths)."""
    return [
        Path(ctx.fill(path)) for _, path, how in PERSIST_TARGETS if how in ("create", "create-pth")
    ]


def _token_files(run: Run) -> list[Path]:
    """Every file outside the course named after this run's token (none may exist)."""
    token = run.ctx.token
    found = [
        p for p in created_paths(run.ctx) if p.exists() and token in p.read_text(errors="replace")
    ]
    for folder in {Path("/tmp"), Path("/dev/shm"), run.base, run.base.parent, REPO}:
        found += [p for p in folder.glob(f"*{token}*")]
    for folder in (REPO / "grader", run.ctx.cvcourse, Path(run.ctx.kernel_home)):
        found += [p for p in folder.rglob(f"*{token}*")]
    found += [p for p in Path(run.ctx.site).glob(f"*{token}*")]
    return sorted(set(found))


def _processes(uids: set[int], token: str) -> list[str]:
    """Processes of the kernels' uids, or whose command line carries the token."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
            command = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        match = re.search(r"^Uid:\s+(\d+)", status, re.M)
        uid = int(match.group(1)) if match else -1
        text = command.decode(errors="replace")
        if uid in uids or token in text:
            found.append(f"pid {entry} uid {uid}: {text[:120]}")
    return found


def _kernel_uids(run: Run, assignment: str) -> dict[int, str]:
    """The sandbox uid of every kernel that reported, and whose it was."""
    uids = {}
    for attack in ATTACKS:
        if attack.assignment != assignment:
            continue
        try:
            reports = run.reports(assignment, attack.student)
        except (ValueError, OSError):
            continue
        uids.update({int(r["uid"]): attack.student for r in reports.values() if "uid" in r})
    return uids


def _snapshot(run: Run, assignment: str) -> None:
    for row in cell_scores(run.course, [assignment]):
        run.scores[(assignment, row.student, row.cell)] = row.score
        run.messages[(assignment, row.student, row.cell)] = row.message
        if row.ungraded:
            run.ungraded[(assignment, row.student)] = row.ungraded
    for record in GradingRecord.load_all(run.course, assignment):
        run.records[(assignment, record.student)] = record


def _write_submissions(run: Run) -> None:
    for attack in ATTACKS:
        folder = run.course.step_dir("submitted", attack.student, attack.assignment)
        folder.mkdir(parents=True, exist_ok=True)
        (name,) = run.course.notebook_names(attack.assignment)
        content = attack.build(run.ctx)
        path = folder / f"{name}.ipynb"
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            with warnings.catch_warnings():  # some are invalid on purpose (duplicate ids)
                warnings.simplefilter("ignore")
                nbformat.write(content, path)
        (folder / "timestamp.txt").write_text("2026-12-04 12:00:00.000000 UTC")
        for file_name, text in attack.files:
            (folder / file_name).write_text(text)


def _zip(run: Run) -> Path:
    archive = run.base / "lms.zip"
    solution = nbformat.writes(run.ctx.solution(TINY))
    blank = nbformat.writes(run.ctx.released(TINY))
    with zipfile.ZipFile(archive, "w") as zf:
        for name, what in ZIP_ENTRIES.items():
            zf.writestr(run.ctx.fill(name), solution if what == "solution" else blank)
    return archive


def _summary(run: Run) -> str:
    lines = [
        "| submission | attack class | expected | observed | stopped by |",
        "| --- | --- | --- | --- | --- |",
    ]
    for attack in ATTACKS:
        full = run.full[attack.assignment]
        expected = sum(attack.expected(full).values())
        observed = run.observed(attack)
        total = "ungraded" if None in observed.values() else f"{sum(observed.values()):g}"
        wrong = [
            f"{c} {observed[c]}≠{v:g}" for c, v in attack.expected(full).items() if observed[c] != v
        ]
        lines.append(
            f"| {attack.student} | {attack.kind} | {expected:g}/{sum(full.values()):g} | "
            f"{total}{' (' + ', '.join(wrong) + ')' if wrong else ''} | {attack.stopped_by} |"
        )
    lines.append("")
    lines += [f"{name}: {seconds:.1f} s" for name, seconds in run.seconds.items()]
    return "\n".join(lines)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    if sandbox.bwrap_path() is None:
        pytest.fail("bubblewrap is missing: run bash scripts/install-sandbox.sh")
    base = tmp_path_factory.mktemp("hostile")
    root = make_tiny_course(base / "course")
    shutil.copytree(
        REPO / "course" / "assignments" / A3,
        root / "assignments" / A3,
        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"),
    )
    token = secrets.token_hex(8)
    ctx = Context(root, REPO, token, kernel_home())
    env = dict(os.environ, **{SECRET_VARIABLE: token})
    run = Run(
        Course(root),
        ctx,
        base,
        full={A3: points(load(root / "assignments" / A3 / "conv_pool.ipynb"))},
    )
    run.full[TINY] = points(load(root / "assignments" / TINY / "tiny.ipynb"))
    started = time.perf_counter()
    _cvgrade(run, "release", "release", A3, TINY, env=env)
    assert run.commands["release"].returncode == 0, run.commands["release"].stderr
    _write_submissions(run)
    run.hashes_before = {str(p): _sha(p) for p in protected_files(run)}
    _cvgrade(run, "collect", "collect", TINY, str(_zip(run)), env=env)

    _cvgrade(run, "batch A (tiny)", "autograde", TINY, *GRADING, env=env)
    _snapshot(run, TINY)
    run.survivors["after batch A"] = _processes(set(_kernel_uids(run, TINY)), token)
    _cvgrade(run, "batch B (a3)", "autograde", A3, *GRADING, env=env)
    _snapshot(run, A3)
    run.survivors["after batch B"] = _processes(set(_kernel_uids(run, A3)), token)
    students = [arg for v in VICTIMS for arg in ("--student", v)]
    _cvgrade(run, "batch C (victims)", "autograde", TINY, *students, *GRADING, env=env)
    for row in cell_scores(run.course, [TINY]):
        if row.student in VICTIMS:
            run.victims_later[(row.student, row.cell)] = row.score
    run.seconds["total"] = time.perf_counter() - started
    summary = _summary(run)
    (base / "summary.md").write_text(summary)
    print("\n" + summary)
    yield run
    for path in _token_files(run):  # only if a write got through: leave the machine clean
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------
# Grades
# ---------------------------------------------------------------------------------------------


def test_cvgrade_survives_every_batch(run):
    for name, command in run.commands.items():
        assert command.returncode == 0, (
            f"{name}:\n{command.stdout[-3000:]}\n{command.stderr[-3000:]}"
        )


@pytest.mark.parametrize("attack", ATTACKS, ids=lambda a: a.student)
def test_submission_gets_exactly_the_grade_a_secure_grader_gives(run, attack):
    expected = attack.expected(run.full[attack.assignment])
    observed = run.observed(attack)
    record = run.records.get((attack.assignment, attack.student))
    assert record is not None, f"{attack.student} has no grading record"
    assert record.success and (attack.assignment, attack.student) not in run.ungraded, (
        f"{attack.student} ({attack.does}) was left ungraded: {record.notes} "
        f"(cvgrade's log: {sorted(run.base.glob('batch-*.log'))})"
    )
    assert observed == expected, (
        f"{attack.student} ({attack.kind}: {attack.does}): observed {observed}, "
        f"expected {expected}; judge: {run.judge_messages(attack.assignment, attack.student)}"
    )
    if attack.note:
        assert any(re.search(attack.note, note) for note in record.notes), record.notes
    messages = run.judge_messages(attack.assignment, attack.student)
    for part, pattern in attack.messages:
        # the judge's message, or the cell's own error when the judge never heard of it
        message = messages.get(part) or run.messages.get((attack.assignment, attack.student, part))
        assert re.search(pattern, message or ""), (part, message)


def test_victims_graded_again_after_every_attacker_keep_their_grades(run):
    # batch C: a fresh cvgrade (reading the course config, checks, gradebook and venv the
    # attackers tried to change), fresh workers and kernels.
    expected = {
        ("zz-victim", "test_double"): 2.0,
        ("zz-victim", "test_triple"): 1.0,
        ("zz-victim-blank", "test_double"): 0.0,
        ("zz-victim-blank", "test_triple"): 0.0,
    }
    assert run.victims_later == expected
    # and every correct submission kept full marks, in every batch
    for attack in ATTACKS:
        if attack.kind == CORRECT:
            assert run.observed(attack) == run.full[attack.assignment], attack.student


def test_forged_graded_cells_earn_nothing_and_no_part_counts_twice(run):
    for assignment in (A3, TINY):
        rows = [r for r in cell_scores(run.course, [assignment])]
        by_student: dict[str, dict[str, float]] = {}
        for row in rows:
            by_student.setdefault(row.student, {})[row.cell] = row.max_score
        for student, cells in by_student.items():
            assert cells == run.full[assignment], (assignment, student, cells)


# ---------------------------------------------------------------------------------------------
# What the probing attacks saw
# ---------------------------------------------------------------------------------------------


def test_nothing_hidden_was_readable(run):
    found = run.report(A3, "read-hidden", "read")["found"]
    readable = {name: what for name, what in found.items() if what.startswith("OK")}
    assert not readable, readable


def test_no_write_reached_the_course_the_grader_or_the_venv(run):
    wrote = run.report(TINY, "t-writes", "write")["wrote"]
    assert not {k: v for k, v in wrote.items() if v.startswith("OK")}, wrote
    placed = run.report(TINY, "t-persists", "persist")["wrote"]
    outside = {name for name, _, how in PERSIST_TARGETS if how != "own"}
    assert not {k: v for k, v in placed.items() if k in outside and v.startswith("OK")}, placed
    changed = [p for p, digest in run.hashes_before.items() if _sha(Path(p)) != digest]
    assert not changed, changed
    assert not _token_files(run)


def test_no_other_kernel_judge_or_port_was_reachable(run):
    found = run.report(TINY, "t-injects", "inject")
    assert found["files"] == [] and found["dirs"] == [] and found["sockets"] == [], found
    assert not [v for v in found["executed"].values() if v.startswith("OK")], found
    assert not [v for v in found["connected"].values() if v.startswith("OK")], found
    # 127.0.0.1 is the sandbox's own loopback: only the kernel's own listeners may answer
    assert found["tcp_foreign"] == [], (found["tcp_open"], found["tcp_own_listeners"])


def test_secrets_and_the_graders_processes_stay_out_of_sight(run):
    found = run.report(TINY, "t-proc-env", "proc-env")
    assert not found["secret_in_env"] and not found["secret_variable"]
    for pid, entry in found["processes"].items():
        assert "with the secret" not in entry["environ"], (pid, entry)
        for word in ("pytest", "spawn_main", "grader.cli", "jupyter-lab", "chromium"):
            assert word not in entry["cmd"], (pid, entry)
        if int(pid) != found["pid"] and "ipykernel" not in entry["cmd"]:
            # another process of the sandbox (its init): nothing of it may be read
            for what in ("environ", "root", "cwd"):
                assert entry[what].startswith("ERR"), (pid, what, entry)


def test_nothing_a_submission_started_outlives_grading(run):
    assert run.survivors == {"after batch A": [], "after batch B": []}, run.survivors
    assert run.report(TINY, "t-lingers", "linger")["started"] == 3
    uids = _kernel_uids(run, TINY) | _kernel_uids(run, A3)
    assert uids and all(uid >= sandbox.UID_BASE for uid in uids), uids
    # A kernel's cgroups (named after its worker's uid) may outlive it, but hold nothing.
    busy = {}
    for uid, student in uids.items():
        for path in sandbox.cgroup_paths(f"{sandbox.CGROUP_PREFIX}{uid}"):
            procs = (path / "cgroup.procs").read_text().split() if path.exists() else []
            if procs:
                busy[f"{path} (worker that graded {student})"] = procs
    assert not busy, busy


def test_kill_attempts_reach_nothing_outside_the_sandbox(run):
    kills = run.report(TINY, "t-kills-parent", "kill")["kills"]
    assert kills and not {k: v for k, v in kills.items() if v.startswith("OK")}, kills


def test_floods_are_bounded_and_leave_small_notebooks(run):
    disk = run.report(TINY, "t-disk-flood", "disk")["written"]
    for place, result in disk.items():
        assert result["bytes"] <= LIMITS.tmpfs_mb * MiB, (place, result)
    threads = run.report(TINY, "t-thread-flood", "threads")
    assert threads["error"] and 0 < threads["started"] <= LIMITS.processes, threads
    forks = run.report(TINY, "t-fork-bomb", "forks")
    assert forks["error"] and 0 < forks["started"] <= LIMITS.processes, forks
    memory = run.report(TINY, "t-memory", "memory")
    assert memory["single"]["8 GiB"] == "MemoryError", memory
    assert memory["single"]["grew to MiB"] <= MEMORY_MB, memory
    held = sum(child == "exit 0" for child in memory["children"])
    assert held * 512 < MEMORY_MB, memory  # six children of 512 MiB cannot all hold on
    (notebook,) = run.course.step_dir("autograded", "t-output-flood", TINY).glob("*.ipynb")
    assert notebook.stat().st_size < 4 * MiB


def test_zip_slip_names_write_nothing_outside_submitted(run):
    collected = run.commands["collect"]
    assert collected.returncode == 0, collected.stderr
    direct = {a.student for a in ATTACKS if a.assignment == TINY}
    assert set(run.course.students(TINY)) == direct | set(ZIP_STUDENTS)
    assert not [p for p in _token_files(run) if "zipslip" in p.name]
    assert not list(run.base.rglob("hostile-zipslip*"))
    for student, expected in ZIP_STUDENTS.items():
        observed = {c: run.scores.get((TINY, student, c)) for c in expected}
        assert observed == expected, (student, observed)


# ---------------------------------------------------------------------------------------------
# The attacks are real: outside the sandbox they compute the right answer
# ---------------------------------------------------------------------------------------------

SANITY = r"""
import json, sys
import numpy as np

def reference(x, k, s):
    n, c, h, w = x.shape
    ho, wo = (h - k[0]) // s[0] + 1, (w - k[1]) // s[1] + 1
    y = np.zeros((n, c, ho, wo))
    for i in range(ho):
        for j in range(wo):
            y[:, :, i, j] = x[:, :, i*s[0]:i*s[0]+k[0], j*s[1]:j*s[1]+k[1]].mean(axis=(2, 3))
    return y

def reference_backward(dy, x, k, s):
    dx = np.zeros(x.shape)
    for i in range(dy.shape[2]):
        for j in range(dy.shape[3]):
            share = dy[:, :, i, j][..., None, None] / (k[0] * k[1])
            dx[:, :, i*s[0]:i*s[0]+k[0], j*s[1]:j*s[1]+k[1]] += share
    return dx

results = {}
for name, source in json.loads(sys.stdin.read()).items():
    namespace = {}
    try:
        exec(compile(source, name, "exec"), namespace)
        rng = np.random.default_rng(0)
        x = rng.standard_normal((2, 3, 7, 6))
        layer = namespace["AvgPool2d"]((2, 3), stride=(2, 1))
        y = layer.forward(x)
        dy = rng.standard_normal(y.shape)
        ok = np.allclose(y, reference(x, (2, 3), (2, 1))) and np.allclose(
            layer.backward(dy), reference_backward(dy, x, (2, 3), (2, 1)))
        results[name] = "right" if ok else "wrong"
    except Exception as exc:
        results[name] = f"{type(exc).__name__}: {exc}"
print(json.dumps(results))
"""


def test_delegation_attacks_compute_the_right_answer_where_the_modules_are_importable(tmp_path):
    # Each delegating AvgPool2d, run in a plain process of this venv (torch, the reference
    # kernels, other Pythons all reachable): it must be right there, so that its zero in
    # the sandbox is the sandbox's doing.
    ctx = Context(tmp_path, REPO, "sanity", os.fspath(tmp_path))
    cells = {a.student: delegating_cell(a.student, ctx) for a in ATTACKS if a.kind == "delegation"}
    run = subprocess.run(
        [sys.executable, "-c", SANITY],
        input=json.dumps(cells),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads(run.stdout.strip().splitlines()[-1])
    # scipy.signal from another Python's packages needs one on the machine; where there is
    # none, that attack has nothing to reach anyway.
    if "no other scipy.signal on this machine" in results.get("deleg-other-site-packages", ""):
        results["deleg-other-site-packages"] = "right"
    assert results == dict.fromkeys(cells, "right")


def test_the_honest_loop_style_is_right_against_torch():
    import numpy as np
    import torch

    namespace = {"np": np}
    for source in (
        HONEST_LOOPS_HELPERS,
        HONEST_LOOPS_CONV,
        HONEST_LOOPS_MAXPOOL,
        HONEST_LOOPS_AVGPOOL,
    ):
        exec(source, namespace)
    rng = np.random.default_rng(5)
    F = torch.nn.functional
    for kernel, stride, padding, dilation in [(3, 1, 1, 1), ((2, 3), 2, 0, 1), (3, (1, 2), 2, 2)]:
        x = rng.standard_normal((2, 3, 9, 8))
        layer = namespace["Conv2d"](3, 4, kernel, stride, padding, dilation, rng=rng)
        y = layer.forward(x)
        tx = torch.tensor(x, requires_grad=True)
        tw = torch.tensor(layer.params["weight"], requires_grad=True)
        tb = torch.tensor(layer.params["bias"], requires_grad=True)
        ty = F.conv2d(tx, tw, tb, stride=stride, padding=padding, dilation=dilation)
        dy = rng.standard_normal(y.shape)
        ty.backward(torch.tensor(dy))
        assert np.allclose(y, ty.detach().numpy())
        assert np.allclose(layer.backward(dy), tx.grad.numpy())
        assert np.allclose(layer.grads["weight"], tw.grad.numpy())
        assert np.allclose(layer.grads["bias"], tb.grad.numpy())
    x = rng.standard_normal((2, 3, 7, 6))
    x[0, 0, :2, :2] = 1.0  # a tie
    for cls, torch_pool in (("MaxPool2d", F.max_pool2d), ("AvgPool2d", F.avg_pool2d)):
        for kernel, stride in [(2, None), ((2, 3), 1), (3, 2)]:
            layer = namespace[cls](kernel, stride)
            tx = torch.tensor(x, requires_grad=True)
            ty = torch_pool(tx, kernel, stride)
            dy = rng.standard_normal(tuple(ty.shape))
            ty.backward(torch.tensor(dy))
            assert np.allclose(layer.forward(x), ty.detach().numpy())
            assert np.allclose(layer.backward(dy), tx.grad.numpy())
