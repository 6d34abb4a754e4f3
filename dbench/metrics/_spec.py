"""A metric's one declaration: :class:`MetricSpec` (parameters, score keys, rules, plan, score, plot).

Everything else is derived from it: the array function's keyword defaults (``PARAMS[name].default``),
the checks of a protocol file, of ``--set`` and of a Python call (one :meth:`MetricSpec.validate`, one
message style), the pipeline's check of every returned score (:meth:`MetricSpec.check_scores`), the listing of
``dbench list metrics`` (:meth:`MetricSpec.describe`) and the property tests (bounds and registry).

A metric is split in two (the torchmetrics / disentanglement_lib public-private split):

``plan(dataset, rng, params) -> Plan``
    Decide, with an explicit random generator, which observations the metric needs: named arrays of
    flat observation indices (any shape) plus any labels (factor indices, chosen factors...).
``score(plan, codes, params) -> Scored``
    Pure maths. ``codes[key]`` has shape ``plan.requests[key].shape + (n_latents,)`` and lives in the
    backend's array namespace (NumPy, CuPy, torch, array_api_strict). Returns the scores and any
    arrays a plot needs (``Scored.artifacts``; never written to a result file).

The pipeline unions the requests of all metrics, encodes each unique index once, and hands every
metric its codes.
"""

from __future__ import annotations

import ast
import copy
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dbench.errors import ParameterError, excerpt
from dbench.metrics._constraints import Constraint


@dataclass
class Plan:
    """Observation indices a metric needs (``requests``) and the labels that go with them (``extra``)."""

    requests: dict[str, np.ndarray]
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Scored:
    """What ``score`` returns: the scores (declared keys, Python numbers), arrays for plots and, for a
    metric that fits a model, which estimator ran on which device (``{"estimator": ..., "device": ...}``,
    recorded in the result file)."""

    scores: dict[str, float]
    artifacts: dict[str, Any] = field(default_factory=dict)
    estimator: dict[str, str] | None = None


PlanFn = Callable[[Any, np.random.Generator, Mapping[str, Any]], Plan]
ScoreFn = Callable[[Plan, Mapping[str, Any], Mapping[str, Any]], Scored]
# plot(scored, folder) writes one PNG into ``folder`` and returns its path (None: nothing to plot,
# e.g. a result read back from JSON, which holds no artifacts).
PlotFn = Callable[[Scored, Path], Path | None]

@dataclass(frozen=True)
class Param:
    """One parameter: its default (disentanglement_lib's published value), constraint and one-line doc.

    ``sample_size=True`` marks a number of observations (or a list of them, a learning curve's
    training sizes) that ``--limit`` scales (:meth:`MetricSpec.limit`); counts that define the
    statistic itself (bins, folds, draws, shots, batch sizes) are not sample sizes.
    """

    default: Any
    constraint: Constraint
    doc: str
    sample_size: bool = False


class Params(Mapping[str, Param]):
    """A metric's parameters by name, in declaration order: ``Params(n_train=Param(...), ...)``.

    Array functions take their keyword defaults from here (``n_bins: int = PARAMS["n_bins"].default``)
    so that each default is written once.
    """

    def __init__(self, **params: Param) -> None:
        for name, param in params.items():
            if not isinstance(param, Param):
                raise TypeError(f"parameter {name!r} must be declared as a Param; got {type(param).__name__}")
        self._params = dict(params)

    def __getitem__(self, name: str) -> Param:
        return self._params[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._params)

    def __len__(self) -> int:
        return len(self._params)

    def __repr__(self) -> str:
        return f"Params({', '.join(self._params)})"


_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class ScoreKey:
    """A score key a metric returns, with its bounds and direction.

    ``key`` is exact (``"mig"``) or a pattern whose ``{placeholders}`` each stand for one segment
    without a colon (``"{predictor}:{n}:mean_test_accuracy"``). ``higher_is_better`` is ``None`` for
    keys that are not quality scores (counts, spreads, interval ends).
    """

    key: str
    low: float
    high: float
    higher_is_better: bool | None
    doc: str
    _regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.low <= self.high or math.isnan(self.low) or math.isnan(self.high):
            raise ValueError(f"score key {self.key!r}: bounds must satisfy low <= high; got [{self.low}, {self.high}]")
        parts, start = [], 0
        for match in _PLACEHOLDER.finditer(self.key):
            parts.append(re.escape(self.key[start : match.start()]) + "[^:]+")
            start = match.end()
        parts.append(re.escape(self.key[start:]))
        object.__setattr__(self, "_regex", re.compile("".join(parts)))

    @property
    def is_pattern(self) -> bool:
        """Whether ``key`` has placeholders (per-factor, per-shot... keys)."""
        return bool(_PLACEHOLDER.search(self.key))

    def matches(self, key: str) -> bool:
        """Whether the returned score ``key`` is this declaration."""
        return self._regex.fullmatch(key) is not None

    def to_data(self) -> dict[str, Any]:
        """Plain data; an unbounded end is ``None``."""
        return {
            "key": self.key,
            "low": self.low if math.isfinite(self.low) else None,
            "high": self.high if math.isfinite(self.high) else None,
            "higher_is_better": self.higher_is_better,
            "doc": self.doc,
        }


