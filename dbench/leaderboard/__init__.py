"""The leaderboard: validate result files, rank them by the NeurIPS 2019 challenge rule, render pages.

- result files are read and validated with :func:`dbench.evaluation.result.read_result` (the one
  result model, :class:`~dbench.evaluation.result.EvaluationResult`).
- :mod:`dbench.leaderboard.ranking`: the challenge ranking rule as pure functions on DataFrames.
- :mod:`dbench.leaderboard.build`: ``dbench leaderboard build``: README.md and a self-contained index.html.

Submodules are imported on use, so ``dbench --help`` does not pay for pandas.
"""
