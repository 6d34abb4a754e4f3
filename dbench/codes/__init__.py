"""Codes: encoder outputs keyed by observation index, encoded once, cached, and represented.

* :class:`CodeTable` -- the encode-once table: each observation index is encoded at most once per
  evaluation, optionally backed by the on-disk :class:`ShardCache` so an interrupted run resumes.
* :func:`encode_plan_requests` -- encode a metric plan's requests once (standalone metric calls).
* :func:`sample_representation`, :func:`represent` -- the *sampled* representation, reproducible per
  observation index (see :mod:`dbench.codes.sampled`).

This layer sits above the encoders (it calls them) and below the estimators and metrics (they read
codes from it). Importing it does not import torch.
"""

from dbench.codes.cache import ShardCache, cache_key
from dbench.codes.encode import encode_plan_requests
from dbench.codes.sampled import (
    represent,
    sample_representation,
    standard_normal_per_index,
    table_representation,
)
from dbench.codes.table import CodeTable

__all__ = [
    "CodeTable",
    "ShardCache",
    "cache_key",
    "encode_plan_requests",
    "represent",
    "sample_representation",
    "standard_normal_per_index",
    "table_representation",
]
