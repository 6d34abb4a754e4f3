"""``dbench list datasets|metrics|protocols``: datasets, the metrics' declarations, the bundled protocols.

``dbench list metrics`` prints, per metric, what its :class:`~dbench.metrics.MetricSpec` declares
(:meth:`~dbench.metrics.MetricSpec.describe`): description, parameters with default and allowed
range (sample sizes, which ``--limit`` scales, marked), rules between parameters, score keys with
bounds and direction. ``dbench list protocols`` prints each bundled protocol with its version,
datasets, representations, seeds, metrics and description. ``--names`` prints only the names, one per
line, for scripts.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from typing import Any

from dbench._cli.exit_codes import EXIT_OK

_INDENT = "    "
#: How ``dbench list metrics`` marks a parameter that ``--limit`` scales.
SAMPLE_SIZE_MARK = "a sample size (scaled by --limit)"


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "list",
        help="list datasets, metrics (parameters, defaults, score keys) or protocols",
        description="List the registered datasets, the metrics with what each declares (parameters with "
        "default and allowed range, rules between parameters, score keys with bounds and direction), or "
        "the bundled protocols.",
    )
    p.add_argument("what", choices=("datasets", "metrics", "protocols"))
    p.add_argument("--names", action="store_true", help="only the names, one per line")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.what == "datasets":
        from dbench.datasets import DATASETS

        for name in DATASETS:
            print(name)
        return EXIT_OK
    if args.what == "protocols":
        return _list_protocols(names_only=args.names)
    from dbench.metrics import METRIC_NAMES, get_metric

    if args.names:
        for name in METRIC_NAMES:
            print(name)
        return EXIT_OK
    print("\n\n".join(format_metric(get_metric(name).describe()) for name in METRIC_NAMES))
    return EXIT_OK


def format_metric(described: Mapping[str, Any]) -> str:
    """A metric's declaration (:meth:`MetricSpec.describe`) as readable, aligned text."""
    lines = [f"{described['name']}: {described['description']}"]
    params: Sequence[Mapping[str, Any]] = described["params"]
    if params:
        lines.append("  parameters (default; allowed values):")
        width = max(len(p["name"]) for p in params)
        for p in params:
            mark = f"; {SAMPLE_SIZE_MARK}" if p.get("sample_size") else ""
            lines.append(f"{_INDENT}{p['name']:<{width}}  {_value(p['default'])}; {p['allowed']}{mark}")
            if p["doc"]:
                lines.append(f"{_INDENT}{'':<{width}}  {p['doc']}")
    else:
        lines.append("  parameters: none")
    for rule in described["rules"]:
        if rule is described["rules"][0]:
            lines.append("  rules between parameters:")
        why = f"  ({rule['doc']})" if rule["doc"] else ""
        lines.append(f"{_INDENT}{rule['condition']}{why}")
    scores: Sequence[Mapping[str, Any]] = described["scores"]
    lines.append("  scores (range, direction: meaning):")
    width = max(len(s["key"]) for s in scores)
    for s in scores:
        doc = f": {s['doc']}" if s["doc"] else ""
        lines.append(f"{_INDENT}{s['key']:<{width}}  {_range(s['low'], s['high'])}, {_direction(s['higher_is_better'])}{doc}")
    if described.get("plot"):
        lines.append("  plot: written with the result's plots (--plots)")
    return "\n".join(lines)


def _list_protocols(*, names_only: bool) -> int:
    """Each bundled protocol: name, version, what it runs, description; an invalid one says why."""
    from dbench.errors import ConfigError
    from dbench.protocols import list_protocols, resolve_protocol

    blocks = []
    for name in list_protocols():
        if names_only:
            print(name)
            continue
        try:
            resolved = resolve_protocol(name)
        except ConfigError as exc:
            blocks.append(f"{name}: INVALID: {exc}")
            continue
        what = (f"  datasets: {', '.join(resolved['datasets'])}; representations: {', '.join(resolved['representation'])}; "
                f"seeds: {', '.join(map(str, resolved['seeds']))}")
        blocks.append("\n".join([
            f"{name} v{resolved['version']}: {' '.join(resolved['description'].split())}",
            what,
            f"  metrics: {', '.join(resolved['metrics'])}",
        ]))
    if blocks:
        print("\n\n".join(blocks))
        print("\n(dbench protocols show NAME prints every parameter and the hash)")
    return EXIT_OK


def _value(value: Any) -> str:
    """A default as written in a protocol file (YAML/JSON: ``true``, ``[1, 5]``); strings quoted as in the ranges."""
    if isinstance(value, str):
        return repr(value)
    try:
        return json.dumps(value)
    except TypeError:
        return repr(value)


def _range(low: float | None, high: float | None) -> str:
    """``[low, high]`` with ``None`` as an open, unbounded end."""
    left = "(-inf" if low is None else f"[{low:g}"
    right = "inf)" if high is None else f"{high:g}]"
    return f"{left}, {right}"


def _direction(higher_is_better: bool | None) -> str:
    if higher_is_better is None:
        return "no direction"
    return "higher is better" if higher_is_better else "lower is better"
