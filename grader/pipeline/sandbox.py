"""The sandbox a submission's kernel runs in: bubblewrap, limits, and a clean end.

The kernel is started by :func:`launch` (the grading kernelspec's command) and sees:

- a read-only system: ``/usr``, ``/etc``, the Python installation, the virtual environment
  and the ``cvcourse`` package, and nothing else of the disk: not the course (sources,
  gradebook, other students), not the grader's code, not any other kernel's files;
- ``torch``, ``scipy.signal``, ``scipy.ndimage`` and cvcourse's reference ``kernels``, ``nn``
  and ``models`` replaced by modules that raise ``ImportError``, so a graded part cannot
  delegate to them at all (a module that is not installed needs no stand-in: its import
  fails anyway); the bundled digits (``cvcourse/data/digits.npz``) without their test split,
  which the judge keeps for measuring a trained model's accuracy, and scikit-learn's copy of
  the same digits, if it is installed, empty;
- a private ``/tmp`` and home (``/home/student``, its working folder, holding a copy of the
  submission's files), both size-limited tmpfs, and the kernel's own folder (its
  connection file and ZeroMQ ``ipc`` sockets) as the only writable places, and the judge's
  socket as its only way out: no network namespace at all;
- its own PID namespace, so that when the kernel ends everything it started ends too.

Limits: address space per process (``RLIMIT_AS``), file size, CPU time, and, when the
grader runs as root, a user id of its own for each kernel (``RLIMIT_NPROC`` then binds, and
everything that id runs is killed at the end) plus memory and process-count cgroups for the
whole tree where the machine lets us create them. :func:`reap` is what the kernel manager
runs when a kernel ends.

Without bubblewrap (a TA's macOS laptop) grading refuses to start unless the TA passes
``--unsafe-no-sandbox``; then :func:`launch` only applies the per-process limits.
"""

from __future__ import annotations

import glob
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

SANDBOX_HOME = "/home/student"
HELD_OUT_VARIABLE = "CVCOURSE_DIGITS_HELD_OUT"  # cvcourse.data.digits.HELD_OUT_VARIABLE
# A uid of its own per kernel: well above any real account.
UID_BASE = 1_000_000
CGROUP_ROOT = Path("/sys/fs/cgroup")
CGROUP_PREFIX = "cvgrade-"

#: Modules a graded kernel cannot import: (module, what to tell the student).
HIDDEN_MODULES = ("torch", "scipy.signal", "scipy.ndimage") + tuple(
    f"cvcourse.{name}" for name in ("kernels", "nn", "models")
)

#: Other copies of the digits' test split, as (package, file in it): shown empty. cvcourse's
#: digits.npz was made from scikit-learn's copy (scripts/make_digits.py).
HIDDEN_FILES = (("sklearn", "datasets/data/digits.csv.gz"),)

# The training digits' stand-in for cvcourse/data/digits.npz; its presence among the stubs
# tells the kernel (HELD_OUT_VARIABLE) that the test digits are held out.
_TRAINING_DIGITS = "training-digits.npz"


class SandboxUnavailable(RuntimeError):
    """bubblewrap is missing or cannot create a sandbox on this machine."""


@dataclass(frozen=True)
class Limits:
    """What one kernel may use (the environment carries them to :func:`launch`)."""

    memory_mb: int = 4096
    processes: int = 256
    tmpfs_mb: int = 256
    file_mb: int = 256
    cpu_seconds: int = 3600
    threads: int = 1

    def to_environment(self) -> dict[str, str]:
        return {f"CVGRADE_LIMIT_{k.upper()}": str(v) for k, v in self.__dict__.items()}

    @classmethod
    def from_environment(cls, environ=os.environ) -> Limits:
        values = {}
        for name in cls.__dataclass_fields__:
            text = environ.get(f"CVGRADE_LIMIT_{name.upper()}")
            if text:
                values[name] = int(text)
        return cls(**values)


# ---------------------------------------------------------------------------------------------
# Is there a sandbox?
# ---------------------------------------------------------------------------------------------


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


