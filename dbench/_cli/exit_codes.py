"""Exit codes of every ``dbench`` command, used consistently and documented in ``dbench --help``."""

from __future__ import annotations

#: Everything asked for was done: every metric scored, every file written or valid.
EXIT_OK = 0
#: Some part failed: a metric, the encoder, a submission, a download; a refused result file or invalid protocol.
EXIT_FAILED = 1
#: Usage or configuration error: bad arguments, protocol, parameters or dataset; nothing was run.
EXIT_USAGE = 2
#: Interrupted (Ctrl-C, SIGINT); metrics already scored are written as a partial result, codes stay in --cache-dir.
EXIT_INTERRUPTED = 130
#: Terminated (SIGTERM, SIGHUP), with the same partial result as an interrupt.
EXIT_TERMINATED = 143

EXIT_CODES_HELP = f"""exit status:
  {EXIT_OK}    everything asked for was done (every metric scored, every file written or valid)
  {EXIT_FAILED}    some part failed: the encoder (not loadable, or failing), a metric, a submission, a
       download, a file that could not be written, a refused result file or an invalid protocol
       file (the rest is still reported and written)
  {EXIT_USAGE}    usage or configuration error: bad arguments, protocol, parameters or dataset; nothing ran
  {EXIT_INTERRUPTED}  interrupted by Ctrl-C (metrics already scored are written as a partial result,
       R.partial.json for --out R.json; codes encoded so far stay in --cache-dir, if given)
  {EXIT_TERMINATED}  terminated by SIGTERM, with the same partial result
A failed run never replaces a complete result file: anything short of every metric scored goes to
R.partial.json, and exit status 0 means every requested result was written.
Every failure is one line on stderr saying what is wrong and what to do; --debug shows the traceback.
"""

__all__ = ["EXIT_CODES_HELP", "EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_TERMINATED", "EXIT_USAGE"]
