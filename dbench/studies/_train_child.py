"""``python -m dbench.studies._train_child PARENT_PID train ...``: ``dbench train`` that dies with its parent.

A sweep's training task runs ``dbench train`` as a child process of a worker. When the sweep is
stopped, its workers are terminated; a training left running would keep writing into its run folder
while the next sweep trains the same folder again. This wrapper runs the ``dbench`` command line in
this process and, from a daemon thread, exits as soon as its parent is gone (the parent process id
changes when a process is orphaned). Training checkpoints are written atomically, so the next sweep
resumes from the last one.
"""

from __future__ import annotations

import os
import runpy
import sys
import threading
import time

#: Seconds between checks of the parent process.
_POLL = 1.0


def _exit_with_parent(parent: int) -> None:
    while True:
        if os.getppid() != parent:
            os._exit(143)  # as if terminated by SIGTERM
        time.sleep(_POLL)


def main(argv: list[str]) -> None:
    if len(argv) < 2 or not argv[0].isdigit():
        raise SystemExit("usage: python -m dbench.studies._train_child PARENT_PID DBENCH-ARGUMENTS...")
    threading.Thread(target=_exit_with_parent, args=(int(argv[0]),), daemon=True).start()
    sys.argv = ["dbench", *argv[1:]]
    runpy.run_module("dbench", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
