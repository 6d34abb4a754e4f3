"""The evaluation pipeline end to end: encode once, determinism, results, partial failures."""

from __future__ import annotations

import json

import numpy as np
import pytest
from code_sources import centroid_mass_codes

import dbench
from dbench.evaluation.pipeline import metric_rng
from dbench.evaluation.result import SCHEMA_VERSION, EvaluationResult

SMALL = {"mig": {"n_train": 300}, "sap": {"n_train": 200, "n_test": 100}}


class CountingEncoder:
    """Centroid/area features; counts the images it is given."""

    def __init__(self):
        self.n_images = 0

    def encode(self, images):
        self.n_images += images.shape[0]
        return centroid_mass_codes(images)


def _run(encoder, **kw):
    kw.setdefault("dataset", "tiny_dsprites")
    kw.setdefault("metrics", list(SMALL))
    kw.setdefault("params", SMALL)
    kw.setdefault("backend", "numpy")
    return dbench.evaluate(encoder, **kw)


def test_each_unique_observation_is_encoded_once():
    from dbench.datasets import get_dataset
    from dbench.evaluation.pipeline import EvaluationConfig, plan_config, query_indices

    enc = CountingEncoder()
    result = _run(enc)
    assert result.status == "ok", result.errors
    assert set(result.scores) == {"mig", "sap"}
    # mig and sap both sample the tiny grid (1,536 observations): overlaps are encoded once
    cfg = EvaluationConfig(dataset="tiny_dsprites", metrics=result.metric_params, seeds=[0])
    requested = query_indices(plan_config(cfg, get_dataset("tiny_dsprites")))
    assert requested.size == 300 + 200 + 100
    assert result.n_encoded == np.unique(requested).size < requested.size
    # the encoder saw each of those once, plus one small probe batch for its fingerprint
    assert result.n_encoded <= enc.n_images <= result.n_encoded + 16


def test_same_seed_same_scores_other_seed_other_samples():
    a = _run(CountingEncoder(), seed=3)
    b = _run(CountingEncoder(), seed=3)
    c = _run(CountingEncoder(), seed=4)
    assert a.scores == b.scores
    assert a.scores != c.scores


def test_metric_samples_do_not_depend_on_other_metrics():
    alone = _run(CountingEncoder(), metrics=["mig"], params={"mig": SMALL["mig"]})
    together = _run(CountingEncoder())
    assert alone.scores["mig"] == together.scores["mig"]
    assert metric_rng(0, "mig").integers(1 << 30) != metric_rng(0, "sap").integers(1 << 30)


def test_backends_agree():
    pytest.importorskip("torch")
    numpy_result = _run(CountingEncoder(), backend="numpy")
    torch_result = _run(CountingEncoder(), backend="torch")
    for metric, keys in numpy_result.scores.items():
        for key, value in keys.items():
            assert torch_result.scores[metric][key] == pytest.approx(value, abs=1e-6)


def test_several_seeds_report_mean_and_spread():
    result = _run(CountingEncoder(), seed=[0, 1, 2])
    assert result.seeds == [0, 1, 2] and len(result.per_seed) == 3
    mig_values = [run.scores["mig"]["mig"] for run in result.per_seed]
    assert result.scores["mig"]["mig"] == pytest.approx(np.mean(mig_values))
    assert result.scores_std["mig"]["mig"] == pytest.approx(np.std(mig_values, ddof=1))


def test_result_records_provenance_and_round_trips(tmp_path):
    result = _run(CountingEncoder())
    path = result.write(tmp_path / "r.json")
    data = json.loads(path.read_text())
    assert data["schema_version"] == SCHEMA_VERSION
    assert data["dbench_version"] == dbench.__version__
    assert data["protocol"]["hash"] and data["encoder"]["fingerprint"]
    assert data["metric_params"]["mig"]["n_train"] == 300
    assert {"plan", "encode", "mig", "total"} <= set(data["seconds"])
    assert "numpy" in data["environment"]
    again = EvaluationResult.read(path)
    assert again.to_dict() == result.to_dict()
    assert not list(tmp_path.glob(".*tmp"))  # atomic write leaves no temporary file


def test_encoder_failure_keeps_partial_results():
    class FailsLater(CountingEncoder):
        def encode(self, images):
            if self.n_images >= 300:
                raise RuntimeError("GPU fell off the bus")
            return super().encode(images)

    # In Python a failure raises, carrying the partial result.
    with pytest.raises(dbench.EvaluationError) as info:
        _run(FailsLater(), batch_size=100)
    result = info.value.result
    assert info.value.results == [result] and "GPU fell off the bus" in str(info.value)
    assert "raise_on_failure=False" in str(info.value) and "\n" not in str(info.value)
    assert "mig" in result.scores  # mig's 300 observations come first and were encoded
    assert result.status == "partial"
    assert "GPU fell off the bus" in result.error
    assert "sap" in result.errors


def test_cache_dir_resumes_without_re_encoding(tmp_path):
    first = CountingEncoder()
    a = _run(first, cache_dir=tmp_path)
    second = CountingEncoder()
    b = _run(second, cache_dir=tmp_path)
    assert a.n_encoded > 0 and b.n_encoded == 0
    assert second.n_images <= 16  # only the fingerprint probe: no observation is encoded again
    assert a.scores == b.scores


def test_unknown_metric_is_a_config_error():
    from dbench.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown metric"):
        _run(CountingEncoder(), metrics=["mgi"], params={})


def test_plots_include_the_dci_importance_matrix(tmp_path):
    from dbench.results import write_plots

    result = _run(CountingEncoder(), metrics=["dci"], params={"dci": {"n_train": 300, "n_test": 100}})
    importance = result.artifacts["dci"]["importance"]
    assert importance.shape == (3, 5)  # latents x factors of tiny_dsprites
    assert result.artifacts["dci"]["factor_names"][0] == "shape"
    assert "artifacts" not in result.to_dict()  # arrays never go into the JSON
    names = {p.name for p in write_plots(result, tmp_path)}
    assert names == {"scores.png", "dci_importance.png"}


def test_scores_outside_their_declaration_are_that_metrics_error(monkeypatch):
    """The pipeline checks every metric's scores against its spec; a breach fails only that metric, in one line."""
    import dataclasses

    import dbench.metrics._mig as mig_module
    from dbench.metrics import Scored

    honest = mig_module.SPEC.score_fn

    def inflated(plan, codes, params):
        return Scored({key: value + 2.0 for key, value in honest(plan, codes, params).scores.items()})

    monkeypatch.setattr(mig_module, "SPEC", dataclasses.replace(mig_module.SPEC, score_fn=inflated))
    result = _run(CountingEncoder(), raise_on_failure=False)  # the result, not an EvaluationError
    assert "mig" not in result.scores and "sap" in result.scores
    assert result.status == "partial"
    assert result.errors["mig"].startswith("metrics.mig: score 'mig' = ")
    assert "outside its declared range [0.0, 1.0]" in result.errors["mig"]
    assert "\n" not in result.errors["mig"]
