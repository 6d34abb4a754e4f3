"""The Python entry points: ``dbench.evaluate`` / ``evaluate_all`` and their options object."""

from __future__ import annotations

import dataclasses
import inspect
import subprocess
import sys

import numpy as np
import pytest
from toy_encoders import codes_only, posterior

import dbench
from dbench.choices import BACKENDS, REPRESENTATIONS
from dbench.errors import ConfigError
from dbench.evaluation.options import EvaluationOptions

TWO_REPRESENTATIONS = {
    "name": "both", "version": 1, "datasets": ["tiny_dsprites"], "representation": ["mean", "sampled"],
    "seeds": [0], "metrics": {"mig": {"n_train": 200}},
}


def _never_called(images):
    raise AssertionError("the encoder must not be called")


def _pair(images):
    return posterior(images)


def test_evaluate_shows_its_real_signature():
    for function in (dbench.evaluate, dbench.evaluate_all):
        parameters = inspect.signature(function).parameters
        assert next(iter(parameters)) == "encoder"
        # The keyword arguments are the options' fields, in order, with the same defaults (the call's
        # own text, ``invocation``, is filled in by the function), then ``raise_on_failure``.
        fields = [f for f in dataclasses.fields(EvaluationOptions) if f.name != "invocation"]
        assert list(parameters)[1:] == [f.name for f in fields] + ["raise_on_failure"]
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in list(parameters.values())[1:])
        assert all(parameters[f.name].default == f.default for f in fields if f.default is not dataclasses.MISSING)
        assert parameters["progress"].default is False and parameters["protocol"].default is None
        assert parameters["raise_on_failure"].default is True
    for name in ("representation :", "cache_dir :", "limit :", "raise_on_failure :", "EvaluationError"):
        assert name in dbench.evaluate.__doc__
    # help() shows the same signature (not ``(*args, **kwargs)``).
    import pydoc

    text = pydoc.render_doc(dbench.evaluate, renderer=pydoc.plaintext)
    assert "evaluate(encoder: 'Any', *, protocol:" in text and "raise_on_failure: 'bool' = True" in text


def test_import_dbench_stays_cheap():
    heavy = ("numpy", "pydantic", "torch", "dbench.evaluation")
    code = f"import sys, dbench; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"


def test_evaluate_refuses_a_protocol_with_several_evaluations_before_encoding():
    with pytest.raises(ConfigError) as info:
        dbench.evaluate(_never_called, protocol=TWO_REPRESENTATIONS)
    message = str(info.value)
    assert "\n" not in message and "2 evaluations" in message
    assert "tiny_dsprites/mean, tiny_dsprites/sampled" in message
    assert "representation=" in message and "dbench.evaluate_all" in message


def test_evaluate_all_gives_one_result_per_pair_and_evaluate_one_when_chosen():
    results = dbench.evaluate_all(_pair, protocol=TWO_REPRESENTATIONS, backend="numpy")
    assert [(r.dataset, r.representation) for r in results] == [("tiny_dsprites", "mean"), ("tiny_dsprites", "sampled")]
    assert all(r.status == "ok" for r in results)
    chosen = dbench.evaluate(_pair, protocol=TWO_REPRESENTATIONS, backend="numpy", representation="sampled")
    assert chosen.scores == results[1].scores


def test_options_normalise_single_names_and_seeds():
    options = EvaluationOptions(metrics="mig", seed=np.int64(3))
    assert options.metrics == ("mig",) and options.seeds == (3,)
    assert EvaluationOptions(metrics=["mig", "dci"], seed=[0, 1]).seeds == (0, 1)
    assert EvaluationOptions(metrics=[]).metrics is None  # as before: the protocol's metrics
    assert EvaluationOptions(params=None).params == {}
    assert not EvaluationOptions().overrides_protocol and EvaluationOptions(seed=0).overrides_protocol
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.dataset = "dsprites"  # type: ignore[misc]


