"""The dlib protocol's costly parts against disentanglement_lib's way of doing them (``--benchmark-only``).

* ``downstream[case-predictors]`` / ``downstream-sklearn[case-predictors]``: the ``downstream_task``
  probes (``gbt``: gradient boosting; ``both``: with the logistic-regression probe, the whole metric) at
  the published sizes (training sets of 10, 100, 1000, 10 000; 5000 test codes) on the same
  codes: dbench against disentanglement_lib's loop (one scikit-learn estimator per predictor, factor
  and size). Cases: ``envelope``, the parity fixture's codes
  (``tests/downstream_gbt_envelope.py``: 6 latents, factors with 3, 6, 8 values), and ``dsprites``,
  10 latents and the five dSprites factors (3, 6, 40, 32, 32 values; scikit-learn takes ~15 minutes
  there). The scikit-learn side records the ratio (``extra_info["speedup"]``); target >= 20x.
* ``encode-stage`` / ``encoder-forward``: the code table encoding dSprites images with
  ``examples/torch_cnn_encoder.py`` (rendering on a thread ahead of the encoder) against the encoder's
  own forward pass on the same, already rendered images; target: the stage within 1.2x of the forward.

Compare within one run: the machine is noisy.
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from dbench.probes.downstream import downstream_accuracies

ROOT = Path(__file__).resolve().parents[2]
DSPRITES_FACTOR_SIZES = np.array([3, 6, 40, 32, 32])
TRAIN_SIZES = (10, 100, 1000, 10000)
N_TEST = 5000
_TIMES: dict[str, float] = {}


def _dsprites_sets(seed: int = 16):
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(DSPRITES_FACTOR_SIZES.size, 10))
    out = []
    for n in TRAIN_SIZES:
        ytr = rng.integers(0, DSPRITES_FACTOR_SIZES, size=(n, DSPRITES_FACTOR_SIZES.size))
        yte = rng.integers(0, DSPRITES_FACTOR_SIZES, size=(N_TEST, DSPRITES_FACTOR_SIZES.size))
        xtr = (ytr / DSPRITES_FACTOR_SIZES) @ mix + 0.3 * rng.normal(size=(n, 10))
        xte = (yte / DSPRITES_FACTOR_SIZES) @ mix + 0.3 * rng.normal(size=(N_TEST, 10))
        out.append((xtr, ytr, xte, yte))
    return out


def _envelope_sets():
    sys.path.insert(0, str(ROOT / "tests"))
    from downstream_gbt_envelope import envelope_inputs

    inputs = envelope_inputs()
    return [inputs[n] for n in TRAIN_SIZES]


CASES = {"envelope": _envelope_sets, "dsprites": _dsprites_sets}


@pytest.fixture(scope="module", params=list(CASES))
def sets(request):
    return request.param, CASES[request.param]()


def _timed(name, fn, *args):
    """``fn(*args)``, its wall time kept under ``name`` (the sklearn side prints the ratio)."""
    start = time.perf_counter()
    out = fn(*args)
    _TIMES[name] = time.perf_counter() - start
    return out


PREDICTOR_SETS = {"gbt": ("gradient_boosting",), "both": ("logistic_regression_cv", "gradient_boosting")}


def _dbench(data, predictors):
    return [downstream_accuracies(*s, predictor=p)[1] for p in predictors for s in data]


def _sklearn(data, predictors):
    """disentanglement_lib's loop: one scikit-learn estimator per predictor, size and factor."""
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import KFold

    make = {
        "gradient_boosting": GradientBoostingClassifier,
        "logistic_regression_cv": lambda: LogisticRegressionCV(Cs=10, cv=KFold(n_splits=5)),
    }
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for predictor in predictors:
            for xtr, ytr, xte, yte in data:
                fits = [make[predictor]().fit(xtr, ytr[:, i]) for i in range(ytr.shape[1])]
                out.append(np.array([np.mean(m.predict(xte) == yte[:, i]) for i, m in enumerate(fits)]))
    return out


