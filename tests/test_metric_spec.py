"""The metric declarations: constraints, rules, score keys, the registry, and every path that validates
parameters through them (a Python call, a protocol file, ``protocols validate``, ``--set``)."""

from __future__ import annotations

import argparse
import ast
import inspect
import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import dbench.metrics
from dbench import protocols as P
from dbench.errors import ConfigError, ParameterError
from dbench.metrics import (
    METRIC_NAMES,
    AnyOf,
    Boolean,
    Interval,
    ListOf,
    MetricSpec,
    Options,
    Param,
    Params,
    Rule,
    Scored,
    ScoreKey,
    Text,
    get_metric,
)
from dbench.metrics._registry import Entry, index

SPECS = [get_metric(name) for name in METRIC_NAMES]
PARAMS = [(spec.name, key) for spec in SPECS for key in spec.params]


def _intervals(constraint):
    """Every Interval inside a constraint (lists and alternatives included)."""
    if isinstance(constraint, Interval):
        return [constraint]
    if isinstance(constraint, ListOf):
        return _intervals(constraint.item)
    if isinstance(constraint, AnyOf):
        return [i for c in constraint.constraints for i in _intervals(c)]
    return []


# ------------------------------------------------------------------------------------------------
# Every declared parameter


@pytest.mark.parametrize("metric, key", PARAMS)
def test_every_constraint_accepts_its_default_and_refuses_invalid_values(metric, key):
    spec = get_metric(metric)
    constraint = spec.params[key].constraint
    spec.validate({key: spec.params[key].default})
    spec.validate({key: constraint.example()})
    invalid = constraint.invalid_examples()
    assert len(invalid) >= 3
    for value in invalid:
        with pytest.raises(ParameterError) as info:
            spec.validate({key: value})
        message = str(info.value)
        assert "\n" not in message and len(message) < 400
        assert message.startswith(f"metrics.{metric}.{key}: got ") and f"; allowed: {constraint}" in message


@pytest.mark.parametrize("metric, key", PARAMS)
def test_every_numeric_parameter_has_a_finite_range_and_a_doc(metric, key):
    param = get_metric(metric).params[key]
    assert param.doc and "\n" not in param.doc
    default = param.default
    numbers = [default] if isinstance(default, (int, float)) else list(default) if isinstance(default, list) else []
    if any(isinstance(v, (int, float)) and not isinstance(v, bool) for v in numbers) or _intervals(param.constraint):
        intervals = _intervals(param.constraint)
        assert intervals, f"{metric}.{key} is numeric but has no Interval"
        assert all(math.isfinite(i.low) and math.isfinite(i.high) for i in intervals)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_sample_sizes_are_capped(spec):
    """Counts of observations (n_*, batch_size) stop at 10 million: a legal value never asks for TBs."""
    for key, param in spec.params.items():
        for interval in _intervals(param.constraint):
            if key.startswith("n_") or key == "batch_size":
                assert interval.type is int and interval.high <= 10_000_000, (spec.name, key)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_describe_is_plain_json_data(spec):
    described = spec.describe()
    assert json.loads(json.dumps(described, allow_nan=False)) == described
    assert described["name"] == spec.name and described["description"]
    assert [p["name"] for p in described["params"]] == list(spec.params)
    assert all(p["allowed"] and p["doc"] for p in described["params"])
    assert {s["key"] for s in described["scores"]} == {s.key for s in spec.scores}


@pytest.mark.parametrize(
    "function, metric",
    [("mig", "mig"), ("sap", "sap"), ("dci", "dci"), ("irs", "irs"), ("unsupervised", "unsupervised"),
     ("modularity_explicitness", "modularity_explicitness"), ("beta_vae", "beta_vae"), ("factor_vae", "factor_vae")],
)
def test_function_defaults_are_the_declared_defaults(function, metric):
    """Each public function's keyword defaults come from its spec (declared once)."""
    signature = inspect.signature(getattr(dbench.metrics, function))
    declared = get_metric(metric).defaults
    shared = [name for name in signature.parameters if name in declared]
    assert shared
    for name in shared:
        assert signature.parameters[name].kind is inspect.Parameter.KEYWORD_ONLY
        assert signature.parameters[name].default == declared[name], name


