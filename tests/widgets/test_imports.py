"""Importing cvcourse stays light: no torch, no ipywidgets, no pyplot (a fresh interpreter)."""

from __future__ import annotations

import subprocess
import sys

PROBE = (
    "import sys; import {module}; "
    "print(','.join(m for m in ('torch', 'ipywidgets', 'matplotlib.pyplot') if m in sys.modules))"
)


def _loaded(module: str) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(module=module)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return set(filter(None, result.stdout.strip().split(",")))


def test_import_cvcourse_loads_neither_torch_nor_ipywidgets_nor_pyplot():
    assert _loaded("cvcourse") == set()


def test_import_cvcourse_widgets_loads_ipywidgets_but_not_torch_or_pyplot():
    assert _loaded("cvcourse.widgets") == {"ipywidgets"}