@pytest.mark.parametrize("predictors", list(PREDICTOR_SETS))
def test_downstream(benchmark, sets, predictors):
    case, data = sets
    downstream_accuracies(*data[0], predictor="gradient_boosting")  # compile outside the timing
    name = f"dbench-{case}-{predictors}"
    result = benchmark.pedantic(_timed, args=(name, _dbench, data, PREDICTOR_SETS[predictors]), rounds=1, iterations=1)
    assert len(result) == len(TRAIN_SIZES) * len(PREDICTOR_SETS[predictors])


@pytest.mark.parametrize("predictors", list(PREDICTOR_SETS))
def test_downstream_sklearn(benchmark, sets, predictors):
    case, data = sets
    name = f"sklearn-{case}-{predictors}"
    result = benchmark.pedantic(_timed, args=(name, _sklearn, data, PREDICTOR_SETS[predictors]), rounds=1, iterations=1)
    assert len(result) == len(TRAIN_SIZES) * len(PREDICTOR_SETS[predictors])
    ours = _TIMES.get(f"dbench-{case}-{predictors}")
    if ours:
        theirs = _TIMES[name]
        benchmark.extra_info["speedup"] = theirs / ours
        print(f"\ndownstream {predictors} ({case}): sklearn {theirs:.1f} s, dbench {ours:.1f} s, {theirs / ours:.1f}x")


N_IMAGES = 20_000


@pytest.fixture(scope="module")
def cnn():
    pytest.importorskip("torch")
    from dbench.datasets import get_dataset
    from dbench.encoders import load_encoder

    dataset = get_dataset("dsprites")
    indices = np.random.default_rng(0).choice(737_280, size=N_IMAGES, replace=False)
    encoder = load_encoder(str(ROOT / "examples" / "torch_cnn_encoder.py"))
    for _ in range(3):  # warm up torch (thread pool, allocator) before either side is timed
        encoder.encode_arrays(dataset.images(indices[:256]))
    return dataset, encoder, indices


def test_encode_stage(benchmark, cnn):
    from dbench.codes import CodeTable

    dataset, encoder, indices = cnn

    def stage():
        table = CodeTable(dataset, encoder.encode_arrays, batch_size=256)
        table.ensure(indices)
        return table

    table = benchmark.pedantic(_timed, args=("stage", stage), rounds=1, iterations=1)
    benchmark.extra_info.update(render_s=table.seconds_rendering, encoder_s=table.seconds_encoder, wall_s=table.seconds_encoding)


def test_encoder_forward(benchmark, cnn):
    dataset, encoder, indices = cnn
    batches = [dataset.images(indices[i : i + 256]) for i in range(0, indices.size, 256)]
    benchmark.pedantic(_timed, args=("forward", lambda: [encoder.encode_arrays(b) for b in batches]), rounds=1, iterations=1)
    if "stage" in _TIMES:
        benchmark.extra_info["stage_over_forward"] = _TIMES["stage"] / _TIMES["forward"]
        print(f"\nencode stage {_TIMES['stage']:.1f} s, encoder forward {_TIMES['forward']:.1f} s: "
              f"{benchmark.extra_info['stage_over_forward']:.2f}x")


@pytest.mark.parametrize("encoder", ["torch_cnn_encoder.py", "numpy_encoder.py"])
def test_dlib_protocol(benchmark, encoder):
    """The whole dlib protocol (mean representation); ``extra_info["seconds"]`` is the stage breakdown.

    ``benchmarks/dlib_cost.py`` measures disentanglement_lib's cost for the same encoder and prints the ratio.
    """
    if encoder.startswith("torch"):
        pytest.importorskip("torch")
    import dbench

    path = str(ROOT / "examples" / encoder)
    options = {"protocol": "dlib", "representation": "mean"}
    result = benchmark.pedantic(dbench.evaluate, args=(path,), kwargs=options, rounds=1, iterations=1)
    assert result.status == "ok"
    benchmark.extra_info.update(seconds=dict(result.seconds), n_encoded=int(result.n_encoded))