@pytest.mark.parametrize("kwargs, fragment", [
    ({"representation": "median"}, f"representation: got 'median'; allowed: {', '.join(REPRESENTATIONS)}"),
    ({"backend": "jax"}, f"backend: got 'jax'; allowed: {', '.join(BACKENDS)}"),
    ({"batch_size": 0}, "batch_size: expected an integer in [1, 65536]; got 0"),
    ({"seed": 1.5}, "seed: expected an integer"),
    ({"seed": []}, "seed: expected an integer or a non-empty list"),
    ({"metrics": ["mig", 3]}, "metrics: expected metric names"),
    ({"params": {"mig": 5}}, "params: expected a mapping"),
    ({"dataset": ""}, "dataset: expected a dataset name"),
])
def test_options_refuse_bad_values_in_one_line(kwargs, fragment):
    with pytest.raises(ConfigError) as info:
        EvaluationOptions(**kwargs)
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_a_single_metric_name_is_one_metric():
    result = dbench.evaluate(_pair, dataset="tiny_dsprites", metrics="mig", params={"mig": {"n_train": 200}},
                             backend="numpy")
    assert set(result.scores) == {"mig"}


def _codes_only(images):
    return codes_only(images)


def test_a_codes_only_encoder_skips_the_sampled_representation_with_one_warning():
    notice = r"skipped the sampled representation \(1 evaluation\): encoder '_codes_only' returns codes only"
    with pytest.warns(UserWarning, match=notice):
        results = dbench.evaluate_all(_codes_only, protocol=TWO_REPRESENTATIONS, backend="numpy")
    assert [(r.representation, r.status) for r in results] == [("mean", "ok")]
    with pytest.raises(ConfigError, match="returns codes only, so it has no sampled representation"):
        dbench.evaluate(_codes_only, protocol=TWO_REPRESENTATIONS, representation="sampled")


def test_a_failed_metric_raises_carrying_the_partial_result(monkeypatch):
    import dataclasses

    import dbench.metrics._mig as mig_module

    def broken(plan, codes, params):
        raise ValueError("mig: the estimator diverged")

    monkeypatch.setattr(mig_module, "SPEC", dataclasses.replace(mig_module.SPEC, score_fn=broken))
    kwargs = dict(dataset="tiny_dsprites", metrics=["mig", "sap"], backend="numpy",
                  params={"mig": {"n_train": 200}, "sap": {"n_train": 200, "n_test": 100}})
    with pytest.raises(dbench.EvaluationError) as info:
        dbench.evaluate(_pair, **kwargs)
    assert isinstance(info.value, dbench.DbenchError)
    assert "mig: mig: the estimator diverged" in str(info.value) and "\n" not in str(info.value)
    partial = info.value.result
    assert partial.status == "partial" and set(partial.scores) == {"sap"} and "mig" in partial.errors
    # Asked not to raise, the same call returns that result.
    returned = dbench.evaluate(_pair, raise_on_failure=False, **kwargs)
    assert returned.scores == partial.scores and returned.errors == partial.errors
    with pytest.raises(dbench.EvaluationError) as info:
        dbench.evaluate_all(_pair, **kwargs)
    assert len(info.value.results) == 1


def test_the_python_call_is_recorded_as_the_invocation():
    result = dbench.evaluate(_pair, dataset="tiny_dsprites", metrics="mig", params={"mig": {"n_train": 200}},
                             backend="numpy")
    assert result.provenance.invocation == (
        "dbench.evaluate(<_pair>, dataset='tiny_dsprites', metrics='mig', params={'mig': {'n_train': 200}}, backend='numpy')"
    )
    assert result.provenance.created_utc.endswith("Z") and result.provenance.encoder_file is None
    versions = result.environment["versions"]
    assert versions["numpy"] == np.__version__ and {"dbench", "scipy", "scikit-learn", "numba", "torch"} <= set(versions)
    assert result.environment["cpu"]
