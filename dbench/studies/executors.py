"""Where a sweep's tasks run: in the client (``serial``), in local processes, or on a Dask cluster.

Every executor hands out standard :class:`concurrent.futures.Future` objects, so the sweep engine has
one code path (submit, wait for the first that completes, act on it) whatever runs the tasks:

* ``serial`` runs each task in the client process when it is submitted: no parallelism, tracebacks in
  one process, and an encoder that kills its process (``os._exit``, a crash in native code) kills the
  sweep; use it to debug.
* ``processes`` is the standard library's :class:`~concurrent.futures.ProcessPoolExecutor` with the
  ``spawn`` start method (no fork of a client holding threads), ``--workers N`` processes, each limited
  to one BLAS/OpenMP thread so N workers do not oversubscribe N cores, and SIGINT ignored so a Ctrl-C
  reaches only the client. A worker that dies takes the pool with it; the engine then reruns the tasks
  that were in flight one at a time in a separate one-process pool (:meth:`ProcessesExecutor.submit`
  with ``isolated=True``), which finds the task that kills its worker without blaming its neighbours.
* ``dask`` is a :mod:`dask.distributed` client (its ``get_executor()`` gives concurrent.futures
  futures): a :class:`~dask.distributed.LocalCluster` of ``--workers N`` single-threaded worker
  processes on this machine, or the cluster of a running scheduler (``--scheduler tcp://HOST:PORT``,
  started with ``dask scheduler`` / ``dask worker`` or dask-jobqueue). Encoding tasks of a GPU sweep
  request the worker resource ``GPU: 1`` (start GPU workers with ``--resources GPU=1``). Dask itself
  reruns a task whose worker died, up to ``distributed.scheduler.allowed-failures`` times, then fails
  it alone with ``KilledWorker``.

dask is imported only when the ``dask`` executor is used (``pip install 'dbench[dask]'``).
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import multiprocessing
import os
import signal
from collections.abc import Callable
from typing import Any, Protocol

from dbench.errors import ConfigError

EXECUTORS = ("serial", "processes", "dask")

#: Environment variables that size the thread pools of BLAS and OpenMP in a worker process.
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


class SweepExecutor(Protocol):
    """What the sweep engine needs from an executor."""

    kind: str

    @property
    def slots(self) -> int:
        """How many tasks run at once (the engine keeps about twice that many in flight)."""
        ...

    def submit(self, fn: Callable[..., Any], *args: Any, gpu: bool = False, priority: int = 0,
               isolated: bool = False) -> cf.Future: ...

    def worker_lost(self, exc: BaseException) -> str | None:
        """Why a task failed with ``exc`` when its worker died (None for any other failure)."""
        ...

    def close(self, *, cancel: bool = False) -> None: ...

    def describe(self) -> str: ...


class SerialExecutor:
    """Runs each task at once, in this process."""

    kind = "serial"
    slots = 1

    def submit(self, fn: Callable[..., Any], *args: Any, gpu: bool = False, priority: int = 0,
               isolated: bool = False) -> cf.Future:
        future: cf.Future = cf.Future()
        future.set_running_or_notify_cancel()
        try:
            future.set_result(fn(*args))
        except Exception as exc:  # noqa: BLE001 - handed to the engine like any executor's failure
            future.set_exception(exc)
        return future

    def worker_lost(self, exc: BaseException) -> str | None:
        return None

    def close(self, *, cancel: bool = False) -> None:
        pass

    def describe(self) -> str:
        return "serial (in this process)"


def _init_worker(threads: int) -> None:
    """Worker start-up: SIGINT ignored (the client stops the workers), one thread per math library."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for name in _THREAD_VARIABLES:
        os.environ.setdefault(name, str(threads))
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads)  # libraries loaded before this point (later ones read the variables)
    except ImportError:  # threadpoolctl is a dependency; keep a broken install running, just slower
        pass


