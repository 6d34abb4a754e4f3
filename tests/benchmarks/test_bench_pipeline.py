"""Overhead of the encode-once pipeline (run with ``pytest --benchmark-only``).

The encoder here is nearly free (a mean over pixels), so the measured time is dbench's own work:
planning, rendering, the code table and scoring. Compare the pipeline with rendering + encoding the
same unique observations by hand, in the same run: the ratio is the pipeline's overhead.
"""

from __future__ import annotations

import numpy as np

import dbench
from dbench.codes import CodeTable
from dbench.datasets import get_dataset
from dbench.evaluation.pipeline import EvaluationConfig, plan_config, query_indices

PARAMS = {"mig": {"n_train": 10_000}, "sap": {"n_train": 10_000, "n_test": 5_000}}


def cheap_encode(images: np.ndarray) -> np.ndarray:
    flat = images.reshape(images.shape[0], -1)
    return np.stack([flat.mean(axis=1), flat[:, ::7].mean(axis=1), flat[:, ::13].mean(axis=1)], axis=1)


def test_bench_pipeline_mig_sap_dsprites(benchmark):
    result = benchmark.pedantic(
        dbench.evaluate,
        args=(cheap_encode,),
        kwargs=dict(dataset="dsprites", metrics=list(PARAMS), params=PARAMS, backend="numpy"),
        rounds=3,
        iterations=1,
    )
    assert result.status == "ok"
    benchmark.extra_info["n_encoded"] = result.n_encoded
    benchmark.extra_info["seconds"] = result.seconds


def test_bench_render_and_encode_by_hand(benchmark):
    """The floor: render and encode the same unique observations without the pipeline."""
    ds = get_dataset("dsprites")
    cfg = EvaluationConfig(dataset="dsprites", metrics=PARAMS, seeds=[0])
    unique = np.unique(query_indices(plan_config(cfg, ds)))

    def by_hand():
        return np.concatenate([cheap_encode(ds.images(unique[i : i + 256])) for i in range(0, unique.size, 256)])

    codes = benchmark.pedantic(by_hand, rounds=3, iterations=1)
    assert codes.shape == (unique.size, 3)


def test_bench_code_table_lookup(benchmark):
    """Looking up 1.9 million codes (the default Higgins request size) from a filled table."""
    ds = get_dataset("dsprites")
    table = CodeTable(ds, lambda images: (np.zeros((images.shape[0], 10)), None))
    all_idx = np.arange(737_280)
    table._append(all_idx, np.random.default_rng(0).standard_normal((all_idx.size, 10)), None)
    requests = np.random.default_rng(1).integers(0, all_idx.size, size=(15_000, 128))
    codes = benchmark(table.lookup, requests)
    assert codes.shape == (15_000, 128, 10)
