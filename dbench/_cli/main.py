"""``dbench``: build the parser from the subcommand modules and plugins, run one command.

Every user-facing failure is one line on stderr (what is wrong and how to fix it) and an exit code
from :mod:`dbench._cli.exit_codes`; warnings (a degenerate input, say) are one line each too,
without Python's file name and source line. ``--debug`` shows tracebacks and Python's warnings instead.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from dbench._cli import aggregate, cache, check, download, evaluate, leaderboard, protocols, score, sweep
from dbench._cli import list as list_command
from dbench._cli.exit_codes import (
    EXIT_CODES_HELP,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
    EXIT_USAGE,
)
from dbench._cli.messages import one_line, one_line_warnings, os_error_line
from dbench._cli.plugins import add_plugin_commands
from dbench._cli.supervisor import (
    can_supervise,
    install_termination_handlers,
    supervise,
)
from dbench._version import __version__
from dbench.errors import DbenchError, EncoderError, Terminated, signal_name

#: The built-in subcommands, in the order ``dbench --help`` lists them (plugins follow).
COMMANDS = (evaluate, check, list_command, download, protocols, leaderboard, score, sweep, aggregate, cache)

EPILOG = f"""examples:
  dbench evaluate examples/numpy_encoder.py                 # quick protocol on dSprites
  dbench evaluate my_encoder.py --metrics mig dci --seed 1 --out result.json
  dbench evaluate run_dir/ --protocol dlib --backend auto --cache-dir ~/.cache/dbench
  dbench check my_encoder.py                                # seconds: shape, determinism, speed
  dbench download dsprites                                  # the official dSprites file, checked
  dbench cache ls --cache-dir ~/.cache/dbench               # what is cached, for which encoder
  dbench train beta_vae --steps 2000 --seed 0 --out runs/beta_vae   # with the reference models

{EXIT_CODES_HELP}"""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line (and exit code 2), like every other error."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"dbench: error: {message} (see {self.prog} --help)\n")


def build_parser(*, warn: Any = None) -> argparse.ArgumentParser:
    """The ``dbench`` parser with the built-in subcommands and those of installed plugins.

    ``warn(line)`` receives the one-line warning of a plugin that cannot be loaded (default: stderr).
    """
    parser = _Parser(
        prog="dbench",
        description="Evaluate any encoder on disentanglement metrics, fast and reproducibly.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"dbench {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.register(sub)
    add_plugin_commands(sub, warn or (lambda line: print(line, file=sys.stderr)))
    return parser


def exit_code(exc: DbenchError) -> int:
    """The exit code of a user-facing error: the encoder failed (1), else usage or configuration (2)."""
    return EXIT_FAILED if isinstance(exc, EncoderError) else EXIT_USAGE


#: Commands that load user code: run in a supervised child process (see dbench._cli.supervisor).
SUPERVISED = frozenset({"evaluate", "check"})


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``dbench ARGV``; return the exit code.

    Called without ``argv`` (the ``dbench`` program, ``python -m dbench``), a command that loads user
    code runs in a supervised child process, so that user code ending the process (``os._exit``)
    can never look like success; called with ``argv`` (tests, embedding), everything runs here.
    """
    entry = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    parsed: list[argparse.Namespace] = []

    def parse() -> int:
        parser = build_parser()
        parsed.append(parser.parse_args(argv))
        if not getattr(parsed[0], "func", None):
            parser.print_help()
            return EXIT_USAGE
        # What was asked for, as a result records it (argv as given, quoted for a shell).
        parsed[0].invocation = shlex.join(["dbench", *argv])
        return EXIT_OK

    status = _guarded(parse, debug)
    if status != EXIT_OK or not parsed:
        return status
    args = parsed[0]

    def command() -> int:
        return _guarded(lambda: int(args.func(args) or EXIT_OK), debug, command=args.command)

    if entry and args.command in SUPERVISED and can_supervise():
        return supervise(args.command, command)
    if entry:
        install_termination_handlers()
    return command()


def _guarded(body: Any, debug: bool, *, command: str | None = None) -> int:
    """``body()``'s exit code, every failure turned into one line on stderr and its exit code."""
    try:
        if debug:
            return body()
        with one_line_warnings():
            return body()
    except DbenchError as exc:
        if debug:
            raise
        print(f"dbench: error: {one_line(exc)}", file=sys.stderr)
        return exit_code(exc)
    except KeyboardInterrupt as exc:
        terminated = isinstance(exc, Terminated)
        what = f"terminated by {signal_name(exc)}" if terminated else "interrupted"
        kept = " (codes encoded so far are kept in --cache-dir, if given)" if command == "evaluate" else ""
        print(f"dbench: {what}{kept}", file=sys.stderr)
        return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader of stdout went away (``dbench list metrics | head``): stop quietly, as other tools
        # do, and keep Python from complaining again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED
    except OSError as exc:  # a path that cannot be read or written: words, not "[Errno 13]"
        if debug:
            raise
        print(f"dbench: error: {os_error_line(exc)}", file=sys.stderr)
        return EXIT_FAILED
    except RecursionError:
        if debug:
            raise
        print("dbench: error: an input is nested too deeply to process (RecursionError); flatten it "
              "(protocols, results and --set values are shallow)", file=sys.stderr)
        return EXIT_FAILED
    except MemoryError:
        if debug:
            raise
        print("dbench: error: out of memory; lower sample sizes (--set METRIC.n_train=...) or the batch size",
              file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:
        if debug:
            raise
        print(
            f"dbench: unexpected error: {exc.__class__.__name__}: {one_line(exc)} (run with --debug for the traceback)",
            file=sys.stderr,
        )
        return EXIT_FAILED