class ProcessesExecutor:
    """A spawn-context process pool of ``workers`` processes, plus a one-process pool for suspects."""

    kind = "processes"

    def __init__(self, workers: int, *, threads_per_worker: int = 1) -> None:
        self._workers = workers
        self._threads = threads_per_worker
        self._context = multiprocessing.get_context("spawn")
        self._pool = self._new_pool(workers)
        self._solo: cf.ProcessPoolExecutor | None = None

    def _new_pool(self, workers: int) -> cf.ProcessPoolExecutor:
        return cf.ProcessPoolExecutor(max_workers=workers, mp_context=self._context, initializer=_init_worker,
                                      initargs=(self._threads,))

    @property
    def slots(self) -> int:
        return self._workers

    def submit(self, fn: Callable[..., Any], *args: Any, gpu: bool = False, priority: int = 0,
               isolated: bool = False) -> cf.Future:
        """Submit ``fn(*args)``; ``isolated`` runs it alone in a fresh one-process pool (the engine sends
        one isolated task at a time), so that a task that kills its worker is told apart from the rest."""
        if isolated:
            if self._solo is not None:
                self._solo.shutdown(wait=False)
            self._solo = self._new_pool(1)
            return self._solo.submit(fn, *args)
        try:
            return self._pool.submit(fn, *args)
        except cf.process.BrokenProcessPool:  # a worker died: the pool is unusable, start another
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._new_pool(self._workers)
            return self._pool.submit(fn, *args)

    def worker_lost(self, exc: BaseException) -> str | None:
        if isinstance(exc, cf.process.BrokenProcessPool):
            return "the worker process died while running this job (a crash, a kill or os._exit in the encoder)"
        return None

    def close(self, *, cancel: bool = False) -> None:
        for pool in (self._pool, self._solo):
            if pool is None:
                continue
            if not cancel:
                pool.shutdown(wait=True)
                continue
            _terminate(pool)

    def describe(self) -> str:
        return f"processes ({self._workers} spawned worker processes, {self._threads} thread each)"


def _terminate(pool: cf.ProcessPoolExecutor) -> None:
    """Cancel the pool's waiting tasks and stop its worker processes now.

    A worker busy in a task (a training's child process, a long metric) would otherwise keep the
    client waiting at exit for the pool's threads; a training child exits with its worker. Python
    3.14 has ``terminate_workers`` for this; before it the processes are private (``_processes``,
    forgotten by ``shutdown``, so they are taken first).
    """
    terminate = getattr(pool, "terminate_workers", None)
    if terminate is not None:
        terminate()
        return
    workers = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in workers:
        if process.is_alive():
            process.terminate()
    for process in workers:
        process.join(timeout=5)
        if process.is_alive():
            process.kill()


#: Dask settings of the LocalCluster's workers. The metrics run many small NumPy operations from Python:
#: Dask's statistical profiler (a thread sampling every worker's stack each 10 ms) and its default
#: ``MALLOC_TRIM_THRESHOLD_=65536`` (memory returned to the system after every larger array) made a
#: few-shot job 2.5x slower in a worker than in the client (measured, one worker on an idle core). The
#: thread variables are those of the ``processes`` executor: one BLAS/OpenMP/numba thread per worker.
LOCAL_WORKER_CONFIG: dict[str, Any] = {
    "distributed.worker.profile.enabled": False,
    "distributed.nanny.pre-spawn-environ": {name: 1 for name in _THREAD_VARIABLES},
}


