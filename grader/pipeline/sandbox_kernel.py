"""The Jupyter kernel that runs student submissions during autograding.

It is this project's own Python (with numpy and cvcourse: with a package missing, nbgrader
would still report success and give everyone zero), started in the sandbox of
:mod:`grader.pipeline.sandbox` with the limits of its ``Limits``, one thread for every
math library so that ``--jobs N`` kernels do not fight over the cores.

- :func:`kernel_home` writes the kernelspec ``cvcourse-grader`` (and the stand-ins for the
  modules a graded kernel may not import) into a temporary folder, once per grading process
  tree, and puts it on ``JUPYTER_PATH``;
- :class:`SandboxKernelManager` gives each kernel a folder of its own for its connection
  file and ZeroMQ ``ipc`` sockets (no TCP ports: none to clash, none to reach from another
  kernel), a user id of its own when the grader runs as root, and, when the kernel ends,
  kills everything it started and removes what it wrote (:func:`grader.pipeline.sandbox.reap`);
- run as a module, this file launches the kernel (:func:`grader.pipeline.sandbox.launch`).

``CVGRADE_SANDBOX`` chooses ``bwrap`` (the default) or ``none`` (``--unsafe-no-sandbox``).
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager

from grader.pipeline import sandbox

KERNEL_NAME = "cvcourse-grader"
DEFAULT_MEMORY_MB = sandbox.Limits.memory_mb


def install_kernelspec(folder: str | os.PathLike) -> Path:
    """Write ``<folder>/kernels/cvcourse-grader/kernel.json``; returns ``folder``."""
    spec_dir = Path(folder) / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [sys.executable, "-m", "grader.pipeline.sandbox_kernel", "{connection_file}"],
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
    that created it removes it when it exits. The folder is the grader's alone (mode 0700):
    no kernel sees it.
    """
    for folder in os.environ.get("JUPYTER_PATH", "").split(os.pathsep):
        spec = _spec_path(folder) if folder else None
        if spec is not None and spec.is_file():
            if json.loads(spec.read_text())["argv"][0] == sys.executable:
                return folder
    folder = os.fspath(install_kernelspec(tempfile.mkdtemp(prefix="cvgrade-kernels-")))
    stubs = sandbox.make_stubs(Path(folder) / "hidden")
    Path(folder, "hidden.json").write_text(json.dumps({k: os.fspath(v) for k, v in stubs.items()}))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    os.environ["JUPYTER_PATH"] = os.pathsep.join(
        filter(None, [folder, os.environ.get("JUPYTER_PATH", "")])
    )
    return folder


class SandboxKernelManager(AsyncKernelManager):
    """A kernel manager for sandboxed grading kernels (see the module docstring)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        from grader.pipeline.course import require_sandbox

        require_sandbox()  # never start a student's kernel unsandboxed by accident
        self.kernel_dir = sandbox.new_kernel_dir()
        self.transport = "ipc"
        self.ip = os.path.join(self.kernel_dir, "ipc")
        self.connection_file = os.path.join(self.kernel_dir, "kernel.json")
        bwrap = os.environ.get("CVGRADE_SANDBOX", "bwrap") == "bwrap"
        self.sandbox_uid = sandbox.UID_BASE + os.getpid() if bwrap and os.geteuid() == 0 else None
        self.cgroup = f"{sandbox.CGROUP_PREFIX}{self.sandbox_uid}" if self.sandbox_uid else None
        if self.cgroup:
            sandbox.remove_stale_cgroups()
        # The kernel must create its sockets here, then nothing more (the folder is not a
        # tmpfs of its own: whatever it wrote would live on the grader's disk). Under root
        # the folder stays ours, writable by the kernel's uid only until :meth:`seal`, and
        # the sticky bit keeps the kernel from replacing the connection file.
        os.chmod(self.kernel_dir, 0o1733 if self.sandbox_uid is not None else 0o700)

    async def _async_pre_start_kernel(self, **kw):
        env = dict(kw.pop("env", None) or os.environ)
        env["CVGRADE_SANDBOX_STUBS"] = Path(kernel_home(), "hidden.json").read_text()
        if self.sandbox_uid is not None:
            env["CVGRADE_SANDBOX_UID"] = str(self.sandbox_uid)
            env["CVGRADE_SANDBOX_CGROUP"] = self.cgroup
        env.pop("JPY_PARENT_PID", None)  # ipykernel's parent poller misreads a PID namespace
        kw["env"] = env
        cmd, kw = await super()._async_pre_start_kernel(**kw)
        if self.sandbox_uid is not None:  # the kernel must read its connection file
            os.chmod(self.connection_file, 0o644)
        kw.get("env", {}).pop("JPY_PARENT_PID", None)
        return cmd, kw

    def seal(self) -> None:
        """The kernel is up and its sockets bound: it may no longer create files here."""
        if self.sandbox_uid is not None:
            os.chmod(self.kernel_dir, 0o711)

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        await super()._async_cleanup_resources(restart=restart)
        if not restart:
            sandbox.reap(uid=self.sandbox_uid, cgroup=self.cgroup, kernel_dir=self.kernel_dir)


def main() -> None:
    sandbox.launch(sys.argv[1:])


if __name__ == "__main__":
    main()
