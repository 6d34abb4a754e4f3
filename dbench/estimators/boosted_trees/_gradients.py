"""The log-loss: its prior initialisation and the negative gradients and hessians of every stage.

Two classes use the sigmoid of one raw score per sample, more classes the softmax of one per class
(scikit-learn's ``HalfBinomialLoss`` / ``HalfMultinomialLoss``).
"""

from __future__ import annotations

import numpy as np

from dbench.estimators._numba import kernel


def initial_raw(y_encoded: np.ndarray, n_classes: int) -> np.ndarray:
    """sklearn's ``DummyClassifier(strategy="prior")`` pushed through the loss's link function."""
    prior = np.bincount(y_encoded, minlength=n_classes) / y_encoded.size
    eps = np.finfo(np.float64).eps
    prior = np.clip(prior, eps, 1 - eps)
    if n_classes == 2:
        p = prior[1]
        return np.array([np.log(p / (1 - p))])
    # Symmetric multinomial logit: log(p / geometric_mean(p)).
    geometric_mean = np.exp(np.mean(np.log(prior)))
    return np.log(prior / geometric_mean)


@kernel()
def negative_gradients(raw, y, grad, hess, row_start, row_stop, scratch):
    """``y - p`` and ``p (1 - p)`` for samples [row_start, row_stop) and every tree column.

    ``raw``, ``grad`` and ``hess`` are ``(T, n)``, one contiguous row per tree; ``scratch`` is
    ``(T + 2, block)`` (used by the softmax only).
    """
    if raw.shape[0] == 1:
        sigmoid_gradients(raw[0], y, grad[0], hess[0], row_start, row_stop)
    else:
        softmax_gradients(raw, y, grad, hess, row_start, row_stop, scratch)


@kernel()
def sigmoid_gradients(raw, y, grad, hess, row_start, row_stop):
    """Two classes: ``p = expit(raw)``; the hessian uses ``p = y - (y - p)`` as scikit-learn's leaf
    update recomputes it."""
    for i in range(row_start, row_stop):
        r = raw[i]
        # expit, written to stay finite for large |r|
        if r >= 0:
            p = 1.0 / (1.0 + np.exp(-r))
        else:
            e = np.exp(r)
            p = e / (1.0 + e)
        t = 1.0 if y[i] == 1 else 0.0
        g = t - p
        q = t - g
        grad[i] = g
        hess[i] = q * (1.0 - q)


@kernel()
def softmax_gradients(raw, y, grad, hess, row_start, row_stop, scratch):
    """More classes: ``p`` is the softmax of ``raw[:, i]``.

    Samples go in blocks of ``scratch.shape[1]``, each loop running along samples so that
    everything but ``exp`` vectorises; a sample's softmax denominator still adds its terms in
    class order. ``scratch`` rows: the ``T`` exponentials, the largest score, the denominator.
    """
    n_columns = raw.shape[0]
    block = scratch.shape[1]
    largest = scratch[n_columns]
    denominator = scratch[n_columns + 1]
    for low in range(row_start, row_stop, block):
        size = min(row_stop, low + block) - low
        for s in range(size):
            largest[s] = raw[0, low + s]
            denominator[s] = 0.0
        for k in range(1, n_columns):
            for s in range(size):
                r = raw[k, low + s]
                largest[s] = max(largest[s], r)
        for k in range(n_columns):
            exps = scratch[k]
            for s in range(size):
                e = np.exp(raw[k, low + s] - largest[s])
                exps[s] = e
                denominator[s] += e
        for k in range(n_columns):
            exps = scratch[k]
            for s in range(size):
                i = low + s
                p = exps[s] / denominator[s]
                t = 1.0 if y[i] == k else 0.0
                g = t - p
                q = t - g
                grad[k, i] = g
                hess[k, i] = q * (1.0 - q)
