"""Studies: sweeps of many encoders x protocols x datasets x representations x seeds, and their aggregation.

* :func:`run_sweep` (``dbench sweep``) -- every job of a :class:`SweepSpec` (a YAML sweep file read by
  :func:`read_sweep_file`), resumable, on one machine or a Dask cluster; see :mod:`~dbench.studies.engine`.
* :func:`aggregate` (``dbench aggregate``, ``dbench.aggregate``) -- a folder of results as one tidy
  pandas DataFrame with the encoders' metadata; :func:`summarise` -- mean, standard deviation and 95%
  confidence interval over seeds; :mod:`~dbench.studies.plots` -- the study plots.

The package, by job: ``spec`` (the sweep file), ``encoders`` (paths, fingerprints, metadata),
``jobs`` (job set-ups and keys), ``layout`` (the sweep folder), ``tasks`` (what workers run),
``executors`` (serial, processes, Dask), ``engine`` (the loop), ``progress``, ``records``,
``training`` (the optional ``train`` grid), ``aggregate``, ``summary`` and ``plots``.

Importing this package imports none of pandas, matplotlib or dask; the names below load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "run_sweep": "dbench.studies.engine",
    "SweepReport": "dbench.studies.engine",
    "SweepSpec": "dbench.studies.spec",
    "read_sweep_file": "dbench.studies.spec",
    "aggregate": "dbench.studies.aggregate",
    "summarise": "dbench.studies.summary",
}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'dbench.studies' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


__all__ = ["SweepReport", "SweepSpec", "aggregate", "read_sweep_file", "run_sweep", "summarise"]
