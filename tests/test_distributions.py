"""The two distributions built from this repository (docs/decisions.md, "Packaging").

- The student distribution ``cvcourse`` (pyproject.toml) holds the library and nothing of the
  grader: no ``grader/`` file, no torch requirement, no ``cvgrade`` command.
- The TA distribution ``cvcourse-grader`` (grader/pyproject.toml) holds every file of
  ``grader/``, the ``cvgrade`` command, and requires the same version of ``cvcourse[course]``
  and ``torch==2.13.0`` exactly.

Both wheels are built once per run, from a copy of the sources (setuptools builds in the
source folder and would leave ``build/`` there, whose stale copies later builds pick up), by
``pip wheel --no-deps --no-build-isolation --no-index`` with this environment's setuptools:
about 3 s, hence ``slow``. The reference for "every file" is the source tree itself.
"""

from __future__ import annotations

import configparser
import json
import re
import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
# Build products and caches, never part of a distribution.
IGNORED = ("__pycache__", "*.pyc", "*.egg-info", "build", "dist", "*.nbi", "*.nbc")
TORCH_PIN = "==2.13.0"
NOTEBOOK_TOOLS = {"jupyterlab", "ipywidgets", "ipykernel", "nbgrader"}

slow = pytest.mark.slow


def _ignored(part: str) -> bool:
    return any(Path(part).match(pattern) for pattern in IGNORED)


def _source_files(package: str) -> set[str]:
    """Files under ``REPO/package`` as wheel paths, without build products and caches."""
    root = REPO / package
    files = set()
    for path in root.rglob("*"):
        rel = path.relative_to(root)
        if path.is_dir() or any(_ignored(part) for part in rel.parts):
            continue
        files.add(f"{package}/{rel.as_posix()}")
    # The TA distribution's project file sits in its package folder but is not package content.
    files.discard("grader/pyproject.toml")
    return files


