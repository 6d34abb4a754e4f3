"""Showing a sandbox's encoding progress: a tqdm bar in a terminal, a line every ~30 s in a log."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from typing import Any, TextIO

#: Seconds between progress lines when stderr is not a terminal.
LOG_INTERVAL = 30.0


class EncodeProgress:
    """Receives the sandbox's ``DATASET DONE TOTAL`` lines for one submission and shows them."""

    def __init__(self, label: str, *, stream: TextIO | None = None, interval: float = LOG_INTERVAL,
                 terminal: bool | None = None) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.interval = interval
        self.terminal = self.stream.isatty() if terminal is None else terminal
        self.started = time.monotonic()
        self.last_line = self.started
        self.bars: dict[str, Any] = {}
        self.done: dict[str, int] = {}

    def __call__(self, line: str) -> None:
        parts = line.split()
        if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit():
            return  # not ours (the submission may write to the pipe too): ignore
        dataset, done, total = parts[0][:60], int(parts[1]), int(parts[2])
        if total <= 0 or done > total:
            return
        if self.terminal:
            self._bar(dataset, total).update(max(done - self.done.get(dataset, 0), 0))
        else:
            now = time.monotonic()
            if now - self.last_line >= self.interval or (done == total and self.done.get(dataset) != total):
                self.last_line = now
                print(f"{self.label}: encoding {dataset} in the sandbox: {done:,}/{total:,} images "
                      f"({100 * done / total:.0f}%), {now - self.started:.0f} s", file=self.stream, flush=True)
        self.done[dataset] = done

    def _bar(self, dataset: str, total: int) -> Any:
        if dataset not in self.bars:
            from tqdm.auto import tqdm

            self.bars[dataset] = tqdm(total=total, desc=f"{self.label}: {dataset}", unit="img", unit_scale=True,
                                      dynamic_ncols=True, leave=False, file=self.stream)
        return self.bars[dataset]

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()
        self.bars.clear()


def only_expected(report: Callable[[str], Any], totals: Mapping[str, int]) -> Callable[[str], None]:
    """Pass on only ``DATASET DONE TOTAL`` lines naming a dataset of the query set with its true total.

    The submission's code can write to the progress pipe too: a made-up dataset name (terminal escape
    sequences included) or count never reaches the organiser's terminal, and no new bar is opened.
    """
    wanted = {name: str(int(total)) for name, total in totals.items()}

    def forward(line: str) -> None:
        parts = line.split(" ")
        if len(parts) == 3 and wanted.get(parts[0]) == parts[2] and parts[1].isascii() and parts[1].isdigit():
            report(line)

    return forward


__all__ = ["LOG_INTERVAL", "EncodeProgress", "only_expected"]
