"""How the command line words what goes wrong: one line per error or warning, no tracebacks or source lines."""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message (its class name when it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else exc.__class__.__name__


def os_error_line(exc: OSError) -> str:
    """An operating-system error in words, without Python's ``[Errno N]``: ``cannot use PATH: permission denied``."""
    reason = (exc.strerror or exc.__class__.__name__).rstrip(".").lower()
    where = exc.filename if exc.filename is not None else "a file"
    return f"cannot use {where}: {reason}; check the path and its permissions"


def show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                 file: TextIO | None = None, line: str | None = None) -> None:
    """``dbench: warning: <message> (<Category>)`` on stderr: no file name, line number or source line."""
    text = str(message).strip().splitlines()[0] if str(message).strip() else category.__name__
    stream = file if file is not None else sys.stderr
    with contextlib.suppress(OSError, ValueError):  # a closed or broken stderr: a warning is not worth a crash
        stream.write(f"dbench: warning: {text} ({category.__name__})\n")


@contextmanager
def one_line_warnings() -> Iterator[None]:
    """Within the block, warnings print as :func:`show_warning` does; the previous handler is restored after."""
    with warnings.catch_warnings():
        warnings.showwarning = show_warning
        yield


__all__ = ["one_line", "one_line_warnings", "os_error_line", "show_warning"]