# What a rule's condition may use besides parameter names: numbers, arithmetic, comparisons, these.
_RULE_FUNCTIONS: dict[str, Callable[..., Any]] = {"min": min, "max": max, "len": len, "sum": sum}
_RULE_NODES = (
    ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.BinOp, ast.Add,
    ast.Sub, ast.Mult, ast.Compare, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Eq, ast.NotEq, ast.Name,
    ast.Load, ast.Constant, ast.Call,
)


@dataclass(frozen=True)
class Rule:
    """A condition between parameters, written as the expression it checks.

    ``condition`` is a Python expression over parameter names, numbers, arithmetic, comparisons and
    ``min``/``max``/``len``/``sum`` (``"min(n_train_sizes) >= n_folds"``,
    ``"batch_size * (n_train + n_eval) <= 20_000_000"``); the same text is shown in error messages, so
    rule and explanation cannot drift apart. The first name is the parameter an error names.
    """

    condition: str
    doc: str = ""
    names: tuple[str, ...] = field(init=False, repr=False, compare=False)  # parameters it reads, in order
    _code: Any = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        tree = ast.parse(self.condition, mode="eval")
        names: list[str] = []
        for node in ast.walk(tree):
            if not isinstance(node, _RULE_NODES):
                raise TypeError(f"rule {self.condition!r}: {type(node).__name__} is not allowed in a rule")
            if isinstance(node, ast.Call) and not (isinstance(node.func, ast.Name) and node.func.id in _RULE_FUNCTIONS):
                raise ValueError(f"rule {self.condition!r}: only {', '.join(_RULE_FUNCTIONS)} may be called")
            if isinstance(node, ast.Constant) and not isinstance(node.value, (int, float)):
                raise TypeError(f"rule {self.condition!r}: only numbers may appear as constants")
        # Source order (ast.walk is breadth-first): the first name written is the one errors name.
        for node in sorted((n for n in ast.walk(tree) if isinstance(n, ast.Name)), key=lambda n: n.col_offset):
            if node.id not in _RULE_FUNCTIONS and node.id not in names:
                names.append(node.id)
        if not names:
            raise ValueError(f"rule {self.condition!r} names no parameter")
        object.__setattr__(self, "names", tuple(names))
        object.__setattr__(self, "_code", compile(tree, f"<rule {self.condition}>", "eval"))

    @property
    def param(self) -> str:
        """The parameter an error message names (the first one in the condition)."""
        return self.names[0]

    def holds(self, params: Mapping[str, Any]) -> bool:
        """Whether the condition is true for ``params`` (which hold every name it uses)."""
        scope = {name: params[name] for name in self.names}
        return bool(eval(self._code, {"__builtins__": {}, **_RULE_FUNCTIONS}, scope))


