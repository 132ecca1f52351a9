"""The whole course cycle through a real JupyterHub, timed, for 3 and for 30 students.

    sudo make bench-hub        (or: .venv/bin/python bench/bench_hub.py --students 3 30)

For each class size a fresh hub (deploy/jupyterhub/hubctl.py, its own folder under /tmp,
a free port) runs what tests/hub/ runs, as the real users through the hub's REST API:
the instructor releases a3 from the formgrader's terminal; each student starts a server,
fetches, fills (a third the solution, a third the planted "kernel flipped" mistake, a third
blank) and submits; the TA collects, autogrades (``--jobs``) and releases feedback; each
student fetches theirs. Printed: seconds per step, spawn seconds per user (min / median /
max), and the resident memory of each idle user server (its process tree, from /proc).
Users student1..N are created if missing and kept.
"""

from __future__ import annotations

import argparse
import os
import pwd
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, os.fspath(REPO))

from tests.hub.driver import (  # noqa: E402 (the repository root first)
    HubClient,
    fillings,
    load_hubctl,
    run_cycle,
    server_memory_mib,
)

COURSE, ASSIGNMENT, NOTEBOOK = "cvcourse", "a3_conv_pool", "conv_pool.ipynb"
ROLES = ("solution", "kernel-flipped", "blank")


def bench(n: int, jobs: int) -> dict:
    hubctl = load_hubctl()
    students = [f"student{i}" for i in range(1, n + 1)]
    for user in students + ["instructor", "ta"]:
        try:
            home = Path(pwd.getpwnam(user).pw_dir)
        except KeyError:
            continue
        shutil.rmtree(home / COURSE, ignore_errors=True)
        shutil.rmtree(home / ".local/share/jupyter/nbgrader_cache", ignore_errors=True)
    base = Path(tempfile.mkdtemp(prefix="cvcourse-bench-hub-", dir="/tmp"))
    os.chmod(base, 0o755)
    settings = hubctl.HubSettings(
        dir=base / "hub", port=hubctl.free_port(), students=students, driver=True,
        receipt_interval=1.0, log_level="WARN",
    )  # fmt: skip
    hub = hubctl.Hub(settings)
    began = time.monotonic()
    try:
        hub.start()
        started = time.monotonic() - began
        client = HubClient(settings.url, settings.driver_token_file.read_text().strip())
        roles = {s: ROLES[i % len(ROLES)] for i, s in enumerate(students)}
        cycle = run_cycle(
            client,
            course=COURSE,
            course_root=os.fspath(settings.course_root),
            assignment=ASSIGNMENT,
            notebook=NOTEBOOK,
            fillings=fillings(REPO / "course" / "assignments" / ASSIGNMENT / NOTEBOOK, roles),
            jobs=jobs,
        )
        total = time.monotonic() - began
        time.sleep(2)  # let the servers settle after the last request
        memory = [server_memory_mib(client.server_pid(s)) for s in students]
    finally:
        hub.stop()
        shutil.rmtree(base, ignore_errors=True)
    return {
        "students": n,
        "hub start": started,
        "steps": cycle.seconds,
        "spawn": sorted(cycle.spawn.values()),
        "memory": memory,
        "total": total,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, nargs="+", default=[3, 30])
    parser.add_argument("--jobs", type=int, default=2, help="cvgrade autograde --jobs")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("bench_hub: run as root (the hub starts each server as its user)", file=sys.stderr)
        return 1
    for n in args.students:
        r = bench(n, args.jobs)
        spawn, memory = r["spawn"], r["memory"]
        print(f"\n{n} students (autograde --jobs {args.jobs}): whole cycle {r['total']:.1f} s")
        print(f"  hub start          {r['hub start']:6.1f} s")
        for step, seconds in r["steps"].items():
            print(f"  {step:<18} {seconds:6.1f} s")
        print(
            f"  spawn per user     min {min(spawn):.1f} s, median {statistics.median(spawn):.1f}"
            f" s, max {max(spawn):.1f} s"
        )
        print(
            f"  idle server memory median {statistics.median(memory):.0f} MiB "
            f"(min {min(memory):.0f}, max {max(memory):.0f}); all {n}: {sum(memory):.0f} MiB"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
