"""The Jupyter kernel that runs student submissions during autograding.

It is this project's own Python (so numpy, torch, cvcourse and grader are there: with a
package missing, nbgrader would still report success and give everyone zero), started
with limits:

- address space capped at ``CVGRADE_MEMORY_MB`` (default 4096): a submission that eats
  memory gets ``MemoryError`` or dies, and ``grader.preprocessors`` grades what ran;
- one thread for every math library (``CVGRADE_THREADS``, default 1), so that ``--jobs N``
  kernels do not fight over the cores.

:func:`kernel_home` writes the kernelspec ``cvcourse-grader`` into a temporary folder, once
per grading process tree, and puts it on ``JUPYTER_PATH``; run as a module, this file is the
kernel.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import sys
import tempfile
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


def _spec_path(folder: str) -> Path:
    return Path(folder) / "kernels" / KERNEL_NAME / "kernel.json"


def kernel_home() -> str:
    """A folder holding our kernelspec, on ``JUPYTER_PATH`` (created on the first call).

    Worker processes inherit ``JUPYTER_PATH`` and reuse their parent's folder; the process
    that created it removes it when it exits.
    """
    for folder in os.environ.get("JUPYTER_PATH", "").split(os.pathsep):
        spec = _spec_path(folder) if folder else None
        if spec is not None and spec.is_file():
            if json.loads(spec.read_text())["argv"][0] == sys.executable:
                return folder
    folder = os.fspath(install_kernelspec(tempfile.mkdtemp(prefix="cvgrade-kernels-")))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    os.environ["JUPYTER_PATH"] = os.pathsep.join(
        filter(None, [folder, os.environ.get("JUPYTER_PATH", "")])
    )
    return folder


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
