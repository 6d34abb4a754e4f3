"""Errors that the CLI reports as one line (what is wrong and how to fix it) instead of a traceback.

Also :class:`Terminated` (SIGTERM as an interrupt), :class:`EvaluationError` and :func:`excerpt`, which
every error message uses to quote user input: a message never echoes more than a short excerpt of a
huge or deeply nested value.
"""

from __future__ import annotations

import reprlib
from typing import Any


class DbenchError(Exception):
    """Base class for user-facing errors: the message is one line saying what is wrong and how to fix it."""


class EncoderError(DbenchError):
    """The encoder could not be loaded, raised, or returned unusable codes."""


class DatasetError(DbenchError):
    """A dataset is unknown, or its files are missing or malformed."""


class ConfigError(DbenchError):
    """A protocol, submission or parameter set is malformed."""


class ParameterError(ConfigError, ValueError):
    """A metric parameter is unknown or outside its declared range (one line: metric, parameter, value, range).

    Also a ``ValueError``, as Python callers of the array-level metric functions expect.
    """


class Terminated(KeyboardInterrupt):
    """The process was asked to stop by a signal other than Ctrl-C (SIGTERM, SIGHUP).

    A ``KeyboardInterrupt`` so that every ``except KeyboardInterrupt`` cleanup (partial results,
    temporary files) runs as it does for Ctrl-C; ``signal_name`` says which signal it was.
    """

    def __init__(self, signal_name: str = "SIGTERM") -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name


def signal_name(interrupt: BaseException) -> str:
    """``"SIGTERM"`` for a :class:`Terminated`, else ``"SIGINT"`` (Ctrl-C or a ``KeyboardInterrupt``)."""
    return getattr(interrupt, "signal_name", "SIGINT")


_EXCERPT = reprlib.Repr()
_EXCERPT.maxstring, _EXCERPT.maxother, _EXCERPT.maxlist, _EXCERPT.maxdict = 40, 40, 6, 4
_EXCERPT.maxtuple = _EXCERPT.maxset = _EXCERPT.maxfrozenset = _EXCERPT.maxdeque = _EXCERPT.maxarray = 6
_EXCERPT.maxlevel = 3


def excerpt(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to a short excerpt: error messages never echo a huge input back.

    Depth, lengths and the total are bounded, so a billion-laughs expansion or a 100,000-deep list
    costs a few microseconds and prints at most ``limit`` characters.
    """
    try:
        text = _EXCERPT.repr(value)
    except Exception:  # noqa: BLE001 - a user object whose __repr__ fails is still quotable
        text = f"<{type(value).__name__}>"
    text = " ".join(text.splitlines())  # one line, whatever a user __repr__ returned
    return text if len(text) <= limit else text[: limit - 3] + "..."


class EvaluationError(DbenchError):
    """A Python evaluation finished but some part failed (a metric, or the encoder midway).

    Raised by :func:`dbench.evaluate` and :func:`dbench.evaluate_all` unless they are called with
    ``raise_on_failure=False``. Nothing is lost: :attr:`results` holds every result of the call,
    failed parts recorded in their ``errors``, and :attr:`result` the first one that failed.
    """

    def __init__(self, message: str, results: list) -> None:
        super().__init__(message)
        #: every result of the call, in order (the scored metrics are in their ``scores``)
        self.results = list(results)
        #: the first result whose status is not ``"ok"``
        failed = [r for r in self.results if getattr(r, "status", "ok") != "ok"]
        self.result = failed[0] if failed else (self.results[0] if self.results else None)


__all__ = [
    "ConfigError",
    "DatasetError",
    "DbenchError",
    "EncoderError",
    "EvaluationError",
    "ParameterError",
    "Terminated",
    "excerpt",
    "signal_name",
]
