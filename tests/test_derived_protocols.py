"""The protocol a result records lists what actually ran, so the leaderboard accepts what dbench wrote."""

from __future__ import annotations

import pytest
from toy_encoders import posterior

import dbench
from dbench.evaluation.options import EvaluationOptions
from dbench.evaluation.pipeline import resolve_config
from dbench.leaderboard.build import protocol_conflict

MEAN_ONLY = {
    "name": "tinyp", "version": 1, "datasets": ["tiny_dsprites"], "representation": "mean",
    "seeds": [0], "metrics": {"mig": {"n_train": 200}},
}


def test_a_representation_the_protocol_does_not_list_is_recorded_as_run():
    result = dbench.evaluate(posterior, protocol=MEAN_ONLY, representation="sampled", backend="numpy")
    record = result.protocol
    assert record.name == "tinyp+custom" and record.resolved["representation"] == ["sampled"]
    assert record.base_hash and record.hash != record.base_hash
    assert protocol_conflict(result) is None  # `leaderboard build` accepts it


def test_a_dataset_the_protocol_does_not_list_is_recorded_as_run():
    (cfg,) = resolve_config(EvaluationOptions(protocol=MEAN_ONLY, dataset="dsprites"))
    assert cfg.protocol["name"] == "tinyp+custom" and cfg.protocol["resolved"]["datasets"] == ["dsprites"]


def test_choosing_one_of_the_protocol_s_own_pairs_still_follows_the_protocol():
    configs = resolve_config(EvaluationOptions(protocol="dlib", representation="mean"))
    assert [c.representation for c in configs] == ["mean"]
    assert configs[0].protocol["name"] == "dlib" and "base_hash" not in configs[0].protocol
    (full_mean, _) = resolve_config(EvaluationOptions(protocol="dlib"))
    assert configs[0].protocol == full_mean.protocol  # ranks with the full run's mean results


def test_several_datasets_in_one_derived_protocol():
    configs = resolve_config(EvaluationOptions(protocol=MEAN_ONLY, dataset=["tiny_dsprites", "dsprites"]))
    assert [c.dataset for c in configs] == ["tiny_dsprites", "dsprites"]
    assert {c.protocol["hash"] for c in configs} == {configs[0].protocol["hash"]}
    assert configs[0].protocol["resolved"]["datasets"] == ["tiny_dsprites", "dsprites"]
    with pytest.raises(dbench.ConfigError, match="given twice"):
        EvaluationOptions(dataset=["dsprites", "dsprites"])
