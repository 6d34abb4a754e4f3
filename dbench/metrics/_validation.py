"""Shared input checks for the array-level metrics (one validator, errors that name the argument).

Checks of *parameters* (``n_bins``, ``solver``...) are not here: they are declared with each metric
(:class:`~dbench.metrics.MetricSpec`) and run by its ``validate``. These check the *arrays*.
"""

from __future__ import annotations

import warnings
from typing import Any

from array_api_compat import array_namespace


class DegenerateInputWarning(UserWarning):
    """Legal input on which a metric is degenerate (constant codes, a factor with one value)."""


def check_codes(codes: Any, *, name: str = "codes") -> Any:
    """Check ``codes`` is a finite real 2-D array ``(n_samples, n_latents)`` with at least one latent."""
    xp = array_namespace(codes)
    if codes.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_latents); got shape {tuple(codes.shape)}")
    if codes.shape[1] < 1:
        raise ValueError(f"{name} must have at least one latent dimension; got shape {tuple(codes.shape)}")
    if not xp.isdtype(codes.dtype, ("real floating", "integral")):
        raise ValueError(f"{name} must be a real-valued array; got dtype {codes.dtype}")
    if xp.isdtype(codes.dtype, "real floating") and not bool(xp.all(xp.isfinite(codes))):
        raise ValueError(f"{name} contains NaN or inf; check the encoder's output")
    return codes


def check_factors(factors: Any, *, name: str = "factors") -> Any:
    """Check ``factors`` is a 2-D array of non-negative integer indices ``(n_samples, n_factors)``."""
    xp = array_namespace(factors)
    if factors.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_factors); got shape {tuple(factors.shape)}")
    if factors.shape[1] < 1:
        raise ValueError(f"{name} must have at least one factor; got shape {tuple(factors.shape)}")
    if xp.isdtype(factors.dtype, "real floating"):
        if not bool(xp.all(xp.isfinite(factors))) or not bool(xp.all(factors == xp.round(factors))):
            raise ValueError(f"{name} must hold integer factor indices; got non-integer values")
    elif not xp.isdtype(factors.dtype, "integral"):
        raise ValueError(f"{name} must hold integer factor indices; got dtype {factors.dtype}")
    if factors.shape[0] and bool(xp.any(factors < 0)):
        raise ValueError(f"{name} must hold non-negative factor indices (0 .. n_values - 1)")
    return factors


def check_pair(codes: Any, factors: Any, *, codes_name: str = "codes", factors_name: str = "factors") -> Any:
    """Validate a codes/factors pair and return their common namespace."""
    check_codes(codes, name=codes_name)
    check_factors(factors, name=factors_name)
    if codes.shape[0] != factors.shape[0]:
        raise ValueError(
            f"{codes_name} has {codes.shape[0]} samples but {factors_name} has {factors.shape[0]}; "
            "they must be paired row by row"
        )
    if codes.shape[0] < 2:
        raise ValueError(f"{codes_name} needs at least 2 samples; got {codes.shape[0]}")
    return array_namespace(codes, factors)


def check_train_test(codes_train: Any, factors_train: Any, codes_test: Any, factors_test: Any) -> Any:
    """Validate a train and a test ``(codes, factors)`` pair with matching widths; return the namespace."""
    xp = check_pair(codes_train, factors_train, codes_name="codes_train", factors_name="factors_train")
    check_pair(codes_test, factors_test, codes_name="codes_test", factors_name="factors_test")
    if codes_train.shape[1] != codes_test.shape[1]:
        raise ValueError(f"codes_test has {codes_test.shape[1]} latents but codes_train has {codes_train.shape[1]}")
    if factors_train.shape[1] != factors_test.shape[1]:
        raise ValueError(f"factors_test has {factors_test.shape[1]} factors but factors_train has {factors_train.shape[1]}")
    return xp


def warn_if_constant_codes(xp: Any, codes: Any, metric: str) -> None:
    """Warn (degenerate input) when every latent is constant: no latent can carry information."""
    if bool(xp.all(xp.max(codes, axis=0) == xp.min(codes, axis=0))):
        warn_degenerate(f"{metric}: every latent is constant; the codes carry no information")


def warn_degenerate(message: str) -> None:
    """Warn about degenerate but legal input (the score is still the one the definition gives)."""
    warnings.warn(message, DegenerateInputWarning, stacklevel=3)
