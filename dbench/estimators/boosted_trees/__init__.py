"""Gradient-boosted trees that reproduce scikit-learn's ``GradientBoostingClassifier()``, fast.

DCI reads its importance matrix off one ``GradientBoostingClassifier()`` per factor, with every
default; a histogram booster changes the number, so this package re-implements that algorithm step
for step (same trees, importances and predictions) and only organises the work differently.
docs/dci.md says what is reproduced, the one deliberate difference (ties between features), why the
speed-ups change no number and what the work costs.

Reading guide, in the order a fit runs:

* ``_fit.py``: :func:`fit_boosted_trees` sorts every feature once, allocates the buffers
  (:class:`~._fit.Ensemble` for the results, per-thread ``LaneBuffers``) and runs ``boost``, all
  stages in one compiled call: per stage the gradients, then one tree per tree column, spread over
  numba's threads;
* ``_gradients.py``: the log-loss: prior initialisation, sigmoid (two classes) and softmax
  gradients and hessians;
* ``_tree.py``: growing one depth-3 tree on samples kept in sorted order: node sums, best split
  over all features (with the tie rule), Newton leaf values, importance credit, stable partition;
* ``_split_scan.py``: the best cut of four features of a node, by a pruned block scan and its bound;
* ``_model.py``: the fitted :class:`BoostedTrees` (NumPy arrays) and branch-free prediction;
* ``_constants.py``: scikit-learn's tree constants and the tree shape.

Kernels are compiled on first use and cached in the user's cache folder (``dbench.estimators._numba``).
Without numba :func:`fit_boosted_trees` raises ImportError; callers check :func:`numba_available`
and fall back to scikit-learn.
"""

from __future__ import annotations

from dbench.estimators._numba import HAVE_NUMBA
from dbench.estimators.boosted_trees._fit import fit_boosted_trees
from dbench.estimators.boosted_trees._model import BoostedTrees


def numba_available() -> bool:
    """Whether the compiled kernels can run (numba importable)."""
    return HAVE_NUMBA


__all__ = ["BoostedTrees", "fit_boosted_trees", "numba_available"]
