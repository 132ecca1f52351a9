"""Lectures 1-3 (backprop; images and convolution; backprop through the layers).

Each lecture must

- be a clean nbformat 4.5 notebook for the python3 kernel: no outputs, stable unique ids,
  no IPython magics (the repository-wide rules, checked again here for these three);
- cover its sections, call its widgets (each as the last expression of its own cell) and
  the library functions it teaches with;
- have exercises with answers in cells tagged ``instructor`` (removed by the release step),
  and no later student-visible cell may depend on a name only an instructor cell defines;
- execute top to bottom with nbclient (kernel python3, working directory course/lectures)
  without errors and without Python warnings in its output.
"""

from __future__ import annotations

import ast
import re
import time
from pathlib import Path

import nbformat
import pytest

LECTURES = Path(__file__).resolve().parents[2] / "course" / "lectures"
INSTRUCTOR = "instructor"

EXPECTED = {
    "01_backprop.ipynb": {
        "sections": [
            "Training is minimisation",
            "The chain rule on a computational graph",
            "A worked example",
            "Check: finite differences",
            "vector-Jacobian product",
            "The layer contract",
            "Gradient checking",
            "the relative error",
            "Kinks",
            "Why float64",
            "Summary",
        ],
        "widgets": ["gradcheck_view"],
        "calls": ["check_gradients(", "numerical_gradient(", "relative_error("],
    },
    "02_images_and_convolution.ipynb": {
        "sections": [
            "Images as tensors",
            "Why fully connected layers fit images badly",
            "Convolution as pattern matching",
            "The formula",
            "Image filters",
            "Many channels in, many channels out",
            "Padding, stride and dilation",
            "Convolution as a matrix product",
            "Pooling",
            "Summary",
        ],
        "widgets": ["pattern_matching", "kernel_explorer", "conv_arithmetic", "pooling_explorer"],
        "calls": ["im2col(", "conv2d(", "filters.get_filter(", "max_pool2d(", "avg_pool2d("],
    },
    "03_backprop_through_layers.ipynb": {
        "sections": [
            "Losses",
            "Mean squared error",
            "Cross-entropy",
            "Activations",
            "Softmax, and why its derivative is a matrix",
            "The fully connected layer",
            "Max pooling",
            "Convolution",
            "Convolution or cross-correlation",
            "Stride",
            "a whole network",
            "Summary",
        ],
        "widgets": ["conv_backprop_explorer", "gradcheck_view"],
        "calls": ["conv2d_backward(", "max_pool2d_backward(", "check_gradients("],
    },
}
NAMES = sorted(EXPECTED)


def _read(name):
    return nbformat.read(LECTURES / name, as_version=4)


def _headings(nb) -> list[str]:
    return [
        line.lstrip("#").strip()
        for c in nb.cells
        if c.cell_type == "markdown"
        for line in c.source.splitlines()
        if line.startswith("#")
    ]


def _is_instructor(cell) -> bool:
    return INSTRUCTOR in cell.get("metadata", {}).get("tags", [])