class DaskExecutor:
    """A :mod:`dask.distributed` client: a LocalCluster by default, or a running scheduler."""

    kind = "dask"

    def __init__(self, workers: int, *, scheduler: str | None = None, gpu: bool = False,
                 connect_timeout: float = 60.0) -> None:
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError:
            raise ConfigError("--executor dask needs dask.distributed; install it with pip install 'dbench[dask]' "
                              "(or use --executor processes)") from None
        self.cluster: Any = None
        self._scheduler = scheduler
        if scheduler:
            try:
                self.client = Client(scheduler, timeout=connect_timeout)
            except (OSError, TimeoutError) as exc:
                raise ConfigError(f"cannot reach the Dask scheduler at {scheduler} ({_one_line(exc)}); start it with "
                                  "`dask scheduler` and give its tcp://HOST:PORT") from None
        else:
            import dask

            with dask.config.set(LOCAL_WORKER_CONFIG):  # read by each worker's nanny when it starts
                self.cluster = LocalCluster(
                    n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                    silence_logs=logging.ERROR, resources={"GPU": 1} if gpu else None,
                )
            self.client = Client(self.cluster)
        try:
            self.client.wait_for_workers(1, timeout=connect_timeout)
        except TimeoutError:
            self.close()
            raise ConfigError(f"no Dask worker joined the scheduler {scheduler} within {connect_timeout:.0f} s; start "
                              f"workers with `dask worker {scheduler}`") from None
        self._check_workers(gpu)
        self._executor = self.client.get_executor(pure=False)

    def _check_workers(self, gpu: bool) -> None:
        from dbench._version import __version__

        versions = self.client.run(_dbench_version)
        other = sorted({v for v in versions.values() if v != __version__})
        if other:
            self.close()
            raise ConfigError(f"Dask workers run dbench {', '.join(other)}, the client {__version__}; install the same "
                              "dbench on the workers")
        if gpu:
            workers = self.client.scheduler_info(n_workers=-1)["workers"].values()
            if not any(w.get("resources", {}).get("GPU") for w in workers):
                self.close()
                raise ConfigError("--gpu: no Dask worker offers a GPU resource; start GPU workers with "
                                  "`dask worker ADDRESS --resources GPU=1`")

    @property
    def slots(self) -> int:
        return max(1, sum(self.client.nthreads().values()))

    def submit(self, fn: Callable[..., Any], *args: Any, gpu: bool = False, priority: int = 0,
               isolated: bool = False) -> cf.Future:
        options: dict[str, Any] = {"priority": priority}
        if gpu:
            options["resources"] = {"GPU": 1}
        return self._executor.submit(fn, *args, **options)

    def worker_lost(self, exc: BaseException) -> str | None:
        if type(exc).__name__ == "KilledWorker":
            return f"the Dask worker died each time it ran this job ({_one_line(exc)})"
        return None

    def close(self, *, cancel: bool = False) -> None:
        executor = getattr(self, "_executor", None)
        if executor is not None:
            executor.shutdown(wait=False)
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()

    def describe(self) -> str:
        if self._scheduler:
            return f"dask (scheduler {self._scheduler}, {self.slots} worker threads)"
        return f"dask (LocalCluster, {len(self.cluster.workers)} worker processes)"


def _dbench_version() -> str:
    from dbench._version import __version__

    return __version__


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else exc.__class__.__name__


def make_executor(kind: str, *, workers: int | None = None, scheduler: str | None = None,
                  gpu: bool = False) -> SweepExecutor:
    """The executor named ``kind`` (see the module docstring); ``workers`` defaults to the CPU count."""
    if kind not in EXECUTORS:
        raise ConfigError(f"--executor {kind!r}: choose one of {', '.join(EXECUTORS)}")
    if workers is not None and not 1 <= workers <= 4096:
        raise ConfigError(f"--workers must be between 1 and 4096; got {workers}")
    if scheduler and kind != "dask":
        raise ConfigError("--scheduler needs --executor dask")
    n = workers or os.cpu_count() or 1
    if kind == "serial":
        return SerialExecutor()
    if kind == "processes":
        return ProcessesExecutor(n)
    return DaskExecutor(n, scheduler=scheduler, gpu=gpu)


__all__ = ["EXECUTORS", "DaskExecutor", "ProcessesExecutor", "SerialExecutor", "SweepExecutor", "make_executor"]
