"""A folder of results as one tidy pandas DataFrame: a row per encoder x protocol x dataset x representation x
metric seed x score key, with the encoder's metadata as columns.

Every ``*.json`` under the folder is read as an :class:`~dbench.evaluation.result.EvaluationResult`
(a sweep folder, a leaderboard's ``results/``, files of ``dbench evaluate --out``); a file that is not a
valid result is refused with one line and the others are still aggregated. A result over several metric
seeds contributes one row per seed (its ``per_seed`` runs), a single-seed result one row per score.

The columns are :data:`BASE_COLUMNS` followed by the metadata (``setup_hash`` identifies the evaluation
set-up across metric seeds, see :func:`setup_hash`): for a sweep folder, the ``meta`` of each
encoder's record under ``encoders/`` (its sweep-file metadata and, for a run folder, its
``config.json``: ``model``, ``train_seed``, ``steps``, the hyperparameters ...); for other folders
(``dbench evaluate --out DIR``'s ``DIR/<encoder>/<protocol>/...``, a leaderboard's results), the
training configuration a schema-2 result records in ``provenance.training``, else the ``config.json``
of the run folder a result names, when it is still there. A metadata name that equals a
base column is prefixed with ``meta_``.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dbench.errors import ConfigError
from dbench.evaluation.result import EvaluationResult, read_result
from dbench.studies.encoders import config_metadata, source_metadata
from dbench.studies.layout import SweepFolder

if TYPE_CHECKING:
    import pandas as pd

#: Largest result file read (a result is kilobytes; a probe-heavy one well under a megabyte).
MAX_RESULT_BYTES = 64 << 20

#: The columns every aggregate table has, in order.
BASE_COLUMNS = (
    "encoder", "fingerprint", "encoder_path", "protocol", "protocol_version", "protocol_hash", "setup_hash", "dataset",
    "representation", "seed", "metric", "key", "score_name", "score", "status", "result_file",
)


@dataclass
class Aggregated:
    """The table, and what the folder held besides its rows."""

    frame: pd.DataFrame
    n_results: int = 0
    n_failed: int = 0
    refused: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: ``metric.key`` scores the protocols of the results rank on, in order (for tables and plots).
    ranking: list[str] = field(default_factory=list)
    #: Metadata columns, in order of first appearance.
    meta_columns: list[str] = field(default_factory=list)


def collect(results_dir: str | os.PathLike[str]) -> Aggregated:
    """Read every result under ``results_dir`` into one :class:`Aggregated` (see the module docstring)."""
    import pandas as pd

    root = Path(results_dir)
    if not root.is_dir():
        raise ConfigError(f"{root}: no such folder; give a folder of result JSON files (a sweep's --out)")
    out = Aggregated(frame=pd.DataFrame())
    records = SweepFolder(root).read_encoder_records(warn=out.warnings.append)
    rows: list[dict[str, Any]] = []
    meta_columns: dict[str, None] = {}
    for path in sorted(root.rglob("*.json")):
        try:
            if path.stat().st_size > MAX_RESULT_BYTES:
                raise ConfigError(f"{path}: over {MAX_RESULT_BYTES >> 20} MB, too big for a result file")
            result = read_result(path)
        except ConfigError as exc:
            out.refused.append(str(exc))
            continue
        except RecursionError:
            out.refused.append(f"{path}: nested too deeply for a result file")
            continue
        out.n_results += 1
        out.n_failed += result.status == "failed"
        for key in result.protocol.resolved.get("ranking") or ():
            if key not in out.ranking:
                out.ranking.append(key)
        meta = _metadata(result, records, out.warnings)
        meta_columns.update(dict.fromkeys(meta))
        rows.extend(_rows(result, path.relative_to(root).as_posix(), meta))
    out.meta_columns = list(meta_columns)
    frame = pd.DataFrame(rows, columns=[*BASE_COLUMNS, *out.meta_columns])
    frame["seed"] = frame["seed"].astype("int64")
    frame["score"] = frame["score"].astype("float64")
    out.frame = frame
    return out


def aggregate(results_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """The tidy table of every result under ``results_dir`` (see :mod:`dbench.studies.aggregate`).

    Files that are not valid results are left out with a :class:`UserWarning` naming them (the
    command ``dbench aggregate`` prints one line each and exits with status 1).

    Examples
    --------
    >>> import dbench
    >>> df = dbench.aggregate("sweeps/study")  # doctest: +SKIP
    >>> df.groupby(["model", "beta", "score_name"])["score"].mean()  # doctest: +SKIP
    """
    collected = collect(results_dir)
    if collected.refused:
        shown = "; ".join(collected.refused[:3]) + (" ..." if len(collected.refused) > 3 else "")
        warnings.warn(f"{len(collected.refused)} files under {results_dir} are not valid results and were left out: "
                      f"{shown}", UserWarning, stacklevel=2)
    return collected.frame


def _metadata(result: EvaluationResult, records: dict[str, dict[str, Any]], notes: list[str]) -> dict[str, Any]:
    fingerprint = result.encoder.fingerprint
    training = result.provenance.training if result.provenance is not None else None
    if fingerprint in records:
        meta = dict(records[fingerprint].get("meta") or {})
    elif isinstance(training, dict) and isinstance(training.get("config"), dict):
        meta = config_metadata(training["config"])  # schema 2: the run's config travels with the result
    else:
        spec = result.encoder.spec
        meta = source_metadata(spec, notes.append) if isinstance(spec, str) and spec and os.path.isdir(spec) else {}
    return {(f"meta_{k}" if k in BASE_COLUMNS else str(k)): v for k, v in meta.items()
            if isinstance(v, (str, int, float, bool)) or v is None}


def _rows(result: EvaluationResult, result_file: str, meta: dict[str, Any]) -> list[dict[str, Any]]:
    base = {
        "encoder": result.entry_name,
        "fingerprint": result.encoder.fingerprint,
        "encoder_path": result.encoder.spec if isinstance(result.encoder.spec, str) else None,
        "protocol": result.protocol.name,
        "protocol_version": result.protocol.version,
        "protocol_hash": result.protocol.hash,
        "setup_hash": setup_hash(result.protocol.resolved),
        "dataset": result.dataset,
        "representation": result.representation,
        "status": result.status,
        "result_file": result_file,
        **meta,
    }
    runs = [(run.seed, run.scores) for run in result.per_seed] if result.per_seed else [(result.seeds[0], result.scores)]
    rows = []
    for seed, scores in runs:
        for metric, keys in scores.items():
            for key, value in keys.items():
                rows.append({**base, "seed": seed, "metric": metric, "key": key, "score_name": f"{metric}.{key}",
                             "score": float(value)})
    return rows


def setup_hash(resolved: dict[str, Any]) -> str:
    """The hash of a resolved protocol with its seeds left out: what the results of several seeds share.

    A job per metric seed records a derived protocol per seed (the seeds are part of a protocol), so
    ``protocol_hash`` differs between the seeds of one set-up; ``setup_hash`` does not.
    """
    from dbench.protocols import hash_resolved

    return hash_resolved({k: v for k, v in resolved.items() if k != "seeds"})


def write_tables(collected: Aggregated, out_dir: str | os.PathLike[str]) -> list[Path]:
    """``scores.csv`` and, with pyarrow installed, ``scores.parquet`` of the table; return the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "scores.csv"]
    collected.frame.to_csv(written[0], index=False)
    try:
        import pyarrow  # noqa: F401 - only to know whether Parquet can be written
    except ImportError:
        return written
    parquet = out / "scores.parquet"
    frame = collected.frame.copy()
    for column in collected.meta_columns:  # Parquet columns have one type: mixed metadata become text
        if frame[column].dtype == object and frame[column].dropna().map(type).nunique() > 1:
            frame[column] = frame[column].map(lambda v: None if v is None else str(v))
    frame.to_parquet(parquet, index=False)
    written.append(parquet)
    return written


__all__ = ["BASE_COLUMNS", "Aggregated", "aggregate", "collect", "write_tables"]
