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

from dbench._cli import check, download, evaluate, leaderboard, protocols, score
from dbench._cli import list as list_command
from dbench._cli.exit_codes import (
    EXIT_CODES_HELP,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
)
from dbench._cli.messages import one_line, one_line_warnings, os_error_line
from dbench._cli.plugins import add_plugin_commands
from dbench._version import __version__
from dbench.errors import DbenchError, EncoderError

#: The built-in subcommands, in the order ``dbench --help`` lists them (plugins follow).
COMMANDS = (evaluate, check, list_command, download, protocols, leaderboard, score)

EPILOG = f"""examples:
  dbench evaluate examples/numpy_encoder.py                 # quick protocol on dSprites
  dbench evaluate my_encoder.py --metrics mig dci --seed 1 --out result.json
  dbench evaluate run_dir/ --protocol dlib --backend auto --cache-dir ~/.cache/dbench
  dbench check my_encoder.py                                # seconds: shape, determinism, speed
  dbench download dsprites                                  # the official dSprites file, checked
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


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``dbench ARGV``; return the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return EXIT_USAGE
        # What was asked for, as a result records it (argv as given, quoted for a shell).
        args.invocation = shlex.join(["dbench", *argv])
        if debug:
            return int(args.func(args) or EXIT_OK)
        with one_line_warnings():
            return int(args.func(args) or EXIT_OK)
    except DbenchError as exc:
        if debug:
            raise
        print(f"dbench: error: {one_line(exc)}", file=sys.stderr)
        return exit_code(exc)
    except KeyboardInterrupt:
        print("dbench: interrupted (codes encoded so far are kept in --cache-dir, if given)", file=sys.stderr)
        return EXIT_INTERRUPTED
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
    except Exception as exc:
        if debug:
            raise
        print(
            f"dbench: unexpected error: {exc.__class__.__name__}: {one_line(exc)} (run with --debug for the traceback)",
            file=sys.stderr,
        )
        return EXIT_FAILED