@dataclass(frozen=True)
class MetricSpec:
    """A metric as the pipeline, the protocols, the leaderboard and ``dbench list metrics`` see it.

    Parameters
    ----------
    name : str
        The registry name (the key in a protocol's ``metrics``).
    description : str
        One line.
    params : Params
        Every parameter with its default, constraint and doc; a protocol may override any of them and
        nothing else.
    scores : tuple of ScoreKey
        Every key ``score`` can return matches exactly one of them.
    plan_fn, score_fn : callables
        ``plan_fn(dataset, rng, params) -> Plan`` and ``score_fn(plan, codes, params) -> Scored``;
        called through :meth:`plan` and :meth:`score`, which hand them validated, complete parameters.
    rules : tuple of Rule
        Conditions between parameters (a training size at least the number of folds, a cap on the
        rows a plan holds).
    plot : callable, optional
        ``plot(scored, folder) -> Path | None`` writes the metric's figure (DCI's importance matrix).
    """

    name: str
    description: str
    params: Params
    scores: tuple[ScoreKey, ...]
    plan_fn: PlanFn
    score_fn: ScoreFn
    rules: tuple[Rule, ...] = ()
    plot: PlotFn | None = None

    def __post_init__(self) -> None:
        # Declaration mistakes surface when the module is imported, never in a user's run.
        for key, param in self.params.items():
            if not param.constraint.is_satisfied_by(param.default):
                raise ValueError(f"{self.name}.{key}: default {param.default!r} is not {param.constraint}")
        keys = [score.key for score in self.scores]
        if len(set(keys)) != len(keys):
            raise ValueError(f"{self.name}: score keys declared twice: {sorted({k for k in keys if keys.count(k) > 1})}")
        for rule in self.rules:
            unknown = [n for n in rule.names if n not in self.params]
            if unknown:
                raise ValueError(f"{self.name}: rule {rule.condition!r} names unknown parameter(s) {unknown}")
        for key, param in self.params.items():
            if param.sample_size and _integer_interval(param.constraint) is None:
                raise ValueError(f"{self.name}.{key}: a sample size must be an integer Interval or a ListOf one")
        self.validate(self.defaults)

    @property
    def defaults(self) -> dict[str, Any]:
        """Every parameter's default (fresh copies: mutating them never changes the spec)."""
        return {key: copy.deepcopy(param.default) for key, param in self.params.items()}

    def _error(self, key: Any, message: str) -> ParameterError:
        return ParameterError(f"metrics.{self.name}.{key}: {message}")

    def validate(self, params: Mapping[str, Any]) -> None:
        """Check a complete or partial parameter mapping; raise :class:`~dbench.errors.ParameterError`.

        Every key must be a declared parameter and every value satisfy its constraint; each rule is
        checked when ``params`` holds every parameter it names. The message is one line:
        ``metrics.<metric>.<param>: got <value>; allowed: <constraint in words>``.

        Examples
        --------
        >>> from dbench.metrics import get_metric
        >>> get_metric("mig").validate({"n_train": 5000})
        >>> get_metric("mig").validate({"n_train": "1e11"})
        Traceback (most recent call last):
        ...
        dbench.errors.ParameterError: metrics.mig.n_train: got '1e11'; allowed: an integer in [2, 10000000]
        >>> get_metric("downstream_task").validate({"n_train_sizes": [3, 100], "n_folds": 5})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        dbench.errors.ParameterError: metrics.downstream_task.n_train_sizes: got [3, 100]; allowed: min(...) >= n_folds ...
        """
        for key, value in params.items():
            if key not in self.params:
                allowed = ", ".join(sorted(self.params)) or "none"
                raise self._error(key, f"unknown parameter; allowed: {allowed}")
            constraint = self.params[key].constraint
            if not constraint.is_satisfied_by(value):
                raise self._error(key, f"got {excerpt(value)}; allowed: {constraint}")
        for rule in self.rules:
            names = rule.names
            if all(name in params for name in names) and not rule.holds(params):
                others = ", ".join(f"{n}={excerpt(params[n])}" for n in names if n != rule.param)
                context = f" with {others}" if others else ""
                why = f" ({rule.doc})" if rule.doc else ""
                raise self._error(rule.param, f"got {excerpt(params[rule.param])}; allowed: {rule.condition}{context}{why}")

    def resolve(self, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The defaults updated with ``overrides``, validated (see :meth:`validate`)."""
        params = self.defaults
        params.update(overrides or {})
        self.validate(params)
        return params

    def limit(self, params: Mapping[str, Any], fraction: float) -> tuple[dict[str, Any], int | None]:
        """``params`` with every sample size scaled by ``fraction`` in (0, 1]; and the floor raised, if any.

        Each scaled size is ``round(size * fraction)``, at least its constraint's lowest value (a
        list keeps its order and loses duplicates). When a rule between parameters then fails (a
        learning curve's smallest training size below the number of folds), the scaled sizes are
        raised to a common floor, the smallest that satisfies every rule (never above the unscaled
        size), which is returned so the caller can say what ran; otherwise the floor is ``None``.
        ``params`` must be valid (resolved).

        Examples
        --------
        >>> from dbench.metrics import get_metric
        >>> get_metric("mig").limit({"n_train": 10000, "n_bins": 20}, 0.1)
        ({'n_train': 1000, 'n_bins': 20}, None)
        >>> spec = get_metric("downstream_task")
        >>> params, floor = spec.limit(spec.defaults, 0.01)  # [10, 100, 1000, 10000] -> [2, 10, 100]
        >>> params["n_train_sizes"], params["n_test"], floor  # min(n_train_sizes) >= n_folds = 5
        ([5, 10, 100], 50, 5)
        """
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"limit must be a fraction in (0, 1]; got {fraction!r}")
        sizes = {key: _integer_interval(p.constraint) for key, p in self.params.items() if p.sample_size and key in params}

        def scaled(floor: int) -> dict[str, Any]:
            out = dict(params)
            for key, interval in sizes.items():
                out[key] = _scale_size(params[key], fraction, interval, floor)
            return out

        def valid(candidate: dict[str, Any]) -> bool:
            try:
                self.validate(candidate)
            except ParameterError:
                return False
            return True

        if valid(scaled(0)):
            return scaled(0), None
        # The smallest floor that satisfies the rules: at the largest unscaled size every size is back
        # to its unscaled value (valid), and raising the floor only raises sizes.
        low, high = 0, max((max(v) if isinstance(v, (list, tuple)) else v) for v in (params[k] for k in sizes))
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (low, middle) if valid(scaled(middle)) else (middle, high)
        return scaled(high), high

    def plan(self, dataset: Any, rng: np.random.Generator, params: Mapping[str, Any]) -> Plan:
        """``plan_fn`` on the resolved ``params`` (missing ones take their defaults)."""
        return self.plan_fn(dataset, rng, self.resolve(params))

    def score(self, plan: Plan, codes: Mapping[str, Any], params: Mapping[str, Any]) -> Scored:
        """``score_fn`` on the resolved ``params``: the scores and the artifacts for plots."""
        scored = self.score_fn(plan, codes, self.resolve(params))
        if not isinstance(scored, Scored):
            raise TypeError(f"{self.name}: score_fn must return Scored; got {type(scored).__name__}")
        return scored

    def score_key(self, key: str) -> ScoreKey:
        """The one declaration a returned score ``key`` matches; a ValueError if none or several do."""
        found = [declared for declared in self.scores if declared.matches(key)]
        if len(found) != 1:
            what = "is not declared" if not found else f"matches {len(found)} declarations"
            declared = ", ".join(s.key for s in self.scores) or "none"
            raise ValueError(f"metrics.{self.name}: score {excerpt(key)} {what}; declared: {declared}")
        return found[0]

    def check_scores(self, scores: Mapping[str, Any], *, atol: float = 1e-9) -> None:
        """Check every key is declared and every value a finite number inside its declared bounds.

        ``atol`` absorbs floating-point rounding at a bound (a total correlation of ``-1e-16``). Raises
        a one-line ``ValueError`` naming the metric, the key and the problem.

        Examples
        --------
        >>> from dbench.metrics import get_metric
        >>> get_metric("few_shot").check_scores({"knn:5:accuracy_factor_0": 0.8, "knn:5:mean_accuracy:std": 0.01})
        >>> get_metric("mig").check_scores({"mig": 1.5})
        Traceback (most recent call last):
        ...
        ValueError: metrics.mig: score 'mig' = 1.5 is outside its declared range [0.0, 1.0]
        """
        for key, value in scores.items():
            declared = self.score_key(key)
            where = f"metrics.{self.name}: score {key!r}"
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise ValueError(f"{where} = {excerpt(value)} is not a number")
            if not math.isfinite(float(value)):
                raise ValueError(f"{where} = {value!r} is not finite")
            if not declared.low - atol <= value <= declared.high + atol:
                raise ValueError(f"{where} = {value!r} is outside its declared range [{declared.low}, {declared.high}]")

    def describe(self) -> dict[str, Any]:
        """The declaration as plain data, for ``dbench list metrics`` and the docs."""
        return {
            "name": self.name,
            "description": self.description,
            "params": [
                {
                    "name": key,
                    "default": copy.deepcopy(param.default),
                    "allowed": str(param.constraint),
                    "constraint": param.constraint.to_data(),
                    "doc": param.doc,
                    "sample_size": param.sample_size,
                }
                for key, param in self.params.items()
            ],
            "rules": [{"condition": rule.condition, "doc": rule.doc} for rule in self.rules],
            "scores": [score.to_data() for score in self.scores],
            "plot": self.plot is not None,
        }


def _integer_interval(constraint: Constraint) -> Any:
    """The integer Interval of a sample-size parameter (itself, or a ListOf's items); None otherwise."""
    from dbench.metrics._constraints import Interval, ListOf

    if isinstance(constraint, ListOf):
        constraint = constraint.item
    return constraint if isinstance(constraint, Interval) and constraint.type is int else None


def _scale_size(value: Any, fraction: float, interval: Any, floor: int = 0) -> Any:
    """``round(value * fraction)`` raised to ``floor`` and ``interval``'s lowest value, never above ``value``.

    Element-wise for a list, which keeps its order and loses duplicates.
    """
    lowest = int(interval.low) if interval.closed in ("both", "left") else int(interval.low) + 1

    def one(size: int) -> int:
        return min(size, max(lowest, floor, round(size * fraction)))

    if isinstance(value, (list, tuple)):
        out: list[int] = []
        for item in value:
            if one(item) not in out:
                out.append(one(item))
        return out
    return one(value)


__all__ = ["MetricSpec", "Param", "Params", "Plan", "PlanFn", "PlotFn", "Rule", "ScoreFn", "ScoreKey", "Scored", "excerpt"]
