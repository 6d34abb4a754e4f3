"""Thread limits for the estimators' small-matrix work.

The products of the logistic solvers are thin (``D + 1 = 11`` rows): one BLAS thread is fastest, and
on a busy machine OpenBLAS's thread team made them 4-100x slower (measured).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def single_blas_thread() -> Iterator[None]:
    """Limit BLAS to one thread (process-wide) for the duration."""
    from threadpoolctl import threadpool_limits  # a dependency of scikit-learn

    with threadpool_limits(limits=1, user_api="blas"):
        yield
