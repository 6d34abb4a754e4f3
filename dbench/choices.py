"""Names with a fixed set of values, declared once as ``Literal`` types.

The tuples are derived from the types (``typing.get_args``), so the protocol schema, the result schema,
the command line's ``choices=`` and every check in the code read the same list.
"""

from __future__ import annotations

from typing import Literal, get_args

#: Which codes the metrics see: the encoder's codes (posterior mean) or one posterior sample each.
Representation = Literal["mean", "sampled"]
#: Array library for the metric maths; ``auto`` picks CuPy or torch on a GPU, else NumPy.
BackendName = Literal["auto", "numpy", "cupy", "torch"]
#: How several metric seeds are summarised.
Aggregate = Literal["mean_std"]
#: Outcome of one evaluation: every metric scored, some, or none.
Status = Literal["ok", "partial", "failed"]

REPRESENTATIONS: tuple[Representation, ...] = get_args(Representation)
BACKENDS: tuple[BackendName, ...] = get_args(BackendName)
AGGREGATES: tuple[Aggregate, ...] = get_args(Aggregate)
STATUSES: tuple[Status, ...] = get_args(Status)

__all__ = [
    "AGGREGATES",
    "BACKENDS",
    "REPRESENTATIONS",
    "STATUSES",
    "Aggregate",
    "BackendName",
    "Representation",
    "Status",
]
