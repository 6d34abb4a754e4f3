"""Training progress: a tqdm bar in a terminal, a periodic plain line in a log file.

A training of 50,000 steps runs for hours in the background with stderr sent to a file, where a tqdm
bar would be one endless line of carriage returns. There the progress is a line every
:data:`LOG_INTERVAL_SECONDS` (step, speed, time left, last losses) plus one at the start and the end.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from typing import Any, TextIO

#: Seconds between two progress lines in a non-terminal log.
LOG_INTERVAL_SECONDS = 30.0
#: Steps between two updates of the loss shown next to the bar in a terminal.
BAR_POSTFIX_EVERY = 50
#: The loss terms shown (when present), in this order.
SHOWN_TERMS = ("loss", "reconstruction", "kl", "tc_estimate", "dip_penalty", "capacity", "discriminator_loss")


def format_duration(seconds: float) -> str:
    """``3725`` -> ``"1h02m"``, ``125`` -> ``"2m05s"``, ``9`` -> ``"9s"``."""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def format_losses(losses: Mapping[str, float]) -> str:
    """The shown loss terms as ``"loss 612.3, reconstruction 590.1, kl 5.52"``."""
    return ", ".join(f"{key} {losses[key]:.4g}" for key in SHOWN_TERMS if key in losses)


class TrainingProgress:
    """Report ``update(step, losses)`` calls of a training from step ``initial`` to ``total``.

    Parameters
    ----------
    name : str
        Shown in front of every report (the model's name).
    total, initial : int
        The step the training ends at and the one it starts (or resumes) from.
    enabled : bool
        False reports nothing.
    stream : file, optional
        Where to report (default ``sys.stderr``); a terminal gets a tqdm bar, anything else lines.
    interval : float
        Seconds between two lines when ``stream`` is not a terminal.
    clock : callable
        Monotonic time in seconds (replaceable in tests).

    Call :meth:`close` at the end (``contextlib.closing``).
    """

    def __init__(
        self,
        *,
        name: str,
        total: int,
        initial: int,
        enabled: bool = True,
        stream: TextIO | None = None,
        interval: float = LOG_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._name = name
        self._total = total
        self._initial = initial
        self._stream = sys.stderr if stream is None else stream
        self._interval = interval
        self._clock = clock
        self._bar: Any = None
        self._lines = False
        self._step = initial
        self._last: Mapping[str, float] = {}
        if not enabled or total <= initial:
            return
        if _is_terminal(self._stream):
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, initial=initial, unit="step", desc=name, file=self._stream, dynamic_ncols=True)
        else:
            self._lines = True
            self._began = self._last_line = clock()
            start = f"resuming at step {initial}" if initial else "starting"
            self._write(f"{name}: training to step {total}, {start}")

    def update(self, step: int, losses: Mapping[str, float]) -> None:
        """Step ``step`` (0-based) is done with these loss terms."""
        self._step, self._last = step + 1, losses
        if self._bar is not None:
            self._bar.update(1)
            if step % BAR_POSTFIX_EVERY == 0:
                self._bar.set_postfix_str(format_losses(losses), refresh=False)
        elif self._lines and self._clock() - self._last_line >= self._interval:
            self._report()

    def close(self) -> None:
        """Close the bar, or write the final line when steps were done since the last one."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self._lines:
            self._report(final=True)
            self._lines = False

    def _report(self, *, final: bool = False) -> None:
        now = self._clock()
        self._last_line = now
        done = self._step - self._initial
        elapsed = now - self._began
        rate = done / elapsed if elapsed > 0 else 0.0
        parts = [f"{self._name}: step {self._step}/{self._total} ({100.0 * self._step / self._total:.1f}%)"]
        if rate > 0:
            parts.append(f"{rate:.2f} steps/s")
        if final:
            parts.append(f"{'finished' if self._step >= self._total else 'stopped'} after {format_duration(elapsed)}")
        elif rate > 0:
            parts.append(f"ETA {format_duration((self._total - self._step) / rate)}")
        if self._last:
            parts.append(format_losses(self._last))
        self._write(", ".join(parts))

    def _write(self, line: str) -> None:
        self._stream.write(line + "\n")
        self._stream.flush()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
