"""Protocols: loading, include, validation errors (one line naming file, key and what is allowed),
resolution against the metric registry, the hash, and the ``dbench protocols`` subcommands."""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import dbench.datasets
import dbench.metrics
from dbench import protocols as P
from dbench.errors import ConfigError
from dbench.metrics import AnyOf, Boolean, Interval, ListOf, MetricSpec, Options, Param, Params, ScoreKey
from dbench.protocols.load import merged_document
from dbench.protocols.registry import locate

# Parameter tables of the fake registry: names as in the metric modules, values as in dlib.
FAKE_DEFAULTS = {
    "beta_vae": {"batch_size": 64, "n_train": 10000, "n_eval": 5000},
    "factor_vae": {"batch_size": 64, "n_train": 10000, "n_eval": 5000, "n_variance_estimate": 10000,
                   "prune_threshold": 0.05},
    "mig": {"n_train": 10000, "n_bins": 20},
    "dci": {"n_train": 10000, "n_test": 5000},
    "sap": {"n_train": 10000, "n_test": 5000, "continuous_factors": False},
    "irs": {"n_train": 10000, "batch_size": 16, "diff_quantile": 0.99, "n_bins": 20},
    "downstream_task": {"n_train": (10, 100, 1000, 10000), "n_test": 5000},
    "few_shot": {"shots": [1, 5, 10, 50, "all"], "n_draws": 5, "n_pool": 10000, "n_test": 5000},
}


def _fake_param(default):
    """A permissive constraint of the default's kind: the fake registry has no metric module behind it."""
    if isinstance(default, bool):
        constraint = Boolean()
    elif isinstance(default, int):
        constraint = Interval(int, 0, 10**7)
    elif isinstance(default, float):
        constraint = Interval(float, 0.0, 1e6)
    else:
        constraint = ListOf(AnyOf(Interval(int, 1, 10**7), Options(["all"])))
    return Param(default, constraint, "a fake parameter")


def _fake_spec(name: str) -> MetricSpec:
    if name not in dbench.metrics.METRIC_NAMES:
        raise ValueError(f"unknown metric {name!r}")
    defaults = FAKE_DEFAULTS.get(name, {"n_train": 1000, "n_test": 500})
    return MetricSpec(name=name, description="fake", params=Params(**{k: _fake_param(v) for k, v in defaults.items()}),
                      scores=(ScoreKey("{key}", -math.inf, math.inf, True, "any key"),), plan_fn=None, score_fn=None)


@pytest.fixture
def registry(monkeypatch):
    """A fixed metric and dataset registry, so these tests do not depend on the metric modules."""
    monkeypatch.setattr(dbench.metrics, "get_metric", _fake_spec)
    monkeypatch.setattr(dbench.datasets, "DATASETS", {"dsprites": None, "tiny_dsprites": None}, raising=False)


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


MINIMAL = """\
    name: mine
    version: 1
    datasets: [dsprites]
    seeds: [0]
    metrics:
      mig: {n_train: 500}
      dci:
"""


# ------------------------------------------------------------------------------------------------
# Bundled protocols


def test_bundled_protocols_are_listed():
    assert {"quick", "dlib", "challenge", "multiseed"} <= set(P.list_protocols())


@pytest.mark.parametrize("name", ["quick", "dlib", "challenge", "multiseed"])
def test_bundled_protocol_loads_and_is_named_after_its_file(registry, name):
    protocol = P.load_protocol(name)
    assert protocol.name == name
    assert protocol.version >= 1
    assert protocol.description
    assert Path(protocol.source).name == f"{name}.yaml"
    resolved = P.resolve_protocol(protocol)
    for metric, params in resolved["metrics"].items():
        assert set(params) == set(FAKE_DEFAULTS.get(metric, {"n_train": 0, "n_test": 0}))


def test_bundled_protocols_match_the_real_metric_registry():
    """Parameter names in protocols/*.yaml exist in the real metric modules (once they are installed)."""
    for name in P.list_protocols():
        try:
            P.resolve_protocol(name)
        except ImportError as exc:
            pytest.skip(f"metric module not available yet: {exc}")


def test_ranking_keys_are_declared_quality_scores():
    """Each bundled ``ranking`` entry is a score key its metric declares, one where higher is better."""
    for name in P.list_protocols():
        # The file as merged, without registry checks: this test reads the declarations directly.
        for entry in merged_document(locate(name)).get("ranking") or []:
            metric, key = entry.split(".", 1)
            declared = dbench.metrics.get_metric(metric).score_key(key)
            assert declared.higher_is_better is True, f"{name}.yaml ranks {entry}, which is not a higher-is-better score"


