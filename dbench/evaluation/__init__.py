"""Encode-once evaluation: plan every metric's observations, encode each unique one once, score.

- :mod:`~dbench.evaluation.options`: :class:`EvaluationOptions`, what to evaluate and where things are;
- :mod:`~dbench.evaluation.pipeline`: :func:`resolve_config`, :func:`evaluate`, :func:`evaluate_all`;
- :mod:`~dbench.evaluation.result`: :class:`EvaluationResult`, the one result model (write and read).
"""
