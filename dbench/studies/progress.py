"""Progress of a sweep: jobs done, failed and remaining with an ETA; a bar in a terminal, lines in a log.

In a terminal (stderr is a TTY) a tqdm bar counts finished jobs (its ETA is tqdm's) and shows failed
and remaining ones; elsewhere (a log file, a batch job) a background thread writes one line every
``$DBENCH_PROGRESS_INTERVAL`` seconds (default 30), also while one long task blocks the client::

    dbench sweep: 12 of 40 jobs finished (1 failed), 28 remaining; 3m10s elapsed, about 7m24s left
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any, TextIO

# One place for the log interval ($DBENCH_PROGRESS_INTERVAL) and the duration format of every
# progress line dbench writes.
from dbench._progress import format_seconds
from dbench._progress import log_interval as _interval


class SweepProgress:
    """Counts of a sweep's jobs (and trainings) this run, shown as a bar or as periodic log lines."""

    def __init__(self, total: int, *, enabled: bool = True, stream: TextIO | None = None,
                 trainings: int = 0) -> None:
        self.total = total
        self.done = 0
        self.failed = 0
        self.trainings = trainings
        self.trained = 0
        self._stream = stream or sys.stderr
        self._start = time.monotonic()
        self._bar: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        if not enabled:
            return
        if _is_terminal(self._stream):
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, desc="sweep", unit="job", file=self._stream, dynamic_ncols=True)
            self._refresh_bar()
        else:
            self._thread = threading.Thread(target=self._log_periodically, name="dbench-sweep-progress", daemon=True)
            self._thread.start()

    # -- counting -----------------------------------------------------------------------------

    def add_jobs(self, n: int) -> None:
        """``n`` more jobs became known (a trained model's evaluations)."""
        with self._lock:
            self.total += n
            if self._bar is not None:
                self._bar.total = self.total
                self._refresh_bar()

    def job_finished(self, *, failed: bool) -> None:
        with self._lock:
            self.done += 1
            self.failed += int(failed)
            if self._bar is not None:
                self._bar.update(1)
                self._refresh_bar()

    def training_finished(self) -> None:
        with self._lock:
            self.trained += 1
            if self._bar is not None:
                self._refresh_bar()

    def write(self, line: str) -> None:
        """A message (a failure, a warning) that does not break the bar."""
        if self._bar is not None:
            self._bar.write(line, file=self._stream)
        else:
            print(line, file=self._stream, flush=True)

    # -- showing ------------------------------------------------------------------------------

    @property
    def remaining(self) -> int:
        return self.total - self.done

    def line(self) -> str:
        elapsed = time.monotonic() - self._start
        text = f"dbench sweep: {self.done} of {self.total} jobs finished ({self.failed} failed), {self.remaining} remaining"
        untrained = self.trainings - self.trained
        if self.trainings:
            text += f"; {self.trained} of {self.trainings} trainings done"
            if untrained:
                text += f" (the jobs of {untrained} more model{'s' if untrained != 1 else ''} to come)"
        text += f"; {format_seconds(elapsed)} elapsed"
        if self.done and self.remaining:
            eta = format_seconds(elapsed / self.done * self.remaining)
            text += f", about {eta} left" + (" for the jobs known so far" if untrained else "")
        return text

    def _refresh_bar(self) -> None:
        postfix = f"failed={self.failed} remaining={self.remaining}"
        if self.trainings:
            postfix += f" trained={self.trained}/{self.trainings}"
        self._bar.set_postfix_str(postfix, refresh=True)

    def _log_periodically(self) -> None:
        while not self._stop.wait(_interval()):
            print(self.line(), file=self._stream, flush=True)

    def close(self) -> None:
        self._stop.set()
        if self._bar is not None:
            self._bar.close()
        elif self._thread is not None:
            print(self.line(), file=self._stream, flush=True)


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, OSError, ValueError):
        return False


__all__ = ["SweepProgress", "format_seconds"]
