"""Running one step of untrusted work in a bubblewrap sandbox (or, if asked, without one).

``isolation="bwrap"`` (the default on Linux) runs ``python -m dbench.submissions.worker`` under
`bubblewrap <https://github.com/containers/bubblewrap>`_ in new user, PID, network, IPC, UTS and
cgroup namespaces, with no network at all and a filesystem made only of:

- read-only: ``/usr`` (and its ``/bin``, ``/lib`` links), the Python installation and virtual
  environment the scorer runs, the scorer's own ``dbench`` package (nothing else of its source tree),
  the dataset folder, and the step's inputs;
- writable: a size-limited tmpfs ``/tmp`` (also ``HOME``), a small ``/dev/shm``, the one output file
  the step writes (and, for the *prepare* step only, the folder it unpacks into);
- its own ``/proc`` (the scorer's processes are invisible) and a minimal ``/dev``; the root that
  holds these mount points is remounted read-only.

The environment is cleared, bubblewrap itself starts with the same clean environment (so not even
its own ``/proc/<pid>/environ`` holds a scorer secret), the sandbox dies with the scorer
(``--die-with-parent``), has no terminal (``--new-session``) and may not create further user
namespaces (``--disable-userns``); a seccomp filter refuses the kernel interfaces no encoder needs
(:mod:`dbench.submissions.seccomp`). Limits: ``RLIMIT_AS``, ``RLIMIT_FSIZE``, ``RLIMIT_NOFILE`` and no
core files for every process; a cgroup with ``pids.max`` and a memory limit where one can be created
(:mod:`dbench.submissions.cgroups`), else ``RLIMIT_NPROC`` set inside the sandbox's user namespace
(counted per sandbox). A root scorer needs the cgroup: the kernel does not apply ``RLIMIT_NPROC`` to
uid 0. At the deadline the whole sandbox is killed: bubblewrap's process group, the PID namespace
(its init dies, and the kernel kills every process in the namespace, detached daemons included) and
the cgroup. stderr and the progress channel are read with the deadline and a size cap.

``isolation="none"`` runs the same worker as a plain subprocess with the same rlimits and a clean
environment: no namespaces, the scorer's files and network reachable. Only for trusted submissions.
"""

from __future__ import annotations

import contextlib
import os
import resource
import selectors
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from dbench.errors import ConfigError
from dbench.submissions import cgroups, seccomp
from dbench.submissions.limits import Limits
from dbench.submissions.signing import key_file
from dbench.submissions.worker import PREFIX, PROGRESS_PREFIX

ISOLATIONS = ("bwrap", "none")
INSTALL_HINT = ("install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap; Fedora: dnf install bubblewrap), "
                "or pass --isolation none to score trusted submissions without a sandbox")
NONE_WARNING = ("isolation none: submission code ran without a sandbox, with the scorer's user rights, files "
                "and network (see docs/security.md)")
#: Where the scorer's dbench package appears inside the sandbox (``PYTHONPATH``).
DBENCH_INSIDE = "/opt/dbench"
_DBENCH_PACKAGE = Path(__file__).resolve().parents[1]
STDERR_CAP = 64 << 10
_SHM_BYTES = 64 << 20


@dataclass(frozen=True)
class Bind:
    """A host path seen inside the sandbox."""

    host: Path
    inside: str
    writable: bool = False


@dataclass(frozen=True)
class Outcome:
    """How one sandboxed step ended: ``ok``, else one line saying why."""

    ok: bool
    reason: str = ""
    seconds: float = 0.0
    timed_out: bool = False