@pytest.fixture(scope="module")
def wheels(tmp_path_factory) -> dict[str, Path]:
    """{"cvcourse": student wheel, "cvcourse-grader": TA wheel}, built from a source copy."""
    src = tmp_path_factory.mktemp("src")
    out = tmp_path_factory.mktemp("wheels")
    ignore = shutil.ignore_patterns(*IGNORED)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    for package in ("cvcourse", "grader", "jupyter-config"):
        shutil.copytree(REPO / package, src / package, ignore=ignore)
    cmd = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation"]
    cmd += ["--no-index", "--wheel-dir", str(out), str(src), str(src / "grader")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"pip wheel failed:\n{done.stdout}\n{done.stderr}"
    built = {}
    for wheel in out.glob("*.whl"):
        built[canonicalize_name(wheel.name.split("-")[0])] = wheel
    assert set(built) == {"cvcourse", "cvcourse-grader"}, sorted(built)
    return built


def _names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as zf:
        return set(zf.namelist())


def _dist_info_file(wheel: Path, name: str) -> str | None:
    with zipfile.ZipFile(wheel) as zf:
        for entry in zf.namelist():
            if entry.endswith(f".dist-info/{name}") and entry.count("/") == 1:
                return zf.read(entry).decode()
    return None


def _metadata(wheel: Path):
    return Parser().parsestr(_dist_info_file(wheel, "METADATA"))


def _requirements(wheel: Path) -> list[Requirement]:
    return [Requirement(line) for line in _metadata(wheel).get_all("Requires-Dist") or []]


def _console_scripts(wheel: Path) -> dict[str, str]:
    text = _dist_info_file(wheel, "entry_points.txt")
    if text is None:
        return {}
    parser = configparser.ConfigParser()
    parser.optionxform = str
    parser.read_string(text)
    return dict(parser["console_scripts"]) if parser.has_section("console_scripts") else {}


# --- the student distribution ---------------------------------------------------------------


@slow
def test_student_wheel_contains_no_grader_file(wheels):
    """Nothing of grader/ (checks, case generators, planted mistakes, the judge) is shipped:
    every file is the library's or the wheel's own metadata, and the only top-level import
    name is cvcourse."""
    wheel = wheels["cvcourse"]
    names = _names(wheel)
    assert not [n for n in names if n.startswith("grader/")]
    own = ("cvcourse/", "cvcourse-0.1.0.dist-info/")
    strays = [n for n in names if not n.startswith(own)]
    # Beside the library, only the students' nbgrader settings (Validate checks every cell).
    assert strays == ["cvcourse-0.1.0.data/data/etc/jupyter/nbgrader_config.py"]
    assert _dist_info_file(wheel, "top_level.txt").split() == ["cvcourse"]


@slow
def test_student_wheel_contains_the_whole_library(wheels):
    """Every file of cvcourse/ (modules, judge_link the hidden cells call, data) is shipped:
    the split did not cut the library the notebooks import."""
    names = _names(wheels["cvcourse"])
    expected = _source_files("cvcourse")
    assert {"cvcourse/judge_link.py", "cvcourse/data/digits.npz"} <= expected
    assert sorted(expected - names) == []


@slow
def test_student_wheel_ships_the_digits_and_needs_neither_scikit_learn_nor_scipy(wheels):
    """load_digits reads cvcourse/data/digits.npz, shipped byte for byte; no requirement
    outside the dev extra names scikit-learn or SciPy (a student install has neither), and
    pooch, which downloads the standard sets, is required."""
    wheel = wheels["cvcourse"]
    with zipfile.ZipFile(wheel) as zf:
        shipped = zf.read("cvcourse/data/digits.npz")
    assert shipped == (REPO / "cvcourse" / "data" / "digits.npz").read_bytes()
    student = {
        canonicalize_name(r.name)
        for r in _requirements(wheel)
        if r.marker is None or not r.marker.evaluate({"extra": "dev"})
    }
    assert student.isdisjoint({"scikit-learn", "scipy"}), sorted(student)
    assert "pooch" in student


@slow
def test_student_wheel_requires_neither_torch_nor_the_grader(wheels):
    """No requirement, in any extra, names torch or the TA distribution, and no extra is called
    grader: `pip install cvcourse[anything]` never brings torch or the checks."""
    wheel = wheels["cvcourse"]
    requirements = _requirements(wheel)
    assert requirements, "the student wheel lists no requirements at all"
    named = {canonicalize_name(r.name) for r in requirements}
    assert "numpy" in named and "numba" in named
    assert named.isdisjoint({"torch", "cvcourse-grader"}), sorted(named)
    assert "grader" not in (_metadata(wheel).get_all("Provides-Extra") or [])


@slow
def test_student_wheel_has_no_cvgrade_command(wheels):
    """No console script (cvgrade or any other) and no scripts folder in the student wheel."""
    wheel = wheels["cvcourse"]
    assert _console_scripts(wheel) == {}
    assert not [n for n in _names(wheel) if ".data/scripts/" in n]


@slow
def test_student_course_extra_brings_the_notebook_tools(wheels):
    """`cvcourse[course]` installs JupyterLab, the widgets, the kernel and nbgrader (the
    Validate button and the Assignments tab), and nbgrader in the 0.9 series the grader's
    fixes are written for."""
    course = [r for r in _requirements(wheels["cvcourse"]) if r.marker]
    course = {
        canonicalize_name(r.name): r for r in course if r.marker.evaluate({"extra": "course"})
    }
    assert NOTEBOOK_TOOLS <= set(course), sorted(course)
    assert course["nbgrader"].specifier.contains("0.9.6")
    assert not course["nbgrader"].specifier.contains("0.10.0")


@slow
def test_student_install_has_no_grader_module(wheels, tmp_path):
    """Installed on its own (pip install --target), the student wheel gives an interpreter
    that finds cvcourse there and no module called grader anywhere (isolated: -I -S, so
    neither this environment's site-packages nor the repository is on the path)."""
    target = tmp_path / "site"
    install = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index"]
    install += ["--target", str(target), str(wheels["cvcourse"])]
    done = subprocess.run(install, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    probe = (
        "import importlib.util, json, sys\n"
        f"sys.path.insert(0, {str(target)!r})\n"
        "found = {n: importlib.util.find_spec(n) for n in ('cvcourse', 'grader')}\n"
        "print(json.dumps({n: s and s.origin for n, s in found.items()}))\n"
    )
    cmd = [sys.executable, "-I", "-S", "-c", probe]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    origins = json.loads(done.stdout)
    assert origins["cvcourse"] == str(target / "cvcourse" / "__init__.py")
    assert origins["grader"] is None


# --- the TA distribution --------------------------------------------------------------------


@slow
def test_ta_wheel_contains_every_grader_file(wheels):
    """Exactly the files of grader/ (every subpackage, checks included, and any data file
    next to them): a subpackage or data file missing from grader/pyproject.toml fails here."""
    names = _names(wheels["cvcourse-grader"])
    shipped = {n for n in names if n.startswith("grader/")}
    expected = _source_files("grader")
    assert {"grader/checks/harness.py", "grader/cli.py"} <= expected
    assert sorted(expected - shipped) == [], "missing from the TA wheel"
    assert sorted(shipped - expected) == [], "in the TA wheel but not in grader/"


@slow
def test_ta_wheel_does_not_ship_the_library(wheels):
    """The TA wheel contains only grader/ and its metadata, never a second copy of cvcourse/
    (that would overwrite the student library's files on install)."""
    wheel = wheels["cvcourse-grader"]
    strays = [
        n
        for n in _names(wheel)
        if not n.startswith(("grader/", "cvcourse_grader-0.1.0.dist-info/"))
    ]
    assert strays == []
    assert _dist_info_file(wheel, "top_level.txt").split() == ["grader"]


@slow
def test_ta_wheel_requires_exact_torch_and_the_same_cvcourse(wheels):
    """torch is pinned to exactly 2.13.0 (the CPU wheel here; a looser pin pulls a CUDA build),
    and cvcourse with the course extra at the student wheel's own version, unconditionally."""
    student_version = _metadata(wheels["cvcourse"])["Version"]
    ta = wheels["cvcourse-grader"]
    assert _metadata(ta)["Version"] == student_version
    requirements = {canonicalize_name(r.name): r for r in _requirements(ta)}
    torch, cvcourse = requirements["torch"], requirements["cvcourse"]
    assert str(torch.specifier) == TORCH_PIN and torch.marker is None
    assert str(cvcourse.specifier) == f"=={student_version}" and cvcourse.marker is None
    assert cvcourse.extras == {"course"}


@slow
def test_ta_wheel_provides_cvgrade(wheels):
    """The TA wheel installs the `cvgrade` command, pointing at grader.cli:main, which exists."""
    assert _console_scripts(wheels["cvcourse-grader"]) == {"cvgrade": "grader.cli:main"}
    import grader.cli

    assert callable(grader.cli.main)


# --- the notebooks students receive ---------------------------------------------------------

HIDDEN_BEGIN, HIDDEN_END = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
IMPORTS_GRADER = re.compile(
    r"^\s*(from\s+grader(\.|\s)|import\s+(.*,\s*)?grader\b)|import_module\(\s*['\"]grader\b"
)


def grader_imports_students_see(source: str) -> list[str]:
    """Lines of a code cell that import grader outside nbgrader's hidden-test blocks (which
    the release removes)."""
    hidden, found = False, []
    for line in source.splitlines():
        if line.strip() == HIDDEN_BEGIN:
            hidden = True
        elif line.strip() == HIDDEN_END:
            hidden = False
        elif not hidden and IMPORTS_GRADER.search(line):
            found.append(line.strip())
    return found


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from grader.checks import a3_conv_pool", 1),
        ("import numpy as np, grader", 1),
        ("  import grader.checks.harness as h", 1),
        ("importlib.import_module('grader.checks')", 1),
        (f"{HIDDEN_BEGIN}\nfrom grader.checks import a3_conv_pool\n{HIDDEN_END}", 0),
        (f"{HIDDEN_BEGIN}\nx = 1\n{HIDDEN_END}\nimport grader", 1),
        ("from cvcourse.judge_link import hand_over\nimport nbgrader\n# the grader checks", 0),
    ],
)
def test_grader_import_detector(source, expected):
    """The detector below flags what it should and nothing else (else its test proves nothing)."""
    assert len(grader_imports_students_see(source)) == expected