def _defined(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def _loaded(tree: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def test_the_three_lectures_exist():
    missing = [name for name in NAMES if not (LECTURES / name).is_file()]
    assert not missing, f"missing lectures: {missing}"


@pytest.mark.parametrize("name", NAMES)
def test_lecture_is_a_clean_python3_notebook(name):
    nb = _read(name)
    nbformat.validate(nb)
    assert (nb.nbformat, nb.nbformat_minor) == (4, 5)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    ids = [c.get("id") for c in nb.cells]
    assert all(ids) and len(set(ids)) == len(ids), "every cell needs a unique id"
    generic = [i for i in ids if re.fullmatch(r"[0-9a-f]{8}(-[0-9a-f]{4}){0,4}.*", i)]
    assert not generic, f"cell ids should be meaningful, not random: {generic}"
    for c in nb.cells:
        if c.cell_type != "code":
            continue
        assert c.outputs == [] and c.execution_count is None, f"cell {c.id} has outputs"
        magics = [ln for ln in c.source.splitlines() if ln.lstrip().startswith(("%", "!"))]
        assert not magics, f"cell {c.id} uses IPython magics: {magics}"
        ast.parse(c.source)  # plain Python


@pytest.mark.parametrize("name", NAMES)
def test_lecture_covers_its_sections_widgets_and_library(name):
    nb = _read(name)
    expected = EXPECTED[name]
    headings = "\n".join(_headings(nb)).lower()
    missing = [s for s in expected["sections"] if s.lower() not in headings]
    assert not missing, f"{name}: sections not found among the headings: {missing}"
    assert _headings(nb)[0].startswith("Lecture"), "the notebook opens with its title"

    code = [c for c in nb.cells if c.cell_type == "code"]
    for widget in expected["widgets"]:
        cells = [c for c in code if f"widgets.{widget}(" in c.source]
        assert cells, f"{name}: no cell calls widgets.{widget}()"
        for c in cells:
            last = ast.parse(c.source).body[-1]
            assert isinstance(last, ast.Expr) and f"widgets.{widget}(" in ast.unparse(last), (
                f"{name}: cell {c.id} must end with the widgets.{widget}(...) call to display it"
            )
    source = "\n".join(c.source for c in code)
    assert "from cvcourse import" in source
    for call in expected["calls"]:
        assert call in source, f"{name}: expected a call to {call}...)"
    assert "import torch\n" not in code[0].source, "the lecture must not need torch to start"


@pytest.mark.parametrize("name", NAMES)
def test_exercises_have_instructor_answers_that_students_do_not_depend_on(name):
    nb = _read(name)
    answers = [c for c in nb.cells if _is_instructor(c)]
    assert answers, f"{name}: no cell tagged {INSTRUCTOR!r}"
    exercises = [c for c in nb.cells if c.cell_type == "markdown" and "**Exercise" in c.source]
    assert len(exercises) >= 2, f"{name}: expected at least two exercises"
    assert any(c.cell_type == "code" for c in answers), "an answer in code, runnable"

    # After the release step removes the instructor cells, every remaining cell must still
    # run: no student-visible cell may read a name that only an instructor cell defines.
    student_defined = set()
    for c in nb.cells:
        if c.cell_type == "code" and not _is_instructor(c):
            student_defined |= _defined(ast.parse(c.source))
    instructor_only = set()
    for c in nb.cells:
        if c.cell_type != "code":
            continue
        tree = ast.parse(c.source)
        if _is_instructor(c):
            instructor_only |= _defined(tree) - student_defined
        else:
            leaked = (_loaded(tree) - _defined(tree)) & instructor_only
            assert not leaked, f"{name}: cell {c.id} uses {leaked}, defined only in answers"


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_lecture_executes_top_to_bottom(name):
    from nbclient import NotebookClient

    nb = _read(name)
    client = NotebookClient(
        nb,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(LECTURES)}},
    )
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError naming the cell on any error
    elapsed = time.perf_counter() - start
    problems = []
    for c in nb.cells:
        for out in c.get("outputs", []):
            if out.output_type == "error":
                problems.append(f"{c.id}: {out.ename}: {out.evalue}")
            elif out.output_type == "stream" and out.name == "stderr":
                warnings = re.findall(r"\w+Warning: .*", out.text)
                problems += [f"{c.id}: {w}" for w in warnings]
    assert not problems, f"{name} ({elapsed:.0f} s):\n" + "\n".join(problems)
    widgets = [
        c.id
        for c in nb.cells
        for out in c.get("outputs", [])
        if "application/vnd.jupyter.widget-view+json" in out.get("data", {})
    ]
    assert len(widgets) >= len(EXPECTED[name]["widgets"]), f"{name}: widgets not displayed"
