"""Running untrusted work in a separate process with a wall-time and a memory limit.

The child gets a fresh temporary working folder, a minimal environment (no scorer state, no
credentials), its own process group (so a timeout kills everything it started) and an address-space
limit (``RLIMIT_AS``). Its only channel back is the files it was told to write and one line on stderr.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from dbench.submissions.worker import PREFIX


@dataclass(frozen=True)
class Limits:
    """Resource limits for one sandboxed run."""

    wall_seconds: float = 1800.0
    memory_bytes: int = 8 << 30


@dataclass(frozen=True)
class Outcome:
    ok: bool
    reason: str = ""


def _limit_resources(memory_bytes: int):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


# The folder that holds the scorer's own ``dbench`` package (this file is dbench/submissions/sandbox.py).
_DBENCH_PARENT = Path(__file__).resolve().parents[2]


def _clean_env(workdir: Path) -> dict[str, str]:
    """The worker's whole environment: a few harmless variables, and the scorer's ``dbench`` first.

    ``PYTHONPATH`` is exactly the folder the scorer imported ``dbench`` from, so the worker runs the
    same code as the scorer (not whichever ``dbench`` an installation or the caller's path would give).
    """
    keep = ("PATH", "LANG", "LC_ALL", "CUDA_VISIBLE_DEVICES", "DBENCH_DATA_DIR", "SYSTEMROOT")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.update(HOME=str(workdir), TMPDIR=str(workdir), PYTHONNOUSERSITE="1", PYTHONPATH=str(_DBENCH_PARENT),
               OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2"))
    return env


def run_worker(args: Sequence[str], *, limits: Limits, workdir: Path) -> Outcome:
    """Run ``python -m dbench.submissions.worker ARGS`` under ``limits``; say why it failed, in one line."""
    cmd = [sys.executable, "-m", "dbench.submissions.worker", *args]
    proc = subprocess.Popen(
        cmd,
        cwd=workdir,
        env=_clean_env(workdir),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
        preexec_fn=_limit_resources(limits.memory_bytes),
    )
    try:
        _, err = proc.communicate(timeout=limits.wall_seconds)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return Outcome(False, f"exceeded the wall-time limit of {limits.wall_seconds:g} s")
    stderr = err.decode("utf-8", "replace").strip().splitlines()
    if proc.returncode == 0:
        return Outcome(True)
    for line in reversed(stderr):
        if line.startswith(PREFIX):
            return Outcome(False, line[len(PREFIX):].strip())
    if any("MemoryError" in line or "can't allocate memory" in line for line in stderr):
        return Outcome(False, "exceeded the memory limit")
    if proc.returncode < 0:
        sig = signal.Signals(-proc.returncode).name
        hint = " (probably exceeded the memory limit)" if sig == "SIGKILL" else ""
        return Outcome(False, f"worker killed by {sig}{hint}")
    last = stderr[-1] if stderr else "no output"
    return Outcome(False, f"worker exited with status {proc.returncode}: {last[:300]}")
