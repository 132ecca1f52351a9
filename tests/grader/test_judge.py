"""The judge and its channel, in one process: a thread plays the student's kernel.

What the judge must hold whatever the kernel does:

- it accepts a connection only while a graded cell runs, only for that cell's part, and
  grades each part once per run, whatever the kernel asks and however often;
- a kernel that stops answering, hangs up, or breaks the protocol costs the part, with a
  message that says the code could not be reached;
- arrays cross as numbers only (no object arrays, no pickle), within size limits;
- an argument the student's code changes in place is changed in the judge's copy, and a
  returned view of an argument is rebuilt over the judge's own memory (so its values are
  the judge's own reads); a view reaching outside the argument is reported as such;
- the kernel can use only what the judge exposes: a probe's declared attributes, marked
  functions, dicts handed over; nothing else of the judge's;
- the kernel-side guard reports a call into a forbidden module, and the check says why;
- nothing about the verdict is sent to the kernel.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import sys
import threading
import time
import types

import numpy as np
import pytest

from cvcourse import judge_link
from grader.checks import harness
from grader.judge import remote, session


def _checks_module(**functions) -> types.ModuleType:
    module = types.ModuleType("judge_test_checks")
    module.__all__ = list(functions)
    for name, function in functions.items():
        setattr(module, name, function)
    return module


@pytest.fixture
def judge(monkeypatch):
    """A judge whose checks module is swapped per test (``judge.checks = ...``)."""
    j = session.Judge("no_such_assignment", seed=1)
    monkeypatch.setenv(judge_link.SOCKET_VARIABLE, j.path)
    yield j
    j.close()


def _grade(judge, part, *objects, seconds=30.0):
    """What the pipeline does for one graded cell: expect, let the kernel hand over, finish."""
    judge.expect(f"test_{part}", seconds)
    try:
        judge_link.hand_over(part, *objects)
    finally:
        judge.finish(f"test_{part}")
    return judge.records.get(f"test_{part}")


def _double_check(double):
    x = np.arange(6.0).reshape(2, 3)
    harness.assert_close(
        harness.student_call("double", "x (2, 3)", double, x), 2 * x, what="double(x)", case="x"
    )
    harness.passed("double", "one case")


def test_a_correct_function_passes_and_its_line_goes_to_the_record_not_stdout(judge, capsys):
    judge.checks = _checks_module(double=_double_check)
    record = _grade(judge, "double", lambda x: 2 * x)
    assert record.passed and record.message == "\N{CHECK MARK} double: one case"
    assert "double" not in capsys.readouterr().out


def test_a_wrong_function_fails_with_the_diagnosis(judge):
    judge.checks = _checks_module(double=_double_check)
    record = _grade(judge, "double", lambda x: 3 * x)
    assert not record.passed
    assert "double(x) does not match torch" in record.message


def test_each_part_is_graded_once_whatever_the_kernel_asks(judge):
    calls = []

    def check(f):
        calls.append(1)
        harness.passed("f", "ok")

    judge.checks = _checks_module(part=check)
    judge.expect("test_part", 30.0)
    judge_link.hand_over("part", lambda: None)
    judge_link.hand_over("part", lambda: None)  # the kernel asks again in the same cell
    judge.finish("test_part")
    assert len(calls) == 1
    assert any("asked again" in note for note in judge.notes)


def test_connections_outside_a_graded_cell_or_for_another_part_are_refused(judge):
    calls = []
    judge.checks = _checks_module(part=lambda f: calls.append(f), other=lambda f: calls.append(f))
    judge_link.hand_over("part", lambda: None)  # no graded cell is running
    judge.expect("test_part", 30.0)
    judge_link.hand_over("other", lambda: None)  # names a part that is not running
    judge.finish("test_part")
    assert calls == [] and judge.records == {}
    assert any("outside any graded cell" in n for n in judge.notes)
    assert any("asked to be graded for 'other'" in n for n in judge.notes)


def test_a_kernel_that_stops_answering_costs_the_part_with_a_clear_message(judge):
    judge.checks = _checks_module(double=_double_check)
    judge.expect("test_double", 1.0)  # a one-second part

    def silent_kernel():
        sock = socket.socket(socket.AF_UNIX)
        sock.connect(judge.path)
        server = judge_link._KernelServer(sock)
        server.send({"kind": "hello", "part": "double", "roots": {"$list": [server.ref_of(abs)]}})
        time.sleep(3)  # never answers the judge's call
        sock.close()

    thread = threading.Thread(target=silent_kernel)
    thread.start()
    thread.join()
    judge.finish("test_double")
    record = judge.records["test_double"]
    assert not record.passed
    assert "could not reach your code" in record.message
    assert "did not answer within the cell's time limit" in record.message


def test_object_arrays_and_oversized_messages_are_refused_before_reading():
    a, b = socket.socketpair()
    with pytest.raises(TypeError, match="numbers only"):
        judge_link.encode(np.array([object()]), [], lambda o: {})
    # A header claiming a 5 GB array: refused without allocating it.
    header = json.dumps({"kind": "reply"}).encode()
    a.sendall(struct.pack("!II", len(header), 1) + header + struct.pack("!Q", 5 * 2**30))
    with pytest.raises(judge_link.ChannelError, match="too large"):
        judge_link.recv_message(b, max_blob_bytes=remote.MAX_BLOB_BYTES)
    # An object dtype smuggled in a header is refused when decoding.
    node = {"$nd": 0, "dtype": "|O", "shape": [1]}
    with pytest.raises(judge_link.ChannelError, match="numbers only"):
        judge_link.decode(node, [b"\0" * 8], lambda n: None)


def test_in_place_changes_to_arguments_reach_the_judges_copy(judge):
    seen = {}

    def check(f):
        x = np.ones(4)
        harness.student_call("f", "x", f, x)
        seen["x"] = x.copy()

    def modifies(x):
        x[1] = 7.0

    judge.checks = _checks_module(part=check)
    assert _grade(judge, "part", modifies) is not None
    np.testing.assert_array_equal(seen["x"], [1, 7, 1, 1])


def test_a_returned_view_is_rebuilt_over_the_judges_own_array(judge):
    seen = {}

    def check(f):
        x = np.arange(12.0).reshape(3, 4)
        out = harness.student_call("f", "x", f, x)
        seen["shares"] = np.shares_memory(out, x)
        seen["values"] = out.copy()

    judge.checks = _checks_module(part=check)
    _grade(judge, "part", lambda x: x[:, 1:3].T)
    assert seen["shares"]
    np.testing.assert_array_equal(seen["values"], np.arange(12.0).reshape(3, 4)[:, 1:3].T)


def test_a_view_reaching_outside_its_argument_is_a_failure_that_says_so(judge):
    def check(f):
        harness.student_call("f", "x", f, np.arange(4.0))

    def overreach(x):
        return np.lib.stride_tricks.as_strided(x, shape=(64,), strides=(8,))

    judge.checks = _checks_module(part=check)
    record = _grade(judge, "part", overreach)
    assert not record.passed and "reaching outside x's memory" in record.message


class _Probe:
    __judge_exposed__ = ("forward",)

    def __init__(self):
        self.secret = "hidden cases"

    def forward(self, x):
        return x + 1


def test_the_kernel_reaches_only_what_the_judge_exposes(judge):
    seen = {}

    def check(f):
        seen["result"] = harness.student_call("f", "probe", f, _Probe())

    def student(probe):
        found = {"forward": probe.forward(np.zeros(2)).tolist()}
        for name in ("secret", "__dict__", "__class__", "__init__"):
            try:
                found[name] = repr(getattr(probe, name))
            except Exception as exc:
                found[name] = type(exc).__name__
        return found

    judge.checks = _checks_module(part=check)
    _grade(judge, "part", student)
    assert seen["result"]["forward"] == [1.0, 1.0]
    # The judge refuses what its object does not expose (the other names are the kernel-side
    # stand-in's own, which hold nothing of the judge's).
    assert seen["result"]["secret"] == "AttributeError"
    assert "hidden cases" not in json.dumps(seen["result"])


def test_an_unmarked_judge_function_is_never_handed_to_student_code(judge):
    def check(f):
        harness.student_call("f", "a function", f, len)

    judge.checks = _checks_module(part=check)
    record = _grade(judge, "part", lambda g: g)
    assert not record.passed and "cannot hand a builtin_function_or_method" in record.message


def test_the_kernel_side_guard_names_a_call_into_a_forbidden_module(judge):
    def check(f):
        harness.student_call("f", "x", f, np.ones(3))

    def delegates(x):
        return json.dumps(x.tolist())  # "json" stands in for torch here

    judge.checks = _checks_module(part=check)
    monkey = harness.DELEGATION_TARGETS
    harness.DELEGATION_TARGETS = monkey + ("json",)
    try:
        record = _grade(judge, "part", delegates)
    finally:
        harness.DELEGATION_TARGETS = monkey
    assert not record.passed
    assert "called json" in record.message and "your own NumPy code" in record.message


def test_the_kernel_is_told_nothing_about_the_verdict(judge):
    judge.checks = _checks_module(double=_double_check)
    received = []
    original = judge_link.recv_message

    def spy(sock, **kwargs):
        message = original(sock, **kwargs)
        received.append(message[0])
        return message

    judge_link.recv_message = spy
    try:
        record = _grade(judge, "double", lambda x: 3 * x)
    finally:
        judge_link.recv_message = original
    assert not record.passed
    text = json.dumps(received)
    assert "does not match" not in text and "GradingFailure" not in text
    assert received[-1] == {"kind": "done"}


def test_cases_change_with_the_run_seed_and_repeat_without_one():
    assert harness.rng("p").integers(1 << 30) == harness.rng("p").integers(1 << 30)
    with harness.judging(seed=1, report=[]):
        first = harness.rng("p").integers(1 << 30)
    with harness.judging(seed=2, report=[]):
        second = harness.rng("p").integers(1 << 30)
    assert first != second


def test_the_student_library_ships_no_grader_code():
    # The kernel's end of the channel imports nothing of the grader's.
    import cvcourse.judge_guard
    import cvcourse.judge_link

    for module in (cvcourse.judge_link, cvcourse.judge_guard):
        source = open(module.__file__).read()
        assert "import grader" not in source and "from grader" not in source
    assert "grader" not in sys.modules["cvcourse.judge_link"].__dict__


def test_a_connection_from_another_user_than_the_kernels_is_refused(judge):
    calls = []
    judge.checks = _checks_module(part=lambda f: calls.append(f))
    judge.peer_uid = os.getuid() + 1  # the kernel's uid; this process is someone else
    judge.expect("test_part", 30.0)
    judge_link.hand_over("part", lambda: None)
    judge.finish("test_part")
    assert calls == [] and judge.records == {}
    assert any("from another user" in note for note in judge.notes)
