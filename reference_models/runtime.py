"""Process settings that make CPU training fast: thread counts and the allocator's reuse of memory.

Both are process-wide, like ``torch.set_num_threads``, so the library's :func:`reference_models.train`
applies only the allocator setting (harmless to other code) and ``dbench train`` also picks the
thread count. Measured on a 2-core Xeon (Sapphire Rapids), batch 64, see docs/reference_models.md.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import os
import sys
from pathlib import Path

# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: Allocations below this size come from the heap (and are reused) instead of a fresh mmap.
MMAP_THRESHOLD_BYTES = 256 * 2**20
#: Free memory at the top of the heap is returned to the system only beyond this much.
TRIM_THRESHOLD_BYTES = 1024 * 2**20

_reuse_applied = False


def reuse_freed_memory() -> bool:
    """Keep freed activation buffers in the heap for the next step instead of unmapping them (glibc).

    A training step allocates and frees ~60 MB of activations and gradients in buffers of up to 8 MB.
    glibc serves buffers that large with ``mmap`` and returns them on ``free``, so every step touches
    ~15,000 fresh pages (page faults: ~20% of a step's time). Raising glibc's mmap and trim thresholds
    lets the buffers be reused. Process-wide and permanent (glibc cannot switch back to its adaptive
    thresholds), the cost being that up to 1 GB of freed memory stays with the process. Returns whether
    the setting was applied (False off glibc, e.g. macOS, Windows or musl).
    """
    global _reuse_applied
    if _reuse_applied:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    # Both are needed: setting only the trim threshold also freezes the mmap threshold at 128 KB.
    _reuse_applied = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    )
    return _reuse_applied


def usable_cpus() -> list[int]:
    """The logical CPUs this process may run on (its affinity mask; all CPUs where that is unknown)."""
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return list(range(os.cpu_count() or 1))


def physical_cores(cpus: list[int], *, sysfs: Path = Path("/sys/devices/system/cpu")) -> int:
    """How many distinct physical cores the logical ``cpus`` belong to (hyper-threads counted once).

    Read from Linux's CPU topology in sysfs; without it every logical CPU counts as a core.
    """
    cores = set()
    for cpu in cpus:
        topology = sysfs / f"cpu{cpu}" / "topology"
        try:
            package = (topology / "physical_package_id").read_text().strip()
            core = (topology / "core_id").read_text().strip()
        except OSError:
            return len(cpus)
        cores.add((package, core))
    return max(1, len(cores))


def cpu_quota(*, cgroup: Path = Path("/sys/fs/cgroup/cpu.max")) -> int | None:
    """The CPU limit of this process's cgroup (v2 ``cpu.max``, rounded up), or None when unlimited."""
    try:
        quota, period = cgroup.read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    try:
        return max(1, math.ceil(int(quota) / int(period)))
    except (ValueError, ZeroDivisionError):
        return None


def default_threads() -> int:
    """Torch intra-op threads for training: the physical cores usable here, capped by a CPU quota.

    Hyper-threads share a core's vector units, so the convolutions gain nothing from them and lose to
    the extra synchronisation; a container's CPU quota is a hard cap (more threads than it only wait).
    """
    threads = physical_cores(usable_cpus())
    quota = cpu_quota()
    return min(threads, quota) if quota is not None else threads


def set_threads(threads: int) -> None:
    """Use ``threads`` intra-op threads and one inter-op thread (training never runs ops in parallel).

    The inter-op pool can only be sized before it is first used; later calls leave it as it is.
    """
    import torch

    torch.set_num_threads(threads)
    with contextlib.suppress(RuntimeError):  # already started (or set): nothing to gain from changing it
        torch.set_num_interop_threads(1)