@dataclass
class Sandbox:
    """One step's sandbox: what it sees, how it is limited, how long it may run."""

    isolation: str
    limits: Limits
    scratch: Path  # host folder: HOME/TMPDIR with isolation none (bwrap uses a tmpfs instead)
    binds: list[Bind] = field(default_factory=list)
    data_dirs: list[Path] = field(default_factory=list)

    def path(self, host: str | os.PathLike[str], inside: str, *, writable: bool = False) -> str:
        """Expose ``host`` at ``inside``; returns the path the worker must be given."""
        host = Path(host).resolve()
        self.binds.append(Bind(host, inside, writable))
        return inside if self.isolation == "bwrap" else str(host)

    def data_dir(self, host: str | os.PathLike[str]) -> str:
        """Expose a dataset folder read-only at its own path (dataset loaders may record it)."""
        host = Path(host).resolve()
        self.data_dirs.append(host)
        return str(host)

    def run(self, worker_args: Sequence[str], *, deadline: float, file_size: int,
            on_progress: Callable[[str], None] | None = None) -> Outcome:
        """Run ``python -m dbench.submissions.worker WORKER_ARGS`` until it exits or ``deadline`` (monotonic)."""
        start = time.monotonic()
        exposed = self.exposed_secret()
        if exposed:
            return Outcome(False, exposed)
        if deadline - start <= 0:
            return Outcome(False, f"exceeded the wall-time limit of {self.limits.wall_seconds:g} s", timed_out=True)
        group = cgroups.create(memory_bytes=self.limits.memory_bytes, max_processes=self.limits.max_processes)
        if group is None and os.geteuid() == 0 and self.isolation == "bwrap":
            return Outcome(False, ROOT_WITHOUT_CGROUP)
        read_fd, write_fd = os.pipe()
        args = list(worker_args) + ["--progress-fd", str(write_fd)]
        if group is None and self.isolation == "bwrap":
            args += ["--max-processes", str(self.limits.max_processes)]  # counted per user namespace
        filter_fd = seccomp.program_fd() if self.isolation == "bwrap" and seccomp_problem() is None else None
        command = self._command(args, seccomp_fd=filter_fd)
        env = self._outer_env()
        try:
            proc = subprocess.Popen(
                command, env=env, cwd=self.scratch, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE, pass_fds=(write_fd,) if filter_fd is None else (write_fd, filter_fd),
                start_new_session=True, preexec_fn=_limit_child(self.limits, file_size, group),
            )
        except OSError as exc:
            os.close(read_fd)
            os.close(write_fd)
            if group is not None:
                group.remove()
            return Outcome(False, f"could not start the sandbox ({exc.strerror}); {INSTALL_HINT}")
        finally:
            if filter_fd is not None:
                os.close(filter_fd)
        os.close(write_fd)
        try:
            timed_out, stderr = _collect(proc, read_fd, deadline, on_progress)
        finally:
            os.close(read_fd)
            _kill(proc, group)
        seconds = time.monotonic() - start
        if timed_out:
            return Outcome(False, f"exceeded the wall-time limit of {self.limits.wall_seconds:g} s", seconds, True)
        oom = group is not None and group.out_of_memory()
        if group is not None:
            group.remove()
        return _outcome(proc.returncode, stderr, oom=oom, seconds=seconds)

    def exposed_secret(self) -> str | None:
        """Why this sandbox would see the scorer's signing key (one line), or None.

        Everything bound in (the Python folders, dbench, the dataset folders, the step's files) is
        checked, resolved, against the key's folder: ``--data-dir ~`` would otherwise hand the key to
        every submission.
        """
        if self.isolation != "bwrap":
            return None
        hosts = [*_python_folders(), _DBENCH_PACKAGE, *self.data_dirs, *(b.host for b in self.binds)]
        return exposed_secret(hosts)

    # -- the command -------------------------------------------------------------------------------

    def _inner_env(self, home: str) -> dict[str, str]:
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "HOME": home,
            "TMPDIR": home,
            "XDG_CACHE_HOME": f"{home}/.cache",
            "MPLCONFIGDIR": f"{home}/.config/matplotlib",
            "NUMBA_CACHE_DIR": f"{home}/.cache/numba",
            "PYTHONPATH": DBENCH_INSIDE if self.isolation == "bwrap" else str(_DBENCH_PACKAGE.parent),
            "PYTHONNOUSERSITE": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2"),
            "MALLOC_ARENA_MAX": "2",
        }
        for key in ("CUDA_VISIBLE_DEVICES", "NUMBA_DISABLE_JIT"):
            if key in os.environ:
                env[key] = os.environ[key]
        return env

    def _outer_env(self) -> dict[str, str]:
        """bubblewrap's own environment: nothing of the scorer's (its /proc/<pid>/environ is readable inside)."""
        if self.isolation == "bwrap":
            return {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
        return self._inner_env(str(self.scratch))

    def _command(self, args: list[str], *, seccomp_fd: int | None = None) -> list[str]:
        python = [sys.executable, "-m", "dbench.submissions.worker", *args]
        if self.isolation == "none":
            return python
        cmd = [bwrap_path(), "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent",
               "--new-session", "--hostname", "dbench-sandbox", "--clearenv"]
        for key, value in self._inner_env("/tmp").items():
            cmd += ["--setenv", key, value]
        # The writable tmpfs folders come first: bubblewrap mounts in order, so a virtual
        # environment, checkout or data folder that lives under /tmp (a CI checkout, say) is bound
        # on top of the fresh /tmp instead of being hidden by it.
        cmd += ["--proc", "/proc", "--dev", "/dev",
                "--size", str(self.limits.scratch_bytes), "--tmpfs", "/tmp",
                "--size", str(_SHM_BYTES), "--tmpfs", "/dev/shm"]
        for source, target, kind in _system_mounts():
            cmd += [kind, source, target]
        for folder in _python_folders():
            cmd += ["--ro-bind", str(folder), str(folder)]
        cmd += ["--ro-bind", str(_DBENCH_PACKAGE), f"{DBENCH_INSIDE}/dbench"]
        for folder in self.data_dirs:
            cmd += ["--ro-bind", str(folder), str(folder)]
        for bind in self.binds:
            cmd += ["--bind" if bind.writable else "--ro-bind", str(bind.host), bind.inside]
        # The root bubblewrap builds (a tmpfs holding the mount points) becomes read-only: nothing
        # can be written outside /tmp, /dev/shm and the step's output.
        cmd += ["--remount-ro", "/", "--chdir", "/tmp"]
        if seccomp_fd is not None:
            cmd += ["--seccomp", str(seccomp_fd)]  # seccomp.py: kernel interfaces no encoder needs
        cmd += ["--", *python]
        return cmd


ROOT_WITHOUT_CGROUP = (
    "the scorer runs as root but cannot create a pids cgroup, and the kernel does not apply RLIMIT_NPROC "
    "to root, so a fork bomb could not be contained; run dbench score as a normal user, or give it a "
    "writable cgroup (v1 pids, or a delegated v2 with memory and pids)"
)


def secret_folders() -> list[Path]:
    """Host folders no sandbox may see: the one holding the signing key file."""
    return [key_file().parent.resolve()]


def exposed_secret(hosts: Sequence[Path]) -> str | None:
    """Why binding ``hosts`` into a sandbox would show it the scorer's key folder, or None."""
    for secret in secret_folders():
        for host in hosts:
            if _under(secret, Path(host).resolve()):
                return (f"{host} holds the scorer's key folder {secret} and would be visible inside the sandbox; "
                        f"keep the key elsewhere (set DBENCH_CONFIG_DIR) or use a data folder that does not contain it")
    return None


def _limit_child(limits: Limits, file_size: int, group: cgroups.Cgroup | None) -> Callable[[], None]:
    def apply() -> None:
        if group is not None:
            group.enter()
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_size, file_size))
        resource.setrlimit(resource.RLIMIT_NOFILE, (limits.max_open_files, limits.max_open_files))

    return apply


