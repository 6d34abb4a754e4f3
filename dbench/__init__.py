"""dbench: a fast, trustworthy, encoder-agnostic benchmark for disentangled representations.

Importing ``dbench`` is cheap: the functions below import the evaluation pipeline (and through it
NumPy, the metrics and, for torch encoders, torch) only when they are called.

A failed metric (or an encoder failing midway) raises :class:`dbench.EvaluationError`, which carries
the result(s) with everything that did score; pass ``raise_on_failure=False`` to get the results
back instead and read ``result.status`` / ``result.errors`` yourself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from dbench._version import __version__
from dbench.errors import ConfigError, DatasetError, DbenchError, EncoderError, EvaluationError

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
    dataset: str | Sequence[str] | None = None,
    metrics: str | Sequence[str] | None = None,
    seed: int | Sequence[int] | None = None,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    representation: Representation | None = None,
    backend: BackendName | None = None,
    batch_size: int | None = None,
    limit: float | None = None,
    data_dir: PathSpec | None = None,
    cache_dir: PathSpec | None = None,
    progress: bool = False,
    raise_on_failure: bool = True,
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
    dataset : str or sequence of str, optional
        Evaluate on this dataset (default: the protocol's); :func:`evaluate_all` takes several. A
        dataset the protocol does not list makes a derived protocol (``<name>+custom``).
    metrics : str or sequence of str, optional
        Metrics to run (default: the protocol's). Results with other metrics, parameters or seeds
        than the protocol's are recorded under a derived protocol (``<name>+custom``, its own hash).
    seed : int or sequence of int, optional
        Metric seed(s) (default: the protocol's); several seeds report mean and standard deviation.
    params : mapping, optional
        Parameter overrides per metric, e.g. ``{"mig": {"n_train": 5000}}``.
    representation : {"mean", "sampled"}, optional
        The codes (posterior mean) or one posterior sample per observation (default: the protocol's).
        One the protocol does not list makes a derived protocol (``<name>+custom``) that lists it.
    backend : {"auto", "numpy", "cupy", "torch"}, optional
        Array library of the metric maths (default: the protocol's).
    batch_size : int, optional
        Encoding batch size (default: the protocol's).
    limit : float, optional
        A fraction in (0, 1] scaling every sample size of the protocol's metrics (lm-eval's
        ``--limit``): ``limit=0.1`` runs ``dlib`` on a tenth of the observations. Sizes stay within
        each metric's declared ranges and rules (a metric whose rules need more is scaled less, and
        the result's ``notes`` say so); the result is recorded under a derived protocol.
    data_dir : path, optional
        Folder with the official dataset files (default: ``DBENCH_DATA_DIR``).
    cache_dir : path, optional
        Keep encoded codes here, so an interrupted run resumes without re-encoding.
    progress : bool
        Show a progress bar while encoding.
    raise_on_failure : bool
        Raise :class:`dbench.EvaluationError` (carrying the result) when a metric or the encoder
        failed during the run (default). ``False`` returns the result instead: read
        ``result.status`` (``"ok"``, ``"partial"``, ``"failed"``) and ``result.errors``.

    Returns
    -------
    dbench.evaluation.result.EvaluationResult
        Scores (``result.scores[metric][key]``), errors, timings and provenance; ``result.write(path)``
        writes it as JSON.

    Raises
    ------
    dbench.ConfigError
        On a bad protocol, parameter or name; when the protocol lists several datasets or
        representations and ``dataset``/``representation`` do not pick one (use :func:`evaluate_all`);
        when ``representation="sampled"`` is asked of an encoder that returns codes only.
    dbench.EncoderError
        When the encoder cannot be loaded.
    dbench.EvaluationError
        When a metric (or the encoder, midway) failed and ``raise_on_failure`` is true; the other
        metrics were still scored: ``exc.result`` holds them, ``exc.result.errors`` says what failed.

    Examples
    --------
    >>> import dbench
    >>> result = dbench.evaluate("examples/numpy_encoder.py", metrics="mig", limit=0.1)  # doctest: +SKIP
    >>> result.scores["mig"]["mig"]  # doctest: +SKIP
    0.49...
    """
    options = _options(locals(), "evaluate")  # first, while the locals are the arguments
    from dbench.evaluation.pipeline import evaluate as _evaluate

    return _checked([_evaluate(encoder, options)], raise_on_failure)[0]


