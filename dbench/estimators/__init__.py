"""Supervised estimators that metrics and probes fit on codes.

* :mod:`~dbench.estimators.boosted_trees`: scikit-learn's ``GradientBoostingClassifier()``,
  re-implemented exactly and compiled with numba (DCI);
* :mod:`~dbench.estimators.exact_logistic`: scikit-learn's lbfgs ``LogisticRegression()`` /
  ``LogisticRegressionCV``, the same iterates on a vectorised objective (explicitness, beta-VAE,
  downstream task);
* :mod:`~dbench.estimators.batched_logistic`: many L2 logistic regressions solved to the optimum at
  once on any array-API backend (few-shot probe, downstream task's ``"batched"`` solver);
* :mod:`~dbench.estimators.model_selection`: scikit-learn's ``KFold`` folds and ``C`` grid, shared by
  both logistic solvers; :mod:`~dbench.estimators.threads`: BLAS thread limits.

Submodules are imported on use so that ``import dbench`` stays cheap (numba, scipy).
"""
