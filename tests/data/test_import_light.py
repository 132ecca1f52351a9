"""Importing cvcourse.data must stay cheap: numpy only, no heavy library."""

from __future__ import annotations

import subprocess
import sys


def test_importing_cvcourse_data_loads_no_heavy_module():
    heavy = ("torch", "scipy", "sklearn", "matplotlib", "PIL", "numba", "tqdm", "pooch", "requests")
    code = f"import sys, cvcourse.data; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