def _collect(proc: subprocess.Popen, progress_fd: int, deadline: float,
             on_progress: Callable[[str], None] | None) -> tuple[bool, bytes]:
    """Read stderr (keeping the last STDERR_CAP bytes) and progress lines until exit or the deadline."""
    assert proc.stderr is not None
    selector = selectors.DefaultSelector()
    selector.register(proc.stderr, selectors.EVENT_READ, "stderr")
    os.set_blocking(progress_fd, False)
    selector.register(progress_fd, selectors.EVENT_READ, "progress")
    tail = bytearray()
    pending = bytearray()
    open_streams = 2
    exited_at = None
    try:
        while open_streams:
            now = time.monotonic()
            if now >= deadline:
                return True, bytes(tail)
            if proc.poll() is not None:
                # Everything in the sandbox dies with it; with isolation none an escaped process may
                # hold the pipes open: read what is there for a moment, then stop.
                exited_at = exited_at or now
                if now - exited_at > 1.0:
                    break
            for key, _ in selector.select(timeout=min(0.2, max(deadline - now, 0.01))):
                fd = key.fileobj if isinstance(key.fileobj, int) else key.fileobj.fileno()
                try:
                    chunk = os.read(fd, 1 << 16)
                except BlockingIOError:
                    continue
                if not chunk:
                    selector.unregister(key.fileobj)
                    open_streams -= 1
                    continue
                if key.data == "stderr":
                    tail += chunk
                    del tail[:-STDERR_CAP]
                else:
                    pending += chunk
                    *lines, rest = bytes(pending).split(b"\n")
                    pending = bytearray(rest[-4096:])
                    for line in lines[-50:]:
                        text = line.decode("utf-8", "replace")
                        if on_progress is not None and text.startswith(PROGRESS_PREFIX) and len(text) < 400:
                            on_progress(text[len(PROGRESS_PREFIX):])
        remaining = deadline - time.monotonic()
        try:
            proc.wait(timeout=max(remaining, 0.01))
        except subprocess.TimeoutExpired:
            return True, bytes(tail)
        return False, bytes(tail)
    finally:
        selector.close()


