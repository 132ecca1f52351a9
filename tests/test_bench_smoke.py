"""Smoke test of ``bench/bench_kernels.py``: it runs, prints its table and writes its JSON.

Runs ``--quick --threads 1 --no-cold`` (small batches, a few repetitions, no fresh-process
compile timings) in a subprocess, as ``make bench`` would. Asserts nothing about speed:
only that every workload is measured, checked against torch and reported.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

BENCH = Path(__file__).resolve().parents[1] / "bench" / "bench_kernels.py"
TIMEOUT_S = 120


@functools.cache
def _load_bench():
    """The benchmark as a module, for its workload names (it runs nothing on import)."""
    spec = importlib.util.spec_from_file_location("bench_kernels", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _expected_rows(bench) -> set[tuple[str, str, str, str]]:
    """(workload, op, pass, impl) of every row a one-thread quick run must produce."""
    rows = set()
    for wl in (w.quick() for w in bench.WORKLOADS):
        for pass_ in bench.PASSES:
            for impl in ("auto", *bench.CONV_ALGORITHMS):
                rows.add((wl.conv_name, "conv2d", pass_, impl))
            for op in bench.POOL_OPS:
                rows.add((wl.pool_name, op, pass_, "numba"))
    return rows


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("bench")
    json_path = out_dir / "bench.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--quick",
            "--threads",
            "1",
            "--no-cold",
            "--json",
            str(json_path),
        ],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    return proc, json_path


@pytest.mark.slow
def test_quick_run_exits_cleanly(quick_run):
    proc, _ = quick_run
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert "INCORRECT" not in proc.stdout


@pytest.mark.slow
def test_prints_table_with_every_workload(quick_run):
    proc, _ = quick_run
    bench = _load_bench()
    for column in ("workload", "pass", "thr", "cvcourse ms", "torch ms", "ratio", "target"):
        assert column in proc.stdout
    for wl in bench.WORKLOADS:
        assert wl.quick().conv_name in proc.stdout
        assert wl.quick().pool_name in proc.stdout
    assert "What a student writes" in proc.stdout
    assert "One training epoch" in proc.stdout
    assert "targets met" in proc.stdout


@pytest.mark.slow
def test_json_has_every_row_with_positive_times(quick_run):
    _, json_path = quick_run
    document = json.loads(json_path.read_text())
    rows = document["rows"]
    found = {(r["workload"], r["op"], r["pass"], r["impl"]) for r in rows}
    assert found == _expected_rows(_load_bench())
    assert len(rows) == len(found)
    for row in rows:
        assert row["threads"] == 1
        assert row["ours_ms"] > 0 and row["torch_ms"] > 0 and row["ratio"] > 0
        assert row["correct"] is True
    for result in document["student"]["passes"].values():
        assert result["student_ms"] > 0 and result["student_correct"] is True
    assert document["first_calls"] is None  # --no-cold
    training = document["training_epoch"]
    assert training["same_training"] is True
    assert [row["threads"] for row in training["rows"]] == [1]
    assert all(row["cvcourse_s"] > 0 and row["torch_s"] > 0 for row in training["rows"])
    assert document["summary"]["targets"] > 0


@pytest.mark.slow
def test_json_written_atomically(quick_run):
    _, json_path = quick_run
    assert [p.name for p in json_path.parent.iterdir()] == [json_path.name]