# ------------------------------------------------------------------------------------------------
# Constraints


@given(value=st.one_of(st.integers(-10**12, 10**12), st.floats(allow_nan=True), st.booleans(), st.text(max_size=5), st.none()))
def test_interval_agrees_with_its_definition(value):
    ints, reals = Interval(int, 2, 1000), Interval(float, 0.0, 1.0, closed="right")
    is_int = isinstance(value, int) and not isinstance(value, bool)
    is_real = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    assert ints.is_satisfied_by(value) == (is_int and 2 <= value <= 1000)
    assert reals.is_satisfied_by(value) == (is_real and 0.0 < value <= 1.0)


def test_constraints_in_words_and_numpy_scalars():
    assert str(Interval(int, 2, 10_000_000)) == "an integer in [2, 10000000]"
    assert str(Interval(float, 0.0, 1.0, closed="right")) == "a number in (0, 1]"
    assert str(Options(("fast", "sklearn"))) == "one of 'fast', 'sklearn'"
    assert str(ListOf(Options(["a", "b"]), min_length=1, max_length=2, unique=True)).startswith(
        "a list of 1 to 2 distinct entries, each one of 'a', 'b'")
    assert Interval(int, 1, 5).is_satisfied_by(np.int64(3)) and not Interval(int, 1, 5).is_satisfied_by(np.float64(3))
    assert Interval(float, 0, 1).is_satisfied_by(np.float32(0.5)) and not Interval(float, 0, 1).is_satisfied_by(np.bool_(True))
    assert Boolean().is_satisfied_by(np.bool_(False)) and not Boolean().is_satisfied_by(0)
    assert Options(["all"]).is_satisfied_by("all") and not Options([1]).is_satisfied_by(True)
    assert not ListOf(Text()).is_satisfied_by(["ok", ""]) and ListOf(Text()).is_satisfied_by(("a", "b"))
    assert not ListOf(Interval(int, 0, 9), unique=True).is_satisfied_by([1, 1])
    with pytest.raises(ValueError, match="finite"):
        Interval(int, 0, math.inf)
    with pytest.raises(TypeError):
        Interval(str, 0, 1)


def test_huge_values_are_cut_to_an_excerpt():
    with pytest.raises(ParameterError) as info:
        get_metric("few_shot").validate({"continuous_factors": ["x" * 10_000] * 1000})
    assert len(str(info.value)) < 400


# ------------------------------------------------------------------------------------------------
# Rules


def test_rules_between_parameters():
    downstream = get_metric("downstream_task")
    rule = r"n_train_sizes: got \[3\]; allowed: min\(n_train_sizes\) >= n_folds with n_folds=5"
    with pytest.raises(ParameterError, match=rule):
        downstream.resolve({"n_train_sizes": [3]})
    downstream.validate({"n_train_sizes": [3]})  # a partial mapping: the rule needs n_folds too
    assert downstream.resolve({"n_train_sizes": [3], "n_folds": 3})["n_train_sizes"] == [3]
    rule = r"metrics\.beta_vae\.batch_size: got 1000; allowed: batch_size \* \(n_train \+ n_eval\) <= 20_000_000"
    with pytest.raises(ParameterError, match=rule):
        get_metric("beta_vae").resolve({"batch_size": 1000, "n_train": 1_000_000})
    with pytest.raises(ParameterError, match=r"metrics\.few_shot\.n_draws"):
        get_metric("few_shot").resolve({"n_draws": 1000, "n_pool": 1_000_000})


@pytest.mark.parametrize("condition", ["n.real > 0", "__import__('os') > 0", "open(n) > 0", "n > 'a'", "[n] > 0", "1 > 0"])
def test_rule_conditions_are_restricted(condition):
    with pytest.raises((ValueError, TypeError)):
        Rule(condition)


