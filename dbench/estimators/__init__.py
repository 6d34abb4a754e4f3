"""Supervised estimators that metrics fit on codes (gradient-boosted trees for DCI, probes).

Submodules are imported on use so that ``import dbench`` stays cheap (numba, scikit-learn).
"""
