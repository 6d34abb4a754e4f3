"""``--limit F`` / ``limit=F``: one option scaling every sample size of a protocol (lm-eval's ``--limit``)."""

from __future__ import annotations

import numpy as np
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
    limited, floor = spec.limit(params, fraction)
    spec.validate(limited)  # within every declared range and rule
    for key, value in limited.items():
        if key not in _sample_sizes(spec):
            assert value == params[key], key
            continue
        constraint = spec.params[key].constraint
        lowest = int(getattr(constraint, "item", constraint).low)  # sample sizes are closed integer intervals
        expected = [min(v, max(lowest, floor or 0, round(v * fraction))) for v in np.atleast_1d(params[key])]
        if isinstance(value, list):
            assert value == list(dict.fromkeys(expected)), key
        else:
            assert value == expected[0] <= params[key], key
    if fraction == 1.0:
        assert limited == params and floor is None


def test_a_rule_that_fails_raises_the_small_sizes_to_the_smallest_valid_floor():
    spec = get_metric("downstream_task")
    limited, floor = spec.limit(spec.defaults, 0.1)  # [10, 100, 1000, 10000] -> [1 -> 2, 10, 100, 1000]
    assert floor == spec.defaults["n_folds"] == 5  # min(n_train_sizes) >= n_folds
    assert limited["n_train_sizes"] == [5, 10, 100, 1000] and limited["n_test"] == 500
    with pytest.raises(ConfigError):
        spec.validate({**limited, "n_train_sizes": [4, 10, 100, 1000]})  # one below the floor is invalid
    limited, floor = spec.limit({**spec.defaults, "n_folds": 20, "n_train_sizes": [20, 200, 2000]}, 0.1)
    assert floor == 20 and limited["n_train_sizes"] == [20, 200]  # 2 -> 20, then a duplicate of 20


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
    assert "downstream_task's sample sizes were raised to at least 5" in note and "min(n_train_sizes) >= n_folds" in note


@pytest.mark.parametrize("bad", [0, -0.5, 1.5, True, "0.1", float("nan")])
def test_bad_limits_are_one_line_config_errors(bad):
    with pytest.raises(ConfigError, match=r"^limit: expected a fraction in \(0, 1\]"):
        EvaluationOptions(limit=bad)