def _kill(proc: subprocess.Popen, group: cgroups.Cgroup | None) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    if group is not None:
        group.kill_all()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)
    if proc.stderr is not None:
        proc.stderr.close()


def _outcome(returncode: int, stderr: bytes, *, oom: bool, seconds: float) -> Outcome:
    lines = stderr.decode("utf-8", "replace").strip().splitlines()
    if returncode == 0:
        return Outcome(True, seconds=seconds)
    for line in reversed(lines):
        if line.startswith(PREFIX):
            return Outcome(False, _one_line(line[len(PREFIX):]), seconds)
    if oom or any("MemoryError" in line or "can't allocate memory" in line for line in lines):
        return Outcome(False, "exceeded the memory limit", seconds)
    bwrap_line = next((line for line in lines if line.startswith("bwrap:")), None)
    if bwrap_line:
        return Outcome(False, f"the sandbox could not start ({_one_line(bwrap_line)}); {INSTALL_HINT}", seconds)
    if returncode < 0 or returncode in (128 + signal.SIGKILL, 128 + signal.SIGSEGV):
        number = -returncode if returncode < 0 else returncode - 128
        name = signal.Signals(number).name
        hint = " (probably exceeded the memory limit)" if name == "SIGKILL" else ""
        return Outcome(False, f"worker killed by {name}{hint}", seconds)
    last = _one_line(lines[-1]) if lines else "no output"
    return Outcome(False, f"worker exited with status {returncode}: {last}", seconds)


def _one_line(text: str) -> str:
    return "".join(ch if ch.isprintable() else " " for ch in text.strip())[:400]


# -- what the sandbox sees ---------------------------------------------------------------------------


def _system_mounts() -> list[tuple[str, str, str]]:
    """``/usr`` and the top-level links into it; the few ``/etc`` files the loader and Python read."""
    mounts = [("/usr", "/usr", "--ro-bind")]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = Path("/") / name
        if path.is_symlink():
            mounts.append((os.readlink(path), str(path), "--symlink"))
        elif path.is_dir():
            mounts.append((str(path), str(path), "--ro-bind"))
    for name in ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "alternatives"):
        if (Path("/etc") / name).exists():
            mounts.append((f"/etc/{name}", f"/etc/{name}", "--ro-bind"))
    return mounts


def _python_folders() -> list[Path]:
    """The interpreter's installation and the virtual environment (outside /usr), as few folders as possible."""
    candidates = {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(), Path(sys.executable).resolve().parent.parent}
    for entry in sys.path:
        if entry and Path(entry).is_dir() and "site-packages" in entry:
            candidates.add(Path(entry).resolve())
    folders = sorted(p for p in candidates if p.is_dir() and not _under(p, Path("/usr")))
    return [p for p in folders if not any(_under(p, q) and p != q for q in folders)]


