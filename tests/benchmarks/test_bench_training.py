"""Training throughput of the reference VAEs on CPU, dSprites, batch 64 (``pytest --benchmark-only``).

* ``test_bench_training_step``: one optimisation step on a fixed batch (no rendering), one thread.
* ``test_bench_train_loop``: ``train()`` end to end (rendering, prefetch, logging, checkpoint and
  export at the end) for ``DBENCH_BENCH_TRAIN_STEPS`` steps (default 200), with 1 and 2 threads.
* ``test_bench_before_vs_after``: the same training, in fresh processes, with this tree and with the
  tree at ``DBENCH_BENCH_BASELINE_SRC`` (e.g. ``git archive <rev> | tar -x -C /tmp/old``), alternated
  ``DBENCH_BENCH_REPEATS`` times (default 3); the medians go into extra_info. Skipped without it.
* ``test_bench_two_trainings_at_once``: two 1-thread trainings running together vs one 2-thread
  training (total steps/s), for a machine that has more trainings to run than cores.

Every result is ``steps_per_s`` (or ``*_steps_per_s``) in extra_info; the machine may be shared, so
compare numbers of the same run only. Steps/s include the first steps (oneDNN builds its kernels
there): a short warm-up run comes first in the subprocess measurements.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dbench.datasets import get_dataset

torch = pytest.importorskip("torch")

from reference_models import MODEL_NAMES  # noqa: E402 - imports torch: only after the importorskip
from reference_models.training import (  # noqa: E402 - imports torch: only after the importorskip
    batch_producer,
    build_trainer,
    train,
    training_step,
)
from reference_models.variants import get_variant  # noqa: E402 - imports torch: only after the importorskip

BATCH = 64
STEPS = int(os.environ.get("DBENCH_BENCH_TRAIN_STEPS", "200"))
REPEATS = int(os.environ.get("DBENCH_BENCH_REPEATS", "3"))
BASELINE_SRC = os.environ.get("DBENCH_BENCH_BASELINE_SRC")
THIS_SRC = str(Path(__file__).resolve().parents[2])

# Runs in a fresh process with PYTHONPATH at a source tree; uses only what every version of train() has.
_RUNNER = """
import json, sys, torch
model, threads, steps, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
torch.set_num_threads(threads)
from reference_models.training import train
train(model, dataset="dsprites", steps=5, seed=0, out_dir=out + "/warm-up", progress=False)
result = train(model, dataset="dsprites", steps=steps, seed=0, out_dir=out + "/run", progress=False,
               checkpoint_every=10**9)
print(json.dumps({"steps_per_s": result.steps_per_second}))
"""


@pytest.fixture
def threads():
    previous = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(previous)


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_bench_training_step(benchmark, threads, model):
    threads(1)
    variant = get_variant(model)
    trainer = build_trainer(variant, 0, torch.device("cpu"), 1)
    images = batch_producer(get_dataset("dsprites"), BATCH, trainer)(np.random.default_rng(0))
    hparams = variant.resolve_hparams(None)
    step = iter(range(10**6))
    benchmark.pedantic(lambda: training_step(trainer, variant, hparams, images, next(step)), rounds=20, warmup_rounds=3)
    benchmark.extra_info["steps_per_s"] = 1.0 / benchmark.stats.stats.median


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("model", MODEL_NAMES)
def test_bench_train_loop(benchmark, tmp_path, threads, model, n_threads):
    threads(n_threads)
    train(model, dataset="dsprites", steps=5, seed=0, out_dir=tmp_path / "warm-up", progress=False)
    result = benchmark.pedantic(
        train,
        args=(model,),
        kwargs={"dataset": "dsprites", "steps": STEPS, "seed": 0, "out_dir": tmp_path / "run", "progress": False,
                "checkpoint_every": 10**9},
        rounds=1,
        iterations=1,
    )
    assert result.steps == STEPS
    benchmark.extra_info["steps_per_s"] = result.steps_per_second


def _start(src: str, model: str, n_threads: int, out: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": src}
    return subprocess.Popen(
        [sys.executable, "-c", _RUNNER, model, str(n_threads), str(STEPS), str(out)],
        env=env,
        cwd=out.parent,
        stdout=subprocess.PIPE,
        text=True,
    )


def _steps_per_s(process: subprocess.Popen) -> float:
    stdout, _ = process.communicate()
    assert process.returncode == 0, f"training subprocess failed ({process.returncode})"
    return float(json.loads(stdout.strip().splitlines()[-1])["steps_per_s"])


def _median_info(benchmark, samples: dict[str, list[float]]) -> None:
    for key, values in samples.items():
        benchmark.extra_info[f"{key}_steps_per_s"] = statistics.median(values)
        benchmark.extra_info[f"{key}_samples"] = [round(value, 3) for value in values]


@pytest.mark.skipif(not BASELINE_SRC, reason="set DBENCH_BENCH_BASELINE_SRC to a source tree to compare with")
@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("model", MODEL_NAMES)
def test_bench_before_vs_after(benchmark, tmp_path, model, n_threads):
    samples: dict[str, list[float]] = {"before": [], "after": []}
    rounds = iter(range(10**6))

    def one_pair():
        index = next(rounds)
        order = ("before", "after") if index % 2 == 0 else ("after", "before")
        for which in order:
            out = tmp_path / f"{which}-{index}"
            out.mkdir()
            src = BASELINE_SRC if which == "before" else THIS_SRC
            samples[which].append(_steps_per_s(_start(src, model, n_threads, out)))

    benchmark.pedantic(one_pair, rounds=REPEATS, iterations=1)
    _median_info(benchmark, samples)
    benchmark.extra_info["speedup"] = statistics.median(samples["after"]) / statistics.median(samples["before"])


@pytest.mark.parametrize("model", ["beta_vae", "factor_vae"])
def test_bench_two_trainings_at_once(benchmark, tmp_path, model):
    samples: dict[str, list[float]] = {"one_2_thread": [], "two_1_thread_total": []}
    rounds = iter(range(10**6))

    def one_pair():
        index = next(rounds)
        for which in ("one_2_thread", "two_1_thread_total")[:: 1 if index % 2 == 0 else -1]:
            out = [tmp_path / f"{which}-{index}-{k}" for k in range(2)]
            for folder in out:
                folder.mkdir()
            if which == "one_2_thread":
                samples[which].append(_steps_per_s(_start(THIS_SRC, model, 2, out[0])))
            else:
                processes = [_start(THIS_SRC, model, 1, folder) for folder in out]
                samples[which].append(sum(_steps_per_s(process) for process in processes))

    benchmark.pedantic(one_pair, rounds=REPEATS, iterations=1)
    _median_info(benchmark, samples)