def test_no_notebook_students_receive_imports_grader():
    """No assignment cell students receive (all but hidden-test blocks) and no lecture cell
    (all but those tagged `instructor`, which the release removes) imports grader: a student
    install has no grader, so such a notebook would fail for them."""
    notebooks = sorted((REPO / "course" / "assignments").glob("*/*.ipynb"))
    notebooks += sorted((REPO / "course" / "lectures").glob("*.ipynb"))
    assert len(notebooks) >= 4
    offenders = []
    for path in notebooks:
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            if cell["cell_type"] != "code" or "instructor" in cell["metadata"].get("tags", []):
                continue
            source = "".join(cell["source"])
            found = grader_imports_students_see(source)
            offenders += [f"{path.relative_to(REPO)}: {line}" for line in found]
    assert offenders == []


def test_student_wheel_makes_validate_check_every_cell(wheels):
    # Installed into <prefix>/etc/jupyter, where nbgrader reads it: a student's Validate
    # then lists failing cells even outside the course folder.
    name = "cvcourse-0.1.0.data/data/etc/jupyter/nbgrader_config.py"
    with zipfile.ZipFile(wheels["cvcourse"]) as zf:
        assert name in zf.namelist()
        assert "c.Validator.validate_all = True" in zf.read(name).decode()
