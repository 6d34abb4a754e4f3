"""Resource limits for one sandboxed submission (plain data, checked on construction)."""

from __future__ import annotations

from dataclasses import dataclass

from dbench.errors import ConfigError


@dataclass(frozen=True)
class Limits:
    """What one submission may use, end to end (its prepare and encode steps together).

    Attributes
    ----------
    wall_seconds
        Wall time for the whole submission; at the deadline every process of its sandbox is killed.
    memory_bytes
        Memory: per process (``RLIMIT_AS``) always, and for the whole sandbox where a memory cgroup
        can be created.
    max_processes
        Processes and threads: ``pids.max`` of a cgroup where one can be created, else
        ``RLIMIT_NPROC`` set inside the sandbox's user namespace.
    max_unpacked_bytes
        Total uncompressed bytes of the submission's files (archive or folder).
    max_entries
        Files and folders in the submission.
    scratch_bytes
        Size of the sandbox's writable ``/tmp`` (a tmpfs; also ``HOME``).
    max_open_files
        ``RLIMIT_NOFILE``.
    """

    wall_seconds: float = 1800.0
    memory_bytes: int = 8 << 30
    max_processes: int = 256
    max_unpacked_bytes: int = 2 << 30
    max_entries: int = 10_000
    scratch_bytes: int = 1 << 30
    max_open_files: int = 1024

    def __post_init__(self) -> None:
        checks = {
            "wall_seconds": self.wall_seconds > 0,
            "memory_bytes": self.memory_bytes >= 64 << 20,
            "max_processes": self.max_processes >= 8,
            "max_unpacked_bytes": self.max_unpacked_bytes >= 1,
            "max_entries": self.max_entries >= 2,
            "scratch_bytes": self.scratch_bytes >= 1 << 20,
            "max_open_files": self.max_open_files >= 64,
        }
        for name, ok in checks.items():
            if not ok:
                raise ConfigError(f"limit {name}={getattr(self, name)!r} is too small to run anything")


__all__ = ["Limits"]
