"""dbench: a fast, trustworthy, encoder-agnostic benchmark for disentangled representations.

Importing ``dbench`` is cheap: the functions below import the evaluation pipeline (and through it
NumPy, the metrics and, for torch encoders, torch) only when they are called.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from dbench._version import __version__

if TYPE_CHECKING:
    import os

    import pandas as pd

    from dbench.choices import BackendName, Representation
    from dbench.evaluation.options import EvaluationOptions, PathSpec, ProtocolSpec
    from dbench.evaluation.result import EvaluationResult


def evaluate(
    encoder: Any,
    *,
    protocol: ProtocolSpec | None = None,
    dataset: str | None = None,
    metrics: str | Sequence[str] | None = None,
    seed: int | Sequence[int] | None = None,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    representation: Representation | None = None,
    backend: BackendName | None = None,
    batch_size: int | None = None,
    data_dir: PathSpec | None = None,
    cache_dir: PathSpec | None = None,
    progress: bool = False,
) -> EvaluationResult:
    """Evaluate ``encoder`` on one dataset and representation; return its result.

    Parameters
    ----------
    encoder
        A path to a Python file, TorchScript file or trained run folder; a torch module; an object
        with ``encode(images)``; or a function ``images -> codes``.
    protocol : str, path, mapping or Protocol, optional
        Bundled protocol name or YAML file (default ``quick``). It fixes datasets, metrics and their
        parameters, seeds, representation, backend and batch size; the arguments below override it.
    dataset : str, optional
        Evaluate on this dataset (default: the protocol's).
    metrics : str or sequence of str, optional
        Metrics to run (default: the protocol's). Results with other metrics, parameters or seeds
        than the protocol's are recorded under a derived protocol (``<name>+custom``, its own hash).
    seed : int or sequence of int, optional
        Metric seed(s) (default: the protocol's); several seeds report mean and standard deviation.
    params : mapping, optional
        Parameter overrides per metric, e.g. ``{"mig": {"n_train": 5000}}``.
    representation : {"mean", "sampled"}, optional
        The codes (posterior mean) or one posterior sample per observation (default: the protocol's).
    backend : {"auto", "numpy", "cupy", "torch"}, optional
        Array library of the metric maths (default: the protocol's).
    batch_size : int, optional
        Encoding batch size (default: the protocol's).
    data_dir : path, optional
        Folder with the official dataset files (default: ``DBENCH_DATA_DIR``).
    cache_dir : path, optional
        Keep encoded codes here, so an interrupted run resumes without re-encoding.
    progress : bool
        Show a progress bar while encoding.

    Returns
    -------
    dbench.evaluation.result.EvaluationResult
        Scores (``result.scores[metric][key]``), errors, timings and provenance; ``result.write(path)``
        writes it as JSON.

    Raises
    ------
    dbench.errors.ConfigError
        On a bad protocol, parameter or name, and when the protocol lists several datasets or
        representations and ``dataset``/``representation`` do not pick one (use :func:`evaluate_all`).
    dbench.errors.EncoderError
        When the encoder cannot be loaded.

    A metric that fails is recorded in ``result.errors`` (``result.status`` is then ``"partial"`` or
    ``"failed"``); the other metrics are still scored.
    """
    options = _options(locals())  # first, while the locals are the arguments
    from dbench.evaluation.pipeline import evaluate as _evaluate

    return _evaluate(encoder, options)


def evaluate_all(
    encoder: Any,
    *,
    protocol: ProtocolSpec | None = None,
    dataset: str | None = None,
    metrics: str | Sequence[str] | None = None,
    seed: int | Sequence[int] | None = None,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    representation: Representation | None = None,
    backend: BackendName | None = None,
    batch_size: int | None = None,
    data_dir: PathSpec | None = None,
    cache_dir: PathSpec | None = None,
    progress: bool = False,
) -> list[EvaluationResult]:
    """Evaluate ``encoder`` on every (dataset, representation) pair of the protocol; one result each.

    The parameters are those of :func:`evaluate`; the encoder is loaded once for all pairs.
    """
    options = _options(locals())  # first, while the locals are the arguments
    from dbench.evaluation.pipeline import evaluate_all as _evaluate_all

    return _evaluate_all(encoder, options)


def aggregate(results_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """Every result under ``results_dir`` (a ``dbench sweep`` folder, or any folder of result files) as one
    tidy pandas DataFrame: a row per encoder x protocol x dataset x representation x metric seed x score,
    with each encoder's metadata (a run folder's model, hyperparameters, training seed, steps) as columns.

    See :mod:`dbench.studies.aggregate`; ``dbench aggregate DIR`` also writes the summary and the plots.
    """
    from dbench.studies.aggregate import aggregate as _aggregate

    return _aggregate(results_dir)


def _options(arguments: dict[str, Any]) -> EvaluationOptions:
    from dbench.evaluation.options import EvaluationOptions

    return EvaluationOptions(**{k: v for k, v in arguments.items() if k != "encoder"})


__all__ = ["__version__", "aggregate", "evaluate", "evaluate_all"]
