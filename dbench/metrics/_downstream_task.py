"""The downstream task's entry in the metric registry (disentanglement_lib's ``downstream_task``).

The probe's declaration (:data:`SPEC`: parameters with their ranges, rules, score keys, plot) lives
with its code in :mod:`dbench.probes.downstream`, whose keyword defaults and checks read it; keeping
both in one module means neither imports the other back (no import cycle). This thin module is what
the registry points to, so the registry never points outside ``dbench.metrics``.
"""

from __future__ import annotations

from dbench.probes.downstream import LOGISTIC_SOLVERS, PARAMS, PREDICTOR_NAMES, RULES, SPEC

__all__ = ["LOGISTIC_SOLVERS", "PARAMS", "PREDICTOR_NAMES", "RULES", "SPEC"]
