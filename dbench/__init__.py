"""dbench: a fast, trustworthy, encoder-agnostic benchmark for disentangled representations.

Importing ``dbench`` is cheap: torch, CuPy and matplotlib are imported only where they are used.
"""

__version__ = "0.1.0"


def evaluate(*args, **kwargs):
    """Run one evaluation; see :func:`dbench.evaluation.pipeline.evaluate`."""
    from dbench.evaluation.pipeline import evaluate as _evaluate

    return _evaluate(*args, **kwargs)


__all__ = ["__version__", "evaluate"]
