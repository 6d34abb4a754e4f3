"""Exact gradient boosting on the array API: ``GradientBoostingClassifier()`` on NumPy, CuPy, torch, array_api_strict.

The same algorithm and rules as the compiled trees of :mod:`dbench.estimators.boosted_trees` (100
stages, depth 3, exact greedy splits on float32 features sorted once, sklearn's ``FEATURE_THRESHOLD``,
the proxy improvement with the first strictly best cut, midpoint thresholds, impurity-eps leaves,
Newton leaf values, scikit-learn's importances, the tie rule between features and equal shares of
tied features' importance), written as array operations so that a fit runs where the codes live:
one code path for every backend, vectorised over the classes of a factor (all tree columns of a stage
grow together), the features and the nodes of a level.

How a level is computed: a node's members are a mask over each feature's sorted order (node ids as
segment ids), so every cut's left sum is a cumulative sum of the node's gradients along that order;
the first maximum of the proxies per feature, then the tie rule across features, pick the split.
On a backend whose cumulative sums run sequentially (NumPy and torch on a CPU) every sum is taken in
the compiled trees' order; the remaining differences are the backend's ``exp`` (a unit in the last
place) and, on a GPU, parallel scans. Splits can therefore flip only where two candidates tie to
rounding error; docs/gpu.md gives the measured rates and what they do to DCI.

Reading guide: ``_columns.py`` (sort once, the validity bound of each cut, dense ranks),
``_gradients.py`` (sigmoid / softmax gradients), ``_level.py`` (one level of all trees: node sums, best
cuts, tie rule, leaves, importance credit), ``_fit.py`` (:func:`fit_array_trees`: the stages),
``_model.py`` (:class:`ArrayBoostedTrees` and its prediction on complete depth-3 trees).

The compiled trees are several times faster on a CPU; these are for arrays on a device (docs/gpu.md).
"""

from __future__ import annotations

from dbench.estimators.array_trees._fit import fit_array_trees, fit_array_trees_multi
from dbench.estimators.array_trees._model import ArrayBoostedTrees

__all__ = ["ArrayBoostedTrees", "fit_array_trees", "fit_array_trees_multi"]
