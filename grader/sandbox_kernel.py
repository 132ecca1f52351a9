"""The Jupyter kernel that runs student submissions during autograding.

It is this project's own Python (so numpy, torch, cvcourse and grader are there: with a
package missing, nbgrader would still report success and give everyone zero), started
with limits:

- address space capped at ``CVGRADE_MEMORY_MB`` (default 4096): a submission that eats
  memory gets ``MemoryError`` or dies, and ``grader.preprocessors`` grades what ran;
- one thread for every math library (``CVGRADE_THREADS``, default 1), so that ``--jobs N``
  kernels do not fight over the cores.

``install_kernelspec(folder)`` writes the kernelspec ``cvcourse-grader`` into a folder that
the grading process puts on ``JUPYTER_PATH``; run as a module, this file is the kernel.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

KERNEL_NAME = "cvcourse-grader"
DEFAULT_MEMORY_MB = 4096

_THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMBA_NUM_THREADS",
)


def install_kernelspec(folder: str | os.PathLike) -> Path:
    """Write ``<folder>/kernels/cvcourse-grader/kernel.json``; returns ``folder``."""
    spec_dir = Path(folder) / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [sys.executable, "-m", "grader.sandbox_kernel", "-f", "{connection_file}"]
        + ["--IPKernelApp.log_level=ERROR"],  # no transport warnings on the TA's terminal
        "display_name": "cvcourse grader (sandboxed)",
        "language": "python",
        "metadata": {"debugger": False},
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=1))
    return Path(folder)


def _apply_limits() -> None:
    import resource

    memory_mb = int(os.environ.get("CVGRADE_MEMORY_MB", DEFAULT_MEMORY_MB))
    if memory_mb > 0:
        limit = memory_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    threads = os.environ.get("CVGRADE_THREADS", "1")
    for variable in _THREAD_VARIABLES:
        os.environ[variable] = threads


def main() -> None:
    _apply_limits()  # before numpy or anything that starts threads is imported
    from ipykernel.kernelapp import launch_new_instance

    launch_new_instance()


if __name__ == "__main__":
    main()
