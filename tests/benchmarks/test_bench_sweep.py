"""The sweep engine: 16 metric-bound jobs serial vs a 2-worker Dask LocalCluster, and the engine's overhead.

Run with ``PYTHONPATH=$PWD python -m pytest tests/benchmarks/test_bench_sweep.py --benchmark-only``.

* Speed-up: the same 16 jobs (8 projection encoders x 2 metric seeds on ``tiny_dsprites``, the few-shot
  probe with 30 draws: about a second of single-threaded logistic regressions each, little encoding;
  DCI would not do, its boosted trees already use every core through numba) as ``dbench sweep`` commands in a fresh
  process, serially and on a LocalCluster of 2 single-threaded workers: what a user waits for, with the
  interpreter start, the imports and each process's first-call warm-up in both; the cluster's start
  and stop are timed alone too.
* Overhead per job: 16 and 48 jobs (8 encoders x 2 or 6 seeds) with almost no metric work, through a
  loop of ``dbench.evaluate`` calls (the floor), the serial engine and the 2-worker cluster, in this
  process. The engine's cost per job is ``(t48 - t16) / 32`` of an engine minus the loop's: the fixed
  costs (a cluster's start, each worker's imports) cancel; what is left is planning the job, its score
  task, shipping its codes and result, and writing its file.

Compare ratios within one run (the machine is shared); the numbers are reported, never asserted.
"""

from __future__ import annotations

import itertools
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from study_data import DATASET, write_encoders

import dbench
from dbench.studies.engine import run_sweep
from dbench.studies.spec import SweepSpec

ROOT = Path(__file__).resolve().parents[2]
N_ENCODERS = 8
SEEDS = [1, 2]
HEAVY = {"few_shot": {"n_pool": 1500, "n_test": 500, "n_draws": 30, "shots": [1, 5, 10, 20]}}
LIGHT = {"mig": {"n_train": 100}}
_counter = itertools.count()


@pytest.fixture(scope="module")
def encoders(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("bench-encoders")
    return write_encoders(folder, N_ENCODERS, log=folder / "calls.log")


def _spec(encoders: list[Path], params: dict, seeds: list[int]) -> SweepSpec:
    return SweepSpec(encoders=[str(p) for p in encoders], protocols=["quick"], datasets=[DATASET],
                     representations=["mean"], seeds=seeds, metrics=list(params), set=params)


def _sweep_args(encoders: list[Path], params: dict, executor: str, seeds: list[int]) -> tuple[tuple, dict]:
    out = Path(tempfile.mkdtemp(prefix=f"bench-sweep-{next(_counter)}-"))  # a fresh folder: nothing to skip
    return (_spec(encoders, params, seeds), out), {"executor": executor, "workers": 2, "progress": False}


def _run(benchmark, encoders: list[Path], params: dict, executor: str, seeds: list[int]) -> None:
    report = benchmark.pedantic(run_sweep, setup=lambda: _sweep_args(encoders, params, executor, seeds), rounds=2,
                                iterations=1)
    assert report.complete and report.ok == N_ENCODERS * len(seeds)
    benchmark.extra_info["jobs"] = report.ok


def _loop(encoders: list[Path], params: dict, seeds: list[int]) -> int:
    n = 0
    for path, seed in itertools.product(encoders, seeds):
        result = dbench.evaluate(str(path), protocol="quick", dataset=DATASET, metrics=list(params), seed=seed,
                                 params=params, representation="mean")
        n += result.status == "ok"
    return n


def _command(encoders: list[Path], executor: str) -> list[str]:
    out = tempfile.mkdtemp(prefix=f"bench-sweep-{next(_counter)}-")
    sets = [f"--set=few_shot.{k}={v}" for k, v in HEAVY["few_shot"].items()]
    return [sys.executable, "-m", "dbench", "sweep", *map(str, encoders), "--dataset", DATASET, "--representation",
            "mean", "--seed", *map(str, SEEDS), "--metrics", "few_shot", *sets, "--out", out, "--executor", executor,
            "--workers", "2", "--no-progress"]


def _run_command(benchmark, encoders: list[Path], executor: str) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}

    def sweep(command: list[str]) -> str:
        return subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout

    stdout = benchmark.pedantic(sweep, setup=lambda: ((_command(encoders, executor),), {}), rounds=1, iterations=1)
    assert f"{N_ENCODERS * len(SEEDS)} run now ({N_ENCODERS * len(SEEDS)} ok" in stdout


def test_bench_16_metric_bound_jobs_serial(benchmark, encoders):
    _run_command(benchmark, encoders, "serial")


def test_bench_16_metric_bound_jobs_dask_2_workers(benchmark, encoders):
    pytest.importorskip("dask.distributed")
    _run_command(benchmark, encoders, "dask")


def test_bench_dask_local_cluster_start_and_stop(benchmark):
    pytest.importorskip("dask.distributed")
    from dask.distributed import Client, LocalCluster

    def start_stop():
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                          silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
            client.wait_for_workers(2)

    benchmark.pedantic(start_stop, rounds=2, iterations=1)


LIGHT_SEEDS = {16: [1, 2], 48: [1, 2, 3, 4, 5, 6]}


@pytest.mark.parametrize("jobs", sorted(LIGHT_SEEDS))
def test_bench_light_jobs_evaluate_loop(benchmark, encoders, jobs):
    seeds = LIGHT_SEEDS[jobs]
    assert benchmark.pedantic(_loop, args=(encoders, LIGHT, seeds), rounds=2, iterations=1) == jobs


@pytest.mark.parametrize("jobs", sorted(LIGHT_SEEDS))
def test_bench_light_jobs_serial(benchmark, encoders, jobs):
    _run(benchmark, encoders, LIGHT, "serial", LIGHT_SEEDS[jobs])


@pytest.mark.parametrize("jobs", sorted(LIGHT_SEEDS))
def test_bench_light_jobs_dask_2_workers(benchmark, encoders, jobs):
    pytest.importorskip("dask.distributed")
    _run(benchmark, encoders, LIGHT, "dask", LIGHT_SEEDS[jobs])