def test_quick_protocol_runs_headline_metrics_at_small_sizes(registry):
    quick = P.resolve_protocol("quick")
    assert set(quick["metrics"]) == {"beta_vae", "factor_vae", "mig", "dci", "sap", "few_shot"}
    assert quick["metrics"]["mig"]["n_train"] < FAKE_DEFAULTS["mig"]["n_train"]
    assert quick["metrics"]["beta_vae"]["n_train"] < FAKE_DEFAULTS["beta_vae"]["n_train"]
    assert quick["seeds"] == [0] and quick["representation"] == ["mean"]


def test_dlib_protocol_uses_published_defaults_on_both_representations(registry):
    dlib = P.load_protocol("dlib")
    assert dlib.representations == ["mean", "sampled"]
    assert all(not dlib.overrides(m) for m in dlib.metrics)
    assert set(dlib.metrics) == {"beta_vae", "factor_vae", "mig", "dci", "sap", "modularity_explicitness",
                                 "irs", "unsupervised", "downstream_task"}


def test_challenge_protocol_ranks_the_five_challenge_scores(registry):
    challenge = P.load_protocol("challenge")
    assert challenge.seeds == [0]
    assert challenge.ranking == ["factor_vae.eval_accuracy", "dci.disentanglement", "sap.sap",
                                 "mig.mig", "irs.irs"]
    assert set(challenge.metrics) == {"factor_vae", "dci", "sap", "mig", "irs"}


def test_multiseed_includes_quick_and_aggregates_five_seeds(registry):
    multiseed, quick = P.load_protocol("multiseed"), P.load_protocol("quick")
    assert multiseed.seeds == [0, 1, 2, 3, 4] and multiseed.aggregate == "mean_std"
    assert multiseed.datasets == quick.datasets and multiseed.batch_size == quick.batch_size
    assert set(multiseed.metrics) == {"beta_vae", "factor_vae", "mig", "dci", "sap"}
    assert multiseed.ranking == quick.ranking


# ------------------------------------------------------------------------------------------------
# Loading, include


def test_load_from_path_and_mapping_agree(registry, tmp_path):
    path = write(tmp_path, "mine.yaml", MINIMAL)
    from_file = P.load_protocol(path)
    from_mapping = P.load_protocol(from_file.model_dump())
    assert from_file.model_dump() == from_mapping.model_dump()
    assert from_mapping.source == "<protocol mapping>"
    assert from_file.representations == ["mean"] and from_file.backend == "auto"
    assert from_file.overrides("dci") == {}


def test_include_is_relative_to_the_including_file_and_own_keys_win(registry, tmp_path):
    write(tmp_path, "base.yaml", MINIMAL)
    path = write(tmp_path, "child.yaml", """\
        include: base.yaml
        name: child
        version: 3
        seeds: [0, 1]
        aggregate: mean_std
    """)
    child = P.load_protocol(path)
    assert (child.name, child.version, child.seeds) == ("child", 3, [0, 1])
    assert child.datasets == ["dsprites"] and child.overrides("mig") == {"n_train": 500}


def test_include_falls_back_to_bundled_protocols(registry, tmp_path):
    path = write(tmp_path, "mine.yaml", "include: quick\nname: mine\nversion: 1\nseeds: [7]\n")
    mine = P.load_protocol(path)
    assert mine.seeds == [7] and mine.metrics == P.load_protocol("quick").metrics


def test_nested_include_is_an_error(registry, tmp_path):
    write(tmp_path, "a.yaml", MINIMAL)
    write(tmp_path, "b.yaml", "include: a.yaml\nname: b\nversion: 1\n")
    path = write(tmp_path, "c.yaml", "include: b.yaml\nname: c\nversion: 1\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: include: b\.yaml itself has an include; only one level"):
        P.load_protocol(path)


def test_including_file_must_name_itself(registry, tmp_path):
    write(tmp_path, "base.yaml", MINIMAL)
    path = write(tmp_path, "child.yaml", "include: base.yaml\nversion: 2\n")
    with pytest.raises(ConfigError, match=r"child\.yaml: name: required in a protocol that uses include"):
        P.load_protocol(path)


def test_missing_include_and_missing_protocol(registry, tmp_path):
    path = write(tmp_path, "child.yaml", "include: nowhere.yaml\nname: c\nversion: 1\n")
    with pytest.raises(ConfigError, match=r"include: 'nowhere.yaml' not found"):
        P.load_protocol(path)
    with pytest.raises(ConfigError, match=r"protocol 'no_such' not found.*quick"):
        P.load_protocol("no_such")


# ------------------------------------------------------------------------------------------------
# YAML safety


@pytest.mark.parametrize("text", [
    "name: !!python/object/apply:os.system ['true']\n",
    "name: !!str mine\n",
    "name: !custom mine\n",
])
def test_yaml_tags_are_refused(registry, tmp_path, text):
    path = write(tmp_path, "tagged.yaml", text)
    with pytest.raises(ConfigError, match=r"tagged\.yaml: line 1: YAML tags are not allowed"):
        P.load_protocol(path)


