"""Per-sandbox control groups: a process-count and memory limit for everything a submission starts.

Where the scorer may create control groups, each sandbox gets its own, so the limits hold for the
whole process tree (a fork bomb, or many processes each below ``RLIMIT_AS``) and a timeout can kill
every process in it, even one that left the session. Tried in order:

1. **cgroup v2**, when the scorer's own cgroup already delegates the ``memory`` and ``pids``
   controllers to children (``cgroup.subtree_control``): one child ``dbench-sandbox-<pid>-<n>``.
2. **cgroup v1** (a root scorer on a v1 or hybrid host): a child of the scorer's cgroup in the
   ``pids`` hierarchy (required) and in the ``memory`` hierarchy (when present).

:func:`create` returns None when neither works; the sandbox then relies on rlimits (``RLIMIT_NPROC``
inside its user namespace, ``RLIMIT_AS`` per process). The scorer's process enters nothing: only the
sandbox's first process is moved into the group, between fork and exec.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

_PREFIX = "dbench-sandbox-"
_counter = itertools.count()


@dataclass
class Cgroup:
    """The control group(s) of one sandbox: one folder (v2) or one per controller (v1)."""

    version: int
    pids: Path
    memory: Path | None
    created: list[Path] = field(default_factory=list)

    @property
    def folders(self) -> list[Path]:
        return list(dict.fromkeys(p for p in (self.pids, self.memory) if p is not None))

    def describe(self) -> str:
        what = "pids+memory" if self.memory is not None else "pids"
        return f"cgroup v{self.version} ({what})"

    def enter(self) -> None:
        """Move the calling process into the group (called in the child between fork and exec)."""
        for folder in self.folders:
            with open(folder / "cgroup.procs", "w") as handle:
                handle.write(str(os.getpid()))

    def kill_all(self, *, timeout: float = 5.0) -> None:
        """SIGKILL every process in the group, until it is empty or ``timeout`` passes."""
        kill_file = self.pids / "cgroup.kill"
        if self.version == 2 and kill_file.exists():
            with contextlib.suppress(OSError):
                kill_file.write_text("1")
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            pids = self._pids()
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.02)

    def _pids(self) -> list[int]:
        try:
            return [int(line) for line in (self.pids / "cgroup.procs").read_text().split()]
        except (OSError, ValueError):
            return []

    def out_of_memory(self) -> bool:
        """Whether the memory limit was hit (an OOM kill or a failed charge)."""
        if self.memory is None:
            return False
        try:
            if self.version == 2:
                events = dict(line.split() for line in (self.memory / "memory.events").read_text().splitlines())
                return int(events.get("oom_kill", 0)) > 0 or int(events.get("max", 0)) > 0
            control = dict(line.split() for line in (self.memory / "memory.oom_control").read_text().splitlines())
            return int(control.get("oom_kill", 0)) > 0 or int((self.memory / "memory.failcnt").read_text()) > 0
        except (OSError, ValueError):
            return False

    def remove(self) -> None:
        """Kill what is left and remove the group's folders."""
        self.kill_all()
        for folder in reversed(self.created):
            for _ in range(50):
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)


def create(*, memory_bytes: int, max_processes: int) -> Cgroup | None:
    """A fresh control group with the limits, or None where this process may not create one."""
    mounts, memberships = _mounts(), _memberships()
    group = _create_v2(mounts, memberships, memory_bytes, max_processes)
    return group or _create_v1(mounts, memberships, memory_bytes, max_processes)


def _name() -> str:
    return f"{_PREFIX}{os.getpid()}-{next(_counter)}"


def _create_v2(mounts: dict[str, Path], memberships: dict[str, str], memory_bytes: int, max_processes: int) -> Cgroup | None:
    root, path = mounts.get("cgroup2"), memberships.get("")
    if root is None or path is None:
        return None
    parent = root / path.lstrip("/")
    try:
        delegated = set((parent / "cgroup.subtree_control").read_text().split())
    except OSError:
        return None
    if not {"memory", "pids"} <= delegated:
        return None
    _remove_stale(parent)
    folder = parent / _name()
    try:
        folder.mkdir()
    except OSError:
        return None
    group = Cgroup(version=2, pids=folder, memory=folder, created=[folder])
    try:
        (folder / "pids.max").write_text(str(max_processes))
        (folder / "memory.max").write_text(str(memory_bytes))
        swap = folder / "memory.swap.max"
        if swap.exists():
            swap.write_text("0")
    except OSError:
        group.remove()
        return None
    return group


def _create_v1(mounts: dict[str, Path], memberships: dict[str, str], memory_bytes: int, max_processes: int) -> Cgroup | None:
    if "pids" not in mounts or "pids" not in memberships:
        return None
    name = _name()
    created: list[Path] = []
    try:
        pids_parent = mounts["pids"] / memberships["pids"].lstrip("/")
        _remove_stale(pids_parent)
        pids = pids_parent / name
        pids.mkdir()
        created.append(pids)
        (pids / "pids.max").write_text(str(max_processes))
        memory = None
        if "memory" in mounts and "memory" in memberships:
            memory_parent = mounts["memory"] / memberships["memory"].lstrip("/")
            _remove_stale(memory_parent)
            memory = memory_parent / name
            memory.mkdir()
            created.append(memory)
            (memory / "memory.limit_in_bytes").write_text(str(memory_bytes))
            swap = memory / "memory.memsw.limit_in_bytes"
            if swap.exists():
                with contextlib.suppress(OSError):  # swap accounting off: the RAM limit still holds
                    swap.write_text(str(memory_bytes))
    except OSError:
        Cgroup(version=1, pids=created[0] if created else Path("/nonexistent"), memory=None, created=created).remove()
        return None
    return Cgroup(version=1, pids=pids, memory=memory, created=created)


def _remove_stale(parent: Path) -> None:
    """Remove empty groups left by scorers that died (their pid is gone)."""
    try:
        entries = list(parent.glob(f"{_PREFIX}*"))
    except OSError:
        return
    for folder in entries:
        try:
            pid = int(folder.name[len(_PREFIX):].split("-")[0])
        except ValueError:
            continue
        if pid != os.getpid() and not Path(f"/proc/{pid}").exists():
            with contextlib.suppress(OSError):
                folder.rmdir()


def _mounts() -> dict[str, Path]:
    """Mount point of the cgroup2 hierarchy (key ``cgroup2``) and of each v1 controller hierarchy."""
    found: dict[str, Path] = {}
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return found
    for line in lines:
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3:
            continue
        point = Path(fields[4].replace("\\040", " "))
        if tail[0] == "cgroup2":
            found.setdefault("cgroup2", point)
        elif tail[0] == "cgroup":
            for option in tail[2].split(","):
                if option in ("pids", "memory"):
                    found.setdefault(option, point)
    return found


def _memberships() -> dict[str, str]:
    """The scorer's cgroup path per v1 controller, and under key ``""`` its v2 path."""
    found: dict[str, str] = {}
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return found
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if not controllers:
            found[""] = path
        for controller in controllers.split(","):
            found[controller] = path
    return found


__all__ = ["Cgroup", "create"]
