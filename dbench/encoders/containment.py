"""Running user code (an encoder file's import, ``get_encoder()``, ``encode``) so that nothing escapes.

Whatever user code does ends in one of three ways for dbench:

* it returns, or raises an ``Exception``, which the caller turns into its own one-line
  :class:`~dbench.errors.EncoderError`;
* it raises any other ``BaseException`` -- ``SystemExit`` from ``sys.exit``, ``GeneratorExit``, a
  home-made ``BaseException`` subclass: :func:`user_code` turns it into an ``EncoderError`` here, so
  ``sys.exit(0)`` inside ``encode`` can never end dbench with status 0;
* it raises ``KeyboardInterrupt`` (Ctrl-C while it runs, or raised on purpose): that passes through
  unchanged, since it is an interrupt, and the pipeline keeps what it has (partial results).

Two things no ``except`` clause can see are handled too:

* **fork**: user code that calls ``os.fork()`` and returns in both processes would have two copies
  of dbench write results. The copy that is not the process that entered the user code leaves at
  once with ``os._exit`` (writing nothing, flushing nothing), so exactly one process goes on.
* **os._exit** (and a crash or kill in native code) ends the process without running any Python:
  the command line runs every command that loads user code in a supervised child process
  (``dbench._cli.supervisor``), whose parent reports an exit that happened before the command said
  it had finished, and never exits 0 for it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from dbench.encoders.validation import describe_exception
from dbench.errors import EncoderError, excerpt

#: Exit status of a forked copy of dbench leaving from inside user code (nobody waits for it).
FORKED_COPY_EXIT = 1


def describe_escape(exc: BaseException) -> str:
    """How user code left: ``"called sys.exit(0) (SystemExit)"``, else ``"raised Type: message"``."""
    if isinstance(exc, SystemExit):
        code = "" if exc.code is None else excerpt(exc.code)
        return f"called sys.exit({code}) (SystemExit)"
    return f"raised {describe_exception(exc)}"


@contextmanager
def user_code(what: str, fix: str) -> Iterator[None]:
    """Run the ``with`` block as user code; ``what`` names it and ``fix`` says what to do, in the error.

    A ``BaseException`` that is neither an ``Exception`` nor a ``KeyboardInterrupt`` becomes
    ``EncoderError(f"{what} {describe_escape(exc)}; {fix}")``. ``Exception`` and
    ``KeyboardInterrupt`` propagate unchanged (the caller words the first; the second is an interrupt).
    A forked copy of the process leaves with ``os._exit`` as soon as it is back in dbench.
    """
    pid = os.getpid()
    try:
        yield
    except (Exception, KeyboardInterrupt):
        _leave_if_forked(pid)
        raise
    except BaseException as exc:  # noqa: BLE001 - SystemExit and friends from user code become one line
        _leave_if_forked(pid)
        raise EncoderError(f"{what} {describe_escape(exc)}; {fix}") from None
    _leave_if_forked(pid)


def _leave_if_forked(pid: int) -> None:
    """End this process at once if it is a fork made inside user code (the original goes on alone)."""
    if os.getpid() != pid:
        os._exit(FORKED_COPY_EXIT)


__all__ = ["FORKED_COPY_EXIT", "describe_escape", "user_code"]
