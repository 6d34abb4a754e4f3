"""Running a command that loads user code in a child process, so that its end is never mistaken for success.

User code can end a process in ways no Python ``except`` clause sees: ``os._exit(0)`` inside
``encode``, a crash in native code, the out-of-memory killer. Inside one process such an end looks
like dbench exiting with the user's status (``os._exit(0)`` gave status 0 with no result written).
So ``dbench evaluate`` and ``dbench check`` fork before any user code is loaded:

* the **child** runs the command and, as its very last act, writes its exit status into a pipe, then
  leaves with that status (``os._exit``: interpreter shutdown, atexit handlers and threads that user
  code started can neither change the status nor keep the process alive);
* the **parent** waits for the child. A child that reported a status gives the command's status. A
  child that ended without reporting one was ended by user code or the system before the command
  finished: the parent says so in one line and exits 1 (130 or 143 when it was SIGINT or SIGTERM),
  never 0. What the command had already written (result files are written atomically) stays.

Why a fork rather than an ``atexit`` hook or a flag checked at exit: ``os._exit`` runs no Python at
all, so only another process can notice it; forking after the command line is parsed (before the
encoder is imported, torch included) costs a millisecond and needs no second interpreter start.

Signals: the child handles the first SIGINT (Ctrl-C), SIGTERM or SIGHUP as an interrupt: the
metrics already scored are written as a partial result and it exits 130 or 143. The parent passes
each of those signals on (Ctrl-C in a terminal reaches both processes; ``kill PID`` and batch
schedulers reach the parent alone; the child acts on the first and ignores repeats). A metric that
runs for minutes inside compiled code sees no signal until it returns, so the parent does not wait
for ever: a second Ctrl-C, a second SIGTERM, or :data:`TERMINATE_GRACE_SECONDS` after the first
SIGTERM, it kills the child. Nothing finished is lost even then, because ``dbench evaluate --out``
keeps a checkpoint of the partial result after every metric (``R.partial.json``). On Linux the
child is also told to stop (SIGTERM) if the parent itself is killed, so it never runs on alone. Where
``os.fork`` does not exist (Windows), the command runs in the same process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

from dbench._cli.exit_codes import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_TERMINATED
from dbench.errors import Terminated

#: Signals the child turns into an interrupt (SIGINT: Ctrl-C), each passed on by the parent.
_TERMINATING = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))
_FORWARDED = (signal.SIGINT, *_TERMINATING)
#: Seconds the child has, after the first SIGTERM, to write its partial result before it is killed.
TERMINATE_GRACE_SECONDS = 5.0
# How often the parent checks on the child while it waits.
_POLL_SECONDS = 0.05


def can_supervise() -> bool:
    """Whether commands can run in a supervised child (POSIX ``fork``)."""
    return hasattr(os, "fork") and hasattr(os, "waitpid")


def install_termination_handlers(*, sigint: bool = False) -> None:
    """SIGTERM and SIGHUP (and SIGINT when ``sigint``) raise an interrupt once, so cleanup runs as for Ctrl-C.

    A repeat while the first is being handled (the same signal from the terminal and forwarded by
    the parent, or sent to the whole process group) is ignored, so it cannot interrupt the writing
    of partial results; the supervising parent kills the child on a real second request.
    """
    raised: list[int] = []

    def handler(signum: int, frame: Any) -> None:
        if raised:
            return
        raised.append(signum)
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise Terminated(signal.Signals(signum).name)

    for sig in (_FORWARDED if sigint else _TERMINATING):
        signal.signal(sig, handler)


def supervise(command: str, run_child: Callable[[], int]) -> int:
    """Run ``run_child()`` in a forked child and return its exit status (see the module docstring).

    ``command`` names the command in the message about a child that ended before it finished.
    """
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    read_end, write_end = os.pipe()
    try:
        pid = os.fork()
    except OSError:  # no fork possible now (process limit, memory): run unsupervised
        os.close(read_end)
        os.close(write_end)
        install_termination_handlers()
        return run_child()
    if pid == 0:  # the child
        os.close(read_end)
        _end_with_parent()
        _child(run_child, write_end)
    os.close(write_end)
    return _parent(command, pid, read_end)


def _end_with_parent() -> None:
    """Ask Linux to send this child SIGTERM if the parent dies (killed with SIGKILL), so it never runs on alone."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(Exception):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGTERM))