def test_declaration_mistakes_fail_at_import_time():
    def spec(**changes):
        fields = dict(name="m", description="d", params=Params(n=Param(5, Interval(int, 1, 9), "n")),
                      scores=(ScoreKey("s", 0.0, 1.0, True, "s"),), plan_fn=None, score_fn=None)
        fields.update(changes)
        return MetricSpec(**fields)

    spec()
    with pytest.raises(ValueError, match="default 50"):
        spec(params=Params(n=Param(50, Interval(int, 1, 9), "n")))
    with pytest.raises(ValueError, match="declared twice"):
        spec(scores=(ScoreKey("s", 0, 1, True, "a"), ScoreKey("s", 0, 1, True, "b")))
    with pytest.raises(ValueError, match="unknown parameter"):
        spec(rules=(Rule("m < 3"),))
    with pytest.raises(ParameterError, match="n: got 5; allowed: n < 3"):
        spec(rules=(Rule("n < 3"),))
    with pytest.raises(TypeError, match="Param"):
        Params(n=5)


# ------------------------------------------------------------------------------------------------
# Score keys


def test_score_key_patterns_and_check_scores():
    few_shot = get_metric("few_shot")
    assert few_shot.score_key("linear:all:r2_factor_2:ci95_high").key == "{probe}:{shots}:r2_factor_{i}:ci95_high"
    assert few_shot.score_key("knn:5:mean_accuracy").higher_is_better is True
    assert get_metric("downstream_task").score_key("gradient_boosting:sample_efficiency").low == 0.0
    for bad, match in [
        ({"knn:5:mean_acc": 0.5}, "is not declared; declared: "),
        ({"knn:5:mean_accuracy": math.nan}, "is not finite"),
        ({"knn:5:mean_accuracy": 1.5}, r"outside its declared range \[0.0, 1.0\]"),
        ({"knn:5:mean_accuracy": True}, "is not a number"),
        ({"knn:5:mean_accuracy": "0.5"}, "is not a number"),
    ]:
        with pytest.raises(ValueError, match=match):
            few_shot.check_scores(bad)
    get_metric("unsupervised").check_scores({"gaussian_total_correlation": -1e-16})  # rounding at a bound
    overlapping = MetricSpec(name="m", description="d", params=Params(), plan_fn=None, score_fn=None,
                             scores=(ScoreKey("{a}:x", 0, 1, True, "a"), ScoreKey("y:{b}", 0, 1, True, "b")))
    with pytest.raises(ValueError, match="matches 2 declarations"):
        overlapping.check_scores({"y:x": 0.5})


def test_wasserstein_norm_can_exceed_one_within_its_declared_bound():
    """D copies of one latent give 2 - 2 / sqrt(D): the declared range is [0, 2], not [0, 1]."""
    z = np.random.default_rng(0).normal(size=(2000, 1))
    codes = np.repeat(z, 9, axis=1) + 1e-6 * np.random.default_rng(1).normal(size=(2000, 9))
    scores = dbench.metrics.unsupervised(codes)
    assert scores["gaussian_wasserstein_correlation_norm"] == pytest.approx(2 - 2 / 3, abs=1e-4)
    get_metric("unsupervised").check_scores(scores)


def test_score_must_return_scored():
    spec = MetricSpec(name="m", description="d", params=Params(), scores=(), plan_fn=None,
                      score_fn=lambda plan, codes, params: {"s": 1.0})
    with pytest.raises(TypeError, match="Scored"):
        spec.score(None, {}, {})
    assert Scored({"a": 1.0}).artifacts == {}


# ------------------------------------------------------------------------------------------------
# Registry


def test_registry_is_one_table_of_private_modules_without_duplicates():
    assert all(module.startswith("dbench.metrics._") for module in dbench.metrics.METRIC_MODULES.values())
    with pytest.raises(ValueError, match="registered twice"):
        index([Entry("a", "dbench.metrics._a"), Entry("a", "dbench.metrics._b")])
    with pytest.raises(ValueError, match="public function 'f' is registered twice"):
        index([Entry("a", "dbench.metrics._a", "f"), Entry("b", "dbench.metrics._b", "f")])
    with pytest.raises(ValueError, match=r"private module of dbench.metrics"):
        index([Entry("a", "dbench.probes.a")])
    with pytest.raises(ValueError, match="unknown metric 'mgi'; known metrics: beta_vae"):
        get_metric("mgi")
    with pytest.raises(AttributeError):
        dbench.metrics.no_such_function  # noqa: B018 - the attribute access itself must raise


