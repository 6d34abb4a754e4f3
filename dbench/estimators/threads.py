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


@contextmanager
def single_cpu_thread(x: object) -> Iterator[None]:
    """Limit torch's intra-op threads to one for the duration when ``x`` is a torch tensor on the CPU.

    The array-API trees make many element-wise passes over arrays of a few hundred thousand elements;
    on the loaded 2-core development machine torch's OpenMP team made them ~9x slower than one thread
    (measured). NumPy runs these passes on one thread anyway; device arrays are not affected.
    """
    if type(x).__module__.split(".")[0] != "torch" or getattr(x, "device", None) is None or x.device.type != "cpu":  # type: ignore[attr-defined]
        yield
        return
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
