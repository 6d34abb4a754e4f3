"""How ``dbench evaluate`` writes each result file, so that a failed run never costs an earlier one.

Where a result goes is :mod:`dbench.results.layout`'s business (``--out FILE.json`` or ``--out DIR``);
this module decides only *which* file at that place. A complete result (status ``ok``) goes to the
file the layout names, ``R.json``. Anything less (a metric or the encoder failed, the run was
interrupted) goes to the sibling ``R.partial.json``, so ``R.json`` only ever holds a complete result
and an earlier complete one is never replaced by a failed rerun. While the run goes on, the partial
sibling is kept up to date after every metric (a checkpoint: a run killed part-way, even by SIGKILL,
still leaves what it finished); a complete result replaces it. A result with no score at all never
replaces an earlier partial result that has some. Files are written atomically
(:meth:`~dbench.evaluation.result.EvaluationResult.write`).
"""

from __future__ import annotations

from pathlib import Path

from dbench.errors import ConfigError
from dbench.evaluation.result import EvaluationResult, read_result

PARTIAL_SUFFIX = ".partial"


def partial_path(path: Path) -> Path:
    """``R.json`` -> ``R.partial.json``: the sibling a result short of complete goes to."""
    return path.with_name(f"{path.stem}{PARTIAL_SUFFIX}{path.suffix or '.json'}")


class ResultFiles:
    """The result files of one ``dbench evaluate`` call (it remembers the checkpoints it wrote)."""

    def __init__(self) -> None:
        self._checkpoints: set[Path] = set()

    def write_result(self, result: EvaluationResult, path: Path) -> Path | None:
        """Write ``result`` to ``path`` if complete, else to its partial sibling; return the file written.

        A complete result removes this call's checkpoint (the partial sibling written while it ran).
        A result with no score never replaces an earlier partial result that has some: then nothing
        is written and None is returned. Raises ``OSError`` with the path when the file cannot be
        written (the caller reports one line).
        """
        target = path if result.status == "ok" else partial_path(path)
        if target != path and self._loses_scores(result, target):
            return None
        result.write(target)
        if target == path and partial_path(path) in self._checkpoints:
            partial_path(path).unlink(missing_ok=True)
            self._checkpoints.discard(partial_path(path))
        return target

    def write_checkpoint(self, path: Path, result: EvaluationResult) -> None:
        """Keep the result so far in ``path``'s partial sibling, so a run killed part-way loses no finished metric.

        Never raises for a file that cannot be written: the final write reports that.
        """
        target = partial_path(path)
        if self._loses_scores(result, target):
            return
        try:
            result.write(target)
        except OSError:
            return
        self._checkpoints.add(target)

    def _loses_scores(self, result: EvaluationResult, target: Path) -> bool:
        """Whether writing ``result`` (no score at all) would replace an earlier partial result that has some."""
        if result.scores or target in self._checkpoints or not target.is_file():
            return False
        try:
            return bool(read_result(target).scores)
        except ConfigError:  # unreadable or not a result: nothing to keep
            return False


__all__ = ["PARTIAL_SUFFIX", "ResultFiles", "partial_path"]