def test_modules_and_functions_no_longer_share_a_name():
    import dbench.metrics._mig as module

    assert module.SPEC.name == "mig"
    assert dbench.metrics.mig is module.mig and callable(dbench.metrics.mig)
    assert {"mig", "dci", "beta_vae", "MetricSpec", "DegenerateInputWarning"} <= set(dir(dbench.metrics))


def test_type_checkers_see_every_lazily_re_exported_function():
    """The ``if TYPE_CHECKING:`` block of dbench.metrics imports exactly the registry's public functions."""
    tree = ast.parse(Path(dbench.metrics.__file__).read_text())
    blocks = [node for node in tree.body if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"]
    assert len(blocks) == 1
    declared = {
        alias.asname or alias.name: statement.module
        for statement in blocks[0].body
        if isinstance(statement, ast.ImportFrom)
        for alias in statement.names
    }
    assert declared == dbench.metrics.PUBLIC_FUNCTIONS


def test_importing_the_metrics_package_is_cheap():
    code = textwrap.dedent("""
        import sys
        import dbench.metrics
        heavy = {"torch", "sklearn", "matplotlib", "scipy", "numba", "dbench.evaluation", "dbench.metrics._mig"}
        print(sorted(heavy & set(sys.modules)))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ------------------------------------------------------------------------------------------------
# The paths that validate: a protocol file, `protocols validate`, `--set`


def _protocol(tmp_path, metrics_yaml: str):
    path = tmp_path / "p.yaml"
    path.write_text(f"name: p\nversion: 1\ndatasets: [dsprites]\nseeds: [0]\nmetrics:\n{metrics_yaml}", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "line, expected",
    [
        ("  mig: {n_train: 1e11}", "metrics.mig.n_train: got '1e11'; allowed: an integer in [2, 10000000]"),
        ("  mig: {n_train: 1.0e+11}", "metrics.mig.n_train: got 100000000000.0; allowed: an integer in [2, 10000000]"),
        ("  mig: {n_train: -5}", "metrics.mig.n_train: got -5; allowed: an integer in [2, 10000000]"),
        ("  mig: {n_train: null}", "metrics.mig.n_train: got None; allowed: an integer"),
        ("  irs: {diff_quantile: .nan}", "metrics.irs.diff_quantile: got nan; allowed: a number in (0, 1]"),
        ("  sap: {solver: newton}", "metrics.sap.solver: got 'newton'; allowed: one of 'batched', 'sklearn'"),
        ("  few_shot: {shots: [1, 0]}", "metrics.few_shot.shots: got [1, 0]; allowed: a list of 1 to 10 distinct"),
        ("  downstream_task: {n_train_sizes: [3]}",
         "metrics.downstream_task.n_train_sizes: got [3]; allowed: min(n_train_sizes) >= n_folds"),
        ("  beta_vae: {batch_size: 100000, n_train: 1000000}",
         "metrics.beta_vae.batch_size: got 100000; allowed: batch_size * (n_train + n_eval)"),
    ],
)
def test_protocols_validate_refuses_what_evaluate_would_fail_on(tmp_path, capsys, line, expected):
    path = _protocol(tmp_path, line + "\n")
    with pytest.raises(ConfigError) as info:
        P.load_protocol(path)
    assert str(info.value).startswith(f"{path}: ") and expected in str(info.value) and "\n" not in str(info.value)
    from dbench._cli import protocols as protocols_command

    parser = argparse.ArgumentParser(prog="dbench")
    protocols_command.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["protocols", "validate", str(path)])
    assert args.func(args) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err


def test_ranking_must_name_a_declared_score(tmp_path):
    path = _protocol(tmp_path, "  mig: {}\nranking: [mig.mgi]\n")
    with pytest.raises(ConfigError, match=r"ranking\.0: metrics\.mig: score 'mgi' is not declared; declared: mig"):
        P.load_protocol(path)


def test_set_values_are_validated_by_the_spec():
    from dbench.evaluation.options import EvaluationOptions
    from dbench.evaluation.pipeline import resolve_config

    def resolve(params):
        return resolve_config(EvaluationOptions(protocol="quick", params=params))

    assert resolve({"mig": {"n_train": 500}})[0].metrics["mig"]["n_train"] == 500
    with pytest.raises(ConfigError, match=r"^metrics\.mig\.n_train: got -5; allowed: an integer in \[2, 10000000\]$"):
        resolve({"mig": {"n_train": -5}})
    with pytest.raises(ConfigError, match=r"^metrics\.mig\.n_trian: unknown parameter; allowed: n_bins, n_train$"):
        resolve({"mig": {"n_trian": 5}})


def test_python_calls_are_validated_by_the_spec():
    rng = np.random.default_rng(0)
    factors = rng.integers(0, 3, size=(100, 2))
    codes = factors + 0.1 * rng.normal(size=(100, 2))
    with pytest.raises(ParameterError, match=r"^metrics\.mig\.n_bins: got 0; allowed: an integer in \[1, 1000\]$"):
        dbench.metrics.mig(codes, factors, n_bins=0)
    allowed = "one of 'fast', 'numba', 'array', 'sklearn'"
    with pytest.raises(ValueError, match=rf"^metrics\.dci\.estimator: got 'xgboost'; allowed: {allowed}$"):
        dbench.metrics.dci(codes, factors, codes, factors, estimator="xgboost")
    with pytest.raises(ValueError, match=r"metrics\.irs\.diff_quantile: got 0\.0"):
        dbench.metrics.irs(codes, factors, diff_quantile=0.0)


# ------------------------------------------------------------------------------------------------
# docs/metrics.md's reference section is generated from the specs


DOCS = Path(__file__).resolve().parents[1] / "docs" / "metrics.md"
BEGIN, END = "<!-- BEGIN metric reference (generated from the specs) -->", "<!-- END metric reference -->"


def _range(low, high) -> str:
    def text(x):
        return "inf" if x is None else (str(int(x)) if float(x).is_integer() else f"{x:g}")

    return f"[{'-inf' if low is None else text(low)}, {text(high)}]".replace("-inf]", "-inf)").replace("inf]", "inf)")


def reference_markdown() -> str:
    """The reference block of docs/metrics.md, written from ``MetricSpec.describe()``."""
    lines = [BEGIN, "", "Regenerate with `DBENCH_WRITE_DOCS=1 pytest tests/test_metric_spec.py -k docs`.", ""]
    for name in METRIC_NAMES:
        described = get_metric(name).describe()
        lines += [f"### `{name}`", "", described["description"] + ".", ""]
        lines += ["| parameter | default | allowed | what it is |", "|---|---|---|---|"]
        for p in described["params"]:
            allowed = p["allowed"].replace("|", "\\|")
            size = " (a sample size: `--limit` scales it)" if p["sample_size"] else ""
            lines.append(f"| `{p['name']}` | `{json.dumps(p['default'])}` | {allowed} | {p['doc']}{size} |")
        for rule in described["rules"]:
            lines += ["", f"Rule: `{rule['condition']}` ({rule['doc']})."]
        lines += ["", "| score key | range | higher is better | what it is |", "|---|---|---|---|"]
        for s in described["scores"]:
            better = {True: "yes", False: "no (lower is better)", None: "— (not a quality score)"}[s["higher_is_better"]]
            lines.append(f"| `{s['key']}` | {_range(s['low'], s['high'])} | {better} | {s['doc']} |")
        lines.append("")
    lines.append(END)
    return "\n".join(lines)


def test_docs_reference_matches_the_specs():
    text = DOCS.read_text(encoding="utf-8")
    start, stop = text.index(BEGIN), text.index(END) + len(END)
    expected = reference_markdown()
    if os.environ.get("DBENCH_WRITE_DOCS") == "1":
        DOCS.write_text(text[:start] + expected + text[stop:], encoding="utf-8")
        text = DOCS.read_text(encoding="utf-8")
    assert text[start : text.index(END) + len(END)] == expected, "docs/metrics.md is stale: DBENCH_WRITE_DOCS=1 pytest -k docs"
