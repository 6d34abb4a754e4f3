"""Progress of long work: a tqdm bar in a terminal, a plain line every ~30 s in a log.

:class:`Progress` shows one piece of work (encoding N images, scoring M metric runs). In a terminal
(stderr is a TTY) it is a tqdm bar whose clock keeps ticking while one long step runs; elsewhere (a
log file, a CI job, a pipe) it writes one line every :func:`log_interval` seconds, e.g.::

    dbench: scoring: 3 of 6 runs; dci (seed 0): 1m30s elapsed (estimated ~6m); 1m41s in all

A background thread writes those lines, so a step that runs for minutes inside compiled code (numba
kernels release the GIL) still reports. ``DBENCH_PROGRESS_INTERVAL`` (seconds) changes the interval of
log lines. Nothing here imports tqdm until a bar is shown in a terminal.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import threading
import time
from typing import Any, TextIO

LOG_INTERVAL_ENV = "DBENCH_PROGRESS_INTERVAL"
DEFAULT_LOG_INTERVAL = 30.0
# How often the ticker thread redraws a terminal bar (its clock and the current step's time).
_TERMINAL_REFRESH = 1.0


def log_interval() -> float:
    """Seconds between progress lines in a log: ``$DBENCH_PROGRESS_INTERVAL`` if it is a positive number, else 30."""
    try:
        value = float(os.environ.get(LOG_INTERVAL_ENV, ""))
    except ValueError:
        return DEFAULT_LOG_INTERVAL
    return value if math.isfinite(value) and value > 0 else DEFAULT_LOG_INTERVAL


def format_seconds(seconds: float) -> str:
    """``"42s"``, ``"6m30s"``, ``"1h05m"``: short durations for progress lines and estimates."""
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"


def _is_terminal(stream: Any) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (OSError, ValueError):  # a closed or odd stream
        return False


class Progress:
    """One piece of long work: a bar in a terminal, a line every ~30 s in a log.

    Parameters
    ----------
    desc : str
        What the work is ("encoding dsprites", "scoring").
    total : int, optional
        Number of units (images, metric runs), when known.
    unit : str
        Name of a unit in log lines ("images", "runs").
    enabled : bool
        False: nothing is shown (the object still counts).
    stream : file, optional
        Where to write (default: ``sys.stderr``).
    """

    def __init__(
        self,
        desc: str,
        *,
        total: int | None = None,
        unit: str = "",
        enabled: bool = True,
        stream: TextIO | None = None,
    ) -> None:
        self.desc = desc
        self.total = total
        self.unit = unit
        self.done = 0
        self.enabled = enabled
        self._stream = stream if stream is not None else sys.stderr
        self._start = time.monotonic()
        self._step: str | None = None
        self._step_start = self._start
        self._step_estimate: float | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._bar: Any = None
        self._thread: threading.Thread | None = None
        if not enabled:
            return
        self._terminal = _is_terminal(self._stream)
        if self._terminal:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, desc=desc, unit=unit or "it", unit_scale=unit == "images",
                             dynamic_ncols=True, leave=False, file=self._stream)
        interval = _TERMINAL_REFRESH if self._terminal else log_interval()
        self._thread = threading.Thread(target=self._tick, args=(interval,), name="dbench-progress", daemon=True)
        self._thread.start()

    # -- what the work reports -------------------------------------------------------------------

    def update(self, n: int = 1) -> None:
        """``n`` more units are done."""
        with self._lock:
            self.done += n
        if self._bar is not None:
            self._bar.update(n)

    def step(self, label: str, *, estimate: float | None = None) -> None:
        """The step now running (``"dci (seed 0)"``) and its estimated seconds; its clock starts now."""
        with self._lock:
            self._step, self._step_start, self._step_estimate = label, time.monotonic(), estimate
        if self._bar is not None:
            self._bar.set_postfix_str(label, refresh=True)

    def step_seconds(self) -> float:
        """Seconds since the current step started."""
        return time.monotonic() - self._step_start

    def close(self) -> None:
        """Stop the ticker and remove the bar (a log gets a last line if the work took a while)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self.enabled and time.monotonic() - self._start >= log_interval():
            self._write(f"dbench: {self.desc}: {self._count()}finished in {format_seconds(time.monotonic() - self._start)}")
        self.enabled = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- showing it --------------------------------------------------------------------------------

    def _count(self) -> str:
        """``"3 of 6 runs; "`` (empty before anything is counted when the total is unknown)."""
        if self.total is None and not self.done:
            return ""
        of = f" of {self.total:,}" if self.total is not None else ""
        unit = f" {self.unit}" if self.unit else ""
        return f"{self.done:,}{of}{unit}; "

    def status_line(self) -> str:
        """The log line for now: counts, the current step's time and estimate, the time in all."""
        with self._lock:
            step, step_start, estimate = self._step, self._step_start, self._step_estimate
        now = time.monotonic()
        parts = f"dbench: {self.desc}: {self._count()}"
        if step is not None:
            guess = f" (estimated ~{format_seconds(estimate)})" if estimate else ""
            parts += f"{step}: {format_seconds(now - step_start)} elapsed{guess}; "
        return parts + f"{format_seconds(now - self._start)} in all"

    def _tick(self, interval: float) -> None:
        while not self._stop.wait(interval):
            if self._bar is not None:
                with self._lock:
                    step, step_start = self._step, self._step_start
                if step is not None:
                    self._bar.set_postfix_str(f"{step} {format_seconds(time.monotonic() - step_start)}", refresh=False)
                self._bar.refresh()
            else:
                self._write(self.status_line())

    def _write(self, line: str) -> None:
        with contextlib.suppress(OSError, ValueError):  # the log went away: progress is never worth failing for
            print(line, file=self._stream, flush=True)


__all__ = ["DEFAULT_LOG_INTERVAL", "LOG_INTERVAL_ENV", "Progress", "format_seconds", "log_interval"]
