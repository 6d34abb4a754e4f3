"""``--limit F`` / ``limit=F``: one option scaling every sample size of a protocol (lm-eval's ``--limit``)."""

from __future__ import annotations

import pytest

from dbench.errors import ConfigError
from dbench.evaluation.options import EvaluationOptions
from dbench.evaluation.pipeline import resolve_config
from dbench.metrics import METRIC_NAMES, get_metric
from dbench.protocols import hash_resolved, resolve_protocol

FRACTIONS = [1.0, 0.5, 0.1, 0.01, 1e-6]


def _sample_sizes(spec):
    return [key for key, param in spec.params.items() if param.sample_size]


def test_dlib_declares_its_sixteen_sample_sizes():
    # Shrinking dlib used to take 16 --set flags: one per sample size of its metrics.
    resolved = resolve_protocol("dlib")
    assert sum(len(_sample_sizes(get_metric(name))) for name in resolved["metrics"]) == 16
    assert _sample_sizes(get_metric("factor_vae")) == ["n_train", "n_eval", "n_variance_estimate"]
    # Counts that define the statistic are not sample sizes.
    assert "batch_size" not in _sample_sizes(get_metric("beta_vae"))
    assert not {"n_bins", "n_folds", "n_draws", "shots"} & {k for n in METRIC_NAMES for k in _sample_sizes(get_metric(n))}


@pytest.mark.parametrize("name", METRIC_NAMES)
@pytest.mark.parametrize("fraction", FRACTIONS)
def test_limited_parameters_are_valid_smaller_and_touch_only_sample_sizes(name, fraction):
    spec = get_metric(name)
    params = spec.defaults
    limited, used = spec.limit(params, fraction)
    spec.validate(limited)  # within every declared range and rule
    assert fraction <= used <= 1.0
    for key, value in limited.items():
        if key not in _sample_sizes(spec):
            assert value == params[key], key
        elif isinstance(value, list):
            assert len(value) <= len(params[key]) and all(v <= max(params[key]) for v in value)
        else:
            lowest = int(spec.params[key].constraint.low)  # sample sizes are closed integer intervals
            assert value == max(lowest, int(round(params[key] * used))) <= params[key]
    if fraction == 1.0:
        assert limited == params and used == 1.0


def test_a_rule_that_fails_raises_the_fraction_to_the_smallest_valid_hundredth():
    spec = get_metric("downstream_task")
    limited, used = spec.limit(spec.defaults, 0.1)
    assert used == 0.46 and min(limited["n_train_sizes"]) >= limited["n_folds"]
    with pytest.raises(ConfigError):
        spec.validate({**spec.defaults, "n_train_sizes": [round(n * 0.45) for n in spec.defaults["n_train_sizes"]]})


def test_limit_derives_a_recorded_custom_protocol():
    (cfg,) = resolve_config(EvaluationOptions(protocol="quick", limit=0.1))
    record = cfg.protocol
    assert record["name"] == "quick+custom" and record["resolved"]["limit"] == 0.1
    assert record["hash"] == hash_resolved(record["resolved"]) and record["base_hash"]
    assert cfg.metrics["mig"]["n_train"] == 200 and cfg.metrics["dci"] == {**cfg.metrics["dci"], "n_train": 200, "n_test": 100}
    assert cfg.metrics["beta_vae"]["batch_size"] == 32  # not a sample size


def test_limit_notes_a_metric_whose_rules_needed_more():
    configs = resolve_config(EvaluationOptions(protocol="dlib", limit=0.1))
    assert len(configs) == 2 and all(c.metrics["mig"]["n_train"] == 1000 for c in configs)
    (note,) = [n for n in configs[0].notes if "--limit" in n]
    assert "downstream_task" in note and "scaled by 0.46" in note and "min(n_train_sizes) >= n_folds" in note


@pytest.mark.parametrize("bad", [0, -0.5, 1.5, True, "0.1", float("nan")])
def test_bad_limits_are_one_line_config_errors(bad):
    with pytest.raises(ConfigError, match=r"^limit: expected a fraction in \(0, 1\]"):
        EvaluationOptions(limit=bad)
