"""The showcase runs end to end, files are written atomically, and cvcourse never needs torch."""

import os
import stat
import subprocess
import sys

import numpy as np
import pytest

from cvcourse import demo
from cvcourse.fileio import atomic_path
from cvcourse.kernels import conv2d


def test_demo_runs_end_to_end_and_saves_the_filter_grid(tmp_path, capsys):
    assert demo.main(["--output", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "all gradient checks passed" in out
    for name in ("filters.png", "digits_training.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    assert "test accuracy" in out
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temp file left over"


def test_filter_bank_through_conv2d_matches_the_numpy_reference():
    rng = np.random.default_rng(0)
    image = rng.random((13, 17))
    names, weight = demo.filter_bank(np.float64)
    responses = conv2d(image[None, None], weight, padding=1)[0]
    for name, response, kernel in zip(names, responses, weight[:, 0], strict=True):
        np.testing.assert_allclose(
            response, demo.correlate_numpy(image, kernel), atol=1e-12, err_msg=name
        )


def test_atomic_path_replaces_the_destination_only_on_success(tmp_path):
    target = tmp_path / "sub" / "result.txt"
    with atomic_path(target) as tmp:
        assert tmp.suffix == ".txt" and tmp.parent == target.parent
        tmp.write_text("first")
    assert target.read_text() == "first"

    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half-writ")
        raise RuntimeError("crash midway")
    assert target.read_text() == "first", "a failed write must leave the old file intact"
    assert sorted(p.name for p in target.parent.iterdir()) == ["result.txt"]


def test_atomic_path_gives_the_file_the_mode_a_plain_open_would(tmp_path):
    # A released notebook or a grades file must be readable by the people it is shared with.
    previous = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "grades.csv") as tmp:
            tmp.write_text("student,total\n")
        with open(tmp_path / "plain.csv", "w") as f:
            f.write("x")
    finally:
        os.umask(previous)
    mode = stat.S_IMODE((tmp_path / "grades.csv").stat().st_mode)
    assert mode == stat.S_IMODE((tmp_path / "plain.csv").stat().st_mode) == 0o644


def test_importing_cvcourse_does_not_import_torch():
    code = (
        "import sys, cvcourse, cvcourse.kernels, cvcourse.gradcheck, cvcourse.data, "
        "cvcourse.filters, cvcourse.demo, cvcourse.fileio, cvcourse.nn, cvcourse.models\n"
        "print('torch' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