def _child(run_child: Callable[[], int], write_end: int) -> None:
    """Run the command, report its status through the pipe, and leave with it (never returns)."""
    code = EXIT_FAILED
    try:
        install_termination_handlers(sigint=True)
        code = int(run_child())
    except KeyboardInterrupt:  # before the command's own handling started
        code = EXIT_INTERRUPTED
    except SystemExit as exc:  # one that escaped every guard: it is not the command's own status
        _say(f"the command ended by SystemExit({exc.code!r}) from user code before it finished")
    except BaseException as exc:  # noqa: BLE001 - the child must always report and exit itself
        _say(f"the command stopped with {type(exc).__name__} before it finished")
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        with contextlib.suppress(OSError):
            os.write(write_end, f"{code}\n".encode())
        os._exit(code)


def _parent(command: str, pid: int, read_end: int) -> int:
    """Wait for the child; its reported status, or a one-line message and a non-zero status."""
    requests: list[tuple[int, float]] = []  # (signal, time) of each interrupt asked for
    killed: list[int] = []

    def kill_child() -> None:
        if not killed:
            killed.append(requests[-1][0])
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def on_signal(signum: int, frame: Any) -> None:
        requests.append((signum, time.monotonic()))
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)
        if len(requests) > 1:  # asked twice: stop now, whatever the child is in the middle of
            kill_child()

    previous = {sig: signal.signal(sig, on_signal) for sig in _FORWARDED}
    try:
        status = _wait(pid, requests, kill_child)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    reported = _read_report(read_end)
    if reported is not None:
        return reported
    if killed:
        sig = signal.Signals(killed[0])
        when = (f"on a second {sig.name}" if len(requests) > 1
                else f"{TERMINATE_GRACE_SECONDS:g} s after {sig.name} (it was busy inside compiled code)")
        _say(f"`dbench {command}` stopped {when}: {_kept(command)}")
        return EXIT_INTERRUPTED if sig == signal.SIGINT else EXIT_TERMINATED
    if os.WIFSIGNALED(status):
        sig = signal.Signals(os.WTERMSIG(status))
        code = {signal.SIGINT: EXIT_INTERRUPTED, signal.SIGTERM: EXIT_TERMINATED}.get(sig, EXIT_FAILED)
        hint = " (out of memory?)" if sig == signal.SIGKILL else ""
        _say(f"`dbench {command}` was killed by {sig.name}{hint} before it finished: {_kept(command)}")
        return code
    _say(
        f"`dbench {command}` ended with exit status {os.WEXITSTATUS(status)} before it finished: user code "
        "(the encoder) called os._exit() or crashed; nothing it did not report as written was written; "
        "let encode(images) return its codes instead of ending the process"
    )
    return EXIT_FAILED


def _kept(command: str) -> str:
    """What survives a child that was stopped, in the command's terms."""
    if command == "evaluate":
        return "results written so far are kept (with --out, R.partial.json holds the metrics already scored)"
    return "nothing it had not printed was checked; run it again"


def _wait(pid: int, requests: list[tuple[int, float]], kill_child: Callable[[], None]) -> int:
    """The child's wait status; kills it :data:`TERMINATE_GRACE_SECONDS` after a SIGTERM it ignores."""
    while True:
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:  # reaped elsewhere: nothing to wait for
            return 0
        if done:
            return status
        terminating = [t for sig, t in requests if sig != signal.SIGINT]
        if terminating and time.monotonic() - terminating[0] > TERMINATE_GRACE_SECONDS:
            kill_child()
        time.sleep(_POLL_SECONDS)


def _read_report(read_end: int) -> int | None:
    """The status the child wrote, or None when it wrote none (non-blocking: a grandchild may hold the pipe)."""
    os.set_blocking(read_end, False)
    data = b""
    try:
        while True:
            try:
                chunk = os.read(read_end, 64)
            except BlockingIOError:
                break
            if not chunk:
                break
            data += chunk
    finally:
        os.close(read_end)
    try:
        return int(data.decode().strip().splitlines()[-1])
    except (ValueError, IndexError, UnicodeDecodeError):
        return None


def _say(message: str) -> None:
    with contextlib.suppress(Exception):
        print(f"dbench: error: {message}", file=sys.stderr, flush=True)


__all__ = ["TERMINATE_GRACE_SECONDS", "can_supervise", "install_termination_handlers", "supervise"]