def test_duplicate_keys_and_bad_documents_are_refused(registry, tmp_path):
    with pytest.raises(ConfigError, match=r"dup\.yaml: line 2: invalid YAML: duplicate key 'name'"):
        P.load_protocol(write(tmp_path, "dup.yaml", "name: a\nname: b\n"))
    with pytest.raises(ConfigError, match=r"list\.yaml: a protocol must be a YAML mapping"):
        P.load_protocol(write(tmp_path, "list.yaml", "- a\n- b\n"))
    with pytest.raises(ConfigError, match=r"broken\.yaml: line \d+: invalid YAML"):
        P.load_protocol(write(tmp_path, "broken.yaml", "name: [a\n"))


# ------------------------------------------------------------------------------------------------
# Validation errors: one line naming the file, the key and what is allowed


def _variant(**changes):
    base = {"name": "x", "version": 1, "datasets": ["dsprites"], "seeds": [0], "metrics": {"mig": {}}}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not _DROP}


_DROP = object()


@pytest.mark.parametrize("changes, expected", [
    ({"metrics": {"mgi": {}}}, "x.yaml: metrics.mgi: unknown metric; allowed: beta_vae, factor_vae, mig"),
    ({"metrics": {"mig": {"n_trian": 3}}}, "x.yaml: metrics.mig.n_trian: unknown parameter; allowed: n_bins, n_train"),
    ({"metrics": {"mig": {"n_train": "3"}}}, "x.yaml: metrics.mig.n_train: got '3'; allowed: an integer"),
    ({"metrics": {"mig": {"n_train": 2.5}}}, "x.yaml: metrics.mig.n_train: got 2.5; allowed: an integer"),
    ({"metrics": {"sap": {"continuous_factors": 1}}}, "metrics.sap.continuous_factors: got 1; allowed: a boolean"),
    ({"metrics": {"mig": {"n_train": {"a": 1}}}}, "metrics.mig.n_train: got {'a': 1}; allowed: a number, a string"),
    ({"metrics": {"mig": 5}}, "x.yaml: metrics.mig: got 5; allowed: a mapping of parameter names"),
    ({"metrics": {}}, "x.yaml: metrics: "),
    ({"backend": "jax"}, "x.yaml: backend: got 'jax'; allowed: auto, numpy, cupy, torch"),
    ({"representation": "meen"}, "x.yaml: representation: got 'meen'; allowed: mean, sampled"),
    ({"representation": ["mean", "mean"]}, "x.yaml: representation: duplicate entries"),
    ({"seeds": [0, -1]}, "x.yaml: seeds.1: Input should be greater than or equal to 0"),
    ({"seeds": [0, 0], "aggregate": "mean_std"}, "x.yaml: seeds: duplicate entries"),
    ({"seeds": [0, 1]}, "x.yaml: aggregate: required with several seeds; allowed: mean_std"),
    ({"aggregate": "median"}, "x.yaml: aggregate: got 'median'; allowed: mean_std"),
    ({"version": True}, "x.yaml: version: Input should be a valid integer"),
    ({"version": 0}, "x.yaml: version: Input should be greater than or equal to 1"),
    ({"name": "my protocol"}, "x.yaml: name: String should match pattern"),
    ({"colour": "red"}, "x.yaml: colour: unknown key; allowed: name, version, description, datasets"),
    ({"datasets": _DROP}, "x.yaml: datasets: required key is missing"),
    ({"datasets": ["dsprite"]}, "x.yaml: datasets.0: unknown dataset 'dsprite'; allowed: dsprites, tiny_dsprites"),
    ({"batch_size": 0}, "x.yaml: batch_size: Input should be greater than or equal to 1"),
    ({"ranking": ["mig"]}, "x.yaml: ranking.0: 'mig' must be 'metric.score_key'"),
    ({"ranking": ["dci.disentanglement"]},
     "x.yaml: ranking.0: 'dci.disentanglement' must be 'metric.score_key' with metric one of the protocol's metrics (mig)"),
])
def test_invalid_protocol_gives_one_line_naming_key_and_allowed(registry, tmp_path, changes, expected):
    import yaml

    path = tmp_path / "x.yaml"
    path.write_text(yaml.safe_dump(_variant(**changes)), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        P.load_protocol(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(path.parent) + "/")
    assert expected in message


def test_several_problems_are_summarised_on_the_same_line(registry):
    with pytest.raises(ConfigError) as info:
        P.protocol_from_dict(_variant(backend="jax", colour="red"), "x.yaml")
    assert "\n" not in str(info.value) and "(and problems with" in str(info.value)


def test_parameter_check_uses_the_registry_spec(monkeypatch):
    """Unknown parameters are found through ``get_metric(name)`` of whatever is registered."""
    spec = MetricSpec(name="mig", description="fake", params=Params(only_this=_fake_param(1)),
                      scores=(ScoreKey("mig", 0.0, 1.0, True, "fake"),), plan_fn=None, score_fn=None)
    monkeypatch.setattr(dbench.metrics, "get_metric", lambda name: spec)
    monkeypatch.setattr(dbench.datasets, "DATASETS", {"dsprites": None}, raising=False)
    with pytest.raises(ConfigError, match=r"metrics.mig.n_train: unknown parameter; allowed: only_this"):
        P.protocol_from_dict(_variant(metrics={"mig": {"n_train": 5}}), "x.yaml")
    assert P.resolve_protocol(_variant(metrics={"mig": {"only_this": 2}}))["metrics"] == {"mig": {"only_this": 2}}


# ------------------------------------------------------------------------------------------------
# Resolved form and hash


def test_resolved_form_holds_every_parameter(registry, tmp_path):
    resolved = P.resolve_protocol(write(tmp_path, "mine.yaml", MINIMAL))
    assert resolved["metrics"] == {"mig": {"n_train": 500, "n_bins": 20}, "dci": {"n_train": 10000, "n_test": 5000}}
    assert resolved["representation"] == ["mean"] and resolved["ranking"] is None
    assert set(resolved) == {"name", "version", "description", "datasets", "representation", "seeds",
                             "backend", "batch_size", "metrics", "aggregate", "ranking"}
    json.dumps(resolved, allow_nan=False)  # plain JSON data


def test_resolved_tuple_defaults_become_lists(registry, tmp_path):
    text = MINIMAL.replace("dci:", "downstream_task:")
    resolved = P.resolve_protocol(write(tmp_path, "mine.yaml", text))
    assert resolved["metrics"]["downstream_task"]["n_train"] == [10, 100, 1000, 10000]


def test_hash_ignores_key_order_and_description_but_not_numbers(registry, tmp_path):
    first = write(tmp_path, "a.yaml", MINIMAL)
    reordered = write(tmp_path, "b.yaml", """\
        metrics:
          dci: {}
          mig: {n_train: 500, n_bins: 20}
        seeds: [0]
        description: same numbers, other words
        datasets: [dsprites]
        version: 1
        name: mine
    """)
    changed = write(tmp_path, "c.yaml", MINIMAL.replace("n_train: 500", "n_train: 501"))
    digest = P.protocol_hash(first)
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert P.protocol_hash(reordered) == digest
    assert P.protocol_hash(changed) != digest
    assert P.hash_resolved(P.resolve_protocol(first)) == digest


def test_hash_is_sha256_of_canonical_json():
    resolved = {"name": "t", "version": 1, "description": "ignored", "metrics": {"mig": {"n_bins": 20, "a": 0.5}}}
    canonical = '{"metrics":{"mig":{"a":0.5,"n_bins":20}},"name":"t","version":1}'
    assert P.canonical_json({k: v for k, v in resolved.items() if k != "description"}) == canonical
    assert P.hash_resolved(resolved) == hashlib.sha256(canonical.encode()).hexdigest()


def test_hash_is_stable_across_processes(registry):
    """A fresh interpreter (other hash seed, other import order) gives the same hash."""
    code = textwrap.dedent("""
        import dbench.datasets, dbench.metrics, sys
        sys.path.insert(0, %r)
        from test_protocols import _fake_spec
        dbench.metrics.get_metric = _fake_spec
        dbench.datasets.DATASETS = {"dsprites": None, "tiny_dsprites": None}
        from dbench.protocols import protocol_hash
        print(protocol_hash("quick"))
    """) % str(Path(__file__).parent)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONHASHSEED": "12345", "PATH": ""})
    assert out.stdout.strip() == P.protocol_hash("quick")


# ------------------------------------------------------------------------------------------------
# Command line


def _cli(argv):
    from dbench._cli import protocols as protocols_command

    parser = argparse.ArgumentParser(prog="dbench")
    protocols_command.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_list_show_validate(registry, tmp_path, capsys):
    assert _cli(["protocols", "list"]) == 0
    listing = capsys.readouterr().out
    assert "quick" in listing and "challenge" in listing

    assert _cli(["protocols", "show", "quick"]) == 0
    shown = capsys.readouterr().out
    assert shown.startswith(f"# hash: {P.protocol_hash('quick')}\n")
    import yaml

    assert yaml.safe_load(shown) == P.resolve_protocol("quick")

    good = write(tmp_path, "good.yaml", MINIMAL)
    bad = write(tmp_path, "bad.yaml", MINIMAL.replace("mig:", "mgi:"))
    assert _cli(["protocols", "validate", str(good)]) == 0
    assert "ok: " in capsys.readouterr().out
    assert _cli(["protocols", "validate", str(good), str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad.yaml: metrics.mgi: unknown metric" in err
