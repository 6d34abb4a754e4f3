"""The few-shot probes' entry in the metric registry (linear and k-NN probes per factor).

The probes' declaration (:data:`SPEC`: parameters with their ranges, rules, score keys) lives with
their code in :mod:`dbench.probes.few_shot`, whose keyword defaults and checks read it; keeping both
in one module means neither imports the other back (no import cycle). This thin module is what the
registry points to, so the registry never points outside ``dbench.metrics``.
"""

from __future__ import annotations

from dbench.probes.few_shot import PARAMS, PROBES, RULES, SPEC

__all__ = ["PARAMS", "PROBES", "RULES", "SPEC"]