def _under(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


@lru_cache(maxsize=1)
def bwrap_path() -> str:
    return shutil.which("bwrap") or ""


@lru_cache(maxsize=1)
def bwrap_problem() -> str | None:
    """Why bubblewrap cannot sandbox here (one line), or None when it works."""
    if not sys.platform.startswith("linux"):
        return f"bubblewrap sandboxes need Linux (this is {sys.platform}); pass --isolation none to score trusted submissions"
    path = bwrap_path()
    if not path:
        return f"bubblewrap (bwrap) is not installed; {INSTALL_HINT}"
    try:
        help_text = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        return f"bubblewrap at {path} does not run ({exc}); {INSTALL_HINT}"
    missing = [flag for flag in ("--disable-userns", "--size", "--die-with-parent") if flag not in help_text]
    if missing:
        return f"bubblewrap at {path} is too old (no {missing[0]}; version 0.8 or later is needed); upgrade it"
    probe = [*_probe_command(path), "--", "/bin/sh", "-c", "exit 0"]
    try:
        done = subprocess.run(probe, capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    except (OSError, subprocess.SubprocessError) as exc:
        return f"bubblewrap cannot start a sandbox here ({exc}); {INSTALL_HINT}"
    if done.returncode != 0:
        line = _one_line(done.stderr) or f"exit status {done.returncode}"
        return (f"bubblewrap cannot create a sandbox here ({line}); allow unprivileged user namespaces "
                "(sysctl kernel.unprivileged_userns_clone=1, or an AppArmor profile for bwrap), or pass --isolation none")
    return None


def _probe_command(path: str) -> list[str]:
    """A minimal sandbox like the real one (namespaces, system folders, /proc, /dev, a small /tmp)."""
    probe = [path, "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent", "--new-session"]
    for source, target, kind in _system_mounts():
        probe += [kind, source, target]
    return [*probe, "--proc", "/proc", "--dev", "/dev", "--size", "1048576", "--tmpfs", "/tmp"]


@lru_cache(maxsize=1)
def seccomp_problem() -> str | None:
    """Why the seccomp filter cannot be applied here (the sandbox then runs without it), or None."""
    if seccomp.program() is None:
        return "no libseccomp"
    if bwrap_problem() is not None:
        return "no bubblewrap"
    fd = seccomp.program_fd()
    assert fd is not None
    try:
        done = subprocess.run([*_probe_command(bwrap_path()), "--seccomp", str(fd), "--", "/bin/sh", "-c", "exit 0"],
                              capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"}, pass_fds=(fd,))
    except (OSError, subprocess.SubprocessError) as exc:
        return f"bubblewrap could not load it ({exc})"
    finally:
        os.close(fd)
    return None if done.returncode == 0 else f"bubblewrap could not load it ({_one_line(done.stderr) or done.returncode})"


def seccomp_status() -> str:
    """For the result record: whether the sandbox's seccomp filter is applied, and if not why."""
    problem = seccomp_problem()
    return f"unavailable ({problem})" if problem else f"EPERM for {len(seccomp.DENIED)} system calls (libseccomp)"


def isolation_problem(isolation: str) -> str | None:
    """Why ``isolation`` cannot be provided here (one line), or None."""
    if isolation not in ISOLATIONS:
        return f"--isolation {isolation!r}: choose one of {', '.join(ISOLATIONS)}"
    if isolation == "bwrap":
        problem = bwrap_problem()
        if problem:
            return problem
        if os.geteuid() == 0:
            probe = cgroups.create(memory_bytes=64 << 20, max_processes=8)
            if probe is None:
                return ROOT_WITHOUT_CGROUP
            probe.remove()
    return None


def check_isolation(isolation: str) -> None:
    """Raise a one-line ConfigError when ``isolation`` cannot be provided here."""
    problem = isolation_problem(isolation)
    if problem:
        raise ConfigError(problem)


def process_limit_mechanism(isolation: str) -> str:
    """How the process count is limited for ``isolation`` on this machine, for the result record."""
    probe = cgroups.create(memory_bytes=64 << 20, max_processes=8)
    if probe is not None:
        probe.remove()
        return probe.describe()
    return "RLIMIT_NPROC in the sandbox's user namespace" if isolation == "bwrap" else "none"


__all__ = [
    "DBENCH_INSIDE",
    "ISOLATIONS",
    "NONE_WARNING",
    "Bind",
    "Limits",
    "Outcome",
    "Sandbox",
    "bwrap_problem",
    "check_isolation",
    "exposed_secret",
    "isolation_problem",
    "process_limit_mechanism",
    "secret_folders",
]