def check_available() -> str:
    """The bwrap binary, after checking that it can build a sandbox here; else raises
    :class:`SandboxUnavailable` saying how to install it or grade without it."""
    bwrap = bwrap_path()
    if bwrap is None:
        raise SandboxUnavailable(
            "grading needs a sandbox for student code, and bubblewrap (bwrap) is not "
            "installed: on Debian/Ubuntu run 'sudo apt-get install bubblewrap' (Fedora: dnf "
            "install bubblewrap). On a machine without it (macOS), pass --unsafe-no-sandbox "
            "to grade anyway: student code then runs with your user's rights, and every "
            "report says so."
        )
    probe = subprocess.run(
        [bwrap, *_namespace_flags(), "--ro-bind", "/", "/", "true"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if probe.returncode != 0:
        raise SandboxUnavailable(
            f"bubblewrap is installed but cannot create a sandbox here ({probe.stderr.strip()}"
            "): user namespaces may be disabled (sysctl kernel.unprivileged_userns_clone=1) "
            "or the grader lacks the rights; or pass --unsafe-no-sandbox"
        )
    return bwrap


def _namespace_flags() -> list[str]:
    flags = ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts"]
    flags += ["--unshare-cgroup-try", "--die-with-parent"]
    if os.geteuid() != 0:
        flags.insert(0, "--unshare-user")
    return flags


# ---------------------------------------------------------------------------------------------
# The view of the disk
# ---------------------------------------------------------------------------------------------


def _package_path(name: str) -> str | None:
    """Where module ``name`` lives (a package folder or a module file), without importing it."""
    parent, _, child = name.rpartition(".")
    try:
        if parent:
            spec = importlib.util.find_spec(parent)
            if spec is None or not spec.submodule_search_locations:
                return None
            base = Path(list(spec.submodule_search_locations)[0])
            for candidate in (base / child, base / f"{child}.py"):
                if candidate.exists():
                    return os.fspath(candidate)
            return None
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return list(spec.submodule_search_locations)[0]
    return spec.origin


def _module_name_of(real: str) -> str:
    """``torch`` for .../site-packages/torch, ``scipy.signal`` for .../scipy/signal."""
    parts = Path(real).with_suffix("").parts if real.endswith(".py") else Path(real).parts
    for module in HIDDEN_MODULES:
        names = tuple(module.split("."))
        if parts[-len(names) :] == names:
            return module
    return parts[-1]


def _stub_source(module: str) -> str:
    return (
        f"raise ImportError({module!r} + ' is not available while your assignment is graded: "
        "graded parts must be computed by your own NumPy code', name=" + repr(module) + ")\n"
    )


def _own_site_dirs() -> list[str]:
    paths = sysconfig.get_paths()
    return sorted({os.path.realpath(paths["purelib"]), os.path.realpath(paths["platlib"])})


def _includes_system_site_packages() -> bool:
    cfg = Path(sys.prefix) / "pyvenv.cfg"
    if not cfg.is_file():
        return sys.prefix == sys.base_prefix  # not a venv: the base site-packages are ours
    for line in cfg.read_text().splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "include-system-site-packages":
            return value.strip().lower() == "true"
    return False


def foreign_site_dirs() -> list[str]:
    """Package folders of other Pythons (the base one's too, unless the venv uses it) that the
    sandbox's read-only system would otherwise show: another Python run from the kernel
    could import torch or scipy from them."""
    patterns = [f"{sys.base_prefix}/lib/python3*/site-packages"]
    for prefix in ("/usr", "/usr/local"):
        patterns += [f"{prefix}/lib/python3*/site-packages", f"{prefix}/lib/python3*/dist-packages"]
    patterns.append("/usr/lib/python3/dist-packages")
    own = set(_own_site_dirs())
    if _includes_system_site_packages():
        own.add(os.path.realpath(sysconfig.get_paths(vars={"base": sys.base_prefix})["purelib"]))
    found = {os.path.realpath(p) for pattern in patterns for p in glob.glob(pattern)}
    return sorted(d for d in found if os.path.isdir(d) and d not in own)


def make_stubs(folder: Path) -> dict[str, Path]:
    """For each hidden module, wherever an import could find it, a stand-in (folder or
    file) under ``folder``; {real path: stub}."""
    stubs = {}
    reals = set()
    for module in HIDDEN_MODULES:
        real = _package_path(module)
        if real is not None:
            reals.add(os.path.realpath(real))
        for site in _own_site_dirs() + foreign_site_dirs():
            base = Path(site, *module.split("."))
            for candidate in (base, base.with_suffix(".py")):
                if candidate.exists():
                    reals.add(os.path.realpath(candidate))
    for index, real in enumerate(sorted(reals)):
        module = _module_name_of(real)
        stub = folder / f"{index}-{module.replace('.', '_')}"
        if os.path.isdir(real):
            stub.mkdir(parents=True, exist_ok=True)
            (stub / "__init__.py").write_text(_stub_source(module))
        else:
            stub = stub.with_suffix(".py")
            stub.parent.mkdir(parents=True, exist_ok=True)
            stub.write_text(_stub_source(module))
        stub.chmod(0o755 if stub.is_dir() else 0o644)
        stubs[real] = stub
    # The digits' test split is held out: the grader measures accuracy on it (a4) through
    # the student's forward, so the kernel must not hold those digits or their labels. If
    # they cannot be held out, no kernel starts: grading with them visible would be a hole.
    from cvcourse.data import digits

    try:
        real = os.path.realpath(digits._digits_file())
        stubs[real] = digits.write_training_digits(folder / _TRAINING_DIGITS)
        stubs[real].chmod(0o644)
    except (OSError, ValueError) as exc:
        raise SandboxUnavailable(
            f"cannot hold the digits' test split out of the sandbox ({exc}): "
            "reinstall cvcourse, whose digits.npz this needs"
        ) from exc
    for index, real in enumerate(_hidden_file_paths()):
        stub = folder / f"empty-{index}-{os.path.basename(real)}"
        stub.parent.mkdir(parents=True, exist_ok=True)
        stub.write_bytes(b"")
        stub.chmod(0o644)
        stubs[real] = stub
    return stubs


def _hidden_file_paths() -> list[str]:
    """Real paths of :data:`HIDDEN_FILES` wherever an import could find their package (the
    other Pythons' package folders are hidden whole, :func:`foreign_site_dirs`)."""
    found = set()
    for package, relative in HIDDEN_FILES:
        folders = [os.path.join(site, package) for site in _own_site_dirs()]
        folders.append(_package_path(package))
        for folder in filter(None, folders):
            path = os.path.join(folder, relative)
            if os.path.isfile(path):
                found.add(os.path.realpath(path))
    return sorted(found)


def _readable_roots() -> list[str]:
    """The read-only part of the sandbox: the system, Python, the venv, cvcourse."""
    roots = ["/usr", "/etc"]
    roots += [sys.base_prefix, sys.prefix]
    cvcourse = _package_path("cvcourse")
    if cvcourse:
        roots.append(cvcourse)
    # Every folder an import could come from, e.g. a source checkout of cvcourse, unless it
    # also holds the grader (an editable install points into the repository).
    out = []
    for root in roots:
        real = os.path.realpath(root)
        if os.path.isdir(real) and real not in out:
            out.append(real)
    return out


def _parents_with_mode(path: str, made: set[str]) -> list[str]:
    # bwrap makes missing mount points owner-only; the kernel's uid must pass through them.
    args = []
    parts = Path(path).parts
    for i in range(2, len(parts)):
        parent = os.fspath(Path(*parts[:i]))
        if parent not in made and parent not in ("/usr", "/etc"):
            made.add(parent)
            args += ["--perms", "0755", "--dir", parent]
    return args


def bwrap_command(
    bwrap: str,
    *,
    kernel_dir: str,
    submission: str,
    judge_socket: str | None,
    stubs: dict[str, Path],
    limits: Limits,
    uid: int | None,
    inner: list[str],
) -> list[str]:
    """The full command that runs ``inner`` (the kernel) in the sandbox."""
    cmd = [bwrap, *_namespace_flags(), "--proc", "/proc", "--dev", "/dev"]
    for name in ("bin", "lib", "lib64", "lib32", "sbin"):
        path = f"/{name}"
        if os.path.islink(path):
            cmd += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            cmd += ["--ro-bind", path, path]
    made: set[str] = set()
    for root in _readable_roots():
        cmd += _parents_with_mode(root, made) + ["--ro-bind", root, root]
    for real, stub in stubs.items():
        cmd += ["--ro-bind", os.fspath(stub), real]
    for site in foreign_site_dirs():
        cmd += ["--perms", "0555", "--tmpfs", site]
    size = str(limits.tmpfs_mb * 2**20)
    cmd += ["--perms", "1777", "--size", size, "--tmpfs", "/tmp"]
    cmd += ["--perms", "1777", "--size", size, "--tmpfs", "/dev/shm"]
    cmd += ["--perms", "0755", "--dir", "/home"]
    cmd += ["--perms", "1777", "--size", size, "--tmpfs", SANDBOX_HOME]
    cmd += ["--ro-bind", submission, "/submission"]
    cmd += _parents_with_mode(kernel_dir, made) + ["--bind", kernel_dir, kernel_dir]
    if judge_socket:
        folder = os.path.dirname(judge_socket)
        cmd += _parents_with_mode(folder, made) + ["--ro-bind", folder, folder]
    cmd += ["--chdir", SANDBOX_HOME, "--hostname", "sandbox", "--clearenv"]
    environment = _kernel_environment(judge_socket, limits)
    if any(os.path.basename(os.fspath(stub)) == _TRAINING_DIGITS for stub in stubs.values()):
        environment[HELD_OUT_VARIABLE] = "1"
    for key, value in environment.items():
        cmd += ["--setenv", key, value]
    if uid is not None:
        # bwrap runs as root (it needs to read the Python under /root, say); the kernel and
        # all it starts run as a uid of their own, with no capabilities left.
        setpriv = shutil.which("setpriv") or "/usr/bin/setpriv"
        cmd += [setpriv, f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
        cmd += ["--no-new-privs", "--inh-caps=-all", "--bounding-set=-all", "--"]
    copy_in = 'cp -r /submission/. . 2>/dev/null; mkdir -p .ipython .config; exec "$@"'
    return cmd + ["/bin/sh", "-c", copy_in, "sh", *inner]


def _kernel_environment(judge_socket: str | None, limits: Limits) -> dict[str, str]:
    env = {
        "PATH": f"{os.path.dirname(sys.executable)}:/usr/local/bin:/usr/bin:/bin",
        "HOME": SANDBOX_HOME,
        "USER": "student",
        "LANG": "C.UTF-8",
        "TMPDIR": "/tmp",
        "IPYTHONDIR": f"{SANDBOX_HOME}/.ipython",
        "MPLCONFIGDIR": f"{SANDBOX_HOME}/.config/matplotlib",
        "JUPYTER_RUNTIME_DIR": "/tmp/jupyter",
        "NUMBA_CACHE_DIR": "/tmp/numba",
        "CVCOURSE_DATA": f"{SANDBOX_HOME}/.cache/cvcourse",
        "PYTHONNOUSERSITE": "1",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    }
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[variable] = str(limits.threads)
    env["NUMBA_NUM_THREADS"] = str(limits.threads)
    if judge_socket:
        env["CVCOURSE_JUDGE_SOCKET"] = judge_socket
    return env


# ---------------------------------------------------------------------------------------------
# Limits for the whole tree
# ---------------------------------------------------------------------------------------------


def cgroup_paths(name: str) -> list[Path]:
    """Where the kernel's cgroups are (v1 memory and pids, or one v2 group)."""
    if (CGROUP_ROOT / "cgroup.controllers").exists():
        return [CGROUP_ROOT / name]
    return [CGROUP_ROOT / "memory" / name, CGROUP_ROOT / "pids" / name]


def _write(path: Path, value: str) -> bool:
    try:
        path.write_text(value)
        return True
    except OSError:
        return False


def join_cgroups(name: str, limits: Limits) -> list[str]:
    """Create the kernel's cgroups with their limits and move this process in.

    Returns what could not be set (for the grading notes). Needs root and a writable
    cgroup hierarchy; elsewhere only the per-process limits hold.
    """
    missing = []
    memory = str(limits.memory_mb * 2**20)
    for path in cgroup_paths(name):
        try:
            path.mkdir(exist_ok=True)
        except OSError:
            missing.append(f"cgroup {path}")
            continue
        if path.parent.name == "memory":
            ok = _write(path / "memory.limit_in_bytes", memory)
            _write(path / "memory.memsw.limit_in_bytes", memory)
        elif path.parent.name == "pids":
            ok = _write(path / "pids.max", str(limits.processes))
        else:
            ok = _write(path / "memory.max", memory) and _write(
                path / "pids.max", str(limits.processes)
            )
            _write(path / "memory.swap.max", "0")
        if not (ok and _write(path / "cgroup.procs", str(os.getpid()))):
            missing.append(f"limits of cgroup {path}")
    return missing


def apply_rlimits(limits: Limits) -> None:
    import resource

    def cap(kind, value):
        try:
            resource.setrlimit(kind, (value, value))
        except (ValueError, OSError):
            pass

    cap(resource.RLIMIT_AS, limits.memory_mb * 2**20)
    cap(resource.RLIMIT_FSIZE, limits.file_mb * 2**20)
    cap(resource.RLIMIT_CPU, limits.cpu_seconds)
    cap(resource.RLIMIT_CORE, 0)
    cap(resource.RLIMIT_NOFILE, 1024)
    cap(resource.RLIMIT_NPROC, limits.processes)


# ---------------------------------------------------------------------------------------------
# Start and end
# ---------------------------------------------------------------------------------------------


def launch(argv: list[str]) -> None:
    """The grading kernelspec's command: ``python -m grader.pipeline.sandbox_kernel FILE``.

    Runs outside the sandbox, in the folder nbgrader grades in; reads its settings from the
    environment the kernel manager set, then replaces itself with the sandboxed kernel.
    """
    connection_file = os.path.abspath(argv[0])
    limits = Limits.from_environment()
    inner = [sys.executable, "-m", "ipykernel_launcher", "-f", connection_file]
    inner += ["--IPKernelApp.log_level=CRITICAL"]  # no connection banner on the TA's terminal
    mode = os.environ.get("CVGRADE_SANDBOX", "bwrap")
    judge_socket = os.environ.get("CVCOURSE_JUDGE_SOCKET")
    if mode != "bwrap":
        apply_rlimits(limits)
        env = dict(os.environ)
        env.pop("JPY_PARENT_PID", None)
        for key, value in _kernel_environment(judge_socket, limits).items():
            if key in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
                env[key] = value
        env["NUMBA_NUM_THREADS"] = str(limits.threads)
        os.execve(inner[0], inner, env)
    uid = int(os.environ["CVGRADE_SANDBOX_UID"]) if os.geteuid() == 0 else None
    if uid is not None:
        join_cgroups(os.environ.get("CVGRADE_SANDBOX_CGROUP", f"{CGROUP_PREFIX}{uid}"), limits)
    stubs = {Path(k): Path(v) for k, v in json.loads(os.environ["CVGRADE_SANDBOX_STUBS"]).items()}
    cmd = bwrap_command(
        os.environ.get("CVGRADE_BWRAP") or bwrap_path() or "bwrap",
        kernel_dir=os.path.dirname(connection_file),
        submission=os.getcwd(),
        judge_socket=judge_socket,
        stubs={os.fspath(k): v for k, v in stubs.items()},
        limits=limits,
        uid=uid,
        inner=inner,
    )
    apply_rlimits(limits)
    os.execv(cmd[0], cmd)


def kill_uid(uid: int) -> None:
    """SIGKILL every process running as ``uid`` (root only; a kernel's own uid)."""
    if os.geteuid() != 0 or uid < UID_BASE:
        return
    pid = os.fork()
    if pid == 0:  # the child becomes uid and kills all its processes, then itself
        try:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            os.kill(-1, signal.SIGKILL)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


def reap(*, uid: int | None, cgroup: str | None, kernel_dir: str | None) -> None:
    """Kill everything the kernel started and remove its cgroups and folder."""
    if uid is not None:
        kill_uid(uid)
    if cgroup:
        for path in cgroup_paths(cgroup):
            if not path.is_dir():
                continue
            deadline = time.monotonic() + 5.0
            while time.monotonic() < deadline:
                try:
                    pids = [int(p) for p in (path / "cgroup.procs").read_text().split()]
                except OSError:
                    break
                if not pids:
                    break
                for pid in pids:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
                time.sleep(0.05)
            _remove_cgroup(path)
    if kernel_dir:
        shutil.rmtree(kernel_dir, ignore_errors=True)


def _remove_cgroup(path: Path, wait: float = 2.0) -> None:
    # The kernel reaps its last children a moment after they are killed; until then the
    # cgroup is busy.
    deadline = time.monotonic() + wait
    while True:
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            if time.monotonic() > deadline:
                return
            time.sleep(0.05)


def remove_stale_cgroups() -> None:
    """Remove the empty cgroups of kernels whose grading process has gone (a worker killed
    before it could reap): their uid is UID_BASE plus that process's pid."""
    for parent in {p.parent for p in cgroup_paths(CGROUP_PREFIX + "0")}:
        for path in parent.glob(CGROUP_PREFIX + "*"):
            try:
                pid = int(path.name.removeprefix(CGROUP_PREFIX)) - UID_BASE
            except ValueError:
                continue
            if pid > 0 and not os.path.exists(f"/proc/{pid}"):
                _remove_cgroup(path, wait=0.0)


def new_kernel_dir() -> str:
    """A fresh folder for one kernel's connection file and sockets (RAM-backed if it can)."""
    base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else tempfile.gettempdir()
    return tempfile.mkdtemp(prefix="cvgrade-kernel-", dir=base)