def evaluate_all(
    encoder: Any,
    *,
    protocol: ProtocolSpec | None = None,
    dataset: str | Sequence[str] | None = None,
    metrics: str | Sequence[str] | None = None,
    seed: int | Sequence[int] | None = None,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    representation: Representation | None = None,
    backend: BackendName | None = None,
    batch_size: int | None = None,
    limit: float | None = None,
    data_dir: PathSpec | None = None,
    cache_dir: PathSpec | None = None,
    progress: bool = False,
    raise_on_failure: bool = True,
) -> list[EvaluationResult]:
    """Evaluate ``encoder`` on every (dataset, representation) pair of the protocol; one result each.

    The parameters are those of :func:`evaluate` (``dataset`` may list several datasets); the encoder
    is loaded once for all pairs. A representation the encoder cannot give (``sampled`` from an
    encoder that returns codes only) is skipped with one ``UserWarning``. With ``raise_on_failure``
    (the default) a failure in any pair raises :class:`dbench.EvaluationError` once every pair has
    run; ``exc.results`` holds all of them.
    """
    options = _options(locals(), "evaluate_all")  # first, while the locals are the arguments
    from dbench.evaluation.pipeline import evaluate_all as _evaluate_all

    return _checked(_evaluate_all(encoder, options), raise_on_failure)


def aggregate(results_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """Every result under ``results_dir`` (a ``dbench sweep`` folder, or any folder of result files) as one
    tidy pandas DataFrame: a row per encoder x protocol x dataset x representation x metric seed x score,
    with each encoder's metadata (a run folder's model, hyperparameters, training seed, steps) as columns.

    See :mod:`dbench.studies.aggregate`; ``dbench aggregate DIR`` also writes the summary and the plots.
    """
    from dbench.studies.aggregate import aggregate as _aggregate

    return _aggregate(results_dir)


def _options(arguments: dict[str, Any], function: str) -> EvaluationOptions:
    from dbench.evaluation.options import EvaluationOptions

    given = {k: v for k, v in arguments.items() if k not in ("encoder", "raise_on_failure")}
    return EvaluationOptions(**given, invocation=_call_text(function, arguments))


def _call_text(function: str, arguments: dict[str, Any]) -> str:
    """The call as a reader would write it: ``dbench.evaluate('enc.py', metrics='mig')`` (defaults left out)."""
    import inspect

    encoder = arguments["encoder"]
    if isinstance(encoder, (str, bytes)) or hasattr(encoder, "__fspath__"):
        shown = repr(str(encoder) if not isinstance(encoder, bytes) else encoder)
    else:
        shown = f"<{getattr(encoder, '__qualname__', type(encoder).__name__)}>"
    defaults = inspect.signature(evaluate).parameters
    parts = [shown] + [
        f"{key}={value!r}" for key, value in arguments.items()
        if key != "encoder" and key in defaults and value != defaults[key].default
    ]
    return f"dbench.{function}({', '.join(parts)})"


def _checked(results: list[EvaluationResult], raise_on_failure: bool) -> list[EvaluationResult]:
    """``results``, or an EvaluationError carrying them when one did not fully score."""
    failed = [r for r in results if r.status != "ok"]
    if raise_on_failure and failed:
        first = failed[0]
        reasons = "; ".join(f"{metric}: {reason}" for metric, reason in first.errors.items()) or (first.error or "")
        more = f" (and {len(failed) - 1} more result(s) with failures)" if len(failed) > 1 else ""
        raise EvaluationError(
            f"{first.encoder.name} on {first.dataset} ({first.representation}): {first.status}, {reasons}{more}; "
            "the scored metrics are in exc.result (pass raise_on_failure=False to get the result instead)",
            results,
        )
    return results


__all__ = [
    "ConfigError",
    "DatasetError",
    "DbenchError",
    "EncoderError",
    "EvaluationError",
    "__version__",
    "aggregate",
    "evaluate",
    "evaluate_all",
]
