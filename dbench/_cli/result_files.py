"""How ``dbench evaluate`` writes each result file, so that a failed run never costs an earlier one.

Where a result goes is :mod:`dbench.results.layout`'s business (``--out FILE.json`` or ``--out DIR``);
this module decides only *which* file at that place. A complete result (status ``ok``) goes to the
file the layout names, ``R.json``. Anything less (a metric or the encoder failed, the run was
interrupted) goes to the sibling ``R.partial.json``, so ``R.json`` only ever holds a complete result
and an earlier complete one is never replaced by a failed rerun. While the run goes on, the partial
sibling is kept up to date after every metric (a checkpoint: a run killed part-way, even by SIGKILL,
still leaves what it finished); a complete result replaces it. Files are written atomically
(:meth:`~dbench.evaluation.result.EvaluationResult.write`).
"""

from __future__ import annotations

from pathlib import Path

from dbench.evaluation.result import EvaluationResult

PARTIAL_SUFFIX = ".partial"


def partial_path(path: Path) -> Path:
    """``R.json`` -> ``R.partial.json``: the sibling a result short of complete goes to."""
    return path.with_name(f"{path.stem}{PARTIAL_SUFFIX}{path.suffix or '.json'}")


def write_result(result: EvaluationResult, path: Path) -> Path:
    """Write ``result`` to ``path`` if complete, else to its partial sibling; return the file written.

    A complete result replaces this run's checkpoint (the partial sibling written while it ran).
    Raises ``OSError`` with the path when the file cannot be written (the caller reports one line).
    """
    target = path if result.status == "ok" else partial_path(path)
    result.write(target)
    if target == path and partial_path(path) in _CHECKPOINTS:
        partial_path(path).unlink(missing_ok=True)
        _CHECKPOINTS.discard(partial_path(path))
    return target


# Partial files this process wrote as checkpoints (removed once the complete result is written).
_CHECKPOINTS: set[Path] = set()


def write_checkpoint(path: Path, result: EvaluationResult) -> None:
    """Keep the result so far in ``path``'s partial sibling, so a run killed part-way loses no finished metric.

    Never raises for a file that cannot be written: the final write reports that.
    """
    target = partial_path(path)
    try:
        result.write(target)
    except OSError:
        return
    _CHECKPOINTS.add(target)


__all__ = ["PARTIAL_SUFFIX", "partial_path", "write_checkpoint", "write_result"]
